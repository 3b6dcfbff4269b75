"""What every executor shares: the context it gets, the outcome it returns, and the
loop that moves output lines to the sink while watching for cancel, timeout and OOM."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import queue
import shutil
import subprocess
import threading
import time
from typing import Protocol

EOF_MARK = object()
SAMPLE_SECONDS = 2.0
# Seconds to wait for the rest of the output once the main process has exited;
# a background child that keeps the pipe open must not hold the job forever.
DRAIN_GRACE = 2.0


class InfrastructureError(Exception):
    """The platform, not the job, failed (engine down, image missing): retryable."""


@dataclass
class ExecutionContext:
    workdir: Path
    command: list[str]
    env: dict[str, str]
    memory_mb: int
    cpus: float
    gpus: int
    timeout_seconds: int
    network: bool
    image: str = ""
    job_id: int = 0
    python: str = "python3"  # the image's interpreter, which runs the tracking forwarder
    # Whose job may run without the local sandbox, when none can be made: an admin's.
    may_run_unconfined: bool = False


@dataclass
class Outcome:
    status: str
    reason: str
    exit_code: int | None = None
    message: str = ""


class Sink(Protocol):
    def started(self, *, pid: int | None = None, container_id: str = "") -> None: ...
    def line(self, text: str) -> None: ...
    def samples(self, points: list[tuple[str, float]]) -> None: ...
    def tick(self) -> bool:
        """Flushes, heart-beats; True when the job should stop (cancel requested)."""
        ...


class Executor(Protocol):
    def run(self, ctx: ExecutionContext, sink: Sink) -> Outcome: ...


@dataclass
class Watch:
    """What the pump loop needs from an executor."""

    lines: "queue.Queue[object]"
    finished: Callable[[], bool]
    sample: Callable[[], list[tuple[str, float]]] | None = None
    over_memory: Callable[[list[tuple[str, float]]], bool] = lambda points: False
    stop_reason: str | None = None
    saw_memory_error: bool = False
    samples_out: "queue.Queue[list]" = field(default_factory=queue.Queue)


GPU_QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


def parse_gpu_query(output: str) -> list[tuple[str, float]]:
    """`utilization, memory MiB` per line, one line per GPU, into MLflow's system metric
    names. A field nvidia-smi cannot read ("[N/A]") is left out."""
    points: list[tuple[str, float]] = []
    for index, line in enumerate(line for line in output.splitlines() if line.strip()):
        values = [value.strip() for value in line.split(",")]
        names = (f"system/gpu_{index}_utilization_percentage", f"system/gpu_{index}_memory_usage_megabytes")
        for name, value in zip(names, values, strict=False):
            try:
                points.append((name, float(value)))
            except ValueError:
                continue
    return points


def gpu_points(gpus: int) -> list[tuple[str, float]]:
    """GPU samples for a job that asked for GPUs, on a host that has nvidia-smi. The
    query covers the host's GPUs; jobs on one host share them."""
    if not gpus or shutil.which(GPU_QUERY[0]) is None:
        return []
    try:
        result = subprocess.run(GPU_QUERY, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_gpu_query(result.stdout)


def start_sampler(watch: Watch, done: threading.Event) -> None:
    """Samples in a thread: an engine's stats call may take a second."""

    def loop():
        while not done.wait(SAMPLE_SECONDS):
            try:
                points = watch.sample() if watch.sample else []
            except Exception:  # a process or container that just ended has no stats
                points = []
            if points:
                watch.samples_out.put(points)

    threading.Thread(target=loop, name="job-sampler", daemon=True).start()


def pump(watch: Watch, sink: Sink, timeout_seconds: int) -> str | None:
    """Runs until the output ends and the job exits, or a stop is due; returns
    None, "cancel", "timeout" or "oom"."""
    deadline = time.monotonic() + timeout_seconds
    eof = False
    exited_at: float | None = None
    done = threading.Event()
    start_sampler(watch, done)
    try:
        while True:
            at_eof, moved = _drain(watch, sink)
            eof = eof or at_eof
            if watch.finished():
                # The grace period counts only while no output arrives: a backlog of
                # lines still being stored is not a stuck pipe.
                exited_at = time.monotonic() if moved or exited_at is None else exited_at
                if eof or time.monotonic() - exited_at > DRAIN_GRACE:
                    return None
            stop = _due_stop(watch, sink, deadline)
            if stop:
                return stop
    finally:
        done.set()


def _due_stop(watch: Watch, sink: Sink, deadline: float) -> str | None:
    while not watch.samples_out.empty():
        points = watch.samples_out.get_nowait()
        sink.samples(points)
        if watch.over_memory(points):
            return "oom"
    if sink.tick():
        return "cancel"
    if time.monotonic() > deadline:
        return "timeout"
    return None


def _drain(watch: Watch, sink: Sink, limit: int = 5000) -> tuple[bool, int]:
    """Moves up to `limit` lines to the sink, waiting briefly for the first. Returns
    (reached EOF, lines moved)."""
    try:
        item = watch.lines.get(timeout=0.1)
    except queue.Empty:
        return False, 0
    moved = 0
    while True:
        if item is EOF_MARK:
            return True, moved
        text = str(item)
        if "MemoryError" in text:
            watch.saw_memory_error = True
        sink.line(text)
        moved += 1
        if moved >= limit:
            return False, moved
        try:
            item = watch.lines.get_nowait()
        except queue.Empty:
            return False, moved


def split_lines(chunks, out: "queue.Queue[object]") -> None:
    """Turns a stream of byte chunks into lines on `out`, then EOF_MARK."""
    buffer = b""
    try:
        for chunk in chunks:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                out.put(raw.decode("utf-8", errors="replace").rstrip("\r"))
    finally:
        if buffer:
            out.put(buffer.decode("utf-8", errors="replace"))
        out.put(EOF_MARK)


def outcome_for(stop: str | None, exit_code: int | None, *, oom: bool = False, who: str = "") -> Outcome:
    if stop == "cancel":
        return Outcome("cancelled", "cancelled", exit_code, who or "cancelled")
    if stop == "timeout":
        return Outcome("timed_out", "timeout", exit_code, "stopped at its time limit")
    if stop == "oom" or oom:
        return Outcome("failed", "oom", exit_code, "killed: over its memory limit")
    if exit_code == 0:
        return Outcome("succeeded", "exit_code", 0, "exit code 0")
    return Outcome("failed", "exit_code", exit_code, f"exit code {exit_code}")
