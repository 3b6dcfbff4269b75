"""Plotly figures of the experiment pages, built in Python and drawn by the app-served
plotly.js. Each returns a plain dict (from `fig.to_json()`, which turns NaN and
infinities into null) for `json_script`, so no value reaches the page unescaped."""

from datetime import UTC, datetime
import html
import json
import math

import plotly.graph_objects as go

from experiments import series
from experiments.models import Run

PALETTE = ["#3358d4", "#e4572e", "#2f8a57", "#b7791f", "#8e44ad", "#17a2b8", "#d63384", "#6c757d"]
BASE_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 50, "r": 16, "t": 36, "b": 40},
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    "hovermode": "closest",
}


def _as_dict(fig: go.Figure) -> dict:
    return json.loads(fig.to_json())


def _finite(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def esc(text: str) -> str:
    """Plotly draws a few HTML tags in labels; user text must stay text."""
    return html.escape(str(text), quote=True)


def run_label(run: Run) -> str:
    return esc(run.name or run.pk[:8])


def _zoom(run_ids: list[str], key: str, max_points: int, sampled: bool) -> dict:
    """What the page needs to ask for a zoomed window again at full resolution (the
    traces' run ids in order); `sampled` is false when every point is already drawn."""
    return {"runs": run_ids, "key": key, "max_points": max_points, "sampled": sampled}


def _line(points: list[tuple[int, int, float]], **style) -> dict:
    """A scatter trace as the plain dict plotly.js reads. Long series skip plotly's
    Python validation, which costs ~10 us a point (4 s for the compare view's 100
    traces); every value is a step (int) or a finite float or None."""
    return {"type": "scatter", "x": [p[0] for p in points], "y": [_finite(p[2]) for p in points], **style}


def metric_chart(key: str, points: list[tuple[int, int, float]], run_id: str = "", total: int | None = None) -> dict:
    """One metric of one run against its steps; `times` lets the page switch the x axis
    to wall-clock time without a second figure. `total` is the number of points before
    downsampling: when more than drawn, zooming fetches the window again."""
    fig = go.Figure()
    fig.update_layout(**BASE_LAYOUT, title={"text": esc(key), "x": 0.02, "font": {"size": 14}}, height=260)
    fig.update_xaxes(title_text="step")
    figure = _as_dict(fig)
    figure["data"] = [
        _line(
            points,
            mode="lines+markers" if len(points) < 60 else "lines",
            line={"color": PALETTE[0], "width": 2},
            marker={"size": 5},
            name=esc(key),
            hovertemplate="step %{x}<br>%{y}<extra></extra>",
        )
    ]
    sampled = total is not None and total > len(points)
    return {
        "figure": figure,
        "times": [iso(p[1]) for p in points],
        "steps": [p[0] for p in points],
        "zoom": _zoom([run_id], key, series.MAX_POINTS, sampled) if run_id else None,
    }


def overlay_chart(key: str, runs: list[Run], found: dict[str, dict[str, series.Series]], per_trace: int) -> dict:
    """One metric of many runs, a trace per run that has it, each downsampled to
    `per_trace` points; zooming fetches the window again for every trace."""
    fig = go.Figure()
    fig.update_layout(**BASE_LAYOUT, height=420, legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=esc(key))
    figure = _as_dict(fig)
    traced = []
    for i, run in enumerate(runs):
        line = found.get(run.pk, {}).get(key)
        if line is None or not line.points:
            continue
        traced.append(line)
        figure["data"].append(
            _line(
                line.points,
                mode="lines+markers" if len(line.points) < 30 else "lines",
                name=run_label(run),
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    # A legend of a hundred names would be taller than the chart; hovering names a line.
    figure["layout"]["showlegend"] = len(traced) <= 20
    sampled = any(line.sampled for line in traced)
    return {"figure": figure, "zoom": _zoom([s.run_id for s in traced], key, per_trace, sampled)}


def _dimension(label: str, values: list[object]) -> dict | None:
    label = esc(label)
    numbers = [_finite(v) for v in values]
    numeric = all(v is None or isinstance(v, float) or n is not None for v, n in zip(values, numbers, strict=True))
    if numeric and any(n is not None for n in numbers):
        return {"label": label, "values": numbers}
    texts = ["" if v is None else str(v) for v in values]
    categories = sorted(set(texts))
    if len(categories) > 50:
        return None  # a free-text column says nothing as an axis
    index = {c: i for i, c in enumerate(categories)}
    return {
        "label": label,
        "values": [index[t] for t in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": [esc(c[:20]) for c in categories],
    }


def parallel_coordinates(runs: list[Run], columns: list[str], color_by: str | None) -> dict | None:
    dims = [d for c in columns if (d := _dimension(c, [r.cells.get(c) for r in runs])) is not None]
    if len(dims) < 2:
        return None
    line: dict = {"color": PALETTE[0]}
    if color_by:
        colors = [_finite(r.cells.get(color_by)) for r in runs]
        if any(c is not None for c in colors):
            line = {"color": [c if c is not None else 0 for c in colors], "colorscale": "Viridis", "showscale": True}
    fig = go.Figure(go.Parcoords(line=line, dimensions=dims[:30]))
    fig.update_layout(**{**BASE_LAYOUT, "margin": {"l": 70, "r": 70, "t": 60, "b": 30}}, height=420)
    return _as_dict(fig)


def scatter_chart(runs: list[Run], x: str, y: str) -> dict:
    points = [(r, r.cells.get(x), r.cells.get(y)) for r in runs]
    fig = go.Figure(
        go.Scatter(
            x=[_finite(px) if _finite(px) is not None else px for _, px, _ in points],
            y=[_finite(py) if _finite(py) is not None else py for _, _, py in points],
            mode="markers+text" if len(points) <= 20 else "markers",
            text=[run_label(r) for r, _, _ in points],
            textposition="top center",
            marker={"size": 11, "color": PALETTE[0], "opacity": 0.8, "line": {"width": 1, "color": "#fff"}},
            hovertemplate="%{text}<br>" + esc(x) + "=%{x}<br>" + esc(y) + "=%{y}<extra></extra>",
        )
    )
    fig.update_layout(**BASE_LAYOUT, height=420)
    fig.update_xaxes(title_text=esc(x))
    fig.update_yaxes(title_text=esc(y))
    return _as_dict(fig)
