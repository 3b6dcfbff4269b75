"""CSV export of a runs table: the same columns, filter and order as the page,
written by the platform's one neutralising writer (mlplatform.csvsafe)."""

from datetime import UTC, datetime
import io

from django.http import HttpResponse
from django.utils.text import slugify

from experiments.models import Run
from experiments.selectors_ui import RunsTable
from mlplatform import csvsafe

FIXED_COLUMNS = ["run_id", "run_name", "status", "user", "start_time", "end_time", "duration_s", "parent_run_id"]


def iso(ms: int | None) -> str:
    """Epoch milliseconds (MLflow's times) as ISO 8601 in UTC, which spreadsheets read."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fixed(run: Run) -> list[object]:
    duration = (run.end_time - run.start_time) / 1000 if run.end_time else None
    return [
        run.pk,
        run.name,
        run.status,
        run.display_user,
        iso(run.start_time),
        iso(run.end_time),
        duration,
        run.parent_run_id,
    ]


def runs_csv(table: RunsTable) -> str:
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(FIXED_COLUMNS + [c.name for c in table.columns])
    for run in table.runs:
        writer.writerow(_fixed(run) + [run.cells.get(c.name) for c in table.columns])
    return out.getvalue()


def runs_csv_response(table: RunsTable) -> HttpResponse:
    response = HttpResponse(runs_csv(table), content_type="text/csv; charset=utf-8")
    name = slugify(table.experiment.name) or f"experiment-{table.experiment.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}-runs.csv"'
    return response
