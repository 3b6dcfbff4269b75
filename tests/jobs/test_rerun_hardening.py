"""Issue 13, defects 2 and 3: a rerun carries nobody's secret into code somebody else
wrote, masking also catches a secret's encoded forms, and a rerun's `changes` are a
submission's fields only (anything else is a 400 that creates nothing)."""

import base64
import io
from pathlib import Path
from urllib.parse import quote
import zipfile

import pytest
from rest_framework.test import APIClient

from jobs import secrets, services
from jobs.models import Job, JobLogLine
from jobs.services.logs import mask, secrets_of
from mlplatform.models import AuditEvent
from mlplatform.roles import Role
from projects import services as project_services
from tests.factories import UserFactory
from tests.jobs.conftest import execute

SECRET = "alice-s3cr3t-token-value"
PRINT_ENCODED = """
import base64, os, urllib.parse
value = os.environ.get("API_KEY", "<none>")
print("b64", base64.b64encode(value.encode()).decode())
print("b64-inside", base64.b64encode(b"pre" + b"fix:" + value.encode() + b"!").decode())
print("hex", value.encode().hex())
print("url", urllib.parse.quote("k=" + value + "&x=1", safe=""))
print("plain", value)
"""


@pytest.fixture
def bob(job_project, scientist):
    """A second data scientist of the same project."""
    user = UserFactory()
    project_services.membership_add(
        project=job_project, username=user.username, role=Role.DATA_SCIENTIST, actor=scientist
    )
    return user


@pytest.fixture
def alices_job(submit):
    return submit("print('alice trains')", secret_env={"API_KEY": SECRET}, params={"lr": "1"})


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def kept(job) -> dict[str, str]:
    return secrets.decrypt_values(job.secret_env)


# Defect 2: secrets through a rerun


def test_a_rerun_with_other_code_by_someone_else_keeps_no_secret_of_the_submitter(alices_job, bob):
    again = services.job_rerun(job=alices_job, user=bob, changes={"script": PRINT_ENCODED})
    assert kept(again) == {}
    event = AuditEvent.objects.get(action="job.rerun", object_id=str(again.pk))
    assert event.after["secret_env_kept"] == [] and event.after["secret_env_not_kept"] == ["API_KEY"]


def test_the_leak_of_the_issue_no_longer_happens_when_the_job_runs(alices_job, bob):
    again = execute(services.job_rerun(job=alices_job, user=bob, changes={"script": PRINT_ENCODED}))
    output = "\n".join(JobLogLine.objects.filter(job=again).values_list("text", flat=True))
    assert again.status == "succeeded", output
    assert "plain <none>" in output
    assert base64.b64encode(SECRET.encode()).decode() not in output


@pytest.mark.parametrize(
    "changes",
    [
        {"command": ["python", "-c", "import os; print(os.environ['API_KEY'])"]},
        {"env": {"PYTHONWARNINGS": "default"}},
        {"bundle": b"PK\x05\x06" + b"\0" * 18, "bundle_name": "other.zip"},
    ],
    ids=["command", "env", "bundle"],
)
def test_other_command_env_or_bundle_is_other_code_too(alices_job, bob, changes):
    assert kept(services.job_rerun(job=alices_job, user=bob, changes=changes)) == {}


def test_the_same_code_with_other_params_or_resources_keeps_the_secrets(alices_job, bob):
    again = services.job_rerun(job=alices_job, user=bob, changes={"params": {"lr": "2"}, "resources": {"cpus": 2}})
    assert kept(again) == {"API_KEY": SECRET}
    # ...and what was carried still belongs to alice: bob changing the code next drops it.
    assert kept(services.job_rerun(job=again, user=bob, changes={"script": PRINT_ENCODED})) == {}


def test_a_rerunner_who_types_the_value_in_again_keeps_it(alices_job, bob):
    again = services.job_rerun(
        job=alices_job, user=bob, changes={"script": PRINT_ENCODED, "secret_env": {"API_KEY": "bobs-own"}}
    )
    assert kept(again) == {"API_KEY": "bobs-own"}
    # Entered by bob, so bob owns it on the next rerun of changed code.
    assert kept(services.job_rerun(job=again, user=bob, changes={"script": "print(2)"})) == {"API_KEY": "bobs-own"}


def test_the_owner_of_a_secret_keeps_it_with_changed_code(alices_job, scientist):
    again = services.job_rerun(job=alices_job, user=scientist, changes={"script": "print('new code')"})
    assert kept(again) == {"API_KEY": SECRET}


