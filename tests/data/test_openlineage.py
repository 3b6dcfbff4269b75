"""The OpenLineage export of a node's lineage: RunEvents whose shape a hand-written
subset of OpenLineage's RunEvent JSON Schema (spec 2-0-2: required fields, types,
formats, facet envelopes) accepts, and whose content is the run, the dataset versions it
read and the model versions it produced."""

import io
import uuid

import fastjsonschema
import orjson
import pytest
from rest_framework.test import APIClient

from data.models import DatasetVersion
from experiments import services as exp_services
from registry import services as registry_services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db

FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {"_producer": {"type": "string", "format": "uri"}, "_schemaURL": {"type": "string", "format": "uri"}},
}
FACETS = {"type": "object", "additionalProperties": FACET}
DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "facets": FACETS},
}
RUN_EVENT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": FACETS},
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "facets": FACETS},
        },
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}
validate = fastjsonschema.compile({"type": "array", "items": RUN_EVENT})


@pytest.fixture
def trained(dataset_dirs):
    """A CSV upload → version; a run that read it and failed, another that read it and
    produced model v1; a viewer and an outsider."""
    owner, viewer = UserFactory(), UserFactory()
    project = make_project(owner=owner, members={viewer: "viewer"})
    api = APIClient()
    api.force_authenticate(owner)
    handle = io.BytesIO(b"x,kind\n1,a\n2,b\n3,a\n")
    handle.name = "train.csv"
    digest = api.post(f"/api/v1/projects/{project.slug}/datasets/pumps/upload/", {"file": handle}).json()["id"]
    version = DatasetVersion.objects.get(digest=digest)
    experiment = exp_services.experiment_get_or_create(project=project, name="train-pumps", user=owner)
    runs = []
    for status in ("FAILED", "FINISHED"):
        run = exp_services.run_create(experiment=experiment, user=owner, name=f"run-{status.lower()}")
        source = orjson.dumps({"uri": version.uri}).decode()
        exp_services.run_log_inputs(run=run, datasets=[{"dataset": {"name": "pumps", "digest": "d", "source": source}}])
        exp_services.run_update(run=run, status=status)
        runs.append(run)
    model = registry_services.registered_model_create(project=project, name="pump-model", user=owner)
    mv = registry_services.model_version_create(
        registered_model=model, source=f"runs:/{runs[1].pk}/model", user=owner, run_id=runs[1].pk
    )
    return {"project": project, "viewer": viewer, "version": version, "runs": runs, "mv": mv}


def _get(user, slug, node, **params):
    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/v1/projects/{slug}/lineage/openlineage/", {"node": node, **params})


def test_the_runs_around_a_dataset_version_export_as_openlineage_run_events(trained):
    project, version, (failed, finished), mv = trained["project"], trained["version"], trained["runs"], trained["mv"]
    response = _get(trained["viewer"], project.slug, f"version:{version.digest}", hops=1)
    assert response.status_code == 200
    events = response.json()
    validate(events)
    assert [e["run"]["runId"] for e in events] == [str(uuid.UUID(hex=failed.pk)), str(uuid.UUID(hex=finished.pk))]
    assert [e["eventType"] for e in events] == ["FAIL", "COMPLETE"]
    event = events[1]
    assert event["job"] == {
        "namespace": f"mlp://{project.slug}",
        "name": "train-pumps",
        "facets": {"jobType": {**event["job"]["facets"]["jobType"], "integration": "MLFLOW", "jobType": "JOB"}},
    }
    assert event["run"]["facets"]["mlp_run"]["mlflowRunId"] == finished.pk
    (read,) = event["inputs"]
    assert (read["namespace"], read["name"]) == (f"mlp-dataset://{project.slug}", "pumps")
    assert read["facets"]["version"]["datasetVersion"] == version.digest
    assert read["facets"]["version"]["_schemaURL"].endswith(
        "DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
    )
    assert (
        read["facets"]["mlp_dataset_version"]["uri"] == version.uri
        and read["facets"]["mlp_dataset_version"]["rows"] == 3
    )
    assert [f["name"] for f in read["facets"]["schema"]["fields"]] == ["x", "kind"]
    (made,) = event["outputs"]
    assert (made["namespace"], made["name"], made["facets"]["version"]["datasetVersion"]) == (
        f"mlp-model://{project.slug}",
        "pump-model",
        "1",
    )
    assert made["facets"]["mlp_model_version"]["uri"] == "models:/pump-model/1"
    assert events[0]["outputs"] == []
    # From the model version, the one run that produced it.
    upstream = _get(trained["viewer"], project.slug, f"model_version:{mv.pk}", hops=1).json()
    validate(upstream)
    assert [e["run"]["runId"] for e in upstream] == [str(uuid.UUID(hex=finished.pk))]


def test_the_custom_facets_point_at_a_schema_the_platform_serves(trained):
    project, version = trained["project"], trained["version"]
    event = _get(trained["viewer"], project.slug, f"version:{version.digest}", hops=1).json()[1]
    client = APIClient()
    client.force_authenticate(trained["viewer"])
    url = event["run"]["facets"]["mlp_run"]["_schemaURL"]
    path, _, pointer = url.partition("#")
    schema = client.get(path.removeprefix("http://testserver")).json()
    assert pointer == "/$defs/MlpRunFacet" and "MlpRunFacet" in schema["$defs"]
    for facet in (
        event["inputs"][0]["facets"]["mlp_dataset_version"],
        event["outputs"][0]["facets"]["mlp_model_version"],
    ):
        assert facet["_schemaURL"].partition("#")[2].removeprefix("/$defs/") in schema["$defs"]


def test_the_schema_subset_rejects_a_malformed_event(trained):
    project, version = trained["project"], trained["version"]
    event = _get(trained["viewer"], project.slug, f"version:{version.digest}", hops=1).json()[1]
    for broken in (
        {**event, "run": {"runId": "not-a-uuid"}},
        {k: v for k, v in event.items() if k != "producer"},
        {**event, "inputs": [{"namespace": "x"}]},
        {**event, "eventType": "DONE"},
    ):
        with pytest.raises(fastjsonschema.JsonSchemaException):
            validate([broken])


def test_bad_nodes_are_400_and_other_projects_404(trained):
    project, outsider = trained["project"], UserFactory()
    assert _get(trained["viewer"], project.slug, "nonsense").status_code == 400
    assert _get(trained["viewer"], project.slug, "version:abc", hops=9).status_code == 400
    assert _get(trained["viewer"], project.slug, "version:" + "0" * 64).status_code == 404
    node = f"version:{trained['version'].digest}"
    assert _get(outsider, project.slug, node).status_code == 404
    other = make_project(owner=outsider)
    assert _get(outsider, other.slug, node).status_code == 404
    assert APIClient().get(f"/api/v1/projects/{project.slug}/lineage/openlineage/", {"node": node}).status_code in (
        401,
        403,
    )


def test_the_lineage_page_offers_the_events_as_a_download(trained):
    import html
    import re

    from django.test import Client

    project, version = trained["project"], trained["version"]
    browser = Client()
    browser.force_login(trained["viewer"])
    page = browser.get(f"/data/lineage/{project.slug}/", {"node": f"version:{version.digest}"}).content.decode()
    (href,) = re.findall(r'id="openlineage-download" href="([^"]+)"', page)
    response = browser.get(html.unescape(href))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="openlineage-{project.slug}-version.json"'
    events = orjson.loads(response.content)
    validate(events)
    assert len(events) == 2
