"""Plotly figures of the dataset pages: a version's profile (histograms, top
categories) and a lineage graph, built in Python and drawn by the app-served plotly.js."""

from typing import Any

import plotly.graph_objects as go

from frontend.views.tracking_charts import BASE_LAYOUT, PALETTE, _as_dict, esc

LAYERS = {
    "stream": 0,
    "segment": 1,
    "file": 1,
    "version": 2,
    "job": 3,
    "run": 4,
    "model_version": 5,
    "revision": 6,
    "endpoint": 7,
}
KIND_LABELS = {
    "stream": "stream",
    "segment": "archive segment",
    "file": "uploaded file",
    "version": "dataset version",
    "job": "job",
    "run": "run",
    "model_version": "model version",
    "revision": "endpoint revision",
    "endpoint": "endpoint",
}


def column_chart(column: dict[str, Any]) -> dict | None:
    layout = {**BASE_LAYOUT, "height": 220, "margin": {"l": 40, "r": 10, "t": 30, "b": 40}, "showlegend": False}
    title = {"text": esc(column["name"]), "font": {"size": 13}}
    if column.get("histogram"):
        edges, counts = column["histogram"]["edges"], column["histogram"]["counts"]
        centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        fig = go.Figure(go.Bar(x=centres, y=counts, width=widths, marker_color=PALETTE[0]))
    elif column.get("top"):
        top = column["top"][:12]
        fig = go.Figure(
            go.Bar(
                x=[t["count"] for t in reversed(top)],
                y=[esc(t["value"])[:40] for t in reversed(top)],
                orientation="h",
                marker_color=PALETTE[1],
            )
        )
        layout["margin"] = {**layout["margin"], "l": 110}
    else:
        return None
    fig.update_layout(title=title, **layout)
    return _as_dict(fig)


def lineage_chart(graph: dict[str, Any]) -> dict:
    """Nodes in columns by kind (upstream left), edges as lines; a node's customdata is
    its id, so a click can open that node's own neighbourhood."""
    nodes = graph["nodes"]
    columns: dict[int, list[dict]] = {}
    for node in nodes:
        columns.setdefault(LAYERS.get(node["kind"], 8), []).append(node)
    position = {}
    for layer, members in columns.items():
        for index, node in enumerate(sorted(members, key=lambda n: n["label"])):
            position[node["id"]] = (layer, index - (len(members) - 1) / 2)
    edge_x, edge_y = [], []
    for edge in graph["edges"]:
        if edge["source"] in position and edge["target"] in position:
            (x0, y0), (x1, y1) = position[edge["source"]], position[edge["target"]]
            edge_x += [x0, x1, None]
            edge_y += [y0, y1, None]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": "#a0a7b4", "width": 1.5},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    kinds = sorted({n["kind"] for n in nodes}, key=lambda k: LAYERS.get(k, 8))
    for i, kind in enumerate(kinds):
        members = [n for n in nodes if n["kind"] == kind]
        fig.add_trace(
            go.Scatter(
                x=[position[n["id"]][0] for n in members],
                y=[position[n["id"]][1] for n in members],
                mode="markers+text",
                text=[esc(n["label"])[:32] for n in members],
                textposition="bottom center",
                customdata=[n["id"] for n in members],
                hovertext=[f"{KIND_LABELS.get(kind, kind)}: {esc(n['label'])}" for n in members],
                hoverinfo="text",
                name=KIND_LABELS.get(kind, kind),
                marker={
                    "size": [22 if n.get("root") else 16 for n in members],
                    "color": PALETTE[i % len(PALETTE)],
                    "line": {"width": [3 if n.get("root") else 1 for n in members], "color": "#1f2937"},
                },
            )
        )
    tallest = max((len(m) for m in columns.values()), default=1)
    fig.update_layout(
        **{**BASE_LAYOUT, "hovermode": "closest"},
        height=max(220, 70 * tallest + 110),
        xaxis={"visible": False, "range": [min(columns, default=0) - 0.6, max(columns, default=0) + 0.6]},
        yaxis={"visible": False},
        legend={"orientation": "h", "y": -0.05},
    )
    return _as_dict(fig)
