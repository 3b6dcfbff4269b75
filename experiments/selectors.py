"""Reads of experiments, runs and logged data, filtered by what the user may see.

Every lookup goes through the project check: an id from another project is NotFound,
never a hint that it exists."""

from dataclasses import dataclass
import functools

from django.db import connection
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from experiments import logged_model_search as logged_model_search_lang
from experiments import search
from experiments.models import (
    DatasetInput,
    Experiment,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    Metric,
    Param,
    Run,
    RunModelLink,
    RunTag,
)
from experiments.services.experiments import resolve_experiment_name
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.fixedsql import (
    ChainQuery,
    Link,
    ObjectsStatement,
    PreparedValues,
    compile_objects,
    fetch,
    rows_many,
)
from mlplatform.models import User
from mlplatform.roles import Role, role_at_least
from projects.models import Membership, Project
from projects.selectors import project_check, project_role, project_visible_ids, token_scope

VIEW_TYPES = {"ACTIVE_ONLY": [Lifecycle.ACTIVE], "DELETED_ONLY": [Lifecycle.DELETED], "ALL": list(Lifecycle.values)}


def check_role(*, user: User, project: Project, min_role: str) -> Project:
    """project_check with the role cached on the user object for the request, so a
    request touching one project many times asks the database once."""
    cache = user.__dict__.setdefault("_mlp_project_roles", {})
    if project.pk not in cache:
        cache[project.pk] = project_role(user=user, project=project)
    role = cache[project.pk]
    if role is None or not role_at_least(role, min_role):
        return project_check(user=user, project=project, min_role=min_role)  # raises the right error
    project.my_role = role
    return project


def with_role(qs: QuerySet, user: User, project_path: str) -> QuerySet:
    """Annotate the user's membership role in each row's project, so one query fetches
    an object and what the user may do with it (see prime_role)."""
    if not user.is_authenticated or user.is_admin:
        return qs
    role = Membership.objects.filter(project=OuterRef(project_path), user=user).order_by().values("role")[:1]
    return qs.annotate(_member_role=Subquery(role))


def prime_role(user: User, obj, project: Project) -> None:
    """Fill check_role's cache from a with_role annotation (same rules as project_role)."""
    if not hasattr(obj, "_member_role"):
        return
    scope = token_scope(user)
    role = None if scope is not None and scope != project.pk else obj._member_role
    user.__dict__.setdefault("_mlp_project_roles", {})[project.pk] = role


