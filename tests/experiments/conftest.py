import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

SCRIPTS = Path(__file__).parent / "client_scripts"


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path):
    """Artifacts of each test land in its own temporary directory."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR / "artifacts"


@pytest.fixture
def mlflow_client_run(tmp_path):
    """Run a script with the real mlflow client in a subprocess (the client caches its
    tracking URI and credentials per process) and return its RESULT line as JSON."""

    def run(script: str, *args: str, uri: str, token: str, basic_user: str = "", expect_ok=True, timeout=240):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MLFLOW_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        if basic_user:  # HTTP basic with the token as the password
            env.update(MLFLOW_TRACKING_USERNAME=basic_user, MLFLOW_TRACKING_PASSWORD=token)
        else:
            env["MLFLOW_TRACKING_TOKEN"] = token
        env.update(
            MLFLOW_TRACKING_URI=uri,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="60",
            GIT_PYTHON_REFRESH="quiet",
            PYTHONPATH=str(SCRIPTS),
        )
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if expect_ok:
            assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
        return json.loads(lines[-1][7:]) if lines else {"returncode": proc.returncode, "stderr": proc.stderr[-3000:]}

    return run
