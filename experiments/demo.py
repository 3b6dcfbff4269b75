"""Demo data for experiment tracking: runs and a registered model with two versions,
made by the real `mlflow` client (experiments/demo_scripts/pump_client.py) against this platform.

`seed_demo` runs before the platform's own server starts, so seed() serves the ASGI
app itself (uvicorn in a background thread on a free port) for the client's calls,
with a short-lived API token of admin scoped to the demo project. Idempotent: when the
demo experiment exists, nothing happens."""

from collections.abc import Iterator
from contextlib import contextmanager
import json
import logging
import os
from pathlib import Path
import socket
import subprocess
import sys
import threading
import time

from experiments.models import Experiment
from mlplatform import services as core_services
from mlplatform.models import User
from projects.models import Project

log = logging.getLogger(__name__)
DEMO_EXPERIMENT = "pump-failure"
DEMO_MODEL = "pump-failure-classifier"
# Its own folder: run as a script, its folder leads sys.path, and the app folder
# holds modules (selectors, search) that would shadow the standard library.
CLIENT_SCRIPT = Path(__file__).parent / "demo_scripts" / "pump_client.py"
CLIENT_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app() -> Iterator[str]:
    """The platform's ASGI app on 127.0.0.1:<free port> until the block ends."""
    import uvicorn

    # Imported here, before quieting the request log below: the import sets Django up
    # again, and configuring logging resets the levels of Django's child loggers.
    from mlplatform.asgi import application

    port = _free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="demo-asgi")
    # The client probes before it creates (get-by-name -> 404, create -> exists): normal
    # traffic that would otherwise print as warnings during `make run`.
    request_log = logging.getLogger("django.request")
    old_level = request_log.level
    request_log.setLevel(logging.ERROR)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("The demo server did not start.")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        request_log.setLevel(old_level)


def run_client(*, base_url: str, token: str, experiment: str, model: str) -> dict:
    """Run the client script in its own process (the mlflow client keeps its URI and
    credentials in global state) and return its RESULT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=base_url,
        MLFLOW_TRACKING_TOKEN=token,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="60",
        GIT_PYTHON_REFRESH="quiet",
    )
    proc = subprocess.run(
        [sys.executable, str(CLIENT_SCRIPT), experiment, model],
        env=env,
        cwd=CLIENT_SCRIPT.parent,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"The demo mlflow client failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def seed(admin: User, project: Project, *, experiment: str = DEMO_EXPERIMENT, model: str = DEMO_MODEL) -> dict | None:
    """Log the demo runs and model into `project`; None when they exist already."""
    if Experiment.objects.filter(project=project, name=experiment).exists():
        return None
    token, raw = core_services.api_token_create(user=admin, name="demo data", project=project, expires_in_days=1)
    try:
        with serve_app() as base_url:
            result = run_client(base_url=base_url, token=raw, experiment=experiment, model=model)
    finally:
        core_services.api_token_revoke(token_id=token.pk, actor=admin)
    log.info("Demo tracking data: %s", result)
    return result
