"""The docker executor: the job runs in a hardened container on any Docker-API engine
(DOCKER_HOST; Podman's compatible service here). Non-root, init as PID 1 (so SIGTERM
reaches the job), no capabilities, no new privileges, read-only root with a tmpfs, the
job's work dir mounted, no network unless allowed, CPU/memory/pids limits. The job's
MLflow client reaches the tracking API through the worker's relay all the same (see
relay.py): the container's command is our forwarder, which runs the job's command."""

import logging
import os
from pathlib import Path
import queue
import threading

from django.conf import settings

from jobs.executors.base import (
    ExecutionContext,
    InfrastructureError,
    Outcome,
    Sink,
    Watch,
    gpu_points,
    outcome_for,
    pump,
    split_lines,
)
from jobs.executors.relay import TrackingRelay, forwarded_command

logger = logging.getLogger(__name__)

WORKDIR = "/work"
LABEL = "mlp.job"
MB = 1024 * 1024


_client = None
_client_lock = threading.Lock()


def client():
    """One engine client per process (it is a pool of HTTP connections); pinged once
    when made, so each job start does not pay an extra round trip."""
    global _client
    with _client_lock:
        if _client is None:
            import docker

            try:
                engine = docker.from_env(timeout=60)
                engine.ping()
            except Exception as exc:
                raise InfrastructureError(
                    f"the container engine is not reachable ({exc.__class__.__name__}: {exc})"
                ) from exc
            _client = engine
        return _client


def engine_available() -> tuple[bool, str]:
    try:
        client().ping()
    except InfrastructureError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"the container engine is not reachable ({exc})"
    return True, ""


def remove_job_containers(job_id: int) -> None:
    try:
        engine = client()
        for container in engine.containers.list(all=True, filters={"label": f"{LABEL}={job_id}"}):
            container.remove(force=True)
    except Exception:
        logger.exception("removing the containers of job %s failed", job_id)


def container_options(ctx: ExecutionContext, relay: TrackingRelay) -> dict:
    import docker

    options = {
        "user": "1000:1000",
        "init": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": "rw,size=256m,mode=1777"},  # noqa: S108 - the container's own tmpfs
        "volumes": {
            str(ctx.workdir): {"bind": WORKDIR, "mode": "rw"},
            **relay.volume(),
        },
        "working_dir": WORKDIR,
        "network_mode": "bridge" if ctx.network else "none",
        "mem_limit": f"{ctx.memory_mb}m",
        "memswap_limit": f"{ctx.memory_mb}m",
        "pids_limit": getattr(settings, "MLP_JOB_PIDS_LIMIT", 256),
        "nano_cpus": int(ctx.cpus * 1_000_000_000),
        "environment": ctx.env,
        "labels": {LABEL: str(ctx.job_id)},
        "detach": True,
    }
    if ctx.gpus:
        options["device_requests"] = [docker.types.DeviceRequest(count=ctx.gpus, capabilities=[["gpu"]])]
    return options


def _give_workdir_to_job_user(workdir: Path) -> None:
    """The job runs as uid 1000; its mounted work dir must be writable by it."""
    if os.geteuid() != 0:
        os.chmod(workdir, 0o777)  # noqa: S103 - the job's own scratch dir
        return
    for root, dirs, files in os.walk(workdir):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, 1000, 1000)


def stats_points(stats: dict) -> list[tuple[str, float]]:
    cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or 1
    percent = cpu_delta / system_delta * online * 100 if system_delta > 0 and cpu_delta >= 0 else 0.0
    memory = stats.get("memory_stats", {}).get("usage", 0) or 0
    return [
        ("system/cpu_utilization_percentage", round(percent, 1)),
        ("system/system_memory_usage_megabytes", round(memory / MB, 1)),
    ]


class DockerExecutor:
    def run(self, ctx: ExecutionContext, sink: Sink) -> Outcome:
        engine = client()
        _give_workdir_to_job_user(ctx.workdir)
        with TrackingRelay(settings.MLP_PUBLIC_URL) as relay:
            try:
                command = forwarded_command(ctx.command, ctx.python)
                container = engine.containers.run(ctx.image, command, **container_options(ctx, relay))
            except Exception as exc:
                raise InfrastructureError(f"the container did not start: {exc}") from exc
            return self._run_started(container, ctx, sink)

    def _run_started(self, container, ctx: ExecutionContext, sink: Sink) -> Outcome:
        sink.started(container_id=container.id)
        try:
            return self._watch(container, ctx, sink)
        finally:
            try:
                container.remove(force=True)
            except Exception:
                logger.exception("removing container %s failed", container.id[:12])

    def _watch(self, container, ctx: ExecutionContext, sink: Sink) -> Outcome:
        lines: queue.Queue[object] = queue.Queue()
        threading.Thread(
            target=split_lines, args=(container.logs(stream=True, follow=True), lines), daemon=True
        ).start()
        result: dict = {}
        exited = threading.Event()

        def wait() -> None:
            try:
                result.update(container.wait())
            except Exception as exc:
                result["error"] = str(exc)
            exited.set()

        threading.Thread(target=wait, daemon=True).start()
        watch = Watch(
            lines=lines,
            finished=exited.is_set,
            sample=lambda: stats_points(container.stats(stream=False)) + gpu_points(ctx.gpus),
        )
        stop = pump(watch, sink, ctx.timeout_seconds)
        if stop is not None:
            container.stop(timeout=3)
            exited.wait(10)
        container.reload()
        state = container.attrs.get("State", {})
        exit_code = result.get("StatusCode", state.get("ExitCode"))
        # Podman does not always set OOMKilled; a SIGKILL we did not send, under a
        # memory limit, is the kernel's OOM killer.
        oom = bool(state.get("OOMKilled")) or (stop is None and exit_code == 137) or watch.saw_memory_error
        return outcome_for(stop, exit_code, oom=oom and exit_code != 0)
