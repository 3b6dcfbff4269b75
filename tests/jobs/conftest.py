import os
import subprocess
import sys
import textwrap

import pytest

from jobs import runner, services
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project


@pytest.fixture
def scientist(db):
    return UserFactory()


@pytest.fixture
def job_project(scientist):
    return make_project(owner=scientist)


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def submit(job_project, scientist, data_dir):
    """Submits a local job without dispatching it; run it with `execute`."""

    def make(script: str = "print('hello')", **kwargs):
        kwargs.setdefault("dispatch", False)
        return services.job_submit(project=job_project, user=scientist, script=textwrap.dedent(script), **kwargs)

    return make


@pytest.fixture
def tracking_server(live_asgi, settings):
    """The platform served for real, where jobs' MLflow clients log to (as they would to
    MLP_PUBLIC_URL in production). Yields its URL."""
    settings.MLP_PUBLIC_URL = live_asgi
    return live_asgi


def execute(job):
    """Run the job as a worker would, including the re-runs its retry policy grants after
    an infrastructure failure (a busy engine can refuse a container start)."""
    for _ in range(job.max_retries + 1):
        runner.job_execute(job_id=job.pk, worker="test-worker")
        job.refresh_from_db()
        if job.status != "queued":
            break
    return job


def viewer_of(project):
    viewer = UserFactory()
    from projects import services as project_services

    project_services.membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=project.owner)
    return viewer


__all__ = ["execute", "os", "subprocess", "sys", "viewer_of"]


def assert_job_token_refused(tracking_server: str, data_dir, job) -> None:
    """The token the job held (its work dir keeps a copy) no longer opens its run."""
    import requests

    raw = (data_dir / "jobs" / str(job.pk) / "work" / "token").read_text()
    after = requests.get(
        f"{tracking_server}/api/2.0/mlflow/runs/get",
        params={"run_id": job.run_id},
        headers={"Authorization": f"Bearer {raw}"},
        timeout=10,
    )
    assert after.status_code == 401
