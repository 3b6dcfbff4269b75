"""Secret env values at rest, the relay's path check and the GPU sampler's parser."""

import importlib

from django.apps import apps
from django.db import connection
import pytest

from jobs import secrets, services
from jobs.executors.base import parse_gpu_query
from jobs.executors.relay import forwarded_command, path_allowed
from jobs.models import Job, JobLogLine
from tests.jobs.conftest import execute

PLAIN = "s3cr3t-value-in-plain"


def raw_row(job) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_env FROM jobs_job WHERE id = %s", [job.pk])
        return str(cursor.fetchone()[0])


def test_secret_values_are_encrypted_in_the_database_and_reach_the_job_in_plain(submit):
    job = submit("import os\nprint(os.environ['API_KEY'] == 's3cr3t-value-in-plain')", secret_env={"API_KEY": PLAIN})
    assert PLAIN not in raw_row(job) and "API_KEY" in raw_row(job)
    job = execute(job)
    assert list(JobLogLine.objects.filter(job=job).values_list("text", flat=True)) == ["True"]


def test_a_rerun_carries_the_secret_over_encrypted(submit, scientist):
    job = submit(secret_env={"API_KEY": PLAIN})
    again = services.job_rerun(job=job, user=scientist)
    assert PLAIN not in raw_row(again)
    assert secrets.decrypt_values(again.secret_env) == {"API_KEY": PLAIN}


def test_the_migration_encrypts_secrets_stored_before(submit):
    job = submit()
    Job.objects.filter(pk=job.pk).update(secret_env={"OLD": PLAIN})
    migration = importlib.import_module("jobs.migrations.0003_mlflow_image_encrypted_secrets")
    migration.encrypt_secrets(apps, None)
    migration.encrypt_secrets(apps, None)  # running twice does not encrypt twice
    job.refresh_from_db()
    assert PLAIN not in raw_row(job)
    assert secrets.decrypt_values(job.secret_env) == {"OLD": PLAIN}


def test_a_changed_key_is_a_clear_error_not_garbage(settings):
    stored = secrets.encrypt_values({"K": "v"})
    settings.MLP_SECRETS_KEY = "k" * 43 + "="
    from mlplatform.errors import InvalidState

    with pytest.raises(InvalidState, match="secrets key changed"):
        secrets.decrypt_values(stored)


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/api/2.0/mlflow/runs/log-batch", True),
        ("/api/2.0/mlflow-artifacts/artifacts/1/2/artifacts/model.pkl", True),
        ("/ajax-api/2.0/mlflow/runs/get?run_id=1", True),
        ("/api/3.0/mlflow/server-info", True),
        ("/api/v1/jobs/", False),
        ("/admin/", False),
        ("/api/2.0/mlflow/../../../admin/", False),
        ("/api/2.0/mlflow/%2e%2e/%2e%2e/v1/jobs/", False),
        ("//api/2.0/mlflow/runs/get", False),
        ("http://example.com/api/2.0/mlflow/runs/get", False),
        ("/api/v1/projects/demo/datasets/pumps/versions/latest/", True),
        ("/api/v1/projects/demo/datasets/pumps/versions/3f2a9c01/data?format=parquet", True),
        ("/api/v1/projects/demo/datasets/pumps/versions/3f2a9c01/aliases/", False),
        ("/api/v1/projects/demo/datasets/", False),
        ("/api/v1/projects/demo/datasets/pumps/versions/x/../../../../../jobs/", False),
    ],
)
def test_the_relay_passes_mlflow_api_paths_only(path, allowed):
    assert path_allowed(path) is allowed


def test_the_relay_reads_dataset_versions_but_never_writes():
    data = "/api/v1/projects/demo/datasets/pumps/versions/latest/data"
    assert path_allowed(data, "GET") and path_allowed(data, "HEAD")
    assert not path_allowed(data, "POST") and not path_allowed(data, "DELETE")


def test_the_container_command_is_the_forwarder_around_the_job_command():
    assert forwarded_command(["python3", "main.py"]) == [
        "python3",
        "/mlp/forward.py",
        "5987",
        "/mlp/tracking.sock",
        "python3",
        "main.py",
    ]


def test_nvidia_smi_output_becomes_system_gpu_metrics():
    output = "87, 10240\n3, [N/A]\n\n"
    assert parse_gpu_query(output) == [
        ("system/gpu_0_utilization_percentage", 87.0),
        ("system/gpu_0_memory_usage_megabytes", 10240.0),
        ("system/gpu_1_utilization_percentage", 3.0),
    ]


def test_no_output_no_gpu_metrics():
    assert parse_gpu_query("") == []
