"""Data fixtures. Streams: a stream with a token, and the HTTP ingest plane (the real
ASGI app, its own archive directory) driven in-process through httpx. Datasets: upload
and archive directories per test, and streams archived and indexed as the plane does."""

import asyncio
import datetime as dt
import threading

import httpx
import orjson
import pytest

from data import services
from data.archive import Limits, LocalArchiveStore, StreamLog
from data.models import Segment, Stream
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


@pytest.fixture
def dataset_dirs(settings, tmp_path):
    """Uploads and the archive of each test in their own directories."""
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    return tmp_path


def index_segment(stream: Stream, sealed) -> Segment:
    """What the ingest plane does when a segment is sealed: index it."""
    return Segment.objects.create(
        stream=stream,
        first_seq=sealed.first_seq,
        last_seq=sealed.last_seq,
        records=sealed.records,
        bytes=sealed.bytes,
        path=sealed.path,
        sha256=sealed.sha256,
        first_at=dt.datetime.fromtimestamp(sealed.first_at_ms / 1000, tz=dt.UTC),
        last_at=dt.datetime.fromtimestamp(sealed.last_at_ms / 1000, tz=dt.UTC),
        sealed_at=dt.datetime.fromtimestamp(sealed.sealed_at_ms / 1000, tz=dt.UTC),
    )


@pytest.fixture
def archived_stream(dataset_dirs):
    """archived_stream(project, slug, batches) -> stream: each batch is (ingest ms,
    [records]) appended and sealed as one segment, indexed like the ingest plane does."""

    def make(project, slug: str, batches: list[tuple[int, list[dict]]]) -> Stream:
        stream = Stream.objects.create(project=project, name=slug, slug=slug)
        store = LocalArchiveStore(dataset_dirs / "archive")
        log = StreamLog(store, f"{project.slug}/{slug}", limits=Limits(records=10**9, seconds=10**9))
        n = 0
        for at_ms, rows in batches:
            durable = threading.Event()
            log.append(
                [(orjson.dumps(r), f"k{n + i}") for i, r in enumerate(rows)],
                on_durable=lambda exc, d=durable: d.set(),
                now_ms=at_ms,
            )
            assert durable.wait(10)
            n += len(rows)
            # Two hours later is another partition: the segment is due and seals.
            index_segment(stream, log.seal_if_due(now_ms=at_ms + 2 * 3600 * 1000))
        log.close()
        return stream

    return make
