"""A local job cannot reach the platform (issue 13, defect 1): from inside a real job,
the platform's SQLite database (by a relative path from the work dir and by its absolute
path), its secret key file, the worker's /proc/<pid>/environ, the artifact store, the
archive, another job's work dir and the platform's port directly are all out of reach,
while the job still logs to its run. The same probe run unconfined (an admin's job with
the sandbox off) reaches every one of them: the probes are not blind."""

import hashlib
import json
import os
from pathlib import Path
import sqlite3

from django.db import connection
import pytest
from rest_framework.test import APIClient

from jobs import services
from jobs.executors import sandbox
from jobs.models import Job, JobLogLine, JobStatus, Reason
from mlplatform.errors import PermissionDenied
from tests.factories import UserFactory
from tests.jobs.conftest import execute

PROBE = r"""
import glob, hashlib, json, os, socket, sqlite3

def attempt(kind, target):
    try:
        if kind == "sql":
            db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
            db.execute("select count(*) from django_session").fetchone()
        elif kind == "list":
            if not os.listdir(target):
                return "empty"
        elif kind == "tcp":
            host, port = target.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=3).close()
        else:
            open(target, "rb").read()
        return "reached"
    except Exception:
        return "blocked"

for name, kind, target in json.loads(open("probes.json").read()):
    print(f"{name}: {attempt(kind, target)}")

own = {f"{k}={v}".encode() for k, v in os.environ.items()}
foreign = set()
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        entries = open(path, "rb").read().split(b"\0")
    except OSError:
        continue
    foreign |= {hashlib.sha256(e).hexdigest() for e in entries if e and e not in own}
for entry in sorted(foreign):
    print("foreign environ entry:", entry)
print("own environ names:", json.dumps(sorted(os.environ)))
print("uid:", os.getuid())
"""


# What runner.job_env gives a job (and PWD, which bwrap sets to the work dir); nothing
# of the worker's environment.
JOB_ENV_NAMES = {
    "PWD",
    "PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "MLP_JOB_ID", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
    "PYTHONPATH", "MLP_PROJECT",  # the job helpers (a copy in its work dir), its project
}  # fmt: skip


def lines_of(job):
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


def results_of(job) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in lines_of(job) if ": " in line)


def foreign_environ(job) -> set[str]:
    """Hashes of the environment entries the job read from other processes' /proc."""
    prefix = "foreign environ entry: "
    return {line.removeprefix(prefix) for line in lines_of(job) if line.startswith(prefix)}


def worker_environ_hashes() -> set[str]:
    """The worker's environment as /proc shows it to other processes."""
    entries = Path(f"/proc/{os.getpid()}/environ").read_bytes().split(b"\0")
    return {hashlib.sha256(entry).hexdigest() for entry in entries if entry}


@pytest.fixture
def platform_files(data_dir, settings, submit, tracking_server):
    """The platform's files laid out as `make run` has them under MLP_DATA_DIR, with
    content, and the probes a job makes for each. Another job has run first."""
    settings.DATA_ARCHIVE_DIR = data_dir / "archive"
    db = sqlite3.connect(data_dir / "db.sqlite3")
    db.execute("create table django_session (session_key text, session_data text)")
    db.execute("insert into django_session values ('admin-session', 'x')")
    db.commit()
    db.close()
    (data_dir / "secret_key").write_text("platform-secret-key")
    artifacts = data_dir / "artifacts" / "1" / "run" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "model.pkl").write_bytes(b"weights")
    (settings.DATA_ARCHIVE_DIR / "stream").mkdir(parents=True)
    (settings.DATA_ARCHIVE_DIR / "stream" / "segment-1.jsonl").write_text('{"x": 1}\n')
    other = execute(submit("open('notes.txt', 'w').write('another job')"))
    assert other.status == JobStatus.SUCCEEDED, lines_of(other)
    probes = [
        ["db relative", "sql", "../../../db.sqlite3"],
        ["db absolute", "sql", str(data_dir / "db.sqlite3")],
        ["secret key relative", "file", "../../../secret_key"],
        ["secret key absolute", "file", str(data_dir / "secret_key")],
        ["worker environ", "file", f"/proc/{os.getpid()}/environ"],
        ["artifact store", "list", str(data_dir / "artifacts")],
        ["artifact file", "file", str(artifacts / "model.pkl")],
        ["archive", "list", str(settings.DATA_ARCHIVE_DIR)],
        ["archive file", "file", str(settings.DATA_ARCHIVE_DIR / "stream" / "segment-1.jsonl")],
        ["other job relative", "file", f"../../{other.pk}/work/notes.txt"],
        ["other job absolute", "file", str(data_dir / "jobs" / str(other.pk) / "work" / "notes.txt")],
        ["platform port", "tcp", tracking_server.removeprefix("http://")],
        ["platform code", "file", str(Path(settings.BASE_DIR) / "mlplatform" / "settings.py")],
    ]
    if connection.vendor == "sqlite" and Path(str(connection.settings_dict["NAME"])).is_file():
        probes.append(["test database", "sql", str(connection.settings_dict["NAME"])])
    return probes


