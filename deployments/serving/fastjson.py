"""JSON on the serving hot path: orjson, with the standard library's exact meaning.

Parsing and encoding JSON was the largest share of a request's CPU time (a 100-row
request spent ~10x longer in `json` than in orjson, whether reading the body, writing
the prediction-log line or the answer). orjson differs from `json` at the edges, so
each edge goes back to `json`: a body orjson refuses (NaN, Infinity, 1e999, integers
past 64 bits: the MLflow scoring server reads them with `json.loads`) is parsed by
`json`, which also raises the errors clients already see; and an answer holding a
null (orjson writes NaN and infinities as null, `json` as NaN / Infinity) or a value
orjson cannot encode is encoded by `json`."""

from collections.abc import Callable
import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """`json.dumps(value, separators=(",", ":")).encode()`, faster."""
    try:
        encoded = orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        encoded = None
    if encoded is None or b"null" in encoded:
        return json.dumps(value, default=default, separators=(",", ":")).encode()
    return encoded
