"""Figures of the wafer simulator for the HTML report: speedup against tokens per step, and one step's timeline."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from spdf_sim import engines
from spdf_sim.engines.base import StepTiming

SWEEP_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BOUND_COLOURS = {"stream": "#d62728", "compute": "#1f77b4", "imbalance": "#ff7f0e",
                 "latency": "#7f7f7f", "memory": "#9467bd"}


def tokens_sweep(projection, machine: str = "cs2-like",
                 batch_sizes=SWEEP_BATCH_SIZES) -> dict[str, list[float]]:
    """Re-time one step of the projection's model and plan at each batch size on one machine.

    Returns tokens per step, the sparse step's speedup over the dense one, and
    the share of the sparse step's weight-matmul time that is bound by the stream.
    """
    import hwmodels
    from spdf_sim.projection import step_work
    from spdf_sim.sparsity import dense_plan

    description = hwmodels.load(machine)
    settings = projection.settings
    options = {key: settings.get(key) for key in ("gpu_sparsity", "micro_batch", "stream_format",
                                                  "recompute")}
    options["micro_batch"] = None  # a given micro-batch may not fit a smaller batch
    fidelity = settings.get("fidelity")
    result = {"tokens": [], "speedup": [], "stream_share": []}
    for batch_size in batch_sizes:
        tokens = batch_size * projection.model.context
        sparse = engines.time_step(description, step_work(projection.model, projection.plan,
                                                          tokens, options), fidelity)
        dense = engines.time_step(description, step_work(projection.model, dense_plan(),
                                                         tokens, options), fidelity)
        weight_ops = sparse.ops.loc[sparse.ops["kind"] == "matmul"]
        stream = weight_ops.loc[weight_ops["bound"] == "stream", "seconds"].sum()
        result["tokens"].append(tokens)
        result["speedup"].append(dense.seconds / sparse.seconds)
        result["stream_share"].append(stream / weight_ops["seconds"].sum())
    return result


def tokens_sweep_figure(projection, machine: str = "cs2-like",
                        batch_sizes=SWEEP_BATCH_SIZES) -> go.Figure:
    """Speedup of the sparse step over the dense one against tokens per step, with the stream-bound share."""
    sweep = tokens_sweep(projection, machine, batch_sizes)
    density = 1.0 - projection.plan.sparsity
    figure = go.Figure([
        go.Scatter(x=sweep["tokens"], y=sweep["speedup"], mode="lines+markers",
                   name=f"{machine} speedup"),
        go.Scatter(x=sweep["tokens"], y=[1.0 / density] * len(sweep["tokens"]), mode="lines",
                   name="1 / density", line={"dash": "dash"}),
        go.Scatter(x=sweep["tokens"], y=sweep["stream_share"], mode="lines+markers",
                   name="share of weight-matmul time bound by the stream", yaxis="y2"),
    ])
    figure.update_layout(
        title=f"{projection.model.name} at {projection.plan.sparsity:.0%} sparsity on {machine}: "
              f"speedup against tokens per step",
        xaxis={"title": "tokens per step", "type": "log"},
        yaxis={"title": "speedup over dense step"},
        yaxis2={"title": "stream-bound share", "overlaying": "y", "side": "right",
                "range": [0, 1.05]},
    )
    return figure


def timeline_figure(timing: StepTiming, title: str = "one micro-batch of the step") -> go.Figure:
    """Gantt chart of one micro-batch: a bar per op from its start to its end, coloured by its bound."""
    ops = timing.ops
    if "start" not in ops or "end" not in ops:
        raise ValueError("this timing has no timeline: time the step with the simulated wafer engine")
    figure = go.Figure()
    for bound, group in ops.groupby("bound"):
        duration = (group["end"] - group["start"]).to_numpy() * 1e3
        figure.add_trace(go.Bar(
            y=group["kind"], x=duration, base=group["start"].to_numpy() * 1e3, orientation="h",
            name=bound, marker_color=BOUND_COLOURS.get(bound), hovertext=list(group.index),
        ))
    micro = timing.details.get("micro_batches")
    note = f" (micro-batch 1 of {micro})" if micro else ""
    figure.update_layout(title=f"Timeline of {title}{note}", barmode="overlay",
                         xaxis_title="milliseconds from the step's start", yaxis_title="op kind")
    return figure


def stream_bound_tokens(sweep: dict[str, list[float]]) -> float:
    """Return the largest swept tokens per step at which most weight-matmul time is stream-bound."""
    tokens = np.asarray(sweep["tokens"])
    bound = tokens[np.asarray(sweep["stream_share"]) > 0.5]
    return float(bound.max()) if bound.size else 0.0
