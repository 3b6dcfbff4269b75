"""The status machine, the reconciler and sweeps, at the service level."""

from datetime import timedelta

from django.utils import timezone
import pytest

from experiments.models import Run, RunStatus
from jobs import services, tracking
from jobs.models import TERMINAL, TRANSITIONS, Job, JobEvent, JobStatus, Reason
from jobs.services.jobs import job_attempt_started
from mlplatform.errors import InvalidState
from mlplatform.models import ApiToken, AuditEvent
from tests.jobs.conftest import execute


def test_terminal_states_allow_no_transition():
    assert all(TRANSITIONS[state] == frozenset() for state in TERMINAL)
    assert JobStatus.RUNNING not in TRANSITIONS[JobStatus.QUEUED]


def test_an_illegal_transition_is_refused(submit):
    job = submit()
    with pytest.raises(InvalidState):
        services.job_transition(job=job, to=JobStatus.SUCCEEDED, reason=Reason.EXIT_CODE)


def test_compare_and_set_lets_only_one_worker_start_a_job(submit):
    job = submit()
    stale_copy = Job.objects.get(pk=job.pk)
    assert job_attempt_started(job=job, worker="a") is True
    assert job_attempt_started(job=stale_copy, worker="b") is False
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempt) == (JobStatus.STARTING, "a", 1)
    assert JobEvent.objects.filter(job=job, to_status=JobStatus.STARTING).count() == 1


def test_a_duplicate_message_does_not_run_a_finished_job_again(submit):
    job = execute(submit("print('once')"))
    assert execute(job).status == JobStatus.SUCCEEDED
    assert job.lines.count() == 1


def test_submit_and_cancel_are_audited(submit, scientist):
    job = submit()
    services.job_cancel(job=job, actor=scientist)
    actions = set(AuditEvent.objects.filter(object_id=str(job.pk)).values_list("action", flat=True))
    assert {"job.submit", "job.cancel"} <= actions
    event = JobEvent.objects.get(job=job, to_status=JobStatus.CANCELLED)
    assert event.actor == scientist and scientist.username in event.message


def test_the_reconciler_resends_lost_messages(submit, django_capture_on_commit_callbacks):
    job = submit()
    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as sent:
        counts = services.jobs_reconcile()
    assert counts["redispatched"] == 1 and len(sent) == 1


@pytest.mark.parametrize("retries, expected", [(0, JobStatus.FAILED), (1, JobStatus.QUEUED)])
def test_a_job_whose_worker_stopped_heart_beating_fails_or_is_retried(submit, retries, expected):
    job = submit(max_retries=retries)
    job_attempt_started(job=job, worker="gone@elsewhere")
    services.job_token_issue(job=job)
    attempt_run = tracking.run_start(job=job)
    Job.objects.filter(pk=job.pk).update(run_id=tracking.run_identifier(attempt_run))
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    services.jobs_reconcile(heartbeat_timeout=timedelta(seconds=30))
    job.refresh_from_db()
    assert job.status == expected
    last = JobEvent.objects.filter(job=job).last()
    assert "worker lost" in last.message
    # The lost attempt's token dies with it, retried or not.
    assert ApiToken.objects.get(pk=job.token_id).revoked_at is not None
    if expected == JobStatus.FAILED:
        assert job.reason == Reason.WORKER_LOST
    # Nor does its run stay "running" for ever (the retry gets a run of its own).
    assert Run.objects.get(pk=attempt_run.pk).status == RunStatus.FAILED


def test_a_sweep_keeps_to_its_concurrency_limit_and_ranks_children(submit, job_project, scientist, tracking_server):
    from jobs.selectors import sweep_children

    sweep = services.sweep_submit(
        project=job_project,
        user=scientist,
        name="s",
        space={"x": [1, 2, 3]},
        metric="score",
        max_concurrency=1,
        job={"script": "import sys, mlflow\nmlflow.log_metric('score', float(sys.argv[2]))"},
    )
    children = list(Job.objects.filter(sweep=sweep).order_by("pk"))
    assert [c.dispatched_at is not None for c in children] == [True, False, False]
    execute(children[0])
    assert Job.objects.filter(sweep=sweep, dispatched_at__isnull=False).count() == 2
    for child in children[1:]:
        execute(child)
    ranked = sweep_children(sweep=sweep)
    assert [row["params"]["x"] for row in ranked] == ["3", "2", "1"]
    assert [row["rank"] for row in ranked] == [1, 2, 3]


def test_a_random_sweep_draws_the_requested_number_of_trials(job_project, scientist, data_dir):
    sweep = services.sweep_submit(
        project=job_project,
        user=scientist,
        name="r",
        strategy="random",
        trials=5,
        seed=1,
        space={"lr": [0.1, 0.01, 0.001], "depth": [2, 4, 8]},
        metric="acc",
        job={"script": "print(1)"},
    )
    assert Job.objects.filter(sweep=sweep).count() == 5


def sweep_of(job_project, scientist, scripts: list[str]):
    return services.sweep_submit(
        project=job_project,
        user=scientist,
        name="s",
        space={"i": list(range(len(scripts)))},
        metric="score",
        max_concurrency=len(scripts),
        job={"script": f"import sys\nscripts = {scripts!r}\nexec(scripts[int(sys.argv[2])])"},
    )


def parent_status(sweep) -> str:
    from experiments.models import Run

    return Run.objects.get(pk=sweep.parent_run_id).status


@pytest.mark.parametrize(
    "scripts, expected",
    [(["print(1)", "print(2)"], "FINISHED"), (["print(1)", "raise SystemExit(1)"], "FAILED")],
)
def test_the_sweep_parent_run_ends_with_its_last_child(job_project, scientist, data_dir, scripts, expected):
    pytest.importorskip("experiments.services")
    sweep = sweep_of(job_project, scientist, scripts)
    first, second = Job.objects.filter(sweep=sweep).order_by("pk")
    execute(first)
    assert parent_status(sweep) == "RUNNING"
    execute(second)
    assert parent_status(sweep) == expected


def test_a_cancelled_sweep_child_kills_the_parent_run(job_project, scientist, data_dir):
    pytest.importorskip("experiments.services")
    sweep = sweep_of(job_project, scientist, ["print(1)", "print(2)"])
    first, second = Job.objects.filter(sweep=sweep).order_by("pk")
    execute(first)
    services.job_cancel(job=second, actor=scientist)
    assert parent_status(sweep) == "KILLED"


def test_an_attempt_retried_after_an_infrastructure_failure_ends_its_run(submit, monkeypatch):
    from jobs import runner
    from jobs.executors import docker as docker_executor
    from jobs.models import JobImage

    # Given a container engine that cannot be reached…
    JobImage.objects.get_or_create(name="localhost/mlp-python:bookworm-mlflow")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/engine.sock")
    monkeypatch.setattr(docker_executor, "_client", None)
    job = submit(executor="docker", max_retries=1)

    # …when an attempt fails on it and the job is queued for a retry…
    runner.job_execute(job_id=job.pk, worker="test-worker")
    job.refresh_from_db()
    assert (job.status, job.reason, job.attempt) == (JobStatus.QUEUED, Reason.RETRY, 1)

    # …then that attempt's run has ended; the retry will start a run of its own.
    assert Run.objects.get(pk=job.run_id).status == RunStatus.FAILED
