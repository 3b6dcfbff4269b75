"""The Open Inference Protocol (KServe V2, REST) on the serving plane: the official
`tritonclient` client, plain JSON the way MLServer's docs show it, and a conformance
pass over metadata, every datatype we claim (JSON and binary) and the errors."""

import json
import math
import struct
import tempfile
import time

import numpy as np
import pytest
import requests

from deployments.serving.config import EndpointSpec, RevisionSpec, token_hash
from tests.deployments.conftest import COLUMNS, ROW, ServerThread

TOKEN = "s3cret"
ROWS = [ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _save_echo(path):
    import mlflow.pyfunc

    class EchoModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.pyfunc.save_model(str(path), python_model=EchoModel(), pip_requirements=["pandas"])
    return path


@pytest.fixture(scope="module")
def oip_server(model_dirs):
    from deployments.serving.app import ServingApp
    from deployments.serving.config import StaticSource
    from deployments.serving.predlog import MemorySink, Spool

    root = tempfile.mkdtemp(prefix="mlp-oip-")
    echo = _save_echo(f"{root}/echo")
    specs = [
        EndpointSpec(id=1, slug="iris", champion=RevisionSpec(11, str(model_dirs["iris"])), public=True),
        EndpointSpec(
            id=2,
            slug="secure",
            champion=RevisionSpec(21, str(model_dirs["iris"])),
            token_hashes=frozenset([token_hash(TOKEN)]),
            max_body_bytes=4000,
        ),
        EndpointSpec(
            id=3, slug="broken", champion=RevisionSpec(31, str(model_dirs["broken"]), trusted=True), public=True
        ),
        EndpointSpec(id=4, slug="echo", champion=RevisionSpec(41, str(echo), trusted=True), public=True),
        EndpointSpec(
            id=5,
            slug="shadowed",
            champion=RevisionSpec(51, str(model_dirs["iris"])),
            challenger=RevisionSpec(52, str(model_dirs["iris2"])),
            mode="shadow",
            public=True,
        ),
        EndpointSpec(id=6, slug="empty", champion=None, public=True),
    ]
    sink = MemorySink()
    app = ServingApp(source=StaticSource(specs), spool=Spool(f"{root}/spool", sink=sink, interval=0.05))
    with ServerThread(app) as server:
        server.sink = sink
        yield server


@pytest.fixture(scope="module")
def iris_model(model_dirs):
    from deployments.serving.loader import load_model

    return load_model(model_dirs["iris"])


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def logged(sink, **match):
    return [r for r in list(sink.records) if all(r.get(k) == v for k, v in match.items())]


def columns_request(rows=ROWS, datatype="FP64", **extra):
    """MLServer's docs: one input per DataFrame column, `content_type: pd`."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": datatype, "data": [r[i] for r in rows]}
            for i, c in enumerate(COLUMNS)
        ],
        **extra,
    }


def infer(server, slug="iris", body=None, path="", **kwargs):
    return requests.post(server.url(f"/serve/{slug}/v2/models/{slug}{path}/infer"), json=body, **kwargs)


# -- tritonclient ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def triton(oip_server):
    http = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]' (requirements-dev)")
    client = http.InferenceServerClient(url=f"127.0.0.1:{oip_server.port}/serve/iris")
    yield http, client
    client.close()


def test_tritonclient_health_and_metadata(triton):
    _, client = triton
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["11"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [(c, "FP64", [-1]) for c in COLUMNS]
    assert meta["outputs"][0]["datatype"] == "INT64"
    assert meta["parameters"]["loader"] == "sklearn-fast"


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer_one_matrix_tensor(triton, oip_server, iris_model, binary):
    http, client = triton
    matrix = np.array(ROWS, dtype=np.float64)
    tensor = http.InferInput("input-0", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=binary)
    outputs = None if binary else [http.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("iris", [tensor], outputs=outputs, request_id=f"triton-{binary}")
    assert result.get_response()["id"] == f"triton-{binary}"
    assert result.as_numpy("predict").tolist() == iris_model.predict(matrix).tolist() == [0, 2, 1]
    wait_for(lambda: logged(oip_server.sink, rid=f"triton-{binary}"))
    record = logged(oip_server.sink, rid=f"triton-{binary}")[0]
    assert record["s"] == 200 and record["n"] == 3 and record["r"] == 11
    assert json.loads(record["payload"])["in"][COLUMNS[2]] == [1.4, 5.2, 4.2]


def test_tritonclient_dataframe_columns_and_errors(triton):
    http, client = triton
    tensors = []
    for i, column in enumerate(COLUMNS):
        tensor = http.InferInput(column, [len(ROWS)], "FP32")
        tensor.set_data_from_numpy(np.array([r[i] for r in ROWS], dtype=np.float32))
        tensors.append(tensor)
    result = client.infer("iris", tensors, parameters={"content_type": "pd"})
    assert result.as_numpy("predict").tolist() == [0, 2, 1]
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="Model is missing inputs"):
        client.infer("iris", tensors[:3], parameters={"content_type": "pd"})
    with pytest.raises(InferenceServerException, match="not served here"):
        client.get_model_metadata("other")


# -- plain JSON (MLServer's docs) ---------------------------------------------------------


def test_plain_json_dataframe_request_like_mlserver_docs(oip_server):
    response = infer(oip_server, body=columns_request(id="req-1"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "iris",
        "model_version": "11",
        "id": "req-1",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [3], "data": [0, 2, 1]}],
    }
    assert response.headers["x-request-id"] == "req-1"
    # Without an id in the body the response's id is the x-request-id (the feedback key).
    plain = infer(oip_server, body=columns_request(), headers={"X-Request-Id": "hdr-7"})
    assert plain.json()["id"] == "hdr-7" == plain.headers["x-request-id"]
    feedback = requests.post(oip_server.url("/serve/iris/feedback"), json={"request_id": "hdr-7", "actual": [0, 2, 1]})
    assert feedback.status_code == 202


def test_the_same_predictions_as_the_mlflow_protocol(oip_server):
    mlflow = requests.post(
        oip_server.url("/serve/iris/invocations"), json={"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
    ).json()["predictions"]
    nested = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROWS}]}
    assert infer(oip_server, body=nested).json()["outputs"][0]["data"] == mlflow
    ints = columns_request(rows=[[5, 3, 1, 0]], datatype="INT64")
    assert infer(oip_server, body=ints).json()["outputs"][0]["data"] == [0]


def test_a_pinned_version_and_the_shadow_both_logged(oip_server):
    response = infer(oip_server, "shadowed", columns_request(id="shadow-1"))
    assert response.status_code == 200 and response.json()["model_version"] == "51"
    wait_for(lambda: len(logged(oip_server.sink, rid="shadow-1")) == 2)
    assert {r["role"]: r["r"] for r in logged(oip_server.sink, rid="shadow-1")} == {"champion": 51, "shadow": 52}
    pinned = infer(oip_server, "shadowed", columns_request(id="pin-1"), path="/versions/52")
    assert pinned.json()["model_version"] == "52"
    wait_for(lambda: logged(oip_server.sink, rid="pin-1"))
    assert [(r["role"], r["r"]) for r in logged(oip_server.sink, rid="pin-1")] == [("challenger", 52)]
    meta = requests.get(oip_server.url("/serve/shadowed/v2/models/shadowed/versions/52")).json()
    assert meta["versions"] == ["51", "52"] and meta["parameters"]["version"] == "52"


# -- conformance: every datatype, JSON and binary ------------------------------------------

DATATYPE_VALUES = {
    "BOOL": [True, False],
    "INT8": [-128, 127],
    "INT16": [-32768, 7],
    "INT32": [-(2**31), 2**31 - 1],
    "INT64": [-(2**63), 2**63 - 1],
    "UINT8": [0, 255],
    "UINT16": [0, 65535],
    "UINT32": [0, 2**32 - 1],
    "UINT64": [0, 2**63 + 5],
    "FP16": [0.5, -2.25],
    "FP32": [1.5, -0.125],
    "FP64": [0.1, 1e300],
    "BYTES": ["a", "héllo"],
}
EXPECTED_OUT = {"UINT64": "UINT64", "BOOL": "BOOL", "BYTES": "BYTES", "FP16": "FP64", "FP32": "FP64", "FP64": "FP64"}


def _binary(datatype, values):
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    from deployments.serving.oip import DTYPES

    return np.asarray(values, dtype=DTYPES[datatype]).tobytes()


@pytest.mark.parametrize("datatype", list(DATATYPE_VALUES))
def test_every_datatype_round_trips_through_a_generic_pyfunc_model(oip_server, datatype):
    values = DATATYPE_VALUES[datatype]
    tensor = {"name": "col", "datatype": datatype, "shape": [2]}
    body = {"parameters": {"content_type": "pd"}, "inputs": [{**tensor, "data": values}]}
    response = infer(oip_server, "echo", body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "col" and output["shape"] == [2]
    assert output["datatype"] == EXPECTED_OUT.get(datatype, "INT64")
    assert output["data"] == values

    # The same tensor as binary data after the JSON header, and the answer in binary.
    raw = _binary(datatype, values)
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": "col", "parameters": {"binary_data": True}}],
        }
    ).encode()
    response = requests.post(
        oip_server.url("/serve/echo/v2/models/echo/infer"),
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    meta = json.loads(response.content[:size])
    (output,) = meta["outputs"]
    assert output["parameters"]["binary_data_size"] == len(response.content) - size
    payload = response.content[size:]
    if output["datatype"] == "BYTES":
        assert payload == _binary("BYTES", values)
    else:
        from deployments.serving.oip import DTYPES

        decoded = np.frombuffer(payload, dtype=DTYPES[output["datatype"]]).tolist()
        assert decoded == values or all(math.isclose(a, b) for a, b in zip(decoded, values, strict=True))


# -- conformance: errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{nope", 400, "valid JSON"),
        ({"inputs": []}, 400, "non-empty list"),
        ({"inputs": [{"name": "x", "datatype": "FP128", "shape": [1], "data": [1]}]}, 400, "unknown datatype"),
        ({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 4], "data": ROW}]}, 400, "needs 8 values"),
        ({"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [300]}]}, 400, "out of the range"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ["1.0"]}]}, 400, "not a FP32"),
        (columns_request(datatype="BYTES", rows=[["a", "b", "c", "d"]]), 400, "Can not safely convert string"),
        ({**columns_request(), "outputs": [{"name": "proba"}]}, 400, "Unknown output"),
    ],
)
def test_bad_requests_are_400_in_the_protocols_error_shape(oip_server, body, status, message):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = requests.post(oip_server.url("/serve/iris/v2/models/iris/infer"), data=data)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_auth_not_found_limits_model_errors_and_readiness(oip_server):
    url = oip_server.url
    assert infer(oip_server, "secure", columns_request()).status_code == 401
    assert "Bearer" in infer(oip_server, "secure", columns_request()).json()["error"]
    assert requests.get(url("/serve/secure/v2/models/secure")).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert infer(oip_server, "secure", columns_request(), headers=auth).status_code == 200
    assert infer(oip_server, "secure", columns_request(rows=[ROW] * 300), headers=auth).status_code == 413
    assert infer(oip_server, "nope", columns_request()).status_code == 404
    assert requests.post(url("/serve/iris/v2/models/other/infer"), json=columns_request()).status_code == 404
    assert infer(oip_server, body=columns_request(), path="/versions/99").status_code == 404
    assert requests.get(url("/serve/iris/v2/models/iris/infer")).status_code == 405
    assert requests.get(url("/serve/iris/v2/nothing")).json()["error"].startswith("No such")
    before = requests.get(url("/serve/_status")).json()["server_errors"]
    failed = infer(oip_server, "broken", columns_request())
    assert failed.status_code == 500 and "boom" in failed.json()["error"]
    assert requests.get(url("/serve/_status")).json()["server_errors"] == before + 1
    assert requests.get(url("/serve/empty/v2/health/live")).status_code == 200
    assert requests.get(url("/serve/empty/v2/health/ready")).status_code == 503
    assert requests.get(url("/serve/empty/v2/models/empty/ready")).status_code == 503
    assert infer(oip_server, "empty", columns_request()).status_code == 503
