"""Tracking pages at scale, in the browser: a metric of a million points (on PostgreSQL;
the embedded SQLite default loads 50,000, enough to be downsampled, in reasonable test
time) charted from at most 5,000 points that include its global minimum and maximum and
re-fetched at full resolution when zoomed; the compare view with 100 runs x 10 metrics."""

import math
import random

from django.db.models import Max, Min
import pytest

from experiments import series, services
from experiments.models import Metric
from tests.e2e.conftest import login
from tests.experiments.bulk_points import analyze, load_histories, on_postgres
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def noisy_curve(n: int, seed: int) -> list[float]:
    """A decaying, noisy loss with a dip and a spike at random steps: the extremes a
    naive every-k-th-point sampling would miss."""
    rng = random.Random(seed)
    values = [math.exp(-i / (n / 4)) + 0.2 * math.sin(i / 900) + rng.random() / 20 for i in range(n)]
    values[rng.randrange(n)] = -3.0 - rng.random()
    values[rng.randrange(n)] = 4.0 + rng.random()
    return values


@pytest.fixture
def long_run(live_asgi):
    """Made before the browser starts (Playwright's loop on this thread would refuse the
    services' after-commit event publishing)."""
    owner = UserFactory(username="lena")
    project = make_project(owner=owner, slug="long")
    experiment = services.experiment_create(project=project, name="long-training", user=owner)
    run = services.run_create(experiment=experiment, user=owner, name="one-million-steps")
    n = 1_000_000 if on_postgres() else 50_000
    load_histories([(run, "loss", noisy_curve(n, seed=3))])
    analyze()
    return owner, run, n


def chart_trace(page, chart: str, trace: int = 0) -> dict:
    return page.evaluate(
        "([id, i]) => { const t = document.getElementById(id).data[i]; return {x: t.x, y: t.y}; }", [chart, trace]
    )


