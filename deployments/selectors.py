"""Reads of endpoints and their monitoring data, filtered by what the user may see."""

from datetime import datetime, timedelta
import json
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from deployments import monitoring
from deployments.models import (
    DroppedRecords,
    Endpoint,
    EndpointEvent,
    Feedback,
    MinuteStat,
    PredictionLog,
    Revision,
    ServingProcess,
)
from mlplatform.errors import NotFound
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_check, project_visible_ids

DRIFT_SAMPLE = 500


def endpoint_list(*, user: User, project: Project | None = None) -> QuerySet[Endpoint]:
    qs = Endpoint.objects.select_related("project", "champion", "challenger").filter(
        project__in=project_visible_ids(user=user)
    )
    if project is not None:
        qs = qs.filter(project=project)
    return qs.order_by("project__name", "name")


def endpoint_get(*, user: User, slug: str, min_role: str = Role.VIEWER) -> Endpoint:
    """The endpoint, if the user may see its project (NotFound otherwise, never
    revealing that it exists); PermissionDenied below `min_role`."""
    endpoint = Endpoint.objects.select_related("project", "champion", "challenger").filter(slug=slug).first()
    if endpoint is None:
        raise NotFound("Endpoint not found.")
    try:
        project_check(user=user, project=endpoint.project, min_role=min_role)
    except NotFound:
        raise NotFound("Endpoint not found.")
    return endpoint


def revision_list(*, endpoint: Endpoint) -> QuerySet[Revision]:
    return endpoint.revisions.select_related("created_by").order_by("-number")


def event_list(*, endpoint: Endpoint, limit: int = 100) -> QuerySet[EndpointEvent]:
    return endpoint.events.select_related("revision", "actor").order_by("-created_at", "-id")[:limit]


