"""The container engine for docker-executor tests: started here when the machine has
Podman (as .ci/run does), skipped with the reason only when it truly cannot run."""

import os
from pathlib import Path
import shutil
import subprocess

import pytest

SOCK = "/run/podman/podman.sock"
IMAGE = "localhost/mlp-python:bookworm-mlflow"
ENGINE_SCRIPT = Path(__file__).resolve().parents[2] / "compose" / "jobs" / "engine.sh"


def require_engine() -> None:
    from jobs.executors.docker import engine_available

    os.environ.setdefault("DOCKER_HOST", f"unix://{SOCK}")
    ok, why = engine_available()
    if not ok and shutil.which("podman") and os.geteuid() == 0:
        subprocess.run(["bash", str(ENGINE_SCRIPT)], check=False, capture_output=True, timeout=60)
        ok, why = engine_available()
    if not ok:
        pytest.skip(f"no Docker-API engine can run here: {why}")
    result = subprocess.run(["podman", "image", "exists", IMAGE], check=False) if shutil.which("podman") else None
    if result is not None and result.returncode != 0:
        pytest.skip(f"the job image {IMAGE} is not built; run `make image` (about 3 minutes, once)")
