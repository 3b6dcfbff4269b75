"""The serving ASGI app: `/serve/<endpoint>/invocations`, `/feedback`, `/ping`.

Plain ASGI, no framework and no Django on the request path: parse, check the token,
validate against the signature, join a micro-batch, append one line to the prediction
log spool, answer. Every response carries `x-request-id` (the client's, if it sent a
sane one), the key for ground truth sent later to `/feedback`."""

import asyncio
import json
import logging
import re
import time
from typing import Any
import uuid

from deployments.serving import oip
from deployments.serving.config import ConfigSource, token_hash
from deployments.serving.errors import (
    EndpointNotFound,
    InvalidInput,
    ModelFailed,
    NotReady,
    PayloadTooLarge,
    ServingError,
    Unauthorized,
)
from deployments.serving.predlog import Spool
from deployments.serving.protocol import decode_json, parse_body, predictions_body
from deployments.serving.runtime import EndpointRuntime, RevisionRuntime, ServingState
from mlplatform import lean_http

logger = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_FEEDBACK_ITEMS = 1000
JSON = b"application/json"
SERVER_VERSION = "1"


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.ok = 0
        self.client_errors = 0
        self.server_errors = 0

    def count(self, status: int) -> None:
        self.requests += 1
        if status < 400:
            self.ok += 1
        elif status < 500:
            self.client_errors += 1
        else:
            self.server_errors += 1


