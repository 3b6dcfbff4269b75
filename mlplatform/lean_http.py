"""Small ASGI helpers for the lean HTTP paths that run before Django (model serving,
the MLflow tracking plane): header lookup, bounded body reads and plain responses.
No Django imports: the serving data plane uses these without settings."""

import contextlib

# What Django's SecurityMiddleware and XFrameOptionsMiddleware add to every response
# of ours (settings: SECURE_CONTENT_TYPE_NOSNIFF, the default SECURE_REFERRER_POLICY and
# SECURE_CROSS_ORIGIN_OPENER_POLICY, X_FRAME_OPTIONS): the lean planes answer without
# that middleware, so `respond` adds them itself.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


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
    """One complete response, with the platform's security headers; a client that
    went away is not an error."""
    given = {name for name, _ in headers}
    extra = [pair for pair in SECURITY_HEADERS if pair[0] not in given]
    with contextlib.suppress(OSError):
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, *extra, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def lifespan(receive, send, *, startup, shutdown) -> None:
    """ASGI lifespan for a lean plane: its startup and shutdown coroutines, in turn."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
