"""Metric series for charts: long histories downsampled in SQL, keeping the extremes.

A series of up to `max_points` points comes back whole. A longer one is cut into
`(max_points - 2) // 2` buckets of equal step width, and each bucket gives its lowest
and highest point, plus the series' first and last point: the global minimum and
maximum are always drawn, and a spike a naive every-k-th-point sample would skip shows.
Values are real points, never averages. The aggregation runs in the database over the
points' unique index (run, key, step, timestamp, value, is_nan), which covers every
column it reads: on PostgreSQL one aggregate per bucket over an index-only range scan
(no sort or hash of the million rows, no JIT), on SQLite one grouped pass per extreme.
Zooming asks again for a step range, so a narrow window comes back at full resolution.

NaN points are left out of downsampled buckets (they have no place on a value axis);
infinities are kept. Steps beyond 2**53 lose precision in a downsampled point's step."""

from collections import defaultdict
from dataclasses import dataclass, field
import math

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q

from experiments.models import LatestMetric, Metric, Run
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
    max_curves: int | None = None,
) -> dict[str, dict[str, Series]]:
    """{run_id: {key: Series}} of the given runs (every key when `keys` is None), each at
    most `max_points` long, within [min_step, max_step] when given; with `max_curves`,
    only the first that many series (by run, then key) of more than one point: a run of
    5,000 metrics does not read them all for 30 charts. A fixed number of queries for
    the short series, three more per long one. Callers checked access."""
    out: dict[str, dict[str, Series]] = defaultdict(dict)
    short: dict[str, list[str]] = defaultdict(list)
    sizes = sorted(_sizes(run_ids, keys, min_step, max_step, max_points).items())
    if max_curves is not None:
        sizes = [item for item in sizes if item[1] > 1][:max_curves]
    for (run_id, key), n in sizes:
        if n <= max_points:
            out[run_id][key] = Series(run_id=run_id, key=key, count=n)
            short[run_id].append(key)
        elif (line := _downsampled(run_id, key, min_step, max_step, max_points, n)) is not None:
            out[run_id][key] = line
    for run_id, key, point in _whole(run_ids, short, min_step, max_step):
        out[run_id][key].points.append(point)
    return out


def _sizes(run_ids, keys, min_step, max_step, max_points: int) -> dict[tuple[str, str], int]:
    """Points per (run, key) in the range. On PostgreSQL counted only up to
    max_points + 1 (a long series is counted exactly by its downsampling, for free),
    so a run with a million points does not pay a scan just to learn it is long; the
    (run, key) pairs come from the latest-values table, which has one for every series."""
    if connection.vendor != "postgresql":
        rows = _points(run_ids, keys, min_step, max_step).values_list("run_id", "key").annotate(n=Count("*"))
        return {(run_id, key): n for run_id, key, n in rows.order_by()}
    latest = LatestMetric.objects.filter(run_id__in=run_ids)
    pairs = list((latest if keys is None else latest.filter(key__in=keys)).values_list("run_id", "key"))
    if not pairs:
        return {}
    lo, hi = _bounds(min_step, max_step)
    with connection.cursor() as cursor:
        cursor.execute(
            _CAPPED_COUNTS,
            {"runs": [p[0] for p in pairs], "keys": [p[1] for p in pairs], "lo": lo, "hi": hi, "cap": max_points + 1},
        )
        return {(run_id, key): n for run_id, key, n in cursor.fetchall() if n}


def _bounds(min_step: int | None, max_step: int | None) -> tuple[int, int]:
    return (-(2**63) if min_step is None else min_step), (2**63 - 1 if max_step is None else max_step)


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


def _downsampled(run_id: str, key: str, min_step, max_step, max_points: int, n: int) -> Series | None:
    """The series as each bucket's lowest and highest point plus its first and last
    point, and its exact count; None when its points went away in between."""
    points = _points([run_id], [key], min_step, max_step)
    ends = points.aggregate(lo=Min("step"), hi=Max("step"))
    if ends["lo"] is None:
        return None
    lo, hi = ends["lo"], ends["hi"]
    buckets = max(1, (max_points - 2) // 2)
    width = -(-(hi - lo + 1) // buckets)  # ceil: the last bucket ends at hi
    params = {"run": run_id, "key": key, "lo": lo, "hi": hi, "width": width, "buckets": buckets}
    rows = []
    if connection.vendor == "postgresql":
        # A plan over this many rows would be JIT-compiled, which costs more than it saves.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(_MIN_MAX_POSTGRES, params)
            n = 0
            for count, low, high in cursor.fetchall():
                n += count
                if low is not None:
                    rows += [(low[1], low[2], low[0]), (high[1], high[2], high[0])]
    else:
        with connection.cursor() as cursor:
            cursor.execute(_MIN_MAX_SQLITE, params)
            rows = [row[:3] for row in cursor.fetchall()]
    ordered = points.filter(is_nan=False).order_by("step", "timestamp").values_list("step", "timestamp", "value")
    rows += [end for end in (ordered.first(), ordered.last()) if end is not None]
    chosen = sorted({(int(step), int(ts), value) for step, ts, value in rows})
    return Series(run_id=run_id, key=key, count=n, points=chosen)


_TABLE = Metric._meta.db_table
_IN_RANGE = "run_id = %(run)s AND key = %(key)s AND NOT is_nan AND step BETWEEN %(lo)s AND %(hi)s"

# One aggregate per bucket, each over an index-only range scan of its steps: no sort or
# hash of a million rows (which the planner may spill to disk), whatever the estimates.
# Arrays compare element by element, so min(ARRAY[value, step, ts]) is the bucket's
# lowest point (the earliest among equals): arg-min and arg-max in one pass, with no
# join back. (First and last per bucket too, M4, cost twice as much for no visible gain
# at 2,500 buckets.)
_MIN_MAX_POSTGRES = f"""
SELECT corners.*
FROM generate_series(0, %(buckets)s - 1) AS bucket(i), LATERAL (
    SELECT count(*),
           min(ARRAY[value, step::float8, timestamp::float8]) FILTER (WHERE NOT is_nan),
           max(ARRAY[value, step::float8, timestamp::float8]) FILTER (WHERE NOT is_nan)
    FROM "{_TABLE}"
    WHERE run_id = %(run)s AND key = %(key)s AND step <= %(hi)s
      AND step >= %(lo)s + bucket.i::bigint * %(width)s AND step < %(lo)s + (bucket.i::bigint + 1) * %(width)s
) AS corners
"""  # noqa: S608 (fixed text; every value is a parameter)

_CAPPED_COUNTS = f"""
SELECT p.run_id, p.key, (
    SELECT count(*) FROM (
        SELECT 1 FROM "{_TABLE}" AS m
        WHERE m.run_id = p.run_id AND m.key = p.key AND m.step BETWEEN %(lo)s AND %(hi)s LIMIT %(cap)s
    ) AS capped
)
FROM unnest(%(runs)s::varchar[], %(keys)s::varchar[]) AS p(run_id, key)
"""  # noqa: S608

# SQLite takes a bare column from the row holding the one min() or max() of its query,
# so each extreme of a bucket is one grouped pass.
_MIN_MAX_SQLITE = " UNION ALL ".join(
    f'SELECT step, timestamp, value, {corner} FROM "{_TABLE}" WHERE {_IN_RANGE} '  # noqa: S608
    "GROUP BY (step - %(lo)s) / %(width)s"
    for corner in ("min(value)", "max(value)")
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
