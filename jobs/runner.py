"""Runs one job attempt: claim it, prepare its work dir, environment, run and token,
hand it to the executor, and record what happened. Called by job_run_task."""

from datetime import UTC, datetime
import json
import logging
from pathlib import Path
import shutil
import sys
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from jobs import secrets, spec, tracking
from jobs.executors import ExecutionContext, InfrastructureError, Outcome, get_executor
from jobs.executors.relay import FORWARD_PORT
from jobs.models import Executor, Job, JobStatus, Reason
from jobs.services import jobs as job_services
from jobs.services.logs import job_log_append, job_metrics_record, secrets_of
from jobs.services.sweeps import sweep_advance

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
FLUSH_LINES = 2000
CANCEL_CHECK_SECONDS = 0.5
HEARTBEAT_SECONDS = 5.0


def work_root(job: Job) -> Path:
    return Path(settings.DATA_DIR) / "jobs" / str(job.pk)


def prepare_workdir(job: Job) -> Path:
    """A fresh work dir per attempt; code and params.json go in."""
    workdir = work_root(job) / "work"
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / ".mlp").mkdir(parents=True)
    if job.bundle:
        spec.extract_bundle(job.bundle, str(workdir))
    if job.script:
        (workdir / "main.py").write_text(job.script, encoding="utf-8")
    (workdir / "params.json").write_text(json.dumps(job.params), encoding="utf-8")
    install_helpers(workdir)
    return workdir


HELPERS = Path(settings.BASE_DIR) / "mlplatform" / "client"
HELPERS_DIR = ".mlp/lib"  # inside the work dir; on the job's PYTHONPATH


def install_helpers(workdir: Path) -> None:
    """The job helpers (`from mlplatform.client import datasets`) are copied into the
    work dir rather than read from the platform's tree: a sandboxed or container job
    sees its work dir only, and the platform's source is not its business."""
    package = workdir / HELPERS_DIR / "mlplatform"
    (package / "client").mkdir(parents=True)
    (package / "__init__.py").write_text('"""The platform\'s job helpers (a copy made for this job)."""\n')
    for module in HELPERS.glob("*.py"):
        shutil.copyfile(module, package / "client" / module.name)


def job_command(job: Job) -> list[str]:
    """The command, then each param as `--name value`."""
    args = list(job.command)
    for name, value in job.params.items():
        args += [f"--{name}", str(value)]
    return args


def tracking_uri(job: Job) -> str:
    """A container job, which has no network, reaches its in-container forwarder to the
    worker's relay (see jobs/executors/relay.py); a local job the platform itself, unless
    its sandbox has no network either: then the local executor points it at the same
    forwarder (see jobs/executors/sandbox.py)."""
    if job.executor == Executor.DOCKER:
        return f"http://127.0.0.1:{FORWARD_PORT}"
    return settings.MLP_PUBLIC_URL.rstrip("/")


def job_env(job: Job, workdir: Path, token: str, experiment_id: str = "") -> dict[str, str]:
    """Nothing of the worker's environment leaks in: only what the job needs. The local
    executor runs the platform's own interpreter (its venv has the MLflow client)."""
    docker = job.executor == Executor.DOCKER
    venv_bin = str(Path(sys.executable).parent)
    threads = str(max(1, int(job.cpus)))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin" if docker else f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp" if docker else str(workdir),  # noqa: S108 - inside the container
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MLP_JOB_ID": str(job.pk),
        "MLFLOW_TRACKING_URI": tracking_uri(job),
        "MLFLOW_RUN_ID": job.run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        # The client's "View run at <tracking URI>/#/..." line points at MLflow's UI (and,
        # in a container, at the forwarder's loopback address): the job page links the run.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    # The job helpers (mlplatform.client: datasets.load), copied in by prepare_workdir.
    env["PYTHONPATH"] = f"/work/{HELPERS_DIR}" if docker else str(workdir / HELPERS_DIR)
    env["MLP_PROJECT"] = job.project.slug
    return {**job.env, **secrets.decrypt_values(job.secret_env), **{k: v for k, v in env.items() if v}}


