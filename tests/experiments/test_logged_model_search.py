"""logged-models/search: dataset-aware metric points, tokens bound to their query,
other projects, statuses, and a query count that does not grow with the page."""

import json

from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest

from experiments import services
from experiments.models import LoggedModelMetric, LoggedModelStatus
from mlplatform.services import api_token_create
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db
SEARCH = "/api/2.0/mlflow/logged-models/search"


@pytest.fixture
def search(user, project):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='t', project=project)[1]}")

    def do(body):
        response = client.post(SEARCH, json.dumps(body), content_type="application/json")
        return response.status_code, response.json()

    return do


@pytest.fixture
def experiment(project, user):
    return services.experiment_get_or_create(project=project, name="models", user=user)


def _model(experiment, user, name, acc=None, dataset="eval", **kwargs):
    run = services.run_create(experiment=experiment, user=user)
    model = services.logged_model_create(experiment=experiment, user=user, name=name, source_run=run, **kwargs)
    if acc is not None:
        point = {"key": "acc", "value": acc, "timestamp": 1, "step": 0, "model_id": model.pk}
        services.run_log_batch(run=run, metrics=[{**point, "dataset_name": dataset, "dataset_digest": "d1"}])
    return model


def test_points_logged_against_a_model_keep_their_dataset(experiment, user):
    model = _model(experiment, user, "m", acc=0.8)
    stranger_model = _model(
        services.experiment_get_or_create(project=make_project(), name="x", user=None), None, "theirs"
    )
    run = model.source_run
    services.run_log_batch(run=run, metrics=[("loss", 0.1, 0, 2, stranger_model.pk)])

    points = list(LoggedModelMetric.objects.values_list("model_id", "key", "dataset_name", "dataset_digest"))
    assert points == [(model.pk, "acc", "eval", "d1")]


def test_the_migration_copies_points_logged_before_it(experiment, user):
    from importlib import import_module

    model = _model(experiment, user, "m", acc=0.8)
    LoggedModelMetric.objects.all().delete()
    import_module("experiments.migrations.0002_logged_model_metrics").copy_model_points(apps, None)
    assert list(LoggedModelMetric.objects.values_list("model_id", "key", "value")) == [(model.pk, "acc", 0.8)]


def test_statuses_read_as_mlflow_writes_them(search, experiment, user):
    ready = _model(experiment, user, "ready")
    services.logged_model_finalize(model=ready, status=LoggedModelStatus.READY, user=user)
    _model(experiment, user, "pending")
    for value in ("READY", "LOGGED_MODEL_READY"):
        status, body = search({"experiment_ids": [str(experiment.pk)], "filter": f"status = '{value}'"})
        assert status == 200 and [m["info"]["name"] for m in body["models"]] == ["ready"]


def test_a_page_token_belongs_to_its_query(search, experiment, user):
    for i in range(3):
        _model(experiment, user, f"m{i}", params={"n": str(i)})
    query = {"experiment_ids": [str(experiment.pk)], "filter": "params.n != 9", "max_results": 2}
    status, first = search(query)
    assert status == 200 and len(first["models"]) == 2
    status, second = search({**query, "page_token": first["next_page_token"]})
    assert status == 200 and len(second["models"]) == 1 and "next_page_token" not in second
    status, body = search({**query, "filter": "params.n = '1'", "page_token": first["next_page_token"]})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    status, body = search({**query, "page_token": "%%%"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "extra",
    [
        {"datasets": [{"dataset_digest": "d1"}]},
        {"order_by": [{"field_name": "metrics.acc", "dataset_digest": "d1"}]},
        {"order_by": [{"field_name": "name", "ascending": "yes"}]},
        {"order_by": ["name"]},
        {"filter": "tags.team > 'a'"},
        {"filter": "creation_timestamp LIKE '1%'"},
        {"filter": "datasets.name = 'eval'"},
    ],
)
def test_malformed_searches_are_invalid_parameter_value(search, experiment, extra):
    status, body = search({"experiment_ids": [str(experiment.pk)], **extra})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body


def test_another_projects_experiment_is_not_found(search):
    stranger = UserFactory()
    hidden = services.experiment_get_or_create(project=make_project(owner=stranger), name="secret", user=stranger)
    services.logged_model_create(experiment=hidden, user=stranger, name="secret-model")
    status, body = search({"experiment_ids": [str(hidden.pk)], "filter": "name LIKE '%'"})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_query_count_does_not_grow_with_the_page(search, experiment, user):
    query = {
        "experiment_ids": [str(experiment.pk)],
        "filter": "metrics.acc > 0 AND params.n = '1' AND tags.t = 'x'",
        "datasets": [{"dataset_name": "eval"}],
        "order_by": [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval"}],
    }

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            status, body = search(query)
        assert status == 200
        return len(ctx.captured_queries), len(body["models"])

    def add(n: int) -> None:
        for i in range(n):
            _model(experiment, user, f"m{i}", acc=0.5 + i / 100, params={"n": "1"}, tags={"t": "x"})

    add(2)
    search(query)  # the token's auth cache warms up once
    few, n_few = count()
    add(6)
    many, n_many = count()
    assert (n_few, n_many) == (2, 8) and many == few
