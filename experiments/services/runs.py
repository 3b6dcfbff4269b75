from collections.abc import Iterable, Mapping
import math
import secrets
import time
import uuid

from django.db import connection, transaction
import psycopg

from experiments.models import (
    TERMINAL_RUN_STATUSES,
    Dataset,
    DatasetInput,
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    Metric,
    Param,
    Run,
    RunModelLink,
    RunStatus,
    RunTag,
)
from experiments.services.common import now_ms, publish_run
from experiments.validation import (
    MAX_DATASETS_PER_BATCH,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VAL_LENGTH,
    parse_int,
    parse_metric_value,
    validate_key,
    validate_value,
)
from mlplatform.audit import audit_record
from mlplatform.errors import InvalidState, NotFound, ValidationFailed
from mlplatform.models import User

RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"

_ADJECTIVES = [
    "amber",
    "brisk",
    "calm",
    "deft",
    "eager",
    "fleet",
    "gentle",
    "keen",
    "lucid",
    "nimble",
    "quiet",
    "vivid",
]
_NOUNS = ["otter", "heron", "lynx", "finch", "panda", "koala", "raven", "trout", "bison", "gecko", "moth", "wren"]


def _random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


def _pairs(items: Mapping[str, str] | Iterable | None) -> list[tuple[str, str]]:
    """Key/value pairs from a dict, (key, value) tuples or {"key", "value"} dicts."""
    if not items:
        return []
    if isinstance(items, Mapping):
        return [(k, v) for k, v in items.items()]
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append((item.get("key"), item.get("value")))
        else:
            key, value = item
            out.append((key, value))
    return out


def _require_active(run: Run) -> None:
    if run.lifecycle_stage != Lifecycle.ACTIVE:
        raise InvalidState(f"The run {run.pk} must be in the 'active' state. Current state is deleted.")


@transaction.atomic
def run_create(
    *,
    experiment: Experiment,
    user: User | None,
    name: str = "",
    tags: Mapping[str, str] | Iterable | None = None,
    parent_run: Run | None = None,
    start_time: int | None = None,
    user_name: str = "",
) -> Run:
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise InvalidState(f"The experiment {experiment.pk} must be in the 'active' state.")
    tag_pairs = dict(_pairs(tags))
    name = (name or tag_pairs.get(RUN_NAME_TAG) or "").strip() or _random_run_name()
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise ValidationFailed(f"Run name exceeds {MAX_RUN_NAME_LENGTH} characters.")
    tag_pairs[RUN_NAME_TAG] = name
    if parent_run is None and tag_pairs.get(PARENT_TAG):
        parent_run = Run.objects.filter(pk=tag_pairs[PARENT_TAG], experiment__project_id=experiment.project_id).first()
    elif parent_run is not None:
        tag_pairs[PARENT_TAG] = parent_run.pk
    run_id = uuid.uuid4().hex
    run = Run.objects.create(
        id=run_id,
        experiment=experiment,
        name=name,
        status=RunStatus.RUNNING,
        start_time=start_time if start_time is not None else now_ms(),
        user=user if user is not None and user.is_authenticated else None,
        user_name=user_name or tag_pairs.get(USER_TAG) or (user.username if user else ""),
        parent_run=parent_run,
        artifact_uri=f"{experiment.artifact_location or f'mlflow-artifacts:/{experiment.pk}'}/{run_id}/artifacts",
    )
    tags = _validated_tags(list(tag_pairs.items()))
    _upsert_tags(run, tags)
    run.tag_rows = sorted(dict(tags).items())  # what a new run holds (attach_run_data's shape)
    audit_record(
        actor=user,
        action="run.create",
        target=run,
        project_id=experiment.project_id,
        after={"experiment": experiment.pk, "name": name},
    )
    publish_run(run, "run.created", {"run_id": run.pk, "name": run.name, "status": run.status})
    return run


