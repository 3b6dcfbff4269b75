"""Submitting, dispatching, transitioning, cancelling and rerunning jobs."""

from datetime import datetime, timedelta
import logging
from pathlib import Path
from typing import Any
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import events as job_events
from jobs import secrets, spec
from jobs.executors import sandbox
from jobs.models import TERMINAL, TRANSITIONS, Executor, Job, JobEvent, JobImage, JobStatus, Reason, Sweep
from mlplatform import services as core_services
from mlplatform.audit import audit_record
from mlplatform.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from mlplatform.models import User
from projects.models import Project

logger = logging.getLogger(__name__)

SPEC_FIELDS = [
    "name",
    "experiment_name",
    "executor",
    "command",
    "script",
    "params",
    "env",
    "cpus",
    "memory_mb",
    "gpus",
    "timeout_seconds",
    "network",
    "queue",
    "max_retries",
]


def bundle_dir() -> Path:
    path = Path(settings.DATA_DIR) / "jobs" / "bundles"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _store_bundle(data: bytes, filename: str) -> str:
    kind = spec.check_bundle(data, filename)
    # The server chooses the path; the uploaded name is kept only for display.
    path = bundle_dir() / f"{uuid.uuid4().hex}.{kind}"
    path.write_bytes(data)
    return str(path)


def _image_for(executor: str, image: str | None) -> JobImage | None:
    if executor == Executor.LOCAL:
        return None
    name = (image or getattr(settings, "MLP_JOB_DEFAULT_IMAGE", "")).strip()
    found = JobImage.objects.filter(name=name, is_active=True).first()
    if found is None:
        raise ValidationFailed(f"The image '{name}' is not on the platform's allow-list of job images.")
    return found


def _check_queue(queue: str) -> str:
    allowed = getattr(settings, "MLP_JOB_QUEUES", ["jobs"])
    if queue not in allowed:
        raise ValidationFailed(f"Unknown queue '{queue}'; choose one of {', '.join(allowed)}.")
    return queue


def _default_command(image: JobImage | None, has_code: bool, command: Any) -> list[str]:
    """Code without a command runs its main.py."""
    if command in (None, "", []) and has_code:
        return [image.python if image else "python", "main.py"]
    return spec.clean_command(command)


@transaction.atomic
def job_submit(
    *,
    project: Project,
    user: User,
    name: str = "",
    command: Any = None,
    executor: str = Executor.LOCAL,
    image: str | None = None,
    script: str = "",
    bundle: bytes | None = None,
    bundle_name: str = "",
    params: Any = None,
    env: Any = None,
    secret_env: Any = None,
    secret_owners: dict[str, int | None] | None = None,
    resources: Any = None,
    network: bool = False,
    queue: str = "jobs",
    max_retries: int = 1,
    experiment_name: str = "Default",
    sweep: Sweep | None = None,
    rerun_of: Job | None = None,
    dispatch: bool = True,
) -> Job:
    """Validates the whole spec first: a refused job stores and queues nothing.

    Secret values are `user`'s, except those named in `secret_owners` (a rerun's
    carried-over values, with the user who entered each)."""
    if executor not in Executor.values:
        raise ValidationFailed(f"Unknown executor '{executor}'; choose local or docker.")
    if network and not getattr(settings, "MLP_JOB_ALLOW_NETWORK", False):
        raise PermissionDenied("This platform's policy does not allow jobs to reach the network.")
    if executor == Executor.LOCAL and (refused := sandbox.refusal(user)):
        raise PermissionDenied(refused)
    if not 0 <= int(max_retries) <= 5:
        raise ValidationFailed("max_retries must be between 0 and 5.")
    job_image = _image_for(executor, image)
    script = spec.clean_script(script)
    if script and bundle:
        raise ValidationFailed("Give either an inline script or a code bundle, not both.")
    args = _default_command(job_image, bool(script or bundle), command)
    resources_spec = spec.clean_resources(resources)
    env_spec = spec.clean_env(env, secret_env)
    clean_params = spec.clean_params(params)
    bundle_path = _store_bundle(bundle, bundle_name) if bundle else ""
    job = Job.objects.create(
        project=project,
        created_by=user,
        name=(name or "").strip()[:200] or Path(args[-1]).name[:200] or "job",
        experiment_name=(experiment_name or "Default").strip()[:200] or "Default",
        executor=executor,
        image=job_image,
        command=args,
        script=script,
        bundle=bundle_path,
        bundle_name=bundle_name[:255],
        params=clean_params,
        env=env_spec.plain,
        secret_env=secrets.encrypt_values(env_spec.secret),
        secret_owners={name: (secret_owners or {}).get(name, user.pk) for name in env_spec.secret},
        cpus=resources_spec.cpus,
        memory_mb=resources_spec.memory_mb,
        gpus=resources_spec.gpus,
        timeout_seconds=resources_spec.timeout_seconds,
        network=bool(network),
        queue=_check_queue(queue),
        max_retries=int(max_retries),
        sweep=sweep,
        rerun_of=rerun_of,
    )
    JobEvent.objects.create(job=job, to_status=JobStatus.QUEUED, reason=Reason.SUBMITTED, actor=user)
    audit_record(
        actor=user,
        action="job.submit",
        target=job,
        project_id=project.pk,
        after={"name": job.name, "executor": executor, "command": args, "secret_env": sorted(env_spec.secret)},
    )
    job_events.publish_status(job)
    if dispatch:
        job_dispatch(job=job)
    return job


