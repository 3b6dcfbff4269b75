"""Reads behind the runs table, run detail, compare view and CSV export (REST API and
pages). Each runs a fixed number of queries however many runs it returns: a page of
1,000 runs costs the same handful of queries as a page of 10.

Permission checks go through experiments.selectors (another project's experiment or
run is NotFound); filters and ordering are the MLflow search language of
experiments.search, so the search box, the REST API and the MLflow client agree."""

from dataclasses import dataclass, field
import math

from django.db.models import Count, Max, Prefetch, Q, QuerySet

from experiments import search, series
from experiments.models import (
    DatasetInput,
    Experiment,
    LatestMetric,
    Lifecycle,
    Metric,
    Param,
    Run,
    RunTag,
)
from experiments.selectors import check_role, experiment_get, experiment_list, lifecycle_stages
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_visible_ids

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_CSV_ROWS = 100_000
MAX_COMPARE = 100
DEFAULT_COLUMNS_PER_KIND = 6
# Tags worth a column of their own without being chosen: where the code came from.
SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.git.commit", "mlflow.source.type", "mlflow.user")


@dataclass
class Column:
    """A chosen column: `metrics.<key>` or `params.<key>` (the filter language's names)."""

    kind: str  # "metrics" | "params" | "tags"
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.key}"


def parse_columns(values: list[str] | None) -> list[Column]:
    """`metrics.acc`, `params.lr` or `tags.team`; comma-separated values are split too.
    Anything else is ValidationFailed, so a typo says what is wrong."""
    out: list[Column] = []
    for value in values or []:
        for item in str(value).split(","):
            item = item.strip()
            if not item:
                continue
            kind, _, key = item.partition(".")
            kind = {"metric": "metrics", "param": "params", "tag": "tags"}.get(kind, kind)
            if kind not in ("metrics", "params", "tags") or not key:
                raise ValidationFailed(f"Invalid column '{item}': use metrics.<key>, params.<key> or tags.<key>.")
            column = Column(kind, key)
            if column not in out:
                out.append(column)
    return out[:200]


@dataclass
class RunsTable:
    experiment: Experiment
    runs: list[Run]
    total: int
    page: int
    page_size: int
    columns: list[Column]
    metric_keys: list[str]
    param_keys: list[str]
    filter_string: str = ""
    order_by: str = ""
    # How many distinct keys the experiment has; the lists above may be cut short.
    metric_key_count: int = 0
    param_key_count: int = 0

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def _distinct_keys(model, experiment: Experiment, contains: str = "", limit: int | None = None) -> list[str]:
    qs = model.objects.filter(run__experiment=experiment)
    if contains:
        qs = qs.filter(key__icontains=contains)
    qs = qs.values_list("key", flat=True).distinct().order_by("key")
    return list(qs[:limit] if limit else qs)


def _available_keys(experiment: Experiment, limit: int | None = None) -> tuple[list[str], list[str]]:
    return _distinct_keys(LatestMetric, experiment, limit=limit), _distinct_keys(Param, experiment, limit=limit)


def _key_count(model, experiment: Experiment) -> int:
    return model.objects.filter(run__experiment=experiment).aggregate(n=Count("key", distinct=True))["n"]


MAX_KEY_MATCHES = 200


def experiment_column_search(
    *, user: User, experiment_id: str | int, contains: str = "", limit: int = 50
) -> list[Column]:
    """Metric and param columns of an experiment whose key contains `contains` (any
    case), at most `limit` of each kind, in key order: what the column chooser lists as
    the user types, so a table of 5,000 keys never sends them all."""
    experiment = experiment_get(user=user, experiment_id=experiment_id)
    if not 1 <= limit <= MAX_KEY_MATCHES:
        raise ValidationFailed(f"limit must be between 1 and {MAX_KEY_MATCHES}.")
    if len(contains) > 250:
        raise ValidationFailed("The search text is longer than any key (250 characters).")
    metrics = _distinct_keys(LatestMetric, experiment, contains, limit)
    params = _distinct_keys(Param, experiment, contains, limit)
    return [Column("metrics", k) for k in metrics] + [Column("params", k) for k in params]


def _default_columns(metric_keys: list[str], param_keys: list[str]) -> list[Column]:
    return [Column("metrics", k) for k in metric_keys[:DEFAULT_COLUMNS_PER_KIND]] + [
        Column("params", k) for k in param_keys[:DEFAULT_COLUMNS_PER_KIND]
    ]


