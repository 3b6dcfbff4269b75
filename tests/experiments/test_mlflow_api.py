"""The MLflow-compatible API through Django's test client: wiring, shapes, error codes,
auth, object-level access and every bad input of issue 3."""

import base64
import json

from asgiref.sync import async_to_sync
from django.test import Client
import pytest

from experiments.models import Param, Run
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


class Mlflow:
    def __init__(self, client: Client, headers: dict) -> None:
        self.client, self.headers = client, headers

    def post(self, path, body=None, **kw):
        return self.client.post(
            f"{API}/{path}", json.dumps(body or {}), content_type="application/json", **self.headers, **kw
        )

    def get(self, path, params=None):
        return self.client.get(f"{API}/{path}", params or {}, **self.headers)

    def raw(self, method, url, data=b"", **kw):
        if method == "get":
            return self.client.get(url, **self.headers, **kw)
        return getattr(self.client, method)(url, data, content_type="application/octet-stream", **self.headers, **kw)


@pytest.fixture
def ml(user, project, token_for):
    return Mlflow(Client(), {"HTTP_AUTHORIZATION": f"Bearer {token_for(user, project=project)}"})


@pytest.fixture
def run(ml, project):
    experiment_id = ml.post("experiments/create", {"name": "api-exp"}).json()["experiment_id"]
    body = ml.post("runs/create", {"experiment_id": experiment_id, "run_name": "r", "start_time": 1}).json()
    return Run.objects.get(pk=body["run"]["info"]["run_id"])


def test_a_created_run_answers_with_its_tags(ml, run):
    tags = [{"key": "mlflow.user", "value": "ann"}, {"key": "b", "value": "1"}, {"key": "b", "value": "2"}]
    body = ml.post("runs/create", {"experiment_id": str(run.experiment_id), "run_name": "t", "tags": tags}).json()
    assert body["run"]["data"]["tags"] == [
        {"key": "b", "value": "2"},
        {"key": "mlflow.runName", "value": "t"},
        {"key": "mlflow.user", "value": "ann"},
    ]
    stored = ml.get("runs/get", {"run_id": body["run"]["info"]["run_id"]}).json()["run"]["data"]["tags"]
    assert sorted(stored, key=lambda t: t["key"]) == body["run"]["data"]["tags"]


def test_experiment_and_run_shapes(ml, run, project):
    exp = ml.get("experiments/get-by-name", {"experiment_name": "api-exp"}).json()["experiment"]
    assert exp["name"] == "api-exp" and exp["artifact_location"] == f"mlflow-artifacts:/{exp['experiment_id']}"
    assert ml.get("experiments/get-by-name", {"experiment_name": f"{project.slug}/api-exp"}).status_code == 200
    again = ml.post("experiments/create", {"name": "api-exp"})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    missing = ml.get("experiments/get-by-name", {"experiment_name": "nope"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    ml.post("runs/log-batch", {"run_id": run.pk, "metrics": [{"key": "m", "value": "NaN", "timestamp": 1, "step": 0}]})
    ml.post("runs/log-metric", {"run_id": run.pk, "key": "inf", "value": "Infinity", "timestamp": 1})
    info = ml.get("runs/get", {"run_id": run.pk}).json()["run"]
    assert {m["key"]: m["value"] for m in info["data"]["metrics"]} == {"m": "NaN", "inf": "Infinity"}
    assert info["info"]["run_name"] == "r" and info["info"]["status"] == "RUNNING"
    done = ml.post("runs/update", {"run_id": run.pk, "status": "FINISHED"}).json()["run_info"]
    assert done["status"] == "FINISHED" and done["end_time"]


def test_delete_and_restore_run(ml, run):
    ml.post("runs/delete", {"run_id": run.pk})
    search = ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)]}).json()
    assert search.get("runs", []) == []
    deleted = ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)], "run_view_type": "DELETED_ONLY"})
    assert len(deleted.json()["runs"]) == 1
    assert ml.post("runs/log-parameter", {"run_id": run.pk, "key": "a", "value": "1"}).status_code == 400
    ml.post("runs/restore", {"run_id": run.pk})
    assert len(ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)]}).json()["runs"]) == 1


