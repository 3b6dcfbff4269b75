"""Chart series of long metric histories: downsampled in the database to each bucket's
first, last, lowest and highest point; whole when short; windows at full resolution;
the /api/v1/runs/metrics/series/ endpoint's checks."""

import math
import random

import pytest

from experiments import selectors_ui, series, services
from tests.experiments.bulk_points import T0, load_history
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db
N = 60_000


@pytest.fixture
def experiment(user, project):
    return services.experiment_create(project=project, name="long", user=user)


@pytest.fixture
def noisy(experiment, user):
    """A run whose `loss` has N noisy points with a dip and a spike at random steps."""
    rng = random.Random(7)
    values = [math.sin(i / 700) + rng.random() / 10 for i in range(N)]
    low_at, high_at = rng.randrange(N), rng.randrange(N)
    values[low_at], values[high_at] = -5.5 - rng.random(), 7.5 + rng.random()
    run = services.run_create(experiment=experiment, user=user, name="long")
    load_history(run, "loss", values)
    return run, values


def test_a_long_history_keeps_every_buckets_extremes_and_ends(noisy):
    run, values = noisy
    line = series.metric_series(run_ids=[run.pk], max_points=4000)[run.pk]["loss"]
    steps = [p[0] for p in line.points]
    assert line.count == N and line.sampled and len(line.points) <= 4000
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == N - 1
    assert [p[1] for p in line.points] == [T0 + s for s in steps]
    assert all(p[2] == values[p[0]] for p in line.points)  # real points, not averages
    width = math.ceil(N / 1999)
    for start in range(0, N, width):
        bucket = values[start : start + width]
        kept = {p[2] for p in line.points if start <= p[0] < start + width}
        assert {min(bucket), max(bucket)} <= kept


def test_a_zoomed_window_comes_whole_and_a_short_history_untouched(noisy, experiment, user):
    run, values = noisy
    window = series.metric_series(run_ids=[run.pk], min_step=20_000, max_step=22_999)[run.pk]["loss"]
    assert not window.sampled and window.count == 3000
    assert [p[2] for p in window.points] == values[20_000:23_000]
    short = services.run_create(experiment=experiment, user=user, name="short")
    services.run_log_batch(run=short, metrics=[("loss", math.nan, 0, T0), ("loss", 0.5, 1, T0 + 1)])
    points = series.metric_series(run_ids=[short.pk])[short.pk]["loss"].points
    assert math.isnan(points[0][2]) and points[1] == (1, T0 + 1, 0.5)


def test_nan_points_do_not_become_extremes_of_a_downsampled_history(experiment, user):
    run = services.run_create(experiment=experiment, user=user, name="gaps")
    values = [math.nan if i % 7 == 0 else 1.0 + i / N for i in range(1, 9000)]
    load_history(run, "acc", values)
    line = series.metric_series(run_ids=[run.pk], max_points=400)[run.pk]["acc"]
    assert line.sampled and min(p[2] for p in line.points) == min(v for v in values if v == v)


def test_series_api_returns_windows_and_refuses_bad_input(api, noisy, user):
    run, values = noisy
    url = "/api/v1/runs/metrics/series/"
    whole = api.get(url, {"run_ids": run.pk, "key": "loss"}).json()
    assert whole[0]["count"] == N and whole[0]["sampled"] and len(whole[0]["values"]) <= series.MAX_POINTS
    assert min(whole[0]["values"]) == min(values) and max(whole[0]["values"]) == max(values)
    window = api.get(url, {"run_ids": run.pk, "key": "loss", "min_step": 100, "max_step": 199}).json()[0]
    assert window["steps"] == list(range(100, 200)) and window["values"] == values[100:200]
    for bad, message in [
        ({"key": "loss"}, "between 1 and 100"),
        ({"run_ids": run.pk}, "key"),
        ({"run_ids": run.pk, "key": "loss", "max_points": 10}, "max_points"),
        ({"run_ids": run.pk, "key": "loss", "min_step": 5, "max_step": 1}, "after"),
        ({"run_ids": run.pk, "key": "loss", "min_step": "x"}, "integer"),
        ({"run_ids": run.pk, "key": "loss", "max_step": 2**64}, "64 bits"),
    ]:
        response = api.get(url, bad)
        assert response.status_code == 400 and message in response.json()["error"]["message"], bad
    other = UserFactory()
    make_project(owner=other)
    api.force_authenticate(other)
    assert api.get(url, {"run_ids": run.pk, "key": "loss"}).status_code == 404
    api.force_authenticate(None)
    assert api.get(url, {"run_ids": run.pk, "key": "loss"}).status_code in (401, 403)


def test_run_page_charts_a_long_history_with_its_zoom_source(client, noisy, user):
    run, values = noisy
    client.force_login(user)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert '"zoom": {"runs": ["' + run.pk + '"], "key": "loss", "max_points": 5000, "sampled": true}' in html


def test_run_detail_reads_the_curves_of_its_first_30_metrics_only(experiment, user):
    run = services.run_create(experiment=experiment, user=user, name="wide")
    curves = [(f"k{j:02d}", j + s / 10, s, T0 + s) for j in range(40) for s in range(3)]
    services.run_log_batch(run=run, metrics=[*curves, ("a_single", 1.0, 0, T0)])
    detail = selectors_ui.run_detail(user=user, run_id=run.pk)
    assert sorted(detail.histories) == [f"k{j:02d}" for j in range(30)]
    assert detail.histories["k07"] == [(s, T0 + s, 7 + s / 10) for s in range(3)]
    assert len(detail.metrics) == 41  # the latest values still list every metric