def probe_job(submit, probes, python="python", **kwargs):
    """A job whose code bundle holds the probe and its list (a bundle, so that the
    probes sit in the work dir rather than in the job's environment)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("probe.py", PROBE)
        archive.writestr("probes.json", json.dumps(probes))
    return submit("", bundle=buffer.getvalue(), bundle_name="probe.zip", command=[python, "probe.py"], **kwargs)


def test_a_local_job_reaches_none_of_the_platform(submit, platform_files):
    job = execute(probe_job(submit, platform_files))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    results = results_of(job)
    assert {name: results[name] for name, _, _ in platform_files} == {name: "blocked" for name, _, _ in platform_files}
    assert foreign_environ(job) == set()
    own = set(json.loads(results["own environ names"]))
    assert own <= JOB_ENV_NAMES
    if os.geteuid() == 0:  # as root, the job runs as the sandbox's own unprivileged uid
        assert results["uid"] == str(sandbox.job_uid()) != "0"


def test_the_same_probe_unconfined_reaches_all_of_it_and_is_warned(submit, platform_files, settings, scientist):
    """The control: an admin's job where no sandbox can be made runs unconfined, says so
    first thing in its log, and the probe above then reaches every file."""
    settings.MLP_JOB_SANDBOX = "off"
    scientist.is_platform_admin = True
    scientist.save(update_fields=["is_platform_admin"])
    job = execute(probe_job(submit, platform_files))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    assert lines_of(job)[0].startswith("warning: no sandbox can be made on this worker (the sandbox is turned off")
    results = results_of(job)
    assert {name: results[name] for name, _, _ in platform_files} == {name: "reached" for name, _, _ in platform_files}
    assert foreign_environ(job) & worker_environ_hashes()


TRAIN = """
import os, mlflow
from sklearn.linear_model import LogisticRegression
mlflow.log_param("optimizer", "lbfgs")
for step in range(3):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
open("notes.txt", "w").write("trained")
mlflow.log_artifact("notes.txt", "reports")
model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
mlflow.sklearn.log_model(model, name="model")
print("uid", os.getuid(), "tracking", os.environ["MLFLOW_TRACKING_URI"])
"""


def test_a_confined_job_still_logs_params_metrics_artifacts_and_a_model(submit, tracking_server):
    from experiments.artifacts import get_store, model_root, run_root
    from experiments.models import LoggedModel, Metric, Param, Run

    job = execute(submit(TRAIN, resources={"memory": "2g"}))
    assert job.status == JobStatus.SUCCEEDED, "\n".join(lines_of(job))
    # No network in the sandbox: the client reached the platform through the relay.
    uid = sandbox.job_uid() if os.geteuid() == 0 else os.getuid()
    assert lines_of(job)[-1] == f"uid {uid} tracking http://127.0.0.1:5987"
    assert Param.objects.get(run_id=job.run_id, key="optimizer").value == "lbfgs"
    losses = Metric.objects.filter(run_id=job.run_id, key="loss").order_by("step")
    assert list(losses.values_list("value", flat=True)) == [1.0, 0.5, 1 / 3]
    run = Run.objects.get(pk=job.run_id)
    assert [f.path for f in get_store().list(run_root(run), "reports")] == ["reports/notes.txt"]
    model = LoggedModel.objects.get(source_run=run)
    assert "MLmodel" in [f.path for f in get_store().list(model_root(model), "")]


@pytest.fixture
def no_sandbox(settings):
    settings.MLP_JOB_SANDBOX = "off"


def test_without_a_sandbox_a_non_admin_local_job_is_refused_at_submit(submit, no_sandbox):
    with pytest.raises(PermissionDenied, match="no sandbox can be made on this platform.*install bubblewrap"):
        submit("print('unconfined')")
    assert Job.objects.count() == 0


def test_without_bwrap_and_without_root_the_api_answers_403_and_stores_nothing(
    job_project, scientist, data_dir, monkeypatch
):
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap on the PATH
    monkeypatch.setattr(sandbox, "is_root", lambda: False)
    assert sandbox.available() == (False, "bubblewrap (bwrap) is not installed")
    client = APIClient()
    client.force_authenticate(scientist)
    response = client.post("/api/v1/jobs/", {"project": job_project.slug, "script": "print(1)"}, format="json")
    assert response.status_code == 403, response.content
    assert "bubblewrap (bwrap) is not installed" in response.json()["error"]["message"]
    assert Job.objects.count() == 0
    # An admin may still submit one (it will run unconfined, warned).
    admin = UserFactory(is_platform_admin=True)
    assert sandbox.refusal(admin) == ""


def test_a_job_that_reaches_a_worker_without_a_sandbox_fails_there_without_running(submit, settings):
    job = submit("open('ran.txt', 'w').write('unconfined')\nprint('ran')")
    settings.MLP_JOB_SANDBOX = "off"  # the worker cannot confine it, though the web could
    job = execute(job)
    assert (job.status, job.reason) == (JobStatus.FAILED, Reason.INFRASTRUCTURE)
    assert "no sandbox can be made" in job.message and job.pid is None
    assert lines_of(job) == []
    assert not (Path(settings.DATA_DIR) / "jobs" / str(job.pk) / "work" / "ran.txt").exists()


def test_sandbox_off_still_lets_an_admin_submit(job_project, data_dir, no_sandbox):
    admin = UserFactory(is_platform_admin=True)
    job = services.job_submit(project=job_project, user=admin, script="print(1)", dispatch=False)
    assert job.status == JobStatus.QUEUED


@pytest.mark.slow
def test_a_container_job_reaches_none_of_the_platform_either(submit, platform_files):
    """The docker executor mounts only the job's work dir and the tracking relay."""
    from jobs.models import JobImage
    from tests.jobs.engine import IMAGE, require_engine

    require_engine()
    JobImage.objects.get_or_create(name=IMAGE)
    job = execute(probe_job(submit, platform_files, "python3", executor="docker"))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    results = results_of(job)
    assert {name: results[name] for name, _, _ in platform_files} == {name: "blocked" for name, _, _ in platform_files}
    assert foreign_environ(job) == set()
    # The engine adds its own few (HOSTNAME, container, ...): none of the worker's.
    own = set(json.loads(results["own environ names"])) - JOB_ENV_NAMES
    assert own <= {"HOSTNAME", "container", "TERM", "HOME"}, own
    assert results["uid"] == "1000"