def test_a_million_point_metric_charts_from_5k_points_with_its_extremes(live_asgi, long_run, browser, shot_dir):
    owner, run, n = long_run
    extremes = Metric.objects.filter(run=run, key="loss").aggregate(low=Min("value"), high=Max("value"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_asgi, owner.username)

    page.goto(f"{live_asgi}/runs/{run.pk}/")
    page.wait_for_selector("#chart-0 .main-svg")
    drawn = chart_trace(page, "chart-0")
    assert 1000 < len(drawn["y"]) <= series.MAX_POINTS
    assert drawn["x"][0] == 0 and drawn["x"][-1] == n - 1
    assert extremes["low"] in drawn["y"] and extremes["high"] in drawn["y"]
    page.screenshot(path=str(shot_dir / "run-long-history.png"), full_page=True)

    # When zoomed to 3,000 steps, the chart holds exactly the stored points of the window.
    lo = n // 2
    page.evaluate("lo => Plotly.relayout('chart-0', {'xaxis.range': [lo + 0.4, lo + 2999.6]})", lo)
    page.wait_for_selector(f"#chart-0[data-window='{lo}:{lo + 3000}']")
    window = chart_trace(page, "chart-0")
    stored = Metric.objects.filter(run=run, key="loss", step__gte=lo, step__lte=lo + 3000).order_by("step")
    assert window["x"] == list(range(lo, lo + 3001))
    assert window["y"] == list(stored.values_list("value", flat=True))
    page.screenshot(path=str(shot_dir / "run-long-history-zoomed.png"))

    page.evaluate("Plotly.relayout('chart-0', {'xaxis.autorange': true})")
    page.wait_for_selector("#chart-0[data-window='all']")
    assert chart_trace(page, "chart-0")["y"] == drawn["y"]


@pytest.fixture
def hundred_runs(live_asgi):
    owner = UserFactory(username="mika")
    project = make_project(owner=owner, slug="sweep")
    experiment = services.experiment_create(project=project, name="big-sweep", user=owner)
    steps = 1000 if on_postgres() else 100  # 1 M points on PostgreSQL, 100,000 on SQLite
    runs, histories = [], []
    for i in range(100):
        run = services.run_create(experiment=experiment, user=owner, name=f"trial-{i:03d}")
        services.run_log_batch(run=run, params={"lr": f"{0.001 * (1 + i % 10):.3f}", "depth": str(2 + i % 6)})
        for m in range(10):
            rate = (1 + i % 10) * (1 + m) / steps
            histories.append((run, f"metric_{m}", [math.exp(-s * rate) + i / 1000 for s in range(steps)]))
        runs.append(run)
    load_histories(histories)
    analyze()
    return owner, runs, steps


def test_compare_view_with_100_runs_and_10_metrics(live_asgi, hundred_runs, browser, shot_dir):
    owner, runs, steps = hundred_runs
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    login(page, live_asgi, owner.username)

    page.goto(f"{live_asgi}/experiments/compare/?runs={','.join(r.pk for r in runs)}&metric=metric_3")
    page.wait_for_selector("#overlay .main-svg")
    page.wait_for_selector("#parallel .main-svg")
    traces = page.evaluate("document.getElementById('overlay').data.map(t => t.y.length)")
    assert len(traces) == 100
    assert all(min(steps, series.overlay_points(100)) >= n > 1 for n in traces)
    assert page.locator("#compare-table thead th").count() == 101
    rows = page.locator("#compare-table tbody th[scope=row]").all_inner_texts()
    assert [r for r in rows if r.startswith("metrics.")] == [f"metrics.metric_{m}" for m in range(10)]
    assert page.locator("h1").inner_text() == "Comparing 100 runs"
    page.screenshot(path=str(shot_dir / "compare-100-runs.png"), full_page=True)


@pytest.fixture
def wide_experiment(live_asgi):
    """5,000 distinct keys in one experiment: ten runs log 250 metrics and 250 params
    each (feature_<j>_importance and feature_<j>_bins, j = run's share of 0..2499)."""
    owner = UserFactory(username="nora")
    project = make_project(owner=owner, slug="wide")
    experiment = services.experiment_create(project=project, name="feature-sweep", user=owner)
    runs = []
    for i in range(10):
        run = services.run_create(experiment=experiment, user=owner, name=f"wide-{i}")
        features = range(i, 2500, 10)
        services.run_log_batch(run=run, metrics=[(f"feature_{j:04d}_importance", j / 2500, 0, 1) for j in features])
        params = [(f"feature_{j:04d}_bins", str(j % 7 + 2)) for j in features]
        for start in range(0, len(params), 100):
            services.run_log_batch(run=run, params=params[start : start + 100])
        runs.append(run)
    return owner, experiment, runs


BUILTIN_COLUMNS = 6  # select, run, status, started, duration, user


def test_a_table_of_5000_keys_opens_with_a_chooser_and_remembers_pins(live_asgi, wide_experiment, browser, shot_dir):
    owner, experiment, runs = wide_experiment
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    login(page, live_asgi, owner.username)
    page.goto(f"{live_asgi}/experiments/{experiment.pk}/")

    # Opened without a choice: a few default columns, and no page lists all the keys.
    page.wait_for_selector("#runs-table")
    assert page.locator("#runs-table thead th").count() == BUILTIN_COLUMNS + 12
    assert "5000 metric and param keys" in page.locator("#columns-chooser summary").inner_text()
    assert "feature_2499" not in page.content()

    page.click("#columns-chooser summary")
    page.fill("#column-search", "0421")
    page.wait_for_selector("#column-results[data-query='0421']")
    assert page.locator("#column-results li").all_inner_texts() == [
        "metric feature_0421_importance\nadd",
        "param feature_0421_bins\nadd",
    ]
    page.click("#column-results button[data-column='metrics.feature_0421_importance']")
    page.click("#column-results button[data-column='params.feature_0421_bins']")
    page.click(".col-chip[data-column='params.feature_0421_bins'] .pin")
    page.click(".col-chip[data-column='metrics.feature_0421_importance'] .pin")
    page.fill("#column-search", "feature_00")
    page.wait_for_selector("#column-results[data-query='feature_00']")
    assert page.locator("#column-results li").count() == 50  # 25 of each kind, of 200 matches
    page.screenshot(path=str(shot_dir / "runs-wide-chooser.png"))

    page.click("#columns-chooser button:has-text('Apply columns')")
    page.wait_for_url("**columns=**feature_0421**")
    header = [h.strip().lower() for h in page.locator("#runs-table thead th").all_inner_texts()]
    pinned = header[BUILTIN_COLUMNS : BUILTIN_COLUMNS + 2]
    assert pinned == ["param feature_0421_bins", "metric feature_0421_importance"]
    row = page.locator("#runs-table tbody tr", has_text="wide-1")
    assert row.locator("td").nth(BUILTIN_COLUMNS).inner_text() == str(421 % 7 + 2)

    # Back on the experiment with no columns asked: the pinned ones, and only those.
    page.goto(f"{live_asgi}/experiments/{experiment.pk}/")
    page.wait_for_url("**columns=**")
    page.wait_for_selector("#runs-table")
    assert page.locator("#runs-table thead th").count() == BUILTIN_COLUMNS + 2
    assert page.locator("#runs-table thead th.pinned-col").count() == 2
    assert page.locator("#runs-table tbody tr").count() == 10
    page.screenshot(path=str(shot_dir / "runs-wide-pinned.png"), full_page=True)
