"""What HTTP and MQTT ingestion share: the streams a process knows (specs), one
StreamLog per stream, splitting a batch into records that fit the schema and records
for the quarantine, the dedup keys, and the counters the stats thread flushes.

No Django here; the Django side (where specs come from, where quarantined records and
inferred schemas go) is a `Source` (data.source.DatabaseSource in the platform)."""

from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import threading
import time
from typing import Any, Protocol

import orjson

from data import parse, schema
from data.archive import Limits, LocalArchiveStore, SealedSegment, StreamLog, dedup_key, dedup_keys

logger = logging.getLogger(__name__)
MAX_REASONS = 100
MESSAGE_ID_FIELD = parse.MESSAGE_ID_FIELD
ID_FIELDS = frozenset({MESSAGE_ID_FIELD})


@dataclass
class StreamSpec:
    id: int
    key: str  # "<project>/<stream>": the archive prefix and the URL
    active: bool = True
    schema: dict | None = None
    token_hashes: frozenset[str] = frozenset()
    mqtt_url: str = ""
    mqtt_topics: tuple[str, ...] = ()
    mqtt_username: str = ""
    mqtt_password: str = ""
    validator: Callable | None = field(default=None, repr=False, compare=False)
    # True for records the schema surely accepts (schema.quick_check), or None
    fits: Callable[[Any], bool] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.validator is None and self.schema is not None:
            self.validator = schema.compile_schema(self.schema)
            self.fits = schema.quick_check(self.schema)


@dataclass
class Quarantined:
    index: int
    reason: str
    payload: Any = None
    raw: str = ""


@dataclass
class Batch:
    records: list[tuple[bytes, str]]  # (record JSON, dedup key), for StreamLog.append
    quarantined: list[Quarantined]
    received_ms: int


class Source(Protocol):
    def load(self) -> dict[str, StreamSpec]: ...

    def freeze_schema(self, *, stream_id: int, schema: dict) -> dict: ...

    def quarantine(self, *, stream_id: int, items: list[Quarantined], received_ms: int) -> None: ...

    def flush(self, *, counters: dict[int, "Counters"], sealed: list[tuple[int, SealedSegment]]) -> None: ...


@dataclass
class Counters:
    records: int = 0
    bytes: int = 0
    duplicates: int = 0
    quarantined: int = 0
    last_ms: int = 0


class Ingestor:
    """Thread-safe: the HTTP plane's event loop and the MQTT threads share one."""

    def __init__(self, *, source: Source, store: LocalArchiveStore, limits: Limits) -> None:
        self.source = source
        self.store = store
        self.limits = limits
        self.streams: dict[str, StreamSpec] = {}
        self.by_id: dict[int, StreamSpec] = {}
        self._logs: dict[str, StreamLog] = {}
        self._lock = threading.Lock()
        self._counters: dict[int, Counters] = {}
        self._sealed: list[tuple[int, SealedSegment]] = []

    # -- configuration --------------------------------------------------------------
    def refresh(self) -> None:
        specs = self.source.load()
        with self._lock:
            for key, spec in specs.items():
                old = self.streams.get(key)
                if old is not None and old.schema == spec.schema:
                    spec.validator, spec.fits = old.validator, old.fits  # compiled once
            self.streams = specs
            self.by_id = {spec.id: spec for spec in specs.values()}

    def log(self, spec: StreamSpec) -> StreamLog:
        log = self._logs.get(spec.key)
        if log is None:
            with self._lock:
                log = self._logs.get(spec.key)
                if log is None:
                    log = StreamLog(self.store, spec.key, limits=self.limits, on_seal=self._sealer(spec.id))
                    self._logs[spec.key] = log
        return log

    def _sealer(self, stream_id: int) -> Callable[[SealedSegment], None]:
        def sealed(segment: SealedSegment) -> None:
            with self._lock:
                self._sealed.append((stream_id, segment))

        return sealed

    # -- a batch ----------------------------------------------------------------------
    def ensure_schema(self, spec: StreamSpec, records: list[Any]) -> None:
        """A stream without a schema gets one inferred from these records, frozen in the
        source (another process may have frozen one first: that one wins)."""
        if spec.validator is not None:
            return
        frozen = self.source.freeze_schema(stream_id=spec.id, schema=schema.infer(records, ignore=ID_FIELDS))
        spec.schema, spec.validator, spec.fits = frozen, schema.compile_schema(frozen), schema.quick_check(frozen)

    def prepare(self, spec: StreamSpec, records: list[Any], *, origin: bytes, message_id: str | None = None) -> Batch:
        """Splits records into those that fit (encoded, with their dedup key: the client
        message id, else a digest of origin + payload) and those for the quarantine.

        The hot path of both planes, so each step runs once per record and in bulk:
        the quick schema check (the compiled validator only for records it is unsure
        of), one orjson encoding, one digest."""
        bad: list[Quarantined] = []
        validator, fits = spec.validator, spec.fits
        if validator is not None and (fits is None or not all(map(fits, records))):
            kept = []
            for index, record in enumerate(records):
                reason = None if fits is not None and fits(record) else schema.check(validator, record)
                if reason is None:
                    kept.append(record)
                else:
                    bad.append(Quarantined(index=index, reason=reason, payload=record))
            records = kept
        encoded = list(map(orjson.dumps, records))
        single_id = message_id if len(records) == 1 and not bad else None
        if single_id is None and not any(MESSAGE_ID_FIELD in r for r in records if type(r) is dict):
            keys = dedup_keys(origin, encoded)
        else:
            keys = []
            for record, record_json in zip(records, encoded, strict=True):
                mid = parse.message_id(record) or single_id
                keys.append("m:" + mid if mid else dedup_key(origin, record_json))
        good = list(zip(encoded, keys, strict=True))
        return Batch(records=good, quarantined=bad, received_ms=int(time.time() * 1000))

    def count(self, spec: StreamSpec, *, accepted: int, duplicates: int, nbytes: int, quarantined: int) -> None:
        with self._lock:
            counters = self._counters.setdefault(spec.id, Counters())
            counters.records += accepted
            counters.bytes += nbytes
            counters.duplicates += duplicates
            counters.quarantined += quarantined
            if accepted or quarantined:
                counters.last_ms = int(time.time() * 1000)

    # -- background --------------------------------------------------------------------
    def tick(self) -> None:
        """Seals idle segments and hands counters and sealed segments to the source.
        Counters that could not be flushed are kept for the next tick."""
        for log in list(self._logs.values()):
            try:
                log.seal_if_due()
            except Exception as exc:  # an unwritable archive: the next append reports it
                logger.warning("sealing %s failed: %s", log.key, exc)
        with self._lock:
            counters, self._counters = self._counters, {}
            sealed, self._sealed = self._sealed, []
        if not counters and not sealed:
            return
        try:
            self.source.flush(counters=counters, sealed=sealed)
        except Exception:
            with self._lock:
                for stream_id, old in counters.items():
                    new = self._counters.setdefault(stream_id, Counters())
                    new.records += old.records
                    new.bytes += old.bytes
                    new.duplicates += old.duplicates
                    new.quarantined += old.quarantined
                    new.last_ms = max(new.last_ms, old.last_ms)
                self._sealed[:0] = sealed
            raise

    def close(self) -> None:
        for log in list(self._logs.values()):
            log.close()
        self._logs.clear()


def reasons_of(quarantined: list[Quarantined]) -> list[dict]:
    return [{"record": q.index, "reason": q.reason} for q in quarantined[:MAX_REASONS]]
