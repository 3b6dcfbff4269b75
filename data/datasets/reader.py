"""Reading a version: its parts, in manifest order, as Arrow record batches of one
schema, with the projection and filter applied. Batches are bounded (a row group of an
uploaded file, a slice of a segment's lines), so nothing reads a whole version at once.

Rows of an archive segment are its records (`r`) plus `_seq` and `_ingested_at`; a
record that is not a JSON object becomes a `value` column."""

from collections.abc import Iterator
import io
from pathlib import Path
from typing import Any

from django.conf import settings
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from data.archive import LocalArchiveStore
from data.datasets import storage
from data.models import DataFile, DatasetVersion, Segment

SEGMENT_BATCH_LINES = 50_000
SEGMENT_BLOCK_BYTES = 16 * 1024 * 1024


class PartMissing(Exception):
    """A part of the manifest is gone (or its content changed): the version is broken."""


def archive_store() -> LocalArchiveStore:
    return LocalArchiveStore(Path(settings.DATA_ARCHIVE_DIR))


def part_path(part: dict[str, Any]) -> Path:
    if part["kind"] == "file":
        rel = DataFile.objects.filter(sha256=part["sha256"]).values_list("path", flat=True).first()
        path = storage.file_path(rel) if rel else None
    else:
        rel = Segment.objects.filter(sha256=part["sha256"]).values_list("path", flat=True).first()
        path = archive_store().local_path(rel) if rel else None
    if path is None or not path.is_file():
        raise PartMissing(f"{part['kind']} {part['sha256'][:12]} is no longer stored")
    return path


def missing_parts(manifest: dict[str, Any]) -> list[str]:
    missing = []
    for part in manifest["parts"]:
        try:
            part_path(part)
        except PartMissing as exc:
            missing.append(str(exc))
    return missing


# --- raw parts ---------------------------------------------------------------------------


def part_batches(part: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    path = part_path(part)
    start, stop = part["rows"]
    if part["kind"] == "file":
        yield from _file_batches(path, start, stop)
    else:
        yield from _segment_batches(path, start, stop)


def _file_batches(path: Path, start: int, stop: int) -> Iterator[pa.RecordBatch]:
    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=settings.DATASET_ROW_GROUP_ROWS):
        lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
        offset += batch.num_rows
        if hi > lo:
            yield batch.slice(lo, hi - lo)
        if offset >= stop:
            return


def _segment_batches(path: Path, start: int, stop: int) -> Iterator[pa.RecordBatch]:
    """Arrow's JSON reader parses the segment in blocks (C++, no Python object per
    record); a segment whose records change shape between blocks (a new key, a number
    turned text) goes on from that block with the per-record reader."""
    offset = 0
    try:
        reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=SEGMENT_BLOCK_BYTES))
        for batch in reader:
            lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
            if hi > lo:
                yield _flatten(batch.slice(lo, hi - lo))
            offset += batch.num_rows
            if offset >= stop:
                return
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError):
        pass
    yield from _python_segment_batches(path, max(start, offset), stop)


def _flatten(batch: pa.RecordBatch) -> pa.RecordBatch:
    records = batch.column("r")
    if pa.types.is_struct(records.type):
        names = [records.type.field(i).name for i in range(records.type.num_fields)]
        arrays = [records.field(i) for i in range(records.type.num_fields)]
        if records.null_count:  # a null record: every column null in that row
            arrays = [pc.if_else(records.is_valid(), a, pa.nulls(len(a), a.type)) for a in arrays]
    else:
        names, arrays = ["value"], [records]
    seq = batch.column("seq").cast(pa.int64())
    at = batch.column("t").cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.RecordBatch.from_arrays([*arrays, seq, at], names=[*names, "_seq", "_ingested_at"])


def _python_segment_batches(path: Path, start: int, stop: int) -> Iterator[pa.RecordBatch]:
    lines: list[bytes] = []
    with open(path, "rb") as handle:
        for index, line in enumerate(handle):
            if index >= stop:
                break
            if index >= start:
                lines.append(line)
            if len(lines) >= SEGMENT_BATCH_LINES:
                yield _records_batch(lines)
                lines = []
    if lines:
        yield _records_batch(lines)


def _records_batch(lines: list[bytes]) -> pa.RecordBatch:
    """Columns are the union of the records' keys, in first-seen order; a column whose
    values mix types (a number here, text there) is kept as text, not dropped."""
    rows, keys, seqs, times = [], {}, [], []
    for line in lines:
        item = orjson.loads(line)
        record = item["r"] if isinstance(item["r"], dict) else {"value": item["r"]}
        rows.append(record)
        keys.update(dict.fromkeys(record))
        seqs.append(item["seq"])
        times.append(item["t"])
    arrays, names = [], []
    for key in keys:
        values = [row.get(key) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays.append(pa.array([None if v is None else _text(v) for v in values], type=pa.string()))
        names.append(str(key))
    arrays += [pa.array(seqs, type=pa.int64()), pa.array(times, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))]
    return pa.RecordBatch.from_arrays(arrays, names=[*names, "_seq", "_ingested_at"])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


