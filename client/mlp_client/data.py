"""Streams and datasets: `client.data` (push records to a stream's HTTP ingest plane,
list and show streams) and `client.datasets` (versions from a file or a stream window,
pull their data, diff two of them).

A file to push is read twice: once to check all of it parses (a malformed file sends
nothing), once to send it in batches. Pushing again is safe: the platform drops records
it already has (same `_id`, else same content) and counts them as duplicates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import csv
import io
import json
import os
from pathlib import Path
import time
from typing import TYPE_CHECKING, Any

from mlp_client.errors import Failed, MlpError, Refused, TimedOut, UsageError
from mlp_client.http import decode
from mlp_client.tables import Record, Table

if TYPE_CHECKING:
    from mlp_client.client import Client

JSON_LINES = {".jsonl", ".ndjson", ".jsonlines"}
MAX_BATCH = 10_000
MAX_REASONS = 20


# --- reading files of records ---------------------------------------------------------------


def file_kind(path: Path) -> str:
    """csv, jsonl or json: by the suffix, else by the first character (a JSON document
    that does not parse whole is read as JSON Lines)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in JSON_LINES:
        return "jsonl"
    if suffix == ".json":
        return "json"
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if head[:1] not in (b"{", b"["):
        raise UsageError(f"{path}: cannot tell its format; name it .json, .jsonl or .csv.")
    try:
        json.loads(path.read_bytes())
        return "json"
    except ValueError:
        return "jsonl"


