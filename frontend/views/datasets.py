"""Dataset pages: the datasets I can see, one dataset's versions, a version (manifest,
schema, profile, sample rows, lineage), the upload form and the lineage of any node."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from data.datasets import diff, lineage, reader, selectors
from data.models import ProfileStatus
from frontend.views import dataset_charts
from frontend.views.common import get_or_404
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects.selectors import project_get, project_list


def _call(fn, **kwargs):
    try:
        return get_or_404(fn, **kwargs)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def dataset_list(request):
    projects = list(project_list(user=request.user))
    wanted = request.GET.get("project", "")
    groups = []
    for project in projects:
        if wanted and project.slug != wanted:
            continue
        datasets = list(selectors.dataset_list(project=project))
        if datasets or wanted:
            groups.append({"project": project, "datasets": datasets})
    can_upload = [p for p in projects if role_at_least(p.my_role, Role.DATA_SCIENTIST)]
    context = {"groups": groups, "projects": projects, "wanted": wanted, "can_upload": can_upload}
    return render(request, "frontend/datasets/list.html", context)


@login_required
def dataset_detail(request, slug: str, name: str):
    dataset = _call(selectors.dataset_get, user=request.user, project_slug=slug, name=name)
    versions = list(selectors.version_list(dataset=dataset)[:200])
    return render(
        request,
        "frontend/datasets/detail.html",
        {
            "dataset": dataset,
            "project": dataset.project,
            "versions": versions,
            "aliases": dataset.aliases.select_related("version"),
        },
    )


@login_required
def dataset_version(request, slug: str, name: str, ref: str):
    dataset = _call(selectors.dataset_get, user=request.user, project_slug=slug, name=name)
    version = _call(selectors.version_get, dataset=dataset, ref=ref)
    profile = version.profile if version.profile_status == ProfileStatus.READY else None
    charts = {}
    for index, column in enumerate((profile or {}).get("columns", [])):
        figure = dataset_charts.column_chart(column)
        if figure is not None:
            charts[f"col-chart-{index}"] = figure
    graph = lineage.version_graph(version=version).as_dict()
    head, head_error = _head(version)
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "version": version,
        "profile": profile,
        "charts": charts,
        "lineage_chart": dataset_charts.lineage_chart(graph),
        "lineage_nodes": [n for n in graph["nodes"] if not n.get("root")],
        "parts": _parts(version),
        "head": head,
        "head_error": head_error,
        "aliases": sorted(a.alias for a in version.aliases.all()),
        "tags": sorted((t.key, t.value) for t in version.tags.all()),
        "api_base": f"/api/v1/projects/{slug}/datasets/{dataset.name}/versions/{version.digest}",
    }
    return render(request, "frontend/datasets/version.html", context)


def _head(version) -> tuple[dict | None, str]:
    try:
        table = reader.head(version, 10)
    except (reader.PartMissing, ApplicationError) as exc:
        return None, str(exc)
    rows = table.to_pylist()
    return {"columns": table.schema.names, "rows": [[row[c] for c in table.schema.names] for row in rows]}, ""


def _parts(version) -> list[dict]:
    return [
        {
            "kind": p["kind"],
            "sha256": p["sha256"],
            "start": p["rows"][0],
            "stop": p["rows"][1],
            "rows": p["rows"][1] - p["rows"][0],
        }
        for p in version.manifest["parts"][:200]
    ]


@login_required
def dataset_upload(request):
    projects = [p for p in project_list(user=request.user) if role_at_least(p.my_role, Role.DATA_SCIENTIST)]
    return render(
        request,
        "frontend/datasets/upload.html",
        {"projects": projects, "selected": request.GET.get("project", ""), "name": request.GET.get("name", "")},
    )


@login_required
def lineage_page(request, slug: str):
    project = _call(project_get, user=request.user, slug=slug)
    node = request.GET.get("node", "")
    try:
        graph = lineage.neighbourhood(project=project, node=node, hops=2).as_dict()
    except ApplicationError as exc:
        return render(
            request,
            "frontend/datasets/lineage.html",
            {"project": project, "error": exc.message, "node": node},
            status=exc.status_code,
        )
    root = next((n for n in graph["nodes"] if n.get("root")), None)
    for item in graph["nodes"]:
        item["kind_label"] = dataset_charts.KIND_LABELS.get(item["kind"], item["kind"])
    return render(
        request,
        "frontend/datasets/lineage.html",
        {
            "project": project,
            "node": node,
            "root": root,
            "nodes": graph["nodes"],
            "chart": dataset_charts.lineage_chart(graph),
        },
    )


@login_required
def dataset_diff(request, slug: str, name: str):
    dataset = _call(selectors.dataset_get, user=request.user, project_slug=slug, name=name)
    versions = list(selectors.version_list(dataset=dataset)[:200])
    base_ref, other_ref = request.GET.get("base", ""), request.GET.get("other", "")
    result, error = None, ""
    if base_ref and other_ref:
        try:
            base = selectors.version_get(dataset=dataset, ref=base_ref)
            other = selectors.version_get(dataset=dataset, ref=other_ref)
            result = diff.version_diff(base, other)
        except (ApplicationError, reader.PartMissing) as exc:
            error = getattr(exc, "message", str(exc))
    context = {
        "dataset": dataset,
        "project": dataset.project,
        "versions": versions,
        "base": base_ref,
        "other": other_ref,
        "result": result,
        "columns": sorted((result or {}).get("columns", {}).items()),
        "error": error,
    }
    return render(request, "frontend/datasets/diff.html", context)