class ServingApp:
    def __init__(
        self, *, source: ConfigSource, spool: Spool, poll_interval: float = 0.5, prefix: str = "/serve"
    ) -> None:
        self.state = ServingState(source)
        self.spool = spool
        self.poll_interval = poll_interval
        self.prefix = prefix.rstrip("/")
        self.stats = Stats()
        self._started: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    # -- lifecycle ----------------------------------------------------------------
    async def startup(self) -> None:
        """Idempotent: `runplatform` calls it at startup (mlplatform.asgi); a server
        without lifespan events calls it on the first request."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (a restarted server in the same process): batchers and
            # the poller belong to the old one, so start from a clean state.
            self._loop, self._started = loop, None
            self.state = ServingState(self.state.source)
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                self.spool.start()
                await self.state.refresh()
                self._poller = asyncio.create_task(self._poll())
                self._started.set_result(True)
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started = None
                raise
        await self._started

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await asyncio.to_thread(self.spool.stop)

    async def _poll(self) -> None:
        heartbeat = getattr(self.state.source, "heartbeat", None)
        last_beat = 0.0
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.state.refresh()
                if heartbeat is not None and time.monotonic() - last_beat >= 1:
                    last_beat = time.monotonic()
                    await asyncio.to_thread(heartbeat, self.status())
            except Exception:
                logger.exception("serving config refresh failed; keeping the last one")

    # -- ASGI ---------------------------------------------------------------------
    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await lean_http.lifespan(receive, send, startup=self.startup, shutdown=self.shutdown)
            return
        if scope["type"] != "http":
            return
        await self.startup()
        request_id = _request_id(scope)
        parts = scope["path"][len(self.prefix) :].strip("/").split("/")
        if parts == ["_status"]:
            await _respond(send, 200, json.dumps(self.status()).encode(), request_id)
            return
        if len(parts) >= 2 and parts[1] == "v2":
            await self._v2(scope, receive, send, parts[0], parts[2:], request_id)
            return
        if len(parts) != 2:
            await self._error(send, EndpointNotFound("No such endpoint."), request_id)
            return
        slug, action = parts
        endpoint = self.state.endpoints.get(slug)
        if endpoint is None:
            await self._error(send, EndpointNotFound(f"Endpoint {slug!r} does not exist."), request_id)
            return
        if action in {"ping", "health"} and scope["method"] == "GET":
            ready = endpoint.champion is not None
            await _respond(send, 200 if ready else 503, b"\n", request_id)
            return
        if scope["method"] != "POST" or action not in {"invocations", "feedback"}:
            await self._error(send, ServingError("Use POST /invocations or /feedback."), request_id, status=405)
            return
        if action == "invocations":
            await self._invocations(scope, receive, send, endpoint, request_id)
        else:
            await self._feedback(scope, receive, send, endpoint, request_id)

    # -- the Open Inference Protocol (KServe V2, REST) -------------------------------
    async def _v2(self, scope, receive, send, slug: str, rest: list[str], request_id: str) -> None:
        """`/serve/<endpoint>/v2[/health/live|ready][/models/<name>[/versions/<v>][/ready|/infer]]`;
        the model's name is the endpoint's, its versions the served revisions' ids."""
        method = scope["method"]

        async def fail(exc: ServingError, status: int | None = None) -> None:
            await _respond(send, status or exc.status, oip.error_body(exc.message), request_id)

        endpoint = self.state.endpoints.get(slug)
        if endpoint is None:
            await fail(EndpointNotFound(f"Endpoint {slug!r} does not exist."))
            return
        if rest and rest[0] == "models" and len(rest) >= 2:
            name, tail = rest[1], rest[2:]
            if name != slug:
                await fail(EndpointNotFound(f"Model {name!r} is not served here; this endpoint serves {slug!r}."))
                return
            pinned = None
            if tail[:1] == ["versions"] and len(tail) >= 2:
                served = {str(r.id): r for r in (endpoint.champion, endpoint.challenger) if r is not None}
                pinned = served.get(tail[1])
                if pinned is None:
                    await fail(
                        EndpointNotFound(f"Version {tail[1]!r} of {slug!r} is not served; served: {list(served)}.")
                    )
                    return
                tail = tail[2:]
            action = tail[0] if len(tail) == 1 else ("" if not tail else None)
            if action == "infer" and method == "POST":
                await self._score(scope, receive, send, endpoint, request_id, OIP, pinned=pinned)
                return
            if action in ("", "ready") and method == "GET":
                try:
                    _authorize(scope, endpoint)
                except ServingError as exc:
                    await fail(exc)
                    return
                revision = pinned or endpoint.champion
                if action == "ready":
                    ready = revision is not None
                    await _respond(
                        send, 200 if ready else 503, json.dumps({"name": slug, "ready": ready}).encode(), request_id
                    )
                elif revision is None:
                    await fail(NotReady("The endpoint has no ready revision yet."))
                else:
                    await _respond(send, 200, json.dumps(self._model_metadata(endpoint, revision)).encode(), request_id)
                return
            if action in ("", "ready", "infer"):
                await fail(ServingError("Use GET for metadata and readiness, POST for infer."), status=405)
                return
        elif method == "GET" and rest in ([], ["health", "live"], ["health", "ready"]):
            if not rest:
                body = {"name": "mlplatform", "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]}
                await _respond(send, 200, json.dumps(body).encode(), request_id)
            elif rest[1] == "live":
                await _respond(send, 200, b'{"live": true}', request_id)
            else:
                ready = endpoint.champion is not None
                await _respond(send, 200 if ready else 503, json.dumps({"ready": ready}).encode(), request_id)
            return
        await fail(EndpointNotFound(f"No such Open Inference Protocol path: /v2/{'/'.join(rest)}."))

    def _model_metadata(self, endpoint: EndpointRuntime, revision: RevisionRuntime) -> dict[str, Any]:
        model = revision.model
        return {
            "name": endpoint.spec.slug,
            "versions": [str(r.id) for r in (endpoint.champion, endpoint.challenger) if r is not None],
            "platform": f"mlflow-{model.flavor}",
            "inputs": oip.tensors_metadata(model.signature_inputs, "input-0"),
            "outputs": oip.tensors_metadata(model.signature_outputs, oip.DEFAULT_OUTPUT),
            "parameters": {"version": str(revision.id), "loader": model.loader},
        }

    # -- scoring (both protocols) -------------------------------------------------
    async def _invocations(self, scope, receive, send, endpoint: EndpointRuntime, request_id: str) -> None:
        await self._score(scope, receive, send, endpoint, request_id, MLFLOW)

    async def _score(
        self,
        scope,
        receive,
        send,
        endpoint: EndpointRuntime,
        request_id: str,
        wire: "Wire",
        pinned: RevisionRuntime | None = None,
    ) -> None:
        """One scoring request in either protocol: auth, parse, route (canary, shadow),
        validate, micro-batch, log, answer; `wire` is what differs between them."""
        started = time.perf_counter()
        revision, shadow = (pinned, None) if pinned is not None else endpoint.route()
        record: dict[str, Any] = {"k": "p", "e": endpoint.spec.id, "rid": request_id, "role": "champion"}
        parsed = prepared = None
        headers: list[tuple[bytes, bytes]] = []
        try:
            _authorize(scope, endpoint)
            body = await _read_body(scope, receive, endpoint.spec.max_body_bytes)
            parsed = wire.parse(body, scope)
            supplied = wire.request_id(parsed)
            if supplied and REQUEST_ID.match(supplied):
                request_id = record["rid"] = supplied
            if revision is None:
                raise NotReady("The endpoint has no ready revision yet.")
            if revision is endpoint.challenger:
                record["role"] = "challenger"
            if revision is endpoint.challenger and pinned is None:
                answer = await self._canary(endpoint, revision, parsed, record, started)
                if answer is not None:
                    revision, prepared, outputs = answer
                else:
                    revision = endpoint.champion
                    prepared, outputs = await self._run(revision, parsed)
                    record["role"] = "champion"
            else:
                prepared, outputs = await self._run(revision, parsed)
            body_out, headers = wire.answer(outputs, parsed, endpoint, revision, request_id)
            status = 200
        except ServingError as exc:
            status, body_out, outputs = exc.status, wire.error(exc), None
            record["err"] = exc.message[:500]
        self._log(record, revision, status, started, prepared, outputs, endpoint)
        await _respond(send, status, body_out, request_id, headers)
        if shadow is not None and parsed is not None and status == 200:
            self._spawn(self._shadow(endpoint, shadow, parsed, request_id))

    async def _run(self, revision: RevisionRuntime, parsed: Any) -> tuple[Any, Any]:
        prepared = revision.prepare(parsed)
        try:
            return prepared, await revision.predict(prepared)
        except ServingError:
            raise
        except Exception as exc:
            raise ModelFailed(f"Encountered an unexpected error while evaluating the model: {exc!r}")

    async def _canary(self, endpoint, challenger, parsed, record, started):
        """The challenger answers; if it fails, the champion answers instead and the
        challenger's failure is logged for the rollback policy."""
        try:
            prepared, outputs = await self._run(challenger, parsed)
            return challenger, prepared, outputs
        except ServingError as exc:
            if endpoint.champion is None:
                raise
            failed = {**record, "err": exc.message[:500]}
            self._log(failed, challenger, exc.status, started, None, None, endpoint)
            return None

    async def _shadow(self, endpoint: EndpointRuntime, revision: RevisionRuntime, parsed: Any, request_id: str) -> None:
        started = time.perf_counter()
        record: dict[str, Any] = {"k": "p", "e": endpoint.spec.id, "rid": request_id, "role": "shadow"}
        prepared = outputs = None
        try:
            prepared, outputs = await self._run(revision, parsed)
            status = 200
        except ServingError as exc:
            status = exc.status
            record["err"] = exc.message[:500]
        self._log(record, revision, status, started, prepared, outputs, endpoint, count=False)

    def _log(self, record, revision, status, started, prepared, outputs, endpoint, count: bool = True) -> None:
        if count:
            self.stats.count(status)
        record["t"] = time.time()
        record["ms"] = round((time.perf_counter() - started) * 1000, 3)
        record["s"] = status
        record["r"] = revision.id if revision is not None else None
        payload = None
        if prepared is not None:
            record["n"] = len(prepared)
            sample = endpoint.spec.payload_sample
            if sample >= 1 or _sampled(sample):
                payload = {"in": revision.loggable(prepared), "out": outputs}
        self.spool.append(record, payload)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- feedback -----------------------------------------------------------------
    async def _feedback(self, scope, receive, send, endpoint: EndpointRuntime, request_id: str) -> None:
        try:
            _authorize(scope, endpoint)
            body = await _read_body(scope, receive, endpoint.spec.max_body_bytes)
            items = _feedback_items(decode_json(body))
        except ServingError as exc:
            self.stats.count(exc.status)
            await self._error(send, exc, request_id)
            return
        now = time.time()
        for item in items:
            self.spool.append(
                {"k": "f", "e": endpoint.spec.id, "rid": item["request_id"], "actual": item["actual"], "t": now}
            )
        self.stats.count(202)
        await _respond(send, 202, json.dumps({"accepted": len(items)}).encode(), request_id)

    async def _error(self, send, exc: ServingError, request_id: str, status: int | None = None) -> None:
        await _respond(send, status or exc.status, exc.body(), request_id)

    def status(self) -> dict[str, Any]:
        return {
            "config_version": self.state.version,
            "endpoints": {
                slug: {
                    "champion": e.champion.id if e.champion else None,
                    "challenger": e.challenger.id if e.challenger else None,
                    "mode": e.spec.mode,
                    "traffic": e.spec.traffic,
                }
                for slug, e in self.state.endpoints.items()
            },
            "failed_revisions": self.state.failed,
            "requests": self.stats.requests,
            "client_errors": self.stats.client_errors,
            "server_errors": self.stats.server_errors,
            "log": {"appended": self.spool.appended, "flushed": self.spool.flushed, "dropped": self.spool.dropped},
        }


def _sampled(share: float) -> bool:
    import random

    return random.random() < share  # noqa: S311 - sampling, not crypto


def _feedback_items(payload: Any) -> list[dict[str, Any]]:
    items = payload.get("feedback") if isinstance(payload, dict) and "feedback" in payload else [payload]
    if not isinstance(items, list) or not 0 < len(items) <= MAX_FEEDBACK_ITEMS:
        raise InvalidInput(
            f"Send {{'request_id', 'actual'}} or {{'feedback': [...]}} with 1-{MAX_FEEDBACK_ITEMS} items."
        )
    for item in items:
        if not isinstance(item, dict) or "actual" not in item or not isinstance(item.get("request_id"), str):
            raise InvalidInput("Each feedback item needs a 'request_id' (string) and an 'actual' value.")
        if not REQUEST_ID.match(item["request_id"]):
            raise InvalidInput("A request id is 1-64 letters, digits, '.', '_' or '-'.")
    return [{"request_id": i["request_id"], "actual": i["actual"]} for i in items]


_header = lean_http.header


def _request_id(scope: dict) -> str:
    supplied = _header(scope, b"x-request-id")
    if supplied and REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def _authorize(scope: dict, endpoint: EndpointRuntime) -> None:
    if endpoint.spec.public:
        return
    header = _header(scope, b"authorization") or ""
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or token_hash(raw.strip()) not in endpoint.spec.token_hashes:
        raise Unauthorized("A valid endpoint token is required: 'Authorization: Bearer <token>'.")


async def _read_body(scope: dict, receive, limit: int) -> bytes:
    try:
        return await lean_http.read_body(scope, receive, limit)
    except lean_http.BodyTooLarge:
        raise PayloadTooLarge(f"The request body is larger than this endpoint's limit of {limit} bytes.") from None
    except lean_http.ClientDisconnected:
        raise InvalidInput("The client disconnected before sending the whole body.") from None


async def _respond(
    send, status: int, body: bytes, request_id: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """`headers` replace the JSON content type (the binary tensor extension's answers)."""
    await lean_http.respond(
        send, status, body, [*(headers or [(b"content-type", JSON)]), (b"x-request-id", request_id.encode())]
    )


class Wire:
    """What one scoring protocol parses and answers; the rest of a request is shared."""

    def parse(self, body: bytes, scope: dict) -> Any:
        raise NotImplementedError

    def request_id(self, parsed: Any) -> str | None:
        return None

    def answer(self, outputs, parsed, endpoint, revision, request_id) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        raise NotImplementedError

    def error(self, exc: ServingError) -> bytes:
        return exc.body()


class MlflowWire(Wire):
    def parse(self, body: bytes, scope: dict) -> Any:
        return parse_body(body, _header(scope, b"content-type"))

    def answer(self, outputs, parsed, endpoint, revision, request_id) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        return predictions_body(outputs), []


class OipWire(Wire):
    def parse(self, body: bytes, scope: dict) -> Any:
        return oip.parse_infer(body, _header(scope, oip.HEADER_LENGTH))

    def request_id(self, parsed: Any) -> str | None:
        return parsed.id

    def answer(self, outputs, parsed, endpoint, revision, request_id) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        return oip.infer_response(
            outputs,
            parsed,
            model_name=endpoint.spec.slug,
            model_version=str(revision.id),
            request_id=parsed.id if parsed.id is not None else request_id,
            output_names=revision.output_names,
        )

    def error(self, exc: ServingError) -> bytes:
        return oip.error_body(exc.message)


MLFLOW = MlflowWire()
OIP = OipWire()
