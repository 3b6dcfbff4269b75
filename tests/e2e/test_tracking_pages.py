"""Browser tests of the experiment and registry pages, with screenshots of the runs
table, run detail, compare view, registry model page and provenance view."""

import io
import math

import pytest

from experiments import services
from registry import services as registry_services
from tests.e2e.conftest import login
from tests.experiments.tracking_data import put_artifact
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
XSS_NAME = "<img src=x onerror=window.__xss=1>"


def loss_plot() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    ax.plot([math.exp(-i / 15) + 0.2 for i in range(60)], color="#3358d4")
    ax.set_xlabel("stage")
    ax.set_ylabel("val loss")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def tracking_data(owner):
    """An experiment like the demo's: baselines, a sweep of child runs with loss curves,
    artifacts on the best run, and a model with two versions."""
    project = make_project(owner=owner, slug="pumps", name="Pump failure prediction")
    experiment = services.experiment_create(project=project, name="pump-failure", user=owner)
    dataset = {"dataset": {"name": "pump-sensors", "digest": "9f2c1a7e", "source_type": "s3", "source": "s3://plant/x"}}
    base_tags = {"mlflow.source.name": "train.py", "mlflow.source.git.commit": "4e1f0c9ab12d77e0", "team": "maint"}
    t0 = 1_764_000_000_000
    parent = services.run_create(experiment=experiment, user=owner, name="gbm-sweep", tags=base_tags, start_time=t0)
    runs = []
    for i in range(24):
        lr, depth = (0.05, 0.1, 0.2)[i % 3], 2 + i % 4
        run = services.run_create(
            experiment=experiment,
            user=owner,
            name=XSS_NAME if i == 23 else f"gbm-lr{lr}-d{depth}-{i}",
            tags=base_tags,
            parent_run=parent,
            start_time=t0 + 1000 * i,
        )
        auc = 0.78 + 0.15 * math.sin(i / 3) ** 2
        curve = [
            ("val_loss", 0.7 * math.exp(-s * lr / 2) + 0.3 - auc / 10, s, t0 + 1000 * i + s * 50) for s in range(60)
        ]
        services.run_log_batch(
            run=run,
            params={
                "model": "gradient_boosting",
                "learning_rate": str(lr),
                "max_depth": str(depth),
                "n_estimators": "60",
            },
            metrics=[("roc_auc", auc, 0, t0), ("f1", auc - 0.1, 0, t0), ("recall", auc - 0.15, 0, t0), *curve],
        )
        services.run_log_inputs(
            run=run, datasets=[{**dataset, "tags": [{"key": "mlflow.data.context", "value": "training"}]}]
        )
        services.run_update(run=run, status="FAILED" if i == 5 else "FINISHED", end_time=t0 + 1000 * i + 42_000)
        runs.append(run)
    services.run_update(run=parent, status="FINISHED", end_time=t0 + 90_000)
    best = max(runs[:23], key=lambda r: r.latest_metrics.get(key="roc_auc").value)
    put_artifact(best, "plots/val_loss.png", loss_plot())
    put_artifact(
        best,
        "importance.csv",
        b"feature,importance\nvibration_rms,0.41\nbearing_temp_c,0.27\nhours_since_service,0.19\n",
    )
    put_artifact(best, "config.json", b'{"threshold": 0.5, "label": "failure_7d"}')
    model = registry_services.registered_model_create(project=project, name="pump-failure-classifier", user=owner)
    registry_services.registered_model_update(
        model=model, user=owner, description="Flags pumps likely to fail in 7 days."
    )
    v1 = registry_services.model_version_create(registered_model=model, source=f"runs:/{runs[0].pk}/model", user=owner)
    v2 = registry_services.model_version_create(registered_model=model, source=f"runs:/{best.pk}/model", user=owner)
    registry_services.alias_set(registered_model=model, alias="baseline", version=v1, user=owner)
    registry_services.alias_set(registered_model=model, alias="champion", version=v2, user=owner)
    return project, experiment, runs, best


def no_xss(page) -> None:
    assert page.evaluate("window.__xss") is None


@pytest.fixture
def tracking(live_asgi):
    """Made before the browser starts: Playwright's loop on this thread would refuse
    the services' after-commit event publishing."""
    owner = UserFactory(username="dana")
    return owner, *tracking_data(owner)


