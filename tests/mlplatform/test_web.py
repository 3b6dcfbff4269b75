"""Health, hosts, schema, docs and the section pages."""

import re

from django.test import Client
import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_and_channel_layer(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


def test_host_header_not_allowed_is_400(client):
    assert client.get("/healthz", HTTP_HOST="evil.example.com").status_code == 400


def test_openapi_schema_lists_the_projects_api(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/projects/" in schema["paths"]
    assert {"bearerAuth", "basicAuth"} <= set(schema["components"]["securitySchemes"])


def test_docs_page_is_served_offline(client):
    html = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in html
    external = list(re.findall(r'(?:src|href)="(https?://[^"]+)"', html))
    assert external == []
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


def test_pages_need_login(client):
    response = client.get("/projects/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_sections_that_do_not_exist_yet_say_so(user):
    client = Client()
    client.force_login(user)
    for section in ["ideation", "experiments", "models", "deployments", "data"]:
        response = client.get(f"/{section}/")
        if response.templates and response.templates[0].name == "frontend/upcoming.html":
            assert b"Not available yet" in response.content
        else:
            assert response.status_code == 200
    nav = client.get("/").content.decode()
    for label in ["Ideation", "Projects", "Experiments", "Models", "Deployments", "Data"]:
        assert f">{label}</a>" in nav


def test_plotly_is_served_by_the_app(client):
    assert client.get("/static/vendor/plotly/plotly.min.js").status_code == 200


def test_plotly_is_sent_compressed_and_cached_for_good(client):
    from frontend import assets

    url = f"/static/{assets.JS}"
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, br")
    assert packed.status_code == 200 and packed["Content-Encoding"] == "gzip"
    assert int(packed["Content-Length"]) < assets.SOURCE.stat().st_size / 3
    assert "immutable" in packed["Cache-Control"] and "max-age=315360000" in packed["Cache-Control"]
    plain = client.get(url)
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    assert b"".join(plain.streaming_content) == assets.SOURCE.read_bytes()
    # Every chart page asks for that URL.
    from django.template import Context, Template

    assert Template("{% load assets %}{% plotly_js %}").render(Context()) == url


def test_home_describes_data_as_it_is_and_the_data_pages_link_each_other(user):
    client = Client()
    client.force_login(user)
    home = client.get("/").content.decode()
    tile = home[home.index('id="phase-data"') : home.index("</div>", home.index('id="phase-data"'))]
    assert 'href="/data/"' in tile and 'href="/data/datasets/"' in tile
    assert "HTTP &amp; MQTT streams" in tile and "dataset versions" in tile
    streams = client.get("/data/").content.decode()
    assert '<a href="/data/datasets/">Datasets</a>' in streams
    assert '<a href="/data/" class="active" aria-current="page">Streams</a>' in streams
    datasets = client.get("/data/datasets/").content.decode()
    assert '<a href="/data/">Streams</a>' in datasets
    assert '<a href="/data/datasets/" class="active" aria-current="page">Datasets</a>' in datasets
