"""Reliability against a real Celery worker process, Redis and PostgreSQL.

Each test runs its own redis-server on a free port (the shared one on 6379 serves the
other developers and is never restarted) and a `celery -A mlplatform worker`
subprocess on the test database."""

from contextlib import contextmanager
from datetime import timedelta
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.db import connection
import psutil
import pytest

from jobs import services
from jobs.models import Job, JobEvent, JobStatus, Reason
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def real_services():
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        pytest.skip("needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL (CI does)")
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: a worker process cannot share the in-memory test database")


class PrivateRedis:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
        )
        wait_for(
            lambda: (
                subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip()
                == b"PONG"
            ),
            10,
        )

    def has_binding(self, queue: str) -> bool:
        keys = subprocess.run(["redis-cli", "-p", str(self.port), "keys", "_kombu.binding.*"], capture_output=True)
        return b"_kombu.binding." in keys.stdout

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait(5)


def wait_for(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@contextmanager
def broker(url: str):
    """Points this process's Celery producer at the private Redis."""
    from mlplatform.celery import app

    old = app.conf.broker_url

    def switch(target):
        app.conf.broker_url = target
        app._pool = None
        app.amqp._producer_pool = None

    switch(url)
    try:
        yield
    finally:
        switch(old)


@contextmanager
def worker(redis_url: str, data_dir: Path):
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "MLP_DATA_DIR": str(data_dir),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mlplatform",
            "worker",
            "-Q",
            "jobs",
            "-c",
            "2",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def live_group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def status_of(job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def submit(project, user, script, **kwargs):
    return services.job_submit(project=project, user=user, script=script, **kwargs)


def test_a_worker_killed_mid_job_leaves_the_job_failed_with_worker_lost(redis, job_project, scientist, data_dir):
    with broker(redis.url), worker(redis.url, data_dir) as proc:
        job = submit(job_project, scientist, "import time\nprint('up', flush=True)\ntime.sleep(300)", max_retries=0)
        wait_for(lambda: status_of(job) == JobStatus.RUNNING, 90)
        job.refresh_from_db()
        pgid = job.pid
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's whole process tree, like a lost machine

        def reconciled() -> bool:
            services.jobs_reconcile(heartbeat_timeout=timedelta(seconds=2))
            return status_of(job) != JobStatus.RUNNING

        # The reconciler (every 15 s in production) ends it within a bounded time.
        wait_for(reconciled, 30, step=0.5)
    job.refresh_from_db()
    assert (job.status, job.reason) == (JobStatus.FAILED, Reason.WORKER_LOST), job.message
    # The job's process tree is gone too (zombies awaiting their reaper do not count).
    wait_for(lambda: not live_group_members(pgid), 10)


def test_queued_jobs_survive_a_redis_restart_and_each_runs_exactly_once(redis, job_project, scientist, data_dir):
    with broker(redis.url):
        jobs = [submit(job_project, scientist, f"print('job {i}')") for i in range(4)]
        # Given the messages sit in Redis with no worker, when Redis restarts empty…
        redis.stop()
        redis.start()
    with broker(redis.url), worker(redis.url, data_dir):
        if True:
            # …and the worker is back (it re-declares its queue on the new Redis), the
            # reconciler re-sends from the database; sending twice must still run once.
            wait_for(lambda: redis.has_binding("jobs"), 60)
            assert services.jobs_reconcile(redispatch_after=timedelta(0))["redispatched"] == len(jobs)
            services.jobs_reconcile(redispatch_after=timedelta(0))
            wait_for(lambda: all(status_of(j) == JobStatus.SUCCEEDED for j in jobs), 90)
    for job in jobs:
        assert JobEvent.objects.filter(job=job, to_status=JobStatus.STARTING).count() == 1
        assert list(job.lines.values_list("text", flat=True)) == [f"job {jobs.index(job)}"]
