"""The REST API: wiring, permissions, and every bad input refused with a 400 and
nothing stored or queued."""

import io
import stat
import tarfile
import zipfile

import pytest
from rest_framework.test import APIClient

from jobs.models import Job, JobLogLine, JobStatus
from jobs.services import job_log_append
from tests.factories import UserFactory
from tests.jobs.conftest import viewer_of


@pytest.fixture
def client(scientist, data_dir):
    c = APIClient()
    c.force_authenticate(scientist)
    return c


def zip_bytes(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buf.getvalue()


def tar_with_symlink() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("evil")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    return buf.getvalue()


def upload(client, project, data: bytes, name="code.zip", **fields):
    body = {"project": project.slug, "command": '["python", "main.py"]', **fields}
    body["bundle"] = io.BytesIO(data)
    body["bundle"].name = name
    return client.post("/api/v1/jobs/", body, format="multipart")


def assert_refused(response, text: str):
    assert response.status_code == 400, response.content
    assert text in response.json()["error"]["message"]
    assert Job.objects.count() == 0


def test_submit_with_an_inline_script_queues_a_job(client, job_project):
    response = client.post(
        "/api/v1/jobs/",
        {"project": job_project.slug, "script": "print(1)", "secret_env": {"TOKEN": "abc123"}, "params": {"lr": 0.1}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["command"] == ["python", "main.py"]
    assert body["secret_env"] == ["TOKEN"] and "abc123" not in response.content.decode()
    assert body["params"] == {"lr": "0.1"}


def test_submit_with_a_safe_zip_bundle(client, job_project):
    response = upload(client, job_project, zip_bytes({"main.py": b"print(1)", "pkg/util.py": b""}))
    assert response.status_code == 201, response.content
    assert Job.objects.get().bundle_name == "code.zip"


def test_a_zip_with_parent_paths_is_refused(client, job_project):
    assert_refused(upload(client, job_project, zip_bytes({"../../etc/cron.d/x": b"boom"})), "unsafe path")


def test_a_zip_with_a_symlink_is_refused(client, job_project):
    assert_refused(upload(client, job_project, zip_bytes({"main.py": b""}, symlink="link")), "symlink")


def test_a_tar_with_a_symlink_is_refused(client, job_project):
    assert_refused(upload(client, job_project, tar_with_symlink(), name="code.tgz"), "link")


def test_a_bundle_over_the_size_limit_is_refused(client, job_project, settings):
    settings.MLP_JOB_BUNDLE_MAX_BYTES = 1000
    assert_refused(upload(client, job_project, zip_bytes({"main.py": b"x" * 5000})), "limit")


def test_an_image_not_on_the_allow_list_is_refused(client, job_project):
    response = client.post(
        "/api/v1/jobs/",
        {"project": job_project.slug, "executor": "docker", "image": "evil/miner:latest", "command": ["python3"]},
        format="json",
    )
    assert_refused(response, "allow-list")


@pytest.mark.parametrize(
    "resources, text",
    [
        ({"memory": "lots"}, "not a size"),
        ({"cpus": -1}, "cpus"),
        ({"timeout": "soon"}, "number"),
        ({"gpus": 1.5}, "whole number"),
        ({"disk": "1g"}, "Unknown resources"),
        ("4 cpus", "object"),
    ],
)
def test_a_malformed_resource_spec_is_refused(client, job_project, resources, text):
    response = client.post(
        "/api/v1/jobs/", {"project": job_project.slug, "command": ["true"], "resources": resources}, format="json"
    )
    assert_refused(response, text)


@pytest.mark.parametrize("command", ["python train.py; rm -rf /", "echo hi"])
def test_a_command_given_as_a_shell_string_is_refused(client, job_project, command):
    response = client.post("/api/v1/jobs/", {"project": job_project.slug, "command": command}, format="json")
    assert_refused(response, "not a shell string")


def test_a_shell_string_in_a_multipart_form_is_refused(client, job_project):
    response = client.post(
        "/api/v1/jobs/", {"project": job_project.slug, "command": "python main.py && curl evil"}, format="multipart"
    )
    assert_refused(response, "not a shell string")


def test_platform_variables_cannot_be_overridden(client, job_project):
    response = client.post(
        "/api/v1/jobs/",
        {"project": job_project.slug, "command": ["true"], "env": {"MLFLOW_TRACKING_URI": "http://evil"}},
        format="json",
    )
    assert_refused(response, "set by the platform")


def test_network_is_refused_unless_policy_allows(client, job_project):
    response = client.post(
        "/api/v1/jobs/", {"project": job_project.slug, "command": ["true"], "network": True}, format="json"
    )
    assert response.status_code == 403 and Job.objects.count() == 0


def test_a_viewer_cannot_submit_and_a_stranger_does_not_see_the_job(job_project, data_dir):
    viewer = APIClient()
    viewer.force_authenticate(viewer_of(job_project))
    response = viewer.post("/api/v1/jobs/", {"project": job_project.slug, "command": ["true"]}, format="json")
    assert response.status_code == 403
    owner = APIClient()
    owner.force_authenticate(job_project.owner)
    job_id = owner.post("/api/v1/jobs/", {"project": job_project.slug, "command": ["true"]}, format="json").json()["id"]
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert stranger.get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert stranger.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 404
    assert stranger.get(f"/api/v1/jobs/{job_id}/logs/").status_code == 404
    assert stranger.get("/api/v1/jobs/").json()["results"] == []
    assert viewer.get(f"/api/v1/jobs/{job_id}/").status_code == 200
    assert viewer.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 403


def test_cancel_a_queued_job_and_rerun_it_with_changes(client, job_project):
    job_id = client.post(
        "/api/v1/jobs/", {"project": job_project.slug, "script": "print(1)", "params": {"lr": 1}}, format="json"
    ).json()["id"]
    response = client.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 409
    rerun = client.post(f"/api/v1/jobs/{job_id}/rerun/", {"changes": {"params": {"epochs": 3}}}, format="json")
    assert rerun.status_code == 201
    assert rerun.json()["params"] == {"lr": "1", "epochs": "3"} and rerun.json()["rerun_of"] == job_id
    assert Job.objects.get(pk=rerun.json()["id"]).script == "print(1)"


def test_logs_are_paged_and_downloadable(client, job_project):
    job_id = client.post("/api/v1/jobs/", {"project": job_project.slug, "command": ["true"]}, format="json").json()[
        "id"
    ]
    job = Job.objects.get(pk=job_id)
    job_log_append(job=job, start_seq=0, lines=[f"line {i}" for i in range(25)], secrets=[])
    page = client.get(f"/api/v1/jobs/{job_id}/logs/?after=9&limit=10").json()
    assert [line["text"] for line in page["lines"]] == [f"line {i}" for i in range(10, 20)]
    assert page["next_after"] == 19 and page["total"] == 25
    download = client.get(f"/api/v1/jobs/{job_id}/logs/?download=1")
    assert b"".join(download.streaming_content).decode().splitlines()[-1] == "line 24"
    assert JobLogLine.objects.filter(job=job).count() == 25


def test_a_grid_sweep_queues_one_child_per_combination_within_the_concurrency_limit(client, job_project):
    response = client.post(
        "/api/v1/sweeps/",
        {
            "project": job_project.slug,
            "name": "lr sweep",
            "space": {"lr": [0.1, 0.01], "depth": [2, 4]},
            "metric": "accuracy",
            "max_concurrency": 2,
            "job": {"script": "print(1)"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    children = Job.objects.filter(sweep_id=response.json()["id"])
    assert children.count() == 4 and set(children.values_list("status", flat=True)) == {JobStatus.QUEUED}
    assert children.filter(dispatched_at__isnull=False).count() == 2
    detail = client.get(f"/api/v1/sweeps/{response.json()['id']}/").json()
    assert len(detail["children"]) == 4
