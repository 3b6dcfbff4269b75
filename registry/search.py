"""MLflow's registry search language (registered-models/search, model-versions/search)
compiled to Django ORM filters, on the tokenizer and parser of experiments.search.

    name LIKE 'churn%' AND tags.team = 'growth'
    name IN ('a', 'b') AND version_number >= 3 AND run_id != 'abc' AND source_path LIKE '%model'

Semantics follow MLflow 3.17.2's SQL store: clauses are ANDed; a tag clause needs the
tag to exist (so `tags.k != 'v'` skips models without `k`); prompts (models tagged
`mlflow.prompt.is_prompt = 'true'`) are left out unless the filter asks for them.
`name` is the name the caller sees: plain in the caller's default project,
`<project-slug>/<name>` elsewhere; the full `<project-slug>/<name>` of a model in the
default project names it too. Callers annotate the queryset with both (`mlflow_name`,
`mlflow_full_name`, see mlflow_name()). Every value is a bound parameter."""

import math

from django.db.models import Case, CharField, Exists, Expression, F, OuterRef, Q, Value, When
from django.db.models.functions import Concat

from experiments import search
from experiments.search import Clause
from mlplatform.errors import ValidationFailed
from registry.models import ModelVersionTag, RegisteredModelTag

PROMPT_TAG = "mlflow.prompt.is_prompt"
TAG_OPS = {"=", "==", "!=", "<>", "LIKE", "ILIKE"}
STRING_OPS = TAG_OPS | {"IN", "NOT IN"}
NUMERIC_OPS = set(search.NUMERIC_OPS)
VERSION_STRING_FIELDS = {"name": "mlflow_name", "run_id": "run_id", "source_path": "source"}
VERSION_LIST_KEYS = {"name", "run_id"}
# `timestamp` is MLflow's recommended key and means last_updated_timestamp there.
MODEL_ORDER_FIELDS = {
    "name": "mlflow_name",
    "timestamp": "last_updated_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "creation_timestamp": "creation_timestamp",
}
VERSION_ORDER_FIELDS = {
    "name": "mlflow_name",
    "version_number": "version",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}
VERSION_DEFAULT_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


def mlflow_name(*, prefix: str = "", default_project_id: int | None = None, plain: bool = False) -> Expression:
    """The model name as MLflow clients see it, for filtering and sorting in SQL."""
    name = F(f"{prefix}name")
    if plain:
        return name
    slugged = Concat(F(f"{prefix}project__slug"), Value("/"), name, output_field=CharField())
    if default_project_id is None:
        return slugged
    return Case(
        When(**{f"{prefix}project_id": default_project_id}, then=name), default=slugged, output_field=CharField()
    )


def _name_q(clause: Clause, text: str) -> Q:
    seen = search._string_q("mlflow_name", clause.op, clause.value, text)
    full = search._string_q("mlflow_full_name", clause.op, clause.value, text)
    return seen & full if clause.op in ("!=", "<>", "NOT IN") else seen | full


def _clauses(text: str | None, kind: str) -> list[Clause]:
    clauses = search.parse_filter(text)
    for c in clauses:
        if c.entity not in ("attributes", "tags"):
            raise ValidationFailed(
                f"Invalid entity type '{c.entity}' in {kind} filter '{text}'. Valid entity types are attribute and tag."
            )
    return clauses


def _tag_q(tag_model, link: str, clause: Clause, text: str) -> Q:
    if clause.op not in TAG_OPS:
        raise ValidationFailed(f"Invalid comparator for tag: {clause.op}")
    tags = tag_model.objects.filter(**{link: OuterRef("pk")}, key=clause.key)
    return Q(Exists(tags.filter(search._string_q("value", clause.op, clause.value, text))))


def _queries_prompts(clauses: list[Clause]) -> bool:
    for c in clauses:
        if c.entity == "tags" and c.key == PROMPT_TAG and isinstance(c.value, str):
            op, value = c.op, c.value.lower()
            return (op in ("=", "==") and value == "true") or (op in ("!=", "<>") and value == "false")
    return False


def _prompt_handling(clauses: list[Clause], prompt_q: Q) -> tuple[list[Clause], Q]:
    """MLflow's rule: prompts only when asked for; otherwise prompt-tag clauses drop out."""
    if _queries_prompts(clauses):
        return clauses, Q()
    return [c for c in clauses if not (c.entity == "tags" and c.key == PROMPT_TAG)], ~prompt_q


