"""Sealed segments after the fact: indexing what the ingest processes sealed but did
not get to record (a crash between the seal and the flush), compacting them to Parquet,
and retention.

The segment contract (README "## Data"): a Segment row says records first_seq..last_seq
of a stream are in `path` (JSON Lines, one `{"seq","t","k","r"}` per line) whose sha256
is `sha256`; once compacted, the same records are in `parquet_path` (columns seq,
ingested_at, key, record: the record's JSON text) whose sha256 is `parquet_sha256`.
`read_segment` and `read_range` are the reader API."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
import hashlib
import io

from django.conf import settings
from django.db import transaction
from django.utils import timezone
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.archive import SEALED_SUFFIX, LocalArchiveStore, SealedSegment, read_records, stream_segments
from data.models import Segment, Stream
from mlplatform.audit import audit_record
from mlplatform.errors import InvalidState
from mlplatform.models import User

PARQUET_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("ingested_at", pa.timestamp("ms", tz="UTC")),
        ("key", pa.string()),
        ("record", pa.string()),
    ]
)

# Callables that say whether a segment must be kept (a dataset version references it):
# the datasets side registers one; retention never deletes a segment any of them keeps.
RETENTION_GUARDS: list[Callable[[Segment], bool]] = []


def store() -> LocalArchiveStore:
    return LocalArchiveStore(settings.DATA_ARCHIVE_DIR)


def stream_key(stream: Stream) -> str:
    return f"{stream.project.slug}/{stream.slug}"


# --- reading -----------------------------------------------------------------------------


class SegmentCorrupt(InvalidState):
    pass


def read_segment(segment: Segment, *, verify: bool = True) -> list[dict]:
    """A sealed segment's lines `{"seq", "t", "k", "r"}`, checked against its sha256."""
    data = store().read(segment.path)
    if verify and hashlib.sha256(data).hexdigest() != segment.sha256:
        raise SegmentCorrupt(f"Segment {segment.path} does not match its sha256.")
    return [orjson.loads(line) for line in data.splitlines()]


def read_range(stream: Stream, first_seq: int, last_seq: int) -> Iterator[dict]:
    """Records first_seq..last_seq of a stream in order (sealed segments checked against
    their sha256; the open segment's durable lines after them)."""
    sealed = Segment.objects.filter(stream=stream, last_seq__gte=first_seq, first_seq__lte=last_seq)
    covered = -1
    for segment in sealed.order_by("first_seq"):
        for line in read_segment(segment):
            if first_seq <= line["seq"] <= last_seq:
                yield line
        covered = segment.last_seq
    if covered >= last_seq:
        return
    archive = store()
    for rel in stream_segments(archive, stream_key(stream)):
        if rel.endswith(SEALED_SUFFIX):
            continue
        for line in read_records(archive, rel):
            if max(first_seq, covered + 1) <= line["seq"] <= last_seq:
                yield line


# --- indexing ------------------------------------------------------------------------------


def segments_index_missing(*, stream: Stream) -> int:
    """Segment rows for sealed segments on disk that have none (their manifests say
    all); returns how many were added."""
    from data.source import segment_index

    archive = store()
    known = set(Segment.objects.filter(stream=stream).values_list("first_seq", flat=True))
    missing = []
    for rel in archive.list(stream_key(stream), "dt=*/hr=*/*.json"):
        manifest = orjson.loads(archive.read(rel))
        if manifest["first_seq"] not in known and archive.local_path(manifest["path"]).exists():
            fields = {k: manifest[k] for k in SealedSegment.__dataclass_fields__ if k in manifest}
            missing.append((stream.pk, SealedSegment(stream_key=stream_key(stream), **fields)))
    if missing:
        segment_index(missing)
    return len(missing)


# --- compaction ----------------------------------------------------------------------------


def segment_compact(*, segment: Segment) -> Segment:
    """Writes the segment's records as Parquet beside it (atomically) and records the
    file's sha256. Idempotent: a compacted segment is left as it is."""
    if segment.compacted_at is not None:
        return segment
    data = store().read(segment.path)
    if hashlib.sha256(data).hexdigest() != segment.sha256:
        raise SegmentCorrupt(f"Segment {segment.path} does not match its sha256.")
    table = _columns_fast(data)
    if table is None:  # lines not in the archive's own shape: parse each one
        lines = [orjson.loads(line) for line in data.splitlines()]
        table = pa.table(
            {
                "seq": [line["seq"] for line in lines],
                "ingested_at": [datetime.fromtimestamp(line["t"] / 1000, tz=UTC) for line in lines],
                "key": [line["k"] for line in lines],
                "record": [orjson.dumps(line["r"]).decode() for line in lines],
            },
            schema=PARQUET_SCHEMA,
        )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    rel = segment.path[: -len(SEALED_SUFFIX)] + ".parquet"
    store().write_atomic(rel, [data])
    segment.parquet_path = rel
    segment.parquet_sha256 = hashlib.sha256(data).hexdigest()
    segment.parquet_bytes = len(data)
    segment.compacted_at = timezone.now()
    segment.save(update_fields=["parquet_path", "parquet_sha256", "parquet_bytes", "compacted_at"])
    return segment


