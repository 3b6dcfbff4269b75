"""Celery tasks of the jobs: the job itself on the "jobs" queue, and the reconciler
on "default" (short system tasks never wait behind long jobs)."""

from celery import shared_task

from jobs import runner
from jobs.services import jobs_reconcile


@shared_task(
    bind=True,
    acks_late=True,  # a worker that dies mid-job leaves the message to be redelivered
    reject_on_worker_lost=True,
    queue="jobs",
    ignore_result=True,
)
def job_run_task(self, job_id: int) -> str:
    # Idempotent: job_execute starts the job only by moving it out of `queued`.
    return runner.job_execute(job_id=job_id, worker=self.request.hostname or "worker")


@shared_task(queue="default", ignore_result=True, soft_time_limit=120)
def jobs_reconcile_task() -> dict[str, int]:
    return jobs_reconcile()
