"""CSV export of a runs table: the same columns, filter and order as the page.

Cells that a spreadsheet would run as a formula (`=`, `+`, `@`, a leading tab, or `-`
not starting a number) get a leading quote: run names, params and tags are typed by
anyone who can log a run, and a CSV is opened by someone else."""

import csv
import io
import math
import re

from django.http import HttpResponse
from django.utils.text import slugify

from experiments.models import Run
from experiments.selectors_ui import RunsTable

FIXED_COLUMNS = ["run_id", "run_name", "status", "user", "start_time", "end_time", "duration_s", "parent_run_id"]
_NUMBER = re.compile(r"^-\s*(\d|\.\d|inf)", re.IGNORECASE)


def safe_cell(value: object) -> object:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else value
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _NUMBER.match(text)):
        return "'" + text
    return text


def _fixed(run: Run) -> list[object]:
    duration = (run.end_time - run.start_time) / 1000 if run.end_time else None
    return [
        run.pk,
        run.name,
        run.status,
        run.display_user,
        run.start_time,
        run.end_time,
        duration,
        run.parent_run_id,
    ]


def runs_csv(table: RunsTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIXED_COLUMNS + [c.name for c in table.columns])
    for run in table.runs:
        values = _fixed(run) + [run.cells.get(c.name) for c in table.columns]
        writer.writerow([safe_cell(v) for v in values])
    return out.getvalue()


def runs_csv_response(table: RunsTable) -> HttpResponse:
    response = HttpResponse(runs_csv(table), content_type="text/csv; charset=utf-8")
    name = slugify(table.experiment.name) or f"experiment-{table.experiment.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}-runs.csv"'
    return response
