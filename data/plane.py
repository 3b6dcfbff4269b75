"""HTTP ingestion: `POST /ingest/<project>/<stream>`, a lean ASGI app outside Django's
request cycle (like /serve/): no sessions, no middleware, no ORM on the request path
but for the rare quarantine write and the one-time schema freeze (in a thread).

A request is answered 202 only once its records are fsync'd in the archive (the
stream's group commit: one fsync covers every request that arrived meanwhile). The
answer says how many records were accepted, how many were duplicates, how many went to
the quarantine and why, and where they are in the archive.

  401 no or wrong ingest token · 404 unknown stream · 405 not POST · 409 paused stream
  400 a body that does not parse (with its line) · 413 a body over the limit
  503 the archive (or the quarantine) could not be written: nothing acknowledged, retry

Stream specs (and the token hashes) are reloaded every `poll_interval` seconds by a
background thread, which also seals idle segments and flushes the counters."""

import asyncio
import logging
import threading
import time

import orjson

from data import parse
from data.archive import ArchiveUnavailable, Limits, LocalArchiveStore
from data.ingest import Ingestor, Source, StreamSpec, reasons_of
from mlplatform import lean_http
from mlplatform.tokens import hash_key

logger = logging.getLogger(__name__)

JSON = [(b"content-type", b"application/json")]
RELOAD_GAP = 0.5


def _reply(status: int, body: dict) -> tuple[int, bytes]:
    return status, orjson.dumps(body)


def _error(status: int, message: str, **extra) -> tuple[int, bytes]:
    return _reply(status, {"error": message, **extra})


