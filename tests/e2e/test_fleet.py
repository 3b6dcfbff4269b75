"""A fleet, not one process: production's separate web, worker, beat and serving
processes, as real subprocesses on a private Redis (and the test database), some of
them killed with SIGKILL mid-way."""

from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import time

from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
import pytest
import requests

from tests.conftest import free_port
from tests.deployments.conftest import COLUMNS
from tests.fleet import Fleet, Load, database_url, process_env, queued_tasks
from tests.jobs.test_reliability import PrivateRedis, wait_for

# The database mark makes pytest-django create the test database, which the fleet's
# processes share; the tests themselves only judge what the fleet fixture gathered.
# The fleet fixture's setup counts against the first test's timeout; on a loaded
# machine it may take a few minutes (its waits are each bounded).
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(600)]
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


# -- the whole fleet under load, one of each kind killed ------------------------------
# A short job that says, through its run, that its code started and that it finished
# (plain HTTP to the tracking API: importing the MLflow client costs each job seconds).
JOB_SCRIPT = """
import json, os, time, urllib.request

def log(key):
    body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": key, "value": 1, "step": 0,
            "timestamp": int(time.time() * 1000)}
    request = urllib.request.Request(
        os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"],
                 "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).read()

log("fleet.started")
time.sleep(5)
log("fleet.finished")
print("done")
"""
ROW = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}
JOBS_BEFORE, JOBS_AFTER = 4, 2
# Each load generator's acknowledgements before the kill, and the survivors' after it.
ACKS = 10
# Reconciler windows, lowered so that a dead worker's jobs are recovered in seconds.
RECONCILE_ENV = {
    "MLP_JOB_RECONCILE_INTERVAL": "1",
    "MLP_JOB_HEARTBEAT_TIMEOUT": "12",
    "MLP_JOB_REDISPATCH_AFTER": "8",
    "MLP_BEAT_LEASE_SECONDS": "3",
}
MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def needs_postgresql_and_redis() -> None:
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") or not os.environ.get("REDIS_URL"):
        pytest.skip(
            "needs PostgreSQL and Redis (processes on several hosts share them): install them "
            "(apt-get install postgresql redis-server) and set DATABASE_URL=postgres://user@host:5432/db "
            "and REDIS_URL=redis://host:6379/N, as .ci/run does"
        )
    needs_redis_server()


class HttpError(Exception):
    """An answer that is not a success: never allowed, on any process."""


@dataclass
class JobOutcome:
    status: str
    reason: str
    attempt: int
    runs: int
    started: int  # times its code started (a point in one of its runs)
    finished: int  # times its code ran to the end
    reasons: list[str]
    open_runs: int  # runs still RUNNING once the job ended


@dataclass
class FleetRun:
    """What happened, gathered before the fleet was stopped and the database emptied."""

    killed_at: float = 0.0
    tracking: dict[str, Load] = field(default_factory=dict)
    serving: dict[str, Load] = field(default_factory=dict)
    submitted: list[int] = field(default_factory=list)
    on_killed_worker: set[int] = field(default_factory=set)
    jobs: dict[int, JobOutcome] = field(default_factory=dict)
    jobs_settled: bool = False
    stored_steps: dict[str, set[int]] = field(default_factory=dict)
    logged: dict[str, int] = field(default_factory=dict)  # request id -> rows in the log
    log_settled: bool = False
    dropped: int = 0
    beat_restarted_leads: bool = False
    logs: str = ""


def settle(predicate, timeout: float) -> bool:
    """wait_for that answers instead of raising: the tests judge the outcome."""
    try:
        return wait_for(predicate, timeout, step=0.25)
    except AssertionError:
        return False


def up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def seed(data_dir: Path) -> dict:
    """An admin who owns a project, a token, and an endpoint serving a registered model."""
    from deployments import services as deployments
    from mlplatform.services import api_token_create
    from tests.deployments.conftest import _save, register_version
    from tests.factories import UserFactory, make_project

    owner = UserFactory(username="fleet-owner", is_platform_admin=True)
    project = make_project(owner=owner, slug="fleet", name="Fleet")
    _, token = api_token_create(user=owner, name="fleet")
    version = register_version(project=project, user=owner, model_dir=_save(data_dir.parent / "model"), name="iris")
    endpoint, endpoint_token = deployments.endpoint_create(project=project, actor=owner, name="Fleet iris")
    deployments.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="fleet/iris", version=version.version, gate_override_reason="test"
    )
    return {"token": token, "endpoint": endpoint, "endpoint_token": endpoint_token}


