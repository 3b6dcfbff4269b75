"""How deep a JSON document nests, measured before it is parsed.

Python's json recurses once per level and fails with RecursionError (a 500) on a body
such as 100,000 `[`; orjson stops at 1,024 levels, and whatever a parser accepts is
walked again by recursive code (serialisers, JSON columns). Every JSON entry point
(the REST API's parser, the MLflow API, websocket messages, model serving) refuses a
document nested deeper than MAX_DEPTH before parsing it. No Django imports: the serving
data plane uses this without settings."""

import json

MAX_DEPTH = 64

_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"()", b"\x01\xff")
_QUICK_PASSES = 8


class TooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The JSON document nests deeper than {limit} levels.")
        self.limit = limit


def _outside_strings(data: bytes) -> bytes:
    """`data` without its string literals (which may hold brackets). Escapes go first,
    so an escaped quote does not end a string; the rest is split on quotes."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(data.split(b'"')[::2])


def depth(raw: bytes | str) -> int:
    """The deepest nesting of arrays and objects in `raw` (0 for a scalar). A malformed
    document counts its unmatched openers too, so it is never measured shallower than
    a parser would recurse."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    brackets = _outside_strings(data).translate(_BRACKETS, _NOT_BRACKETS)
    # Each pass drops every empty container, so a shallow document (the usual: a
    # thousand metrics at depth 3) empties in a few C-speed passes. A pass that drops
    # little means a deep document: a running sum measures it in one go.
    passes = 0
    while brackets and passes < _QUICK_PASSES:
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            return passes + brackets.count(b"(")
        dropped_little = len(shorter) > len(brackets) * 3 // 4
        brackets, passes = shorter, passes + 1
        if dropped_little:
            break
    if not brackets:
        return passes
    import numpy as np  # only for deep documents; a running sum of 10 MB takes milliseconds

    running = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8).cumsum(dtype=np.int32)
    return passes + int(max(running.max(), brackets.count(b"(") - brackets.count(b")")))


def check(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    """TooDeep if `raw` nests deeper than `limit`. A body with no more brackets than the
    limit cannot, so a small request costs two counts."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    if depth(data) > limit:
        raise TooDeep(limit)


def loads(raw: bytes | str, limit: int = MAX_DEPTH):
    """json.loads after `check`; TooDeep is a ValueError, as json's own errors are."""
    check(raw, limit)
    return json.loads(raw)
