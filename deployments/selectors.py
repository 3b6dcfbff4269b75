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


def drift(
    *, revision: Revision, since: datetime | None = None, sample: int = DRIFT_SAMPLE, psi_threshold: float = 0.2
) -> dict:
    """Per-feature drift of the inputs this revision saw (its latest `sample` logged
    requests) against the reference captured at deploy."""
    if not revision.reference:
        return {}
    qs = PredictionLog.objects.filter(revision_id=revision.pk, status=200)
    if since is not None:
        qs = qs.filter(at__gte=since)
    live: dict[str, list] = {}
    for _, payload in _payloads(qs, sample):
        for name, values in (payload.get("in") or {}).items():
            live.setdefault(name, []).extend(values)
    return monitoring.drift_report(revision.reference, live, psi_threshold=psi_threshold)


def _pairs(prediction: Any, actual: Any) -> list[tuple[Any, Any]]:
    predictions = prediction if isinstance(prediction, list) else [prediction]
    actuals = actual if isinstance(actual, list) else [actual]
    if len(predictions) != len(actuals):
        return []
    return list(zip(predictions, actuals, strict=True))


def live_kpi(
    *, endpoint: Endpoint, revision_id: int, metric: str, since: datetime | None = None, limit: int = 5000
) -> dict:
    """`metric` of one revision's predictions against the ground truth sent for them."""
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
