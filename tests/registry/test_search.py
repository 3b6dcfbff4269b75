"""Registry search (MLflow's filter language) through the MLflow-compatible API, our
REST API and the registry page: names across projects, prompts, errors, query counts."""

import json

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest
from rest_framework.test import APIClient

from experiments import services as exp_services
from mlplatform.services import api_token_create
from projects.services.projects import personal_project_get_or_create
from registry import services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"


@pytest.fixture
def mlflow_call(user, project):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='t', project=project)[1]}"}
    client = Client()

    def do(path, body):
        response = client.post(f"{API}/{path}", json.dumps(body), content_type="application/json", **headers)
        return response.status_code, response.json()

    return do


@pytest.fixture
def run(project, user):
    experiment = exp_services.experiment_get_or_create(project=project, name="exp", user=user)
    return exp_services.run_create(experiment=experiment, user=user)


def _model(project, user, name, run=None, versions=0, tags=()):
    model = services.registered_model_create(project=project, name=name, user=user, tags=list(tags))
    for _ in range(versions):
        mv = services.model_version_create(registered_model=model, source=f"runs:/{run.pk}/model", user=user)
        services.model_version_set_tag(version=mv, key="k", value="v")
    if versions:
        services.alias_set(registered_model=model, alias="champion", version=mv, user=user)
    return model


def _names(body):
    return [m["name"] for m in body.get("registered_models", [])]


def test_names_of_other_visible_projects_carry_their_slug(user, project):
    """Given a token without a project scope (plain names are the personal project's), a
    model there and one in another project of the caller's, `name` filters and sorts on
    the name the client sees (`<slug>/<name>`); a project the caller is not in stays out."""
    personal = personal_project_get_or_create(user=user)
    _model(personal, user, "churn")
    _model(project, user, "churn")
    _model(make_project(owner=UserFactory(), slug="hidden"), user, "churn")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='t')[1]}")

    def names(body):
        return _names(client.post(f"{API}/registered-models/search", body, content_type="application/json").json())

    assert names({"filter": "name LIKE '%churn'"}) == ["churn", f"{project.slug}/churn"]
    assert names({"filter": f"name = '{project.slug}/churn'"}) == [f"{project.slug}/churn"]
    assert names({"filter": "name = 'churn'", "order_by": ["name DESC"]}) == ["churn"]
    # the full name of a model in the default project names it too, as in get and create
    assert names({"filter": f"name = '{personal.slug}/churn'"}) == ["churn"]
    assert names({"filter": f"name != '{personal.slug}/churn'"}) == [f"{project.slug}/churn"]
    assert names({"filter": "name LIKE 'hidden/%'"}) == []


def test_prompts_are_left_out_unless_asked_for(mlflow_call, user, project):
    _model(project, user, "model")
    _model(project, user, "prompt", tags=[("mlflow.prompt.is_prompt", "true")])
    assert _names(mlflow_call("registered-models/search", {})[1]) == ["model"]
    asked = {"filter": "tags.`mlflow.prompt.is_prompt` = 'true'"}
    assert _names(mlflow_call("registered-models/search", asked)[1]) == ["prompt"]
    not_prompts = {"filter": "tags.`mlflow.prompt.is_prompt` != 'true'"}
    assert _names(mlflow_call("registered-models/search", not_prompts)[1]) == ["model"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("registered-models/search", {"filter": "name = 'a' OR name = 'b'"}),
        ("registered-models/search", {"filter": "metrics.acc > 1"}),
        ("registered-models/search", {"filter": "tags.team IN ('a')"}),
        ("registered-models/search", {"order_by": ["name", "name DESC"]}),
        ("registered-models/search", {"page_token": "not base64!"}),
        ("model-versions/search", {"filter": "version_number LIKE '1'"}),
        ("model-versions/search", {"filter": "run_id = 5"}),
        ("model-versions/search", {"max_results": 0}),
        ("model-versions/search", {"order_by": ["run_id"]}),
    ],
)
def test_malformed_searches_are_invalid_parameter_value(mlflow_call, path, body):
    status, payload = mlflow_call(path, body)
    assert status == 400 and payload["error_code"] == "INVALID_PARAMETER_VALUE", payload


def _count(call, path, body) -> int:
    with CaptureQueriesContext(connection) as ctx:
        status, _ = call(path, body)
    assert status == 200
    return len(ctx.captured_queries)


def test_search_query_counts_do_not_grow_with_the_page(mlflow_call, user, project, run):
    """Tags, aliases and latest versions come in a fixed number of queries per page."""
    for i in range(2):
        _model(project, user, f"small-{i}", run, versions=2, tags=[("team", "a")])
    mlflow_call("registered-models/search", {})  # the token's auth cache warms up once
    few = [_count(mlflow_call, p, {"filter": f}) for p, f in _SEARCHES]
    for i in range(8):
        _model(project, user, f"small-x{i}", run, versions=3, tags=[("team", "a")])
    assert [_count(mlflow_call, p, {"filter": f}) for p, f in _SEARCHES] == few


_SEARCHES = [
    ("registered-models/search", "name LIKE 'small%' AND tags.team = 'a'"),
    ("model-versions/search", "name LIKE 'small%' AND tags.k = 'v' AND version_number > 0"),
]


def test_rest_api_lists_accept_the_same_filter(user, project, run):
    _model(project, user, "iris-clf", run, versions=3, tags=[("team", "growth")])
    _model(project, user, "iris-reg", tags=[("team", "risk")])
    client = APIClient()
    client.force_authenticate(user)

    response = client.get("/api/v1/models/", {"filter": "name LIKE 'iris%' AND tags.team = 'growth'"})
    assert response.status_code == 200 and [m["name"] for m in response.json()["results"]] == ["iris-clf"]
    response = client.get(
        f"/api/v1/projects/{project.slug}/models/iris-clf/versions/", {"filter": "version_number >= 2"}
    )
    assert response.status_code == 200 and [v["version"] for v in response.json()] == [3, 2]
    assert client.get("/api/v1/models/", {"filter": "name >> 'x'"}).status_code == 400


def test_registry_page_search_box(user, project):
    _model(project, user, "iris-clf")
    _model(project, user, "churn")
    client = Client()
    client.force_login(user)
    html = client.get("/models/", {"filter": "name LIKE 'iris%'"}).content.decode()
    assert "iris-clf" in html and ">churn<" not in html and 'id="models-form"' in html
    html = client.get("/models/", {"filter": "name = "}).content.decode()
    assert 'id="filter-error"' in html
    html = client.get("/models/", {"filter": "name = 'nothing'"}).content.decode()
    assert 'id="models-none-match"' in html
