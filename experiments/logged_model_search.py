"""MLflow 3's logged-model search (logged-models/search) compiled to Django ORM
filters, on the tokenizer and parser of experiments.search.

    metrics.accuracy > 0.9 AND params.lr = '0.01' AND tags.team LIKE 'g%'
    AND name = 'clf' AND status = 'READY' AND creation_timestamp > 1700000000000

Semantics follow MLflow 3.17.2's SQL store: a metric clause matches a model with any
point of that metric satisfying it (on one of the `datasets` when given); param and tag
clauses need the key to exist; `datasets` alone keeps models with a metric on one of
them. order_by is a list of {field_name, ascending, dataset_name, dataset_digest}, nulls
last, ties broken by creation_timestamp DESC then model_id. Every value is a bound
parameter."""

import base64
from dataclasses import asdict, dataclass
import json
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from experiments import search
from experiments.models import LoggedModelMetric, LoggedModelParam, LoggedModelStatus, LoggedModelTag
from experiments.search import Clause
from mlplatform.errors import ValidationFailed

STRING_ATTRIBUTES = {
    "name": "name",
    "model_id": "id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
}
NUMERIC_ATTRIBUTES = {
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "creation_timestamp_ms": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "last_updated_time": "last_updated_timestamp",
    "last_updated_timestamp_ms": "last_updated_timestamp",
}
NUMERIC_OPS = {"<", "<=", ">", ">=", "=", "==", "!=", "<>"}
STRING_OPS = {"=", "==", "!=", "<>", "LIKE", "ILIKE", "IN", "NOT IN"}
# Clients write MLflow's entity names (READY); the store keeps the proto's (LOGGED_MODEL_READY).
STATUS_NAMES = {
    "PENDING": LoggedModelStatus.PENDING,
    "READY": LoggedModelStatus.READY,
    "FAILED": LoggedModelStatus.FAILED,
    "UPLOAD_FAILED": LoggedModelStatus.FAILED,
}


@dataclass(frozen=True)
class DatasetFilter:
    name: str
    digest: str | None = None


def parse_datasets(items: list) -> list[DatasetFilter]:
    out = []
    for item in items or []:
        if not isinstance(item, dict) or not item.get("dataset_name"):
            raise ValidationFailed("`dataset_name` in the `datasets` clause must be specified.")
        out.append(DatasetFilter(str(item["dataset_name"]), str(item.get("dataset_digest") or "") or None))
    return out


def _dataset_q(datasets: list[DatasetFilter], prefix: str = "") -> Q:
    q = Q()
    for d in datasets:
        one = Q(**{f"{prefix}dataset_name": d.name})
        if d.digest:
            one &= Q(**{f"{prefix}dataset_digest": d.digest})
        q |= one
    return q


def _status_value(value: object) -> object:
    if isinstance(value, list):
        return [_status_value(v) for v in value]
    return STATUS_NAMES.get(value, value) if isinstance(value, str) else value


def _check_op(clause: Clause, ops: set[str], what: str) -> None:
    if clause.op not in ops:
        raise ValidationFailed(f"Invalid comparison operator for {what}: {clause.op!r}. Expected one of {sorted(ops)}.")


def _attribute_q(clause: Clause, text: str) -> Q:
    key = clause.key
    if key in NUMERIC_ATTRIBUTES:
        _check_op(clause, NUMERIC_OPS, f"attributes.{key}")
        return search._numeric_q(NUMERIC_ATTRIBUTES[key], clause.op, clause.value, text)
    if key in STRING_ATTRIBUTES:
        _check_op(clause, STRING_OPS, f"attributes.{key}")
        value = _status_value(clause.value) if key == "status" else clause.value
        return search._string_q(STRING_ATTRIBUTES[key], clause.op, value, text)
    raise ValidationFailed(
        f"Invalid logged model search key '{key}'. Valid attributes: "
        f"{', '.join(sorted([*STRING_ATTRIBUTES, *NUMERIC_ATTRIBUTES]))}."
    )


def _keyed_q(model, clause: Clause, text: str) -> Q:
    _check_op(clause, STRING_OPS, f"{clause.entity}.{clause.key}")
    rows = model.objects.filter(model=OuterRef("pk"), key=clause.key)
    value = search._num_str(clause.value) if isinstance(clause.value, float) else clause.value  # `params.n = 3`
    return Q(Exists(rows.filter(search._string_q("value", clause.op, value, text))))


