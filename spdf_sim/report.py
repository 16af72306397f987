"""Self-contained HTML reports built from Projection objects (plotly, script embedded)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

SWEEP_SPARSITIES = np.round(np.arange(0.0, 0.951, 0.05), 2)


def flops_by_kind_figure(projection) -> go.Figure:
    """Bar chart of training FLOPs per token by op kind, dense beside sparse."""
    table = projection.flops_by_kind()
    figure = go.Figure([
        go.Bar(name="dense", x=table.index, y=table["dense_flops"]),
        go.Bar(name=projection.plan.description, x=table.index, y=table["flops"]),
    ])
    figure.update_layout(title=f"{projection.model.name}: training FLOPs per token by op kind "
                               f"({projection.convention.name} convention)",
                         yaxis_title="FLOPs per token", barmode="group")
    return figure


def sparsity_sweep(projection, sparsities=SWEEP_SPARSITIES) -> dict[str, list[float]]:
    """Re-project the same model at each uniform sparsity; return speedup per machine."""
    from spdf_sim.projection import project

    speedups: dict[str, list[float]] = {name: [] for name in projection.hardware}
    for sparsity in sparsities:
        swept = project(projection.model, float(sparsity), **projection.settings)
        for name in speedups:
            speedups[name].append(swept.hardware[name].speedup)
    return speedups


def speedup_figure(projection, sparsities=SWEEP_SPARSITIES) -> go.Figure:
    """Pre-training speedup over dense against sparsity, per machine, with the 1/density line."""
    speedups = sparsity_sweep(projection, sparsities)
    percent = 100 * np.asarray(sparsities)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=percent, y=1.0 / (1.0 - np.asarray(sparsities)),
                                name="1 / density", line={"dash": "dash", "color": "grey"}))
    for name, values in speedups.items():
        figure.add_trace(go.Scatter(x=percent, y=values, name=name, mode="lines+markers"))
    figure.update_layout(title=f"{projection.model.name}: pre-training speedup over dense",
                         xaxis_title="sparsity of the sparse weights (%)",
                         yaxis_title="speedup (dense time / sparse time)", yaxis_type="log")
    return figure


def figures_html(figures: list[go.Figure]) -> str:
    """Render figures as HTML divs; the first carries plotly's script inline."""
    parts = []
    for i, figure in enumerate(figures):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=(i == 0),
                                    config={"displaylogo": False}))
    return "\n".join(parts)


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
            "text-align:right}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def write_projection_report(projection, path) -> None:
    """Write one projection as a self-contained HTML page."""
    figures = [flops_by_kind_figure(projection), speedup_figure(projection)]
    figures += _simulator_figures(projection)
    layers = projection.layer_table()
    body = "\n".join([
        f"<pre>{html.escape(projection.summary())}</pre>",
        figures_html(figures),
        "<h2>Per-weight table</h2>",
        layers.to_html(float_format=lambda v: f"{v:.4g}"),
    ])
    write_page(path, page(f"spdf-sim projection: {projection.model.name}", body))


def write_page(path, text: str) -> None:
    """Write an HTML page, raising SpdfSimError (not OSError) when the path cannot be written."""
    from spdf_sim.errors import SpdfSimError

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise SpdfSimError(f"report {path} could not be written: {error.strerror}; "
                           f"give a path in an existing, writable folder") from None


def _simulator_figures(projection) -> list[go.Figure]:
    """Return, per wafer machine, speedup against tokens per step and the timeline of one step."""
    from spdf_sim.report_sim import timeline_figure, tokens_sweep_figure

    figures = []
    for name, result in projection.hardware.items():
        if result.kind != "wafer":
            continue
        figures.append(tokens_sweep_figure(projection, name))
        if "start" in result.timing.ops:
            figures.append(timeline_figure(result.timing, f"one {projection.model.name} step on {name}"))
    return figures
