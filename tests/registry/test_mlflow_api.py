"""registered-models/* and model-versions/* through the MLflow-compatible API."""

import json

from django.test import Client
import pytest

from experiments import services as exp_services
from mlplatform.services import api_token_create
from registry.models import ModelVersion
from tests.factories import UserFactory, make_project

API = "/api/2.0/mlflow"


@pytest.fixture
def call(user, project):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='t', project=project)[1]}"}
    client = Client()

    def do(method, path, body=None, **kw):
        if method == "get":
            return client.get(f"{API}/{path}", body or {}, **headers)
        return getattr(client, method)(
            f"{API}/{path}", json.dumps(body or {}), content_type="application/json", **headers
        )

    return do


@pytest.fixture
def logged(project, user):
    experiment = exp_services.experiment_get_or_create(project=project, name="e", user=user)
    run = exp_services.run_create(experiment=experiment, user=user)
    return run, exp_services.logged_model_create(experiment=experiment, user=user, source_run=run)


def test_register_alias_stage_and_download_uri(call, logged):
    run, model = logged
    assert call("post", "registered-models/create", {"name": "clf"}).status_code == 200
    body = {"name": "clf", "source": f"models:/{model.pk}", "model_id": model.pk}
    mv = call("post", "model-versions/create", body).json()["model_version"]
    assert mv["version"] == "1" and mv["run_id"] == run.pk and mv["status"] == "READY"
    assert (
        call("post", "registered-models/alias", {"name": "clf", "alias": "champion", "version": "1"}).status_code == 200
    )
    by_alias = call("get", "registered-models/alias", {"name": "clf", "alias": "champion"}).json()["model_version"]
    assert by_alias["version"] == "1" and by_alias["aliases"] == ["champion"]
    rm = call("get", "registered-models/get", {"name": "clf"}).json()["registered_model"]
    assert rm["aliases"] == [{"alias": "champion", "version": "1"}] and rm["latest_versions"][0]["version"] == "1"
    uri = call("get", "model-versions/get-download-uri", {"name": "clf", "version": "1"}).json()["artifact_uri"]
    assert uri == model.artifact_location
    staged = call("post", "model-versions/transition-stage", {"name": "clf", "version": "1", "stage": "production"})
    assert staged.json()["model_version"]["current_stage"] == "Production"
    found = call("get", "model-versions/search", {"filter": "name='clf'"}).json()["model_versions"]
    assert [v["version"] for v in found] == ["1"]
    call("delete", "registered-models/alias", {"name": "clf", "alias": "champion"})
    missing = call("get", "registered-models/alias", {"name": "clf", "alias": "champion"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "source", ["file:///etc/passwd", "/root/.ssh", "../../", "http://127.0.0.1:8000/x", "runs:/abc/../../etc"]
)
def test_sources_outside_the_store_are_rejected(call, logged, source):
    call("post", "registered-models/create", {"name": "clf"})
    response = call("post", "model-versions/create", {"name": "clf", "source": source})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()


def test_another_projects_run_or_model_is_rejected(logged):
    run, model = logged
    stranger = UserFactory()
    other = make_project(owner=stranger)
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=stranger, name='t', project=other)[1]}"}

    def post(path, body):
        return client.post(f"{API}/{path}", json.dumps(body), content_type="application/json", **headers)

    post("registered-models/create", {"name": "steal"})
    for source in (
        f"models:/{model.pk}",
        f"runs:/{run.pk}/model",
        f"{run.artifact_uri}/model",
        model.artifact_location,
    ):
        response = post("model-versions/create", {"name": "steal", "source": source})
        assert response.status_code == 400, source
    assert not ModelVersion.objects.exists()
    slug = run.experiment.project.slug
    got = client.get(f"{API}/registered-models/get", {"name": f"{slug}/steal"}, **headers)
    assert got.status_code == 404 and got.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    logged_model = client.get(f"{API}/logged-models/{model.pk}", **headers)
    assert logged_model.status_code == 404 and logged_model.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
