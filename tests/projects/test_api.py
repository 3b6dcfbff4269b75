from django.db import connection
from django.test.utils import CaptureQueriesContext
import pytest

from mlplatform.roles import Role
from projects.models import Membership
from tests.conftest import bearer_client
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


def test_create_and_list(api, user):
    response = api.post("/api/v1/projects/", {"name": "Churn", "description": "Who leaves"}, format="json")
    assert response.status_code == 201
    assert response.json()["slug"] == "churn" and response.json()["my_role"] == "owner"
    assert [p["slug"] for p in api.get("/api/v1/projects/").json()["results"]] == ["churn"]


def test_create_with_duplicate_slug_is_400_with_message(api, user):
    make_project(owner=user, slug="taken")
    response = api.post("/api/v1/projects/", {"name": "x", "slug": "taken"}, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["error"]["message"]


def test_validation_errors_have_a_stable_shape(api):
    response = api.post("/api/v1/projects/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and "name" in response.json()["error"]["message"]


def test_a_project_i_am_not_in_is_404(api, other_user):
    project = make_project(owner=other_user)
    assert api.get(f"/api/v1/projects/{project.slug}/").status_code == 404
    assert api.patch(f"/api/v1/projects/{project.slug}/", {"name": "x"}, format="json").status_code == 404
    assert api.get(f"/api/v1/projects/{project.slug}/members/").status_code == 404
    assert api.get("/api/v1/projects/does-not-exist/").status_code == 404


def test_a_viewer_trying_to_write_is_403(user, other_user, token_for):
    project = make_project(owner=other_user, members={user: Role.VIEWER})
    client = bearer_client(token_for(user))
    assert client.get(f"/api/v1/projects/{project.slug}/").status_code == 200
    assert client.patch(f"/api/v1/projects/{project.slug}/", {"name": "x"}, format="json").status_code == 403
    response = client.post(
        f"/api/v1/projects/{project.slug}/members/", {"username": user.username, "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert Membership.objects.get(project=project, user=user).role == Role.VIEWER


def test_owner_manages_members(api, user, other_user):
    project = make_project(owner=user)
    base = f"/api/v1/projects/{project.slug}/members/"
    assert api.post(base, {"username": other_user.username, "role": "data_scientist"}, format="json").status_code == 201
    assert api.patch(f"{base}{other_user.username}/", {"role": "ml_engineer"}, format="json").json()["role"] == (
        "ml_engineer"
    )
    assert api.post(base, {"username": "ghost", "role": "viewer"}, format="json").status_code == 400
    assert api.post(base, {"username": other_user.username, "role": "boss"}, format="json").status_code == 400
    assert api.delete(f"{base}{other_user.username}/").status_code == 204
    assert [m["username"] for m in api.get(base).json()] == [user.username]


def test_owner_updates_project(api, user):
    project = make_project(owner=user)
    response = api.patch(f"/api/v1/projects/{project.slug}/", {"description": "Better"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "Better"


def test_platform_admin_sees_every_project(other_user):
    from rest_framework.test import APIClient

    make_project(owner=other_user)
    admin = UserFactory(is_platform_admin=True)
    client = APIClient()
    client.force_authenticate(admin)
    assert client.get("/api/v1/projects/").json()["count"] == 1


def _count_list_queries(api) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert api.get("/api/v1/projects/?page_size=1000").status_code == 200
    return len(ctx)


def test_project_list_issues_a_constant_number_of_queries(api, user):
    make_project(owner=user)
    few = _count_list_queries(api)
    for _ in range(25):
        make_project(owner=user, members={UserFactory(): Role.VIEWER})
    assert _count_list_queries(api) == few
