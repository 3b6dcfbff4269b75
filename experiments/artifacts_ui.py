"""Browsing a run's artifacts for people: listing, safe downloads and small previews.

Paths are user input: every one goes through the artifact store, which confines it to
the run's root. Downloads are served as attachments with a fixed, harmless content
type, except raster images (shown inline in previews); an uploaded HTML or SVG file
is never rendered by the browser as a page of ours."""

from collections.abc import AsyncIterator
import csv
from dataclasses import dataclass, field
import io
import json
import mimetypes
import os
from pathlib import PurePosixPath
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from experiments.artifacts import CHUNK_SIZE, FileInfo, clean_relative_path, get_store, run_root
from experiments.models import Run
from mlplatform.errors import NotFound

PREVIEW_BYTES = 256 * 1024
PREVIEW_ROWS = 50
TEXT_SUFFIXES = {
    ".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".sh", ".r", ".sql", ".html", ".xml",
    ".svg",
}  # fmt: skip
TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "Dockerfile", "LICENSE"}
INLINE_IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def artifact_list(*, run: Run, path: str = "") -> list[FileInfo]:
    """Entries of one directory of the run's artifacts (the caller checked access)."""
    return get_store().list(run_root(run), path)


def preview_kind(path: str) -> str:
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in INLINE_IMAGES:
        return "image"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv"):
        return "table"
    if suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES:
        return "text"
    return "none"


@dataclass
class Preview:
    path: str
    kind: str  # image | json | table | text | none
    size: int = 0
    text: str = ""
    truncated: bool = False
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _read_head(run: Run, path: str) -> tuple[bytes, bool]:
    with get_store().open(run_root(run), path) as handle:
        data = handle.read(PREVIEW_BYTES + 1)
    return data[:PREVIEW_BYTES], len(data) > PREVIEW_BYTES


def artifact_preview(*, run: Run, path: str) -> Preview:
    """A bounded preview: at most PREVIEW_BYTES are read whatever the file's size."""
    path = clean_relative_path(path)
    kind = preview_kind(path)
    preview = Preview(path=path, kind=kind)
    if kind in ("none", "image"):
        get_store().open(run_root(run), path).close()  # NotFound for a missing file
        return preview
    data, preview.truncated = _read_head(run, path)
    text = data.decode("utf-8", errors="replace")
    if kind == "json" and not preview.truncated:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            preview.kind = "text"
    if kind == "table":
        _fill_table(preview, text, delimiter="\t" if path.lower().endswith(".tsv") else ",")
    preview.text = text
    return preview


def _fill_table(preview: Preview, text: str, delimiter: str) -> None:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if preview.truncated and rows:
        rows = rows[:-1]  # the last line was cut mid-way
    if not rows:
        preview.kind = "text"
        return
    preview.header = rows[0]
    preview.rows = rows[1 : PREVIEW_ROWS + 1]
    preview.truncated = preview.truncated or len(rows) > PREVIEW_ROWS + 1


async def _aiter_file(handle: BinaryIO, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    # Async on purpose: under ASGI, Django reads a sync iterator into one list before
    # sending a byte, which a multi-GB artifact must never do.
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(chunk_size):
            yield chunk
    finally:
        handle.close()


def artifact_download(*, run: Run, path: str, inline: bool = False) -> StreamingHttpResponse:
    """A streamed download; `inline` only for raster images (previews)."""
    path = clean_relative_path(path)
    if not path:
        raise NotFound("Choose a file to download.")
    handle = get_store().open(run_root(run), path)
    name = PurePosixPath(path).name
    image_type = INLINE_IMAGES.get(PurePosixPath(path).suffix.lower())
    response = StreamingHttpResponse(
        _aiter_file(handle), content_type=image_type if inline and image_type else "application/octet-stream"
    )
    response["Content-Length"] = str(os.fstat(handle.fileno()).st_size)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=not (inline and image_type), filename=name
    )
    # Even if a browser were to render it, it would run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def guess_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"
