"""The tracking plane (experiments.mlflow_api.lean): header-authenticated MLflow calls
served before Django's request cycle, with the same checks and answers; and the fixed
SQL reads under it (mlplatform.fixedsql) giving what the ORM gives."""

import json
import threading

from django.core.signals import request_started
import pytest
import requests

from experiments import selectors, services
from experiments.models import Metric, Param, Run
from tests.factories import make_project

pytestmark = pytest.mark.slow


@pytest.fixture
def run(project, user):
    experiment = services.experiment_create(project=project, name="plane", user=user)
    return services.run_create(experiment=experiment, user=user, name="r1")


@pytest.fixture
def django_requests():
    """Paths that went through Django's request cycle while the test ran."""
    seen, lock = [], threading.Lock()

    def record(sender, scope=None, environ=None, **kwargs):
        with lock:
            seen.append((scope or {}).get("path") or (environ or {}).get("PATH_INFO"))

    request_started.connect(record)
    yield seen
    request_started.disconnect(record)


def _api(live_asgi, token=None):
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session, f"{live_asgi}/api/2.0/mlflow"


def test_token_calls_skip_django_and_sessions_do_not(live_asgi, user, project, run, token_for, django_requests):
    """Given a token, when a client logs and reads, then Django's request cycle never
    runs for those calls, yet the data lands; a call without a header goes to Django
    and is refused there."""
    session, api = _api(live_asgi, token_for(user, project=project))
    body = {"run_id": run.pk, "key": "loss", "value": 0.5, "timestamp": 1, "step": 3}
    assert session.post(f"{api}/runs/log-metric", json=body).status_code == 200
    got = session.get(f"{api}/runs/get", params={"run_id": run.pk})
    assert got.status_code == 200
    assert got.json()["run"]["data"]["metrics"] == [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 3}]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert not [p for p in django_requests if p and p.startswith("/api/2.0/mlflow/")]

    anonymous = requests.get(f"{api}/runs/get", params={"run_id": run.pk})
    assert anonymous.status_code == 401
    assert "/api/2.0/mlflow/runs/get" in django_requests


def test_plane_refuses_what_django_would(live_asgi, user, project, run, token_for):
    """Bad host, oversize or malformed body, wrong method, another project's run, an
    unknown path: each answered with MLflow's error shape and nothing written."""
    session, api = _api(live_asgi, token_for(user, project=project))
    body = {"run_id": run.pk, "key": "k", "value": 1, "timestamp": 1}

    bad_host = session.post(f"{api}/runs/log-metric", json=body, headers={"Host": "evil.example"})
    assert bad_host.status_code == 400 and "Host" in bad_host.json()["message"]

    huge = session.post(
        f"{api}/runs/log-metric", data=b"{" + b" " * (10 * 1024 * 1024 + 1) + b"}", headers={"Content-Type": "json"}
    )
    assert huge.status_code == 400 and huge.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    malformed = session.post(f"{api}/runs/log-metric", data=b'{"run_id": ', headers={"Content-Type": "json"})
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "MALFORMED_REQUEST"

    wrong_method = session.get(f"{api}/runs/log-metric", params=body)
    assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"

    other = make_project(slug="elsewhere")
    foreign = services.run_create(
        experiment=services.experiment_create(project=other, name="x", user=other.owner), user=other.owner
    )
    hidden = session.post(f"{api}/runs/log-metric", json={**body, "run_id": foreign.pk})
    assert hidden.status_code == 404 and hidden.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    assert session.get(f"{api}/no-such-endpoint").status_code == 404
    assert not Metric.objects.exists()