def test_the_api_rerun_follows_the_same_rule(alices_job, bob):
    response = api_as(bob).post(
        f"/api/v1/jobs/{alices_job.pk}/rerun/", {"changes": {"script": PRINT_ENCODED}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["secret_env"] == []


def _rerun_form(job, **fields) -> dict:
    form = {
        "project": job.project.slug,
        "name": job.name,
        "executor": job.executor,
        "script": job.script,
        "command": "",
        "params": "lr=1",
        "env": "",
        "secret_env": "",
        "cpus": 1,
        "memory": "1g",
        "timeout": 600,
        "gpus": 0,
        "experiment_name": "Default",
    }
    return {**form, **fields}


def test_the_rerun_form_drops_them_for_new_code_and_keeps_them_for_the_same(client, alices_job, bob):
    client.force_login(bob)
    url = f"/jobs/new/?rerun={alices_job.pk}"
    same = client.post(url, _rerun_form(alices_job, timeout=60))
    assert same.status_code == 302, same.content
    assert kept(Job.objects.get(rerun_of=alices_job, timeout_seconds=60)) == {"API_KEY": SECRET}
    changed = client.post(url, _rerun_form(alices_job, script=PRINT_ENCODED), follow=True)
    assert "Secrets not kept" in changed.content.decode()
    assert kept(Job.objects.filter(rerun_of=alices_job).latest("pk")) == {}


def test_the_rerun_form_cannot_move_a_job_and_its_secrets_to_another_project(client, alices_job, bob):
    elsewhere = project_services.project_create(owner=bob, name="Bob's own", slug="bobs-own")
    client.force_login(bob)
    response = client.post(f"/jobs/new/?rerun={alices_job.pk}", _rerun_form(alices_job, project=elsewhere.slug))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Job.objects.filter(project=elsewhere).exists()


def test_a_bundle_is_kept_by_a_rerun_without_new_code(submit, scientist):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", "print('from the bundle')")
    job = submit(script="", bundle=buffer.getvalue(), bundle_name="code.zip", secret_env={"A": SECRET})
    again = services.job_rerun(job=job, user=scientist, changes={"script": "", "params": {"x": 1}})
    assert again.bundle_name == "code.zip" and again.bundle != job.bundle
    assert Path(again.bundle).read_bytes() == buffer.getvalue() and kept(again) == {"A": SECRET}


# Defect 2: masking covers encoded forms


def test_masking_covers_base64_hex_and_url_encoded_forms(submit):
    job = execute(submit(PRINT_ENCODED, secret_env={"API_KEY": SECRET}))
    lines = list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))
    assert job.status == "succeeded", lines
    assert len(lines) == 5 and all("****" in line for line in lines), lines
    joined = "\n".join(lines)
    for form in (
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        SECRET.encode().hex(),
        quote(SECRET, safe=""),
    ):
        assert form not in joined


def test_masking_finds_a_secret_inside_longer_base64_at_every_alignment(submit):
    job = submit(secret_env={"API_KEY": SECRET})
    forms = secrets_of(job)
    for prefix in (b"", b"a", b"ab", b"abc"):
        for suffix in (b"", b"!", b"!?"):
            encoded = base64.urlsafe_b64encode(prefix + SECRET.encode() + suffix).decode()
            assert "****" in mask(encoded, forms), (prefix, suffix)
    assert mask("ordinary output: loss 0.25 abc", forms) == "ordinary output: loss 0.25 abc"


# Defect 3: `changes` are a submission's fields only


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"project": "other"}, "project"),
        ({"user": 1}, "user"),
        ({"created_by": 1}, "created_by"),
        ({"rerun_of": 1}, "rerun_of"),
        ({"sweep": 1}, "sweep"),
        ({"dispatch": False}, "dispatch"),
        ({"secret_owners": {"API_KEY": 2}}, "secret_owners"),
        ({"bundle": "UEsFBg=="}, "bundle"),
        ({"params": {"lr": 2}, "status": "succeeded"}, "status"),
    ],
)
def test_rerun_changes_outside_a_submissions_fields_are_refused(alices_job, scientist, changes, named):
    before = Job.objects.count()
    response = api_as(scientist).post(f"/api/v1/jobs/{alices_job.pk}/rerun/", {"changes": changes}, format="json")
    assert response.status_code == 400, response.content
    message = response.json()["error"]["message"]
    assert named in message and "cannot be changed in a rerun" in message
    assert Job.objects.count() == before


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"max_retries": "lots"}, "max_retries"),
        ({"max_retries": 9}, "max_retries"),
        ({"network": "maybe"}, "network"),
        ({"name": "x" * 300}, "name"),
        ({"executor": "kubernetes"}, "Unknown executor"),
        ({"command": "rm -rf /"}, "not a shell string"),
        ({"secret_env": {"MLFLOW_TRACKING_TOKEN": "x"}}, "set by the platform"),
        ("not an object", "changes must be an object"),
    ],
)
def test_rerun_changes_are_validated_like_a_submission(alices_job, scientist, changes, text):
    before = Job.objects.count()
    response = api_as(scientist).post(f"/api/v1/jobs/{alices_job.pk}/rerun/", {"changes": changes}, format="json")
    assert response.status_code == 400, response.content
    assert text in response.json()["error"]["message"]
    assert Job.objects.count() == before


def test_a_valid_rerun_is_dispatched_and_keeps_its_project_and_creator(alices_job, bob):
    response = api_as(bob).post(
        f"/api/v1/jobs/{alices_job.pk}/rerun/", {"changes": {"max_retries": 0, "name": "again"}}, format="json"
    )
    assert response.status_code == 201, response.content
    new = Job.objects.get(pk=response.json()["id"])
    assert (new.project_id, new.created_by_id, new.rerun_of_id) == (alices_job.project_id, bob.pk, alices_job.pk)
    assert new.dispatched_at is not None and new.sweep_id is None and new.max_retries == 0


def test_the_migration_gives_submitted_jobs_secrets_to_their_submitter_and_reruns_none(alices_job, bob):
    import importlib

    from django.apps import apps

    rerun = services.job_rerun(job=alices_job, user=bob, changes={"params": {"lr": "3"}})
    Job.objects.update(secret_owners={})
    migration = importlib.import_module("jobs.migrations.0004_job_secret_owners")
    migration.owners_of_submitted_jobs(apps, None)
    alices_job.refresh_from_db()
    rerun.refresh_from_db()
    assert alices_job.secret_owners == {"API_KEY": alices_job.created_by_id}
    assert rerun.secret_owners == {}
    assert kept(services.job_rerun(job=rerun, user=bob, changes={"script": "print(3)"})) == {}
