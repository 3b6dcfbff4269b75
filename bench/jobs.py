"""Jobs benchmark: submit -> first log line (local, docker), a burst of jobs, one very
chatty job, and submit -> first output versus `mlflow run` of the same script.

Runs standalone on a fresh embedded platform (SQLite and an in-process Celery worker
in a temporary MLP_DATA_DIR, unless DATABASE_URL/REDIS_URL are set):

    .venv/bin/python bench/jobs.py [--n 20] [--docker-n 20] [--burst 50] [--lines 100000]
"""

import argparse
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("MLP_DATA_DIR", tempfile.mkdtemp(prefix="mlp-bench-jobs-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
os.environ.setdefault("DOCKER_HOST", "unix:///run/podman/podman.sock")
os.environ.setdefault("MLP_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

SCRIPT = "print('hello from the job', flush=True)\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(name: str, values: list[float]) -> None:
    print(f"{name:<44} median {statistics.median(values):7.3f} s   p95 {pct(values, 0.95):7.3f} s   (n={len(values)})")


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.01)


def first_line_latency(project, user, executor: str) -> float:
    from jobs import services
    from jobs.models import TERMINAL, Job, JobLogLine

    started = time.monotonic()
    job = services.job_submit(project=project, user=user, script=SCRIPT, executor=executor)
    wait_for(lambda: JobLogLine.objects.filter(job=job).exists(), 60)
    elapsed = time.monotonic() - started
    wait_for(lambda: Job.objects.get(pk=job.pk).status in TERMINAL, 60)
    job.refresh_from_db()
    where = job.container_id[:12] if executor == "docker" else f"pid {job.pid}"
    if job.status != "succeeded" or (executor == "docker" and not job.container_id):
        raise RuntimeError(f"job {job.pk} ({executor}) did not run as expected: {job.status} {job.message} {where}")
    return elapsed


def burst(project, user, count: int) -> tuple[float, int]:
    from jobs import services
    from jobs.models import TERMINAL, Job

    started = time.monotonic()
    ids = [services.job_submit(project=project, user=user, script=SCRIPT).pk for _ in range(count)]
    wait_for(lambda: Job.objects.filter(pk__in=ids, status__in=TERMINAL).count() == count, 600)
    ok = Job.objects.filter(pk__in=ids, status="succeeded").count()
    return time.monotonic() - started, ok


def chatty(project, user, lines: int) -> tuple[float, int]:
    from jobs import services
    from jobs.models import TERMINAL, Job

    script = f"import sys\nfor i in range({lines}):\n    sys.stdout.write(f'line {{i}}\\n')\n"
    started = time.monotonic()
    job = services.job_submit(project=project, user=user, script=script)
    wait_for(lambda: Job.objects.get(pk=job.pk).status in TERMINAL, 600)
    return time.monotonic() - started, job.lines.count()


def mlflow_run_latency(workdir: Path) -> float:
    """`mlflow run` of the same script, local env: start to the script's first line."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "run", str(workdir), "-e", "main.py", "--env-manager", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"},
        cwd=workdir,
    )
    for raw in proc.stdout:
        if b"hello from the job" in raw:
            elapsed = time.monotonic() - started
            break
    else:
        raise RuntimeError("mlflow run printed nothing")
    proc.wait(60)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--docker-n", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from jobs.executors.docker import engine_available
    from mlplatform.embedded import start_worker_thread
    from tests.factories import UserFactory, make_project

    user = UserFactory()
    project = make_project(owner=user)
    start_worker_thread(concurrency=4)

    local = [first_line_latency(project, user, "local") for _ in range(args.n)]
    report("submit -> first log line, local", local)
    ok, why = engine_available()
    if ok and args.docker_n:
        report(
            "submit -> first log line, docker",
            [first_line_latency(project, user, "docker") for _ in range(args.docker_n)],
        )
    else:
        print(f"docker: skipped ({why or 'disabled'})")

    workdir = Path(tempfile.mkdtemp(prefix="mlp-bench-mlflow-"))
    (workdir / "main.py").write_text(SCRIPT)
    theirs = [mlflow_run_latency(workdir) for _ in range(max(3, args.n // 4))]
    report("`mlflow run --env-manager local` -> first line", theirs)
    print(f"ratio mlflow run / our local job (medians): {statistics.median(theirs) / statistics.median(local):.2f}x")

    elapsed, ok_count = burst(project, user, args.burst)
    print(f"{args.burst} jobs submitted at once: all finished in {elapsed:.1f} s, {ok_count}/{args.burst} succeeded")
    elapsed, stored = chatty(project, user, args.lines)
    print(f"one job printing {args.lines} lines: {stored} stored, finished in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the in-process worker's daemon threads need no orderly teardown
