"""Long metric histories for the scale tests, loaded fast: PostgreSQL's COPY on
PostgreSQL (a million points in a few seconds), one executemany on SQLite. Each run's
latest values go through the service's own bulk path (run_log_batch), so the runs look
exactly as if the client had logged them."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
import io

from django.db import connection

from experiments import services
from experiments.models import Metric, Run

T0 = 1_764_000_000_000
_COLUMNS = "run_id, key, value, is_nan, step, timestamp, model_id"


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def load_history(run: Run, key: str, values: Sequence[float]) -> None:
    load_histories([(run, key, values)])


def load_histories(histories: Iterable[tuple[Run, str, Sequence[float]]]) -> None:
    """Points at steps 0..len-1 (timestamps T0 + step): all but the last of each stored
    straight into the points table (NaN as the platform keeps it, 0 with is_nan), the
    last ones logged through run_log_batch, one batch per run."""
    rows, latest = [], defaultdict(list)
    for run, key, values in histories:
        *head, last = values
        rows += [(run.pk, key, v, i) for i, v in enumerate(head)]
        latest[run].append((key, last, len(head), T0 + len(head)))
    if on_postgres():
        _copy(rows)
    else:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {Metric._meta.db_table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, '')",  # noqa: S608
                [(r, k, v if v == v else 0.0, v != v, i, T0 + i) for r, k, v, i in rows],
            )
    for run, metrics in latest.items():
        services.run_log_batch(run=run, metrics=metrics)


def _copy(rows: list[tuple]) -> None:
    buffer = io.StringIO()
    buffer.writelines(
        f"{r}\t{k}\t{v!r}\tf\t{i}\t{T0 + i}\t\n" if v == v else f"{r}\t{k}\t0\tt\t{i}\t{T0 + i}\t\n"
        for r, k, v, i in rows
    )
    sql = f"COPY {Metric._meta.db_table} ({_COLUMNS}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(buffer.getvalue())


def analyze() -> None:
    """Fresh statistics (and, on PostgreSQL, the visibility map that lets the history
    queries read the index alone), as autovacuum gives a real table soon after a load.
    Outside a transaction only (VACUUM refuses one)."""
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Metric._meta.db_table}" if on_postgres() else "ANALYZE")
