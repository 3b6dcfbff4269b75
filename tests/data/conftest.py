"""A stream with a token, and the HTTP ingest plane (the real ASGI app, its own
archive directory) driven in-process through httpx."""

import asyncio

import httpx
import pytest

from data import services
from data.plane import build_app
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project


@pytest.fixture
def data_project(transactional_db):
    owner = UserFactory()
    return make_project(owner=owner), owner


@pytest.fixture
def stream_token(data_project):
    project, owner = data_project
    stream = services.stream_create(project=project, actor=owner, name="Sensors")
    _, raw = services.ingest_token_create(stream=stream, actor=owner)
    return stream, raw


@pytest.fixture
def plane(tmp_path, settings, transactional_db):
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    app = build_app(archive_dir=tmp_path / "archive", poll_interval=0.1)
    yield app
    app.ticker.stop()
    app.ingestor.close()


class Sender:
    def __init__(self, app):
        self.app = app

    def post(self, path, body=b"", *, token=None, content_type="application/json", headers=None, method="POST"):
        async def go():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
                sent = {"content-type": content_type, **(headers or {})}
                if token:
                    sent["authorization"] = f"Bearer {token}"
                return await client.request(method, path, content=body, headers=sent)

        return asyncio.run(go())

    def refresh(self):
        self.app.ingestor.refresh()


@pytest.fixture
def send(plane):
    return Sender(plane)


ROLES = Role


@pytest.fixture
def api_for_owner(data_project):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(data_project[1])
    return client
