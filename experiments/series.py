"""Metric series for charts: long histories downsampled in SQL, keeping the extremes.

A series of up to `max_points` points comes back whole. A longer one is cut into
`max_points // 4` buckets of equal step width, and each bucket gives its first, last,
lowest and highest point (M4 aggregation: a line drawn through those four per pixel
column looks exactly like the line through all points, and the global minimum and
maximum are always among them). The aggregation runs in the database over the points'
unique index (run, key, step, timestamp, value, is_nan), which covers every column it
reads: on PostgreSQL an index-only scan and one hash aggregate (a million points in about
0.3 s), on SQLite one pass per aggregate. Zooming asks again for a step range, so a
narrow window comes back at full resolution.

NaN points are left out of downsampled buckets (they have no place on a value axis);
infinities are kept. Steps beyond 2**53 lose precision in a downsampled point's step."""

from collections import defaultdict
from dataclasses import dataclass, field
import math

from django.db import connection
from django.db.models import Count, Max, Min, Q

from experiments.models import Metric, Run
from experiments.selectors import check_role
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role

MAX_POINTS = 5000
MIN_POINTS = 40
MAX_RUNS = 100
# The compare view's overlay draws one trace per run: its points are shared out so the
# page stays light (100 runs get 500 points each, a 700-pixel-wide chart).
OVERLAY_BUDGET = 50_000

Point = tuple[int, int, float]  # (step, timestamp, value); NaN is math.nan


@dataclass
class Series:
    run_id: str
    key: str
    count: int  # points in the asked step range, before downsampling
    points: list[Point] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.count