def test_runs_table_compare_run_detail_registry_and_provenance(live_asgi, tracking, browser, shot_dir):
    owner, project, experiment, runs, best = tracking
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    login(page, live_asgi, owner.username)

    page.click("nav >> text=Experiments")
    page.wait_for_selector("#experiment-table")
    assert page.locator("#experiment-table tbody tr").count() == 1

    page.click("text=pump-failure")
    page.fill("input[name=filter]", "metrics.roc_auc > 0.8 AND params.model = 'gradient_boosting'")
    page.click("button:has-text('Search')")
    page.wait_for_selector("#runs-table")
    page.click("#runs-table th >> text=roc_auc")
    page.wait_for_url("**order_by=**")
    column = page.evaluate(
        "[...document.querySelectorAll('#runs-table thead th')].findIndex(th => th.textContent.includes('roc_auc'))"
    )
    first_auc = float(page.locator("#runs-table tbody tr").first.locator("td").nth(column).inner_text())
    assert first_auc == pytest.approx(best.latest_metrics.get(key="roc_auc").value, abs=1e-3)
    no_xss(page)
    page.screenshot(path=str(shot_dir / "runs-table.png"), full_page=True)

    page.fill("input[name=filter]", "metrics.roc_auc >>> 1")
    page.click("button:has-text('Search')")
    assert "in filter" in page.locator("#filter-error").inner_text()
    page.screenshot(path=str(shot_dir / "runs-table-filter-error.png"))

    page.goto(f"{live_asgi}/experiments/{experiment.pk}/")
    boxes = page.locator("#runs-table tbody input[name=runs]")
    for i in range(4):
        boxes.nth(i).check()
    assert page.locator("#compare-count").inner_text() == "4 selected"
    page.click("#compare-btn")
    page.wait_for_selector("#parallel .main-svg")
    page.wait_for_selector("#overlay .main-svg")
    page.wait_for_selector("#scatter .main-svg")
    no_xss(page)
    page.screenshot(path=str(shot_dir / "compare.png"), full_page=True)

    page.goto(f"{live_asgi}/runs/{best.pk}/?path=plots&file=plots/val_loss.png#artifacts")
    page.wait_for_selector("#chart-0 .main-svg")
    assert page.locator("#artifact-preview img").evaluate("img => img.naturalWidth") > 0
    page.click(".segmented >> text=Time")
    page.wait_for_function("document.querySelector('#chart-0').layout.xaxis.type === 'date'")
    page.screenshot(path=str(shot_dir / "run-detail.png"), full_page=True)
    page.goto(f"{live_asgi}/runs/{best.pk}/?file=importance.csv#artifacts")
    assert page.locator("#artifact-preview th", has_text="importance").count() == 1
    page.screenshot(path=str(shot_dir / "run-detail-table-preview.png"))

    page.goto(f"{live_asgi}/runs/{runs[23].pk}/")
    no_xss(page)

    page.click("nav >> text=Models")
    page.click("#model-table >> text=pump-failure-classifier")
    page.wait_for_selector("#version-table")
    assert page.locator("#version-table tbody tr").count() == 2
    page.screenshot(path=str(shot_dir / "registry-model.png"), full_page=True)

    page.click("#version-table >> text=v2")
    page.wait_for_selector("#provenance")
    assert "pump-sensors" in page.locator("#provenance").inner_text()
    assert "4e1f0c9ab12d" in page.locator("#provenance").inner_text()
    page.screenshot(path=str(shot_dir / "provenance.png"), full_page=True)
    page.click("#provenance >> text=" + best.name)
    page.wait_for_url(f"**/runs/{best.pk}/")


def test_empty_states(live_asgi, browser, shot_dir):
    owner = UserFactory(username="erin")
    make_project(owner=owner, slug="fresh")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    login(page, live_asgi, owner.username)
    page.goto(f"{live_asgi}/experiments/")
    assert "MLFLOW_TRACKING_URI=" + live_asgi in page.locator("#experiments-empty").inner_text()
    page.screenshot(path=str(shot_dir / "experiments-empty.png"), full_page=True)
    page.goto(f"{live_asgi}/models/")
    assert page.locator("#models-empty").is_visible()
    page.screenshot(path=str(shot_dir / "models-empty.png"), full_page=True)


def test_a_run_page_follows_its_run_live(live_asgi, browser, shot_dir, token_for):
    """A run page open in the browser while a client logs: the metric chart, latest
    values and status appear without a reload, from the run's websocket events."""
    import requests

    owner = UserFactory(username="fay")
    project = make_project(owner=owner, slug="live")
    experiment = services.experiment_create(project=project, name="training", user=owner)
    run = services.run_create(experiment=experiment, user=owner, name="live-run")
    token = token_for(owner, project=project)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_asgi, owner.username)
    page.goto(f"{live_asgi}/runs/{run.pk}/")
    assert "No metrics logged" in page.locator("#metrics").inner_text()
    page.evaluate("window.__same_page = 1")
    page.wait_for_timeout(300)  # the websocket connects

    points = [{"key": "loss", "value": 1 / (s + 1), "timestamp": 1_764_000_000_000 + s, "step": s} for s in range(30)]
    answer = api.post(f"{live_asgi}/api/2.0/mlflow/runs/log-batch", json={"run_id": run.pk, "metrics": points})
    assert answer.status_code == 200
    page.wait_for_selector("#metrics .chart .main-svg", timeout=10_000)
    assert "loss" in page.locator("#metrics table").inner_text()
    ended = api.post(f"{live_asgi}/api/2.0/mlflow/runs/update", json={"run_id": run.pk, "status": "FINISHED"})
    assert ended.status_code == 200
    page.wait_for_function("document.querySelector('#run-status').innerText.includes('Finished')", timeout=10_000)
    assert page.evaluate("window.__same_page") == 1
    page.screenshot(path=str(shot_dir / "run-live.png"), full_page=True)
