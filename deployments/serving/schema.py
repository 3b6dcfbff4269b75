"""Model signatures: MLflow's `signature.inputs` JSON, and checking a request against it.

A parsed request is columnar (`dict[name, list]`), positional rows (`list[list]`) or a
DataFrame (CSV). The check builds what the model is called with: a float64 matrix in
signature order when every input is numeric (the fast path: no pandas per request), a
typed DataFrame otherwise. Type rules follow MLflow's `_enforce_schema`: no unsafe
conversions (a string is not a double, a float is not a long), missing required inputs
are an error, extra inputs are ignored."""

from dataclasses import dataclass
import json
from typing import Any

import numpy as np
import pandas as pd

from deployments.serving.errors import SchemaMismatch

NUMERIC = {"double", "float", "long", "integer"}
INTEGRAL = {"long", "integer"}
PANDAS_DTYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
# Exact types (a bool is not a long), as sets: a column is checked with one set(map(type)).
_ACCEPTS: dict[str, frozenset[type]] = {
    "double": frozenset({int, float}),
    "float": frozenset({int, float}),
    "long": frozenset({int}),
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
    "string": frozenset({str}),
}
_JSON_TYPE_NAMES = {int: "long", float: "double", str: "string", bool: "boolean", list: "array", dict: "object"}

Parsed = dict[str, list] | list | pd.DataFrame


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    columns: tuple[Column, ...] = ()
    tensor_dtype: str | None = None
    tensor_shape: tuple[int, ...] | None = None

    @classmethod
    def from_signature(cls, inputs_json: str | None) -> "InputSchema | None":
        if not inputs_json:
            return None
        specs = json.loads(inputs_json)
        if specs and specs[0].get("type") == "tensor":
            spec = specs[0]["tensor-spec"]
            return cls(tensor_dtype=spec["dtype"], tensor_shape=tuple(spec.get("shape") or ()))
        return cls(
            columns=tuple(
                Column(s.get("name", str(i)), s["type"], s.get("required", True)) for i, s in enumerate(specs)
            )
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def all_numeric(self) -> bool:
        return bool(self.columns) and all(c.type in NUMERIC for c in self.columns)

    def describe(self) -> str:
        if self.tensor_dtype:
            return f"Tensor({self.tensor_dtype}, shape={list(self.tensor_shape or ())})"
        return (
            "[" + ", ".join(f"'{c.name}': {c.type}" + ("" if c.required else " (optional)") for c in self.columns) + "]"
        )

    def matrix(self, flat: list, shape: list[int]) -> np.ndarray | None:
        """Row-major values of an [n, k] tensor (the Open Inference Protocol's usual
        request) straight into the model's matrix, when there is one column per value in
        a row, all numeric, and every value's type is one every column accepts; None
        otherwise, and the general check (rows, then columns) names the problem."""
        if not self.all_numeric or shape[1:] != [len(self.columns)]:
            return None
        kinds = set(map(type, flat))
        if not all(kinds <= _ACCEPTS[c.type] for c in self.columns):
            return None
        return np.asarray(flat, dtype=np.float64).reshape(shape[0], len(self.columns))

    def prepare(self, parsed: Parsed | np.ndarray) -> np.ndarray | pd.DataFrame:
        """What the model is called with, or SchemaMismatch naming the problem."""
        if isinstance(parsed, np.ndarray) and not self.tensor_dtype:
            return parsed  # already checked (`matrix`)
        if self.tensor_dtype:
            return self._tensor(parsed)
        columns = self._columnar(parsed)
        missing = [c.name for c in self.columns if c.required and c.name not in columns]
        if missing:
            extra = sorted(set(columns) - set(self.names))
            note = f" Note that there were extra inputs: {extra}." if extra else ""
            raise self._error(f"Model is missing inputs {missing}.{note}")
        n_rows = _row_count(columns)
        for column in self.columns:
            values = columns.get(column.name)
            if values is not None:
                self._check_type(column, values)
        if self.all_numeric:
            return np.array([columns[c.name] for c in self.columns], dtype=np.float64).T.reshape(
                n_rows, len(self.columns)
            )
        frame = pd.DataFrame({c.name: columns.get(c.name, [None] * n_rows) for c in self.columns})
        for column in self.columns:
            if column.name in columns and column.type in PANDAS_DTYPES:
                frame[column.name] = frame[column.name].astype(PANDAS_DTYPES[column.type])
        return frame

    def _columnar(self, parsed: Parsed) -> dict[str, list]:
        if isinstance(parsed, dict):
            return parsed
        if isinstance(parsed, pd.DataFrame):
            return {str(k): v.tolist() for k, v in parsed.items()}
        # Positional rows (`instances: [[...], ...]`): MLflow matches them to the
        # signature's columns by position when the widths agree.
        rows = parsed
        if rows and all(isinstance(r, list) and len(r) == len(self.columns) for r in rows):
            return {c.name: list(v) for c, v in zip(self.columns, zip(*rows, strict=False), strict=True)}
        raise self._error(f"Expected rows of {len(self.columns)} values (one per input) or named columns.")

    def _check_type(self, column: Column, values: list) -> None:
        accepts = _ACCEPTS.get(column.type)
        if accepts is None or set(map(type, values)) <= accepts:
            return
        for value in values:
            kind = type(value)
            if kind not in accepts:
                if value is None:
                    raise self._error(f"Incompatible input types for column {column.name}. Missing value (null).")
                got = _JSON_TYPE_NAMES.get(kind, kind.__name__)
                raise self._error(
                    f"Incompatible input types for column {column.name}. Can not safely convert {got} to {column.type}."
                )

    def _tensor(self, parsed: Parsed) -> np.ndarray:
        data = parsed.to_numpy() if isinstance(parsed, pd.DataFrame) else parsed
        if isinstance(data, dict):
            raise self._error("This model takes one unnamed tensor; send `inputs` or `instances` as a list.")
        try:
            array = np.asarray(data, dtype=self.tensor_dtype)
        except (TypeError, ValueError) as exc:
            raise self._error(f"Can not convert the input to a {self.tensor_dtype} tensor: {exc}")
        shape = self.tensor_shape or ()
        if shape and (
            array.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, array.shape, strict=True))
        ):
            raise self._error(f"Shape of input {list(array.shape)} does not match expected shape {list(shape)}.")
        return array

    def _error(self, detail: str) -> SchemaMismatch:
        return SchemaMismatch(f"Failed to enforce schema of data with schema {self.describe()}. Error: {detail}")


def _row_count(columns: dict[str, list]) -> int:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise SchemaMismatch("Invalid input. All columns must have the same number of values.")
    return lengths.pop() if lengths else 0


def without_schema(parsed: Parsed) -> Any:
    """What a model with no signature is called with: a DataFrame, as MLflow does."""
    if isinstance(parsed, pd.DataFrame):
        return parsed
    return pd.DataFrame(parsed)
