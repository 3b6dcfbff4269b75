"""MLflow's run search language compiled to Django ORM filters.

    metrics.acc > 0.5 AND params.solver = 'lbfgs' AND tags.`my key` LIKE 'a%'
    AND attributes.status IN ('FINISHED', 'RUNNING') AND datasets.digest = 'abc'

Clauses are joined by AND; each is `<entity>.<key> <comparator> <value>`. Every value
becomes a bound parameter, so SQL inside a string is just a string that matches nothing.
A malformed filter raises ValidationFailed (MLflow's INVALID_PARAMETER_VALUE)."""

import base64
import binascii
from dataclasses import dataclass
import json
import re

from django.db.models import Exists, F, FilteredRelation, OuterRef, Q, QuerySet

from experiments.models import DatasetInput, LatestMetric, Param, RunTag
from mlplatform import jsondepth
from mlplatform.errors import ValidationFailed

_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>(?:[A-Za-z_][\w]*)(?:\.(?:`[^`]*`|"[^"]*"|[\w\-/:.]+))?|`[^`]*`)
    )""",
    re.VERBOSE,
)

ENTITY_ALIASES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
    "dataset": "datasets",
    "datasets": "datasets",
}
STRING_ATTRIBUTES = {
    "run_id": "id",
    "run_name": "name",
    "status": "status",
    "user_id": "user_name",
    "artifact_uri": "artifact_uri",
    "lifecycle_stage": "lifecycle_stage",
}
NUMERIC_ATTRIBUTES = {"start_time": "start_time", "end_time": "end_time", "created": "start_time"}
NUMERIC_OPS = {"=": "exact", "==": "exact", "!=": "ne", "<>": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
STRING_OPS = {"=", "==", "!=", "<>", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"}
DATASET_FIELDS = {"name": "dataset__name", "digest": "dataset__digest", "context": "context"}
MAX_RESULTS_LIMIT = 50000


@dataclass
class Clause:
    entity: str
    key: str
    op: str
    value: object


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValidationFailed(
                f"Invalid filter '{text}': unexpected text at position {pos}: '{text[pos : pos + 20]}'."
            )
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "`\"'":
        inner = token[1:-1]
        if token[0] == "'":
            inner = inner.replace("''", "'")
        return re.sub(r"\\(.)", r"\1", inner) if token[0] != "`" else inner
    return token


def _split_identifier(ident: str, text: str) -> tuple[str, str]:
    if ident.startswith("`"):  # a bare backticked name is an attribute, as in MLflow
        return "attributes", _unquote(ident)
    entity, dot, key = ident.partition(".")
    if not dot:  # a bare name is an attribute (`status`, `name`); callers check which
        return "attributes", ident.lower()
    canonical = ENTITY_ALIASES.get(entity.lower())
    if canonical is None:
        raise ValidationFailed(
            f"Invalid entity type '{entity}' in filter '{text}'. Valid types are metrics, params, tags, "
            "attributes and datasets."
        )
    key = _unquote(key)
    if not key:
        raise ValidationFailed(f"Invalid filter '{text}': empty key.")
    return canonical, key


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ValidationFailed(f"Invalid filter '{self.text}': it ends too early.")
        self.pos += 1
        return token

    def word(self, offset: int = 0) -> str:
        token = self.peek(offset)
        return token[1].upper() if token and token[0] == "ident" else ""

    def parse(self) -> list[Clause]:
        clauses = [self.clause()]
        while self.peek() is not None:
            if self.word() != "AND":
                raise ValidationFailed(
                    f"Invalid filter '{self.text}': clauses must be joined with AND (OR is not supported)."
                )
            self.take()
            clauses.append(self.clause())
        return clauses

    def clause(self) -> Clause:
        kind, ident = self.take()
        if kind != "ident":
            raise ValidationFailed(f"Invalid filter '{self.text}': expected a name, got '{ident}'.")
        entity, key = _split_identifier(ident, self.text)
        op = self.comparator()
        if op in ("IS NULL", "IS NOT NULL"):
            return Clause(entity, key, op, None)
        value = self.value_list() if op in ("IN", "NOT IN") else self.value()
        return Clause(entity, key, op, value)

    def comparator(self) -> str:
        kind, token = self.take()
        if kind == "op":
            return token
        upper = token.upper()
        if upper in ("LIKE", "ILIKE", "IN"):
            return upper
        if upper == "NOT" and self.word() == "IN":
            self.take()
            return "NOT IN"
        if upper == "IS":
            if self.word() == "NULL":
                self.take()
                return "IS NULL"
            if self.word() == "NOT" and self.word(1) == "NULL":
                self.pos += 2
                return "IS NOT NULL"
        raise ValidationFailed(f"Invalid comparator '{token}' in filter '{self.text}'.")

    def value(self) -> object:
        kind, token = self.take()
        if kind == "string":
            return _unquote(token)
        if kind == "number":
            return float(token)
        raise ValidationFailed(f"Invalid value '{token}' in filter '{self.text}': quote strings, e.g. 'value'.")

    def value_list(self) -> list:
        if self.take() != ("punct", "("):
            raise ValidationFailed(f"Invalid filter '{self.text}': IN needs a parenthesised list of values.")
        values = [self.value()]
        while True:
            kind, token = self.take()
            if token == ")":
                return values
            if token != ",":
                raise ValidationFailed(f"Invalid filter '{self.text}': expected ',' or ')' in a value list.")
            values.append(self.value())


def parse_filter(text: str | None) -> list[Clause]:
    if not text or not text.strip():
        return []
    return _Parser(text).parse()


def _string_q(field: str, op: str, value: object, text: str) -> Q:
    if op in ("IN", "NOT IN"):
        values = [str(v) if not isinstance(v, float) else _num_str(v) for v in value]
        q = Q(**{f"{field}__in": values})
        return ~q if op == "NOT IN" else q
    if not isinstance(value, str):
        raise ValidationFailed(f"Invalid filter '{text}': the value for '{field}' must be a quoted string.")
    if op in ("=", "=="):
        return Q(**{field: value})
    if op in ("!=", "<>"):
        return ~Q(**{field: value})
    if op == "LIKE":
        return Q(**{f"{field}__sql_like": value})
    if op == "ILIKE":
        return Q(**{f"{field}__sql_ilike": value})
    raise ValidationFailed(f"Invalid comparator '{op}' for a string in filter '{text}'.")


def _num_str(v: float) -> str:
    return str(int(v)) if v.is_integer() else str(v)


def _numeric_q(field: str, op: str, value: object, text: str) -> Q:
    if op not in NUMERIC_OPS or not isinstance(value, float):
        raise ValidationFailed(f"Invalid filter '{text}': '{field}' needs a number and one of = != < <= > >=.")
    lookup = NUMERIC_OPS[op]
    if lookup == "ne":
        return ~Q(**{field: value})
    return Q(**{f"{field}__{lookup}": value})


def _keyed_exists(model, clause: Clause, text: str) -> Q:
    base = model.objects.filter(run_id=OuterRef("pk"), key=clause.key)
    if clause.op == "IS NULL":
        return ~Q(Exists(base))
    if clause.op == "IS NOT NULL":
        return Q(Exists(base))
    if model is LatestMetric:
        condition = _numeric_q("value", clause.op, clause.value, text) & Q(is_nan=False)
    else:
        condition = _string_q("value", clause.op, clause.value, text)
    return Q(Exists(base.filter(condition)))


def _attribute_q(clause: Clause, text: str) -> Q:
    key = clause.key.lower()
    if key in NUMERIC_ATTRIBUTES:
        if clause.op in ("IS NULL", "IS NOT NULL"):
            return Q(**{f"{NUMERIC_ATTRIBUTES[key]}__isnull": clause.op == "IS NULL"})
        return _numeric_q(NUMERIC_ATTRIBUTES[key], clause.op, clause.value, text)
    if key in STRING_ATTRIBUTES:
        if clause.op in ("IS NULL", "IS NOT NULL"):
            raise ValidationFailed(f"Invalid filter '{text}': IS NULL does not apply to attribute '{key}'.")
        return _string_q(STRING_ATTRIBUTES[key], clause.op, clause.value, text)
    raise ValidationFailed(
        f"Invalid attribute key '{clause.key}' in filter '{text}'. Valid keys: "
        f"{', '.join(sorted([*STRING_ATTRIBUTES, *NUMERIC_ATTRIBUTES]))}."
    )


def _dataset_q(clause: Clause, text: str) -> Q:
    field = DATASET_FIELDS.get(clause.key.lower())
    if field is None:
        raise ValidationFailed(f"Invalid dataset key '{clause.key}' in filter '{text}'. Valid: name, digest, context.")
    base = DatasetInput.objects.filter(run_id=OuterRef("pk"))
    if clause.op in ("IS NULL", "IS NOT NULL"):
        raise ValidationFailed(f"Invalid filter '{text}': IS NULL does not apply to datasets.")
    return Q(Exists(base.filter(_string_q(field, clause.op, clause.value, text))))


def metrics_required(text: str | None) -> set[str]:
    """Metric keys the filter compares, so every matching run has them."""
    return {
        c.key
        for c in parse_filter(text)
        if c.entity == "metrics" and c.op not in ("IS NULL", "IS NOT NULL", "!=", "<>")
    }


def compile_filter(text: str | None) -> Q:
    q = Q()
    for clause in parse_filter(text):
        if clause.entity == "metrics":
            q &= _keyed_exists(LatestMetric, clause, text)
        elif clause.entity == "params":
            q &= _keyed_exists(Param, clause, text)
        elif clause.entity == "tags":
            q &= _keyed_exists(RunTag, clause, text)
        elif clause.entity == "attributes":
            q &= _attribute_q(clause, text)
        else:
            q &= _dataset_q(clause, text)
    return q


_ORDER_RE = re.compile(r"^\s*(?P<ident>.+?)(?:\s+(?P<dir>ASC|DESC))?\s*$", re.IGNORECASE)


def parse_order_item(item: str | None) -> tuple[str, str, bool]:
    """`metrics.acc DESC` -> ("metrics", "acc", True); a bare name is an attribute."""
    m = _ORDER_RE.match(item or "")
    if not m:
        raise ValidationFailed(f"Invalid order_by clause '{item}'.")
    tokens = _tokens(m.group("ident"))
    if len(tokens) != 1 or tokens[0][0] != "ident":
        raise ValidationFailed(f"Invalid order_by clause '{item}'.")
    entity, key = _split_identifier(tokens[0][1], item)
    return entity, key, (m.group("dir") or "ASC").upper() == "DESC"


def apply_order(qs: QuerySet, order_by: list[str] | None, present_metrics: set[str] = frozenset()) -> QuerySet:
    """MLflow's order_by: `metrics.acc DESC`, `params.x`, `attributes.start_time ASC`...
    Ties always fall back to start_time DESC, run_id ASC, MLflow's default order.

    `present_metrics` are keys every candidate run has (the filter compares them): for
    those the join is INNER and the sort plain, which lets PostgreSQL walk the
    LatestMetric (key, value) index in order and stop after one page."""
    ordering = []
    for i, item in enumerate(order_by or []):
        entity, key, descending = parse_order_item(item)
        if entity == "attributes":
            name = key.lower()
            field = NUMERIC_ATTRIBUTES.get(name) or STRING_ATTRIBUTES.get(name)
            if field is None:
                raise ValidationFailed(f"Invalid order_by attribute '{key}'.")
            expr = F(field)
        elif entity in ("metrics", "params", "tags"):
            relation = {"metrics": "latest_metrics", "params": "params", "tags": "tags"}[entity]
            alias = f"_order_{i}"
            condition = Q(**{f"{relation}__key": key})
            if entity == "metrics":
                condition &= Q(**{f"{relation}__is_nan": False})
            # A filtered LEFT JOIN, not a correlated subquery per row: the planner can
            # hash-join it, which keeps sorting 20,000 runs fast.
            qs = qs.annotate(**{alias: FilteredRelation(relation, condition=condition)})
            expr = F(f"{alias}__value")
            if entity == "metrics" and key in present_metrics:
                qs = qs.filter(**{f"{alias}__value__isnull": False})  # makes the join INNER
                ordering.append(expr.desc() if descending else expr.asc())
                continue
        else:
            raise ValidationFailed(f"Invalid order_by clause '{item}': datasets cannot be ordered.")
        ordering.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True))
    return qs.order_by(*ordering, F("start_time").desc(), "id")


def paginate(source, limit: int, page_token: str | None) -> tuple[list, str | None]:
    """One page (`limit` rows from the token's offset) and the next page's token, None
    on the last page. `source` is a queryset or a reader `source(offset, count)`."""
    offset = decode_page_token(page_token)
    count = limit + 1  # one more tells whether another page follows
    rows = source(offset, count) if callable(source) else list(source[offset : offset + count])
    return rows[:limit], encode_page_token(offset + limit) if len(rows) > limit else None


def encode_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    return decode_token_data(token)["offset"] if token else 0


def decode_token_data(token: str) -> dict:
    """A page token's JSON object, refused unless it holds a valid offset."""
    try:
        data = jsondepth.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"Invalid page token, could not base64-decode: {exc}")
    offset = data.get("offset") if isinstance(data, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValidationFailed("Invalid page token: it holds no valid offset.")
    return data


def check_max_results(value: int | None, default: int = 1000) -> int:
    if value is None:
        return default
    if value <= 0 or value > MAX_RESULTS_LIMIT:
        raise ValidationFailed(
            f"Invalid value {value} for parameter 'max_results' supplied. "
            f"It must be at most {MAX_RESULTS_LIMIT} and positive."
        )
    return value
