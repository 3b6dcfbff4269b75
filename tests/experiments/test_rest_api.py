"""/api/v1/ experiments, runs, metric histories, artifacts, compare and CSV export."""

import csv
from datetime import UTC, datetime
import io

from asgiref.sync import async_to_sync
import pytest

from experiments import services
from mlplatform.roles import Role
from tests.conftest import bearer_client
from tests.experiments.tracking_data import make_experiment, put_artifact
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


async def body(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


@pytest.fixture
def data(project, user):
    return make_experiment(project, user, n_runs=5, with_children=True)


def test_experiments_list_and_detail(api, data, project):
    experiment, _ = data
    body = api.get("/api/v1/experiments/", {"project": project.slug}).json()
    assert [e["name"] for e in body["results"]] == ["exp"]
    assert body["results"][0]["run_count"] == 6
    assert api.get(f"/api/v1/experiments/{experiment.pk}/").json()["project"] == project.slug


def test_run_search_with_filter_order_and_columns(api, data):
    experiment, _ = data
    response = api.get(
        f"/api/v1/experiments/{experiment.pk}/runs/",
        {
            "filter": "metrics.acc >= 0.4 AND params.model = 'lr'",
            "order_by": "metrics.acc DESC",
            "columns": "metrics.acc",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["run_name"] for r in body["results"]] == ["run-4", "run-2"]
    assert body["count"] == 2 and body["columns"] == ["metrics.acc"]
    assert body["results"][0]["values"] == {"metrics.acc": 0.8}
    assert set(body["metric_keys"]) == {"acc", "loss"} and set(body["param_keys"]) == {"lr", "model"}


def test_run_search_pages(api, data):
    experiment, _ = data
    first = api.get(f"/api/v1/experiments/{experiment.pk}/runs/", {"page_size": 4}).json()
    second = api.get(f"/api/v1/experiments/{experiment.pk}/runs/", {"page_size": 4, "page": 2}).json()
    assert first["count"] == 6 and len(first["results"]) == 4 and len(second["results"]) == 2
    assert not {r["run_id"] for r in first["results"]} & {r["run_id"] for r in second["results"]}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"filter": "metrics.acc >"}, "Invalid filter"),
        ({"filter": "foo.bar = 1"}, "Invalid entity type"),
        ({"filter": "metrics.acc > 1 OR params.x = '1'"}, "AND"),
        ({"order_by": "metrics.acc SIDEWAYS ; drop"}, "Invalid"),
        ({"columns": "nonsense"}, "Invalid column"),
        ({"page_size": "5000"}, "page_size"),
        ({"page": "x"}, "integer"),
    ],
)
def test_bad_search_input_is_400_with_a_message(api, data, params, message):
    experiment, _ = data
    response = api.get(f"/api/v1/experiments/{experiment.pk}/runs/", params)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_sql_in_a_filter_just_matches_nothing(api, data):
    experiment, _ = data
    response = api.get(f"/api/v1/experiments/{experiment.pk}/runs/", {"filter": "params.model = 'lr'' OR 1=1 --'"})
    assert response.status_code == 200 and response.json()["count"] == 0


