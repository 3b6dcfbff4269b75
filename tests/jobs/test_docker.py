"""The docker executor against a real Docker-API engine (Podman's service here)."""

import time

import pytest

from jobs.executors.docker import LABEL, client
from jobs.models import JobImage, JobLogLine, JobStatus, Reason
from jobs.services import job_cancel
from tests.jobs.conftest import assert_job_token_refused, execute
from tests.jobs.engine import IMAGE, require_engine

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def engine():
    require_engine()


@pytest.fixture
def docker_job(submit):
    # A transactional test earlier in the run may have flushed the migration's row.
    JobImage.objects.get_or_create(name=IMAGE)

    def make(script: str, **kwargs):
        return submit(script, executor="docker", **kwargs)

    return make


def lines_of(job):
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


def test_a_container_job_runs_hardened(docker_job):
    job = docker_job(
        """
        import os, sys
        print("uid", os.getuid(), "cwd", os.getcwd(), "args", sys.argv[1:])
        status = open("/proc/self/status").read()
        print("caps", [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0])
        print("nnp", [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0])
        open("/work/out.txt", "w").write("ok")
        """,
        params={"epochs": "2"},
    )
    job = execute(job)
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    assert lines_of(job)[:3] == ["uid 1000 cwd /work args ['--epochs', '2']", "caps 0000000000000000", "nnp 1"]
    assert client().containers.list(all=True, filters={"label": f"{LABEL}={job.pk}"}) == []


TRACK = """
import os, socket, urllib.error, urllib.request
import mlflow

try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network reachable")
except OSError:
    print("no network")
print("mlflow", mlflow.__version__)
mlflow.log_param("optimizer", "adam")
mlflow.log_metric("accuracy", 0.9)
mlflow.log_metric("progress", 1.0)
open("weights.bin", "wb").write(b"weights")
mlflow.log_artifact("weights.bin", "model")
try:  # the relay carries the tracking API only
    urllib.request.urlopen(os.environ["MLFLOW_TRACKING_URI"] + "/api/jobs/")
except urllib.error.HTTPError as exc:
    print("other paths", exc.code)
open("token", "w").write(os.environ["MLFLOW_TRACKING_TOKEN"])
"""


def test_a_container_job_without_network_logs_to_its_run_through_the_relay(docker_job, tracking_server, data_dir):
    from experiments.artifacts import get_store, run_root
    from experiments.models import Metric, Param, Run

    job = execute(docker_job(TRACK))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    assert lines_of(job)[:2] == ["no network", "mlflow 3.17.2"]
    assert "other paths 403" in lines_of(job)
    run = Run.objects.get(pk=job.run_id)
    assert run.status == "FINISHED"
    assert dict(Param.objects.filter(run=run).values_list("key", "value"))["optimizer"] == "adam"
    assert Metric.objects.filter(run=run, key="accuracy", value=0.9).exists()
    assert [f.path for f in get_store().list(run_root(run), "model")] == ["model/weights.bin"]
    assert job.metrics.filter(key="accuracy", value=0.9).exists() and job.progress == 1.0
    # The token the job held is revoked now that it ended.
    assert_job_token_refused(tracking_server, data_dir, job)


def test_the_forwarder_passes_the_exit_code_through(docker_job):
    job = execute(docker_job("import sys\nsys.exit(7)"))
    assert (job.status, job.exit_code) == (JobStatus.FAILED, 7)


def test_writing_to_root_reaching_the_network_and_a_fork_bomb_fail_harmlessly(docker_job):
    job = docker_job(
        """
        import os, socket
        try:
            open("/etc/evil", "w")
            print("root writable")
        except OSError as exc:
            print("root read-only", exc.errno)
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=2)
            print("network reachable")
        except OSError:
            print("no network")
        children = 0
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    import time; time.sleep(30); os._exit(0)
                children += 1
        except OSError:
            print("fork refused after", children)
        """,
        resources={"timeout": 60},
    )
    job = execute(job)
    out = lines_of(job)
    assert "root read-only 30" in out
    assert "no network" in out
    assert any(line.startswith("fork refused after") and int(line.split()[-1]) < 300 for line in out), out


def test_over_the_memory_limit_a_container_fails_with_oom(docker_job):
    job = execute(docker_job("x = bytearray(600 * 1024 ** 2)\nprint(len(x))", resources={"memory": "128m"}))
    assert (job.status, job.reason) == (JobStatus.FAILED, Reason.OOM), lines_of(job)


def test_over_its_timeout_a_container_times_out(docker_job):
    job = execute(docker_job("import time\nprint('go', flush=True)\ntime.sleep(120)", resources={"timeout": 2}))
    assert (job.status, job.reason) == (JobStatus.TIMED_OUT, Reason.TIMEOUT)
    assert client().containers.list(all=True, filters={"label": f"{LABEL}={job.pk}"}) == []


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_and_removes_the_container_within_five_seconds(docker_job, scientist):
    import threading

    job = docker_job("import time\nprint('up', flush=True)\ntime.sleep(300)")
    thread = threading.Thread(target=execute, args=(job,))
    thread.start()
    for _ in range(300):
        if lines_of(job):
            break
        time.sleep(0.1)
    assert lines_of(job) == ["up"]
    started = time.monotonic()
    job_cancel(job=job, actor=scientist)
    thread.join(15)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and elapsed < 5
    assert client().containers.list(all=True, filters={"label": f"{LABEL}={job.pk}"}) == []
