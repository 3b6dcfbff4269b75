"""OpenLineage RunEvents for the runs around one lineage node (the download of a node's
lineage; spec 2-0-2, https://openlineage.io/spec/2-0-2/OpenLineage.json).

One event per run, in its current state (START / RUNNING / COMPLETE / FAIL / ABORT):
the job is the run's experiment (and the platform job that ran it, if any), the run id
is the MLflow run id as a UUID, inputs are the dataset versions the run logged
(namespace `mlp-dataset://<project>`, the standard `version` facet holding the
version id) and outputs the model versions registered from it (namespace
`mlp-model://<project>`). Our own facets are `mlp_`-prefixed and described by the
schema at FACETS_PATH."""

from collections.abc import Callable
import datetime as dt
from typing import Any
import uuid

from django.urls import reverse

from data.datasets import lineage
from data.models import DatasetVersion
from experiments.models import Run, RunStatus
from jobs.models import Job
from projects.models import Project
from registry.models import ModelVersion

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_SPEC = "https://openlineage.io/spec/facets"
STANDARD_FACETS = {
    "version": f"{_SPEC}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "schema": f"{_SPEC}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "jobType": f"{_SPEC}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
}
FACETS_PATH = "/api/v1/lineage/openlineage/facets/"
EVENT_TYPES = {
    RunStatus.SCHEDULED: "START",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.FINISHED: "COMPLETE",
    RunStatus.FAILED: "FAIL",
    RunStatus.KILLED: "ABORT",
}

Absolute = Callable[[str], str]


def run_events(*, project: Project, node: str, hops: int, absolute: Absolute) -> list[dict[str, Any]]:
    """The events of every run within `hops` of `node` (bounded like the lineage graph),
    oldest first. `absolute` turns a path into this platform's URL (the producer)."""
    graph = lineage.neighbourhood(project=project, node=node, hops=hops)
    run_ids = {key for kind, _, key in (n.partition(":") for n in graph.nodes) if kind == "run"}
    job_ids = [int(key) for kind, _, key in (n.partition(":") for n in graph.nodes) if kind == "job" and key.isdigit()]
    run_ids |= set(
        Job.objects.filter(pk__in=job_ids, project=project).exclude(run_id=None).values_list("run_id", flat=True)
    )
    runs = Run.objects.filter(pk__in=run_ids, experiment__project=project).select_related("experiment")
    return [run_event(run=run, project=project, absolute=absolute) for run in runs.order_by("start_time", "id")]


def run_event(*, run: Run, project: Project, absolute: Absolute) -> dict[str, Any]:
    producer = absolute("/")
    facet = _facet_maker(producer, absolute(FACETS_PATH))
    job = Job.objects.filter(run_id=run.pk, project=project).first()
    return {
        "eventType": EVENT_TYPES.get(run.status, "OTHER"),
        "eventTime": _time(run.end_time if run.status in EVENT_TYPES and run.end_time else run.start_time),
        "producer": producer,
        "schemaURL": SCHEMA_URL,
        "run": {
            "runId": str(_run_uuid(run.pk)),
            "facets": {
                "mlp_run": facet(
                    "MlpRunFacet",
                    mlflowRunId=run.pk,
                    name=run.name,
                    status=run.status,
                    url=absolute(reverse("run-detail", args=[run.pk])),
                    jobId=job.pk if job else None,
                )
            },
        },
        "job": _job(run, job, project, facet),
        "inputs": [_input(v, facet, absolute) for v in lineage.versions_of_run(run, project)],
        "outputs": [_output(mv, facet, absolute) for mv in _model_versions(run)],
    }


def _job(run: Run, job: Job | None, project: Project, facet) -> dict[str, Any]:
    name = run.experiment.name + (f"/{job.name or f'job-{job.pk}'}" if job else "")
    job_type = facet("jobType", processingType="BATCH", integration="MLFLOW", jobType="JOB")
    return {"namespace": f"mlp://{project.slug}", "name": name, "facets": {"jobType": job_type}}


def _input(version: DatasetVersion, facet, absolute: Absolute) -> dict[str, Any]:
    dataset = version.dataset
    facets = {
        "version": facet("version", datasetVersion=version.digest),
        "mlp_dataset_version": facet(
            "MlpDatasetVersionFacet",
            uri=version.uri,
            rows=version.rows,
            status=version.status,
            url=absolute(reverse("dataset-version", args=[dataset.project.slug, dataset.name, version.digest])),
        ),
    }
    fields = (version.schema or {}).get("fields") or []
    if fields:
        facets["schema"] = facet("schema", fields=[{"name": f["name"], "type": str(f["type"])} for f in fields])
    return {"namespace": f"mlp-dataset://{dataset.project.slug}", "name": dataset.name, "facets": facets}


def _output(mv: ModelVersion, facet, absolute: Absolute) -> dict[str, Any]:
    model = mv.registered_model
    facets = {
        "version": facet("version", datasetVersion=str(mv.version)),
        "mlp_model_version": facet(
            "MlpModelVersionFacet",
            version=mv.version,
            uri=f"models:/{model.name}/{mv.version}",
            url=absolute(reverse("model-version", args=[model.project.slug, model.name, mv.version])),
        ),
    }
    return {"namespace": f"mlp-model://{model.project.slug}", "name": model.name, "facets": facets}


def _model_versions(run: Run):
    qs = ModelVersion.objects.filter(run=run).select_related("registered_model", "registered_model__project")
    return qs.order_by("registered_model__name", "version")[: lineage.FANOUT]


def _facet_maker(producer: str, ours: str):
    def facet(kind: str, **fields: Any) -> dict[str, Any]:
        schema_url = STANDARD_FACETS.get(kind) or f"{ours}#/$defs/{kind}"
        return {"_producer": producer, "_schemaURL": schema_url, **fields}

    return facet


def _run_uuid(run_id: str) -> uuid.UUID:
    """MLflow run ids are 32 hex digits: the same 128 bits as a UUID."""
    try:
        return uuid.UUID(hex=run_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"mlp-run:{run_id}")


def _time(ms: int | None) -> str:
    return dt.datetime.fromtimestamp((ms or 0) / 1000, tz=dt.UTC).isoformat()


def _string(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _facet_schema(description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/BaseFacet"},
            {"type": "object", "description": description, "properties": properties, "required": required},
        ]
    }


FACETS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "MlpRunFacet": _facet_schema(
            "The MLflow run behind the OpenLineage run.",
            {
                "mlflowRunId": _string("The MLflow run id (32 hex digits)."),
                "name": _string("The run's name."),
                "status": _string("MLflow status: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED."),
                "url": _string("The run's page."),
                "jobId": {"type": ["integer", "null"], "description": "The platform job that ran it."},
            },
            ["mlflowRunId", "status"],
        ),
        "MlpDatasetVersionFacet": _facet_schema(
            "An immutable dataset version (its id is the sha256 of its manifest).",
            {
                "uri": _string("mlp-dataset://<project>/<name>@<id>"),
                "rows": {"type": "integer"},
                "status": _string("ready or broken."),
                "url": _string("The version's page."),
            },
            ["uri", "rows"],
        ),
        "MlpModelVersionFacet": _facet_schema(
            "A registered model version.",
            {"version": {"type": "integer"}, "uri": _string("models:/<name>/<version>"), "url": _string("Its page.")},
            ["version", "uri"],
        ),
    },
}
