"""The endpoint page's actions: a Promote or Roll back sent from a page that still
shows a revision the endpoint has left is answered with that revision's real state."""

from django.test import Client
import pytest

from deployments import links, services
from deployments.models import Endpoint, RevisionStatus
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled_back(model_dirs, monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    owner = UserFactory()
    project = make_project(owner=owner, slug="pages-flowers")
    register_version(project=project, user=owner, model_dir=model_dirs["iris"])
    register_version(project=project, user=owner, model_dir=model_dirs["iris2"])
    endpoint, _ = services.endpoint_create(project=project, actor=owner, name="Sorter")
    champion = services.revision_deploy(endpoint=endpoint, actor=owner, model_name="pages-flowers/iris", version=1)
    services.revision_report_load(revision_id=champion.pk, loaded=True)
    canary = services.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="pages-flowers/iris", version=2, role="canary"
    )
    services.revision_report_load(revision_id=canary.pk, loaded=True)
    services.challenger_rollback(endpoint=endpoint, actor=None, reason="accuracy", automatic=True)
    client = Client()
    client.force_login(owner)
    return client, Endpoint.objects.get(pk=endpoint.pk), canary


def test_a_stale_promote_answers_already_rolled_back(rolled_back):
    client, endpoint, canary = rolled_back
    response = client.post(
        f"/deployments/{endpoint.slug}/action/", {"action": "promote", "revision": canary.number}, follow=True
    )
    assert f"Cannot promote revision {canary.number}: it is already rolled back" in response.content.decode()
    endpoint.refresh_from_db()
    canary.refresh_from_db()
    assert endpoint.champion_id != canary.pk and canary.status == RevisionStatus.ROLLED_BACK


def test_the_page_offers_no_promote_once_the_challenger_is_gone(rolled_back):
    client, endpoint, _ = rolled_back
    html = client.get(f"/deployments/{endpoint.slug}/").content.decode()
    assert 'id="challenger-card"' in html
    assert "No challenger" not in html and "None. Deploy a version as a canary" in html
    assert html.count("data-rev hidden") == 1  # the challenger's block, not the champion's