# --- a version ---------------------------------------------------------------------------


def raw_schema(manifest: dict[str, Any]) -> pa.Schema:
    """The parts' unified schema (before the projection). Files know theirs; segments
    are scanned (the profile stores the result, so this scan happens once)."""
    schemas = []
    for part in manifest["parts"]:
        if part["kind"] == "file":
            data = DataFile.objects.filter(sha256=part["sha256"]).values_list("schema", flat=True).first()
            schema = storage.schema_from_json(data or {})
            if schema is None:
                raise PartMissing(f"file {part['sha256'][:12]} is no longer stored")
            schemas.append(schema)
        else:
            schemas.extend(batch.schema for batch in part_batches(part))
    return pa.unify_schemas(schemas, promote_options="permissive")


def stored_raw_schema(version: DatasetVersion) -> pa.Schema:
    """The parts' schema before the projection: stored on the version once known
    (`schema.arrow`), else scanned."""
    return storage.schema_from_json(version.schema) or raw_schema(version.manifest)


def version_schema(version: DatasetVersion, raw: pa.Schema | None = None) -> pa.Schema:
    """The schema of what reading the version yields."""
    return project_schema(raw or stored_raw_schema(version), version.manifest.get("columns"))


def schema_record(raw: pa.Schema, columns: list[str] | None) -> dict:
    """What a version stores: the fields it yields (for display) and the raw schema."""
    return {**storage.schema_json(raw), "fields": storage.schema_json(project_schema(raw, columns))["fields"]}


def project_schema(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    if not columns:
        return schema
    return pa.schema([schema.field(name) for name in columns])


def iter_batches(version: DatasetVersion, raw: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
    """Every row of the version, as batches of version_schema(version, raw)."""
    raw = raw or stored_raw_schema(version)
    columns = version.manifest.get("columns")
    expression = filter_expression(version.manifest.get("filter") or [])
    for part in version.manifest["parts"]:
        for batch in part_batches(part):
            batch = _conform(batch, raw)
            if expression is not None:
                batch = _filter(batch, expression)
            yield batch.select(columns) if columns else batch


def _filter(batch: pa.RecordBatch, expression: pc.Expression) -> pa.RecordBatch:
    table = pa.Table.from_batches([batch]).filter(expression)
    return table.combine_chunks().to_batches()[0] if table.num_rows else batch.slice(0, 0)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with exactly `schema`'s columns: missing ones null, types promoted."""
    arrays = []
    for field in schema:
        if field.name in batch.schema.names:
            column = batch.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type, safe=False))
        else:
            arrays.append(pa.nulls(batch.num_rows, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _term(field: pc.Expression, op: str, value: Any) -> pc.Expression:
    if op == "==":
        return field == value
    if op == "!=":
        return field != value
    if op == "<":
        return field < value
    if op == "<=":
        return field <= value
    if op == ">":
        return field > value
    if op == ">=":
        return field >= value
    if op == "in":
        return field.isin(value)
    if op == "not in":
        return ~field.isin(value)
    return field.is_null() if op == "is null" else field.is_valid()


def filter_expression(clauses: list) -> pc.Expression | None:
    expression = None
    for clause in clauses:
        term = _term(pc.field(clause[0]), clause[1], clause[2] if len(clause) > 2 else None)
        expression = term if expression is None else expression & term
    return expression


# --- streamed downloads --------------------------------------------------------------------


class _Chunks(io.RawIOBase):
    """A write-only file that hands what was written to a generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def drain(self) -> Iterator[bytes]:
        if self.parts:
            chunk, self.parts = b"".join(self.parts), []
            yield chunk


def stream_parquet(version: DatasetVersion) -> Iterator[bytes]:
    raw = stored_raw_schema(version)
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, version_schema(version, raw), compression="zstd")
    for batch in iter_batches(version, raw):
        writer.write_batch(batch)
        yield from sink.drain()
    writer.close()
    yield from sink.drain()


def stream_csv(version: DatasetVersion) -> Iterator[bytes]:
    """The data as-is (a download for programs, so cells are not spreadsheet-neutralised:
    that would change the data the version's id stands for)."""
    raw = stored_raw_schema(version)
    sink = _Chunks()
    writer = pacsv.CSVWriter(sink, version_schema(version, raw))
    yield from sink.drain()
    for batch in iter_batches(version, raw):
        writer.write_batch(batch)
        yield from sink.drain()
    writer.close()
    yield from sink.drain()


def head(version: DatasetVersion, rows: int = 20) -> pa.Table:
    raw = stored_raw_schema(version)
    schema = version_schema(version, raw)
    batches, seen = [], 0
    for batch in iter_batches(version, raw):
        batches.append(batch.slice(0, rows - seen))
        seen += batches[-1].num_rows
        if seen >= rows:
            break
    return pa.Table.from_batches(batches, schema=schema)
