"""The Open Inference Protocol (KServe V2 / Triton, REST): requests in, responses out.

`POST .../infer` carries named input tensors, each `{name, datatype, shape, data}` with
`data` in row-major order (flat or nested), or its bytes after the JSON header when
the binary tensor extension is used (tritonclient's default). How tensors become the
model's input depends on the revision's signature, so a request is parsed once into an
`InferRequest` and `for_schema` turns it into the same parsed forms the MLflow protocol
produces (named columns or positional rows): validation, micro-batching and logging
are then one code path for both protocols. `parameters.content_type = "pd"` (MLServer's
pandas codec) reads every input as a DataFrame column. Errors are `{"error": "..."}`."""

from dataclasses import dataclass, field
import json
import math
import struct
from typing import Any

import numpy as np

from deployments.serving import fastjson
from deployments.serving.errors import InvalidInput
from deployments.serving.protocol import decode_json
from deployments.serving.schema import InputSchema

# The protocol's datatypes, their numpy types (little-endian for binary data) and
# the JSON values each accepts.
DTYPES: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": "O",
}
_INTEGER = {k for k in DTYPES if "INT" in k}
_FLOAT = {"FP16", "FP32", "FP64"}
# MLflow column types as protocol datatypes (model metadata).
MLFLOW_TO_V2 = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
NUMPY_TO_V2 = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "str": "BYTES",
    "object": "BYTES",
}
HEADER_LENGTH = b"inference-header-content-length"
DEFAULT_OUTPUT = "predict"


class Tensor:
    __slots__ = ("name", "datatype", "shape", "values")

    def __init__(self, name: str, datatype: str, shape: list[int], values: list) -> None:
        self.name, self.datatype, self.shape, self.values = name, datatype, shape, values

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    def column(self) -> list:
        if len(self.shape) > 2 or (len(self.shape) == 2 and self.shape[1] != 1):
            raise InvalidInput(
                f"Input {self.name!r} is read as a DataFrame column and must have shape [n] or [n, 1]; "
                f"got {self.shape}."
            )
        return self.values

    def nested(self) -> list:
        """Row-major values in the tensor's shape."""
        values = self.values
        for size in reversed(self.shape[1:]):
            values = [values[i : i + size] for i in range(0, len(values), size)] if size else []
        return values


@dataclass
class InferRequest:
    id: str | None
    tensors: list[Tensor]
    pandas: bool = False
    requested: list[str] | None = None
    binary: set[str] = field(default_factory=set)
    binary_all: bool = False

    def __len__(self) -> int:
        return self.tensors[0].rows if self.tensors else 0

    def for_schema(self, schema: InputSchema | None) -> dict[str, list] | list | np.ndarray:
        """The parsed form the schema check takes: named columns, positional rows, or
        (for a tensor signature) the tensor itself."""
        tensors = self.tensors
        if self.pandas or len(tensors) > 1:
            return {t.name: t.column() for t in tensors}
        (tensor,) = tensors
        if schema is not None and schema.tensor_dtype:
            return tensor.nested()
        names = schema.names if schema is not None else []
        if len(tensor.shape) <= 1 or tensor.name in names:
            return {tensor.name: tensor.column()}
        if len(tensor.shape) == 2:
            matrix = schema.matrix(tensor.values, tensor.shape) if schema is not None else None
            return matrix if matrix is not None else tensor.nested()
        raise InvalidInput(f"Input {tensor.name!r} has shape {tensor.shape}; this model takes rows of columns.")


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    binary = b""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise InvalidInput("The Inference-Header-Content-Length header does not fit the body.")
        body, binary = body[:size], body[size:]
    request = decode_json(body)
    if not isinstance(request, dict):
        raise InvalidInput("An inference request is a JSON object with 'inputs'.")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("An inference request needs 'inputs': a non-empty list of tensors.")
    params = _params(request, "request")
    offset = 0
    tensors: list[Tensor] = []
    for raw in inputs:
        tensor, offset = _tensor(raw, binary, offset)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"The body holds {len(binary) - offset} bytes of binary data no input claims.")
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput("Input names must be unique.")
    if len({t.rows for t in tensors}) > 1:
        raise InvalidInput("All inputs must have the same first dimension (the number of rows).")
    requested, binary_outputs = None, set()
    if "outputs" in request:
        outputs = request["outputs"]
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise InvalidInput("'outputs' is a list of {'name': ...} objects.")
        requested = [o["name"] for o in outputs]
        binary_outputs = {o["name"] for o in outputs if _params(o, "output").get("binary_data")}
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("The request 'id' is a string.")
    return InferRequest(
        id=request_id,
        tensors=tensors,
        pandas=params.get("content_type") == "pd",
        requested=requested,
        binary=binary_outputs,
        binary_all=bool(params.get("binary_data_output")),
    )