@transaction.atomic
def run_update(
    *,
    run: Run,
    status: str | None = None,
    end_time: int | None = None,
    name: str | None = None,
    user: User | None = None,
) -> Run:
    """A terminal status sets end_time (now, unless given)."""
    _require_active(run)
    before = {"status": run.status, "name": run.name, "end_time": run.end_time}
    fields = []
    if status:
        if status not in RunStatus.values:
            raise ValidationFailed(f"Invalid run status '{status}'.")
        run.status = status
        fields.append("status")
        if status in TERMINAL_RUN_STATUSES:
            run.end_time = end_time if end_time is not None else now_ms()
            fields.append("end_time")
    elif end_time is not None:
        run.end_time = end_time
        fields.append("end_time")
    if name:
        if len(name) > MAX_RUN_NAME_LENGTH:
            raise ValidationFailed(f"Run name exceeds {MAX_RUN_NAME_LENGTH} characters.")
        run.name = name
        fields.append("name")
        _upsert_tags(run, [(RUN_NAME_TAG, name)])
    if fields:
        run.save(update_fields=fields)
        audit_record(
            actor=user,
            action="run.update",
            target=run,
            project_id=run.experiment.project_id,
            before=before,
            after={"status": run.status, "name": run.name, "end_time": run.end_time},
        )
        publish_run(run, "run.updated", {"run_id": run.pk, "name": run.name, "status": run.status})
    return run


def _set_lifecycle(run: Run, stage: str, user: User | None, action: str) -> Run:
    before = {"lifecycle_stage": run.lifecycle_stage}
    run.lifecycle_stage = stage
    run.deleted_time = now_ms() if stage == Lifecycle.DELETED else None
    run.save(update_fields=["lifecycle_stage", "deleted_time"])
    audit_record(
        actor=user,
        action=action,
        target=run,
        project_id=run.experiment.project_id,
        before=before,
        after={"lifecycle_stage": stage},
    )
    publish_run(run, action, {"run_id": run.pk, "lifecycle_stage": stage})
    return run


@transaction.atomic
def run_delete(*, run: Run, user: User | None) -> Run:
    """Soft delete, as MLflow; run_restore brings it back."""
    return _set_lifecycle(run, Lifecycle.DELETED, user, "run.delete")


@transaction.atomic
def run_restore(*, run: Run, user: User | None) -> Run:
    return _set_lifecycle(run, Lifecycle.ACTIVE, user, "run.restore")


def _validated_tags(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(validate_key(k, "tag"), validate_value(v, MAX_TAG_VAL_LENGTH, "tag", k)) for k, v in pairs]