def registered_model_filter(text: str | None) -> Q:
    """A Q over RegisteredModel annotated with `mlflow_name`."""
    clauses, q = _prompt_handling(
        _clauses(text, "registered model"),
        Q(Exists(RegisteredModelTag.objects.filter(registered_model=OuterRef("pk"), key=PROMPT_TAG, value="true"))),
    )
    for c in clauses:
        if c.entity == "tags":
            q &= _tag_q(RegisteredModelTag, "registered_model", c, text)
            continue
        if c.key != "name":
            raise ValidationFailed(f"Invalid attribute key '{c.key}' specified. Valid keys are '{{'name'}}'")
        if c.op not in STRING_OPS:
            raise ValidationFailed(f"Invalid comparator for attribute: {c.op}")
        q &= _name_q(c, text)
    return q


def _version_number_q(clause: Clause, text: str) -> Q:
    if clause.op not in NUMERIC_OPS:
        raise ValidationFailed(f"Invalid comparator for attribute version_number: {clause.op}")
    try:
        number = float(clause.value)  # '3' as well as 3, as MLflow's int(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer():
        raise ValidationFailed(f"Invalid value for numeric attribute 'version_number': {clause.value!r}")
    return search._numeric_q("version", clause.op, number, text)


def model_version_filter(text: str | None) -> Q:
    """A Q over ModelVersion annotated with `mlflow_name` (its registered model's)."""
    prompt = Q(Exists(ModelVersionTag.objects.filter(model_version=OuterRef("pk"), key=PROMPT_TAG, value="true"))) | Q(
        Exists(
            RegisteredModelTag.objects.filter(
                registered_model=OuterRef("registered_model"), key=PROMPT_TAG, value="true"
            )
        )
    )
    clauses, q = _prompt_handling(_clauses(text, "model version"), prompt)
    for c in clauses:
        if c.entity == "tags":
            q &= _tag_q(ModelVersionTag, "model_version", c, text)
        elif c.key == "version_number":
            q &= _version_number_q(c, text)
        elif c.key in VERSION_STRING_FIELDS:
            if c.op not in STRING_OPS or (c.op in ("IN", "NOT IN") and c.key not in VERSION_LIST_KEYS):
                raise ValidationFailed(f"Invalid comparator for attribute: {c.op}")
            field = VERSION_STRING_FIELDS[c.key]
            q &= _name_q(c, text) if c.key == "name" else search._string_q(field, c.op, c.value, text)
        else:
            raise ValidationFailed(
                f"Invalid attribute key '{c.key}' specified. Valid keys are 'name, version_number, run_id, source_path'"
            )
    return q


def _order(order_by: list[str] | None, fields: dict[str, str]) -> list[tuple[str, bool]]:
    """(field, descending) per clause; MLflow refuses a field named twice."""
    out: list[tuple[str, bool]] = []
    for item in order_by or []:
        entity, key, descending = search.parse_order_item(item)
        field = fields.get(key) if entity == "attributes" else None
        if field is None:
            raise ValidationFailed(
                f"Invalid order by key '{key}' specified. Valid keys are '{', '.join(sorted(fields))}'"
            )
        if any(f == field for f, _ in out):
            raise ValidationFailed(f"`order_by` contains duplicate fields: {order_by}")
        out.append((field, descending))
    return out


def _expressions(pairs: list[tuple[str, bool]]) -> list:
    return [F(f).desc() if desc else F(f).asc() for f, desc in pairs]


def registered_model_order(order_by: list[str] | None) -> list:
    pairs = _order(order_by, MODEL_ORDER_FIELDS)
    if not any(f == "mlflow_name" for f, _ in pairs):
        pairs.append(("mlflow_name", False))
    return _expressions(pairs)


def model_version_order(order_by: list[str] | None) -> list:
    pairs = _order(order_by or VERSION_DEFAULT_ORDER, VERSION_ORDER_FIELDS)
    if not any(f == "mlflow_name" for f, _ in pairs):
        pairs.append(("mlflow_name", False))
    if not any(f == "version" for f, _ in pairs):
        pairs.append(("version", True))
    # Two models may read alike across projects; the pk keeps pages stable.
    return [*_expressions(pairs), F("pk").asc()]
