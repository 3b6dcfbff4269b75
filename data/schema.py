"""A stream's schema: JSON Schema, compiled once with fastjsonschema, or inferred from
the first records when the stream has none (then frozen: later records are checked
against it, never widen it). No Django here: the ingest plane uses it on the hot path."""

from collections.abc import Callable
from typing import Any

import fastjsonschema

Validator = Callable[[Any], Any]

_TYPES = [(bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object")]


class SchemaInvalid(ValueError):
    """The schema itself is not a usable JSON Schema."""


def compile_schema(schema: dict | None) -> Validator | None:
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise SchemaInvalid("A schema must be a JSON object (a JSON Schema).")
    try:
        return fastjsonschema.compile(schema)
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError) as exc:
        raise SchemaInvalid(f"Not a usable JSON Schema: {exc}") from exc


def check(validator: Validator | None, record: Any) -> str | None:
    """None when the record fits, else why not (the validator's own message)."""
    if validator is None:
        return None
    try:
        validator(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message
    return None


def _type_of(value: Any) -> str | None:
    for python_type, name in _TYPES:
        if type(value) is python_type:
            return name
    return None  # null says nothing about the type


def infer(records: list[Any], *, ignore: frozenset[str] = frozenset()) -> dict:
    """A schema that the given records fit: an object with the properties they all
    carry required, each property's type as seen (integer widened to number when both
    occur, several types listed when they differ, null allowed when seen); extra
    properties allowed. Records that are not objects give `{"type": [...]}` only.
    Properties in `ignore` (the client message id) are left out."""
    objects = [r for r in records if isinstance(r, dict)]
    if not objects or len(objects) != len(records):
        return {"type": sorted({_type_of(r) or "null" for r in records}) or ["object"]}
    seen: dict[str, set[str]] = {}
    for record in objects:
        for key, value in record.items():
            if key in ignore:
                continue
            seen.setdefault(key, set()).add(_type_of(value) or "null")
    required = sorted(key for key in seen if all(key in r for r in objects))
    properties = {key: {"type": _json_type(types)} for key, types in sorted(seen.items())}
    return {"type": "object", "properties": properties, "required": required}


def _json_type(types: set[str]) -> str | list[str]:
    if {"integer", "number"} <= types:
        types = types - {"integer"}
    return next(iter(types)) if len(types) == 1 else sorted(types)
