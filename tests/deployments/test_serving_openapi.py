"""OpenAPI for the serving plane: the document is served offline beside /api/v1/'s, its
references resolve, and real answers of both protocols and /feedback match it."""

import json
import re

import jsonschema
import pytest
import requests

from deployments.serving.config import EndpointSpec, RevisionSpec
from deployments.serving.openapi import serving_schema
from tests.deployments.conftest import COLUMNS, ROW, split_body

DOC = serving_schema()


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves_and_every_operation_documents_its_answers():
    schemas = DOC["components"]["schemas"]
    for ref in _refs(DOC):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    operations = [(p, m, op) for p, item in DOC["paths"].items() for m, op in item.items()]
    assert {"/invocations", "/feedback", "/v2", "/v2/models/{model_name}/infer"} <= set(DOC["paths"])
    assert len({op["operationId"] for _, _, op in operations}) == len(operations)
    for path, _, op in operations:
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path


@pytest.mark.django_db
def test_schema_and_docs_are_served_offline_and_linked_from_the_api_docs(client):
    response = client.get("/api/v1/serving/schema/")
    assert response.status_code == 200 and response.json()["paths"].keys() == DOC["paths"].keys()
    html = client.get("/api/v1/serving/docs/").content.decode()
    assert "swagger-ui" in html and "/api/v1/serving/schema/" in html
    assert re.findall(r'(?:src|href)="(https?://[^"]+)"', html) == []
    main = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/serving/docs/" in main["info"]["description"]
    assert not any(p.startswith("/api/v1/serving") for p in main["paths"])


def _check(response, path, method="post"):
    """The answer validates against the schema documented for its status."""
    documented = DOC["paths"][path][method]["responses"][str(response.status_code)]
    schema = documented["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": DOC["components"]}).validate(response.json())


def _request_valid(body, path):
    schema = DOC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": DOC["components"]}).validate(body)


def test_real_answers_match_the_document(serve, model_dirs):
    server, _, _ = serve(
        EndpointSpec(id=1, slug="iris", champion=RevisionSpec(3, str(model_dirs["iris"])), public=True)
    )
    url = lambda p: server.url("/serve/iris" + p)  # noqa: E731
    _request_valid(split_body(), "/invocations")
    ok = requests.post(url("/invocations"), json=split_body())
    _check(ok, "/invocations")
    _check(requests.post(url("/invocations"), json={"rows": []}), "/invocations")
    feedback = {"request_id": ok.headers["x-request-id"], "actual": [0]}
    _request_valid(feedback, "/feedback")
    _check(requests.post(url("/feedback"), json=feedback), "/feedback")
    _check(requests.post(url("/feedback"), json={"actual": 1}), "/feedback")
    example = DOC["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    _request_valid(example["example"], "/v2/models/{model_name}/infer")
    answer = requests.post(url("/v2/models/iris/infer"), json=example["example"])
    assert answer.status_code == 200
    _check(answer, "/v2/models/{model_name}/infer")
    bad = {"inputs": [{"name": COLUMNS[0], "datatype": "FP64", "shape": [2], "data": ROW}]}
    _check(requests.post(url("/v2/models/iris/infer"), json=bad), "/v2/models/{model_name}/infer")
    _check(requests.get(url("/v2")), "/v2", "get")
    _check(requests.get(url("/v2/models/iris")), "/v2/models/{model_name}", "get")
    _check(
        requests.get(url("/v2/models/iris/versions/3/ready")),
        "/v2/models/{model_name}/versions/{model_version}/ready",
        "get",
    )
    _check(requests.get(url("/v2/models/other")), "/v2/models/{model_name}", "get")
    assert json.loads(json.dumps(DOC)) == DOC
