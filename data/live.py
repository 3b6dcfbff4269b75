"""What the Data pages show live: per-stream numbers, the rate figure (plotly, built
here and drawn by plotly.js), a preview of the latest records (pandas) and the held
quarantine. The consumers push these every 2 seconds."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
import pandas as pd
import plotly.graph_objects as go

from data import selectors
from data.archive import LocalArchiveStore, tail
from data.models import Stream

PREVIEW_ROWS = 10
PREVIEW_COLUMNS = 12
LAYOUT = {
    "margin": {"l": 48, "r": 12, "t": 36, "b": 36},
    "height": 260,
    "title": "Records per second",
    "showlegend": False,
    "yaxis": {"rangemode": "tozero"},
}


def _numbers(stream: Stream, rate: float) -> dict[str, Any]:
    return {
        "id": stream.pk,
        "records": stream.records_total,
        "bytes": stream.bytes_total,
        "duplicates": stream.duplicates_total,
        "quarantined": stream.quarantined_total,
        "rate": round(rate, 1),
        "last_record_at": stream.last_record_at.isoformat() if stream.last_record_at else None,
        "status": stream.status,
    }


def list_snapshot(streams: list[Stream]) -> dict[str, Any]:
    series = selectors.rate_series(stream_ids=[s.pk for s in streams], minutes=1)
    return {"streams": [_numbers(s, selectors.current_rate(series[s.pk])) for s in streams]}


def rate_figure(series: list[tuple[float, float]]) -> dict:
    x = [datetime.fromtimestamp(t, tz=UTC).isoformat() for t, _ in series]
    fig = go.Figure(layout=LAYOUT)
    fig.add_scatter(x=x, y=[r for _, r in series], mode="lines", line={"color": "#3358d4"}, fill="tozeroy")
    return fig.to_plotly_json()


def preview(stream: Stream, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """The latest records as a table: nested fields flattened (a.b), at most
    PREVIEW_COLUMNS columns, newest first."""
    lines = tail(LocalArchiveStore(settings.DATA_ARCHIVE_DIR), f"{stream.project.slug}/{stream.slug}", rows)
    if not lines:
        return {"columns": [], "rows": []}
    records = [r["r"] if isinstance(r["r"], dict) else {"value": r["r"]} for r in reversed(lines)]
    frame = pd.json_normalize(records, max_level=2)
    frame = frame.iloc[:, :PREVIEW_COLUMNS]
    frame.insert(0, "seq", [r["seq"] for r in reversed(lines)])
    frame.insert(
        1, "received", [datetime.fromtimestamp(r["t"] / 1000, tz=UTC).strftime("%H:%M:%S") for r in reversed(lines)]
    )
    cells = frame.astype(object).where(frame.notna(), None).values.tolist()
    return {"columns": [str(c) for c in frame.columns], "rows": [[_cell(v) for v in row] for row in cells]}


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        import orjson

        return orjson.dumps(value).decode()[:200]
    if isinstance(value, str):
        return value[:200]
    return value


def quarantine_snapshot(stream: Stream, limit: int = 20) -> dict[str, Any]:
    held = list(selectors.quarantine_list(stream=stream)[:limit])
    return {
        "held": selectors.quarantine_held_count(stream=stream),
        "items": [
            {
                "id": q.pk,
                "reason": q.reason,
                "payload": _cell(q.payload) if q.payload is not None else q.raw[:200],
                "received_at": q.received_at.isoformat(),
            }
            for q in held
        ],
    }


def stream_snapshot(stream: Stream) -> dict[str, Any]:
    stream.refresh_from_db()
    series = selectors.rate_series(stream_ids=[stream.pk], minutes=10)[stream.pk]
    return {
        "stream": _numbers(stream, selectors.current_rate(series)),
        "figure": rate_figure(series),
        "preview": preview(stream),
        "quarantine": quarantine_snapshot(stream),
        "schema": stream.schema,
    }
