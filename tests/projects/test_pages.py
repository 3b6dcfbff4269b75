from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest

from projects.models import Membership, Project
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_create_project_through_the_form(browser_client, user):
    response = browser_client.post("/projects/new/", {"name": "Energy forecast", "slug": "", "description": "kWh"})
    assert response.status_code == 302 and response["Location"] == "/projects/energy-forecast/"
    page = browser_client.get("/projects/energy-forecast/")
    assert b"Energy forecast" in page.content and user.username.encode() in page.content


def test_duplicate_slug_is_a_form_error_and_nothing_saved(browser_client, user):
    make_project(owner=user, slug="dup")
    response = browser_client.post("/projects/new/", {"name": "Other", "slug": "dup"})
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert Project.objects.filter(slug="dup").count() == 1 and not Project.objects.filter(name="Other").exists()


def test_csrf_is_enforced_on_forms(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/projects/new/", {"name": "Sneaky"})
    assert response.status_code == 403
    assert not Project.objects.filter(name="Sneaky").exists()


def test_owner_adds_and_removes_a_member(browser_client, user, other_user):
    project = make_project(owner=user)
    response = browser_client.post(
        f"/projects/{project.slug}/members/", {"username": other_user.username, "role": "stakeholder"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=other_user).role == "stakeholder"
    browser_client.post(f"/projects/{project.slug}/members/{other_user.username}/", {"action": "remove"})
    assert not Membership.objects.filter(project=project, user=other_user).exists()


def test_adding_an_unknown_user_shows_a_form_error(browser_client, user):
    project = make_project(owner=user)
    response = browser_client.post(f"/projects/{project.slug}/members/", {"username": "ghost", "role": "viewer"})
    assert response.status_code == 200 and b"no user named" in response.content


def test_non_member_gets_404_and_viewer_cannot_manage_members(browser_client, user, other_user):
    foreign = make_project(owner=other_user)
    assert browser_client.get(f"/projects/{foreign.slug}/").status_code == 404
    viewed = make_project(owner=other_user, members={user: "viewer"})
    assert browser_client.get(f"/projects/{viewed.slug}/").status_code == 200
    response = browser_client.post(f"/projects/{viewed.slug}/members/", {"username": user.username, "role": "owner"})
    assert response.status_code == 403


def test_project_names_are_escaped(browser_client, user):
    make_project(owner=user, name="<script>alert(1)</script>", slug="xss")
    content = browser_client.get("/projects/").content
    assert b"<script>alert(1)</script>" not in content and b"&lt;script&gt;" in content


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/projects/").status_code == 200
    return len(ctx)


def test_project_list_page_issues_a_constant_number_of_queries(browser_client, user):
    make_project(owner=user)
    few = _list_queries(browser_client)
    for _ in range(20):
        make_project(owner=user, members={UserFactory(): "viewer"})
    assert _list_queries(browser_client) == few


def test_token_page_shows_a_new_token_once(browser_client):
    response = browser_client.post("/settings/tokens/", {"name": "laptop", "project": "", "expires_in_days": "30"})
    import re

    raw = re.search(rb'id="new-token">(mlp_[^<]+)<', response.content).group(1)
    assert raw not in browser_client.get("/settings/tokens/").content