def _params(obj: dict, what: str) -> dict:
    params = obj.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput(f"The {what} 'parameters' is a JSON object.")
    return params


def _tensor(raw: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise InvalidInput("Each input is an object with 'name', 'datatype', 'shape' and 'data'.")
    name, datatype, shape = raw["name"], raw.get("datatype"), raw.get("shape")
    if datatype not in DTYPES:
        raise InvalidInput(f"Input {name!r}: unknown datatype {datatype!r}; one of {', '.join(DTYPES)}.")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(f"Input {name!r}: 'shape' is a list of non-negative integers.")
    count = math.prod(shape)
    size = _params(raw, "input").get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise InvalidInput(f"Input {name!r}: binary_data_size does not fit the binary data sent.")
        values = _from_binary(name, datatype, binary[offset : offset + size])
        offset += size
    else:
        if "data" not in raw:
            raise InvalidInput(f"Input {name!r} has no 'data'.")
        values = _flatten(raw["data"])
        _check_values(name, datatype, values)
    if len(values) != count:
        raise InvalidInput(f"Input {name!r}: shape {shape} needs {count} values; got {len(values)}.")
    return Tensor(name, datatype, shape, values), offset


def _flatten(data: Any) -> list:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    flat: list = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


_LIMITS = {k: (int(np.iinfo(DTYPES[k]).min), int(np.iinfo(DTYPES[k]).max)) for k in _INTEGER}
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "BOOL": (bool,),
    "BYTES": (str,),
    **dict.fromkeys(_INTEGER, (int,)),
    **dict.fromkeys(_FLOAT, (int, float)),
}


def _check_values(name: str, datatype: str, values: list) -> None:
    kinds = set(map(type, values))
    accepts = _ACCEPTS[datatype]
    if not kinds.issubset(accepts):
        wrong = next(v for v in values if type(v) not in accepts)
        raise InvalidInput(f"Input {name!r}: {wrong!r} is not a {datatype} value.")
    if datatype in _LIMITS and values:
        low, high = _LIMITS[datatype]
        if min(values) < low or max(values) > high:
            raise InvalidInput(f"Input {name!r}: a value is out of the range of {datatype}.")


def _from_binary(name: str, datatype: str, raw: bytes) -> list:
    if datatype == "BYTES":
        values, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise InvalidInput(f"Input {name!r}: truncated BYTES element.")
            (length,) = struct.unpack_from("<I", raw, position)
            chunk = raw[position + 4 : position + 4 + length]
            if len(chunk) != length:
                raise InvalidInput(f"Input {name!r}: truncated BYTES element.")
            try:
                values.append(chunk.decode())
            except UnicodeDecodeError:
                raise InvalidInput(f"Input {name!r}: BYTES elements must be UTF-8 text.") from None
            position += 4 + length
        return values
    dtype = np.dtype(DTYPES[datatype])
    if len(raw) % dtype.itemsize:
        raise InvalidInput(f"Input {name!r}: {len(raw)} bytes is not a whole number of {datatype} values.")
    return np.frombuffer(raw, dtype=dtype).tolist()


# -- responses ----------------------------------------------------------------------


