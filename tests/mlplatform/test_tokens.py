import base64
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
import pytest

from mlplatform import services
from mlplatform.models import ApiToken
from mlplatform.roles import Role
from tests.conftest import bearer_client
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_create_api_token_command_prints_token_alone_on_last_line(user, capsys):
    call_command("create_api_token", "--user", user.username)
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert raw.startswith("mlp_") and " " not in raw
    stored = ApiToken.objects.get(user=user)
    assert stored.key_hash != raw and raw not in stored.prefix  # only a hash and a short prefix are kept
    assert bearer_client(raw).get("/api/v1/me/").json()["username"] == user.username


def test_create_api_token_command_scoped_to_a_project(user, capsys):
    project = make_project(owner=user, slug="scoped")
    call_command("create_api_token", "--user", user.username, "--project", "scoped")
    capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiToken.objects.get(user=user).project == project


def test_no_credentials_is_401(anon_api):
    response = anon_api.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_revoked_token_is_401(user, token_for):
    raw = token_for(user)
    client = bearer_client(raw)
    assert client.get("/api/v1/projects/").status_code == 200
    services.api_token_revoke(token_id=ApiToken.objects.get(user=user).pk, actor=user)
    assert client.get("/api/v1/projects/").status_code == 401


def test_expired_token_is_401(user, token_for):
    raw = token_for(user, expires_at=timezone.now() - timedelta(seconds=1), expires_in_days=None)
    response = bearer_client(raw).get("/api/v1/projects/")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_garbage_token_is_401():
    assert bearer_client("mlp_not-a-real-token").get("/api/v1/projects/").status_code == 401
    assert bearer_client("something-else").get("/api/v1/projects/").status_code == 401


def _basic(username, password):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
    return client


def test_basic_auth_with_password_or_token(user, token_for):
    assert _basic(user.username, "pw-123456").get("/api/v1/me/").status_code == 200
    assert _basic(user.username, token_for(user)).get("/api/v1/me/").status_code == 200


def test_basic_auth_refuses_empty_and_wrong_passwords_and_foreign_tokens(user, other_user, token_for):
    assert _basic(user.username, "").get("/api/v1/me/").status_code == 401
    assert _basic(user.username, "wrong").get("/api/v1/me/").status_code == 401
    assert _basic(user.username, token_for(other_user)).get("/api/v1/me/").status_code == 401


def test_project_scoped_token_reaches_only_its_project(user, token_for):
    mine = make_project(owner=user, slug="mine")
    make_project(owner=user, slug="also-mine")
    client = bearer_client(token_for(user, project=mine))
    listed = [p["slug"] for p in client.get("/api/v1/projects/").json()["results"]]
    assert listed == ["mine"]
    assert client.get("/api/v1/projects/also-mine/").status_code == 404
    assert client.post("/api/v1/tokens/", {"name": "escalate"}).status_code == 403


def test_tokens_api_create_list_revoke(api, user):
    created = api.post("/api/v1/tokens/", {"name": "laptop", "expires_in_days": 7}).json()
    assert created["token"].startswith("mlp_")
    listed = api.get("/api/v1/tokens/").json()
    assert [t["name"] for t in listed] == ["laptop"] and "token" not in listed[0]
    assert api.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    assert bearer_client(created["token"]).get("/api/v1/me/").status_code == 401


def test_cannot_revoke_someone_elses_token(api, other_user, token_for):
    token_for(other_user)
    foreign = ApiToken.objects.get(user=other_user)
    assert api.delete(f"/api/v1/tokens/{foreign.pk}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_token_scoped_to_a_project_the_user_cannot_see_is_refused(api, other_user):
    make_project(owner=other_user, slug="secret")
    response = api.post("/api/v1/tokens/", {"name": "x", "project": "secret"})
    assert response.status_code == 404


def test_roles_rank():
    from mlplatform.roles import role_at_least

    assert role_at_least(Role.OWNER, Role.VIEWER)
    assert not role_at_least(Role.VIEWER, Role.STAKEHOLDER)
    assert not role_at_least(None, Role.VIEWER)
