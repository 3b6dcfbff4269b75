"""KPIs: definitions and their value history. Callers have checked the actor's role
(data scientist or above for definitions and manual values)."""

from datetime import datetime
import math

from django.db import transaction
from django.utils import timezone

from mlplatform import events
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import AlreadyExists, ValidationFailed
from mlplatform.models import User
from projects.models import Kpi, KpiDirection, KpiSource, KpiValue, Project

KPI_FIELDS = [
    "name",
    "description",
    "unit",
    "direction",
    "baseline",
    "target",
    "threshold",
    "source_type",
    "source_key",
    "is_draft",
]


def _clean(changes: dict) -> dict:
    unknown = set(changes) - set(KPI_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown KPI fields: {', '.join(sorted(unknown))}.")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()[:120]
        if not changes["name"]:
            raise ValidationFailed("A KPI needs a name.")
    if "direction" in changes and changes["direction"] not in KpiDirection.values:
        raise ValidationFailed("Direction is 'higher' or 'lower'.")
    if "source_type" in changes and changes["source_type"] not in KpiSource.values:
        raise ValidationFailed(f"Source is one of: {', '.join(KpiSource.values)}.")
    for field in ("baseline", "target", "threshold"):
        value = changes.get(field)
        if value is not None and not math.isfinite(float(value)):
            raise ValidationFailed(f"The {field} must be a finite number.")
    return changes


@transaction.atomic
def kpi_create(*, project: Project, actor: User | None, name: str, **fields) -> Kpi:
    fields = _clean({"name": name, **fields})
    if Kpi.objects.filter(project=project, name=fields["name"]).exists():
        raise AlreadyExists(f"The project already has a KPI named '{fields['name']}'.")
    source_type = fields.get("source_type", KpiSource.MANUAL)
    if source_type == KpiSource.RUN_METRIC and not fields.get("source_key"):
        raise ValidationFailed("A run-metric KPI needs the metric key.")
    kpi = Kpi.objects.create(project=project, **fields)
    audit_record(actor=actor, action="kpi.create", target=kpi, project_id=project.pk, after=snapshot(kpi, KPI_FIELDS))
    events.publish(events.group_name("project", project.pk), "kpi.created", {"id": kpi.pk, "name": kpi.name})
    return kpi


@transaction.atomic
def kpi_update(*, kpi: Kpi, actor: User, **changes) -> Kpi:
    changes = _clean(changes)
    if "name" in changes and Kpi.objects.filter(project_id=kpi.project_id, name=changes["name"]).exclude(pk=kpi.pk):
        raise AlreadyExists(f"The project already has a KPI named '{changes['name']}'.")
    before = snapshot(kpi, KPI_FIELDS)
    for field, value in changes.items():
        setattr(kpi, field, value)
    kpi.save(update_fields=list(changes))
    audit_record(
        actor=actor,
        action="kpi.update",
        target=kpi,
        project_id=kpi.project_id,
        before=before,
        after=snapshot(kpi, KPI_FIELDS),
    )
    return kpi


@transaction.atomic
def kpi_record_value(
    *, kpi: Kpi, value: float, source: str, recorded_at: datetime | None = None, actor: User | None = None
) -> KpiValue:
    """Append a value to the KPI's history. Deployments and run metrics feed it too, so
    only manual entries are audited (machine feeds are high-volume)."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("A KPI value is a number.") from exc
    if not math.isfinite(value):
        raise ValidationFailed("A KPI value must be a finite number.")
    recorded_at = recorded_at or timezone.now()
    point = KpiValue.objects.create(
        kpi=kpi,
        value=value,
        source=(source or KpiSource.MANUAL)[:200],
        recorded_at=recorded_at,
        recorded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    # Only a newer point moves "current": late-arriving history must not rewind it.
    Kpi.objects.filter(pk=kpi.pk).exclude(current_at__gt=recorded_at).update(
        current_value=value, current_at=recorded_at
    )
    kpi.refresh_from_db(fields=["current_value", "current_at"])
    if point.source == KpiSource.MANUAL:
        audit_record(actor=actor, action="kpi.record", target=kpi, project_id=kpi.project_id, after={"value": value})
    events.publish(
        events.group_name("project", kpi.project_id),
        "kpi.value",
        {"kpi": kpi.pk, "value": value, "recorded_at": recorded_at.isoformat()},
    )
    return point


def kpi_feed_run_metric(*, project: Project, key: str, value: float, run_ref: str, recorded_at=None) -> int:
    """Record a run's metric on every KPI of the project sourced from that metric key
    (for the experiments app); returns how many KPIs it fed."""
    kpis = list(Kpi.objects.filter(project=project, source_type=KpiSource.RUN_METRIC, source_key=key))
    for kpi in kpis:
        kpi_record_value(kpi=kpi, value=value, source=f"run:{run_ref}"[:200], recorded_at=recorded_at)
    return len(kpis)
