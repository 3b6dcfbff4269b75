"""Reads of jobs and sweeps, through the project check: a user reaches a job only in a
project they may see, and a guessed id in another project is simply not found."""

from django.db.models import QuerySet

from jobs.models import Job, JobEvent, JobImage, JobLogLine, JobMetric, Sweep
from mlplatform.errors import NotFound
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_check, project_visible_ids

LIST_RELATED = ("project", "created_by", "image", "sweep")


def job_list(*, user: User, project: Project | None = None, status: str | None = None) -> QuerySet[Job]:
    qs = Job.objects.select_related(*LIST_RELATED)
    qs = qs.filter(project=project) if project is not None else qs.filter(project__in=project_visible_ids(user=user))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def job_get(*, user: User, job_id: int, min_role: str = Role.VIEWER) -> Job:
    job = Job.objects.select_related(*LIST_RELATED, "cancel_requested_by").filter(pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    try:
        project_check(user=user, project=job.project, min_role=min_role)
    except NotFound as exc:
        raise NotFound("Job not found.") from exc
    return job


def job_events(*, job: Job) -> QuerySet[JobEvent]:
    return JobEvent.objects.filter(job=job).select_related("actor")


def job_log_page(*, job: Job, after: int = -1, limit: int = 1000) -> list[JobLogLine]:
    return list(JobLogLine.objects.filter(job=job, seq__gt=after).order_by("seq")[: max(1, min(limit, 10_000))])


def job_log_tail(*, job: Job, lines: int = 500) -> list[JobLogLine]:
    return list(reversed(JobLogLine.objects.filter(job=job).order_by("-seq")[:lines]))


def job_log_iter(*, job: Job):
    return JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True).iterator(chunk_size=5000)


def job_metric_series(*, job: Job) -> dict[str, list[tuple]]:
    series: dict[str, list[tuple]] = {}
    for key, value, step, ts in (
        JobMetric.objects.filter(job=job).order_by("timestamp", "id").values_list("key", "value", "step", "timestamp")
    ):
        series.setdefault(key, []).append((ts, value, step))
    return series


def image_list() -> QuerySet[JobImage]:
    return JobImage.objects.filter(is_active=True).order_by("name")


def sweep_list(*, user: User, project: Project | None = None) -> QuerySet[Sweep]:
    qs = Sweep.objects.select_related("project", "created_by")
    qs = qs.filter(project=project) if project is not None else qs.filter(project__in=project_visible_ids(user=user))
    return qs.order_by("-created_at")


def sweep_get(*, user: User, sweep_id: int, min_role: str = Role.VIEWER) -> Sweep:
    sweep = Sweep.objects.select_related("project", "created_by").filter(pk=sweep_id).first()
    if sweep is None:
        raise NotFound("Sweep not found.")
    try:
        project_check(user=user, project=sweep.project, min_role=min_role)
    except NotFound as exc:
        raise NotFound("Sweep not found.") from exc
    return sweep


def sweep_children(*, sweep: Sweep) -> list[dict]:
    """Each child with its params and its last value of the sweep's metric, best first."""
    jobs = list(Job.objects.filter(sweep=sweep).order_by("pk"))
    last: dict[int, float] = {}
    for job_id, value in (
        JobMetric.objects.filter(job__sweep=sweep, key=sweep.metric)
        .order_by("timestamp", "id")
        .values_list("job", "value")
    ):
        last[job_id] = value
    rows = [{"job": job, "params": job.params, "metric": last.get(job.pk)} for job in jobs]
    sign = -1 if sweep.goal == "max" else 1
    rows.sort(key=lambda r: (r["metric"] is None, sign * (r["metric"] or 0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank if row["metric"] is not None else None
    return rows
