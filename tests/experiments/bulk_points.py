"""Long metric histories for the scale tests, loaded fast: PostgreSQL's COPY on
PostgreSQL (a million points in a few seconds), one executemany on SQLite. The latest
value goes through the service's own bulk path (run_log_batch), so the run looks
exactly as if the client had logged it."""

from collections.abc import Sequence
import io

from django.db import connection

from experiments import services
from experiments.models import Metric, Run

T0 = 1_764_000_000_000
_COLUMNS = "run_id, key, value, is_nan, step, timestamp, model_id"


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def load_history(run: Run, key: str, values: Sequence[float]) -> None:
    """Points step 0..len-1 (timestamps T0 + step), all but the last stored straight
    into the points table (NaN as the platform keeps it: 0 with is_nan); the last one
    logged through run_log_batch."""
    *head, last = values
    if on_postgres():
        buffer = io.StringIO()
        buffer.writelines(
            f"{run.pk}\t{key}\t{v!r}\tf\t{i}\t{T0 + i}\t\n" if v == v else f"{run.pk}\t{key}\t0\tt\t{i}\t{T0 + i}\t\n"
            for i, v in enumerate(head)
        )
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {Metric._meta.db_table} ({_COLUMNS}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {Metric._meta.db_table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, '')",  # noqa: S608
                [(run.pk, key, v if v == v else 0.0, v != v, i, T0 + i) for i, v in enumerate(head)],
            )
    services.run_log_batch(run=run, metrics=[(key, last, len(head), T0 + len(head))])


def analyze() -> None:
    """Fresh statistics (and, on PostgreSQL, the visibility map that lets the history
    queries read the index alone), as autovacuum would give a real table soon after."""
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Metric._meta.db_table}" if on_postgres() else "ANALYZE")