def _upsert_tags(run: Run, pairs: list[tuple[str, str]]) -> None:
    # Last value wins within one batch: ON CONFLICT cannot touch the same row twice.
    latest = dict(pairs)
    if not latest:
        return
    RunTag.objects.bulk_create(
        [RunTag(run=run, key=k, value=v) for k, v in latest.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )
    if RUN_NAME_TAG in latest and latest[RUN_NAME_TAG] != run.name:
        run.name = latest[RUN_NAME_TAG][:MAX_RUN_NAME_LENGTH]
        Run.objects.filter(pk=run.pk).update(name=run.name)


@transaction.atomic
def run_set_tag(*, run: Run, key: str, value: str) -> None:
    _require_active(run)
    _upsert_tags(run, _validated_tags([(key, value)]))


@transaction.atomic
def run_delete_tag(*, run: Run, key: str) -> None:
    _require_active(run)
    deleted, _ = RunTag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {key} in run with id {run.pk}")


def _int_or(value: object, name: str, default: int | None) -> int | None:
    return value if type(value) is int else parse_int(value, name, default)


def _float_of(value: object, key: str) -> float:
    return float(value) if type(value) in (float, int) else parse_metric_value(value, key)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _metric_points(metrics: Iterable) -> list[tuple[str, float, int, int, str]]:
    """(key, value, step, timestamp, model_id) from tuples or MLflow-style dicts. Plain
    ints and floats take a fast path: a batch is a thousand of them."""
    points = []
    default_ts = None
    valid_keys: set[str] = set()
    for m in metrics:
        if isinstance(m, Mapping):
            key, value, step, ts = m.get("key"), m.get("value"), m.get("step"), m.get("timestamp")
            model_id = m.get("model_id") or ""
        else:
            key, value, step, ts = m[:4]
            model_id = m[4] if len(m) > 4 else ""
        if key not in valid_keys:
            valid_keys.add(validate_key(key, "metric"))
        if value is None:
            raise ValidationFailed(f"Metric '{key}' has no value.")
        if ts is None:
            default_ts = default_ts or now_ms()
        step = _int_or(step, f"Step of metric '{key}'", 0)
        ts = _int_or(ts, f"Timestamp of metric '{key}'", default_ts)
        if not (_INT64_MIN <= step <= _INT64_MAX and _INT64_MIN <= ts <= _INT64_MAX):
            raise ValidationFailed(f"Step and timestamp of metric '{key}' must fit in 64 bits.")
        points.append((key, _float_of(value, key), step, ts, str(model_id)))
    return points


def _check_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    if n_metrics > MAX_METRICS_PER_BATCH:
        raise ValidationFailed(
            f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. Got {n_metrics} metrics."
        )
    if n_params > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationFailed(
            f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} params. Got {n_params} params."
        )
    if n_tags > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationFailed(
            f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} tags. Got {n_tags} tags."
        )
    if n_metrics + n_params + n_tags > MAX_ENTITIES_PER_BATCH:
        raise ValidationFailed(
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, params and tags in total."
        )


def _order_key(value: float, step: int, timestamp: int) -> tuple:
    # MLflow's "latest": highest step, then timestamp, then value; NaN sorts lowest.
    return (step, timestamp, -math.inf if math.isnan(value) else value)


def _log_params(run: Run, pairs: list[tuple[str, str]]) -> None:
    wanted: dict[str, str] = {}
    for key, value in pairs:
        validate_key(key, "param")
        value = validate_value(value, MAX_PARAM_VAL_LENGTH, "param", key)
        if key in wanted and wanted[key] != value:
            raise ValidationFailed(f"Duplicate parameter keys have been submitted: {key} with different values.")
        wanted[key] = value
    if not wanted:
        return
    existing = dict(Param.objects.filter(run=run, key__in=list(wanted)).values_list("key", "value"))
    changed = [k for k, v in wanted.items() if k in existing and existing[k] != v]
    if changed:
        details = ", ".join(f"'{k}': old '{existing[k]}', new '{wanted[k]}'" for k in changed)
        raise ValidationFailed(
            f"Changing param values is not allowed. Params were already logged for run ID='{run.pk}' "
            f"with different values: {details}."
        )
    new = [Param(run=run, key=k, value=v) for k, v in wanted.items() if k not in existing]
    if new:
        Param.objects.bulk_create(new, ignore_conflicts=True)


def _stored(value: float) -> tuple[float, bool]:
    """A metric value as the tables keep it: NaN is 0.0 with is_nan set (SQLite cannot
    store NaN); `value != value` is the NaN test, cheaper than math.isnan."""
    nan = value != value
    return (0.0 if nan else value), nan


def _log_metrics(run: Run, points: list[tuple[str, float, int, int, str]]) -> None:
    if not points:
        return
    _insert_points(run.pk, points)
    for key, value, step, ts, model_id in points:
        if model_id:  # a duplicate that was dropped still links the point to its model
            stored, nan = _stored(value)
            Metric.objects.filter(run_id=run.pk, key=key, step=step, timestamp=ts, value=stored, is_nan=nan).update(
                model_id=model_id
            )
    _update_latest(run, _latest_per_key(points))


