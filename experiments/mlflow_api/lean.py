"""The tracking plane: MLflow's JSON endpoints served without Django's request cycle.

A tracking client sends thousands of small requests (log-metric, log-batch, runs/get,
get-history, search). Through Django's ASGI handler each one pays for the middleware
stack, a new thread per request and the request signals, several times the cost of
the work itself. This ASGI app runs before Django (see mlplatform.asgi) and calls the
very same views (`endpoint`'s `view.lean`: same authentication, validation, services
and error shapes) on a small pool of long-lived threads.

It takes only what needs none of Django's middleware: requests that authenticate with
an Authorization header (tokens, basic auth) to a JSON endpoint. Browser sessions
(cookies and CSRF), artifact streams and anything it does not recognise go on to
Django unchanged."""

from concurrent.futures import ThreadPoolExecutor
import functools
import logging
import os

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve

from experiments.mlflow_api.common import MAX_JSON_BODY, error_response
from mlplatform import lean_http

logger = logging.getLogger(__name__)

PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/")


class LeanRequest:
    """What `endpoint` views read of a request: method, query, headers, body."""

    __slots__ = ("method", "GET", "META", "body", "path")

    def __init__(self, scope: dict, body: bytes, authorization: str) -> None:
        self.method = scope["method"]
        self.path = scope["path"]
        self.GET = QueryDict(scope.get("query_string", b"").decode("latin-1"))
        self.META = {
            "HTTP_AUTHORIZATION": authorization,
            "CONTENT_LENGTH": str(len(body)),
            "REQUEST_METHOD": self.method,
            # The sign-in throttle counts failures per client address.
            "REMOTE_ADDR": (scope.get("client") or ("",))[0],
        }
        self.body = body


@functools.lru_cache(maxsize=2048)
def _route(path: str):
    """The lean callable and URL kwargs for a path, or None to leave it to Django."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    lean = getattr(match.func, "lean", None)
    if lean is None:
        return None
    return lean, tuple(match.kwargs.items())


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows in DEBUG
    return hosts


def _host_ok(scope: dict) -> bool:
    host = lean_http.header(scope, b"host") or ""
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, _allowed_hosts())


class TrackingPlane:
    def __init__(self, fallback, threads: int | None = None) -> None:
        self.fallback = fallback
        # SQLite takes one writer at a time, so more threads would only queue on its
        # lock: one thread there. PostgreSQL gets a few.
        default = 1 if connection.vendor == "sqlite" else 4
        threads = threads or int(os.environ.get("MLP_TRACKING_THREADS", default))
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlp-tracking")

    def wants(self, scope: dict) -> bool:
        return scope["path"].startswith(PREFIXES)

    async def __call__(self, scope: dict, receive, send) -> None:
        authorization = lean_http.header(scope, b"authorization")
        route = _route(scope["path"]) if authorization else None
        if route is None:
            await self.fallback(scope, receive, send)
            return
        if not _host_ok(scope):
            await self._send(send, error_response("BAD_REQUEST", "Invalid Host header.", 400))
            return
        try:
            body = await lean_http.read_body(scope, receive, MAX_JSON_BODY)
        except lean_http.BodyTooLarge:
            await self._send(send, error_response("INVALID_PARAMETER_VALUE", "Request body too large.", 400))
            return
        except lean_http.ClientDisconnected:
            return
        lean, kwargs = route
        request = LeanRequest(scope, body, authorization)
        run = functools.partial(_handle, lean, request, dict(kwargs))
        # sync_to_async, not a bare run_in_executor: it tells the thread which loop is the
        # server's, so the live-update events a call publishes (async_to_sync) go out on
        # this loop: the in-memory channel layer's consumers only wake up there, and the
        # Redis layer keeps one connection pool instead of one per publish.
        response = await sync_to_async(run, thread_sensitive=False, executor=self.executor)()
        await self._send(send, response)

    async def _send(self, send, response) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        await lean_http.respond(send, response.status_code, response.content, headers)


def _handle(lean, request: LeanRequest, kwargs: dict):
    """Runs on a tracking thread, bracketed like a Django request, except that the
    thread keeps its database connection from one request to the next: taking one
    from the pool (or opening one) and handing it back cost more than a tracking
    call's queries. A connection that saw an error, fails the health check or was
    left outside autocommit is dropped as Django drops it."""
    connection.close_if_health_check_failed()
    try:
        return lean(request, **kwargs)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response("INTERNAL_ERROR", "The server failed to handle this request.", 500)
    finally:
        connection.close_at = None  # no age limit: these threads live as long as the process
        connection.close_if_unusable_or_obsolete()
