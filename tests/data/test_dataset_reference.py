"""A dataset version as the drift reference of a deployment, through the real deploy
service: the run's training input (`mlp-dataset://...`) gives its profile's reference;
a deploy can name a version (`dataset:<project>/<name>@<ref>`); a name that resolves to
nothing is 400 and deploys nothing; the endpoint page says where the reference came
from and how big it is."""

import json

from django.test import Client
import pytest
from rest_framework.test import APIClient

from data.datasets.tasks import dataset_version_profile_task
from data.models import DatasetVersion
from deployments import links, selectors, services
from deployments.models import Revision
from tests.deployments.conftest import model_dirs, register_version  # noqa: F401 - model_dirs is a fixture
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def gate_passed(monkeypatch):
    # The project's Production gate is the projects app's business (links' one seam).
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)


@pytest.fixture
def setup(dataset_dirs, model_dirs, gate_passed):  # noqa: F811
    from sklearn.datasets import load_iris

    owner = UserFactory()
    project = make_project(owner=owner)
    api = APIClient()
    api.force_authenticate(owner)
    frame = load_iris(as_frame=True).frame
    version = _upload(api, project.slug, "iris", frame.to_csv(index=False).encode())
    mv = register_version(project=project, user=owner, model_dir=model_dirs["iris"])
    endpoint = services.endpoint_create(project=project, actor=owner, name="Iris")[0]
    return {"owner": owner, "project": project, "api": api, "version": version, "mv": mv, "endpoint": endpoint}


def _upload(api, slug, name, content) -> DatasetVersion:
    import io

    handle = io.BytesIO(content)
    handle.name = "train.csv"
    response = api.post(f"/api/v1/projects/{slug}/datasets/{name}/upload/", {"file": handle})
    assert response.status_code == 201, response.content
    return DatasetVersion.objects.get(digest=response.json()["id"], dataset__project__slug=slug)


def _log_training_input(run, version) -> None:
    from experiments import services as exp_services

    exp_services.run_log_inputs(
        run=run,
        datasets=[
            {
                "dataset": {"name": "iris", "digest": version.digest[:8], "source": json.dumps({"uri": version.uri})},
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
            }
        ],
    )


def _deploy(s, **kwargs) -> Revision:
    endpoint = s["endpoint"]
    return services.revision_deploy(
        endpoint=endpoint, actor=s["owner"], model_name=f"{s['project'].slug}/iris", version=s["mv"].version, **kwargs
    )


def test_the_runs_training_dataset_version_gives_its_profile_as_the_reference(setup):
    s = setup
    version = s["version"]
    _log_training_input(s["mv"].run, version)

    # Not profiled yet: nothing stored to read, so the deploy falls back to burn-in.
    before = _deploy(s)
    assert before.reference == {} and before.reference_source.startswith("burn-in")

    dataset_version_profile_task(version.pk)
    version.refresh_from_db()
    revision = _deploy(s)

    label = f"training data (run dataset input): dataset version {s['project'].slug}/iris@{version.digest[:12]}"
    assert revision.reference_source == label and revision.burn_in_rows == 0
    # The model's signature columns only (the profile also holds `target`), exactly as profiled.
    stored = version.profile["reference"]
    assert "target" in stored and "target" not in revision.reference
    assert revision.reference == {k: stored[k] for k in revision.reference}
    assert revision.reference["petal length (cm)"]["n"] == 150
    assert selectors.drift_reference(revision=revision)["status"] == f"{label}: 150 rows"