def _metric_q(clause: Clause, text: str, datasets: list[DatasetFilter]) -> Q:
    _check_op(clause, NUMERIC_OPS, f"metrics.{clause.key}")
    points = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=clause.key, is_nan=False)
    condition = search._numeric_q("value", clause.op, clause.value, text)
    return Q(Exists(points.filter(condition & _dataset_q(datasets))))


def compile_filter(text: str | None, datasets: list[DatasetFilter]) -> Q:
    q = Q()
    has_metric = False
    for clause in search.parse_filter(text):
        if clause.entity == "attributes":
            q &= _attribute_q(clause, text)
        elif clause.entity == "metrics":
            has_metric = True
            q &= _metric_q(clause, text, datasets)
        elif clause.entity == "params":
            q &= _keyed_q(LoggedModelParam, clause, text)
        elif clause.entity == "tags":
            q &= _keyed_q(LoggedModelTag, clause, text)
        else:
            raise ValidationFailed(
                f"Invalid entity type: {clause.entity!r}. Expected one of attributes, metrics, params, tags."
            )
    if datasets and not has_metric:
        q &= Q(Exists(LoggedModelMetric.objects.filter(_dataset_q(datasets), model=OuterRef("pk"))))
    return q


def _order_field(item: dict[str, Any]) -> tuple[str, str | None]:
    """("attribute", field) or ("metric", key)."""
    field_name = item.get("field_name")
    if not isinstance(field_name, str) or not field_name.strip():
        raise ValidationFailed("`field_name` in the `order_by` clause must be specified.")
    if "." in field_name:
        entity, key = field_name.split(".", 1)
        if entity != "metrics":
            raise ValidationFailed(f"Invalid order by field name: {entity}, only `metrics.<name>` is allowed.")
        return "metric", key.strip("`")
    name = field_name.strip()
    field = NUMERIC_ATTRIBUTES.get(name) or STRING_ATTRIBUTES.get(name)
    if field is None:
        raise ValidationFailed(f"Invalid order by field name: {name}.")
    return "attribute", field


def apply_order(qs: QuerySet, order_by: list) -> QuerySet:
    ordering, fields = [], set()
    for i, item in enumerate(order_by or []):
        if not isinstance(item, dict):
            raise ValidationFailed("`order_by` must be a list of dictionaries.")
        kind, field = _order_field(item)
        ascending = item.get("ascending", True)
        if ascending not in (True, False):
            raise ValidationFailed(
                f"Value of `ascending` in the `order_by` clause must be a boolean, got {ascending!r}."
            )
        if item.get("dataset_digest") and not item.get("dataset_name"):
            raise ValidationFailed("`dataset_digest` can only be specified if `dataset_name` is also specified.")
        if kind == "metric":
            alias = f"_order_metric_{i}"
            qs = qs.annotate(**{alias: _latest_metric(field, item)})
            field = alias
        fields.add(field)
        ordering.append(F(field).asc(nulls_last=True) if ascending else F(field).desc(nulls_last=True))
    if "creation_timestamp" not in fields:
        ordering.append(F("creation_timestamp").desc())
    if "id" not in fields:
        ordering.append(F("id").asc())
    return qs.order_by(*ordering)


def _latest_metric(key: str, item: dict[str, Any]) -> Subquery:
    """The model's latest point of `key` (on the dataset when given), as MLflow sorts."""
    points = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=key, is_nan=False)
    if item.get("dataset_name"):
        points = points.filter(_dataset_q([DatasetFilter(item["dataset_name"], item.get("dataset_digest"))]))
    return Subquery(points.order_by("-timestamp", "-step", "run_id").values("value")[:1])


@dataclass
class PageToken:
    """MLflow's token: the offset, plus the query it belongs to (a token is refused
    for another query, as in MLflow)."""

    experiment_ids: list[str]
    filter_string: str | None = None
    order_by: list | None = None
    offset: int = 0

    def encode(self) -> str:
        return base64.b64encode(json.dumps(asdict(self)).encode()).decode()

    @classmethod
    def decode(cls, token: str) -> "PageToken":
        data = search.decode_token_data(token)
        return cls(
            data.get("experiment_ids") or [],
            data.get("filter_string") or None,
            data.get("order_by") or None,
            data["offset"],
        )

    def check(self, experiment_ids: list[str], filter_string: str | None, order_by: list | None) -> None:
        if (self.experiment_ids, self.filter_string, self.order_by) != (experiment_ids, filter_string, order_by):
            raise ValidationFailed(
                "The page token belongs to another search (experiment ids, filter or order by differ)."
            )
