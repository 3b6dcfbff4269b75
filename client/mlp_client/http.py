"""One HTTP session to the platform: auth, request ids, retries with backoff for
idempotent calls on 5xx, and server errors turned into one-line `MlpError`s."""

from collections.abc import Callable
import time
from typing import IO, Any
from urllib.parse import quote
import uuid

import httpx

from mlp_client import __version__
from mlp_client.errors import Failed, MlpError, NotFound, Refused, UsageError
from mlp_client.routes import ROUTES

IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
RETRY_STATUSES = {500, 502, 503, 504}


class Http:
    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        headers = {"User-Agent": f"mlp-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def call(self, route: str, *, idempotent: bool | None = None, headers: dict | None = None, **kwargs: Any) -> Any:
        """Calls a named route (see routes.py); path parameters come as keyword
        arguments named as in the path, the rest go to httpx. Returns decoded JSON (or
        text for other content)."""
        return decode(self.send(route, idempotent=idempotent, headers=headers, **kwargs))

    def send(self, route: str, *, idempotent: bool | None = None, headers: dict | None = None, **kwargs: Any):
        """As `call`, but returns the response (for its status and headers)."""
        method, path = self._path(route, kwargs)
        return self.request(method, path, idempotent=idempotent, headers=headers, **kwargs)

    def download(
        self, route: str, out: IO[bytes], *, on_chunk: Callable[[int], None] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """GETs a named route streaming its body into `out` chunk by chunk (retried on
        5xx or a timeout before the first byte, like any GET). Returns the response."""
        method, path = self._path(route, kwargs)
        written = 0
        for attempt in range(self.retries + 1):
            request_id = uuid.uuid4().hex
            try:
                with self._client.stream(method, path, headers={"X-Request-ID": request_id}, **kwargs) as response:
                    request_id = response.headers.get("x-request-id", request_id)
                    if response.status_code < 400:
                        for chunk in response.iter_bytes(64 * 1024):
                            out.write(chunk)
                            written += len(chunk)
                            if on_chunk:
                                on_chunk(len(chunk))
                        return response
                    response.read()
                    error = _error(response, request_id)
            except httpx.TimeoutException as exc:
                error = Failed(f"{self.url} did not answer in time ({type(exc).__name__}).")
            except httpx.TransportError as exc:
                if written:
                    raise Failed(f"The download from {self.url} broke off after {written:,} bytes: {_reason(exc)}.")
                raise Failed(f"Cannot reach {self.url}: {_reason(exc)}.") from exc
            if written or (error.status not in RETRY_STATUSES and error.status is not None):
                raise error  # (a body half written is not retried into the same file)
            if attempt < self.retries:
                self._sleep(min(self.backoff * 2**attempt, 10.0))
        if self.retries:
            error.message += f" (after {self.retries + 1} attempts)"
        raise error

    @staticmethod
    def _path(route: str, kwargs: dict) -> tuple[str, str]:
        method, template = ROUTES[route]
        path_args = {k: quote(str(kwargs.pop(k)), safe="") for k in list(kwargs) if "{" + k + "}" in template}
        return method, template.format(**path_args)

    def request(
        self, method: str, path: str, *, idempotent: bool | None = None, headers: dict | None = None, **kwargs: Any
    ) -> httpx.Response:
        retry = method in IDEMPOTENT if idempotent is None else idempotent
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            request_id = uuid.uuid4().hex
            try:
                response = self._client.request(
                    method, path, headers={"X-Request-ID": request_id, **(headers or {})}, **kwargs
                )
            except httpx.TimeoutException as exc:
                error: MlpError = Failed(f"{self.url} did not answer in time ({type(exc).__name__}).")
            except httpx.TransportError as exc:
                raise Failed(f"Cannot reach {self.url}: {_reason(exc)}.") from exc
            else:
                request_id = response.headers.get("x-request-id", request_id)
                if response.status_code < 400:
                    return response
                error = _error(response, request_id)
                if response.status_code not in RETRY_STATUSES:
                    raise error
            if attempt + 1 < attempts:
                self._sleep(min(self.backoff * 2**attempt, 10.0))
        if attempts > 1:
            error.message += f" (after {attempts} attempts)"
        raise error


def decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if (
        "name or service not known" in lowered
        or "name resolution" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
    ):
        return "the host name does not resolve"
    if "connection refused" in lowered:
        return "connection refused"
    return text.splitlines()[0]


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:300] if response.text.strip() else response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return str(body["error"].get("message") or body["error"])
        if isinstance(body.get("error"), str):  # the lean planes (/ingest/, /serve/)
            return body["error"]
        if "message" in body:
            return str(body["message"])
        if "detail" in body:
            return str(body["detail"])
    return str(body)[:300]


def _error(response: httpx.Response, request_id: str) -> MlpError:
    status, message = response.status_code, _message(response)
    if status == 401:
        return Refused(
            f"The token was refused ({message}): token expired/revoked, run `mlp login`.",
            status=status,
            request_id=request_id,
        )
    if status in (403, 409):
        return Refused(message, status=status, request_id=request_id)
    if status == 404:
        return NotFound(message, status=status, request_id=request_id)
    if status in (400, 413, 422):
        return UsageError(message, status=status, request_id=request_id)
    if status >= 500:
        return Failed(f"The server failed with HTTP {status}: {message}", status=status, request_id=request_id)
    return Failed(f"HTTP {status}: {message}", status=status, request_id=request_id)