def test_changing_a_param_is_invalid_parameter_value(ml, run):
    assert ml.post("runs/log-parameter", {"run_id": run.pk, "key": "lr", "value": "0.1"}).status_code == 200
    assert ml.post("runs/log-parameter", {"run_id": run.pk, "key": "lr", "value": "0.1"}).status_code == 200
    response = ml.post("runs/log-parameter", {"run_id": run.pk, "key": "lr", "value": "0.2"})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in response.json()["message"]
    assert Param.objects.get(run=run, key="lr").value == "0.1"


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]},
        {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        {"params": [{"key": "p", "value": "x" * 6001}]},
        {"tags": [{"key": "t", "value": "x" * 8001}]},
        {"metrics": [{"key": "m", "value": "abc", "timestamp": 1}]},
        {"metrics": [{"key": "../etc", "value": 1, "timestamp": 1}]},
    ],
)
def test_batches_over_the_limits_are_refused(ml, run, body):
    response = ml.post("runs/log-batch", {"run_id": run.pk, **body})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert response.json()["message"]
    assert not run.metrics.exists() and not run.params.exists()


@pytest.mark.parametrize(
    "bad", ["metrics.acc >", "params.a = 'x' OR params.b = 'y'", "bogus.a = 'x'", "metrics.a > 'x'"]
)
def test_malformed_filter_is_400(ml, run, bad):
    response = ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)], "filter": bad})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "token", ["%%%", base64.b64encode(b"[1]").decode(), base64.b64encode(b'{"offset": -1}').decode()]
)
def test_bad_page_token_is_400(ml, run, token):
    response = ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)], "page_token": token})
    assert response.status_code == 400 and "page token" in response.json()["message"]


def test_sql_in_a_filter_matches_nothing(ml, run):
    ml.post("runs/log-parameter", {"run_id": run.pk, "key": "a", "value": "1"})
    evil = "params.a = '1'' OR ''1''=''1'' --' AND tags.x != '; DROP TABLE experiments_run; --'"
    response = ml.post("runs/search", {"experiment_ids": [str(run.experiment_id)], "filter": evil})
    assert response.status_code == 200 and response.json().get("runs", []) == []
    assert Run.objects.filter(pk=run.pk).exists()


def test_pagination_over_runs(ml, run):
    for i in range(4):
        ml.post("runs/create", {"experiment_id": str(run.experiment_id), "run_name": f"p{i}", "start_time": 10 + i})
    seen, token = [], None
    while True:
        body = {"experiment_ids": [str(run.experiment_id)], "max_results": 2, "order_by": ["attributes.start_time ASC"]}
        if token:
            body["page_token"] = token
        page = ml.post("runs/search", body).json()
        seen += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ["r", "p0", "p1", "p2", "p3"]


def test_metric_history_and_bulk_interval(ml, run):
    metrics = [{"key": "loss", "value": 1 / (i + 1), "timestamp": 100 + i, "step": i} for i in range(50)]
    ml.post("runs/log-batch", {"run_id": run.pk, "metrics": metrics})
    history = ml.get("metrics/get-history", {"run_id": run.pk, "metric_key": "loss"}).json()["metrics"]
    assert [m["step"] for m in history] == list(range(50))
    sampled = ml.get(
        "metrics/get-history-bulk-interval", {"run_ids": [run.pk], "metric_key": "loss", "max_results": 10}
    ).json()["metrics"]
    steps = [m["step"] for m in sampled]
    assert steps[0] == 0 and steps[-1] == 49 and len(steps) <= 11 and sampled[0]["run_id"] == run.pk


# -- access -------------------------------------------------------------------------


def test_another_projects_objects_do_not_exist(run, ml):
    stranger = UserFactory()
    make_project(owner=stranger)
    from mlplatform.services import api_token_create

    other = Mlflow(Client(), {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=stranger, name='t')[1]}"})
    exp_id = str(run.experiment_id)
    checks = [
        other.get("experiments/get", {"experiment_id": exp_id}),
        other.get("runs/get", {"run_id": run.pk}),
        other.post("runs/log-metric", {"run_id": run.pk, "key": "m", "value": 1, "timestamp": 1}),
        other.post("runs/delete", {"run_id": run.pk}),
        other.post("runs/search", {"experiment_ids": [exp_id]}),
        other.get("artifacts/list", {"run_id": run.pk}),
        other.raw("get", f"{PROXY}/{exp_id}/{run.pk}/artifacts/x.txt"),
        other.raw("put", f"{PROXY}/{exp_id}/{run.pk}/artifacts/x.txt", b"evil"),
        other.client.get(PROXY, {"path": f"{exp_id}/{run.pk}/artifacts"}, **other.headers),
    ]
    for response in checks:
        assert response.status_code == 404, response.content
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not run.metrics.exists()