def test_bodies_strict_json_refuses_are_still_read(live_asgi, user, project, run, token_for):
    """Request bodies are parsed by orjson, strict JSON only; what it refuses and
    Python's json reads (NaN and Infinity tokens, integers past 64 bits) is still taken
    as before, and the values land as sent. A lone surrogate, which json reads but no
    database stores, is a 400 that writes nothing (it was a 500)."""
    session, api = _api(live_asgi, token_for(user, project=project))
    headers = {"Content-Type": "application/json"}
    surrogate = '{"run_id": "RUN", "tags": [{"key": "s", "value": "\\ud800x"}]}'.replace("RUN", run.pk)
    refused = session.post(f"{api}/runs/log-batch", data=surrogate.encode(), headers=headers)
    assert refused.status_code == 400 and refused.json()["error_code"] == "MALFORMED_REQUEST"
    raw = (
        '{"run_id": "RUN", "metrics": [{"key": "n", "value": NaN, "timestamp": 1, "step": 0},'
        ' {"key": "i", "value": -Infinity, "timestamp": 1, "step": 0}],'
        ' "params": [{"key": "big", "value": 123456789012345678901234567890}]}'
    ).replace("RUN", run.pk)
    answer = session.post(f"{api}/runs/log-batch", data=raw.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    points = {m.key: m for m in Metric.objects.filter(run=run)}
    assert points["n"].is_nan and points["i"].value == float("-inf")
    assert Param.objects.get(run=run, key="big").value == "123456789012345678901234567890"
    with pytest.raises(json.JSONDecodeError):
        __import__("orjson").loads(raw)


def test_a_failing_view_answers_500_json_and_the_plane_keeps_serving(
    live_asgi, user, project, run, token_for, monkeypatch
):
    """An unexpected error inside a view (here the database refusing a write) is an
    INTERNAL_ERROR answer, logged; the next call is served normally."""
    session, api = _api(live_asgi, token_for(user, project=project))

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "run_set_tag", broken)
    failed = session.post(f"{api}/runs/set-tag", json={"run_id": run.pk, "key": "a", "value": "b"})
    assert failed.status_code == 500 and failed.json()["error_code"] == "INTERNAL_ERROR"
    assert "fire" not in failed.text
    monkeypatch.undo()
    assert session.post(f"{api}/runs/set-tag", json={"run_id": run.pk, "key": "a", "value": "b"}).status_code == 200


def test_fixed_sql_reads_match_the_orm(project, user, run):
    """run_get and attach_run_data (SQL compiled once, ids as one parameter) give the
    ORM's objects and rows, converters applied (booleans, JSON), for one run, many, none."""
    other = services.run_create(experiment=run.experiment, user=user, name="r2")
    services.run_log_batch(
        run=run,
        metrics=[{"key": "m", "value": float("nan"), "timestamp": 5, "step": 1}],
        params=[("p", "1")],
        tags=[("t", "x")],
    )
    services.run_log_inputs(
        run=run, datasets=[{"dataset": {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"},
                            "tags": [{"key": "mlflow.data.context", "value": "train"}]}],
    )  # fmt: skip
    fetched = selectors.run_get(user=user, run_id=run.pk)
    assert fetched == run and fetched.experiment.project == project and fetched.name == "r1"
    assert fetched.experiment.project.my_role == "owner"

    one, two = selectors.attach_run_data([Run.objects.get(pk=run.pk), Run.objects.get(pk=other.pk)])
    assert one.metric_rows == [("m", 0.0, True, 1, 5)]
    assert one.param_rows == [("p", "1")] == list(Param.objects.filter(run=run).values_list("key", "value"))
    assert ("t", "x") in one.tag_rows
    assert one.input_rows[0][:2] == ("d", "abc") and one.input_rows[0][6] == {"mlflow.data.context": "train"}
    assert two.metric_rows == [] and two.param_rows == []
    assert selectors.attach_run_data([]) == []


def test_any_of_takes_many_ids_as_one_parameter(project, user, run, django_assert_num_queries):
    experiment = run.experiment
    runs = [services.run_create(experiment=experiment, user=user, name=f"n{i}") for i in range(30)]
    ids = [r.pk for r in runs] + ["no-such-run", "x' OR '1'='1"]
    assert sorted(Run.objects.filter(id__any_of=ids).values_list("pk", flat=True)) == sorted(r.pk for r in runs)
    assert list(Run.objects.filter(id__any_of=[])) == []
    with django_assert_num_queries(1):
        assert len(json.dumps([r.pk for r in Run.objects.filter(id__any_of=ids[:3])])) > 0


def test_a_batch_mixing_model_ids_keeps_each_points_model(project, user, run):
    """Points of one batch, some linked to a logged model and some not, go in as one
    statement with the run id shared and the model ids per point."""
    model = services.logged_model_create(experiment=run.experiment, user=user, name="m", source_run=run)
    services.run_log_batch(
        run=run,
        metrics=[
            {"key": "acc", "value": 0.5, "timestamp": 1, "step": 0, "model_id": model.pk},
            {"key": "acc", "value": 0.6, "timestamp": 2, "step": 1},
            {"key": "loss", "value": 0.1, "timestamp": 2, "step": 1, "model_id": model.pk},
        ],
    )
    stored = list(Metric.objects.filter(run=run).order_by("key", "step").values_list("key", "step", "model_id"))
    assert stored == [("acc", 0, model.pk), ("acc", 1, ""), ("loss", 1, model.pk)]
