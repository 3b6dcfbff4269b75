"""A small stand-in for the MLflow client inside jobs.

The job image is built from Debian packages, which carry no MLflow, and a container
job has no network by default. So the executor puts this module on PYTHONPATH: the
usual `mlflow.log_metric(...)`, `log_param(s)`, `set_tag(s)`, `start_run()` calls append
JSON lines to $MLP_TRACKING_FILE in the job's work dir, and the platform's runner
writes them into the job's run as they appear. `autolog()` is accepted and records a
tag; `log_artifact` copies files into the work dir's artifacts/ folder."""

from contextlib import contextmanager
import json
import os
import shutil
import time

__version__ = "0.0-mlp-shim"


def _write(record: dict) -> None:
    path = os.environ.get("MLP_TRACKING_FILE")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Info:
    def __init__(self, run_id: str):
        self.run_id = run_id
        self.run_uuid = run_id


class ActiveRun:
    def __init__(self):
        self.info = _Info(os.environ.get("MLFLOW_RUN_ID", ""))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def active_run():
    return ActiveRun()


def start_run(*args, **kwargs):
    return ActiveRun()


def end_run(*args, **kwargs) -> None:
    return None


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None, **kwargs) -> None:
    _write(
        {"type": "metric", "key": str(key), "value": float(value), "step": int(step or 0), "ts": timestamp or _now_ms()}
    )


def log_metrics(metrics: dict, step: int | None = None, **kwargs) -> None:
    for key, value in metrics.items():
        log_metric(key, value, step=step)


def log_param(key: str, value) -> None:
    _write({"type": "param", "key": str(key), "value": str(value)})


def log_params(params: dict) -> None:
    for key, value in params.items():
        log_param(key, value)


def set_tag(key: str, value) -> None:
    _write({"type": "tag", "key": str(key), "value": str(value)})


def set_tags(tags: dict) -> None:
    for key, value in tags.items():
        set_tag(key, value)


def autolog(*args, **kwargs) -> None:
    set_tag("mlp.autolog", "requested")


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    target = os.path.join("artifacts", artifact_path or "")
    os.makedirs(target, exist_ok=True)
    shutil.copy(local_path, target)
    _write({"type": "artifact", "path": os.path.join(target, os.path.basename(local_path))})


def log_text(text: str, artifact_file: str) -> None:
    target = os.path.join("artifacts", artifact_file)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text)
    _write({"type": "artifact", "path": target})


def get_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "")


@contextmanager
def _noop():
    yield
