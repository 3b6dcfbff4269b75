"""The client is its own package (client/, no Django): the tests import it from the
checkout, drive it against the real ASGI app served by uvicorn (`live_asgi`), and run
queued jobs the way the other job tests do (the real runner, without the broker hop)."""

from contextlib import contextmanager
from pathlib import Path
import sys
import threading

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

pytest.importorskip("httpx", reason="the client needs httpx: pip install -r requirements-dev.lock")
pytest.importorskip("rich", reason="the client needs rich: pip install -r requirements-dev.lock")

from mlp_client.cli import cli  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """No test reads or writes the developer's own ~/.config/mlp, nor their env."""
    monkeypatch.setenv("MLP_CONFIG", str(tmp_path / "mlp-config.json"))
    for name in ("MLP_URL", "MLP_TOKEN", "MLP_PROFILE", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLP_BACKOFF", "0.01")


@pytest.fixture
def server(live_asgi, settings, tmp_path):
    """The platform on a real port; jobs log back to it and keep their files in tmp."""
    settings.MLP_PUBLIC_URL = live_asgi
    settings.DATA_DIR = tmp_path / "data"
    return live_asgi


def run_mlp(*args: str, url: str | None = None, token: str | None = None, env: dict | None = None):
    """`mlp ARGS` in-process (click's runner): exit code, stdout and stderr apart."""
    from click.testing import CliRunner

    full_env = {"MLP_URL": url, "MLP_TOKEN": token, **(env or {})}
    result = CliRunner().invoke(cli, list(args), env={k: v for k, v in full_env.items() if v is not None})
    return result


@contextmanager
def job_worker():
    """Executes queued jobs as a worker would (tests/jobs does the same with `execute`)."""
    from django.db import connection

    from jobs import runner
    from jobs.models import Job

    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.is_set():
                for job_id in Job.objects.filter(status="queued").values_list("pk", flat=True):
                    runner.job_execute(job_id=job_id, worker="test-client-worker")
                stop.wait(0.2)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
