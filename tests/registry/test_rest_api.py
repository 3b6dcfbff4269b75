"""/api/v1/ registry: models, versions with provenance, aliases; other projects -> 404."""

import pytest
from rest_framework.test import APIClient

from experiments import services as exp_services
from mlplatform.roles import Role
from projects import services as project_services
from registry import services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(project, user):
    experiment = exp_services.experiment_get_or_create(project=project, name="exp", user=user)
    run = exp_services.run_create(
        experiment=experiment, user=user, name="train", tags={"mlflow.source.git.commit": "abc123def"}
    )
    exp_services.run_log_batch(run=run, params={"C": "0.5"}, metrics=[("acc", 0.9, 0, 1)])
    exp_services.run_log_inputs(
        run=run,
        datasets=[{"dataset": {"name": "iris", "digest": "d1", "source_type": "local", "source": "{}"}, "tags": []}],
    )
    model = services.registered_model_create(project=project, name="iris-clf", user=user)
    v1 = services.model_version_create(registered_model=model, source=f"runs:/{run.pk}/model", user=user)
    v2 = services.model_version_create(registered_model=model, source=f"runs:/{run.pk}/model", user=user)
    services.alias_set(registered_model=model, alias="champion", version=v1, user=user)
    return model, run, v1, v2


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_models_list_detail_versions_and_provenance(api, registered, project):
    model, run, v1, v2 = registered
    listing = api.get("/api/v1/models/").json()["results"]
    assert [(m["name"], m["version_count"], m["latest_version"]) for m in listing] == [("iris-clf", 2, 2)]
    assert listing[0]["aliases"] == [{"alias": "champion", "version": 1}]
    base = f"/api/v1/projects/{project.slug}/models/iris-clf/"
    detail = api.get(base).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][1]["aliases"] == ["champion"]
    version = api.get(f"{base}versions/1/").json()
    assert version["run_id"] == run.pk and version["code_version"] == "abc123def"
    assert version["params"] == {"C": "0.5"} and version["dataset_digests"][0]["digest"] == "d1"
    assert [v["version"] for v in api.get(f"{base}versions/").json()] == [2, 1]


def test_alias_set_and_delete(api, registered, project):
    base = f"/api/v1/projects/{project.slug}/models/iris-clf/aliases/"
    assert api.put(f"{base}champion/", {"version": 2}, format="json").json() == {"alias": "champion", "version": 2}
    assert api.get(base).json() == [{"alias": "champion", "version": 2}]
    assert api.put(f"{base}latest/", {"version": 2}, format="json").status_code == 400
    assert api.put(f"{base}x/", {"version": 9}, format="json").status_code == 404
    assert api.delete(f"{base}champion/").status_code == 204
    assert api.get(base).json() == []


def test_viewer_reads_but_cannot_move_aliases(registered, project):
    viewer = UserFactory()
    project_services.membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=project.owner)
    client = client_for(viewer)
    base = f"/api/v1/projects/{project.slug}/models/iris-clf/"
    assert client.get(base).status_code == 200
    assert client.put(f"{base}aliases/champion/", {"version": 2}, format="json").status_code == 403


def test_another_projects_model_is_404(registered, project):
    stranger = UserFactory()
    make_project(owner=stranger)
    client = client_for(stranger)
    base = f"/api/v1/projects/{project.slug}/models/iris-clf/"
    for url in [base, f"{base}versions/", f"{base}versions/1/", f"{base}aliases/"]:
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", url
    assert client.put(f"{base}aliases/champion/", {"version": 1}, format="json").status_code == 404
    assert client.get("/api/v1/models/").json()["results"] == []
    assert client.get("/api/v1/projects/nope/models/iris-clf/").status_code == 404