class Ticker:
    """The background thread: reload specs, seal idle segments, flush counters."""

    def __init__(self, ingestor: Ingestor, interval: float) -> None:
        self.ingestor = ingestor
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="ingest-ticker", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        try:
            self.ingestor.tick()
        except Exception:
            logger.exception("the last flush of ingest counters failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.ingestor.refresh()
                self.ingestor.tick()
            except Exception:
                logger.exception("ingest refresh/flush failed; retrying")


class IngestApp:
    def __init__(
        self,
        *,
        source: Source,
        archive_dir,
        limits: Limits,
        max_body_bytes: int,
        poll_interval: float = 1.0,
        prefix: str = "/ingest",
    ) -> None:
        self.ingestor = Ingestor(source=source, store=LocalArchiveStore(archive_dir), limits=limits)
        self.ticker = Ticker(self.ingestor, poll_interval)
        self.max_body_bytes = max_body_bytes
        self.prefix = prefix.rstrip("/")
        self._started = False
        self._last_reload = 0.0

    async def startup(self) -> None:
        """Idempotent: the first request (or the ASGI lifespan) loads the streams."""
        if not self._started:
            await asyncio.to_thread(self.ingestor.refresh)
            self.ticker.start()
            self._started = True

    async def _reload_soon(self) -> None:
        """At most one reload per `RELOAD_GAP` seconds, however many bad requests come."""
        now = time.monotonic()
        if now - self._last_reload >= RELOAD_GAP:
            self._last_reload = now
            await asyncio.to_thread(self.ingestor.refresh)

    async def shutdown(self) -> None:
        if self._started:
            await asyncio.to_thread(self.ticker.stop)
            self._started = False

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await lean_http.lifespan(receive, send, startup=self.startup, shutdown=self.shutdown)
            return
        if scope["type"] != "http":
            return
        try:
            await self.startup()
            status, body = await self._handle(scope, receive)
        except lean_http.ClientDisconnected:
            return
        except Exception:
            logger.exception("ingest failed")
            status, body = _error(503, "Ingestion failed on the server; nothing was acknowledged. Retry.")
        await lean_http.respond(send, status, body, JSON)

    async def _handle(self, scope: dict, receive) -> tuple[int, bytes]:
        parts = scope["path"][len(self.prefix) :].strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            return _error(404, "Use POST /ingest/<project>/<stream>.")
        key = f"{parts[0]}/{parts[1]}"
        spec = self.ingestor.streams.get(key)
        denied = None if spec is None else _authorize(scope, spec)
        if spec is None or denied is not None:
            # A stream or token made a moment ago: reload now rather than at the next tick.
            await self._reload_soon()
            spec = self.ingestor.streams.get(key)
            denied = None if spec is None else _authorize(scope, spec)
        if spec is None:
            return _error(404, f"No stream {parts[1]!r} in project {parts[0]!r}.")
        if scope["method"] != "POST":
            return _error(405, "Use POST to send records.")
        if denied is not None:
            return denied
        if not spec.active:
            return _error(409, "This stream is paused; records are not taken until it is resumed.")
        try:
            raw = await lean_http.read_body(scope, receive, self.max_body_bytes)
        except lean_http.BodyTooLarge:
            return _error(413, f"The body is over the limit of {self.max_body_bytes} bytes; send smaller batches.")
        return await self._ingest(scope, spec, raw)

    async def _ingest(self, scope: dict, spec: StreamSpec, raw: bytes) -> tuple[int, bytes]:
        try:
            records = parse.parse(raw, lean_http.header(scope, b"content-type"))
        except parse.Malformed as exc:
            return _error(400, f"Malformed body: {exc}", line=exc.line)
        if not records:
            return _error(400, "The body holds no records.")
        ingestor = self.ingestor
        if spec.validator is None:
            await asyncio.to_thread(ingestor.ensure_schema, spec, records)
        batch = ingestor.prepare(spec, records, origin=b"http", message_id=lean_http.header(scope, b"x-message-id"))
        position = None
        accepted = duplicates = nbytes = 0
        if batch.records:
            try:
                result, nbytes = await self._append(spec, batch.records)
            except ArchiveUnavailable as exc:
                logger.warning("archive unavailable for %s: %s", spec.key, exc)
                return _error(503, "The archive cannot be written right now; nothing was acknowledged. Retry.")
            accepted, duplicates = result.accepted, result.duplicates
            position = {"segment": result.segment, "first_seq": result.first_seq, "last_seq": result.last_seq}
        if batch.quarantined:
            try:
                await asyncio.to_thread(
                    ingestor.source.quarantine,
                    stream_id=spec.id,
                    items=batch.quarantined,
                    received_ms=batch.received_ms,
                )
            except Exception:
                logger.exception("quarantine write failed for %s", spec.key)
                return _error(503, "The quarantine cannot be written right now; retry (accepted records dedup).")
        ingestor.count(
            spec, accepted=accepted, duplicates=duplicates, nbytes=nbytes, quarantined=len(batch.quarantined)
        )
        return _reply(
            202,
            {
                "accepted": accepted,
                "duplicates": duplicates,
                "quarantined": len(batch.quarantined),
                "reasons": reasons_of(batch.quarantined),
                "position": position,
            },
        )

    async def _append(self, spec: StreamSpec, records: list[tuple[bytes, str]]):
        """Appends and waits for the group commit's fsync (on the commit thread)."""
        loop = asyncio.get_running_loop()
        durable = loop.create_future()

        def done(exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, durable, exc)

        log = self.ingestor.log(spec)
        before = log.appended_bytes
        result = log.append(records, on_durable=done)
        nbytes = log.appended_bytes - before if result.accepted else 0
        error = await durable
        if error is not None:
            raise ArchiveUnavailable(str(error))
        return result, nbytes


def _settle(future: asyncio.Future, exc: BaseException | None) -> None:
    if not future.done():
        future.set_result(exc)


def _authorize(scope: dict, spec: StreamSpec) -> tuple[int, bytes] | None:
    header = lean_http.header(scope, b"authorization") or ""
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(401, "Send the stream's ingest token as 'Authorization: Bearer <token>'.")
    if hash_key(raw.strip()) not in spec.token_hashes:
        return _error(401, "This token may not write to this stream (wrong, revoked or another stream's).")
    return None


def build_app(**overrides) -> IngestApp:
    """The plane with the platform's settings and the database as its source."""
    from django.conf import settings

    from data.source import DatabaseSource

    options = {
        "source": DatabaseSource(),
        "archive_dir": settings.DATA_ARCHIVE_DIR,
        "limits": Limits(
            records=settings.INGEST_SEAL_RECORDS,
            bytes=settings.INGEST_SEAL_BYTES,
            seconds=settings.INGEST_SEAL_SECONDS,
            dedup_window=settings.INGEST_DEDUP_WINDOW,
        ),
        "max_body_bytes": settings.INGEST_MAX_BODY_BYTES,
        "poll_interval": settings.INGEST_POLL_INTERVAL,
    }
    options.update(overrides)
    return IngestApp(**options)