def _log_model_metrics(run: Run, metrics: list, points: list[tuple[str, float, int, int, str]]) -> None:
    """Points logged against a logged model of the run's project, with their dataset (the
    client sends dataset_name / dataset_digest next to model_id), for model search."""
    wanted = {p[4] for p in points if p[4]}
    if not wanted:
        return
    known = set(
        LoggedModel.objects.filter(pk__in=wanted, experiment__project_id=run.experiment.project_id).values_list(
            "pk", flat=True
        )
    )
    rows = []
    for raw, (key, value, step, ts, model_id) in zip(metrics, points, strict=True):
        if model_id in known:
            ds = raw if isinstance(raw, Mapping) else {}
            stored, nan = _stored(value)
            rows.append(
                LoggedModelMetric(
                    model_id=model_id,
                    run=run,
                    key=key,
                    value=stored,
                    is_nan=nan,
                    step=step,
                    timestamp=ts,
                    dataset_name=str(ds.get("dataset_name") or ""),
                    dataset_digest=str(ds.get("dataset_digest") or ""),
                )
            )
    LoggedModelMetric.objects.bulk_create(rows, ignore_conflicts=True)


def _latest_per_key(points: list[tuple[str, float, int, int, str]]) -> dict[str, tuple[float, int, int]]:
    """The latest point per key within the batch: (value, step, timestamp)."""
    best: dict[str, tuple[float, int, int]] = {}
    for key, value, step, ts, _model_id in points:
        current = best.get(key)
        if current is None or _order_key(value, step, ts) > _order_key(*current):
            best[key] = (value, step, ts)
    return best


def _log_metrics_one_statement(run: Run, points: list[tuple[str, float, int, int, str]]) -> None:
    """The points and the latest values in one statement. It first goes as a plain
    INSERT: ON CONFLICT DO NOTHING makes PostgreSQL insert each row speculatively
    (probe, insert, confirm), which nearly doubles the cost of a batch of a thousand.
    Only a batch that repeats a stored point (the unique index refuses it, and with it
    the whole statement) goes again with ON CONFLICT. Inside an outer transaction a
    refused statement would abort it, so there it takes ON CONFLICT at once."""
    latest_sql, latest_params = _latest_sql(run, _latest_per_key(points))
    connection.ensure_connection()
    plain_first = not connection.in_atomic_block
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
        for skip_duplicates in (False, True) if plain_first else (True,):
            points_sql, points_params = _points_statement(run.pk, points, skip_duplicates)
            try:
                # A data-modifying WITH runs exactly once, referenced or not.
                raw.execute(f"WITH points AS ({points_sql}) {latest_sql}", points_params + latest_params)
                return
            except psycopg.errors.UniqueViolation as exc:
                if skip_duplicates or exc.diag.constraint_name != "metric_unique_point":
                    raise


def _array_literal(values: list) -> str:
    """Numbers as PostgreSQL array text, which the server parses in C: binding a list
    of a thousand numbers makes psycopg dump each element in Python, three times the
    cost of the INSERT's own Python work."""
    return "{" + ",".join(map(repr, values)) + "}"


def _indexed(values: list[str]) -> tuple[list[str], str]:
    """Distinct strings, and each value's 1-based position among them as array text:
    keys repeat (a batch holds a few keys many times), so only the few are quoted."""
    positions: dict[str, int] = {}
    index = [positions.setdefault(v, len(positions) + 1) for v in values]
    return list(positions), _array_literal(index)