def with_columns(qs: QuerySet[Run], columns: list[Column]) -> QuerySet[Run]:
    """Prefetch only the chosen columns' values (one query per kind), and attach them
    as `run.cells` {column name: value} by `attach_cells`."""

    def keys(kind: str) -> list[str]:
        return [c.key for c in columns if c.kind == kind]

    return qs.select_related("experiment", "parent_run", "user").prefetch_related(
        Prefetch(
            "latest_metrics", queryset=LatestMetric.objects.filter(key__in=keys("metrics")), to_attr="col_metrics"
        ),
        Prefetch("params", queryset=Param.objects.filter(key__in=keys("params")), to_attr="col_params"),
        Prefetch(
            "tags",
            queryset=RunTag.objects.filter(key__in=[*keys("tags"), *SOURCE_TAGS]),
            to_attr="col_tags",
        ),
    )


def run_user(run: Run) -> str:
    """Who logged the run: the authenticated account when there is one (the client's
    `mlflow.user` tag is whatever the laptop's login happens to be)."""
    return run.user.username if run.user_id and run.user else run.user_name


def metric_value(lm: LatestMetric) -> float:
    return math.nan if lm.is_nan else lm.value


def attach_cells(runs: list[Run]) -> list[Run]:
    for run in runs:
        cells: dict[str, object] = {}
        for lm in run.col_metrics:
            cells[f"metrics.{lm.key}"] = metric_value(lm)
        for p in run.col_params:
            cells[f"params.{p.key}"] = p.value
        for t in run.col_tags:
            cells[f"tags.{t.key}"] = t.value
        run.cells = cells
        run.display_user = run_user(run)
    return runs


def _filtered_runs(experiment: Experiment, filter_string: str, order_by: str, view_type: str) -> QuerySet[Run]:
    condition = search.compile_filter(filter_string)
    qs = Run.objects.filter(experiment=experiment, lifecycle_stage__in=lifecycle_stages(view_type)).filter(condition)
    return search.apply_order(qs, [order_by] if order_by else None)


def runs_table(
    *,
    user: User,
    experiment_id: str | int,
    filter_string: str = "",
    order_by: str = "",
    columns: list[str] | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    view_type: str = "ACTIVE_ONLY",
    all_keys: bool = True,
) -> RunsTable:
    """One page of an experiment's runs with the chosen columns. A bad filter, order or
    column is ValidationFailed with MLflow's message. Without `all_keys` the key lists
    hold only the default columns' keys, and the counts say how many there are (the
    page's column chooser searches the rest)."""
    experiment = experiment_get(user=user, experiment_id=experiment_id)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
    if page < 1:
        raise ValidationFailed("page must be 1 or more.")
    qs = _filtered_runs(experiment, filter_string.strip(), order_by.strip(), view_type)
    metric_keys, param_keys = _available_keys(experiment, None if all_keys else DEFAULT_COLUMNS_PER_KIND)
    chosen = parse_columns(columns) or _default_columns(metric_keys, param_keys)
    total = qs.count()
    offset = (page - 1) * page_size
    runs = attach_cells(list(with_columns(qs, chosen)[offset : offset + page_size]))
    return RunsTable(
        experiment=experiment,
        runs=runs,
        total=total,
        page=page,
        page_size=page_size,
        columns=chosen,
        metric_keys=metric_keys,
        param_keys=param_keys,
        filter_string=filter_string,
        order_by=order_by,
        metric_key_count=len(metric_keys) if all_keys else _key_count(LatestMetric, experiment),
        param_key_count=len(param_keys) if all_keys else _key_count(Param, experiment),
    )


def runs_for_export(
    *,
    user: User,
    experiment_id: str | int,
    filter_string: str = "",
    order_by: str = "",
    columns: list[str] | None = None,
    view_type: str = "ACTIVE_ONLY",
) -> RunsTable:
    """Every matching run (up to MAX_CSV_ROWS), same filter, order and columns as the page."""
    table = runs_table(
        user=user,
        experiment_id=experiment_id,
        filter_string=filter_string,
        order_by=order_by,
        columns=columns,
        page_size=1,
        view_type=view_type,
        all_keys=False,
    )
    qs = _filtered_runs(table.experiment, filter_string.strip(), order_by.strip(), view_type)
    runs: list[Run] = []
    # Chunks keep the IN lists of the prefetches bounded on SQLite and PostgreSQL alike.
    for start in range(0, min(table.total, MAX_CSV_ROWS), MAX_PAGE_SIZE):
        runs.extend(attach_cells(list(with_columns(qs, table.columns)[start : start + MAX_PAGE_SIZE])))
    table.runs, table.page_size = runs, max(1, len(runs))
    return table


# --- experiments lists ---------------------------------------------------------------


def _with_run_stats(qs: QuerySet[Experiment]) -> QuerySet[Experiment]:
    active = Q(runs__lifecycle_stage=Lifecycle.ACTIVE)
    return qs.annotate(run_count=Count("runs", filter=active), last_run_time=Max("runs__start_time", filter=active))