def job_dispatch(*, job: Job) -> None:
    """Sends the job's message after commit. Sending twice is harmless: the task starts
    a job only by moving it out of `queued` with a compare-and-set."""
    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())
    job_id, queue = job.pk, job.queue
    transaction.on_commit(lambda: send_job_message(job_id, queue))


def send_job_message(job_id: int, queue: str) -> None:
    from jobs.tasks import job_run_task

    try:
        job_run_task.apply_async(args=[job_id], queue=queue)
    except Exception:  # the broker may be down: the reconciler re-sends from the database
        logger.exception("sending job %s to the broker failed; the reconciler will retry", job_id)


def job_transition(
    *,
    job: Job,
    to: str,
    reason: str,
    message: str = "",
    actor: User | None = None,
    from_status: str | None = None,
    **fields: Any,
) -> bool:
    """Moves the job from its current status (or `from_status`) to `to` with a
    compare-and-set: False when someone else changed it first. Updates `job` in place."""
    old = from_status or job.status
    if to not in TRANSITIONS[old]:
        raise InvalidState(f"A {old} job cannot become {to}.")
    now = timezone.now()
    values: dict[str, Any] = {"status": to, "reason": reason, "message": message[:500], **fields}
    if to in TERMINAL:
        values.setdefault("finished_at", now)
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, status=old).update(**values):
            return False
        JobEvent.objects.create(
            job_id=job.pk, from_status=old, to_status=to, reason=reason, message=message[:500], actor=actor
        )
        if any(hasattr(value, "resolve_expression") for value in values.values()):
            job.refresh_from_db()
        else:
            for key, value in values.items():
                setattr(job, key, value)
        if old in (JobStatus.STARTING, JobStatus.RUNNING) and to not in (JobStatus.STARTING, JobStatus.RUNNING):
            # Whoever ends the attempt (its runner, the reconciler) ends its token.
            job_token_revoke(job=job)
        job_events.publish_status(job)
    return True


# The job's token outlives its time limit by this much: the runner still finishes the
# run and a slow last upload must not be refused; it is revoked when the job ends anyway.
TOKEN_MARGIN = timedelta(minutes=5)


def job_token_issue(*, job: Job) -> str:
    """A token of the job's creator that reaches the job's project only, expiring after
    the job's time limit, for the job's MLflow client. Returns its secret."""
    token, raw = core_services.api_token_create(
        user=job.created_by,
        name=f"job #{job.pk}",
        project=job.project,
        expires_in_days=None,
        expires_at=timezone.now() + timedelta(seconds=job.timeout_seconds) + TOKEN_MARGIN,
    )
    Job.objects.filter(pk=job.pk).update(token_id=token.pk)
    job.token_id = token.pk
    return raw


def job_token_revoke(*, job: Job) -> None:
    """Revokes the job's current token, if any; repeating it is harmless."""
    if job.token_id is None:
        return
    try:
        core_services.api_token_revoke(token_id=job.token_id, actor=job.created_by)
    except NotFound:  # gone with its user: nothing left to revoke
        pass


def job_heartbeat(*, job_id: int) -> datetime:
    now = timezone.now()
    Job.objects.filter(pk=job_id).update(heartbeat_at=now)
    return now


@transaction.atomic
def job_cancel(*, job: Job, actor: User) -> Job:
    """A queued job is cancelled at once; a starting or running one is flagged, and its
    runner stops the process or container within a couple of seconds."""
    job.refresh_from_db()
    if job.is_terminal:
        raise InvalidState(f"The job already ended ({job.get_status_display().lower()}).")
    who = f"cancelled by {actor.username}"
    if job.status == JobStatus.QUEUED and job_transition(
        job=job, to=JobStatus.CANCELLED, reason=Reason.CANCELLED, message=who, actor=actor
    ):
        pass
    else:
        Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=True).update(
            cancel_requested_at=timezone.now(), cancel_requested_by=actor
        )
        job.refresh_from_db()
    audit_record(actor=actor, action="job.cancel", target=job, project_id=job.project_id, after={"status": job.status})
    if job.sweep_id and job.is_terminal:  # a queued child never reaches a runner
        from jobs.services.sweeps import sweep_advance

        sweep_advance(sweep_id=job.sweep_id)
    return job


