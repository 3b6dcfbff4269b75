"""Ingest bodies to records: a JSON object, a JSON array, JSON Lines or CSV (with a
header row). A body that cannot be parsed is refused whole (400) with the line it broke
on; one that parses but holds records that do not fit the schema is not (those go to
quarantine, see data.plane). No Django here."""

import csv
import io
from typing import Any

import orjson

from mlplatform import jsondepth

JSON_TYPES = {"application/json", "text/json"}
JSONL_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-lines",
}
CSV_TYPES = {"text/csv", "application/csv"}

# A record's client message id: this field of the record, else the request's
# X-Message-Id header for a body of one record.
MESSAGE_ID_FIELD = "_id"


class Malformed(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"Line {line}: {message}")
        self.line = line


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(body: bytes, content_type: str | None) -> list[Any]:
    kind = media_type(content_type)
    if kind in CSV_TYPES:
        return parse_csv(body)
    if kind in JSONL_TYPES:
        return parse_json_lines(body)
    if kind in JSON_TYPES:
        return parse_json(body)
    # No (or an unknown) content type: a JSON document, else JSON Lines.
    try:
        return parse_json(body)
    except Malformed:
        if body.strip().count(b"\n"):
            return parse_json_lines(body)
        raise


def parse_json(body: bytes) -> list[Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _check_depth(body)  # a too-deep body says so, whatever else is wrong with it
        raise Malformed(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from exc
    records = value if isinstance(value, list) else [value]
    _check_depth_parsed(body, records, outer=isinstance(value, list))
    return records


def parse_json_lines(body: bytes) -> list[Any]:
    records = []
    loads = orjson.loads
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(loads(line))
        except orjson.JSONDecodeError as exc:
            _check_depth(body)
            raise Malformed(f"not valid JSON: {exc.msg} (column {exc.colno})", number) from exc
    _check_depth_parsed(body, records, outer=False)
    return records


def parse_csv(body: bytes) -> list[dict]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise Malformed("not UTF-8 text", line) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise Malformed("a CSV body needs a header row naming its columns", 1)
        records = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise Malformed(f"{len(row)} fields where the header has {len(header)}", reader.line_num)
            records.append({name: _cell(value) for name, value in zip(header, row, strict=True)})
    except csv.Error as exc:
        raise Malformed(f"not valid CSV: {exc}", reader.line_num) from exc
    return records


def _cell(value: str) -> Any:
    """CSV has only text: numbers become numbers (so a schema can say `number`), an
    empty cell is null, anything else stays text."""
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value


def _check_depth(body: bytes) -> None:
    try:
        jsondepth.check(body, jsondepth.MAX_DEPTH + 1)  # +1: the batch's own array
    except jsondepth.TooDeep as exc:
        raise Malformed(str(exc)) from exc


def _check_depth_parsed(body: bytes, records: list[Any], *, outer: bool) -> None:
    """The depth check after orjson parsed the body (orjson itself stops at 1,024
    levels), costing two byte counts for the usual batch of flat records: the body has
    at least one opening bracket per container record (and one for the batch's array),
    so the brackets beyond those bound how deep any record nests. Only a body with more
    than that gets the full measure (jsondepth)."""
    containers = sum(type(record) is dict or type(record) is list for record in records)
    nested = body.count(b"[") + body.count(b"{") - containers - outer
    # A record nests at most 1 + nested levels; with the batch's array, +1.
    if nested + 1 + outer > jsondepth.MAX_DEPTH + 1:
        _check_depth(body)


def message_id(record: Any) -> str | None:
    if isinstance(record, dict):
        value = record.get(MESSAGE_ID_FIELD)
        if isinstance(value, str) and value or isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None
