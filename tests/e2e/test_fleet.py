"""A fleet, not one process: production's separate web, worker, beat and serving
processes, as real subprocesses on a private Redis (and the test database), some of
them killed with SIGKILL mid-way."""

import shutil
import time

import pytest

from tests.fleet import Fleet, process_env, queued_tasks
from tests.jobs.test_reliability import PrivateRedis, wait_for

pytestmark = pytest.mark.slow
RECONCILE = "jobs.tasks.jobs_reconcile_task"


def needs_redis_server() -> None:
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server on PATH (apt-get install redis-server; .ci/run starts one)")


def beat_decisions(fleet: Fleet, name: str) -> str:
    path = fleet.log_dir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_second_beat_does_not_double_periodic_work_and_takes_over_when_the_first_dies(tmp_path):
    needs_redis_server()
    redis = PrivateRedis(tmp_path)
    redis.start()
    env = process_env(
        redis_url=redis.url, data_dir=tmp_path, MLP_JOB_RECONCILE_INTERVAL="1", MLP_BEAT_LEASE_SECONDS="3"
    )
    fleet = Fleet(tmp_path / "logs", env)
    try:
        # Given two beats (one started by mistake), both up and past their first decision…
        fleet.beat("beat-a")
        fleet.beat("beat-b")
        decided = ("now sends the schedule", "stands by")
        wait_for(lambda: all(any(d in beat_decisions(fleet, b) for d in decided) for b in ("beat-a", "beat-b")), 90)
        leaders = [b for b in ("beat-a", "beat-b") if "now sends the schedule" in beat_decisions(fleet, b)]
        assert len(leaders) == 1, fleet.logs()

        # …when the reconciler is due every second, it is sent once a second, not twice:
        # seven messages span six periods of one sender (two senders: three).
        wait_for(lambda: queued_tasks(redis.url)[RECONCILE] >= 1, 30, step=0.05)
        first = time.monotonic()
        wait_for(lambda: queued_tasks(redis.url)[RECONCILE] >= 7, 60, step=0.05)
        assert time.monotonic() - first >= 4.5, "two beats both sent the periodic task"
        assert fleet.alive("beat-a") and fleet.alive("beat-b"), fleet.logs()

        # When the leader dies without a word, the other one takes over within a lease.
        fleet.kill(leaders[0])
        sent = queued_tasks(redis.url)[RECONCILE]
        wait_for(lambda: queued_tasks(redis.url)[RECONCILE] >= sent + 2, 30, step=0.1)
        survivor = "beat-b" if leaders[0] == "beat-a" else "beat-a"
        assert "now sends the schedule" in beat_decisions(fleet, survivor)
    finally:
        fleet.close()
        redis.stop()
