"""The Data pages: who sees what, who may act, bad input on the forms."""

from django.test import Client
import pytest

from data import services
from data.models import IngestToken, Stream
from mlplatform.roles import Role
from projects import services as project_services
from tests.factories import UserFactory


def browser_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stream(project, user):
    return services.stream_create(project=project, actor=user, name="Line", description="sensors")


def test_list_detail_and_access(stream, project, user):
    viewer, outsider = UserFactory(), UserFactory()
    project_services.membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=user)
    page = f"/data/{project.slug}/line/"
    assert page in browser_for(viewer).get("/data/").content.decode()
    viewed = browser_for(viewer).get(page).content.decode()
    assert "Latest records" in viewed and "Ingest tokens" not in viewed and "Release" not in viewed
    assert browser_for(outsider).get(page).status_code == 404
    assert page not in browser_for(outsider).get("/data/").content.decode()
    refused = browser_for(viewer).post(f"{page}action/", {"action": "token"})
    assert refused.status_code == 403 and not IngestToken.objects.exists()
    owner_page = browser_for(user).get(page).content.decode()
    assert "Ingest tokens" in owner_page and f"/ingest/{project.slug}/line" in owner_page


def test_create_form_makes_a_token_and_refuses_bad_input(project, user):
    client = browser_for(user)
    bad = client.post("/data/new/", {"project": project.slug, "name": "X", "schema": "{nope", "retention_days": 0})
    assert bad.status_code == 200 and "Not valid JSON" in bad.content.decode()
    mqtt = client.post(
        "/data/new/",
        {"project": project.slug, "name": "M", "source": "mqtt", "mqtt_url": "ftp://x", "retention_days": 0},
    )
    assert "broker URL" in mqtt.content.decode()
    assert not Stream.objects.exists()
    created = client.post(
        "/data/new/",
        {
            "project": project.slug,
            "name": "Mqtt line",
            "source": "mqtt",
            "mqtt_url": "mqtt://127.0.0.1:1883",
            "mqtt_topics": "plant/+/temp\nplant/hall/#",
            "retention_days": 0,
        },
        follow=True,
    )
    page = created.content.decode()
    assert "mlpi_" in page and "mosquitto_pub -h 127.0.0.1 -p 1883" in page and "plant/s1/temp" in page
    assert Stream.objects.get().mqtt_topics == ["plant/+/temp", "plant/hall/#"]


def test_schema_and_pause_actions(stream, project, user):
    client = browser_for(user)
    action = f"/data/{project.slug}/line/action/"
    client.post(action, {"action": "schema", "schema": "{broken"})
    stream.refresh_from_db()
    assert stream.schema is None
    client.post(action, {"action": "schema", "schema": '{"type": "object"}'})
    client.post(action, {"action": "pause"})
    stream.refresh_from_db()
    assert stream.schema == {"type": "object"} and stream.status == "paused"


def test_a_scored_stream_links_its_endpoint_and_predictions(project, user):
    services.stream_create(project=project, actor=user, name="Scored", score_endpoint="iris", score_token="mlpe_x")
    page = browser_for(user).get(f"/data/{project.slug}/scored/").content.decode()
    assert 'href="/deployments/iris/"' in page and f'href="/data/{project.slug}/scored-predictions/"' in page
    assert "mlpe_x" not in page and Stream.objects.get(slug="scored").score_token.startswith("fernet:")