def _points_statement(run_id: str, points: list[tuple], skip_duplicates: bool = True) -> tuple[str, list]:
    """The points of one run as one INSERT over arrays: the run id, and the model id
    when every point shares it (nearly always ''), as single values; keys (and mixed
    model ids) as a few distinct strings and positions; numbers as array text. A point
    stored before is skipped, or (skip_duplicates=False) fails the statement."""
    keys, values, steps, stamps, models = (list(col) for col in zip(*points, strict=True))
    nans = [v != v for v in values]  # _stored's rule, column-wise for a thousand points
    if True in nans:
        values = [0.0 if nan else v for v, nan in zip(values, nans, strict=True)]
    distinct_keys, key_index = _indexed(keys)
    shared_model = models.count(models[0]) == len(models)  # nearly always: every model id ''
    distinct_models, model_index = ([models[0]], "") if shared_model else _indexed(models)
    sql = (
        f'INSERT INTO "{Metric._meta.db_table}" ({_METRIC_COLUMNS}) '  # noqa: S608 (fixed text)
        f"SELECT %s::varchar, (%s::varchar[])[u.k], u.v, u.n, u.s, u.t, "
        f"{'%s::varchar' if shared_model else '(%s::varchar[])[u.m]'} FROM unnest("
        f"%s::int[], %s::float8[], %s::bool[], %s::bigint[], %s::bigint[]{'' if shared_model else ', %s::int[]'}"
        f") AS u(k, v, n, s, t{'' if shared_model else ', m'})"
        f"{' ON CONFLICT DO NOTHING' if skip_duplicates else ''}"
    )
    params = [
        run_id,
        distinct_keys,
        distinct_models[0] if shared_model else distinct_models,
        key_index,
        _array_literal(values),
        _array_literal(nans),
        _array_literal(steps),
        _array_literal(stamps),
    ]
    return sql, params if shared_model else [*params, model_index]


_METRIC_COLUMNS = '"run_id", "key", "value", "is_nan", "step", "timestamp", "model_id"'


def _insert_points(run_id: str, points: list[tuple]) -> None:
    """Metric points in one statement. The ORM's bulk_create spends most of a batch
    preparing model instances; this fixed SQL takes every value as a parameter. A point
    logged twice (same run, key, step, timestamp, value) is kept once, as in MLflow."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A server-side-binding cursor on the same connection and transaction.
            with psycopg.Cursor(connection.connection) as raw:
                raw.execute(*_points_statement(run_id, points))
        else:
            rows = [(run_id, k, *_stored(v), s, t, m) for k, v, s, t, m in points]
            cursor.executemany(
                f'INSERT INTO "{Metric._meta.db_table}" ({_METRIC_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) '  # noqa: S608
                "ON CONFLICT DO NOTHING",
                rows,
            )


_UPSERT_LATEST = """
INSERT INTO "experiments_latestmetric" ("run_id", "key", "value", "is_nan", "step", "timestamp")
VALUES {rows}
ON CONFLICT ("run_id", "key") DO UPDATE
SET "value" = excluded."value", "is_nan" = excluded."is_nan", "step" = excluded."step",
    "timestamp" = excluded."timestamp"
WHERE (excluded."step", excluded."timestamp", CASE WHEN excluded."is_nan" THEN %s ELSE excluded."value" END)
   >= ("experiments_latestmetric"."step", "experiments_latestmetric"."timestamp",
       CASE WHEN "experiments_latestmetric"."is_nan" THEN %s ELSE "experiments_latestmetric"."value" END)
