"""The manifest of a dataset version and its id.

    {"v": 1,
     "parts": [{"kind": "file" | "segment", "sha256": "<hex>", "rows": [start, stop]}, ...],
     "columns": null | ["a", "b"],          # projection, in this order
     "filter": null | [["col", "op", value], ...]}   # all must hold

Parts are in reading order (a stream window's segments by sequence number), so one
window always gives the same list. The id is the sha256 of the canonical JSON (keys
sorted, no whitespace): the same data and spec always get the same id."""

import hashlib
from typing import Any

import orjson

from mlplatform.errors import ValidationFailed

VERSION = 1
PART_KINDS = ("file", "segment")
FILTER_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "not null")


def part(kind: str, sha256: str, start: int, stop: int) -> dict[str, Any]:
    return {"kind": kind, "sha256": sha256, "rows": [int(start), int(stop)]}


def build(
    parts: list[dict[str, Any]], *, columns: list[str] | None = None, filters: list | None = None
) -> dict[str, Any]:
    manifest = {"v": VERSION, "parts": parts, "columns": columns or None, "filter": filters or None}
    validate(manifest)
    return manifest


def canonical(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)


def digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def row_count(manifest: dict[str, Any]) -> int:
    """Rows before the filter (the filter needs a scan; see data.datasets.reader)."""
    return sum(stop - start for start, stop in (p["rows"] for p in manifest["parts"]))


def validate(manifest: dict[str, Any]) -> None:
    if not isinstance(manifest, dict) or manifest.get("v") != VERSION:
        raise ValidationFailed(f"A manifest is an object with v={VERSION}.")
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ValidationFailed("A manifest names at least one part.")
    for item in parts:
        _validate_part(item)
    columns = manifest.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns)
    ):
        raise ValidationFailed("columns is a non-empty list of column names.")
    if columns is not None and len(set(columns)) != len(columns):
        raise ValidationFailed("columns names each column once.")
    for clause in manifest.get("filter") or []:
        _validate_clause(clause)


def _validate_part(item: Any) -> None:
    if not isinstance(item, dict) or item.get("kind") not in PART_KINDS:
        raise ValidationFailed(f"Each part has a kind: {', '.join(PART_KINDS)}.")
    sha = item.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValidationFailed("Each part names its content by a sha256 (64 lowercase hex digits).")
    rows = item.get("rows")
    if not (isinstance(rows, list) and len(rows) == 2 and all(isinstance(r, int) for r in rows)):
        raise ValidationFailed("Each part has a row range [start, stop).")
    if not 0 <= rows[0] < rows[1]:
        raise ValidationFailed("A part's row range must be non-empty: 0 <= start < stop.")


def _validate_clause(clause: Any) -> None:
    if not isinstance(clause, list) or len(clause) not in (2, 3) or not isinstance(clause[0], str):
        raise ValidationFailed('A filter clause is ["column", "op", value] or ["column", "is null"].')
    op = clause[1]
    if op not in FILTER_OPS:
        raise ValidationFailed(f"Unknown filter operator {op!r}; use one of {', '.join(FILTER_OPS)}.")
    if op in ("is null", "not null") and len(clause) != 2:
        raise ValidationFailed(f"'{op}' takes no value.")
    if op not in ("is null", "not null") and len(clause) != 3:
        raise ValidationFailed(f"'{op}' needs a value.")
    if op in ("in", "not in") and not isinstance(clause[2], list):
        raise ValidationFailed(f"'{op}' needs a list of values.")