def experiment_overview(*, user: User, project: Project | None = None) -> QuerySet[Experiment]:
    """Active experiments (of one project, or of every project the user sees) with
    `run_count` and `last_run_time`, most recently used first."""
    if project is not None:
        qs = experiment_list(user=user, project=project)
    else:
        qs = Experiment.objects.filter(project__in=project_visible_ids(user=user), lifecycle_stage=Lifecycle.ACTIVE)
        qs = qs.select_related("project")
    return _with_run_stats(qs).order_by("-last_run_time", "-creation_time")


# --- run detail ----------------------------------------------------------------------


@dataclass
class RunDetail:
    run: Run
    params: list[Param]
    tags: list[RunTag]
    metrics: list[LatestMetric]
    datasets: list[DatasetInput]
    children: list[Run]
    histories: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)
    # Points of each metric before downsampling: a chart knows it may fetch more on zoom.
    history_counts: dict[str, int] = field(default_factory=dict)


MAX_CHARTS = 30


def run_detail(*, user: User, run_id: str, histories: bool = True) -> RunDetail:
    """The run with everything logged to it; `histories` adds the chart series of its
    first MAX_CHARTS metrics (by key) that have more than one point, downsampled (see
    experiments.series)."""
    run = Run.objects.select_related("experiment__project", "parent_run", "user").filter(pk=str(run_id)[:32]).first()
    if run is None or len(str(run_id)) > 32:
        raise NotFound(f"Run with id={run_id} not found")
    try:
        check_role(user=user, project=run.experiment.project, min_role=Role.VIEWER)
    except NotFound:
        raise NotFound(f"Run with id={run_id} not found")
    found = series.metric_series(run_ids=[run.pk], max_curves=MAX_CHARTS).get(run.pk, {}) if histories else {}
    return RunDetail(
        run=run,
        params=list(Param.objects.filter(run=run).order_by("key")),
        tags=list(RunTag.objects.filter(run=run).order_by("key")),
        metrics=list(LatestMetric.objects.filter(run=run).order_by("key")),
        datasets=list(DatasetInput.objects.filter(run=run).select_related("dataset").order_by("pk")),
        children=list(Run.objects.filter(parent_run=run).order_by("-start_time")[:200]),
        histories={k: s.points for k, s in found.items()},
        history_counts={k: s.count for k, s in found.items()},
    )


def metric_histories(
    *, run_ids: list[str], keys: list[str] | None = None, max_points: int = series.MAX_POINTS
) -> dict[str, dict[str, list]]:
    """{run_id: {key: [(step, timestamp, value), ...]}} in step order, each at most
    `max_points` long, downsampled in the database keeping every bucket's first, last,
    lowest and highest point (experiments.series). NaN points are kept as NaN in series
    short enough to come whole. Callers checked access."""
    found = series.metric_series(run_ids=run_ids, keys=keys, max_points=max_points)
    return {r: {k: s.points for k, s in by_key.items()} for r, by_key in found.items()}


def metric_keys_by_points(*, run_ids: list[str]) -> list[str]:
    """Metric keys of these runs, those with the most points (the curves) first; one
    query. Callers checked access."""
    rows = Metric.objects.filter(run_id__in=run_ids).values("key").annotate(n=Count("id")).order_by("-n", "key")
    return [row["key"] for row in rows]


# --- compare -------------------------------------------------------------------------


@dataclass
class Comparison:
    runs: list[Run]
    metric_keys: list[str]
    param_keys: list[str]


def runs_compare(*, user: User, run_ids: list[str]) -> Comparison:
    """2 to 100 runs the user may see, in the order asked, with all their params, latest
    metrics and tags. One unknown or foreign id makes the whole request NotFound."""
    ids = list(dict.fromkeys(str(r).strip() for r in run_ids if str(r).strip()))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise ValidationFailed(f"Choose between 2 and {MAX_COMPARE} runs to compare (got {len(ids)}).")
    runs = {
        r.pk: r
        for r in Run.objects.filter(pk__in=ids)
        .select_related("experiment__project", "user")
        .prefetch_related(
            Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key"), to_attr="col_metrics"),
            Prefetch("params", queryset=Param.objects.order_by("key"), to_attr="col_params"),
            Prefetch("tags", queryset=RunTag.objects.order_by("key"), to_attr="col_tags"),
        )
    }
    missing = [r for r in ids if r not in runs]
    if missing:
        raise NotFound(f"Run with id={missing[0]} not found")
    for project in {r.experiment.project_id: r.experiment.project for r in runs.values()}.values():
        try:
            check_role(user=user, project=project, min_role=Role.VIEWER)
        except NotFound:
            raise NotFound("Run not found")
    ordered = attach_cells([runs[r] for r in ids])
    metric_keys = sorted({lm.key for r in ordered for lm in r.col_metrics})
    param_keys = sorted({p.key for r in ordered for p in r.col_params})
    return Comparison(runs=ordered, metric_keys=metric_keys, param_keys=param_keys)