def test_csv_export_has_the_same_rows_and_columns_as_the_search(api, data):
    experiment, runs = data
    services.run_set_tag(run=runs[1], key="note", value='=HYPERLINK("http://evil")')
    services.run_log_batch(run=runs[1], params={"formula": "=1+2", "neg": "-3"})
    response = api.get(
        f"/api/v1/experiments/{experiment.pk}/runs/csv/",
        {
            "filter": "attributes.status = 'FINISHED'",
            "order_by": "metrics.acc ASC",
            "columns": ["metrics.acc", "params.formula", "params.neg", "tags.note"],
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="exp-runs.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][-4:] == ["metrics.acc", "params.formula", "params.neg", "tags.note"]
    assert [r[1] for r in rows[1:]] == ["run-0", "run-1", "run-2", "run-3", "run-4"]
    run1 = rows[2]
    assert run1[-4:] == ["0.2", "'=1+2", "'-3", '\'=HYPERLINK("http://evil")']
    started = rows[0].index("start_time")
    expected = datetime.fromtimestamp(runs[1].start_time / 1000, tz=UTC).isoformat(timespec="milliseconds")
    assert run1[started] == expected.replace("+00:00", "Z")  # ISO 8601, not epoch ms


def test_csv_export_bad_filter_is_400(api, data):
    experiment, _ = data
    response = api.get(f"/api/v1/experiments/{experiment.pk}/runs/csv/", {"filter": "params.x = "})
    assert response.status_code == 400 and "Invalid filter" in response.json()["error"]["message"]


def test_run_detail_history_and_compare(api, data):
    _, runs = data
    body = api.get(f"/api/v1/runs/{runs[2].pk}/").json()
    assert body["run"]["run_name"] == "run-2" and body["run"]["user"] == runs[2].user.username
    assert {p["key"]: p["value"] for p in body["params"]} == {"lr": "0.2", "model": "lr"}
    assert {m["key"] for m in body["metrics"]} == {"acc", "loss"}
    assert api.get(f"/api/v1/runs/{runs[0].pk}/").json()["child_run_ids"] == [runs[-1].pk]
    history = api.get(f"/api/v1/runs/{runs[2].pk}/metrics/history/", {"key": "acc"}).json()
    assert [p["step"] for p in history] == [0, 1, 2] and history[-1]["value"] == pytest.approx(0.4)
    compare = api.get("/api/v1/runs/compare/", {"run_ids": f"{runs[1].pk},{runs[3].pk}"}).json()
    assert [r["run_name"] for r in compare["runs"]] == ["run-1", "run-3"]
    assert compare["metric_keys"] == ["acc", "loss"] and compare["runs"][1]["params"]["lr"] == "0.3"


def test_nan_and_infinity_survive_json(api, project, user):
    experiment, (run,) = make_experiment(project, user, name="nan", n_runs=1)
    services.run_log_batch(run=run, metrics=[("weird", float("nan"), 5, 1), ("big", float("inf"), 5, 1)])
    body = api.get(f"/api/v1/experiments/{experiment.pk}/runs/", {"columns": "metrics.weird,metrics.big"}).json()
    assert body["results"][0]["values"] == {"metrics.weird": "NaN", "metrics.big": "Infinity"}


def test_compare_needs_two_to_a_hundred_runs(api, data):
    _, runs = data
    response = api.get("/api/v1/runs/compare/", {"run_ids": runs[0].pk})
    assert response.status_code == 400 and "between 2 and 100" in response.json()["error"]["message"]


def test_artifacts_list_and_download(api, data):
    _, runs = data
    put_artifact(runs[0], "notes.txt", b"hello")
    put_artifact(runs[0], "plots/loss.png", b"\x89PNG....")
    listing = api.get(f"/api/v1/runs/{runs[0].pk}/artifacts/").json()
    assert [(f["path"], f["is_dir"]) for f in listing] == [("notes.txt", False), ("plots", True)]
    assert [f["path"] for f in api.get(f"/api/v1/runs/{runs[0].pk}/artifacts/", {"path": "plots"}).json()] == [
        "plots/loss.png"
    ]
    response = api.get(f"/api/v1/runs/{runs[0].pk}/artifacts/download/", {"path": "notes.txt"})
    assert response.status_code == 200 and async_to_sync(body)(response) == b"hello"
    assert response["Content-Length"] == "5"
    assert response["Content-Type"] == "application/octet-stream" and "attachment" in response["Content-Disposition"]


@pytest.mark.parametrize(
    "path",
    ["../../../etc/passwd", "..%2f..%2fetc", "%252e%252e%252fetc", "..\\..\\x", "/etc/passwd", "a#/../..", "a\x00b"],
)
def test_artifact_traversal_is_400(api, data, path):
    _, runs = data
    assert api.get(f"/api/v1/runs/{runs[0].pk}/artifacts/download/", {"path": path}).status_code == 400
    assert api.get(f"/api/v1/runs/{runs[0].pk}/artifacts/", {"path": path}).status_code == 400


def test_another_projects_objects_are_404(data, other_user):
    experiment, runs = data
    stranger = UserFactory()
    make_project(owner=stranger)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(stranger)
    for url in [
        f"/api/v1/experiments/{experiment.pk}/",
        f"/api/v1/experiments/{experiment.pk}/runs/",
        f"/api/v1/experiments/{experiment.pk}/runs/csv/",
        f"/api/v1/runs/{runs[0].pk}/",
        f"/api/v1/runs/{runs[0].pk}/metrics/history/?key=acc",
        f"/api/v1/runs/{runs[0].pk}/artifacts/",
        f"/api/v1/runs/{runs[0].pk}/artifacts/download/?path=notes.txt",
        f"/api/v1/runs/compare/?run_ids={runs[0].pk},{runs[1].pk}",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/experiments/").json()["results"] == []


def test_project_scoped_token_sees_only_its_project(data, user, token_for):
    experiment, _ = data
    other = make_project(owner=user)
    client = bearer_client(token_for(user, project=other))
    assert client.get(f"/api/v1/experiments/{experiment.pk}/runs/").status_code == 404
    assert bearer_client(token_for(user)).get(f"/api/v1/experiments/{experiment.pk}/runs/").status_code == 200


def test_viewer_can_read(data, project):
    viewer = UserFactory()
    from projects import services as project_services

    project_services.membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=project.owner)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(viewer)
    experiment, _ = data
    assert client.get(f"/api/v1/experiments/{experiment.pk}/runs/").status_code == 200


def test_anonymous_is_refused(anon_api, data):
    experiment, _ = data
    assert anon_api.get(f"/api/v1/experiments/{experiment.pk}/runs/").status_code in (401, 403)


def test_schema_lists_the_endpoints(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in [
        "/api/v1/experiments/{experiment_id}/runs/",
        "/api/v1/runs/compare/",
        "/api/v1/runs/{run_id}/artifacts/",
    ]:
        assert path in schema
