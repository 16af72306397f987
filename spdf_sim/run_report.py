"""Reports of training runs: one self-contained HTML page, and the speedup table as CSV and JSON.

Built from Run and RunProjection objects only. The page shows loss curves per
phase, a per-layer density heat map over steps, cumulative FLOPs, projected
hours per machine and the speedup table. Several runs share one page.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from spdf_sim.errors import SpdfSimError
from spdf_sim.report import figures_html, page, write_page
from spdf_sim.runs.replay import RunProjection, project_run

DEFAULT_MACHINES = ("cs2-like", "a100-80gb")
SECONDS_PER_HOUR = 3600.0


@dataclass
class RunReport:
    """Projections of one or more runs and the table that compares them."""

    projections: list[RunProjection]

    @property
    def machines(self) -> list[str]:
        return list(self.projections[0].hardware)

    def table(self) -> pd.DataFrame:
        """Return one row per run: FLOPs per phase, reduction, projected hours and speedup per machine."""
        return pd.DataFrame([speedup_row(p) for p in self.projections]).set_index("run")


def speedup_row(projection: RunProjection) -> dict:
    """Return the table row of one run; hours are projected, FLOPs are summed over its steps."""
    run = projection.run
    total = projection.pretrain_flops + projection.finetune_flops
    dense_total = projection.dense_pretrain_flops + projection.finetune_flops
    row = {
        "run": run.name,
        "sparsity": round(projection.plan.sparsity, 4),
        "pretrain_tokens": projection.tokens,
        "finetune_tokens": projection.finetune_tokens,
        "pretrain_flops": projection.pretrain_flops,
        "dense_pretrain_flops": projection.dense_pretrain_flops,
        "finetune_flops": projection.finetune_flops,
        "total_flops": total,
        "flops_reduction": dense_total / total if total else math.nan,
    }
    for name, result in projection.hardware.items():
        row[f"{name}_pretrain_h"] = result.pretrain_s / SECONDS_PER_HOUR
        row[f"{name}_finetune_h"] = result.finetune_s / SECONDS_PER_HOUR
        row[f"{name}_total_h"] = result.total_s / SECONDS_PER_HOUR
        row[f"{name}_pretrain_speedup"] = result.speedup if result.pretrain_s else math.nan
        row[f"{name}_total_speedup"] = result.total_speedup if result.total_s else math.nan
    for phase, step, loss in run.evals.itertuples(index=False):
        row[f"{phase}_val_loss"] = loss
    return row


def build_report(run_dirs, hw=DEFAULT_MACHINES, fidelity: str | None = None) -> RunReport:
    """Replay every run on the machines ``hw``; all runs must exist and read cleanly."""
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    if not run_dirs:
        raise SpdfSimError("no run directory given: name at least one")
    names = [run_dir.name for run_dir in run_dirs]
    if len(set(names)) != len(names):
        raise SpdfSimError(f"run directories {', '.join(map(str, run_dirs))} share a name. The "
                           f"report labels runs by folder name, so give them distinct names")
    return RunReport([project_run(run_dir, hw=list(hw), fidelity=fidelity, reference_gpu=None)
                      for run_dir in run_dirs])


# Figures -----------------------------------------------------------------

def loss_figure(report: RunReport) -> go.Figure:
    """Training loss per step, one line per run and phase, with the validation losses as markers."""
    figure = go.Figure()
    for projection in report.projections:
        run = projection.run
        for phase in run.phases:
            steps = run.phase_steps(phase)
            figure.add_trace(go.Scatter(x=steps["step"], y=steps["loss"], mode="lines",
                                        name=f"{run.name} {phase}"))
        if not run.evals.empty:
            figure.add_trace(go.Scatter(x=run.evals["step"], y=run.evals["val_loss"],
                                        mode="markers", marker={"size": 10},
                                        name=f"{run.name} validation"))
    figure.update_layout(title="Loss per step (pre-training, then fine-tuning)",
                         xaxis_title="step", yaxis_title="cross-entropy loss")
    return figure


def density_figure(projection: RunProjection) -> go.Figure:
    """Heat map of each sparse weight's density (nnz / size) over the recorded steps."""
    densities = projection.run.nnz_over_steps()
    # Records are unevenly spaced (phase starts, every trace_interval steps, phase ends),
    # so each recorded step gets one equal-width column, labelled with its number.
    steps = [str(step) for step in densities.index]
    figure = go.Figure(go.Heatmap(z=densities.T.to_numpy(), x=steps,
                                  y=list(densities.columns), zmin=0.0, zmax=1.0,
                                  colorscale="Viridis", colorbar={"title": "density"}))
    figure.update_layout(title=f"{projection.run.name}: density of each sparse weight over steps",
                         xaxis_title="recorded step", yaxis_title="weight",
                         xaxis_type="category",
                         height=max(300, 22 * len(densities.columns) + 150))
    return figure


def cumulative_flops_figure(report: RunReport) -> go.Figure:
    """Cumulative training FLOPs over steps per run, beside the same run computed dense."""
    figure = go.Figure()
    for projection in report.projections:
        costs = projection.step_costs()
        name = projection.run.name
        figure.add_trace(go.Scatter(x=costs.index, y=costs["flops"].cumsum(), name=f"{name}"))
        figure.add_trace(go.Scatter(x=costs.index, y=costs["dense_flops"].cumsum(),
                                    name=f"{name} if dense", line={"dash": "dot"}))
    figure.update_layout(title="Cumulative training FLOPs", xaxis_title="step",
                         yaxis_title="FLOPs")
    return figure


