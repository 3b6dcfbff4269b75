"""The reconciler: the database is the source of truth, the broker only a hint.

Queued jobs whose message was lost (broker restarted, send failed) are sent again;
jobs whose worker stopped heart-beating are retried per their policy or failed with
reason `worker_lost`. Both are safe to repeat: a job starts only through the
queued -> starting compare-and-set, so a duplicate message is dropped."""

from datetime import timedelta
import logging
import os
import signal
import socket

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs import tracking
from jobs.models import Executor, Job, JobStatus, Reason
from jobs.services.jobs import job_dispatch, job_transition
from jobs.services.sweeps import sweep_advance

logger = logging.getLogger(__name__)


def _defaults() -> tuple[timedelta, timedelta]:
    return (
        timedelta(seconds=getattr(settings, "MLP_JOB_REDISPATCH_AFTER", 60)),
        timedelta(seconds=getattr(settings, "MLP_JOB_HEARTBEAT_TIMEOUT", 60)),
    )


def _kill_leftovers(job: Job) -> None:
    """A dead worker leaves its job's process group or container behind; stop it
    before the job may run again."""
    if job.executor == Executor.LOCAL and job.pid and job.worker.endswith(socket.gethostname()):
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif job.executor == Executor.DOCKER:
        from jobs.executors.docker import remove_job_containers

        remove_job_containers(job.pk)


def _recover_lost_worker(job: Job) -> str:
    _kill_leftovers(job)
    tracking.attempt_run_fail(job=job)
    message = f"worker lost ({job.worker or 'unknown'}): no heartbeat since {job.heartbeat_at:%H:%M:%S}"
    if job.attempt <= job.max_retries and job_transition(
        job=job, to=JobStatus.QUEUED, reason=Reason.RETRY, message=message, pid=None, container_id=""
    ):
        job_dispatch(job=job)
        return "retried"
    job_transition(job=job, to=JobStatus.FAILED, reason=Reason.WORKER_LOST, message=message, pid=None)
    if job.sweep_id:
        sweep_advance(sweep_id=job.sweep_id)
    return "failed"


def jobs_reconcile(
    *, redispatch_after: timedelta | None = None, heartbeat_timeout: timedelta | None = None
) -> dict[str, int]:
    default_redispatch, default_heartbeat = _defaults()
    redispatch_after = default_redispatch if redispatch_after is None else redispatch_after
    heartbeat_timeout = default_heartbeat if heartbeat_timeout is None else heartbeat_timeout
    now = timezone.now()
    counts = {"redispatched": 0, "retried": 0, "failed": 0}
    lost_messages = Job.objects.filter(status=JobStatus.QUEUED, dispatched_at__lt=now - redispatch_after)
    for job in lost_messages:
        job_dispatch(job=job)
        counts["redispatched"] += 1
    stale = Job.objects.filter(status__in=[JobStatus.STARTING, JobStatus.RUNNING]).filter(
        Q(heartbeat_at__lt=now - heartbeat_timeout) | Q(heartbeat_at__isnull=True)
    )
    for job in stale:
        counts[_recover_lost_worker(job)] += 1
    for sweep_id in Job.objects.filter(status=JobStatus.QUEUED, sweep__isnull=False).values_list("sweep", flat=True):
        sweep_advance(sweep_id=sweep_id)
    if any(counts.values()):
        logger.warning("jobs reconciled: %s", counts)
    return counts
