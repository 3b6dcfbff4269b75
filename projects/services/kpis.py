"""KPIs: definitions and their value history. Callers have checked the actor's role
(data scientist or above for definitions and manual values)."""

from datetime import date, datetime, time, timedelta
import math

from django.db import transaction
from django.utils import timezone

from mlplatform import events
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import AlreadyExists, InvalidState, ValidationFailed
from mlplatform.models import User
from projects.models import GateCriterion, Kpi, KpiDirection, KpiSource, KpiValue, Project

# A value recorded "now" by a client whose clock runs a little ahead is not a future value.
CLOCK_SKEW = timedelta(minutes=5)
PERCENT_UNITS = {"%", "percent", "pct"}
# How far beyond its own scale (the largest of |baseline|, |target|, |threshold|) a
# manual value may lie before it is taken for a typo (a missing decimal point).
SCALE_FACTOR = 1000
ABSOLUTE_LIMIT = 1e15

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
def kpi_delete(*, kpi: Kpi, actor: User) -> None:
    """Remove a KPI and its history. A KPI a gate criterion checks stays: removing it
    would silently change (or, once decided, rewrite) what that gate rests on."""
    gates = sorted(set(GateCriterion.objects.filter(kpi=kpi).values_list("gate__name", flat=True)))
    if gates:
        raise InvalidState(f"KPI '{kpi.name}' is a criterion of {', '.join(gates)}; remove the criterion first.")
    before = {**snapshot(kpi, KPI_FIELDS), "values": kpi.values.count(), "current_value": kpi.current_value}
    project_id, kpi_id = kpi.project_id, kpi.pk
    audit_record(actor=actor, action="kpi.delete", target=kpi, project_id=project_id, before=before)
    kpi.delete()
    events.publish(events.group_name("project", project_id), "kpi.deleted", {"id": kpi_id})


def kpi_value_check(*, kpi: Kpi, value: float) -> None:
    """Refuse a manual value that cannot be meant. The rule, in order:
    1. it is a finite number;
    2. a percentage KPI (unit %, percent or pct) lies within 0..100;
    3. any value lies within ±1e15, and within SCALE_FACTOR (1000) times the KPI's own
       scale, the largest of |baseline|, |target|, |threshold| (when one is set and not 0).
    Machine feeds (run and endpoint metrics) are only held to rule 1."""
    if not math.isfinite(value):
        raise ValidationFailed("A KPI value must be a finite number.")
    unit = kpi.unit.strip().lower()
    if unit in PERCENT_UNITS and not 0 <= value <= 100:
        raise ValidationFailed(f"'{kpi.name}' is a percentage: a value lies between 0 and 100, not {value:g}.")
    scale = max((abs(v) for v in (kpi.baseline, kpi.target, kpi.threshold) if v is not None), default=0.0)
    limit = min(ABSOLUTE_LIMIT, scale * SCALE_FACTOR) if scale else ABSOLUTE_LIMIT
    if abs(value) > limit:
        raise ValidationFailed(
            f"{value:g} is implausible for '{kpi.name}': values lie within ±{limit:g}"
            + (f" ({SCALE_FACTOR}× its baseline/target/threshold scale of {scale:g})." if scale else ".")
        )


def kpi_backfill_time(*, day: date) -> datetime:
    """When a value entered for `day` is recorded: now for today, noon (local time)
    for a past day; a future day is refused."""
    today = timezone.localdate()
    if day > today:
        raise ValidationFailed(f"{day.isoformat()} is in the future; values are recorded for today or earlier.")
    if day == today:
        return timezone.now()
    return timezone.make_aware(datetime.combine(day, time(12, 0)))


@transaction.atomic
def kpi_record_value(
    *, kpi: Kpi, value: float, source: str, recorded_at: datetime | None = None, actor: User | None = None
) -> KpiValue:
    """Append a value to the KPI's history; `recorded_at` in the past backfills it.
    Deployments and run metrics feed it too, so only manual entries are audited
    (machine feeds are high-volume) and held to the plausibility rule."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("A KPI value is a number.") from exc
    if not math.isfinite(value):
        raise ValidationFailed("A KPI value must be a finite number.")
    source = source or KpiSource.MANUAL
    if source == KpiSource.MANUAL:
        kpi_value_check(kpi=kpi, value=value)
    now = timezone.now()
    recorded_at = recorded_at or now
    if recorded_at > now + CLOCK_SKEW:
        raise ValidationFailed("A KPI value cannot be recorded in the future; backfill a past date instead.")
    point = KpiValue.objects.create(
        kpi=kpi,
        value=value,
        source=source[:200],
        recorded_at=recorded_at,
        recorded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    # Only a newer point moves "current": late-arriving history must not rewind it.
    Kpi.objects.filter(pk=kpi.pk).exclude(current_at__gt=recorded_at).update(
        current_value=value, current_at=recorded_at
    )
    kpi.refresh_from_db(fields=["current_value", "current_at"])
    if point.source == KpiSource.MANUAL:
        audit_record(
            actor=actor,
            action="kpi.record",
            target=kpi,
            project_id=kpi.project_id,
            after={"value": value, "recorded_at": recorded_at.isoformat()},
        )
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