def iter_batches(path: str | Path, size: int) -> Iterator[tuple[str, bytes, int]]:
    """(content type, body, number of records) per batch of `size` records. A CSV is
    sent as CSV (header repeated per batch), so the platform types its cells; JSON and
    JSON Lines as a JSON array. Raises UsageError naming the line of a malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"No file {path}.")
    kind = file_kind(path)
    try:
        if kind == "csv":
            yield from _csv_batches(path, size)
        else:
            records = _json_records(path) if kind == "json" else _json_lines(path)
            for chunk in _chunks(records, size):
                yield "application/json", json.dumps(chunk).encode(), len(chunk)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_records(path: Path) -> list:
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        line = getattr(exc, "lineno", "?")
        raise UsageError(f"{path} is not valid JSON (line {line}): {getattr(exc, 'msg', exc)}.") from exc
    return value if isinstance(value, list) else [value]


def _json_lines(path: Path) -> Iterator[Any]:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise UsageError(f"{path}, line {number}: not valid JSON ({getattr(exc, 'msg', exc)}).") from exc


def _csv_batches(path: Path, size: int) -> Iterator[tuple[str, bytes, int]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not header or not any(name.strip() for name in header):
                raise UsageError(f"{path}, line 1: a CSV file needs a header row naming its columns.")

            def rows() -> Iterator[list[str]]:
                for row in reader:
                    if not row:
                        continue
                    if len(row) != len(header):
                        raise UsageError(
                            f"{path}, line {reader.line_num}: {len(row)} fields where the header has {len(header)}."
                        )
                    yield row

            for chunk in _chunks(rows(), size):
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(chunk)
                yield "text/csv", out.getvalue().encode(), len(chunk)
        except csv.Error as exc:
            raise UsageError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from exc


def split_stream(text: str) -> tuple[str, str]:
    project, sep, stream = text.partition("/")
    if not sep or not project or not stream or "/" in stream:
        raise UsageError(f"Name the stream as PROJECT/STREAM, got '{text}'.")
    return project, stream


def split_ref(text: str) -> tuple[str, str]:
    """`NAME[@REF]` → (name, ref); REF is a version id (or 8+ digit prefix), an alias or latest."""
    name, _, ref = text.partition("@")
    if not name:
        raise UsageError(f"Name the dataset as NAME or NAME@VERSION, got '{text}'.")
    return name, ref or "latest"


# --- streams --------------------------------------------------------------------------------


class Data:
    """Streams: `push` records to one, `streams`/`stream` to see them."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client.http

    def streams(self, project: str) -> Table:
        rows = self._client.paged("streams.list", slug=project)
        cols = ["slug", "name", "source", "status", "records_total", "quarantined_total", "last_record_at"]
        return Table(rows, cols + ["ingest_url"], title=f"Streams of {project}")

    def stream(self, project: str, stream: str) -> Record:
        return Record(self._http.call("streams.get", slug=project, stream=stream))

    def push(
        self,
        stream: str,
        source: str | Path | Iterable[Any],
        *,
        token: str | None = None,
        batch_size: int = 500,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Record:
        """Sends records to `stream` (PROJECT/STREAM) through `POST /ingest/...` with the
        stream's ingest token (`token` or MLP_INGEST_TOKEN). `source` is a .json, .jsonl
        or .csv file, or an iterable of records. Returns the counts: accepted,
        duplicates, quarantined (with the first reasons, numbered from 0 across the
        file). Quarantined records do not raise: check `result["quarantined"]`.
        `on_progress(done, total)` counts records."""
        project, slug = split_stream(stream)
        token = token or os.environ.get("MLP_INGEST_TOKEN", "")
        if not token:
            raise UsageError("Give the stream's ingest token (mlpi_...): --token or MLP_INGEST_TOKEN.")
        if not 1 <= batch_size <= MAX_BATCH:
            raise UsageError(f"The batch size is 1 to {MAX_BATCH:,} records, got {batch_size}.")
        if isinstance(source, str | Path):
            total = sum(n for _, _, n in iter_batches(source, batch_size))  # check it all first
            if not total:
                raise UsageError(f"{source} holds no records.")
            batches: Iterable[tuple[str, bytes, int]] = iter_batches(source, batch_size)
        else:
            records = list(source)
            total = len(records)
            if not total:
                raise UsageError("No records to push.")
            batches = (("application/json", json.dumps(c).encode(), len(c)) for c in _chunks(records, batch_size))
        result: dict[str, Any] = {
            "stream": f"{project}/{slug}", "records": total, "batches": 0,
            "accepted": 0, "duplicates": 0, "quarantined": 0, "reasons": [],
        }  # fmt: skip
        done = 0
        if on_progress:
            on_progress(0, total)
        for content_type, body, count in batches:
            answer = self._send(project, slug, token, content_type, body, result)
            result["batches"] += 1
            for key in ("accepted", "duplicates", "quarantined"):
                result[key] += answer[key]
            for reason in answer.get("reasons") or []:
                if len(result["reasons"]) < MAX_REASONS:
                    result["reasons"].append({"record": done + reason["record"], "reason": reason["reason"]})
            done += count
            if on_progress:
                on_progress(done, total)
        return Record(result)

    def _send(self, project: str, slug: str, token: str, content_type: str, body: bytes, so_far: dict) -> dict:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        try:
            response = self._http.send(
                "ingest", project=project, stream=slug, content=body, headers=headers, idempotent=True
            )
        except MlpError as exc:
            where = f"{project}/{slug}"
            sent = (
                f" ({so_far['accepted']} record(s) were accepted before; pushing again is safe, "
                "they count as duplicates)"
                if so_far["batches"]
                else ""
            )
            if exc.status == 401:
                raise Refused(
                    f"The ingest token was refused by stream {where}: {_plane_message(exc)} "
                    f"Use an ingest token (mlpi_...) of this stream, from its Data page{sent}.",
                    status=401,
                    request_id=exc.request_id,
                ) from exc
            if exc.status == 413:
                raise UsageError(f"{exc.message}: use a smaller --batch{sent}.", status=413) from exc
            exc.message += sent
            raise
        return decode(response)


def _plane_message(exc: MlpError) -> str:
    # Http turns every 401 into "The token was refused (<server's message>): run mlp login";
    # for an ingest token only the server's message is right.
    text = exc.message
    if text.startswith("The token was refused (") and "): " in text:
        text = text[len("The token was refused (") : text.rindex("): ")]
    return text


# --- datasets -------------------------------------------------------------------------------


class _ProgressFile(io.FileIO):
    """A file that reports what httpx read of it (httpx streams a multipart file in
    chunks and sizes it with fstat): drives the upload progress bar."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(path, "rb")
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self._on_read(len(chunk))
        return chunk


def _version_row(v: dict) -> dict:
    return {
        "id": v["id"],
        "rows": v["rows"],
        "bytes": v["bytes"],
        "source": v["source"],
        "status": v["status"],
        "profile_status": v.get("profile_status"),
        "aliases": ", ".join(v.get("aliases") or []),
        "created_by": v.get("created_by"),
        "created_at": v["created_at"],
        "uri": v.get("uri"),
    }


VERSION_COLUMNS = ["id", "rows", "bytes", "source", "status", "profile_status", "aliases", "created_by", "created_at"]


class Datasets:
    """Dataset versions: immutable, content-addressed (the same data is the same id)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client.http

    def list(self, project: str) -> Table:
        rows = [
            {**d, "aliases": ", ".join(f"{a['alias']}→{a['version'][:12]}" for a in d.get("aliases") or [])}
            for d in self._http.call("datasets.list", slug=project)
        ]
        cols = ["name", "version_count", "latest_version", "aliases", "description", "created_at"]
        return Table(rows, cols, title=f"Datasets of {project}")

    def versions(self, project: str, name: str) -> Table:
        rows = [_version_row(v) for v in self._http.call("datasets.versions", slug=project, name=name)]
        return Table(rows, VERSION_COLUMNS, title=f"Versions of {project}/{name}")

    def get(self, project: str, name: str, ref: str = "latest") -> Record:
        return Record(self._http.call("datasets.version", slug=project, name=name, ref=ref))

    def create(
        self,
        project: str,
        name: str,
        file: str | Path | None = None,
        *,
        stream: str | None = None,
        since_last: bool = False,
        start: str | None = None,
        end: str | None = None,
        format: str | None = None,  # noqa: A002 - the server's field
        description: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Record:
        """A version of dataset `name` (made if new) from a CSV, Parquet or JSON Lines
        `file` (uploaded, `on_progress(sent, total)` in bytes), or from a window of a
        project's `stream` (`since_last`: from where its previous version ended, or
        `start`/`end` in ISO 8601). The same data gives the same version back with
        `created` False."""
        if (file is None) == (stream is None):
            raise UsageError("Give either a FILE to upload or --stream, not both.")
        if file is None:
            if since_last and (start or end):
                raise UsageError("Choose --since-last or --start/--end, not both.")
            body: dict[str, Any] = {"stream": stream, "since_last": since_last, "description": description}
            body.update({k: v for k, v in (("start", start), ("end", end)) if v})
            response = self._http.send("datasets.from_stream", slug=project, name=name, json=body)
        else:
            path = Path(file)
            if not path.is_file():
                raise UsageError(f"No file {path}.")
            size = path.stat().st_size
            sent = [0]

            def read(n: int) -> None:
                sent[0] += n
                if on_progress:
                    on_progress(min(sent[0], size), size)

            form = {"description": description, **({"format": format} if format else {})}
            with _ProgressFile(path, read) as handle:
                files = {"file": (path.name, handle, "application/octet-stream")}
                response = self._http.send("datasets.upload", slug=project, name=name, data=form, files=files)
        return Record({**decode(response), "created": response.status_code == 201})

    def pull(
        self,
        project: str,
        name: str,
        ref: str = "latest",
        *,
        path: str | Path | None = None,
        format: str = "parquet",  # noqa: A002 - the server's parameter
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> Record:
        """Downloads a version's data (parquet or csv), streamed to `path` (default
        NAME-ID12.FORMAT here); a failed download leaves no file. `on_progress(bytes,
        None)`: the size is not known before the end."""
        if format not in ("parquet", "csv"):
            raise UsageError(f"--format is parquet or csv, got '{format}'.")
        version = self.get(project, name, ref)
        target = Path(path) if path else Path(f"{name}-{version['id'][:12]}.{format}")
        if target.is_dir():
            target = target / f"{name}-{version['id'][:12]}.{format}"
        partial = target.with_name(target.name + ".part")
        got = [0]

        def chunk(n: int) -> None:
            got[0] += n
            if on_progress:
                on_progress(got[0], None)

        try:
            with partial.open("wb") as out:
                self._http.download(
                    "datasets.data", out, on_chunk=chunk, slug=project, name=name, ref=version["id"],
                    params={"format": format},
                )  # fmt: skip
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return Record(
            {"dataset": f"{project}/{name}", "version": version["id"], "format": format, "rows": version["rows"],
             "bytes": got[0], "path": str(target)}
        )  # fmt: skip

    def diff(
        self,
        project: str,
        name: str,
        base: str,
        other: str,
        *,
        timeout: float = 120,
        interval: float = 1.0,
    ) -> Record:
        """Schema changes, row counts and per-column distribution shift of `other`
        against `base`. The base's profile is computed after it is created: this waits
        up to `timeout` seconds for it (TimedOut after)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return Record(self._http.call("datasets.diff", slug=project, name=name, ref=base,
                                              params={"against": other}))  # fmt: skip
            except Refused as exc:
                if exc.status != 409 or "profile" not in exc.message:
                    raise
            version = self.get(project, name, base)
            if version["profile_status"] == "failed":
                raise Failed(f"The profile of version {version['id'][:12]} failed: {version.get('profile_message')}")
            if time.monotonic() >= deadline:
                raise TimedOut(f"The profile of version {version['id'][:12]} is still not ready after {timeout:.0f}s.")
            time.sleep(interval)


def diff_table(result: dict) -> Table:
    """One row per column compared, drifted ones first (numbers to 4 significant digits)."""
    rows = [
        {
            "column": column,
            "drifted": bool(entry.get("drifted")),
            **{k: f"{v:.4g}" if isinstance(v, float) else v for k, v in entry.items() if k != "drifted"},
        }
        for column, entry in result.get("columns", {}).items()
    ]
    rows.sort(key=lambda r: (not r["drifted"], r["column"]))
    return Table(rows, title=f"Columns: {result['base'][:12]} → {result['other'][:12]}")


__all__ = ["Data", "Datasets", "diff_table", "iter_batches", "split_ref", "split_stream"]
