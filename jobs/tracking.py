"""The jobs' bridge to runs. Every job owns a run in the experiments app; this module
is the only place that talks to experiments.services and its artifact store. Tracking
never fails the job it observes: errors are logged and the job carries on."""

import logging
from pathlib import Path
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)

try:  # experiments landed separately (see jobs/apps.py); jobs work without it
    from experiments import artifacts as experiment_artifacts
    from experiments import selectors as experiment_selectors
    from experiments import services as experiment_services
except ImportError:  # pragma: no cover - depends on what is merged
    experiment_services = experiment_selectors = experiment_artifacts = None

MAX_METRICS_PER_CALL = 1000
MAX_PARAMS_PER_CALL = 100
# A model the job saved goes where MLflow's log_model puts it.
MODEL_DIR = "model"


def available() -> bool:
    return experiment_services is not None


def now_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def run_identifier(run: Any) -> str:
    return str(run.pk)


def run_start(*, job, parent_run=None) -> Any | None:
    """Creates the job's run; None when runs are not available here."""
    if experiment_services is None:
        return None
    experiment = experiment_services.experiment_get_or_create(
        project=job.project, name=job.experiment_name or "Default", user=job.created_by
    )
    tags = {"mlp.executor": job.executor}
    if job.pk:
        tags["mlp.job_id"] = str(job.pk)
    return experiment_services.run_create(
        experiment=experiment,
        user=job.created_by,
        name=job.name,
        tags=tags,
        parent_run=parent_run,
        start_time=now_ms(),
    )


def run_log(*, run: Any, metrics: list[dict], params: dict[str, str], tags: dict[str, str]) -> None:
    if experiment_services is None or run is None:
        return
    param_items, tag_items = list(params.items()), list(tags.items())
    try:
        for i in range(0, max(len(metrics), 1), MAX_METRICS_PER_CALL):
            experiment_services.run_log_batch(run=run, metrics=metrics[i : i + MAX_METRICS_PER_CALL])
        for i in range(0, len(param_items), MAX_PARAMS_PER_CALL):
            experiment_services.run_log_batch(run=run, params=param_items[i : i + MAX_PARAMS_PER_CALL])
        for i in range(0, len(tag_items), MAX_PARAMS_PER_CALL):
            experiment_services.run_log_batch(run=run, tags=tag_items[i : i + MAX_PARAMS_PER_CALL])
    except Exception:
        logger.exception("logging to run %s failed", run.pk)


def run_store_artifacts(*, run: Any, folder: Path) -> int:
    """Copies what the job left in its artifacts/ folder into the run. Returns the
    number of files stored."""
    if experiment_artifacts is None or run is None or not folder.is_dir():
        return 0
    store, root, stored = experiment_artifacts.get_store(), experiment_artifacts.run_root(run), 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                store.write(root, path.relative_to(folder).as_posix(), experiment_artifacts.iter_file(path.open("rb")))
                stored += 1
            except Exception:
                logger.exception("storing artifact %s of run %s failed", path.name, run.pk)
    return stored


def run_finish(*, run: Any, status: str) -> None:
    if experiment_services is None or run is None:
        return
    mlflow_status = {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
    try:
        experiment_services.run_update(run=run, status=mlflow_status, end_time=now_ms())
    except Exception:
        logger.exception("finishing run %s failed", run.pk)


def sweep_parent(job) -> Any | None:
    """The sweep's parent run, for a child job."""
    if experiment_selectors is None or job.sweep_id is None or not job.sweep.parent_run_id:
        return None
    try:
        return experiment_selectors.run_get(user=job.created_by, run_id=job.sweep.parent_run_id)
    except Exception:
        logger.warning("the parent run of sweep %s is not reachable", job.sweep_id)
        return None
