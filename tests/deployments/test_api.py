"""REST API wiring, permissions and bad input for /api/v1/endpoints/."""

import pytest

from deployments import links, services
from mlplatform.roles import Role
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project


@pytest.fixture(autouse=True)
def gate_passed(monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)


@pytest.fixture
def endpoint(project, user):
    return services.endpoint_create(project=project, actor=user, name="Iris")[0]


def test_create_list_and_get(api, project):
    created = api.post("/api/v1/endpoints/", {"project": project.slug, "name": "Churn API"}, format="json")
    assert created.status_code == 201 and created.data["token"].startswith("mlpe_")
    assert created.data["url"] == "/serve/churn-api/invocations"
    listed = api.get("/api/v1/endpoints/")
    assert [e["slug"] for e in listed.data["results"]] == ["churn-api"]
    assert "token" not in api.get("/api/v1/endpoints/churn-api/").data


def test_deploy_traffic_promote_rollback_metrics_events(api, project, user, endpoint, model_dirs):
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    v2 = register_version(project=project, user=user, model_dir=model_dirs["iris2"])
    base = f"/api/v1/endpoints/{endpoint.slug}"
    r1 = api.post(f"{base}/revisions/", {"model": f"{project.slug}/iris", "version": v1.version}, format="json")
    assert r1.status_code == 201 and r1.data["status"] == "deploying"
    services.revision_report_load(revision_id=r1.data["id"], loaded=True)
    r2 = api.post(
        f"{base}/revisions/",
        {"model": f"{project.slug}/iris", "version": v2.version, "role": "canary", "traffic": 0.3},
        format="json",
    )
    assert r2.status_code == 201
    traffic = api.post(f"{base}/traffic/", {"traffic": 0.5}, format="json")
    assert traffic.status_code == 200 and traffic.data["traffic"] == 0.5
    rollback = api.post(f"{base}/rollback/", {"reason": "too slow"}, format="json")
    assert rollback.status_code == 200 and rollback.data["challenger"] is None
    assert api.post(f"{base}/promote/", {}, format="json").status_code == 409
    metrics = api.get(f"{base}/metrics/")
    assert metrics.status_code == 200 and "champion" in metrics.data["revisions"]
    kinds = [e["kind"] for e in api.get(f"{base}/events/").data]
    assert kinds[0] == "rolled_back" and "deployed" in kinds


@pytest.mark.parametrize(
    "body",
    [
        {"model": "x/iris", "version": 0},
        {"model": "x/iris", "version": 1, "traffic": 2},
        {"model": "x/iris", "version": 1, "role": "primary"},
        {"version": 1},
    ],
)
def test_bad_deploy_input_is_400(api, endpoint, body):
    assert api.post(f"/api/v1/endpoints/{endpoint.slug}/revisions/", body, format="json").status_code == 400


def test_another_projects_endpoint_is_not_found_and_viewers_cannot_deploy(api, endpoint, user):
    stranger = UserFactory()
    other = make_project(owner=stranger)
    theirs = services.endpoint_create(project=other, actor=stranger, name="Secret")[0]
    assert api.get(f"/api/v1/endpoints/{theirs.slug}/").status_code == 404
    assert api.get(f"/api/v1/endpoints/{theirs.slug}/metrics/").status_code == 404
    viewer = UserFactory()
    from projects import services as project_services

    project_services.membership_add(project=endpoint.project, username=viewer.username, role=Role.VIEWER, actor=user)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(f"/api/v1/endpoints/{endpoint.slug}/").status_code == 200
    denied = client.post(f"/api/v1/endpoints/{endpoint.slug}/traffic/", {"traffic": 0.5}, format="json")
    assert denied.status_code == 403


def test_only_owners_may_trust_pickled_versions(api, project, user, endpoint, model_dirs):
    engineer = UserFactory()
    from rest_framework.test import APIClient

    from projects import services as project_services

    project_services.membership_add(project=project, username=engineer.username, role=Role.ML_ENGINEER, actor=user)
    version = register_version(project=project, user=user, model_dir=model_dirs["pickled"])
    client = APIClient()
    client.force_authenticate(engineer)
    body = {"model": f"{project.slug}/iris", "version": version.version, "trusted": True}
    assert client.post(f"/api/v1/endpoints/{endpoint.slug}/revisions/", body, format="json").status_code == 403
    assert api.post(f"/api/v1/endpoints/{endpoint.slug}/revisions/", body, format="json").status_code == 201