class RunnerSink:
    """Batches lines and metrics into the database, heart-beats, watches for cancel,
    and follows what the job logs to its run (for the job page's charts and progress)."""

    def __init__(self, job: Job, run: Any, masked: list[str]):
        self.job, self.run, self.masked = job, run, masked
        self.pending: list[str] = []
        self.seq = job.log_lines
        self.last_flush = self.last_cancel_check = self.last_beat = time.monotonic()
        self.last_point = 0
        self.cancel_by = ""

    def started(self, *, pid: int | None = None, container_id: str = "") -> None:
        job_services.job_transition(
            job=self.job,
            to=JobStatus.RUNNING,
            reason=Reason.STARTED,
            message=f"pid {pid}" if pid else f"container {container_id[:12]}",
            started_at=timezone.now(),
            pid=pid,
            container_id=container_id,
        )

    def line(self, text: str) -> None:
        self.pending.append(text)
        if len(self.pending) >= FLUSH_LINES:
            self.flush()

    def samples(self, points: list[tuple[str, float]]) -> None:
        now = timezone.now()
        step = int(time.time())
        job_metrics_record(job=self.job, points=[(k, v, step, now) for k, v in points])
        tracking.run_log(run=self.run, metrics=_metric_dicts(points, step), params={}, tags={})

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.seq = job_log_append(job=self.job, start_seq=self.seq, lines=lines, secrets=self.masked)
        self.last_flush = time.monotonic()

    def tick(self) -> bool:
        now = time.monotonic()
        if self.pending and now - self.last_flush >= FLUSH_SECONDS:
            self.flush()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            job_services.job_heartbeat(job_id=self.job.pk)
            self.last_beat = now
        if now - self.last_cancel_check >= CANCEL_CHECK_SECONDS:
            self.last_cancel_check = now
            self.follow_run()
            return self.should_stop()
        return False

    def should_stop(self) -> bool:
        row = Job.objects.filter(pk=self.job.pk).values(
            "status", "cancel_requested_at", "cancel_requested_by__username"
        )
        current = row.first()
        if current is None or current["status"] not in (JobStatus.STARTING, JobStatus.RUNNING):
            self.cancel_by = "the job was taken over by the reconciler"
            return True
        if current["cancel_requested_at"] is not None:
            self.cancel_by = f"cancelled by {current['cancel_requested_by__username'] or 'someone'}"
            return True
        return False

    def follow_run(self) -> None:
        """Copies the points the job's client logged to its run into the job's own
        metrics; system points are the platform's and are recorded by samples()."""
        while True:
            rows = tracking.run_metric_tail(run=self.run, after_id=self.last_point)
            if not rows:
                return
            self.last_point = rows[-1][0]
            points = [
                (key, value, step, datetime.fromtimestamp(ts / 1000, tz=UTC))
                for _pk, key, value, step, ts in rows
                if not key.startswith("system/")
            ]
            job_metrics_record(job=self.job, points=points)


def _metric_dicts(points: list[tuple[str, float]], step: int) -> list[dict]:
    ts = int(time.time() * 1000)
    return [{"key": k, "value": v, "step": step, "timestamp": ts} for k, v in points]


def job_execute(*, job_id: int, worker: str) -> str:
    """One attempt of the job, if it is still queued. Returns what happened."""
    job = Job.objects.select_related("project", "created_by", "image", "sweep").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.QUEUED:
        return "skipped"
    if not job_services.job_attempt_started(job=job, worker=worker):
        return "skipped"
    run = None
    try:
        run = _start_run(job)
        raw = job_services.job_token_issue(job=job)
        outcome = _execute(job, raw, run)
    except InfrastructureError as exc:
        outcome = _infrastructure_failure(job, str(exc))
    except Exception as exc:
        logger.exception("job %s failed in the platform", job.pk)
        outcome = Outcome(JobStatus.FAILED, Reason.INFRASTRUCTURE, None, f"platform error: {exc}"[:500])
    finally:
        # The job's processes are gone: its token goes with them, whatever the outcome.
        job_services.job_token_revoke(job=job)
    _finish(job, outcome, run)
    return outcome.status


def _start_run(job: Job) -> Any:
    run = tracking.run_start(job=job, parent_run=tracking.sweep_parent(job))
    if run is not None:
        job.run_id = tracking.run_identifier(run)
        Job.objects.filter(pk=job.pk).update(run_id=job.run_id)
        params = {**job.params, "mlp.command": json.dumps(job.command)[:500]}
        tracking.run_log(run=run, metrics=[], params=params, tags={})
    return run


def _execute(job: Job, token: str, run: Any) -> Outcome:
    workdir = prepare_workdir(job)
    ctx = ExecutionContext(
        workdir=workdir,
        command=job_command(job),
        env=job_env(job, workdir, token, tracking.run_experiment_id(run)),
        memory_mb=job.memory_mb,
        cpus=job.cpus,
        gpus=job.gpus,
        timeout_seconds=job.timeout_seconds,
        network=job.network,
        image=job.image.name if job.image else "",
        python=job.image.python if job.image else "python3",
        job_id=job.pk,
        may_run_unconfined=job.created_by.is_admin,
    )
    sink = RunnerSink(job, run, secrets_of(job, [token]))
    try:
        outcome = get_executor(job.executor).run(ctx, sink)
    finally:
        sink.flush()
        sink.follow_run()
    if outcome.status == JobStatus.CANCELLED:
        outcome.message = sink.cancel_by or outcome.message
    return outcome


def _infrastructure_failure(job: Job, message: str) -> Outcome:
    job.refresh_from_db()
    if job.attempt <= job.max_retries and job_services.job_transition(
        job=job, to=JobStatus.QUEUED, reason=Reason.RETRY, message=f"retry after: {message}"[:500]
    ):
        job_services.job_dispatch(job=job)
        return Outcome(JobStatus.QUEUED, Reason.RETRY, None, message)
    return Outcome(JobStatus.FAILED, Reason.INFRASTRUCTURE, None, message[:500])


def _finish(job: Job, outcome: Outcome, run: Any) -> None:
    job.refresh_from_db()
    if outcome.status == JobStatus.QUEUED:  # retried: this attempt's run ends, the next has its own
        tracking.run_finish(run=run, status=JobStatus.FAILED)
        return
    if job.status in (JobStatus.STARTING, JobStatus.RUNNING):
        job_services.job_transition(
            job=job,
            to=outcome.status,
            reason=outcome.reason,
            message=outcome.message,
            exit_code=outcome.exit_code,
            pid=None,
        )
    tracking.run_finish(run=run, status=job.status)
    if job.sweep_id:
        sweep_advance(sweep_id=job.sweep_id)
