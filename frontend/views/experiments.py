"""Experiment pages: experiments lists, the runs table (columns, sorting, the MLflow
filter language, pagination, CSV), run detail with charts and an artifact browser,
and the compare view. Reads only: runs are logged through the MLflow client."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from data.datasets.selectors import input_versions
from experiments import selectors, selectors_ui, series
from experiments.artifacts_ui import artifact_download, artifact_list, artifact_preview
from experiments.export import runs_csv_response
from experiments.models import Run
from frontend.views import lifecycle
from frontend.views import tracking_charts as charts
from frontend.views.common import get_or_404
from mlplatform.errors import ApplicationError, NotFound, ValidationFailed
from mlplatform.errors import PermissionDenied as NotAllowed
from projects import selectors as project_selectors
from registry.models import ModelVersion

PAGE_SIZES = [25, 50, 100, 250, 1000]


def _call(fn, **kwargs):
    """Application errors as HTTP: NotFound -> 404, PermissionDenied -> 403."""
    try:
        return get_or_404(fn, **kwargs)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


def tracking_uri(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@login_required
def experiment_home(request):
    experiments = list(selectors_ui.experiment_overview(user=request.user)[:500])
    projects = list(project_selectors.project_list(user=request.user)[:1])
    return render(
        request,
        "frontend/experiments/list.html",
        {
            "experiments": experiments,
            "tracking_uri": tracking_uri(request),
            "project": None,
            "snippet_slug": projects[0].slug if projects else "my-project",
        },
    )


@login_required
def project_experiments(request, slug: str):
    project = _call(project_selectors.project_get, user=request.user, slug=slug)
    experiments = list(selectors_ui.experiment_overview(user=request.user, project=project))
    return render(
        request,
        "frontend/experiments/list.html",
        {
            "experiments": experiments,
            "tracking_uri": tracking_uri(request),
            "project": project,
            "snippet_slug": project.slug,
        },
    )


VIEWS = [("ACTIVE_ONLY", "Active runs"), ("DELETED_ONLY", "Deleted runs"), ("ALL", "All runs")]


def _table_query(request) -> dict:
    view = request.GET.get("view", "")
    return {
        "filter_string": request.GET.get("filter", "").strip(),
        "order_by": request.GET.get("order_by", "").strip(),
        "columns": request.GET.getlist("columns"),
        "view_type": view if view in dict(VIEWS) else "ACTIVE_ONLY",
    }


def _url(base: str, params: dict) -> str:
    pairs = [(k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values]) if v]
    return f"{base}?{urlencode(pairs)}" if pairs else base


def _sort_links(request, columns: list[str], current: str) -> dict[str, dict]:
    """For each sortable column: the URL that sorts by it (descending first for
    metrics, flipping on a second click) and the current direction arrow."""
    links = {}
    base = {k: request.GET.getlist(k) for k in ("filter", "columns", "page_size", "view")}
    for column in columns:
        ascending_first = not column.startswith("metrics.")
        asc, desc = f"{column} ASC", f"{column} DESC"
        if current == asc:
            target, arrow = desc, "▲"
        elif current == desc:
            target, arrow = asc, "▼"
        else:
            target, arrow = (asc if ascending_first else desc), ""
        links[column] = {"url": _url(request.path, {**base, "order_by": target}), "arrow": arrow}
    return links


def _order_name(column) -> str:
    return f"{column.kind}.`{column.key}`"


@login_required
def experiment_runs(request, experiment_id: int):
    query = _table_query(request)
    page_size = _int(request.GET.get("page_size"), selectors_ui.DEFAULT_PAGE_SIZE)
    page_size = page_size if page_size in PAGE_SIZES else selectors_ui.DEFAULT_PAGE_SIZE
    error = None
    try:
        table = selectors_ui.runs_table(
            user=request.user,
            experiment_id=experiment_id,
            page=_int(request.GET.get("page"), 1),
            page_size=page_size,
            all_keys=False,
            **query,
        )
        if table.page > table.pages:  # an old link past the end shows the last page
            table = selectors_ui.runs_table(
                user=request.user,
                experiment_id=experiment_id,
                page=table.pages,
                page_size=page_size,
                all_keys=False,
                **query,
            )
    except ValidationFailed as exc:
        # A typo in the search box is the user's to fix: show it, keep what they typed.
        error = exc.message
        table = _call(
            selectors_ui.runs_table,
            user=request.user,
            experiment_id=experiment_id,
            page_size=page_size,
            columns=[c for c in query["columns"] if _valid_column(c)],
            all_keys=False,
        )
        table.runs, table.total = [], 0
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return render(request, "frontend/experiments/runs.html", _runs_context(request, table, query, error))


def _valid_column(value: str) -> bool:
    try:
        selectors_ui.parse_columns([value])
        return True
    except ValidationFailed:
        return False


def _runs_context(request, table, query: dict, error: str | None) -> dict:
    order_names = {c.name: _order_name(c) for c in table.columns}
    builtin = {"name": "attributes.run_name", "status": "attributes.status", "start": "attributes.start_time"}
    links = _sort_links(request, [*builtin.values(), *order_names.values()], table.order_by)
    keep = {k: request.GET.getlist(k) for k in ("filter", "order_by", "columns", "page_size", "view")}
    return {
        "experiment": table.experiment,
        "project": table.experiment.project,
        "table": table,
        "error": error,
        "filter": query["filter_string"],
        "order_by": table.order_by,
        "columns": [{"col": c, "sort": links[order_names[c.name]]} for c in table.columns],
        "builtin_sort": {k: links[v] for k, v in builtin.items()},
        "key_count": table.metric_key_count + table.param_key_count,
        "page_sizes": PAGE_SIZES,
        "prev_url": _url(request.path, {**keep, "page": str(table.page - 1)}) if table.page > 1 else None,
        "next_url": _url(request.path, {**keep, "page": str(table.page + 1)}) if table.page < table.pages else None,
        "csv_url": _url(f"{request.path}runs.csv", {k: keep[k] for k in ("filter", "order_by", "columns", "view")}),
        "views": VIEWS,
        "view": query["view_type"],
        "first_row": (table.page - 1) * table.page_size + 1 if table.runs else 0,
        "last_row": (table.page - 1) * table.page_size + len(table.runs),
    }


@login_required
def experiment_runs_csv(request, experiment_id: int):
    try:
        table = selectors_ui.runs_for_export(user=request.user, experiment_id=experiment_id, **_table_query(request))
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        return experiment_runs(request, experiment_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return runs_csv_response(table)


@login_required
def run_detail(request, run_id: str):
    detail = _call(selectors_ui.run_detail, user=request.user, run_id=run_id)
    run = detail.run
    # A single point is no curve: those metrics live in the latest-values table.
    keys = sorted(k for k, points in detail.histories.items() if len(points) > 1)
    chart_data = {
        f"chart-{i}-data": charts.metric_chart(k, detail.histories[k], run.pk, detail.history_counts[k])
        for i, k in enumerate(keys)
    }
    path = request.GET.get("path", "")
    browser = _artifact_browser(run, path, request.GET.get("file", ""))
    system_tags = [t for t in detail.tags if t.key.startswith("mlflow.")]
    versions = list(ModelVersion.objects.filter(run=run).select_related("registered_model__project"))
    project = run.experiment.project
    return render(
        request,
        "frontend/experiments/run_detail.html",
        {
            "run": run,
            "experiment": run.experiment,
            "project": run.experiment.project,
            "detail": detail,
            "user_tags": [t for t in detail.tags if not t.key.startswith("mlflow.")],
            "system_tags": system_tags,
            "tag_map": {t.key: t.value for t in system_tags},
            "charts": [{"id": f"chart-{i}", "data_id": f"chart-{i}-data", "key": k} for i, k in enumerate(keys)],
            "chart_data": chart_data,
            "browser": browser,
            "model_versions": versions,
            **lifecycle.run_models_context(request.user, run, project, versions),
            "dataset_versions": input_versions(project=run.experiment.project, inputs=detail.datasets),
        },
    )


def _artifact_browser(run: Run, path: str, file: str) -> dict:
    """The listing of one directory and, when a file is chosen, its preview. A bad path
    is shown as a message in the browser, never as an error page."""
    out: dict = {"path": path, "entries": [], "preview": None, "error": None, "crumbs": _crumbs(path)}
    try:
        out["entries"] = artifact_list(run=run, path=path)
        if file:
            out["preview"] = artifact_preview(run=run, path=file)
    except ApplicationError as exc:
        out["error"] = exc.message
    return out


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@login_required
def run_artifact(request, run_id: str):
    run = _call(selectors.run_get, user=request.user, run_id=run_id)
    try:
        return artifact_download(run=run, path=request.GET.get("path", ""), inline=bool(request.GET.get("inline")))
    except (NotFound, ValidationFailed) as exc:
        raise Http404(exc.message) from exc


@login_required
def runs_compare(request):
    run_ids = [i for value in request.GET.getlist("runs") for i in value.split(",") if i.strip()]
    try:
        comparison = selectors_ui.runs_compare(user=request.user, run_ids=run_ids)
    except ValidationFailed as exc:
        return render(request, "frontend/experiments/compare.html", {"error": exc.message, "comparison": None})
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return render(request, "frontend/experiments/compare.html", _compare_context(request, comparison))


def _compare_context(request, comparison) -> dict:
    runs = comparison.runs
    metric_cols = [f"metrics.{k}" for k in comparison.metric_keys]
    param_cols = [f"params.{k}" for k in comparison.param_keys]
    all_cols = param_cols + metric_cols
    metric = request.GET.get("metric", "")
    if metric not in comparison.metric_keys:
        by_points = selectors_ui.metric_keys_by_points(run_ids=[r.pk for r in runs])
        metric = by_points[0] if by_points else ""
    x = request.GET.get("x") if request.GET.get("x") in all_cols else (param_cols or all_cols or [""])[0]
    y = request.GET.get("y") if request.GET.get("y") in all_cols else (metric_cols or all_cols or [""])[-1]
    per_trace = series.overlay_points(len(runs))
    found = series.metric_series(run_ids=[r.pk for r in runs], keys=[metric], max_points=per_trace) if metric else {}
    color_by = f"metrics.{metric}" if metric else None
    figures = {
        "parallel": charts.parallel_coordinates(runs, all_cols[:30], color_by),
        "overlay": charts.overlay_chart(metric, runs, found, per_trace) if metric else None,
        "scatter": charts.scatter_chart(runs, x, y) if x and y else None,
    }
    experiments = {r.experiment_id: r.experiment for r in runs}
    return {
        "comparison": comparison,
        "runs": runs,
        "rows": _compare_rows(runs, param_cols) + _compare_rows(runs, metric_cols),
        "n_params": len(param_cols),
        "metric": metric,
        "metric_keys": comparison.metric_keys,
        "x": x,
        "y": y,
        "all_cols": all_cols,
        "figures": {k: v for k, v in figures.items() if v},
        "run_ids": [r.pk for r in runs],
        "experiment": next(iter(experiments.values())) if len(experiments) == 1 else None,
    }


def _compare_rows(runs: list[Run], columns: list[str]) -> list[dict]:
    rows = []
    for column in columns:
        values = [r.cells.get(column) for r in runs]
        distinct = {repr(v) for v in values}
        rows.append({"name": column, "values": values, "differs": len(distinct) > 1})
    return rows