# A line as StreamLog writes it: {"seq":N,"t":MS,"k":"<key, JSON-escaped>","r":<record>}
_LINE_HEAD = r'^\{"seq":(?P<seq>\d+),"t":(?P<t>\d+),"k":"(?P<k>(?:[^"\\]|\\.)*)","r":'


def _columns_fast(data: bytes) -> pa.Table | None:
    """The Parquet columns straight from the segment's bytes: each line's head matched
    in C++ (pyarrow's RE2) and its record's JSON text cut out as written (StreamLog
    writes records with orjson, so that is what re-encoding would give), instead of
    parsing and re-encoding every record in Python. None when a line has another shape
    or a key holds an escape: the caller parses those lines one by one."""
    if not data.endswith(b"\n") or len(data) >= 2**31:
        return None
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
    starts = np.concatenate([[0], ends[:-1]])
    offsets = np.concatenate([[0], ends]).astype(np.int32)
    lines = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    head = pc.extract_regex(lines, _LINE_HEAD)
    if head.null_count:
        return None
    seq, ms, key = head.field("seq"), head.field("t"), head.field("k")
    if pc.any(pc.match_substring(key, "\\")).as_py():
        return None
    # {"seq": + seq + ,"t": + t + ,"k":" + key + ","r": is 24 bytes besides the three values
    length = [pc.binary_length(column).to_numpy(zero_copy_only=False) for column in (seq, ms, key)]
    first = starts + 24 + length[0] + length[1] + length[2]
    last = ends - 2  # the line's closing brace and newline
    view = memoryview(data)
    records = b"".join([view[a:b] for a, b in zip(first.tolist(), last.tolist(), strict=True)])
    record_offsets = np.concatenate([[0], np.cumsum(last - first)]).astype(np.int32)
    record = pa.StringArray.from_buffers(len(ends), pa.py_buffer(record_offsets), pa.py_buffer(records))
    return pa.table(
        {
            "seq": seq.cast(pa.int64()),
            "ingested_at": ms.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "key": key,
            "record": record,
        },
        schema=PARQUET_SCHEMA,
    )


def segments_compact_pending(*, limit: int = 100) -> int:
    """Indexes segments sealed without a row, then compacts what is not compacted yet."""
    for stream in Stream.objects.select_related("project"):
        segments_index_missing(stream=stream)
    pending = Segment.objects.filter(compacted_at__isnull=True).order_by("sealed_at")[:limit]
    done = 0
    for segment in pending:
        segment_compact(segment=segment)
        done += 1
    return done


# --- retention -------------------------------------------------------------------------------


def retention_candidates(*, stream: Stream, now: datetime | None = None) -> tuple[list[Segment], list[Segment]]:
    """Sealed segments past the stream's retention: (would go, kept because a dataset
    version references them). Nothing for a stream that keeps its archive forever."""
    if not stream.retention_days:
        return [], []
    cutoff = (now or timezone.now()) - timedelta(days=stream.retention_days)
    # The newest sealed segment always stays: its manifest is where the archive takes
    # the next sequence number from when no segment is open.
    newest = Segment.objects.filter(stream=stream).order_by("-first_seq").values_list("pk", flat=True).first()
    old = list(Segment.objects.filter(stream=stream, last_at__lt=cutoff).exclude(pk=newest).order_by("first_seq"))
    kept = [s for s in old if any(guard(s) for guard in RETENTION_GUARDS)]
    return [s for s in old if s not in kept], kept


@transaction.atomic
def stream_retention_apply(*, stream: Stream, actor: User | None, dry_run: bool = True) -> dict:
    """Deletes (or, dry, lists) the sealed segments past retention; files go after the
    rows, once the transaction commits."""
    going, kept = retention_candidates(stream=stream)
    report = {
        "stream": stream_key(stream),
        "dry_run": dry_run,
        "delete": [
            {"path": s.path, "first_seq": s.first_seq, "last_seq": s.last_seq, "records": s.records} for s in going
        ],
        "kept_referenced": [s.path for s in kept],
    }
    if dry_run or not going:
        return report
    files = [f for s in going for f in (s.path, s.path[: -len(SEALED_SUFFIX)] + ".json", s.parquet_path) if f]
    Segment.objects.filter(pk__in=[s.pk for s in going]).delete()
    audit_record(
        actor=actor,
        action="stream.retention",
        target=stream,
        project_id=stream.project_id,
        after={"deleted_segments": len(going), "records": sum(s.records for s in going)},
    )
    archive = store()
    transaction.on_commit(lambda: [archive.delete(f) for f in files])
    return report
