"""The embedded default proven end to end: `runplatform` with no DATABASE_URL and no
REDIS_URL, as a subprocess on an empty data dir, migrates itself and serves."""

import json
import os
from pathlib import Path
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_runplatform_serves_healthz_and_login_on_the_embedded_default(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(MLP_DATA_DIR=str(tmp_path), DJANGO_SECRET_KEY="embedded-test-" + "k" * 40, DJANGO_DEBUG="0")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    health = json.load(response)
                break
            except OSError:
                time.sleep(0.3)
        assert health is not None, process.stdout.read() if process.poll() is not None else "no answer"
        assert health["status"] == "ok"
        assert health["checks"]["database"]["vendor"] == "sqlite"
        assert health["checks"]["broker"]["transport"] == "memory"
        assert health["checks"]["channel_layer"]["backend"] == "ThreadSafeInMemoryChannelLayer"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
            assert response.status == 200 and b'name="password"' in response.read()
        assert (tmp_path / "db.sqlite3").exists()
        # The serving plane started with the process (no /serve/ request was made):
        # its heartbeat row appears on its own.
        assert _wait_for_serving_heartbeat(tmp_path / "db.sqlite3"), "the serving plane did not start"
    finally:
        process.terminate()
        process.wait(15)


def _wait_for_serving_heartbeat(database: Path, timeout: float = 20) -> bool:
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            if connection.execute("SELECT count(*) FROM deployments_servingprocess").fetchone()[0]:
                return True
        time.sleep(0.3)
    return False
