"""MLflow's scoring protocol: every input format, and the schema errors."""

import json

import numpy as np
import pytest

from deployments.serving.errors import InvalidInput, SchemaMismatch, UnsupportedMediaType
from deployments.serving.protocol import parse_body
from deployments.serving.schema import InputSchema
from tests.deployments.conftest import COLUMNS, ROW

SCHEMA = InputSchema.from_signature(json.dumps([{"type": "double", "name": c, "required": True} for c in COLUMNS]))
EXPECTED = np.array([ROW])


def prepared(body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SCHEMA.prepare(parse_body(raw, content_type))


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}},
        {"dataframe_split": {"columns": list(reversed(COLUMNS)), "data": [list(reversed(ROW))]}},
        {"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]},
        {"instances": [ROW]},
        {"instances": [dict(zip(COLUMNS, ROW, strict=True))]},
        {"inputs": {c: [v] for c, v in zip(COLUMNS, ROW, strict=True)}},
        {"inputs": [ROW]},
        {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}},
    ],
)
def test_every_json_format_gives_the_same_matrix_in_signature_order(body):
    assert np.array_equal(prepared(body), EXPECTED)


def test_csv_with_a_header_row():
    csv = (",".join(COLUMNS) + "\n" + ",".join(map(str, ROW)) + "\n").encode()
    assert np.array_equal(prepared(csv, "text/csv"), EXPECTED)


def test_extra_columns_are_ignored_like_mlflow():
    body = {"dataframe_records": [{**dict(zip(COLUMNS, ROW, strict=True)), "note": "x"}]}
    assert np.array_equal(prepared(body), EXPECTED)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "valid JSON"),
        (b"[1, 2]", "Received a list"),
        (b'{"dataframe_split": {"data": [[1]]}, "instances": [[1]]}', "exactly one of the input fields"),
        (b'{"rows": [[1]]}', "exactly one of the input fields"),
        (b'{"dataframe_split": [[1, 2]]}', "must be a dictionary"),
        (b'{"dataframe_records": {"a": 1}}', "must be a list of records"),
        (b"[" * 5000 + b"]" * 5000, "valid JSON"),
    ],
)
def test_malformed_bodies_are_invalid_input(raw, message):
    with pytest.raises(InvalidInput, match=message):
        parse_body(raw, "application/json")


def test_missing_column_names_the_schema_and_the_missing_input():
    with pytest.raises(SchemaMismatch) as error:
        prepared({"dataframe_split": {"columns": COLUMNS[:3], "data": [ROW[:3]]}})
    assert "Model is missing inputs ['petal width (cm)']" in error.value.message
    assert "'sepal length (cm)': double" in error.value.message


@pytest.mark.parametrize(("value", "got"), [("5.1", "string"), (True, "boolean"), (None, "Missing value")])
def test_wrong_types_are_not_converted(value, got):
    with pytest.raises(SchemaMismatch, match=got):
        prepared({"dataframe_split": {"columns": COLUMNS, "data": [[value, 3.5, 1.4, 0.2]]}})


def test_positional_rows_of_the_wrong_width():
    with pytest.raises(SchemaMismatch, match="Expected rows of 4 values"):
        prepared({"instances": [[1.0, 2.0]]})


def test_only_json_and_csv_in_utf8():
    with pytest.raises(UnsupportedMediaType):
        parse_body(b"x", "application/xml")
    with pytest.raises(UnsupportedMediaType):
        parse_body(b"{}", "application/json; charset=latin-1")


def test_integers_are_safe_doubles():
    assert prepared({"instances": [[5, 3, 1, 0]]}).tolist() == [[5.0, 3.0, 1.0, 0.0]]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": [1.5, -2, 1e-7, "x\\ty", null, true]}',
        b'{"a": NaN, "b": Infinity, "c": -Infinity}',
        b'{"big": 1e999, "huge": 123456789012345678901234567890}',
        '{"snow": "\u2603"}'.encode(),
    ],
)
def test_fast_json_reads_what_the_standard_library_reads(raw):
    import json
    import math

    from deployments.serving import fastjson

    ours, theirs = fastjson.loads(raw), json.loads(raw)
    assert json.dumps(ours) == json.dumps(theirs)
    assert all(isinstance(v, float) and math.isinf(v) for v in [theirs.get("big", math.inf)])


@pytest.mark.parametrize(
    "value",
    [
        {"predictions": [0, 2, 1]},
        {"predictions": [0.1, 1e-05, 12345678.9, -0.0, "ok"]},
        {"predictions": [2**70]},
        {"in": {"a\tb": [1.5]}, "out": ["x"]},
    ],
)
def test_fast_json_writes_what_the_standard_library_writes(value):
    import json

    from deployments.serving import fastjson

    encoded = fastjson.dumps(value)
    assert b"\t" not in encoded  # the spool splits a line at its one raw tab
    assert json.loads(encoded) == value


def test_fast_json_writes_non_finite_numbers_as_the_standard_library_does():
    from deployments.serving import fastjson

    value = {"predictions": [float("nan"), float("inf"), None]}
    assert fastjson.dumps(value) == b'{"predictions":[NaN,Infinity,null]}'


def test_fast_json_writes_numpy_values():
    import numpy as np

    from deployments.serving import fastjson

    assert fastjson.dumps({"p": np.array([1, 2]), "s": np.float32(0.5), "i": np.int64(3)}) == (
        b'{"p":[1,2],"s":0.5,"i":3}'
    )


def test_an_oip_matrix_goes_straight_in_only_when_every_value_fits_every_column():
    def schema(*types):
        return InputSchema.from_signature(json.dumps([{"name": f"c{i}", "type": t} for i, t in enumerate(types)]))

    doubles, longs = schema("double", "double"), schema("long", "double")
    assert doubles.matrix([1, 2.5, 3.0, 4], [2, 2]).tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert doubles.prepare(doubles.matrix([1, 2.5], [1, 2])).tolist() == [[1.0, 2.5]]
    # A bool, a float for a long column, or the wrong width: the general check decides (and names the problem)
    assert doubles.matrix([True, 2.5], [1, 2]) is None
    assert longs.matrix([1.5, 2.5], [1, 2]) is None and longs.matrix([1, 2], [1, 2]) is not None
    assert doubles.matrix([1.0, 2.0, 3.0], [1, 3]) is None
    with pytest.raises(SchemaMismatch, match="Can not safely convert double to long"):
        longs.prepare([[1.5, 2.5]])
