"""REST API wiring, permissions and bad input for /api/v1/projects/<slug>/streams/."""

import pytest

from data import services
from data.models import IngestToken, Stream
from mlplatform.models import AuditEvent
from mlplatform.roles import Role
from tests.conftest import bearer_client
from tests.factories import UserFactory, make_project


@pytest.fixture
def base(project):
    return f"/api/v1/projects/{project.slug}/streams/"


def test_create_list_detail_patch(api, base, project):
    created = api.post(base, {"name": "Plant sensors", "description": "line 3"}, format="json")
    assert created.status_code == 201, created.data
    assert created.data["slug"] == "plant-sensors"
    assert created.data["ingest_url"] == f"/ingest/{project.slug}/plant-sensors"
    assert created.data["schema"] is None and created.data["source"] == "http"
    listed = api.get(base)
    assert [s["slug"] for s in listed.data["results"]] == ["plant-sensors"]
    schema = {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}
    patched = api.patch(f"{base}plant-sensors/", {"schema": schema, "status": "paused"}, format="json")
    assert patched.status_code == 200 and patched.data["schema"] == schema and patched.data["status"] == "paused"
    assert api.get(f"{base}plant-sensors/").data["schema_inferred"] is False
    actions = list(AuditEvent.objects.filter(project_id=project.pk).values_list("action", flat=True))
    assert "stream.create" in actions and "stream.update" in actions


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"name": ""}, "name"),
        ({"name": "x", "slug": "Not A Slug"}, "Slug"),
        ({"name": "x", "schema": {"type": "no-such-type"}}, "JSON Schema"),
        ({"name": "x", "schema": [1, 2]}, "JSON object"),
        ({"name": "x", "source": "kafka"}, "source"),
        ({"name": "x", "source": "mqtt", "mqtt_url": "http://broker", "mqtt_topics": ["a/b"]}, "broker URL"),
        ({"name": "x", "source": "mqtt", "mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_topics": []}, "topic"),
        ({"name": "x", "source": "mqtt", "mqtt_url": "mqtt://127.0.0.1", "mqtt_topics": ["a/#/b"]}, "topic"),
        ({"name": "x", "retention_days": -1}, "retention_days"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(api, base, body, fragment):
    response = api.post(base, body, format="json")
    assert response.status_code == 400
    assert fragment.lower() in str(response.data).lower()
    assert not Stream.objects.exists()


def test_duplicate_slug_conflicts(api, base):
    assert api.post(base, {"name": "A", "slug": "a"}, format="json").status_code == 201
    assert api.post(base, {"name": "A again", "slug": "a"}, format="json").status_code == 409


def test_roles(project, user, base):
    viewer, scientist, outsider = UserFactory(), UserFactory(), UserFactory()
    from projects import services as project_services

    project_services.membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=user)
    project_services.membership_add(project=project, username=scientist.username, role=Role.DATA_SCIENTIST, actor=user)
    stream = services.stream_create(project=project, actor=user, name="S")
    from rest_framework.test import APIClient

    def as_user(u):
        client = APIClient()
        client.force_authenticate(u)
        return client

    assert as_user(viewer).get(base).status_code == 200
    assert as_user(viewer).get(f"{base}s/").status_code == 200
    assert as_user(viewer).post(base, {"name": "V"}, format="json").status_code == 403
    assert as_user(viewer).patch(f"{base}s/", {"name": "V"}, format="json").status_code == 403
    assert as_user(viewer).post(f"{base}s/tokens/", {}, format="json").status_code == 403
    assert as_user(viewer).post(f"{base}s/quarantine/release/", {}, format="json").status_code == 403
    assert as_user(scientist).post(f"{base}s/tokens/", {}, format="json").status_code == 201
    for path in [base, f"{base}s/", f"{base}s/quarantine/", f"{base}s/records/"]:
        assert as_user(outsider).get(path).status_code == 404
    assert as_user(outsider).post(base, {"name": "O"}, format="json").status_code == 404
    other = make_project(owner=outsider)
    assert as_user(viewer).get(f"/api/v1/projects/{other.slug}/streams/").status_code == 404
    assert stream.name == Stream.objects.get(pk=stream.pk).name


def test_tokens_are_shown_once_hashed_and_revocable(api, base, project, user):
    services.stream_create(project=project, actor=user, name="S")
    created = api.post(f"{base}s/tokens/", {"name": "gateway"}, format="json")
    assert created.status_code == 201 and created.data["token"].startswith("mlpi_")
    raw = created.data["token"]
    stored = IngestToken.objects.get()
    assert raw not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    listed = api.get(f"{base}s/tokens/").data
    assert listed[0]["prefix"] == raw[:12] and "token" not in listed[0]
    revoked = api.delete(f"{base}s/tokens/{stored.pk}/")
    assert revoked.status_code == 200 and revoked.data["revoked_at"]
    assert api.delete(f"{base}s/tokens/{stored.pk}/").status_code == 409
    assert api.delete(f"{base}s/tokens/999999/").status_code == 404


def test_a_project_scoped_api_token_of_another_project_sees_nothing(project, user, token_for, base):
    services.stream_create(project=project, actor=user, name="S")
    other = make_project(owner=user)
    scoped = bearer_client(token_for(user, project=other))
    assert scoped.get(base).status_code == 404
    assert bearer_client(token_for(user, project=project)).get(base).status_code == 200


def test_mqtt_password_is_encrypted_at_rest_and_never_returned(api, base):
    body = {
        "name": "M",
        "source": "mqtt",
        "mqtt_url": "mqtt://127.0.0.1:1883",
        "mqtt_topics": ["plant/+/temp"],
        "mqtt_username": "u",
        "mqtt_password": "s3cret-pw",
    }
    created = api.post(base, body, format="json")
    assert created.status_code == 201 and created.data["mqtt_password_set"] is True
    assert "s3cret-pw" not in str(created.data)
    stored = Stream.objects.get().mqtt_password
    assert stored.startswith("fernet:") and "s3cret-pw" not in stored
    from data import secrets

    assert secrets.decrypt(stored) == "s3cret-pw"
