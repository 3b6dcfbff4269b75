"""The ingest processes' database side (data.ingest.Source): stream specs, inferred
schemas, the quarantine, and the once-a-second flush of counters and sealed segments.

These run in the ingest plane's worker threads and its stats thread, never on the
event loop."""

from datetime import UTC, datetime

from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.db.models import F

from data import secrets
from data.archive import SealedSegment
from data.ingest import Counters, Quarantined, StreamSpec
from data.models import IngestToken, QuarantinedRecord, Segment, Stream

RATE_BUCKET_SECONDS = 5
RATE_TTL_SECONDS = 3600


def fresh_connection() -> None:
    """Long-lived threads drop a connection past its age or broken, as Django does
    between requests; never one inside a transaction (a caller's, a test's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def rate_key(stream_id: int, bucket: int) -> str:
    return f"mlp:data:rate:{stream_id}:{bucket}"


def stream_spec(stream: Stream, token_hashes: frozenset[str]) -> StreamSpec:
    return StreamSpec(
        id=stream.pk,
        key=f"{stream.project.slug}/{stream.slug}",
        active=stream.status == "active",
        schema=stream.schema,
        token_hashes=token_hashes,
        mqtt_url=stream.mqtt_url,
        mqtt_topics=tuple(stream.mqtt_topics or ()),
        mqtt_username=stream.mqtt_username,
        mqtt_password=secrets.decrypt(stream.mqtt_password),
    )


class DatabaseSource:
    def load(self) -> dict[str, StreamSpec]:
        fresh_connection()
        hashes: dict[int, set[str]] = {}
        for stream_id, key_hash in IngestToken.objects.filter(revoked_at__isnull=True).values_list(
            "stream_id", "key_hash"
        ):
            hashes.setdefault(stream_id, set()).add(key_hash)
        specs = {}
        for stream in Stream.objects.select_related("project"):
            spec = stream_spec(stream, frozenset(hashes.get(stream.pk, ())))
            specs[spec.key] = spec
        return specs

    def freeze_schema(self, *, stream_id: int, schema: dict) -> dict:
        fresh_connection()
        Stream.objects.filter(pk=stream_id, schema__isnull=True).update(schema=schema, schema_inferred=True)
        return Stream.objects.filter(pk=stream_id).values_list("schema", flat=True).get()

    def quarantine(self, *, stream_id: int, items: list[Quarantined], received_ms: int) -> None:
        fresh_connection()
        at = datetime.fromtimestamp(received_ms / 1000, tz=UTC)
        QuarantinedRecord.objects.bulk_create(
            [
                QuarantinedRecord(stream_id=stream_id, payload=q.payload, raw=q.raw, reason=q.reason, received_at=at)
                for q in items
            ]
        )

    def flush(self, *, counters: dict[int, Counters], sealed: list[tuple[int, SealedSegment]]) -> None:
        fresh_connection()
        with transaction.atomic():
            for stream_id, c in sorted(counters.items()):
                changes = {
                    "records_total": F("records_total") + c.records,
                    "bytes_total": F("bytes_total") + c.bytes,
                    "duplicates_total": F("duplicates_total") + c.duplicates,
                    "quarantined_total": F("quarantined_total") + c.quarantined,
                }
                if c.last_ms:
                    changes["last_record_at"] = datetime.fromtimestamp(c.last_ms / 1000, tz=UTC)
                Stream.objects.filter(pk=stream_id).update(**changes)
            if sealed:
                segment_index(sealed)
        _count_rates(counters)


def segment_index(sealed: list[tuple[int, SealedSegment]]) -> None:
    """Segment rows for sealed segments; a segment indexed before (a retried flush, the
    recovery scan) is left as it is."""

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    Segment.objects.bulk_create(
        [
            Segment(
                stream_id=stream_id,
                first_seq=s.first_seq,
                last_seq=s.last_seq,
                records=s.records,
                bytes=s.bytes,
                path=s.path,
                sha256=s.sha256,
                first_at=at(s.first_at_ms),
                last_at=at(s.last_at_ms),
                sealed_at=at(s.sealed_at_ms),
            )
            for stream_id, s in sealed
        ],
        ignore_conflicts=True,
    )


def _count_rates(counters: dict[int, Counters]) -> None:
    """Records per 5-second bucket in the shared cache, for the rate chart."""
    bucket = int(datetime.now(tz=UTC).timestamp()) // RATE_BUCKET_SECONDS
    for stream_id, c in counters.items():
        if not c.records:
            continue
        key = rate_key(stream_id, bucket)
        if not cache.add(key, c.records, timeout=RATE_TTL_SECONDS):
            try:
                cache.incr(key, c.records)
            except ValueError:
                cache.set(key, c.records, timeout=RATE_TTL_SECONDS)
