"""The local executor: the job runs as a child process group of the worker, confined by
bubblewrap (see sandbox.py: its own mount, pid and network namespaces, an unprivileged
uid, only its work dir writable), with the job's own environment and rlimits. The
embedded default. Without a sandbox only admins' jobs run, unconfined and warned."""

import ctypes
import os
import queue
import resource
import signal
import subprocess
import threading
import time

import psutil

from jobs.executors import sandbox
from jobs.executors.base import ExecutionContext, Outcome, Sink, Watch, gpu_points, outcome_for, pump, split_lines

PR_SET_PDEATHSIG = 1
MB = 1024 * 1024


def _limits(ctx: ExecutionContext):
    """rlimits applied in the child before exec. Address space is a backstop at twice
    the memory limit (interpreters reserve far more than they touch); the RSS watcher
    enforces the limit itself."""
    address_space = max(ctx.memory_mb * 2, ctx.memory_mb + 512) * MB
    cpu_seconds = int(ctx.timeout_seconds * max(1.0, ctx.cpus)) + 10

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:  # the job dies with the worker; the reconciler cleans up the rest of the group
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass

    return apply


def kill_group(pgid: int, grace: float = 2.0) -> None:
    """SIGTERM to the whole process group, SIGKILL to whatever is left after `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


class TreeSampler:
    def __init__(self, pid: int, gpus: int = 0):
        self.root = psutil.Process(pid)
        self.gpus = gpus
        self.known: dict[int, psutil.Process] = {}

    def __call__(self) -> list[tuple[str, float]]:
        procs = [self.root, *self.root.children(recursive=True)]
        cpu = rss = 0.0
        for proc in procs:
            tracked = self.known.setdefault(proc.pid, proc)
            try:
                cpu += tracked.cpu_percent(None)
                rss += tracked.memory_info().rss
            except psutil.Error:
                continue
        return [
            ("system/cpu_utilization_percentage", round(cpu, 1)),
            ("system/system_memory_usage_megabytes", round(rss / MB, 1)),
            *gpu_points(self.gpus),
        ]


UNCONFINED_WARNING = (
    "warning: no sandbox can be made on this worker ({why}); this admin's job runs unconfined, "
    "with the worker's rights and files in reach"
)


class LocalExecutor:
    def run(self, ctx: ExecutionContext, sink: Sink) -> Outcome:
        confined, why = sandbox.available()
        if confined:
            with sandbox.prepared(ctx) as (argv, env):
                return self._run(ctx, sink, argv, env)
        if not ctx.may_run_unconfined:
            return Outcome("failed", "infrastructure", None, sandbox.refusal_message(why))
        sink.line(UNCONFINED_WARNING.format(why=why))
        return self._run(ctx, sink, ctx.command, ctx.env)

    def _run(self, ctx: ExecutionContext, sink: Sink, argv: list[str], env: dict[str, str]) -> Outcome:
        proc = subprocess.Popen(
            argv,
            cwd=ctx.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limits(ctx),
        )
        sink.started(pid=proc.pid)
        lines: queue.Queue[object] = queue.Queue()
        threading.Thread(
            target=split_lines, args=(iter(lambda: proc.stdout.read1(65536), b""), lines), daemon=True
        ).start()
        watch = Watch(
            lines=lines,
            finished=lambda: proc.poll() is not None,
            sample=TreeSampler(proc.pid, ctx.gpus),
            over_memory=lambda points: dict(points).get("system/system_memory_usage_megabytes", 0) > ctx.memory_mb,
        )
        try:
            stop = pump(watch, sink, ctx.timeout_seconds)
        finally:
            kill_group(proc.pid, grace=2.0 if proc.poll() is None else 0)
        exit_code = proc.wait()
        return outcome_for(stop, exit_code, oom=watch.saw_memory_error and exit_code != 0)
