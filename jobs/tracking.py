"""The jobs' bridge to runs. Every job owns a run in the experiments app; this module
is the only place that talks to experiments' services and selectors. The job itself
logs to its run with the real MLflow client over the MLflow-compatible API; the
platform adds the params, system metrics and the final status here. Tracking never
fails the job it observes: errors are logged and the job carries on."""

import logging
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)

try:  # experiments landed separately (see jobs/apps.py); jobs work without it
    from experiments import selectors as experiment_selectors
    from experiments import services as experiment_services
except ImportError:  # pragma: no cover - depends on what is merged
    experiment_services = experiment_selectors = None

MAX_METRICS_PER_CALL = 1000
MAX_PARAMS_PER_CALL = 100


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


def run_metric_tail(*, run: Any, after_id: int) -> list[tuple[int, str, float, int, int]]:
    """What the job's own MLflow client logged to its run since point `after_id`."""
    if experiment_selectors is None or run is None:
        return []
    try:
        return experiment_selectors.run_metric_points_after(run=run, after_id=after_id)
    except Exception:
        logger.exception("reading the metrics of run %s failed", run.pk)
        return []


def run_experiment_id(run: Any) -> str:
    return str(run.experiment_id) if run is not None else ""


def mlflow_status(job_status: str) -> str:
    return {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(job_status, "FAILED")


def run_finish(*, run: Any, status: str) -> None:
    """Ends the run with the MLflow status of the job status `status`."""
    run_end(run=run, mlflow_status=mlflow_status(status))


def attempt_run_fail(*, job) -> None:
    """Ends the run of the job's latest attempt as FAILED if it is still running: an
    attempt given up on (its worker died) never reports, and its run must not show as
    running for ever beside the retry's."""
    if experiment_selectors is None or not job.run_id:
        return
    try:
        run = experiment_selectors.run_get(user=job.created_by, run_id=job.run_id)
    except Exception:
        logger.warning("the run %s of job %s is not reachable", job.run_id, job.pk)
        return
    if run.status == "RUNNING":
        run_end(run=run, mlflow_status="FAILED")


def run_end(*, run: Any, mlflow_status: str) -> None:
    if experiment_services is None or run is None:
        return
    try:
        experiment_services.run_update(run=run, status=mlflow_status, end_time=now_ms())
    except Exception:
        logger.exception("finishing run %s failed", run.pk)


def sweep_parent(job) -> Any | None:
    """The sweep's parent run, for a child job."""
    return sweep_parent_run(job.sweep) if job.sweep_id else None


def sweep_parent_run(sweep) -> Any | None:
    if experiment_selectors is None or not sweep.parent_run_id:
        return None
    try:
        return experiment_selectors.run_get(user=sweep.created_by, run_id=sweep.parent_run_id)
    except Exception:
        logger.warning("the parent run of sweep %s is not reachable", sweep.pk)
        return None
