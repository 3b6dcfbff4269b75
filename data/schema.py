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


# JSON Schema type -> the Python types of parsed JSON that surely have it (a float
# such as 1.0 is an integer too, but that one is left to the full validator).
_SURE_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
_PLAIN_KEYS = frozenset({"type", "properties", "required", "$schema", "title", "description", "$id", "$comment"})
_PLAIN_PROPERTY_KEYS = frozenset({"type", "title", "description", "$comment"})


def quick_check(schema: dict | None) -> Callable[[Any], bool] | None:
    """For the usual stream schema (an object whose properties have only a type, some
    required) a predicate that is True only for records the schema surely accepts, far
    cheaper than the compiled validator; the records it says False for go to the
    validator (for the verdict and its reason). None for any other schema."""
    if not isinstance(schema, dict) or not schema.keys() <= _PLAIN_KEYS:
        return None
    kind, properties, required = schema.get("type"), schema.get("properties", {}), schema.get("required", [])
    if kind not in ("object", None) or not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if not all(isinstance(name, str) for name in required):
        return None
    checks = []
    for name, rule in properties.items():
        if not isinstance(rule, dict) or not rule.keys() <= _PLAIN_PROPERTY_KEYS:
            return None
        types = rule.get("type")
        names = [types] if isinstance(types, str) else types
        if types is None:
            continue  # any value
        if not isinstance(names, list) or not names or not all(t in _SURE_TYPES for t in names):
            return None
        checks.append((name, frozenset(t for n in names for t in _SURE_TYPES[n])))
    need = frozenset(required)
    if kind is None and not need and not checks:
        return lambda record: True  # {}: every value fits
    missing = object()

    def fits(record: Any) -> bool:
        if type(record) is not dict or not need <= record.keys():
            return False
        for name, types in checks:
            value = record.get(name, missing)
            if value is not missing and type(value) not in types:
                return False
        return True

    return fits


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