def hours_figure(report: RunReport) -> go.Figure:
    """Projected hours per machine and run, pre-training and fine-tuning stacked."""
    figure = go.Figure()
    runs = [p.run.name for p in report.projections]
    for phase in ("pretrain", "finetune"):
        for machine in report.machines:
            hours = [getattr(p.hardware[machine], f"{phase}_s") / SECONDS_PER_HOUR
                     for p in report.projections]
            figure.add_trace(go.Bar(x=runs, y=hours, name=f"{machine} {phase}",
                                    offsetgroup=machine, legendgroup=machine))
    figure.update_layout(title="Projected hours per machine", barmode="stack",
                         yaxis_title="hours", xaxis_title="run")
    return figure


def has_zeros(projection: RunProjection) -> bool:
    """Return whether any recorded weight of the run was ever below full density."""
    layers = projection.run.layers
    return not layers.empty and bool((layers["density"] < 1.0).any())


def report_figures(report: RunReport) -> list[go.Figure]:
    """Return the page's figures; runs that were dense throughout get no density heat map."""
    figures = [loss_figure(report)]
    figures += [density_figure(p) for p in report.projections if has_zeros(p)]
    figures += [cumulative_flops_figure(report), hours_figure(report)]
    return figures


# Output ------------------------------------------------------------------

def report_html(report: RunReport) -> str:
    """Return the whole page: figures, the speedup table and each run's assumptions."""
    table = report.table()
    names = ", ".join(p.run.name for p in report.projections)
    notes = "\n".join(run_notes(p) for p in report.projections)
    dense = [p.run.name for p in report.projections if not has_zeros(p)]
    dense_note = (f"<p>Dense throughout (every recorded density is 1, so no heat map): "
                  f"{html.escape(', '.join(dense))}</p>" if dense else "")
    body = "\n".join([
        figures_html(report_figures(report)),
        dense_note,
        "<h2>Speedup table</h2>",
        # One column per run reads better than one very wide row per run.
        table.T.to_html(float_format=lambda v: f"{v:.4g}", na_rep=""),
        "<h2>Projections</h2>",
        notes,
    ])
    return page(f"spdf-sim report: {names}", body)


def run_notes(projection: RunProjection) -> str:
    """Return one run's phase table and its projection summary (the summary needs pre-training steps)."""
    parts = [f"<h3>{html.escape(projection.run.name)}</h3>",
             projection.phase_table().to_html(float_format=lambda v: f"{v:.4g}")]
    if projection.tokens:
        parts.append(f"<pre>{html.escape(projection.summary())}</pre>")
    else:
        lines = "\n".join(projection.assumptions)
        parts.append(f"<pre>{html.escape(lines)}</pre>")
    return "\n".join(parts)


def write_report(report: RunReport, html_path) -> dict[str, Path]:
    """Write the page to ``html_path`` and the table beside it as .csv and .json; return the paths."""
    html_path = Path(html_path)
    paths = {"html": html_path, "csv": html_path.with_suffix(".csv"),
             "json": html_path.with_suffix(".json")}
    write_page(html_path, report_html(report))
    try:
        report.table().to_csv(paths["csv"])
        paths["json"].write_text(json.dumps(table_records(report), indent=2, allow_nan=False) + "\n",
                                 encoding="utf-8")
    except OSError as error:
        raise SpdfSimError(f"report {error.filename} could not be written: {error.strerror}") from None
    return paths


def table_records(report: RunReport) -> list[dict]:
    """Return the table as JSON-ready rows; a missing value is null."""
    table = report.table().reset_index()
    return json.loads(table.to_json(orient="records", double_precision=15))


# Command line ------------------------------------------------------------

def add_report_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="project training runs and write an HTML report with CSV and JSON tables",
        description="Replay each run's trace through the simulator and write one self-contained "
                    "HTML page (loss curves, density heat map, cumulative FLOPs, projected hours, "
                    "speedup table) plus the table as CSV and JSON beside it.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directory written by 'spdf-sim train' (several are compared)")
    parser.add_argument("--html", metavar="PATH",
                        help="HTML file to write (default: report.html in the first RUN_DIR); "
                             "the .csv and .json tables go beside it")
    parser.add_argument("--hw", nargs="+", default=list(DEFAULT_MACHINES), metavar="NAME",
                        help=f"machines to project on (default {' '.join(DEFAULT_MACHINES)})")
    parser.add_argument("--fidelity", default=None,
                        help="wafer engine: 'simulated' (default) or 'analytic'")
    parser.set_defaults(run=run_report_command)
    return parser


def run_report_command(args: argparse.Namespace) -> int:
    report = build_report(args.run_dirs, hw=args.hw, fidelity=args.fidelity)
    html_path = Path(args.html) if args.html else Path(args.run_dirs[0]) / "report.html"
    paths = write_report(report, html_path)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(report.table().T.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"report written to {paths['html']} (tables: {paths['csv']}, {paths['json']})")
    return 0
