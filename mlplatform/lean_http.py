"""Small ASGI helpers for the lean HTTP paths that run before Django (model serving,
the MLflow tracking plane): header lookup, bounded body reads and plain responses.
No Django imports: the serving data plane uses these without settings."""

import contextlib


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


def header(scope: dict, name: bytes) -> str | None:
    """The first value of a header (names in ASGI scopes are lower-case bytes)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope: dict, receive, limit: int) -> bytes:
    """The whole request body, refusing (before reading) a declared length over `limit`
    and (while reading) a chunked body that grows past it."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """One complete response; a client that went away is not an error."""
    with contextlib.suppress(OSError):
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
