"""Lineage around one node, read from the records the platform already keeps (the
database is the source of truth; nothing is copied into an edge table that could drift):

    stream ─► segment ─► dataset version ◄─ uploaded file
    dataset version ─► run (a dataset input whose source is the version's URI) ─► job
    run ─► model version ─► endpoint revision ─► endpoint ─► prediction stream

Neighbourhoods are bounded (FANOUT per node and hop), never the whole graph. Nodes are
`<kind>:<key>`; every node is in the asking project, whose access was checked."""

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from data.models import DataFile, DatasetVersion, Segment, Stream
from deployments.models import Revision
from experiments.models import Dataset as MlflowDataset
from experiments.models import DatasetInput, Run
from jobs.models import Job
from mlplatform.errors import NotFound, ValidationFailed
from projects.models import Project
from registry.models import ModelVersion

FANOUT = 25
KINDS = ("stream", "segment", "file", "version", "run", "job", "model_version", "revision", "endpoint")


@dataclass
class Graph:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    truncated: bool = False

    def add(self, node: dict[str, Any]) -> str:
        existing = self.nodes.get(node["id"])
        if existing is None or existing.get("placeholder"):
            placeholder = bool(node.get("placeholder"))
            self.nodes[node["id"]] = {**(existing or {}), **node, "placeholder": placeholder, **_keep_root(existing)}
        return node["id"]

    def link(self, source: str, target: str) -> None:
        if source == target:
            return
        self.edges.add((source, target))

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes.values()),
            "edges": [{"source": s, "target": t} for s, t in sorted(self.edges)],
            "truncated": self.truncated,
        }


def _keep_root(existing: dict[str, Any] | None) -> dict[str, Any]:
    return {"root": True} if existing and existing.get("root") else {}