# -- monitoring -----------------------------------------------------------------------
def window_stats(
    *, endpoint: Endpoint, revision_id: int, since: datetime, roles: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Exact requests, errors and latency percentiles of one revision since `since`."""
    qs = PredictionLog.objects.filter(endpoint_id=endpoint.pk, revision_id=revision_id, at__gte=since)
    if roles:
        qs = qs.filter(role__in=roles)
    rows = list(qs.values_list("status", "latency_ms"))
    errors = sum(1 for status, _ in rows if status >= 500)
    return {
        "requests": len(rows),
        "errors": errors,
        "error_rate": monitoring.error_rate(len(rows), errors),
        **monitoring.percentiles([ms for _, ms in rows]),
    }


def _payloads(qs: QuerySet, limit: int) -> list[tuple[str, dict]]:
    out = []
    for request_id, payload in qs.exclude(payload="").order_by("-at").values_list("request_id", "payload")[:limit]:
        try:
            out.append((request_id, json.loads(payload)))
        except ValueError:
            continue
    return out


def drift_reference(*, revision: Revision, min_rows: int = monitoring.MIN_REFERENCE_ROWS) -> dict[str, Any]:
    """What drift is measured against, as the dashboard states it."""
    rows = monitoring.reference_rows(revision.reference) if revision.reference else 0
    usable = monitoring.reference_usable(revision.reference, min_rows)
    if usable:
        status = f"{revision.reference_source or 'reference'}: {rows} rows"
    elif revision.burn_in_rows and not revision.reference:
        status = f"no reference yet: burn-in, the first {revision.burn_in_rows} live rows become the reference"
    elif rows:
        status = f"no reference: {revision.reference_source or 'the reference'} has {rows} rows, fewer than {min_rows}"
    else:
        status = "no reference: deploy with training data, a logged sample or a burn-in window"
    return {"source": revision.reference_source, "rows": rows, "usable": usable, "status": status}


def _drift_rows(revision: Revision, since: datetime | None) -> QuerySet:
    qs = PredictionLog.objects.filter(revision_id=revision.pk, status=200)
    if revision.reference_until is not None:
        # A burn-in reference: drift is what came after it.
        qs = qs.filter(at__gt=revision.reference_until)
    if since is not None:
        qs = qs.filter(at__gte=since)
    return qs


def _columns(payloads: list[dict]) -> dict[str, list]:
    live: dict[str, list] = {}
    for payload in payloads:
        for name, values in (payload.get("in") or {}).items():
            live.setdefault(name, []).extend(values)
    return live


def drift(
    *,
    revision: Revision,
    since: datetime | None = None,
    sample: int = DRIFT_SAMPLE,
    psi_threshold: float = 0.2,
    min_rows: int = monitoring.MIN_REFERENCE_ROWS,
) -> dict:
    """Per-feature drift of the inputs this revision saw (its latest `sample` logged
    requests) against its reference; empty without a usable reference."""
    if not monitoring.reference_usable(revision.reference, min_rows):
        return {}
    payloads = [p for _, p in _payloads(_drift_rows(revision, since), sample)]
    return monitoring.drift_report(revision.reference, _columns(payloads), psi_threshold=psi_threshold)


def drift_series(
    *,
    revision: Revision,
    since: datetime,
    bucket_minutes: int = 5,
    sample: int = 5000,
    min_rows: int = monitoring.MIN_REFERENCE_ROWS,
) -> dict[str, list[tuple[str, float]]]:
    """Per feature: (bucket start, PSI or JS) for every time bucket with enough rows."""
    if not monitoring.reference_usable(revision.reference, min_rows):
        return {}
    buckets: dict[datetime, list[dict]] = {}
    rows = _drift_rows(revision, since).exclude(payload="").order_by("-at").values_list("at", "payload")[:sample]
    for at, payload in rows:
        start = at.replace(second=0, microsecond=0)
        start -= timedelta(minutes=start.minute % bucket_minutes)
        try:
            buckets.setdefault(start, []).append(json.loads(payload))
        except ValueError:
            continue
    series: dict[str, list[tuple[str, float]]] = {}
    for start in sorted(buckets):
        for name, entry in monitoring.drift_report(revision.reference, _columns(buckets[start])).items():
            if entry["value"] is not None:
                series.setdefault(name, []).append((start.isoformat(), entry["value"]))
    return series


def burn_in_rows(*, revision: Revision, rows: int) -> tuple[dict[str, list], datetime | None]:
    """The revision's first `rows` live input rows (by feature) and when the last came;
    ({}, None) until that many have been logged."""
    qs = PredictionLog.objects.filter(revision_id=revision.pk, status=200).exclude(payload="").order_by("at", "id")
    columns: dict[str, list] = {}
    for at, payload in qs.values_list("at", "payload").iterator(chunk_size=500):
        try:
            inputs = json.loads(payload).get("in") or {}
        except ValueError:
            continue
        for name, values in inputs.items():
            columns.setdefault(name, []).extend(values)
        if columns and min(len(v) for v in columns.values()) >= rows:
            return {name: values[:rows] for name, values in columns.items()}, at
    return {}, None


def _pairs(prediction: Any, actual: Any) -> list[tuple[Any, Any]]:
    predictions = prediction if isinstance(prediction, list) else [prediction]
    actuals = actual if isinstance(actual, list) else [actual]
    if len(predictions) != len(actuals):
        return []
    return list(zip(predictions, actuals, strict=True))


def live_pairs(
    *, endpoint: Endpoint, revision_id: int, since: datetime | None = None, limit: int = 5000
) -> list[tuple[Any, Any]]:
    """(prediction, ground truth) of one revision's answered requests with feedback."""
    qs = PredictionLog.objects.filter(endpoint_id=endpoint.pk, revision_id=revision_id, status=200)
    if since is not None:
        qs = qs.filter(at__gte=since)
    logged = dict(_payloads(qs, limit))
    truth = dict(
        Feedback.objects.filter(endpoint_id=endpoint.pk, request_id__in=list(logged)).values_list(
            "request_id", "actual"
        )
    )
    pairs: list[tuple[Any, Any]] = []
    for request_id, actual in truth.items():
        pairs.extend(_pairs(logged[request_id].get("out"), actual))
    return pairs


def live_kpi(
    *, endpoint: Endpoint, revision_id: int, metric: str, since: datetime | None = None, limit: int = 5000
) -> dict:
    """`metric` of one revision's predictions against the ground truth sent for them."""
    pairs = live_pairs(endpoint=endpoint, revision_id=revision_id, since=since, limit=limit)
    return {"metric": metric, "value": monitoring.live_kpi(pairs, metric), "n": len(pairs)}


def minute_series(*, endpoint: Endpoint, minutes: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per minute and revision: requests, errors, client errors, p50/p95/p99."""
    now = now or timezone.now()
    since = (now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    merged: dict[tuple, dict] = {}
    for stat in MinuteStat.objects.filter(endpoint_id=endpoint.pk, minute__gte=since).order_by("minute"):
        key = (stat.minute, stat.revision_id, stat.role)
        row = merged.setdefault(key, {"requests": 0, "errors": 0, "client_errors": 0, "histogram": {}})
        row["requests"] += stat.requests
        row["errors"] += stat.errors
        row["client_errors"] += stat.client_errors
        row["histogram"] = monitoring.histogram_merge(row["histogram"], stat.histogram)
    series = []
    for (minute, revision_id, role), row in sorted(merged.items(), key=lambda kv: kv[0][0]):
        series.append(
            {
                "minute": minute.isoformat(),
                "revision_id": revision_id,
                "role": role,
                "requests": row["requests"],
                "errors": row["errors"],
                "client_errors": row["client_errors"],
                "error_rate": monitoring.error_rate(row["requests"], row["errors"]),
                **monitoring.histogram_percentiles(row["histogram"]),
            }
        )
    return series


def log_health(*, endpoint: Endpoint) -> dict[str, int]:
    """Logged and dropped prediction records, for the dashboard's honesty line."""
    dropped = DroppedRecords.objects.filter(endpoint_id__in=[endpoint.pk, None]).aggregate(n=Sum("count"))["n"] or 0
    logged = PredictionLog.objects.filter(endpoint_id=endpoint.pk).count()
    live = ServingProcess.objects.filter(last_seen__gte=timezone.now() - timedelta(seconds=10)).count()
    return {"logged": logged, "dropped": dropped, "serving_processes": live}


# -- a model version's deployments ---------------------------------------------------
SERVING_KINDS = ("deployed", "ready", "promoted", "rolled_back", "failed", "retired")


def version_serving(*, model_version_id: int, limit: int = 50) -> dict[str, Any]:
    """Where a registered version serves now (champion, canary or shadow, since when)
    and its deployment history: every timeline event of its revisions, newest first.
    The caller checked that the user sees the version's project (endpoints are in the
    same project)."""
    revisions = list(
        Revision.objects.filter(model_version_id=model_version_id).select_related(
            "endpoint__champion", "endpoint__challenger"
        )
    )
    now = []
    for revision in revisions:
        endpoint = revision.endpoint
        if endpoint.champion_id == revision.pk:
            role = "champion"
        elif endpoint.challenger_id == revision.pk:
            role = endpoint.challenger_mode
        else:
            continue
        since = (
            EndpointEvent.objects.filter(revision=revision, kind__in=("promoted", "ready", "deployed"))
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        now.append({"endpoint": endpoint, "revision": revision, "role": role, "since": since or revision.created_at})
    history = (
        EndpointEvent.objects.filter(revision__in=[r.pk for r in revisions], kind__in=SERVING_KINDS)
        .select_related("endpoint", "revision", "actor")
        .order_by("-created_at", "-id")[:limit]
    )
    return {"now": now, "history": list(history)}
