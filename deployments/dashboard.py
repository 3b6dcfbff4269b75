"""The endpoint dashboard's figures, built in Python from a metrics snapshot
(deployments.api.metrics_snapshot) and drawn in the browser by plotly.js."""

from datetime import datetime, timedelta
import json
from typing import Any

import plotly.graph_objects as go

COLOURS = {"champion": "#3358d4", "challenger": "#e8590c", "shadow": "#9c36b5"}
MINUTE_MS = 55_000
LAYOUT = {"margin": {"l": 48, "r": 12, "t": 36, "b": 36}, "height": 260, "legend": {"orientation": "h", "y": -0.25}}


def _role_series(series: list[dict], role: str, key: str) -> tuple[list, list]:
    rows = [r for r in series if r["role"] == role]
    return [r["minute"] for r in rows], [r[key] for r in rows]


def _roles(series: list[dict]) -> list[str]:
    return [role for role in ("champion", "challenger", "shadow") if any(r["role"] == role for r in series)]


def traffic_figure(series: list[dict]) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": "Requests per minute", "barmode": "stack"})
    for role in _roles(series):
        x, y = _role_series(series, role, "requests")
        # On a date axis a lone bar is 1 ms wide unless told: one minute, in ms.
        fig.add_bar(x=x, y=y, name=role, marker_color=COLOURS[role], width=[MINUTE_MS] * len(x))
    return fig


def latency_figure(series: list[dict]) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": "Latency (ms)", "yaxis": {"type": "log"}})
    for role in _roles(series):
        for key, dash in (("p50", "solid"), ("p95", "dot"), ("p99", "dash")):
            x, y = _role_series(series, role, key)
            fig.add_scatter(
                x=x, y=y, name=f"{role} {key}", mode="lines+markers", line={"color": COLOURS[role], "dash": dash}
            )
    return fig


def errors_figure(series: list[dict]) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": "Errors (server 5xx rate, client 4xx count)"})
    for role in _roles(series):
        x, y = _role_series(series, role, "error_rate")
        fig.add_scatter(
            x=x, y=[v * 100 for v in y], name=f"{role} 5xx %", mode="lines+markers", line={"color": COLOURS[role]}
        )
        x, y = _role_series(series, role, "client_errors")
        fig.add_bar(
            x=x,
            y=y,
            name=f"{role} 4xx",
            marker_color=COLOURS[role],
            opacity=0.35,
            yaxis="y2",
            width=[MINUTE_MS] * len(x),
        )
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showgrid": False})
    return fig


DASHES = {"champion": "solid", "challenger": "dash", "shadow": "dot"}


def drift_figure(revisions: dict[str, Any], threshold: float) -> go.Figure:
    """Drift over time, one line per feature (and role), against the PSI limit."""
    fig = go.Figure(layout={**LAYOUT, "title": f"Drift per feature over time (PSI; limit {threshold})"})
    drawn = False
    for role, revision in revisions.items():
        for name, points in (revision.get("drift_series") or {}).items():
            fig.add_scatter(
                x=[at for at, _ in points],
                y=[value for _, value in points],
                name=f"{role}: {name}",
                mode="lines+markers",
                line={"dash": DASHES.get(role, "solid")},
            )
            drawn = True
    if drawn:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#c92a2a")
    return fig


def kpi_figure(revisions: dict[str, Any], target: dict | None) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": "Live KPI from ground truth"})
    labels = [f"{role} (n={r['kpi']['n']})" for role, r in revisions.items()]
    values = [r["kpi"]["value"] for r in revisions.values()]
    fig.add_bar(x=labels, y=values, marker_color=[COLOURS[role] for role in revisions], name="live")
    if target and target.get("target") is not None:
        fig.add_hline(
            y=target["target"], line_dash="dash", line_color="#2b8a3e", annotation_text=f"target {target['name']}"
        )
    return fig


def _empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"color": "#6b7385"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


def figures(snapshot: dict[str, Any], *, psi_threshold: float = 0.2, now: datetime | None = None) -> dict[str, Any]:
    series, revisions = snapshot["series"], snapshot["revisions"]
    built = {
        "traffic": traffic_figure(series),
        "latency": latency_figure(series),
        "errors": errors_figure(series),
        "drift": drift_figure(revisions, psi_threshold),
        "kpi": kpi_figure(revisions, snapshot.get("kpi_target")),
    }
    # A fixed 30-minute window: a single minute of data must not stretch to fill it.
    now = now or datetime.now().astimezone()
    window = [(now - timedelta(minutes=30)).isoformat(), (now + timedelta(minutes=1)).isoformat()]
    for name in ("traffic", "latency", "errors", "drift"):
        built[name].update_xaxes(range=window, type="date")
        if not series and name != "drift":
            _empty_note(built[name], "No requests in the last 30 minutes.")
    if not any(r.get("drift_series") for r in revisions.values()):
        notes = [f"{role}: {r['reference']['status']}" for role, r in revisions.items() if r.get("reference")]
        usable = any(r.get("reference", {}).get("usable") for r in revisions.values())
        text = "Not enough live inputs yet to measure drift." if usable else "<br>".join(notes) or "No revision."
        _empty_note(built["drift"], text)
    if not any(r["kpi"]["n"] for r in revisions.values()):
        _empty_note(built["kpi"], "No ground truth yet: POST /serve/<endpoint>/feedback with the request id.")
    return {name: json.loads(fig.to_json()) for name, fig in built.items()}


def _revision_state(revision) -> dict[str, Any] | None:
    if revision is None:
        return None
    return {
        "number": revision.number,
        "status": revision.status,
        "status_label": revision.get_status_display(),
        "model": f"{revision.model_name} v{revision.model_version_number}",
        "trusted": revision.trusted,
    }


def routing(endpoint, revisions) -> dict[str, Any]:
    """Who serves now and every listed revision's state: the endpoint page draws its
    cards, actions and revision table from this, so they follow the live stream."""
    return {
        "champion": _revision_state(endpoint.champion),
        "challenger": _revision_state(endpoint.challenger),
        "mode": endpoint.challenger_mode,
        "mode_label": endpoint.get_challenger_mode_display(),
        "traffic": endpoint.traffic,
        "revisions": [_revision_state(r) for r in revisions],
    }
