"""Uploaded tables on disk: CSV, Parquet or JSON Lines in, one content-addressed Parquet
file out, converted batch by batch (never the whole file in memory).

    <DATASETS_DIR>/files/<sha[:2]>/<sha256>.parquet
    <DATASETS_DIR>/tmp/                               (conversions in progress)

A conversion that fails removes its temporary file: nothing half-written stays."""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import uuid

from django.conf import settings
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mlplatform.errors import ValidationFailed

FORMATS = ("csv", "parquet", "jsonl")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    path: str
    rows: int
    bytes: int
    schema: dict


def root() -> Path:
    return Path(settings.DATASETS_DIR)


def file_path(rel: str) -> Path:
    path = (root() / rel).resolve()
    if not path.is_relative_to(root().resolve()):
        raise ValueError(f"path outside the datasets directory: {rel}")
    return path


def detect_format(filename: str, declared: str = "") -> str:
    fmt = (declared or "").strip().lower() or SUFFIXES.get(Path(filename or "").suffix.lower(), "")
    if fmt not in FORMATS:
        raise ValidationFailed(
            f"Unknown file format; name the file .csv, .parquet or .jsonl, or send format={'|'.join(FORMATS)}."
        )
    return fmt


def schema_json(schema: pa.Schema) -> dict:
    """The schema for display (fields) and exactly (arrow: the IPC-serialised schema)."""
    fields = [{"name": f.name, "type": str(f.type)} for f in schema]
    return {"fields": fields, "arrow": base64.b64encode(schema.serialize().to_pybytes()).decode()}


def schema_from_json(data: dict) -> pa.Schema | None:
    raw = (data or {}).get("arrow")
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(raw))) if raw else None


def store_upload(src: Path, fmt: str) -> StoredFile:
    """Converts `src` to Parquet under a temporary name, hashes it and moves it to its
    content address. ValidationFailed (with the reader's reason) when the file is not a
    well-formed table of the format."""
    if src.stat().st_size == 0:
        raise ValidationFailed("The file is empty (0 bytes).")
    tmp_dir = root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}.parquet"
    try:
        rows, schema = _convert(src, fmt, tmp)
        if rows == 0:
            raise ValidationFailed("The file has a header but no rows.")
        sha = _sha256(tmp)
        rel = f"files/{sha[:2]}/{sha}.parquet"
        dest = file_path(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.replace(tmp, dest)
        return StoredFile(sha256=sha, path=rel, rows=rows, bytes=dest.stat().st_size, schema=schema_json(schema))
    finally:
        tmp.unlink(missing_ok=True)


def _convert(src: Path, fmt: str, dest: Path) -> tuple[int, pa.Schema]:
    try:
        reader = _open(src, fmt)
        _check_columns(reader.schema)
        return _write_parquet(reader.schema, iter(reader), dest)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise ValidationFailed(f"The {fmt.upper()} file could not be read: {_reason(exc)}") from exc


def _open(src: Path, fmt: str):
    if fmt == "csv":
        return pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES))
    if fmt == "jsonl":
        return pajson.open_json(src, read_options=pajson.ReadOptions(block_size=BLOCK_BYTES))
    return _ParquetReader(src)


class _ParquetReader:
    def __init__(self, src: Path) -> None:
        self.file = pq.ParquetFile(src)
        self.schema = self.file.schema_arrow

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self.file.iter_batches(batch_size=settings.DATASET_ROW_GROUP_ROWS)


def _check_columns(schema: pa.Schema) -> None:
    names = schema.names
    if not names:
        raise ValidationFailed("The file has no columns.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationFailed(f"Column names must be unique; repeated: {', '.join(dupes[:5])}.")
    if any(not n.strip() for n in names):
        raise ValidationFailed("Every column needs a name (the header has an empty one).")


def _write_parquet(schema: pa.Schema, batches: Iterator[pa.RecordBatch], dest: Path) -> tuple[int, pa.Schema]:
    """Writes row groups of DATASET_ROW_GROUP_ROWS rows: the profile and the readers
    stream over them."""
    group = settings.DATASET_ROW_GROUP_ROWS
    rows, pending, pending_rows = 0, [], 0
    with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= group:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=group)
                rows, pending, pending_rows = rows + pending_rows, [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=group)
            rows += pending_rows
    return rows, schema


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:300]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
