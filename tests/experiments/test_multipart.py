"""mlflow-artifacts/mpu/*: signed part URLs, confinement to the run's root, and the
checks a hostile or confused client would hit."""

import json
from urllib.parse import parse_qs, urlsplit

from django.test import Client
import pytest

from experiments import services
from mlplatform.roles import Role
from projects import services as project_services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db
MPU = "/api/2.0/mlflow-artifacts/mpu"


@pytest.fixture
def run(project, user):
    experiment = services.experiment_get_or_create(project=project, name="mpu", user=user)
    return services.run_create(experiment=experiment, user=user)


@pytest.fixture
def call(user, project, token_for):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(user, project=project)}")

    def do(action, path, body):
        return client.post(f"{MPU}/{action}/{path}", json.dumps(body), content_type="application/json")

    return do


def _root(run) -> str:
    return f"{run.experiment_id}/{run.pk}/artifacts"


def _put(url: str, data: bytes):
    parts = urlsplit(url)
    return Client().put(f"{parts.path}?{parts.query}", data, content_type="application/octet-stream")


def test_parts_concatenate_in_order_into_the_run_root(call, run, artifact_root):
    created = call("create", f"{_root(run)}/dir", {"path": "C:\\Users\\me\\big.bin", "num_parts": 2}).json()
    urls = {c["part_number"]: c["url"] for c in created["credentials"]}
    second, first = _put(urls[2], b"world"), _put(urls[1], b"hello ")
    assert first.status_code == second.status_code == 200 and first["ETag"]
    body = {"path": "big.bin", "upload_id": created["upload_id"], "parts": [{"part_number": 1}, {"part_number": 2}]}
    assert call("complete", f"{_root(run)}/dir", body).status_code == 200
    run_dir = artifact_root / _root(run)
    assert (run_dir / "dir" / "big.bin").read_bytes() == b"hello world"
    assert sorted(p.name for p in run_dir.iterdir()) == ["dir"]


def test_a_tampered_part_url_is_refused_and_completing_without_parts_fails(call, run):
    created = call("create", _root(run), {"path": "f.bin", "num_parts": 1}).json()
    url = created["credentials"][0]["url"]
    assert url.endswith(parse_qs(urlsplit(url).query)["token"][0][-4:])  # the signature ends the URL
    assert _put(url[:-4] + "abcd", b"x").status_code == 403
    body = {"path": "f.bin", "upload_id": created["upload_id"], "parts": [{"part_number": 1}]}
    missing = call("complete", _root(run), body)
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_part_url_stops_working_when_the_role_is_gone(user, token_for):
    owner = UserFactory()
    shared = make_project(owner=owner, members={user: Role.DATA_SCIENTIST})
    experiment = services.experiment_get_or_create(project=shared, name="shared", user=owner)
    shared_run = services.run_create(experiment=experiment, user=owner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(user, project=shared)}")
    created = client.post(
        f"{MPU}/create/{_root(shared_run)}", json.dumps({"path": "f", "num_parts": 1}), content_type="application/json"
    ).json()
    project_services.membership_change_role(project=shared, username=user.username, role=Role.VIEWER, actor=owner)
    assert _put(created["credentials"][0]["url"], b"x").status_code in (403, 404)


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("{root}/../../etc", {"path": "f", "num_parts": 1}, 400),
        ("{root}", {"path": "f", "num_parts": 0}, 400),
        ("{root}", {"path": "f", "num_parts": 10001}, 400),
        ("{root}", {"path": ".mpu-x", "num_parts": 1}, 400),
        ("{root}", {"path": "", "num_parts": 1}, 400),
        ("1/{other}/artifacts", {"path": "f", "num_parts": 1}, 404),
    ],
)
def test_bad_creates_are_refused(call, run, path, body, status):
    stranger = UserFactory()
    other_exp = services.experiment_get_or_create(project=make_project(owner=stranger), name="x", user=stranger)
    other = services.run_create(experiment=other_exp, user=stranger)
    response = call("create", path.format(root=_root(run), other=other.pk), body)
    assert response.status_code == status, response.content


def test_complete_needs_every_part_once(call, run):
    created = call("create", _root(run), {"path": "f.bin", "num_parts": 2}).json()
    for c in created["credentials"]:
        _put(c["url"], b"x")
    for parts in ([1], [1, 1], [1, 2, 3]):
        body = {"path": "f.bin", "upload_id": created["upload_id"], "parts": [{"part_number": n} for n in parts]}
        assert call("complete", _root(run), body).status_code == 400
    bad_id = {"path": "f.bin", "upload_id": "../x", "parts": [{"part_number": 1}]}
    assert call("complete", _root(run), bad_id).status_code == 400
    assert call("abort", _root(run), {"path": "f.bin", "upload_id": created["upload_id"]}).status_code == 200
    assert call("abort", _root(run), {"path": "f.bin", "upload_id": created["upload_id"]}).status_code == 200


def test_abandoned_uploads_are_swept_and_live_ones_kept(call, run, artifact_root):
    """An upload whose parts nobody touched for longer than a part URL lives can never
    be completed: the hourly sweep deletes its staging directory. A recent upload, the
    run's own files and a logged model's live upload stay."""
    import os
    import time

    from experiments import multipart
    from experiments.tasks import abandoned_uploads_sweep_task

    created = [call("create", _root(run), {"path": f"f{i}.bin", "num_parts": 1}).json() for i in range(2)]
    stale_url, fresh_url = (c["credentials"][0]["url"] for c in created)
    assert _put(stale_url, b"old part").status_code == _put(fresh_url, b"new part").status_code == 200
    run_dir = artifact_root / _root(run)
    (run_dir / "keep.txt").write_text("logged")
    model_staging = artifact_root / f"{run.experiment_id}/models/m-1/artifacts/.mpu-{'a' * 32}"
    model_staging.mkdir(parents=True)
    (model_staging / "part-00001").write_bytes(b"x")
    stale = run_dir / f".mpu-{created[0]['upload_id']}"
    old = time.time() - multipart.UPLOAD_LIFETIME_SECONDS - 2 * 3600
    for path in [stale, *stale.iterdir()]:
        os.utime(path, (old, old))

    assert abandoned_uploads_sweep_task() == 1
    assert not stale.exists()
    assert (run_dir / f".mpu-{created[1]['upload_id']}").is_dir() and model_staging.is_dir()
    assert (run_dir / "keep.txt").read_text() == "logged"
    body = {"path": "f0.bin", "upload_id": created[0]["upload_id"], "parts": [{"part_number": 1}]}
    assert call("complete", _root(run), body).status_code == 404