def _datatype(values: list) -> str:
    kinds = set(map(type, values))
    if not kinds or kinds == {bool}:
        return "BOOL" if kinds else "FP64"
    if kinds == {int}:
        return "UINT64" if max(values) > _LIMITS["INT64"][1] else "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def _shape_and_flat(values: Any) -> tuple[list[int], list]:
    if not isinstance(values, list):
        return [1], [values]
    if values and isinstance(values[0], list):
        width = len(values[0])
        if all(isinstance(v, list) and len(v) == width for v in values):
            flat = [x for row in values for x in row]
            return [len(values), width], flat
    return [len(values)], values


def output_tensors(predictions: Any, output_names: list[str]) -> list[tuple[str, list[int], list]]:
    """(name, shape, flat values) per output: one per column of a DataFrame result,
    otherwise one named after the signature's single output (or 'predict')."""
    if isinstance(predictions, list) and predictions and all(isinstance(r, dict) for r in predictions):
        names = list(dict.fromkeys(k for r in predictions for k in r))
        return [(str(n), [len(predictions)], [r.get(n) for r in predictions]) for n in names]
    if isinstance(predictions, dict):
        return [(str(k), *_shape_and_flat(v if isinstance(v, list) else [v])) for k, v in predictions.items()]
    name = output_names[0] if len(output_names) == 1 else DEFAULT_OUTPUT
    return [(name, *_shape_and_flat(predictions))]


def infer_response(
    predictions: Any,
    request: InferRequest,
    *,
    model_name: str,
    model_version: str,
    request_id: str,
    output_names: list[str],
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    outputs = output_tensors(predictions, output_names)
    if request.requested is not None:
        available = {name: (name, shape, flat) for name, shape, flat in outputs}
        unknown = [n for n in request.requested if n not in available]
        if unknown:
            raise InvalidInput(f"Unknown output(s) {unknown}; this model returns {list(available)}.")
        outputs = [available[n] for n in request.requested]
    tensors, chunks = [], []
    for name, shape, flat in outputs:
        datatype = _datatype(flat)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if request.binary_all or name in request.binary:
            chunk = _to_binary(datatype, flat)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = flat if datatype != "BYTES" else [v if isinstance(v, str) else str(v) for v in flat]
        tensors.append(tensor)
    header = fastjson.dumps(
        {"model_name": model_name, "model_version": model_version, "id": request_id, "outputs": tensors},
        default=_json_default,
    )
    if not chunks:
        return header, [(b"content-type", b"application/json")]
    return header + b"".join(chunks), [
        (b"content-type", b"application/octet-stream"),
        (HEADER_LENGTH, str(len(header)).encode()),
    ]


def _to_binary(datatype: str, flat: list) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in flat:
            raw = value.encode() if isinstance(value, str) else str(value).encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.asarray(flat, dtype=DTYPES[datatype]).tobytes()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


# -- metadata -----------------------------------------------------------------------


def tensors_metadata(signature_json: str | None, default_name: str) -> list[dict[str, Any]]:
    """A signature's inputs or outputs as protocol tensor metadata."""
    if not signature_json:
        return []
    specs = json.loads(signature_json)
    tensors = []
    for i, spec in enumerate(specs):
        if spec.get("type") == "tensor":
            tensor_spec = spec.get("tensor-spec") or {}
            dtype = str(tensor_spec.get("dtype", "object"))
            tensors.append(
                {
                    "name": spec.get("name") or (default_name if len(specs) == 1 else f"{default_name}-{i}"),
                    "datatype": NUMPY_TO_V2.get(dtype, "BYTES"),
                    "shape": list(tensor_spec.get("shape") or [-1]),
                }
            )
        else:
            tensors.append(
                {
                    "name": spec.get("name") or (default_name if len(specs) == 1 else f"{default_name}-{i}"),
                    "datatype": MLFLOW_TO_V2.get(spec.get("type"), "BYTES"),
                    "shape": [-1],
                    "parameters": {"content_type": "pd"},
                }
            )
    return tensors


def output_names(signature_outputs: str | None) -> list[str]:
    return [t["name"] for t in tensors_metadata(signature_outputs, DEFAULT_OUTPUT)]