def test_a_deploy_names_a_dataset_version_and_the_endpoint_page_shows_it(setup):
    s = setup
    api, project, version = s["api"], s["project"], s["version"]
    dataset_version_profile_task(version.pk)
    assert api.put(
        f"/api/v1/projects/{project.slug}/datasets/iris/aliases/reference/", {"version": version.digest}, format="json"
    ).status_code in (200, 201)
    url = f"/api/v1/endpoints/{s['endpoint'].slug}/revisions/"
    body = {"model": f"{project.slug}/iris", "version": s["mv"].version}

    label = f"named at deploy: dataset version {project.slug}/iris@{version.digest[:12]}"
    for named in (f"dataset:{project.slug}/iris@reference", "dataset:iris", f"dataset:iris@{version.digest[:10]}"):
        response = api.post(url, {**body, "reference": named}, format="json")
        assert response.status_code == 201, response.content
        revision = Revision.objects.get(endpoint=s["endpoint"], number=response.json()["number"])
        assert revision.reference_source == label
        assert revision.reference["sepal width (cm)"]["n"] == 150

    services.revision_report_load(revision_id=revision.pk, loaded=True)
    browser = Client()
    browser.force_login(s["owner"])
    page = browser.get(f"/deployments/{s['endpoint'].slug}/").content.decode()
    assert f"{label}: 150 rows" in page


def test_a_reference_that_names_nothing_usable_is_400_and_deploys_nothing(setup):
    s = setup
    api, project, version = s["api"], s["project"], s["version"]
    other = make_project(owner=s["owner"])
    _upload(api, other.slug, "iris", b"a,b\n1,2\n")
    pending = _upload(api, project.slug, "fresh", b"x\n1\n2\n3\n")
    dataset_version_profile_task(version.pk)
    url = f"/api/v1/endpoints/{s['endpoint'].slug}/revisions/"
    body = {"model": f"{project.slug}/iris", "version": s["mv"].version}
    bad = {
        "dataset:nope@latest": "Dataset 'nope' not found",
        "dataset:iris@deadbeef00": "has no version 'deadbeef00'",
        "dataset:iris": "has no version 'reference'",  # no @reference alias set
        f"dataset:{other.slug}/iris@latest": f"not found in project '{project.slug}'",
        "dataset:fresh@latest": f"{pending.digest[:12]} is still being profiled",
        "features:iris": "names no stored reference (known: 'dataset:…')",
        "": "Name a stored reference",
    }
    for reference, reason in bad.items():
        response = api.post(url, {**body, "reference": reference}, format="json")
        assert response.status_code == 400, (reference, response.content)
        assert reason in response.content.decode(), (reference, response.content)
    assert api.post(url, {**body, "reference": 7}, format="json").status_code == 400
    assert not Revision.objects.filter(endpoint=s["endpoint"]).exists()


def test_the_deploy_form_takes_a_dataset_version(setup):
    s = setup
    version = s["version"]
    dataset_version_profile_task(version.pk)
    browser = Client()
    browser.force_login(s["owner"])
    page = browser.get(f"/deployments/{s['endpoint'].slug}/").content.decode()
    assert f'<option value="iris@{version.digest[:12]}">' in page
    form = {
        "model": f"{s['project'].slug}/iris",
        "version": s["mv"].version,
        "role": "champion",
        "traffic": 0.1,
        "reference_mode": "burn_in",
        "burn_in_rows": 200,
        "reference_dataset": f"iris@{version.digest[:12]}",
    }
    browser.post(f"/deployments/{s['endpoint'].slug}/deploy/", form)
    revision = Revision.objects.get(endpoint=s["endpoint"])
    assert revision.reference_source.startswith("named at deploy: dataset version") and revision.burn_in_rows == 0
    browser.post(f"/deployments/{s['endpoint'].slug}/deploy/", {**form, "reference_dataset": "iris@nothing"})
    assert Revision.objects.filter(endpoint=s["endpoint"]).count() == 1


def test_a_training_input_naming_another_projects_version_is_not_read(setup):
    from sklearn.datasets import load_iris

    s = setup
    other = make_project(owner=s["owner"])
    theirs = _upload(s["api"], other.slug, "iris", load_iris(as_frame=True).frame.to_csv(index=False).encode())
    dataset_version_profile_task(theirs.pk)
    _log_training_input(s["mv"].run, theirs)

    revision = _deploy(s)

    assert revision.reference == {} and revision.reference_source.startswith("burn-in")
