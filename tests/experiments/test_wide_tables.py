"""Experiments with thousands of keys: the runs page names the count and the default
columns only; /api/v1/experiments/<id>/columns/ finds keys by any part of their name."""

import pytest

from experiments import services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def wide(user, project):
    """600 metric and 600 param keys over three runs."""
    experiment = services.experiment_create(project=project, name="wide", user=user)
    for i in range(3):
        run = services.run_create(experiment=experiment, user=user, name=f"w{i}")
        keys = range(i, 600, 3)
        services.run_log_batch(run=run, metrics=[(f"layer_{j:03d}.grad", j, 0, 1) for j in keys])
        params = [(f"layer_{j:03d}.width", str(j)) for j in keys]
        for start in range(0, len(params), 100):
            services.run_log_batch(run=run, params=params[start : start + 100])
    return experiment


def test_runs_page_counts_keys_and_lists_only_the_shown_columns(client, user, wide):
    client.force_login(user)
    response = client.get(f"/experiments/{wide.pk}/")
    html = response.content.decode()
    assert "12 shown of 1200 metric and param keys" in html
    assert [c.name for c in response.context["table"].columns][:2] == [
        "metrics.layer_000.grad",
        "metrics.layer_001.grad",
    ]
    assert "layer_599" not in html and html.count('name="columns"') == 12


def test_column_search_finds_keys_by_any_part_and_checks_input(api, wide):
    url = f"/api/v1/experiments/{wide.pk}/columns/"
    found = api.get(url, {"q": "ER_42"}).json()
    assert [c["name"] for c in found] == [f"metrics.layer_42{d}.grad" for d in range(10)] + [
        f"params.layer_42{d}.width" for d in range(10)
    ]
    assert len(api.get(url, {"limit": 7}).json()) == 14
    assert api.get(url, {"q": "no-such-key"}).json() == []
    for bad in ({"limit": 0}, {"limit": 201}, {"limit": "x"}, {"q": "k" * 251}):
        response = api.get(url, bad)
        assert response.status_code == 400 and response.json()["error"]["message"], bad
    stranger = UserFactory()
    make_project(owner=stranger)
    api.force_authenticate(stranger)
    assert api.get(url, {"q": "layer"}).status_code == 404