"""


def _latest_sql(run: Run, best: dict[str, tuple[float, int, int]]) -> tuple[str, list]:
    params: list = []
    for key, (value, step, ts) in best.items():
        params += [run.pk, key, *_stored(value), step, ts]
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(best))
    return _UPSERT_LATEST.format(rows=rows), [*params, -math.inf, -math.inf]


def _update_latest(run: Run, best: dict[str, tuple[float, int, int]]) -> None:
    """One statement, safe under concurrent batches: the database keeps whichever point
    is later by (step, timestamp, value), MLflow's order, with NaN lowest. The SQL text
    is fixed; only the number of placeholder groups varies, every value is a parameter."""
    sql, params = _latest_sql(run, best)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def run_log_batch(*, run: Run, metrics: Iterable = (), params: Iterable = (), tags: Iterable = ()) -> None:
    """The hot path of tracking: a handful of queries whatever the batch size.

    Metrics are (key, value, step, timestamp_ms[, model_id]) tuples or MLflow dicts;
    params and tags are (key, value) pairs, {"key", "value"} dicts or a dict. Params are
    immutable: re-logging the same value is fine, a different one is refused. All or
    nothing: a refused batch writes nothing."""
    metrics, params, tags = list(metrics), _pairs(params), _pairs(tags)
    _check_batch_limits(len(metrics), len(params), len(tags))
    points = _metric_points(metrics)
    tag_pairs = _validated_tags(tags)
    _require_active(run)
    if points and not params and not tag_pairs and connection.vendor == "postgresql" and not any(p[4] for p in points):
        # Metrics alone on PostgreSQL: one statement, atomic by itself, so no BEGIN and
        # COMMIT round trips (this is what log_metric and training loops send).
        _log_metrics_one_statement(run, points)
    else:
        with transaction.atomic():
            _log_params(run, params)
            _upsert_tags(run, tag_pairs)
            _log_metrics(run, points)
            _log_model_metrics(run, metrics, points)
    if points and _metrics_publish_due(run.pk):
        publish_run(run, "run.metrics", {"run_id": run.pk, "keys": sorted({p[0] for p in points})})


_last_metrics_publish: dict[str, float] = {}


def _metrics_publish_due(run_id: str, interval: float = 0.5) -> bool:
    """Live charts need a nudge, not one message per batch: at most two a second per run
    and process (the page re-reads the history when nudged)."""
    now = time.monotonic()
    if now - _last_metrics_publish.get(run_id, 0.0) < interval:
        return False
    if len(_last_metrics_publish) > 10000:
        _last_metrics_publish.clear()
    _last_metrics_publish[run_id] = now
    return True


@transaction.atomic
def run_log_inputs(*, run: Run, datasets: Iterable[Mapping] = (), model_ids: Iterable[str] = ()) -> None:
    """datasets: MLflow DatasetInput dicts ({"dataset": {...}, "tags": [{"key", "value"}]})."""
    _require_active(run)
    datasets = list(datasets)
    if len(datasets) > MAX_DATASETS_PER_BATCH:
        raise ValidationFailed(f"At most {MAX_DATASETS_PER_BATCH} datasets per request.")
    for item in datasets:
        _log_dataset_input(run, item)
    for model_id in model_ids:
        model = _model_in_project(run, model_id)
        RunModelLink.objects.get_or_create(run=run, model=model, direction=RunModelLink.Direction.INPUT)


def _log_dataset_input(run: Run, item: Mapping) -> None:
    ds = item.get("dataset") or {}
    name, digest = str(ds.get("name") or ""), str(ds.get("digest") or "")
    if not name or not digest:
        raise ValidationFailed("A dataset input needs a dataset name and digest.")
    if len(name) > 500 or len(digest) > 36:
        raise ValidationFailed("Dataset name or digest is too long.")
    dataset, _ = Dataset.objects.get_or_create(
        experiment_id=run.experiment_id,
        name=name,
        digest=digest,
        defaults={
            "source_type": str(ds.get("source_type") or "")[:36],
            "source": str(ds.get("source") or "")[:65535],
            "schema": str(ds.get("schema") or ""),
            "profile": str(ds.get("profile") or ""),
        },
    )
    tags = {str(k)[:255]: str(v)[:500] for k, v in _pairs(item.get("tags"))}
    DatasetInput.objects.update_or_create(
        run=run, dataset=dataset, defaults={"tags": tags, "context": tags.get("mlflow.data.context", "")}
    )


def _model_in_project(run: Run, model_id: str) -> LoggedModel:
    model = LoggedModel.objects.filter(pk=model_id, experiment__project_id=run.experiment.project_id).first()
    if model is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model


@transaction.atomic
def run_log_outputs(*, run: Run, models: Iterable[tuple[str, int]]) -> None:
    _require_active(run)
    for model_id, step in models:
        model = _model_in_project(run, model_id)
        RunModelLink.objects.update_or_create(
            run=run, model=model, direction=RunModelLink.Direction.OUTPUT, defaults={"step": step or 0}
        )
