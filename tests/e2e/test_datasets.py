"""Browser: a data scientist uploads a CSV, sees its version and profile, a job trains
on it (MLP_DATASETS + mlplatform.client.datasets) and registers a model, the model is
deployed, and the lineage runs from the uploaded data to the endpoint."""

import json
from pathlib import Path
import textwrap

import pytest

from data.datasets import services as dataset_services
from data.datasets.tasks import dataset_version_profile_task
from data.models import Dataset, DatasetVersion, ProfileStatus
from deployments import links
from deployments import services as deploy_services
from experiments.models import DatasetInput
from jobs import runner
from jobs import services as job_services
from jobs.models import JobLogLine, JobStatus
from registry.models import ModelVersion
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TRAIN = """
from mlplatform.client import datasets
import mlflow
from sklearn.linear_model import LogisticRegression

df = datasets.load()
print("rows", len(df), "columns", list(df.columns))
clf = LogisticRegression().fit(df[["temp", "vibration"]], df["alarm"])
mlflow.log_metric("accuracy", clf.score(df[["temp", "vibration"]], df["alarm"]))
mlflow.sklearn.log_model(clf, name="model", registered_model_name="pumps/pump-alarm", serialization_format="skops")
"""


def pump_csv(path, rows=400, warmer=0):
    lines = ["site,temp,vibration,alarm"]
    for i in range(rows):
        temp, vibration = 20 + warmer + (i * 7) % 30, (i * 13) % 10 / 10
        lines.append(f"{['north', 'south', 'east'][i % 3]},{temp},{vibration},{int(temp > 40)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_profile_train_deploy_and_follow_the_lineage(
    live_asgi, browser, shot_dir, settings, tmp_path, monkeypatch
):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.DATA_DIR = tmp_path
    settings.MLP_PUBLIC_URL = live_asgi
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    owner = UserFactory(username="dana")
    project = make_project(owner=owner, slug="pumps", name="Pump alarms")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    login(page, live_asgi, owner.username)

    # Given no datasets, the page says what to do.
    page.goto(f"{live_asgi}/data/datasets/")
    assert "No datasets yet" in page.inner_text("#datasets-empty")
    page.screenshot(path=str(shot_dir / "datasets-empty.png"), full_page=True)

    # When a CSV is uploaded through the form, its version page opens.
    page.click("#datasets-empty a.btn")
    page.fill("#id_name", "pump-readings")
    page.set_input_files("#id_file", str(pump_csv(tmp_path / "readings.csv")))
    page.click("#upload-submit")
    page.wait_for_url("**/data/datasets/pumps/pump-readings/*/")
    version = DatasetVersion.objects.get(dataset__name="pump-readings")
    assert version.digest in page.url and version.rows == 400
    assert page.inner_text("#version-id") == version.digest

    # The profile is computed off the request path, then drawn.
    dataset_version_profile_task(version.pk)
    version.refresh_from_db()
    assert version.profile_status == ProfileStatus.READY
    page.reload()
    page.wait_for_selector("#profile .chart .main-svg")
    assert "north" in page.inner_text("#profile-table")
    page.screenshot(path=str(shot_dir / "dataset-version-profile.png"), full_page=True)

    # A job that asks for the @training version trains on it and registers a model.
    dataset_services.alias_set(dataset=version.dataset, alias="training", version=version, user=owner)
    job = job_services.job_submit(
        project=project,
        user=owner,
        script=textwrap.dedent(TRAIN),
        env={"MLP_DATASETS": "pump-readings@training"},
        dispatch=False,
    )
    runner.job_execute(job_id=job.pk, worker="test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, list(JobLogLine.objects.filter(job=job).values_list("text", flat=True))
    source = DatasetInput.objects.select_related("dataset").get(run_id=job.run_id).dataset.source
    assert version.uri in source
    model_version = ModelVersion.objects.get(registered_model__name="pump-alarm")
    assert model_version.run_id == job.run_id

    endpoint, _ = deploy_services.endpoint_create(project=project, actor=owner, name="Pump alarm")
    deploy_services.revision_deploy(
        endpoint=endpoint, actor=owner, model_name="pumps/pump-alarm", version=model_version.version, trusted=True
    )

    # Then the version's lineage reaches the endpoint, and the model's reaches the data.
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    answer = page.goto(f"{live_asgi}/data/datasets/pumps/pump-readings/{version.digest}/")
    assert answer.status == 200, answer.text()[-3000:]
    page.wait_for_selector("#lineage-chart .main-svg", timeout=5000) if not errors else None
    assert not errors, errors
    chart = page.inner_text("#lineage-chart")
    assert "pump-alarm v1" in chart and "pump-readings@" in chart
    page.screenshot(path=str(shot_dir / "dataset-version-lineage.png"), full_page=True)

    page.goto(f"{live_asgi}/models/pumps/pump-alarm/versions/1/")
    assert f"pump-readings@{version.digest[:10]}" in page.inner_text("#trained-on")
    page.click("#lineage-link")
    page.wait_for_selector("#lineage-nodes")
    nodes = page.inner_text("#lineage-nodes")
    for expected in ("run", "model version", "endpoint revision", "dataset version"):
        assert expected in nodes, nodes
    page.goto(f"{live_asgi}/data/lineage/pumps/?node=version:{version.digest}")
    nodes = page.inner_text("#lineage-nodes")
    assert "uploaded file" in nodes and "run" in nodes and "model version" in nodes
    page.screenshot(path=str(shot_dir / "dataset-lineage-page.png"), full_page=True)
    # The node's OpenLineage events download as JSON: the run that read the version.
    with page.expect_download() as download:
        page.click("#openlineage-download")
    events = json.loads(Path(download.value.path()).read_text())
    assert [e["inputs"][0]["facets"]["version"]["datasetVersion"] for e in events] == [version.digest]

    page.goto(f"{live_asgi}/runs/{job.run_id}/")
    assert f"pump-readings@{version.digest[:12]}" in page.inner_text("#datasets")
    # A second upload with hotter pumps: the comparison shows what moved.
    hotter = pump_csv(tmp_path / "hotter.csv", warmer=10)
    second, _ = dataset_services.version_from_upload(
        project=project, name="pump-readings", path=hotter, filename="hotter.csv", user=owner
    )
    page.goto(f"{live_asgi}/data/datasets/pumps/pump-readings/")
    page.click("#diff-link")
    page.wait_for_selector("#diff-columns")
    assert "shifted" in page.inner_text("#diff-columns") and second.digest[:12] in page.url
    page.screenshot(path=str(shot_dir / "dataset-diff.png"), full_page=True)

    page.goto(f"{live_asgi}/data/datasets/")
    assert "pump-readings" in page.inner_text("#datasets-pumps")
    page.screenshot(path=str(shot_dir / "datasets-list.png"), full_page=True)
    assert Dataset.objects.count() == 1
