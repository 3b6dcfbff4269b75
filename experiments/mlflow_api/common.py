"""Request plumbing shared by the MLflow-compatible endpoints: authentication (bearer
token, HTTP basic, or the browser session with CSRF), JSON in and out, and MLflow's
error shape `{"error_code", "message"}` with MLflow's status codes.

Plain Django views rather than DRF: these endpoints are the tracking hot path, and the
MLflow wire format is not ours to negotiate."""

from collections.abc import Callable
import copy
import functools
import hashlib
import json
import logging
import math
import threading
import time
from types import SimpleNamespace
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
import orjson
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import CSRFCheck

from mlplatform import jsondepth, tokens
from mlplatform.authentication import BearerTokenAuthentication, TokenOrPasswordBasicAuthentication
from mlplatform.errors import (
    AlreadyExists,
    ApplicationError,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from projects.models import Project
from projects.selectors import token_scope

logger = logging.getLogger(__name__)

MAX_JSON_BODY = 10 * 1024 * 1024


class MlflowError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def error_response(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error_code": code, "message": message}, status=status)


def _map_error(exc: ApplicationError) -> JsonResponse:
    if isinstance(exc, NotFound):
        return error_response("RESOURCE_DOES_NOT_EXIST", exc.message, 404)
    if isinstance(exc, AlreadyExists):
        return error_response("RESOURCE_ALREADY_EXISTS", exc.message, 400)
    if isinstance(exc, PermissionDenied):
        return error_response("PERMISSION_DENIED", exc.message, 403)
    if isinstance(exc, InvalidState):
        return error_response("INVALID_STATE", exc.message, 400)
    if isinstance(exc, ValidationFailed):
        return error_response("INVALID_PARAMETER_VALUE", exc.message, 400)
    return error_response("BAD_REQUEST", exc.message, exc.status_code)


# A tracking client sends thousands of requests with the same credentials; checking
# them (a query, or a deliberately slow password hash) on every one would dominate the
# hot path. A successful check is remembered for a few seconds, keyed by a hash of the
# header. A changed password stops working within AUTH_CACHE_SECONDS; a revoked token at
# once (any revocation bumps a shared count that each hit compares, see
# mlplatform.tokens) and an expired one at its expiry.
AUTH_CACHE_SECONDS = 10.0
_auth_cache: dict[str, tuple[float, int, Any]] = {}
_auth_lock = threading.Lock()


def _cached_user(header: str, address: str | None = None):
    key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()
    now = time.monotonic()
    # Read before checking: a revocation during the check leaves the entry stale at once.
    revocations = tokens.revocations_count()
    with _auth_lock:
        hit = _auth_cache.get(key)
    if hit is not None and hit[0] > now and hit[1] == revocations and not _token_expired(hit[2]):
        return _fresh_copy(hit[2])
    user = _check_header(header, address)
    with _auth_lock:
        if len(_auth_cache) > 10000:
            _auth_cache.clear()
        _auth_cache[key] = (now + AUTH_CACHE_SECONDS, revocations, user)
    return _fresh_copy(user)


def _token_expired(user) -> bool:
    token = getattr(user, "api_token", None)
    expires_at = getattr(token, "expires_at", None)
    return expires_at is not None and expires_at <= timezone.now()


def _fresh_copy(user):
    # Each request gets its own copy: selectors cache per-request roles on the object.
    clone = copy.copy(user)
    clone.__dict__ = {k: v for k, v in user.__dict__.items() if not k.startswith("_mlp_")}
    return clone


def _check_header(header: str, address: str | None = None):
    meta = {"HTTP_AUTHORIZATION": header, "REMOTE_ADDR": address}
    shim = SimpleNamespace(META=meta, headers={"authorization": header}, _request=None)
    for backend in (BearerTokenAuthentication(), TokenOrPasswordBasicAuthentication()):
        result = backend.authenticate(shim)
        if result is not None:
            return result[0]
    raise MlflowError("UNAUTHENTICATED", "Unsupported Authorization header.", 401)


def _authenticate(request: HttpRequest):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        return _cached_user(header, request.META.get("REMOTE_ADDR"))
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise MlflowError("UNAUTHENTICATED", "Authentication required: use a token or a password.", 401)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Session auth rides on cookies, so it must prove the page is ours.
        check = CSRFCheck(lambda r: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise MlflowError("PERMISSION_DENIED", f"CSRF failed: {reason}", 403)
    return user


def endpoint(*methods: str) -> Callable:
    """Wrap a view `fn(request, user, data, *args)`: authenticate, parse the request,
    map errors. Token and basic clients are exempt from CSRF; sessions are not.

    A JSON endpoint also carries `view.lean(request, **kwargs)`, the same call without
    Django's request cycle, which the tracking plane (mlflow_api.lean) serves to
    clients that authenticate with a header; `request` then needs only `method`,
    `GET`, `META` and `body`."""

    def wrap(fn: Callable) -> Callable:
        def call(request, *args, **kwargs) -> HttpResponseBase:
            if request.method not in methods:
                return error_response("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed here.", 405)
            try:
                user = _authenticate(request)
                data = RequestData(request) if fn.__dict__.get("parse", True) else None
                result = fn(request, user, data, *args, **kwargs)
            except MlflowError as exc:
                return error_response(exc.code, exc.message, exc.status)
            except drf_exceptions.AuthenticationFailed as exc:
                return error_response("UNAUTHENTICATED", str(exc.detail), 401)
            except drf_exceptions.Throttled as exc:  # a password sign-in locked out
                response = error_response("REQUEST_LIMIT_EXCEEDED", str(exc.detail), 429)
                response["Retry-After"] = str(exc.wait)
                return response
            except ApplicationError as exc:
                return _map_error(exc)
            if isinstance(result, HttpResponseBase):
                return result
            return json_response(result if result is not None else {})

        view = csrf_exempt(functools.wraps(fn)(call))
        if fn.__dict__.get("parse", True):
            view.lean = call
        return view

    return wrap


def raw_body(fn: Callable) -> Callable:
    """Mark a view whose body is not JSON (artifact uploads stream it instead)."""
    fn.parse = False
    return fn


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value)}")


def json_response(payload: dict) -> HttpResponse:
    return HttpResponse(json.dumps(payload, default=_json_default, allow_nan=False), content_type="application/json")


def float_out(value: float, is_nan: bool = False) -> float | str:
    """Protobuf's JSON spelling of non-finite doubles, which the MLflow client parses."""
    if is_nan or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _parse_json(raw: bytes) -> Any:
    """orjson reads a log-batch of a thousand metrics in a quarter of json's time, but
    takes strict JSON only; Python's json also reads the NaN and Infinity tokens and the
    integers past 64 bits some clients send, so anything orjson refuses goes to it.
    A lone surrogate escape (\\ud800), which json reads but no database can store, is
    refused as malformed, and so is a body nested deeper than mlplatform.jsondepth allows
    (json would recurse into a RecursionError)."""
    try:
        jsondepth.check(raw)
    except jsondepth.TooDeep as exc:
        raise MlflowError("MALFORMED_REQUEST", f"Malformed JSON body: {exc}", 400) from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(raw)
            json.dumps(data, ensure_ascii=False).encode("utf-8")
            return data
        except UnicodeEncodeError:
            raise MlflowError("MALFORMED_REQUEST", "Malformed JSON body: a string holds a lone surrogate.", 400)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MlflowError("MALFORMED_REQUEST", f"Malformed JSON body: {exc}", 400)


class RequestData:
    """MLflow's GET endpoints take query parameters, the others a JSON body."""

    def __init__(self, request: HttpRequest) -> None:
        self.query = request.GET
        self.body: dict = {}
        if request.method != "GET":
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > MAX_JSON_BODY:
                raise MlflowError("INVALID_PARAMETER_VALUE", "Request body too large.", 400)
            raw = request.body if length else b""
            if raw.strip():
                self.body = _parse_json(raw)
                if not isinstance(self.body, dict):
                    raise MlflowError("MALFORMED_REQUEST", "The JSON body must be an object.", 400)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.body:
            return self.body[key]
        return self.query.get(key, default)

    def list(self, key: str) -> list:
        if key in self.body:
            value = self.body[key]
            return value if isinstance(value, list) else [value]
        return self.query.getlist(key)

    def require(self, key: str, *aliases: str) -> Any:
        for name in (key, *aliases):
            value = self.get(name)
            if value not in (None, ""):
                return value
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{key}'.", 400)

    def string(self, key: str, *aliases: str, required: bool = True) -> str:
        value = self.require(key, *aliases) if required else self.get(key, "")
        if value is None:
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Invalid value for parameter '{key}': expected a string.", 400
            )
        return str(value)

    def run_id(self) -> str:
        return self.string("run_id", "run_uuid")


def default_project_id(user) -> int | None:
    """The project plain names resolve to, cached per request (see README)."""
    cache = user.__dict__
    if "_mlp_default_project" not in cache:
        scope = token_scope(user)
        if scope is None:
            scope = Project.objects.filter(owner=user, is_personal=True).values_list("pk", flat=True).first()
        cache["_mlp_default_project"] = scope
    return cache["_mlp_default_project"]


def display_name(user, project: Project, name: str) -> str:
    """Names in the caller's default project read plainly; others carry their project."""
    return name if project.pk == default_project_id(user) else f"{project.slug}/{name}"
