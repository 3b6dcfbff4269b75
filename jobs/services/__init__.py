"""Writes of the jobs app. Callers have checked the actor's project role (data
scientist or above to submit, cancel or rerun) with projects.selectors."""

from jobs.services.jobs import (  # noqa: F401
    job_cancel,
    job_dispatch,
    job_heartbeat,
    job_rerun,
    job_submit,
    job_token_issue,
    job_token_revoke,
    job_transition,
)
from jobs.services.logs import job_log_append, job_metrics_record  # noqa: F401
from jobs.services.reconcile import jobs_reconcile  # noqa: F401
from jobs.services.sweeps import sweep_advance, sweep_submit  # noqa: F401