# What a rerun may change: the fields of a submission, less the project (a rerun runs
# where its job ran). Anything else (user, created_by, sweep, dispatch...) is refused.
RERUN_FIELDS = frozenset(
    [
        "name",
        "experiment_name",
        "executor",
        "image",
        "command",
        "script",
        "bundle",
        "bundle_name",
        "params",
        "env",
        "secret_env",
        "resources",
        "network",
        "queue",
        "max_retries",
    ]
)


@transaction.atomic
def job_rerun(*, job: Job, user: User, changes: dict[str, Any] | None = None) -> Job:
    """A new job in `job`'s project with its spec and code, plus `changes` (fields of
    RERUN_FIELDS; params and resources are merged, `bundle` is new code as bytes).

    Secret values: those given in changes["secret_env"] are the rerunner's. The others
    are carried over, without leaving the server, while what runs stays the same; when
    the code, command, image or plain env changes, only the values the rerunner entered
    themselves are kept, so nobody's secret reaches code that somebody else wrote."""
    changes = dict(changes or {})
    unknown = set(changes) - RERUN_FIELDS
    if unknown:
        raise ValidationFailed(
            f"A rerun cannot change {', '.join(sorted(unknown))}; it can change {', '.join(sorted(RERUN_FIELDS))}."
        )
    entered = spec.clean_env(None, changes.pop("secret_env", None)).secret
    base: dict[str, Any] = {
        "name": job.name,
        "command": job.command,
        "executor": job.executor,
        "image": job.image.name if job.image else None,
        "script": job.script,
        "params": job.params,
        "env": job.env,
        "resources": _resources_of(job),
        "network": job.network,
        "queue": job.queue,
        "max_retries": job.max_retries,
        "experiment_name": job.experiment_name,
    }
    # New code of either kind replaces the old code of both kinds.
    if changes.get("bundle"):
        base["script"] = ""
    elif job.bundle and not changes.get("script"):
        base["bundle"] = Path(job.bundle).read_bytes()
        base["bundle_name"] = job.bundle_name
    if isinstance(changes.get("params"), dict):
        changes["params"] = {**job.params, **changes["params"]}
    if isinstance(changes.get("resources"), dict):
        changes["resources"] = {**base["resources"], **changes["resources"]}
    merged = {**base, **changes}
    values, owners = _carried_secrets(job=job, user=user, new_code=_runs_other_code(job, merged))
    new = job_submit(
        project=job.project,
        user=user,
        rerun_of=job,
        secret_env={**values, **entered},
        secret_owners={name: owner for name, owner in owners.items() if name not in entered},
        **merged,
    )
    audit_record(
        actor=user,
        action="job.rerun",
        target=new,
        project_id=job.project_id,
        after={
            "rerun_of": job.pk,
            "secret_env_kept": sorted(values),
            "secret_env_entered": sorted(entered),
            "secret_env_not_kept": sorted(set(job.secret_env) - set(values) - set(entered)),
        },
    )
    return new


def _resources_of(job: Job) -> dict[str, Any]:
    return {"cpus": job.cpus, "memory_mb": job.memory_mb, "gpus": job.gpus, "timeout_seconds": job.timeout_seconds}


def _carried_secrets(*, job: Job, user: User, new_code: bool) -> tuple[dict[str, str], dict[str, int | None]]:
    """The secret values (and their owners) of `job` that a rerun by `user` keeps."""
    values = secrets.decrypt_values(job.secret_env)
    owners = {name: job.secret_owners.get(name) for name in values}
    if new_code:
        owners = {name: owner for name, owner in owners.items() if owner == user.pk}
    return {name: values[name] for name in owners}, owners


def _same_text(script: str) -> str:
    """A browser sends a textarea back with CRLF line ends and the form trims it."""
    return script.replace("\r\n", "\n").strip()


def _runs_other_code(job: Job, merged: dict[str, Any]) -> bool:
    """Whether a rerun spec runs something else than `job` did: other code, command,
    image, or plain env (PYTHON*, BASH_ENV and the like change what a program does)."""
    try:
        image = _image_for(merged["executor"], merged.get("image"))
        script = spec.clean_script(merged.get("script"))
        bundle = merged.get("bundle")
        command = _default_command(image, bool(script or bundle), merged.get("command"))
        env = spec.clean_env(merged.get("env")).plain
    except ValidationFailed:
        return True  # job_submit refuses this spec anyway
    old_bundle = Path(job.bundle).read_bytes() if job.bundle else None
    return (
        _same_text(script) != _same_text(job.script)
        or (bundle or None) != old_bundle
        or command != job.command
        or (image.pk if image else None) != job.image_id
        or env != job.env
    )


def job_attempt_started(*, job: Job, worker: str) -> bool:
    """queued -> starting for this worker; False when another worker has it."""
    return job_transition(
        job=job,
        to=JobStatus.STARTING,
        reason=Reason.DISPATCHED,
        message=f"attempt {job.attempt + 1} on {worker}",
        worker=worker[:255],
        heartbeat_at=timezone.now(),
        attempt=F("attempt") + 1,
    )