def overlay_points(traces: int) -> int:
    return max(MIN_POINTS, min(MAX_POINTS, OVERLAY_BUDGET // max(1, traces)))


def check_max_points(value: int | None) -> int:
    if value is None:
        return MAX_POINTS
    if not MIN_POINTS <= value <= MAX_POINTS:
        raise ValidationFailed(f"max_points must be between {MIN_POINTS} and {MAX_POINTS}, got {value}.")
    return value


def metric_series(
    *,
    run_ids: list[str],
    keys: list[str] | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
    max_points: int = MAX_POINTS,
) -> dict[str, dict[str, Series]]:
    """{run_id: {key: Series}} of the given runs (every key when `keys` is None), each at
    most `max_points` long, within [min_step, max_step] when given. A fixed number of
    queries for the short series, two more per long one. Callers checked access."""
    points = _points(run_ids, keys, min_step, max_step)
    stats = points.values_list("run_id", "key").annotate(n=Count("*"), lo=Min("step"), hi=Max("step"))
    out: dict[str, dict[str, Series]] = defaultdict(dict)
    short: dict[str, list[str]] = defaultdict(list)
    for run_id, key, n, lo, hi in stats.order_by():
        series = out[run_id][key] = Series(run_id=run_id, key=key, count=n)
        if n <= max_points:
            short[run_id].append(key)
        else:
            series.points = _downsampled(run_id, key, lo, hi, max_points)
    for run_id, key, point in _whole(run_ids, short, min_step, max_step):
        out[run_id][key].points.append(point)
    return out


def _points(run_ids, keys, min_step, max_step):
    qs = Metric.objects.filter(run_id__in=run_ids)
    if keys is not None:
        qs = qs.filter(key__in=keys)
    if min_step is not None:
        qs = qs.filter(step__gte=min_step)
    if max_step is not None:
        qs = qs.filter(step__lte=max_step)
    return qs


def _whole(run_ids, short: dict[str, list[str]], min_step, max_step):
    if not short:
        return
    which = Q()
    for run_id, keys in short.items():
        which |= Q(run_id=run_id, key__in=keys)
    qs = _points(run_ids, None, min_step, max_step).filter(which)
    rows = qs.order_by("run_id", "key", "step", "timestamp").values_list(
        "run_id", "key", "step", "timestamp", "value", "is_nan"
    )
    for run_id, key, step, ts, value, is_nan in rows.iterator(chunk_size=10_000):
        yield run_id, key, (step, ts, math.nan if is_nan else value)


def _downsampled(run_id: str, key: str, lo: int, hi: int, max_points: int) -> list[Point]:
    buckets = max(1, max_points // 4)
    width = -(-(hi - lo + 1) // buckets)  # ceil: the last bucket ends at hi
    params = {"run": run_id, "key": key, "lo": lo, "hi": hi, "width": width}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_M4_POSTGRES, params)
            rows = []
            for first, last, (low, s_low, t_low), (high, s_high, t_high) in cursor.fetchall():
                rows += [first, last, (s_low, t_low, low), (s_high, t_high, high)]
        else:
            cursor.execute(_M4_SQLITE, params)
            rows = [row[:3] for row in cursor.fetchall()]
    return sorted({(int(step), int(ts), value) for step, ts, value in rows})


_TABLE = Metric._meta.db_table
_IN_RANGE = "run_id = %(run)s AND key = %(key)s AND NOT is_nan AND step BETWEEN %(lo)s AND %(hi)s"

# Arrays compare element by element, so min(ARRAY[value, step, ts]) is the bucket's
# lowest point (the earliest among equals) and min(ARRAY[step, ...]) its first: four
# arg-min / arg-max aggregates in one pass, with no sort and no join back.
_M4_POSTGRES = f"""
SELECT min(ARRAY[step, ts, value]), max(ARRAY[step, ts, value]),
       min(ARRAY[value, step, ts]), max(ARRAY[value, step, ts])
FROM (
    SELECT step::float8 AS step, timestamp::float8 AS ts, value, (step - %(lo)s) / %(width)s AS bucket
    FROM "{_TABLE}" WHERE {_IN_RANGE}
) AS points
GROUP BY bucket
"""  # noqa: S608 (fixed text; every value is a parameter)

# SQLite takes a bare column from the row holding the one min() or max() of its query,
# so each corner of a bucket is one grouped pass.
_M4_SQLITE = " UNION ALL ".join(
    f'SELECT step, timestamp, value, {corner} FROM "{_TABLE}" WHERE {_IN_RANGE} '  # noqa: S608
    "GROUP BY (step - %(lo)s) / %(width)s"
    for corner in ("min(step)", "max(step)", "min(value)", "max(value)")
)


def series_for_runs(
    *,
    user: User,
    run_ids: list[str],
    key: str,
    min_step: int | None = None,
    max_step: int | None = None,
    max_points: int | None = None,
) -> list[Series]:
    """One metric of 1 to 100 runs the user may see, in the order asked (a run without
    the metric gets an empty series): what a chart asks for when it is zoomed. An
    unknown or foreign run makes the whole request NotFound."""
    ids = list(dict.fromkeys(str(r).strip() for r in run_ids if str(r).strip()))
    if not 1 <= len(ids) <= MAX_RUNS:
        raise ValidationFailed(f"Give between 1 and {MAX_RUNS} run ids (got {len(ids)}).")
    if not key:
        raise ValidationFailed("Give the metric's key: key=<metric key>.")
    for name, step in (("min_step", min_step), ("max_step", max_step)):
        if step is not None and not -(2**63) <= step < 2**63:
            raise ValidationFailed(f"{name} must fit in 64 bits.")
    if min_step is not None and max_step is not None and min_step > max_step:
        raise ValidationFailed(f"min_step ({min_step}) is after max_step ({max_step}).")
    limit = check_max_points(max_points)
    _check_runs_visible(user, ids)
    found = metric_series(run_ids=ids, keys=[key], min_step=min_step, max_step=max_step, max_points=limit)
    return [found.get(r, {}).get(key) or Series(run_id=r, key=key, count=0) for r in ids]


def _check_runs_visible(user: User, ids: list[str]) -> None:
    runs = {r.pk: r for r in Run.objects.filter(pk__in=[i[:32] for i in ids]).select_related("experiment__project")}
    missing = [i for i in ids if i not in runs]
    if missing:
        raise NotFound(f"Run with id={missing[0]} not found")
    for project in {r.experiment.project_id: r.experiment.project for r in runs.values()}.values():
        try:
            check_role(user=user, project=project, min_role=Role.VIEWER)
        except NotFound:
            raise NotFound("Run not found")