def _node(kind: str, key: Any, label: str, url: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": f"{kind}:{key}", "kind": kind, "label": label, "url": url, **extra}


# --- nodes ----------------------------------------------------------------------------------


def version_node(version: DatasetVersion) -> dict[str, Any]:
    dataset = version.dataset
    url = reverse("dataset-version", args=[dataset.project.slug, dataset.name, version.digest])
    return _node("version", version.digest, f"{dataset.name}@{version.digest[:10]}", url, rows=version.rows)


def run_node(run: Run) -> dict[str, Any]:
    return _node("run", run.pk, run.name or run.pk[:10], reverse("run-detail", args=[run.pk]))


def model_version_node(mv: ModelVersion) -> dict[str, Any]:
    model = mv.registered_model
    url = reverse("model-version", args=[model.project.slug, model.name, mv.version])
    return _node("model_version", mv.pk, f"{model.name} v{mv.version}", url)


def revision_node(revision: Revision) -> dict[str, Any]:
    endpoint = revision.endpoint
    url = reverse("endpoint-detail", args=[endpoint.slug])
    return _node("revision", revision.pk, f"{endpoint.slug} r{revision.number}", url)


def segment_node(segment: Segment) -> dict[str, Any]:
    label = f"{segment.stream.slug} #{segment.first_seq}-{segment.last_seq}"
    return _node("segment", segment.sha256, label, path=segment.path, records=segment.records)


def stream_node(stream: Stream) -> dict[str, Any]:
    return _node("stream", stream.pk, stream.slug)


# --- neighbours -------------------------------------------------------------------------------


def _versions_with_part(project: Project, sha256: str) -> list[DatasetVersion]:
    """Manifests are JSON; a portable filter is the text match, confirmed in Python."""
    qs = DatasetVersion.objects.filter(dataset__project=project).select_related("dataset", "dataset__project")
    found = [v for v in qs.order_by("-created_at")[:2000] if any(p["sha256"] == sha256 for p in v.manifest["parts"])]
    return found[:FANOUT]


def runs_of_version(version: DatasetVersion) -> list[Run]:
    """Runs that logged the version as an MLflow dataset input (source = its URI)."""
    datasets = MlflowDataset.objects.filter(
        experiment__project_id=version.dataset.project_id, source__contains=version.uri
    ).values("pk")
    run_ids = DatasetInput.objects.filter(dataset__in=datasets).values("run_id")
    return list(Run.objects.filter(pk__in=run_ids).order_by("-start_time")[:FANOUT])


def versions_of_run(run: Run, project: Project) -> list[DatasetVersion]:
    from data.datasets.selectors import source_uris, versions_by_uri

    sources = DatasetInput.objects.filter(run=run).values_list("dataset__source", flat=True)
    uris = []
    for source in sources:
        uris.extend(source_uris(source))
    return list(versions_by_uri(project=project, uris=uris).values())[:FANOUT]


def _expand(graph: Graph, node_id: str, project: Project) -> list[str]:
    """Adds the node's neighbours (both directions) and returns their ids."""
    kind, _, key = node_id.partition(":")
    handler = _HANDLERS.get(kind)
    return handler(graph, node_id, key, project) if handler else []


def _expand_version(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    version = (
        DatasetVersion.objects.select_related("dataset", "dataset__project")
        .filter(dataset__project=project, digest=key)
        .first()
    )
    if version is None:
        return []
    graph.add(version_node(version))
    out = []
    for part in version.manifest["parts"][:FANOUT]:
        if part["kind"] == "segment":
            segment = (
                Segment.objects.select_related("stream").filter(sha256=part["sha256"], stream__project=project).first()
            )
            node = (
                segment_node(segment)
                if segment
                else _node("segment", part["sha256"], f"segment {part['sha256'][:10]} (gone)")
            )
        else:
            stored = DataFile.objects.filter(sha256=part["sha256"]).first()
            node = _node("file", part["sha256"], f"upload {part['sha256'][:10]}" + ("" if stored else " (gone)"))
        out.append(graph.add({**node, "rows_used": part["rows"]}))
        graph.link(node["id"], node_id)
    graph.truncated |= len(version.manifest["parts"]) > FANOUT
    for run in runs_of_version(version):
        out.append(graph.add(run_node(run)))
        graph.link(node_id, out[-1])
    return out


def _expand_segment(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    out = []
    segment = Segment.objects.select_related("stream").filter(sha256=key, stream__project=project).first()
    if segment is not None:
        graph.add(segment_node(segment))
        out.append(graph.add(stream_node(segment.stream)))
        graph.link(out[-1], node_id)
    for version in _versions_with_part(project, key):
        out.append(graph.add(version_node(version)))
        graph.link(node_id, out[-1])
    return out


def _expand_file(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    out = []
    versions = _versions_with_part(project, key)
    if versions:
        graph.add(_node("file", key, f"upload {key[:10]}"))
    for version in versions:
        out.append(graph.add(version_node(version)))
        graph.link(node_id, out[-1])
    return out


def _expand_stream(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    stream = Stream.objects.filter(pk=int(key), project=project).first() if key.isdigit() else None
    if stream is None:
        return []
    graph.add(stream_node(stream))
    out = []
    for segment in Segment.objects.filter(stream=stream).select_related("stream").order_by("-first_seq")[:FANOUT]:
        out.append(graph.add(segment_node(segment)))
        graph.link(node_id, out[-1])
    if stream.score_endpoint:
        endpoint = _endpoint(project, stream.score_endpoint)
        if endpoint is not None:
            out.append(graph.add(endpoint))
            graph.link(out[-1], node_id) if stream.slug.endswith("-predictions") else graph.link(node_id, out[-1])
    return out


def _endpoint(project: Project, slug: str) -> dict[str, Any] | None:
    from deployments.models import Endpoint

    endpoint = Endpoint.objects.filter(project=project, slug=slug).first()
    if endpoint is None:
        return None
    return _node("endpoint", endpoint.slug, endpoint.name, reverse("endpoint-detail", args=[endpoint.slug]))


def _expand_run(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    run = Run.objects.filter(pk=key, experiment__project=project).first()
    if run is None:
        return []
    graph.add(run_node(run))
    out = []
    for version in versions_of_run(run, project):
        out.append(graph.add(version_node(version)))
        graph.link(out[-1], node_id)
    job = Job.objects.filter(run_id=run.pk, project=project).first()
    if job is not None:
        out.append(graph.add(_node("job", job.pk, f"job #{job.pk} {job.name}", reverse("job-detail", args=[job.pk]))))
        graph.link(out[-1], node_id)
    versions = ModelVersion.objects.filter(run=run).select_related("registered_model", "registered_model__project")
    for mv in versions[:FANOUT]:
        out.append(graph.add(model_version_node(mv)))
        graph.link(node_id, out[-1])
    return out


def _expand_job(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    job = Job.objects.filter(pk=int(key), project=project).first() if key.isdigit() else None
    run = Run.objects.filter(pk=job.run_id).first() if job and job.run_id else None
    if run is None:
        return []
    graph.add(_node("job", job.pk, f"job #{job.pk} {job.name}", reverse("job-detail", args=[job.pk])))
    out = [graph.add(run_node(run))]
    graph.link(node_id, out[0])
    return out


def _expand_model_version(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    mv = (
        ModelVersion.objects.select_related("registered_model", "registered_model__project", "run")
        .filter(pk=int(key) if key.isdigit() else 0, registered_model__project=project)
        .first()
    )
    if mv is None:
        return []
    graph.add(model_version_node(mv))
    out = []
    if mv.run is not None:
        out.append(graph.add(run_node(mv.run)))
        graph.link(out[-1], node_id)
    for revision in Revision.objects.filter(model_version=mv).select_related("endpoint").order_by("-pk")[:FANOUT]:
        out.append(graph.add(revision_node(revision)))
        graph.link(node_id, out[-1])
    return out


def _expand_revision(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    revision = (
        Revision.objects.select_related("endpoint", "model_version__registered_model__project")
        .filter(pk=int(key) if key.isdigit() else 0, endpoint__project=project)
        .first()
    )
    if revision is None:
        return []
    graph.add(revision_node(revision))
    out = []
    if revision.model_version is not None:
        out.append(graph.add(model_version_node(revision.model_version)))
        graph.link(out[-1], node_id)
    endpoint = _endpoint(project, revision.endpoint.slug)
    if endpoint is not None:
        out.append(graph.add(endpoint))
        graph.link(node_id, out[-1])
    return out


def _expand_endpoint(graph: Graph, node_id: str, key: str, project: Project) -> list[str]:
    endpoint = _endpoint(project, key)
    if endpoint is None:
        return []
    graph.add(endpoint)
    out = []
    revisions = Revision.objects.filter(endpoint__slug=key, endpoint__project=project).select_related("endpoint")
    for revision in revisions.order_by("-number")[:FANOUT]:
        out.append(graph.add(revision_node(revision)))
        graph.link(out[-1], node_id)
    for stream in Stream.objects.filter(project=project, score_endpoint=key)[:FANOUT]:
        predictions = Stream.objects.filter(project=project, slug=f"{stream.slug}-predictions").first()
        if predictions is not None:
            out.append(graph.add({**stream_node(predictions), "label": f"{predictions.slug} (predictions)"}))
            graph.link(node_id, out[-1])
    return out


_HANDLERS = {
    "version": _expand_version,
    "segment": _expand_segment,
    "file": _expand_file,
    "stream": _expand_stream,
    "run": _expand_run,
    "job": _expand_job,
    "model_version": _expand_model_version,
    "revision": _expand_revision,
    "endpoint": _expand_endpoint,
}


def neighbourhood(*, project: Project, node: str, hops: int = 2, root: dict[str, Any] | None = None) -> Graph:
    """The node and everything within `hops` (1-3) of it."""
    kind, _, key = (node or "").partition(":")
    if kind not in KINDS or not key:
        raise ValidationFailed(f"A lineage node is <kind>:<key> with kind one of {', '.join(KINDS)}.")
    if not 1 <= hops <= 3:
        raise ValidationFailed("hops is 1, 2 or 3.")
    graph = Graph()
    graph.add({**(root or _node(kind, key, key, placeholder=True)), "root": True})
    frontier, seen = [node], {node}
    for _ in range(hops):
        following = []
        for current in frontier:
            for found in _expand(graph, current, project):
                if found not in seen:
                    seen.add(found)
                    following.append(found)
        frontier = following
    if graph.nodes[node].get("placeholder"):
        raise NotFound(f"No lineage node '{node[:100]}' in project '{project.slug}'.")
    return graph


def version_graph(*, version: DatasetVersion, hops: int = 3) -> Graph:
    """Raw segments → version → runs → model versions (and on, up to `hops`)."""
    return neighbourhood(
        project=version.dataset.project, node=f"version:{version.digest}", hops=hops, root=version_node(version)
    )
