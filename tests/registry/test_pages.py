"""Model registry pages: list (and its empty state), model detail, provenance view."""

from django.test import Client
import pytest

from registry import services
from tests.factories import UserFactory, make_project
from tests.registry.test_rest_api import registered  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_empty_registry_says_how_to_register(browser_client):
    html = browser_client.get("/models/").content.decode()
    assert "No registered models yet" in html and "registered_model_name=" in html


def test_list_detail_and_provenance(browser_client, registered, project):  # noqa: F811
    model, run, v1, v2 = registered
    html = browser_client.get("/models/").content.decode()
    assert f'href="/models/{project.slug}/iris-clf/"' in html and "@champion" in html
    html = browser_client.get(f"/models/{project.slug}/iris-clf/").content.decode()
    assert f'href="/models/{project.slug}/iris-clf/versions/2/"' in html and f'href="/runs/{run.pk}/"' in html
    html = browser_client.get(f"/models/{project.slug}/iris-clf/versions/1/").content.decode()
    assert 'id="provenance"' in html
    for expected in [f'href="/runs/{run.pk}/"', "iris", "d1", "abc123def", "C", "0.5", "@champion"]:
        assert expected in html


def test_model_text_is_escaped(browser_client, project, user):
    model = services.registered_model_create(project=project, name="m", user=user)
    services.registered_model_update(model=model, user=user, description="<script>alert(1)</script>")
    for url in ["/models/", f"/models/{project.slug}/m/"]:
        assert "<script>alert" not in browser_client.get(url).content.decode()


def test_other_projects_model_pages_are_404(registered, project):  # noqa: F811
    stranger = UserFactory()
    make_project(owner=stranger)
    client = Client()
    client.force_login(stranger)
    for url in [f"/models/{project.slug}/iris-clf/", f"/models/{project.slug}/iris-clf/versions/1/"]:
        assert client.get(url).status_code == 404
    assert "iris-clf" not in client.get("/models/").content.decode()
    assert Client().get("/models/").status_code == 302
