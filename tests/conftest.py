import os
import socket
import threading
import time
import uuid

from django.conf import settings
import pytest
from rest_framework.test import APIClient

from mlplatform import services as core_services
from tests.factories import UserFactory, make_project


@pytest.fixture(autouse=True)
def _fresh_login_throttle(settings):
    """Each test starts with no sign-in failure counted: the cache may be a Redis that
    outlives the test session."""
    settings.MLP_LOGIN_THROTTLE_KEY_PREFIX = f"mlp:login:test-{uuid.uuid4().hex}:"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def project(user):
    return make_project(owner=user)


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def token_for():
    def make(u, **kwargs):
        return core_services.api_token_create(user=u, name="test", **kwargs)[1]

    return make


def bearer_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_asgi(transactional_db):
    """The real ASGI app (HTTP + websockets) served by uvicorn in a thread, on the test
    database. Yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        "mlplatform.asgi:application", host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    _stop_serving_background()


def _stop_serving_background() -> None:
    """The serving plane inside the ASGI app starts a prediction-log drainer on its first
    request; the server above runs without lifespan events, so stop it here, before the
    test database is flushed under it."""
    from mlplatform.asgi import ingest_app, serving_app

    ingest_app.ticker.stop()
    ingest_app._started = False
    if serving_app._started is not None:
        serving_app.spool.stop()
        serving_app._loop = serving_app._started = None


@pytest.fixture
def browser():
    """Headless Debian Chromium through Playwright (no browser download)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not os.access(settings.BROWSER_PATH, os.X_OK):
        pytest.skip(
            f"no Chromium at {settings.BROWSER_PATH}: `make test` installs it as root with apt-get; "
            "else run `sudo apt-get install chromium chromium-driver` or set MLP_BROWSER to a Chromium binary"
        )
    # Playwright's sync API keeps an event loop on this thread; the test body's ORM
    # calls are still plain synchronous code, so Django's async guard does not apply.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=settings.BROWSER_PATH,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, end connections that server threads of live tests left open, so
    the test database can be dropped at the end of the session."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
