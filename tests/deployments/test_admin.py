"""The governance console: project names, not ids; endpoints and revisions, read-mostly."""

import re

from django.test import Client
import pytest

from deployments.models import Endpoint, EndpointEvent, Revision
from mlplatform.models import AuditEvent
from projects import services as project_services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    admin = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    return client, admin


@pytest.fixture
def endpoint(console):
    project = make_project(owner=console[1], slug="plant", name="Plant operations")
    # Rows as the deploy service leaves them; the console only reads them.
    endpoint = Endpoint.objects.create(project=project, name="Pump scorer", slug="pumps", token_hash="h" * 64)
    revision = Revision.objects.create(
        endpoint=endpoint, number=1, model_name="plant/iris", model_version_number=3, model_dir="/m", status="ready"
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(champion=revision)
    EndpointEvent.objects.create(endpoint=endpoint, revision=revision, kind="deployed", reason="first")
    return Endpoint.objects.get(pk=endpoint.pk)


def test_audit_log_shows_project_names_not_ids(console):
    client, admin = console
    project = make_project(owner=admin, slug="plant", name="Plant operations")
    gone = make_project(owner=admin, slug="old", name="Old project")
    gone_id = gone.pk
    project_services.kpi_create(project=project, actor=admin, name="Recall")
    AuditEvent.objects.create(actor_name="x", action="test.orphan", object_type="t", project_id=gone_id)
    gone.delete()
    page = client.get("/admin/mlplatform/auditevent/").content.decode()
    assert "Plant operations (plant)" in page
    assert f"deleted project #{gone_id}" in page
    assert client.get("/admin/mlplatform/auditevent/?o=6").status_code == 200  # sortable by project name


def test_endpoints_and_revisions_are_listed_and_read_only(console, endpoint):
    client, _ = console
    revision = endpoint.champion
    listing = client.get("/admin/deployments/endpoint/").content.decode()
    assert "Pump scorer" in listing and "Plant operations" in listing and "pumps r1 (plant/iris v3)" in listing
    change = client.get(f"/admin/deployments/endpoint/{endpoint.pk}/change/").content.decode()
    assert 'name="description"' in change and 'name="traffic"' not in change and "h" * 64 not in change
    assert client.get("/admin/deployments/endpoint/add/").status_code == 403
    assert client.post(f"/admin/deployments/endpoint/{endpoint.pk}/delete/", {"post": "yes"}).status_code == 403
    revisions = client.get("/admin/deployments/revision/").content.decode()
    assert "Plant operations" in revisions and "plant/iris" in revisions
    assert client.get(f"/admin/deployments/revision/{revision.pk}/change/").status_code == 200
    assert client.post(f"/admin/deployments/revision/{revision.pk}/change/", {"status": "failed"}).status_code == 403
    assert client.post(f"/admin/deployments/revision/{revision.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/deployments/endpointevent/").status_code == 200
    revision.refresh_from_db()
    assert revision.status == "ready" and Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_rewording_an_endpoint_description_is_audited_and_nothing_else_changes(console, endpoint):
    client, admin = console
    url = f"/admin/deployments/endpoint/{endpoint.pk}/change/"
    # What the browser sends back: the revisions inline's management form as rendered.
    page = client.get(url).content.decode()
    posted = dict(re.findall(r'<input type="hidden" name="(revisions-[^"]+)" value="([^"]*)"', page))
    assert "revisions-TOTAL_FORMS" in posted
    posted |= {"description": "Scores pump sensor rows", "traffic": "0.9", "slug": "hijack"}
    answer = client.post(url, posted)
    assert answer.status_code == 302, answer.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.description == "Scores pump sensor rows" and endpoint.traffic == 0 and endpoint.slug == "pumps"
    event = AuditEvent.objects.get(action="admin.change", object_type="deployments.endpoint")
    assert event.actor == admin and event.after == {"description": "Scores pump sensor rows"}