def test_viewer_reads_but_cannot_write(run, project, user):
    viewer = UserFactory()
    from projects.services import membership_add

    membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=user)
    client = Client()
    basic = base64.b64encode(f"{viewer.username}:pw-123456".encode()).decode()
    ml = Mlflow(client, {"HTTP_AUTHORIZATION": f"Basic {basic}"})
    assert ml.get("runs/get", {"run_id": run.pk}).status_code == 200
    response = ml.post("runs/log-metric", {"run_id": run.pk, "key": "m", "value": 1, "timestamp": 1})
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"


def test_auth_modes(run, user, token_for):
    anon = Mlflow(Client(), {})
    response = anon.get("runs/get", {"run_id": run.pk})
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
    empty = base64.b64encode(f"{user.username}:".encode()).decode()
    assert (
        Mlflow(Client(), {"HTTP_AUTHORIZATION": f"Basic {empty}"}).get("runs/get", {"run_id": run.pk}).status_code
        == 401
    )
    token = token_for(user)
    as_password = base64.b64encode(f"{user.username}:{token}".encode()).decode()
    basic = Mlflow(Client(), {"HTTP_AUTHORIZATION": f"Basic {as_password}"})
    assert basic.get("runs/get", {"run_id": run.pk}).status_code == 200
    session = Client(enforce_csrf_checks=True)
    session.force_login(user)
    browser = Mlflow(session, {})
    assert browser.get("runs/get", {"run_id": run.pk}).status_code == 200
    assert browser.post("runs/set-tag", {"run_id": run.pk, "key": "a", "value": "b"}).status_code == 403


# -- artifacts ----------------------------------------------------------------------


def read_streaming(response) -> bytes:
    async def collect():
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def test_artifact_round_trip_streams_past_the_memory_limit(ml, run, settings, artifact_root):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    payload = bytes(range(256)) * 64  # 16 KiB, over the limit set above
    base = f"{PROXY}/{run.experiment_id}/{run.pk}/artifacts"
    assert ml.raw("put", f"{base}/data/blob.bin", payload).status_code == 200
    response = ml.raw("get", f"{base}/data/blob.bin")
    assert response.status_code == 200 and read_streaming(response) == payload
    listing = ml.client.get(PROXY, {"path": f"{run.experiment_id}/{run.pk}/artifacts/data"}, **ml.headers).json()
    assert listing["files"] == [{"path": "blob.bin", "is_dir": False, "file_size": len(payload)}]
    files = ml.get("artifacts/list", {"run_id": run.pk}).json()["files"]
    assert files == [{"path": "data", "is_dir": True}]
    assert ml.raw("delete", f"{base}/data/blob.bin").status_code == 200
    assert ml.raw("get", f"{base}/data/blob.bin").status_code == 404


def test_html_artifacts_are_served_as_text(ml, run):
    base = f"{PROXY}/{run.experiment_id}/{run.pk}/artifacts"
    ml.raw("put", f"{base}/page.html", b"<script>alert(1)</script>")
    response = ml.raw("get", f"{base}/page.html")
    assert response["Content-Type"].startswith("text/plain") and "attachment" in response["Content-Disposition"]


BAD_PATHS = [
    "../../../../etc/passwd",
    "a/../../b.txt",
    "..%2f..%2fescape.txt",
    "%2e%2e/%2e%2e/escape.txt",
    "%252e%252e%252fescape.txt",
    "..%5c..%5cescape.txt",
    "a\\..\\..\\escape.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "ok.txt%23/../../escape.txt",
    "ok.txt%3f/../../escape.txt",
    "bad%00.txt",
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_artifact_path_tricks_are_400_and_touch_nothing(ml, run, bad, artifact_root, tmp_path):
    base = f"{PROXY}/{run.experiment_id}/{run.pk}/artifacts"
    before = sorted(p for p in tmp_path.rglob("*"))
    for method in ("put", "get", "delete"):
        response = ml.raw(method, f"{base}/{bad}", b"x")
        assert response.status_code == 400, (method, response.status_code, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listing = ml.client.get(PROXY, {"path": f"{run.experiment_id}/{run.pk}/artifacts/{bad}"}, **ml.headers)
    assert listing.status_code == 400
    assert ml.get("artifacts/list", {"run_id": run.pk, "path": bad}).status_code == 400
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not list(tmp_path.rglob("escape.txt"))


def test_absolute_artifact_path_alone_is_400(ml):
    assert ml.raw("put", f"{PROXY}//etc/passwd", b"x").status_code == 400
