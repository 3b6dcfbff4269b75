"""Browser: an ML engineer deploys a version with a dataset version as its drift
reference (picked from the deploy form's suggestions), and the champion card says where
the reference came from and how many rows it holds."""

import io

import pytest
from rest_framework.test import APIClient
from sklearn.datasets import load_iris

from data.datasets.tasks import dataset_version_profile_task
from data.models import DatasetVersion
from deployments import links, services
from deployments.models import Revision
from tests.deployments.conftest import make_model_dirs, register_version
from tests.e2e.conftest import elsewhere, login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_deploy_with_a_dataset_version_as_the_drift_reference(
    live_asgi, browser, shot_dir, settings, tmp_path, monkeypatch
):
    settings.DATASETS_DIR = tmp_path / "datasets"
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    owner = UserFactory(username="rosa")
    project = make_project(owner=owner, slug="flowers", name="Flowers")
    api = APIClient()
    api.force_authenticate(owner)
    handle = io.BytesIO(load_iris(as_frame=True).frame.to_csv(index=False).encode())
    handle.name = "iris.csv"
    digest = api.post("/api/v1/projects/flowers/datasets/iris/upload/", {"file": handle}).json()["id"]
    dataset_version_profile_task(DatasetVersion.objects.get(digest=digest).pk)
    mv = register_version(project=project, user=owner, model_dir=make_model_dirs()["iris"])
    endpoint = services.endpoint_create(project=project, actor=owner, name="Iris")[0]

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    login(page, live_asgi, owner.username)
    page.goto(f"{live_asgi}/deployments/{endpoint.slug}/")
    suggestions = page.locator("#picker-datasets option").evaluate_all("els => els.map(e => e.value)")
    assert f"iris@{digest[:12]}" in suggestions
    page.fill("input[name=model]", "flowers/iris")
    page.fill("input[name=version]", str(mv.version))
    page.select_option("select[name=reference_mode]", "burn_in")
    page.fill("input[name=reference_dataset]", f"iris@{digest[:12]}")
    page.screenshot(path=str(shot_dir / "deploy-dataset-reference-form.png"), full_page=True)
    page.click("button:has-text('Deploy')")
    page.wait_for_selector("text=Revision 1 is deploying.")

    revision = Revision.objects.get(endpoint=endpoint)
    elsewhere(services.revision_report_load, revision_id=revision.pk, loaded=True)
    page.reload()
    card = page.locator("#champion-card [data-rev-reference]").inner_text()
    assert card == f"Drift reference: named at deploy: dataset version flowers/iris@{digest[:12]}: 150 rows"
    page.screenshot(path=str(shot_dir / "deploy-dataset-reference-card.png"), full_page=True)

    # A name that resolves to nothing is refused with the reason, and nothing deploys.
    page.fill("input[name=model]", "flowers/iris")
    page.fill("input[name=version]", str(mv.version))
    page.fill("input[name=reference_dataset]", "iris@nothing")
    page.click("button:has-text('Deploy')")
    page.wait_for_selector("text=has no version 'nothing'")
    assert Revision.objects.filter(endpoint=endpoint).count() == 1