def submit_job(web: str, token: str, n: int) -> int:
    body = {"project": "fleet", "name": f"fleet-{n}", "script": JOB_SCRIPT, "command": ["python", "main.py"]}
    body["resources"] = {"timeout": 120}
    response = requests.post(f"{web}/api/v1/jobs/", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def tracking_load(name: str, web: str) -> Load:
    """Metric batches to one run through the stock MLflow client; the key is the step."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=web)
    experiment = client.get_experiment_by_name("fleet/tracking") or client.get_experiment(
        client.create_experiment("fleet/tracking")
    )
    run_id = client.create_run(experiment.experiment_id, run_name=name).info.run_id

    def send(step: int) -> str:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric("loss", 1 / (step + 1), now, step), Metric("acc", step, now, step)])
        return str(step)

    return Load(name, run_id, send)


def scoring_load(name: str, url: str, token: str) -> Load:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}

    def send(i: int) -> str:
        request_id = f"{name}-{i}"
        response = session.post(url, json=ROW, headers={**headers, "x-request-id": request_id}, timeout=30)
        if response.status_code != 200 or response.headers.get("x-request-id") != request_id:
            raise HttpError(f"{response.status_code} {response.text[:200]}")
        return request_id

    return Load(name, url, send)


def job_outcomes(ids: list[int]) -> dict[int, JobOutcome]:
    from experiments.models import Metric, Run, RunStatus, RunTag
    from jobs.models import Job

    outcomes = {}
    for job in Job.objects.filter(pk__in=ids).prefetch_related("events"):
        runs = list(RunTag.objects.filter(key="mlp.job_id", value=str(job.pk)).values_list("run_id", flat=True))
        points = Metric.objects.filter(run_id__in=runs)
        outcomes[job.pk] = JobOutcome(
            status=job.status,
            reason=job.reason,
            attempt=job.attempt,
            runs=len(runs),
            started=points.filter(key="fleet.started").count(),
            finished=points.filter(key="fleet.finished").count(),
            reasons=[e.reason for e in job.events.all()],
            open_runs=Run.objects.filter(pk__in=runs, status=RunStatus.RUNNING).count(),
        )
    return outcomes


class Scenario:
    """The fleet's life: start it, drive traffic of each kind, kill one process of each
    kind mid-way, keep driving the survivors, then gather what the database holds."""

    def __init__(self, tmp: Path, fleet: Fleet, ports: dict[str, int]) -> None:
        self.tmp, self.fleet, self.ports = tmp, fleet, ports
        self.seeded: dict = {}
        self.result = FleetRun()
        self.webs = {name: f"http://127.0.0.1:{ports[name]}" for name in ("web-1", "web-2")}
        self.killed: set[str] = set()

    def wait(self, predicate, timeout: float, what: str) -> None:
        def ready() -> bool:
            dead = [name for name in self.fleet.procs if not self.fleet.alive(name) and name not in self.killed]
            assert not dead, f"{dead} exited while waiting for {what}:\n{self.fleet.logs()}"
            return predicate()

        assert settle(ready, timeout), f"timed out waiting for {what}:\n{self.fleet.logs()}"

    def start(self) -> None:
        """Every process, then the data they need while they boot (a serving process
        picks up the deployed endpoint from the database)."""
        fleet, ports = self.fleet, self.ports
        for name in ("web-1", "web-2"):
            fleet.web(name, ports[name])
        for name in ("worker-1", "worker-2"):
            fleet.worker(name)
        fleet.beat("beat")
        for name in ("serve-1", "serve-2"):
            fleet.serve(name, ports[name], self.tmp / "spool")
        self.seeded = seed(self.tmp / "data")
        os.environ.update(MLFLOW_TRACKING_TOKEN=self.seeded["token"], **MLFLOW_ENV)
        self.wait(lambda: all(up(f"{url}/healthz") for url in self.webs.values()), 90, "the webs")
        ping = "http://127.0.0.1:{}/serve/" + self.seeded["endpoint"].slug + "/ping"
        self.wait(lambda: all(up(ping.format(ports[n])) for n in ("serve-1", "serve-2")), 90, "the model")

    def run(self) -> FleetRun:
        from jobs.models import Job, JobStatus

        result, token = self.result, self.seeded["token"]
        webs = list(self.webs.values())
        result.submitted = [submit_job(webs[n % 2], token, n) for n in range(JOBS_BEFORE)]
        slug = self.seeded["endpoint"].slug
        result.tracking = {name: tracking_load(name, url) for name, url in self.webs.items()}
        for name in ("serve-1", "serve-2"):
            url = f"http://127.0.0.1:{self.ports[name]}/serve/{slug}/invocations"
            for k in (1, 2):
                result.serving[f"{name}-{k}"] = scoring_load(f"{name}-{k}", url, self.seeded["endpoint_token"])
        loads = [*result.tracking.values(), *result.serving.values()]
        for load in loads:
            load.start()

        # Mid-way: every client has been answered, and the first worker is running a job.
        on_worker_1 = Job.objects.filter(status=JobStatus.RUNNING, worker__startswith="worker-1@")
        self.wait(lambda: all(len(x.acked) >= ACKS for x in loads) and on_worker_1.exists(), 90, "mid-way")
        result.on_killed_worker = set(
            Job.objects.filter(
                status__in=[JobStatus.STARTING, JobStatus.RUNNING], worker__startswith="worker-1@"
            ).values_list("pk", flat=True)
        )
        result.killed_at = time.monotonic()
        for name in ("web-1", "worker-1", "serve-1", "beat"):
            self.fleet.kill(name, group=True)
            self.killed.add(name)
        # The process supervisor (compose: restart unless-stopped) starts a new beat.
        self.fleet.beat("beat-restarted")

        result.submitted += [submit_job(self.webs["web-2"], token, JOBS_BEFORE + n) for n in range(JOBS_AFTER)]
        survivors = [result.tracking["web-2"], result.serving["serve-2-1"], result.serving["serve-2-2"]]
        counts = {x.name: len(x.acked) for x in survivors}
        self.wait(lambda: all(len(x.acked) >= counts[x.name] + ACKS for x in survivors), 60, "traffic after the kill")
        for load in loads:
            load.halt.set()
        for load in loads:
            load.join(60)
        self.gather()
        return result

    def gather(self) -> None:
        from mlflow.tracking import MlflowClient

        from deployments.models import DroppedRecords, PredictionLog
        from jobs.models import TERMINAL, Job

        result = self.result
        result.jobs_settled = settle(
            lambda: set(Job.objects.filter(pk__in=result.submitted).values_list("status", flat=True)) <= TERMINAL, 90
        )
        result.jobs = job_outcomes(result.submitted)

        acked = {rid for load in result.serving.values() for rid in load.acked}
        endpoint_log = PredictionLog.objects.filter(endpoint_id=self.seeded["endpoint"].pk)
        result.log_settled = settle(lambda: endpoint_log.filter(request_id__in=acked).count() >= len(acked), 30)
        for rid in endpoint_log.values_list("request_id", flat=True):
            result.logged[rid] = result.logged.get(rid, 0) + 1
        result.dropped = sum(DroppedRecords.objects.values_list("count", flat=True))

        # Read back through the surviving web, as a user would.
        client = MlflowClient(tracking_uri=self.webs["web-2"])
        for load in result.tracking.values():
            loss = {m.step for m in client.get_metric_history(load.target, "loss")}
            acc = {m.step for m in client.get_metric_history(load.target, "acc")}
            result.stored_steps[load.name] = loss & acc
        # A loaded machine may still be importing the new beat.
        log = self.fleet.log_dir / "beat-restarted.log"
        result.beat_restarted_leads = settle(lambda: "now sends the schedule" in log.read_text(), 60)
        result.logs = self.fleet.logs()


@pytest.fixture(scope="module")
def fleet_run(django_db_setup, django_db_blocker, tmp_path_factory):
    """One fleet for every assertion below: 2 web, 2 workers, 1 beat, 2 serve; traffic of
    each kind; then one of each kind SIGKILLed mid-way."""
    needs_postgresql_and_redis()
    tmp = tmp_path_factory.mktemp("fleet")
    data_dir = tmp / "data"
    data_dir.mkdir()
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_TOKEN", *MLFLOW_ENV)}
    redis = PrivateRedis(tmp)
    fleet = None
    with django_db_blocker.unblock(), override_settings(DATA_DIR=data_dir):
        try:
            # A private Redis: the killed workers' unacknowledged messages and the fleet's
            # queues never mix with what other tests left on the shared one.
            redis.start()
            ports = {name: free_port() for name in ("web-1", "web-2", "serve-1", "serve-2")}
            env = process_env(
                redis_url=redis.url,
                data_dir=data_dir,
                database_url=database_url(settings.DATABASES["default"]),
                MLP_PUBLIC_URL=f"http://127.0.0.1:{ports['web-2']}",  # a load balancer's address
                **RECONCILE_ENV,
            )
            fleet = Fleet(tmp / "logs", env)
            scenario = Scenario(tmp, fleet, ports)
            scenario.start()
            result = scenario.run()
            yield result
        finally:
            if fleet is not None:
                fleet.close()
            redis.stop()
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            call_command("flush", interactive=False, verbosity=0)


def test_no_acknowledged_tracking_write_is_lost(fleet_run):
    for name, load in fleet_run.tracking.items():
        acked = {int(step) for step in load.acked}
        assert acked, f"{name} acknowledged nothing"
        missing = acked - fleet_run.stored_steps[name]
        assert not missing, f"{name}: acknowledged metric steps not stored: {sorted(missing)[:20]}"


def test_every_job_ends_and_none_runs_twice(fleet_run):
    assert fleet_run.jobs_settled, {pk: (j.status, j.reasons) for pk, j in fleet_run.jobs.items()}
    assert set(fleet_run.jobs) == set(fleet_run.submitted)
    assert fleet_run.on_killed_worker, "no job was running on the killed worker"
    for pk, job in fleet_run.jobs.items():
        # At most one run per attempt; the code finished once in all (a killed attempt
        # died with its worker and was retried, never left running beside its retry).
        assert job.status == "succeeded", (pk, job, fleet_run.logs)
        assert job.runs <= job.attempt, (pk, job)
        assert job.finished == 1, (pk, job)
        assert job.started <= job.attempt, (pk, job)
        assert job.open_runs == 0, f"job {pk} ended but left a run running: {job}"
        if pk in fleet_run.on_killed_worker:
            assert job.attempt == 2 and "retry" in job.reasons, (pk, job)
        else:
            assert job.attempt == 1, (pk, job)


def test_every_acknowledged_prediction_is_logged_once(fleet_run):
    acked = [rid for load in fleet_run.serving.values() for rid in load.acked]
    assert fleet_run.log_settled, f"{sum(1 for r in acked if r not in fleet_run.logged)} of {len(acked)} missing"
    missing = [rid for rid in acked if rid not in fleet_run.logged]
    assert not missing, f"{len(missing)} acknowledged predictions not in the log ({fleet_run.dropped} dropped)"
    twice = [rid for rid in acked if fleet_run.logged[rid] > 1]
    assert not twice, f"logged more than once: {twice[:5]}"


def test_errors_only_on_the_killed_processes_in_flight_requests(fleet_run):
    loads = {**fleet_run.tracking, **fleet_run.serving}
    for name, load in loads.items():
        victim = name.startswith(("web-1", "serve-1"))
        if not victim:
            assert not load.errors, f"{name} (a survivor) failed: {load.errors}"
            continue
        for call in load.errors:
            # A connection refused or cut, never an error answer, and never before the kill.
            assert call.connection_error, f"{name}: {call.error}"
            assert call.ended >= fleet_run.killed_at, f"{name} failed before the kill: {call.error}"
        # At most one failed call per client: the one in flight (or refused) at the kill.
        assert len(load.errors) <= 1


def test_a_restarted_beat_takes_over_the_periodic_work(fleet_run):
    assert fleet_run.beat_restarted_leads, fleet_run.logs
