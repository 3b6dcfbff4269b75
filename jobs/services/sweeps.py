"""Sweeps: one parent run, one child job per parameter combination, at most
`max_concurrency` children dispatched at a time."""

import itertools
import random
from typing import Any

from django.db import transaction

from jobs import tracking
from jobs.models import ACTIVE, Job, JobStatus, Sweep
from mlplatform.audit import audit_record
from mlplatform.errors import ValidationFailed
from mlplatform.models import User
from projects.models import Project

MAX_CHILDREN = 200


def _combinations(space: dict[str, list], strategy: str, trials: int | None, seed: int | None) -> list[dict]:
    if not isinstance(space, dict) or not space:
        raise ValidationFailed('The search space must map each param to a list of values, e.g. {"lr": [0.1, 0.01]}.')
    for name, values in space.items():
        if not isinstance(values, list) or not values:
            raise ValidationFailed(f"Param '{name}' needs a non-empty list of values.")
    names = list(space)
    grid = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n] for n in names))]
    if strategy == Sweep.Strategy.RANDOM:
        count = min(trials or 10, MAX_CHILDREN)
        rng = random.Random(seed)
        grid = [{n: rng.choice(space[n]) for n in names} for _ in range(count)]
    elif strategy != Sweep.Strategy.GRID:
        raise ValidationFailed("The strategy is grid or random.")
    if len(grid) > MAX_CHILDREN:
        raise ValidationFailed(f"The grid has {len(grid)} combinations; the limit is {MAX_CHILDREN}.")
    return grid


@transaction.atomic
def sweep_submit(
    *,
    project: Project,
    user: User,
    name: str,
    space: dict[str, list],
    metric: str,
    goal: str = "max",
    strategy: str = Sweep.Strategy.GRID,
    trials: int | None = None,
    seed: int | None = None,
    max_concurrency: int = 2,
    job: dict[str, Any],
) -> Sweep:
    """`job` holds the job_submit arguments shared by every child; each child adds its
    combination to the params."""
    from jobs.services.jobs import job_submit

    if not metric.strip():
        raise ValidationFailed("Name the metric the sweep ranks children by.")
    if goal not in ("max", "min"):
        raise ValidationFailed("The goal is max or min.")
    if not 1 <= int(max_concurrency) <= 50:
        raise ValidationFailed("max_concurrency must be between 1 and 50.")
    combos = _combinations(space, strategy, trials, seed)
    sweep = Sweep.objects.create(
        project=project,
        created_by=user,
        name=name.strip()[:200] or "sweep",
        strategy=strategy,
        space=space,
        metric=metric.strip(),
        goal=goal,
        max_concurrency=int(max_concurrency),
    )
    parent = _parent_run(sweep, job)
    base = {k: v for k, v in job.items() if k not in ("params", "name")}
    for i, combo in enumerate(combos, start=1):
        job_submit(
            project=project,
            user=user,
            name=f"{sweep.name} #{i}",
            params={**(job.get("params") or {}), **combo},
            sweep=sweep,
            dispatch=False,
            **base,
        )
    audit_record(
        actor=user,
        action="sweep.submit",
        target=sweep,
        project_id=project.pk,
        after={"children": len(combos), "strategy": strategy, "parent_run": sweep.parent_run_id},
    )
    if parent is not None:
        sweep.parent_run_id = tracking.run_identifier(parent)
        sweep.save(update_fields=["parent_run_id"])
    sweep_advance(sweep_id=sweep.pk)
    return sweep


def _parent_run(sweep: Sweep, job: dict[str, Any]):
    if not tracking.available():
        return None
    probe = Job(project=sweep.project, created_by=sweep.created_by, name=sweep.name, executor="sweep")
    probe.experiment_name = job.get("experiment_name") or "Default"
    return tracking.run_start(job=probe)


@transaction.atomic
def sweep_advance(*, sweep_id: int) -> int:
    """Dispatches queued, never-dispatched children up to the concurrency limit, and
    ends the parent run once every child has ended. Returns how many it dispatched."""
    from jobs.services.jobs import job_dispatch

    sweep = Sweep.objects.select_for_update().select_related("created_by").filter(pk=sweep_id).first()
    if sweep is None:
        return 0
    children = Job.objects.filter(sweep=sweep)
    busy = children.filter(status__in=ACTIVE, dispatched_at__isnull=False).count()
    free = max(0, sweep.max_concurrency - busy)
    waiting = list(children.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True).order_by("pk")[:free])
    for job in waiting:
        job_dispatch(job=job)
    if not waiting and not children.filter(status__in=ACTIVE).exists():
        _finish_parent(sweep, set(children.values_list("status", flat=True)))
    return len(waiting)


def sweep_outcome(statuses: set[str]) -> str:
    """The parent run's MLflow status from its children's final statuses."""
    if JobStatus.CANCELLED in statuses:
        return "KILLED"
    return "FINISHED" if statuses <= {JobStatus.SUCCEEDED} else "FAILED"


def _finish_parent(sweep: Sweep, statuses: set[str]) -> None:
    # Under the sweep's row lock: the last two children ending together end it once.
    parent = tracking.sweep_parent_run(sweep)
    if parent is not None and parent.status == "RUNNING":
        tracking.run_end(run=parent, mlflow_status=sweep_outcome(statuses))
