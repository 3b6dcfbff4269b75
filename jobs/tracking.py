"""The jobs' bridge to runs. Every job owns a run in the experiments app; this module
is the only place that talks to experiments.services, so the jobs keep working (with
their own metric table) on a branch where that app has not landed yet."""

from datetime import datetime
import logging
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)

try:  # the experiments app lands on main separately (see jobs/apps.py)
    from experiments import services as experiment_services
except ImportError:  # pragma: no cover - depends on what is merged
    experiment_services = None


def available() -> bool:
    return experiment_services is not None


def run_identifier(run: Any) -> str:
    for attr in ("run_uuid", "run_id", "uuid"):
        value = getattr(run, attr, None)
        if value:
            return str(value)
    return str(run.pk)


def run_start(*, job, parent_run=None) -> Any | None:
    """Creates the job's run; None when runs are not available here."""
    if experiment_services is None:
        return None
    experiment = experiment_services.experiment_get_or_create(
        project=job.project, name=job.experiment_name or "Default", user=job.created_by
    )
    return experiment_services.run_create(
        experiment=experiment,
        user=job.created_by,
        name=job.name,
        tags={"mlp.job_id": str(job.pk), "mlp.executor": job.executor},
        parent_run=parent_run,
        start_time=timezone.now(),
    )


def run_log(*, run: Any, metrics: list[dict], params: dict[str, str], tags: dict[str, str]) -> None:
    if experiment_services is None or run is None:
        return
    try:
        experiment_services.run_log_batch(run=run, metrics=metrics, params=params, tags=tags)
    except Exception:  # tracking must never kill the job it observes
        logger.exception("logging to run %s failed", run_identifier(run))


def run_finish(*, run: Any, status: str, end_time: datetime) -> None:
    if experiment_services is None or run is None:
        return
    mlflow_status = {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
    try:
        experiment_services.run_update(run=run, status=mlflow_status, end_time=end_time)
    except Exception:
        logger.exception("finishing run %s failed", run_identifier(run))


def sweep_parent(job) -> Any | None:
    """The sweep's parent run, for a child job; None otherwise or when unknown."""
    if experiment_services is None or job.sweep_id is None or not job.sweep.parent_run_id:
        return None
    try:
        from experiments import selectors as experiment_selectors

        return experiment_selectors.run_get_by_id(run_id=job.sweep.parent_run_id)
    except Exception:
        logger.warning("the parent run of sweep %s is not reachable", job.sweep_id)
        return None
