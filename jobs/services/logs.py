"""The high-volume writes of a running job: log lines and metric points, in batches
(bulk inserts, no audit per row)."""

from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import events as job_events
from jobs import secrets
from jobs.models import Job, JobLogLine, JobMetric
from mlplatform import events

PROGRESS_METRIC = "progress"
# A live page needs only the tail; the rest is paged from the database.
MAX_LINES_PER_EVENT = 200


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def secrets_of(job: Job, extra: list[str] | None = None) -> list[str]:
    """The values to mask in everything the job prints. Longest first, so a secret that
    contains a shorter one is masked whole."""
    plain = secrets.decrypt_values(job.secret_env)
    values = [v for v in plain.values() if len(v) >= 3] + [v for v in (extra or []) if v]
    return sorted(set(values), key=len, reverse=True)


@transaction.atomic
def job_log_append(*, job: Job, start_seq: int, lines: list[str], secrets: list[str]) -> int:
    """Stores lines numbered from `start_seq` and streams them to the job's page.
    Returns the next sequence number."""
    if not lines:
        return start_seq
    now = timezone.now()
    masked = [mask(line, secrets)[:10_000] for line in lines]
    JobLogLine.objects.bulk_create(
        [JobLogLine(job_id=job.pk, seq=start_seq + i, text=text, created_at=now) for i, text in enumerate(masked)],
        batch_size=1000,
    )
    Job.objects.filter(pk=job.pk).update(log_lines=F("log_lines") + len(masked))
    tail = masked[-MAX_LINES_PER_EVENT:]
    events.publish(
        job_events.job_group(job.pk),
        "job.log",
        {"first_seq": start_seq + len(masked) - len(tail), "lines": tail, "skipped": len(masked) - len(tail)},
    )
    return start_seq + len(masked)


@transaction.atomic
def job_metrics_record(*, job: Job, points: list[tuple[str, float, int, datetime]]) -> None:
    """Stores metric points (key, value, step, timestamp), updates the job's progress
    from a `progress` metric, and streams them to the job's page."""
    if not points:
        return
    JobMetric.objects.bulk_create(
        [JobMetric(job_id=job.pk, key=k[:250], value=float(v), step=int(s), timestamp=t) for k, v, s, t in points]
    )
    progress = [v for k, v, _s, _t in points if k == PROGRESS_METRIC]
    if progress:
        value = max(0.0, min(1.0, float(progress[-1])))
        Job.objects.filter(pk=job.pk).update(progress=value)
        job.progress = value
    events.publish(
        job_events.job_group(job.pk),
        "job.metrics",
        {
            "points": [{"key": k, "value": v, "step": s, "ts": t.isoformat()} for k, v, s, t in points[-500:]],
            "progress": job.progress,
        },
    )
