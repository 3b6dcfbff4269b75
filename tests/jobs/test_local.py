"""The local executor end to end (synchronously, without a broker)."""

import time

import psutil
import pytest

from jobs.models import JobEvent, JobLogLine, JobMetric, JobStatus, Reason
from jobs.services import job_cancel
from mlplatform.models import ApiToken
from tests.jobs.conftest import execute


def process_alive(pid: int) -> bool:
    """Alive and not a zombie waiting for its reaper."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def lines_of(job):
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


def test_a_script_runs_and_its_output_and_metrics_are_stored(submit, tracking_server):
    job = submit(
        """
        import sys, mlflow
        print("args", sys.argv[1:])
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metric("progress", 1.0)
        print("done")
        """,
        params={"lr": "0.1"},
    )
    job = execute(job)
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    assert job.exit_code == 0
    # The real client says where the run is when it ends it at exit.
    assert lines_of(job)[:2] == ["args ['--lr', '0.1']", "done"]
    assert JobMetric.objects.filter(job=job, key="loss", value=0.5).exists()
    assert job.progress == 1.0
    statuses = list(JobEvent.objects.filter(job=job).values_list("to_status", flat=True))
    assert statuses == ["queued", "starting", "running", "succeeded"]


def test_a_failing_script_fails_with_its_exit_code(submit):
    job = execute(submit("import sys; sys.exit(3)"))
    assert (job.status, job.reason, job.exit_code) == (JobStatus.FAILED, Reason.EXIT_CODE, 3)


def test_secrets_are_masked_and_the_environment_is_scrubbed(submit, monkeypatch):
    monkeypatch.setenv("WORKER_ONLY_SECRET", "leak-me")
    job = submit(
        """
        import os
        print("secret", os.environ["API_KEY"])
        print("plain", os.environ["MODE"])
        print("worker", os.environ.get("WORKER_ONLY_SECRET"))
        print("token", os.environ["MLFLOW_TRACKING_TOKEN"])
        """,
        env={"MODE": "fast"},
        secret_env={"API_KEY": "s3cr3t-value"},
    )
    job = execute(job)
    assert lines_of(job) == ["secret ****", "plain fast", "worker None", "token ****"]
    assert "s3cr3t-value" not in "\n".join(lines_of(job))
    # The job's token is revoked when the job ends.
    token = ApiToken.objects.get(pk=job.token_id)
    assert token.revoked_at is not None and token.project_id == job.project_id


def test_over_the_time_limit_the_job_times_out(submit):
    job = execute(submit("import time\nprint('start', flush=True)\ntime.sleep(60)", resources={"timeout": 1}))
    assert (job.status, job.reason) == (JobStatus.TIMED_OUT, Reason.TIMEOUT)


def test_over_the_memory_limit_the_job_fails_with_oom(submit):
    job = execute(submit("x = bytearray(3 * 1024 ** 3)\nprint(len(x))", resources={"memory": "128m"}))
    assert (job.status, job.reason) == (JobStatus.FAILED, Reason.OOM)


@pytest.mark.django_db(transaction=True)
def test_cancel_kills_the_whole_process_tree_within_five_seconds(submit, scientist):
    import threading

    job = submit(
        """
        import subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        print("child", child.pid, flush=True)
        time.sleep(300)
        """
    )
    thread = threading.Thread(target=execute, args=(job,))
    thread.start()
    child_pid = None
    for _ in range(200):
        text = "\n".join(lines_of(job))
        if text.startswith("child"):
            child_pid = int(text.split()[1])
            break
        time.sleep(0.05)
    assert child_pid, "the job never printed its child's pid"
    # The pid the job printed is its own pid namespace's; find the child on the host.
    job.refresh_from_db()
    sleepers = [p for p in psutil.Process(job.pid).children(recursive=True) if p.cmdline() == ["sleep", "300"]]
    assert len(sleepers) == 1
    started = time.monotonic()
    job_cancel(job=job, actor=scientist)
    thread.join(10)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert elapsed < 5
    assert f"cancelled by {scientist.username}" in job.message
    assert not process_alive(sleepers[0].pid)


def test_every_line_of_a_chatty_job_is_stored(submit):
    job = execute(submit("import sys\nfor i in range(30000):\n    sys.stdout.write(f'line {i}\\n')\n"))
    assert job.status == JobStatus.SUCCEEDED
    assert JobLogLine.objects.filter(job=job).count() == 30000 == job.log_lines
    assert JobLogLine.objects.filter(job=job).order_by("-seq").first().text == "line 29999"