def lifecycle_stages(view_type: str | None) -> list[str]:
    stages = VIEW_TYPES.get((view_type or "ACTIVE_ONLY").upper())
    if stages is None:
        raise ValidationFailed(f"Invalid view_type '{view_type}'. Use ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return stages


def experiment_list(*, user: User, project: Project, view_type: str = "ACTIVE_ONLY") -> QuerySet[Experiment]:
    check_role(user=user, project=project, min_role=Role.VIEWER)
    return (
        Experiment.objects.filter(project=project, lifecycle_stage__in=lifecycle_stages(view_type))
        .select_related("project")
        .prefetch_related("tags")
    )


def experiment_visible_list(*, user: User, view_type: str = "ACTIVE_ONLY") -> QuerySet[Experiment]:
    return (
        Experiment.objects.filter(
            project__in=project_visible_ids(user=user), lifecycle_stage__in=lifecycle_stages(view_type)
        )
        .select_related("project")
        .prefetch_related("tags")
    )


def _parse_pk(value: object, what: str) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise NotFound(f"No {what} with id={value!r}.")


def _role_sql(project_alias: str) -> str:
    """The caller's membership role in the row's project (one parameter: the user id)."""
    return (
        f'(SELECT m."role" FROM "{Membership._meta.db_table}" m '  # noqa: S608 (a table name from metadata)
        f'WHERE m."project_id" = {project_alias}."id" AND m."user_id" = %s)'
    )


_EXPERIMENT_WITH_ROLE = ChainQuery(
    [Link(Experiment, "e"), Link(Project, "p", "e", "project")], extra=[_role_sql("p")], where='e."id" = %s'
)


def _get_with_role(query: ChainQuery, user: User, key):
    """The object (with its chain) and, for members, the role with_role would annotate."""
    found = query.first([user.pk if user.is_authenticated else None, key])
    if found is None:
        return None
    obj, (member_role,) = found
    if user.is_authenticated and not user.is_admin:
        obj._member_role = member_role
    return obj


def experiment_get(*, user: User, experiment_id: str | int, min_role: str = Role.VIEWER) -> Experiment:
    pk = _parse_pk(experiment_id, "experiment")
    if not -(2**63) <= pk < 2**63:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    experiment = _get_with_role(_EXPERIMENT_WITH_ROLE, user, pk)
    if experiment is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    prime_role(user, experiment, experiment.project)
    try:
        check_role(user=user, project=experiment.project, min_role=min_role)
    except NotFound:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return experiment


def experiment_get_by_name(*, user: User, name: str, min_role: str = Role.VIEWER) -> Experiment:
    try:
        project, short = resolve_experiment_name(user=user, full_name=name, min_role=min_role)
    except NotFound:
        raise NotFound(f"Could not find experiment with name '{name}'")
    experiment = Experiment.objects.select_related("project").filter(project=project, name=short).first()
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return experiment


# A run, its experiment and project, and the caller's membership role, in one fixed
# statement: every tracking call starts here (see mlplatform.fixedsql).
_RUN_WITH_ROLE = ChainQuery(
    [Link(Run, "r"), Link(Experiment, "e", "r", "experiment"), Link(Project, "p", "e", "project")],
    extra=[_role_sql("p")],
    where='r."id" = %s',
)


def run_get(*, user: User, run_id: str, min_role: str = Role.VIEWER) -> Run:
    if not run_id or len(str(run_id)) > 32:
        raise NotFound(f"Run with id={run_id} not found")
    run = _get_with_role(_RUN_WITH_ROLE, user, str(run_id))
    if run is None:
        raise NotFound(f"Run with id={run_id} not found")
    prime_role(user, run, run.experiment.project)
    try:
        check_role(user=user, project=run.experiment.project, min_role=min_role)
    except NotFound:
        raise NotFound(f"Run with id={run_id} not found")
    return run


def run_metric_points_after(*, run: Run, after_id: int, limit: int = 5000) -> list[tuple[int, str, float, int, int]]:
    """(id, key, value, step, timestamp) of the points logged to `run` after point
    `after_id`, oldest first: a tail for whoever follows a live run (the jobs' page).
    The caller already holds the run, so no role check here."""
    points = Metric.objects.filter(run=run, pk__gt=after_id).order_by("pk")
    return list(points.values_list("pk", "key", "value", "step", "timestamp")[:limit])


def with_run_data(qs: QuerySet[Run]) -> QuerySet[Run]:
    """Everything the MLflow Run shape shows, in a fixed number of queries."""
    return qs.select_related("experiment").prefetch_related(
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
        Prefetch("params", queryset=Param.objects.order_by("key")),
        Prefetch("tags", queryset=RunTag.objects.order_by("key")),
        Prefetch("dataset_inputs", queryset=DatasetInput.objects.select_related("dataset").order_by("pk")),
        Prefetch("model_links", queryset=RunModelLink.objects.order_by("pk")),
    )


_RUN_DATA_SOURCES = [
    ("metric_rows", LatestMetric.objects, ("key", "value", "is_nan", "step", "timestamp"), "key"),
    ("param_rows", Param.objects, ("key", "value"), "key"),
    ("tag_rows", RunTag.objects, ("key", "value"), "key"),
    (
        "input_rows",
        DatasetInput.objects,
        ("dataset__name", "dataset__digest", "dataset__source_type", "dataset__source", "dataset__schema",
         "dataset__profile", "tags"),
        "pk",
    ),
    ("model_rows", RunModelLink.objects, ("model_id", "direction", "step"), "pk"),
]  # fmt: skip


# The same reads compiled once, with the run ids as one parameter (every tracking
# client's runs/get and search), pipelined into one round trip on PostgreSQL.
def _run_rows(manager, fields, order) -> PreparedValues:
    return PreparedValues(
        lambda ids: manager.filter(run__id__any_of=[ids]).order_by(order).values_list("run_id", *fields), 1
    )


_RUN_DATA = [(attr, _run_rows(*source)) for attr, *source in _RUN_DATA_SOURCES]


def attach_run_data(runs: list[Run]) -> list[Run]:
    """Plain rows of what the MLflow Run shape shows, five reads for any number of
    runs: `metric_rows` (key, value, is_nan, step, timestamp), `param_rows` and
    `tag_rows` (key, value), `input_rows` (name, digest, source_type, source, schema,
    profile, tags) and `model_rows` (model_id, direction, step). Much cheaper than
    prefetch_related on a hot API path; pages that want model objects use with_run_data."""
    by_id = {r.pk: r for r in runs}
    for run in runs:
        run.metric_rows, run.param_rows, run.tag_rows, run.input_rows, run.model_rows = [], [], [], [], []
    if not runs:
        return runs
    ids = list(by_id)
    results = rows_many([(prepared, ([*ids],)) for _attr, prepared in _RUN_DATA])
    for (attr, _prepared), rows in zip(_RUN_DATA, results, strict=True):
        for run_id, *row in rows:
            getattr(by_id[run_id], attr).append(tuple(row))
    return runs


def run_get_full(*, user: User, run_id: str) -> Run:
    """The run with attach_run_data's rows."""
    return attach_run_data([run_get(user=user, run_id=run_id)])[0]


@dataclass
class RunPage:
    runs: list[Run]
    next_page_token: str | None


def run_search(
    *,
    user: User,
    experiment_ids: list[str],
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
    view_type: str = "ACTIVE_ONLY",
) -> RunPage:
    """One page of runs matching MLflow's search language; experiments the user cannot
    see are NotFound."""
    limit = search.check_max_results(max_results)
    ids = tuple(experiment_get(user=user, experiment_id=e).pk for e in experiment_ids)
    shape = (ids, tuple(lifecycle_stages(view_type)), filter_string, tuple(order_by or ()))

    # A long filter or order is compiled each time rather than kept (the cache holds its text).
    size = len(filter_string or "") + sum(len(o) for o in shape[3])
    statement = _run_search_statement if size <= 2000 else _run_search_statement.__wrapped__

    def read(offset: int, count: int) -> list[Run]:
        return statement(connection.vendor, *shape, offset, count).objects()

    runs, next_token = search.paginate(read, limit, page_token)
    return RunPage(runs=attach_run_data(runs), next_page_token=next_token)


@functools.lru_cache(maxsize=512)
def _run_search_statement(
    vendor: str, ids: tuple, stages: tuple, filter_string: str | None, order_by: tuple, offset: int, count: int
) -> ObjectsStatement:
    """A search's SQL, built and compiled by the ORM once per distinct search (parsing
    the filter and compiling the query cost more than running it). Only SQL text and
    parameters are kept, never rows, so nothing here goes stale; who may read the
    experiments is checked on every call before this."""
    condition = search.compile_filter(filter_string)
    qs = Run.objects.filter(experiment_id__in=ids, lifecycle_stage__in=stages).filter(condition)
    qs = search.apply_order(qs, list(order_by), search.metrics_required(filter_string))
    return compile_objects(qs[offset : offset + count])


def _history_queryset(run_id: str, key: str) -> QuerySet:
    qs = Metric.objects.filter(run_id=run_id, key=key).order_by("step", "timestamp", "pk")
    return qs.values_list("key", "value", "is_nan", "step", "timestamp")


# The whole history of one metric (what get_metric_history asks), compiled once.
_HISTORY = PreparedValues(_history_queryset, 2)


def metric_history(
    *, user: User, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
) -> tuple[list[tuple[str, float, bool, int, int]], str | None]:
    """(key, value, is_nan, step, timestamp) points in step order, and the next page token."""
    run = run_get(user=user, run_id=run_id)
    if not max_results:
        return _history_window(run.pk, key, search.decode_page_token(page_token), None), None

    def read(offset: int, count: int) -> list[tuple]:
        return _history_window(run.pk, key, offset, count)

    return search.paginate(read, search.check_max_results(max_results, default=25000), page_token)


def _history_window(run_id: str, key: str, offset: int, count: int | None) -> list[tuple]:
    """`count` points (all with None) from `offset`, through _HISTORY's compiled SQL with
    LIMIT and OFFSET as parameters: every MLflow client asks for its history in pages
    (max_results=25000), and building that query with the ORM cost more than running it."""
    sql, params = _HISTORY.statement(run_id, key)
    window = [2**62 if count is None else count, offset]
    return _HISTORY.convert(fetch([(f"{sql} LIMIT %s OFFSET %s", [*params, *window])])[0])


def metric_history_bulk_interval(
    *, user: User, run_ids: list[str], key: str, start_step: int | None, end_step: int | None, max_results: int
) -> list[tuple[str, str, float, bool, int, int]]:
    """(run_id, key, value, is_nan, step, timestamp), at most `max_results` evenly spaced
    steps per run, always including the first and last step."""
    runs = [run_get(user=user, run_id=r) for r in run_ids]
    out = []
    for run in runs:
        qs = Metric.objects.filter(run=run, key=key)
        if start_step is not None:
            qs = qs.filter(step__gte=start_step)
        if end_step is not None:
            qs = qs.filter(step__lte=end_step)
        points = list(qs.order_by("step", "timestamp").values_list("key", "value", "is_nan", "step", "timestamp"))
        steps = sorted({p[3] for p in points})
        if len(steps) > max_results:
            stride = (len(steps) - 1) / (max_results - 1) if max_results > 1 else len(steps)
            keep = {steps[round(i * stride)] for i in range(max_results)} | {steps[0], steps[-1]}
            points = [p for p in points if p[3] in keep]
        out.extend((run.pk, *p) for p in points)
    return out


def _model_points() -> Prefetch:
    return Prefetch("metrics", queryset=LoggedModelMetric.objects.order_by("key", "step", "timestamp", "pk"))


def logged_model_get(*, user: User, model_id: str, min_role: str = Role.VIEWER) -> LoggedModel:
    qs = (
        LoggedModel.objects.select_related("experiment__project", "source_run")
        .prefetch_related("params", "tags", _model_points())
        .filter(pk=str(model_id))
    )
    model = with_role(qs, user, "experiment__project").first()
    if model is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    prime_role(user, model, model.experiment.project)
    try:
        check_role(user=user, project=model.experiment.project, min_role=min_role)
    except NotFound:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model


def logged_model_search(
    *,
    user: User,
    experiment_ids: list[str],
    filter_string: str | None = None,
    datasets: list | None = None,
    order_by: list | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[LoggedModel], str | None]:
    """MLflow 3's logged-models/search in the given experiments (each access-checked);
    see experiments.logged_model_search for the language."""
    limit = search.check_max_results(max_results, default=100)
    filter_string, order_by = filter_string or None, order_by or None
    offset = 0
    if page_token:
        token = logged_model_search_lang.PageToken.decode(page_token)
        token.check(experiment_ids, filter_string, order_by)
        offset = token.offset
    ids = [experiment_get(user=user, experiment_id=e).pk for e in experiment_ids]
    condition = logged_model_search_lang.compile_filter(
        filter_string, logged_model_search_lang.parse_datasets(datasets or [])
    )
    qs = (
        LoggedModel.objects.filter(experiment_id__in=ids, lifecycle_stage=Lifecycle.ACTIVE)
        .filter(condition)
        .select_related("experiment")
        .prefetch_related("params", "tags", _model_points())
    )
    page = list(logged_model_search_lang.apply_order(qs, order_by or [])[offset : offset + limit + 1])
    if len(page) <= limit:
        return page, None
    return page[:limit], logged_model_search_lang.PageToken(
        experiment_ids, filter_string, order_by, offset + limit
    ).encode()
