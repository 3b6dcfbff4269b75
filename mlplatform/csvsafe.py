"""The one CSV writer for every export the platform writes.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
return before one) as a formula: `-2+3+cmd|' /C calc'!A0` looks like a number and is
not. Run names, params, tags, idea titles are typed by anyone who can write them, and
the file is opened by someone else, so every text cell that starts with one of those
characters gets a leading `'` (OWASP's advice), however numeric it looks. Real numbers
(ints and floats, such as metric values) stay numbers: a spreadsheet reads `-0.5` as a
value, never as a formula."""

import csv
import math
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """csv.writer's writerow/writerows, every cell neutralised."""

    def __init__(self, stream, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream, **kwargs: Any) -> SafeWriter:
    return SafeWriter(stream, **kwargs)
