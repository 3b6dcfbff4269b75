"""MLflow's scoring protocol (mlflow/pyfunc/scoring_server): request bodies in, JSON out.

JSON bodies carry exactly one of `dataframe_split`, `dataframe_records`, `instances`,
`inputs` (plus optional `params`); `text/csv` is a DataFrame with a header row. The
answer is `{"predictions": [...]}`; errors are `{"error_code", "message"}` with the same
texts MLflow uses where a client might match on them."""

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from deployments.serving import fastjson
from deployments.serving.errors import InvalidInput, UnsupportedMediaType
from mlplatform import jsondepth

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
SUPPORTED_FORMATS = {DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS}
REQUIRED_INPUT_FORMAT = f"The input must be a JSON dictionary with exactly one of the input fields {SUPPORTED_FORMATS}"
CONTENT_TYPES = ["text/csv", "application/json"]
MAX_JSON_DEPTH = 32


def parse_body(body: bytes, content_type: str | None) -> Any:
    """The request's data as named columns (dict of lists), positional rows, or a
    DataFrame; InvalidInput / UnsupportedMediaType otherwise."""
    mime, params = _split_content_type(content_type or "application/json")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise UnsupportedMediaType("The scoring server only supports UTF-8")
    if mime == "application/json":
        return parse_json(body)
    if mime == "text/csv":
        return parse_csv(body)
    raise UnsupportedMediaType(
        f"This predictor only supports the following content types: Types: {CONTENT_TYPES}. Got '{content_type}'."
    )


def _split_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    mime, *rest = (part.strip() for part in content_type.split(";"))
    params = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in rest if p)}
    if set(params) - {"charset"}:
        raise UnsupportedMediaType(
            f"Unrecognized content type parameters: {', '.join(sorted(set(params) - {'charset'}))}."
        )
    return mime.lower(), params


def decode_json(body: bytes) -> Any:
    try:
        jsondepth.check(body, MAX_JSON_DEPTH)
        return fastjson.loads(body)
    except jsondepth.TooDeep as exc:
        raise InvalidInput(f"Ensure that input is a valid JSON formatted string. Error: {exc}")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"Ensure that input is a valid JSON formatted string. Error: '{exc!r}'")


def parse_json(body: bytes) -> Any:
    decoded = decode_json(body)
    if isinstance(decoded, list):
        raise InvalidInput(f"{REQUIRED_INPUT_FORMAT}. Received a list.")
    if not isinstance(decoded, dict):
        raise InvalidInput(f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{type(decoded)}'.")
    formats = set(decoded) & SUPPORTED_FORMATS
    if len(formats) != 1:
        raise InvalidInput(f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {list(decoded)}.")
    key = formats.pop()
    data = decoded[key]
    if key == DF_SPLIT:
        return _split(data)
    if key == DF_RECORDS:
        return _records(data)
    return _tensor_or_columns(key, data)


def _split(data: Any) -> dict[str, list] | list:
    if not isinstance(data, dict):
        raise InvalidInput(f"Dataframe split format must be a dictionary. Got {_kind(data)}.")
    keys = set(data)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise InvalidInput(
            f"Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. Got {keys}."
        )
    rows, columns = data["data"], data.get("columns")
    # map/set run in C: a 100-row body is checked without a Python loop per row.
    if not isinstance(rows, list) or not set(map(type, rows)) <= {list}:
        raise InvalidInput("Provided dataframe_split field is not a valid dataframe representation in 'split' format.")
    if columns is None:
        return rows
    if not isinstance(columns, list) or not set(map(len, rows)) <= {len(columns)}:
        raise InvalidInput(
            f"Provided dataframe_split field is not a valid dataframe representation in 'split' format. "
            f"Error: '{len(columns) if isinstance(columns, list) else 'no'} columns passed, rows have other widths'"
        )
    if not rows:
        return {str(c): [] for c in columns}
    return {str(c): list(v) for c, v in zip(columns, zip(*rows, strict=False), strict=True)}


def _records(data: Any) -> dict[str, list]:
    if not isinstance(data, list):
        raise InvalidInput(f"Dataframe records format must be a list of records. Got {_kind(data)}.")
    if not all(isinstance(r, dict) for r in data):
        raise InvalidInput(
            "Provided dataframe_records field is not a valid dataframe representation in 'records' format."
        )
    names: dict[str, None] = {}
    for record in data:
        names.update(dict.fromkeys(record))
    return {str(n): [r.get(n) for r in data] for n in names}


def _tensor_or_columns(key: str, data: Any) -> dict[str, list] | list:
    """`instances` / `inputs`: a dict of columns, a list of records, or a plain tensor."""
    if isinstance(data, dict):
        columns = {str(k): (v if isinstance(v, list) else [v]) for k, v in data.items()}
        return columns
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            return _records(data)
        return data
    raise InvalidInput(f"'{key}' must be a list or a dictionary of columns. Got {_kind(data)}.")


def parse_csv(body: bytes) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(body.decode("utf-8")))
    except Exception as exc:
        raise InvalidInput(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas "
            f"DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        )


def _kind(value: Any) -> str:
    return {dict: "dictionary", list: "list"}.get(type(value), f"type {type(value)}")


def jsonable(predictions: Any) -> Any:
    """MLflow's `_get_jsonable_obj` with `records` orient."""
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, pd.DataFrame):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, pd.Series):
        return predictions.tolist()
    return predictions


def predictions_body(predictions: Any) -> bytes:
    return fastjson.dumps({"predictions": predictions}, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
