"""The fast wafer model of one weight matmul: stream, per-core AXPYs, fabric latency.

One weight op on an R x C mesh (see ``mesh`` for the layout):

- the weight's non-zeros stream in at the machine's I/O rate, in a stream
  format (dense, coordinate or bitmask) that fixes the bytes per weight;
- each non-zero costs one AXPY of ceil(tokens_per_row / simd) + overhead
  cycles on every core of the column that holds its read feature;
- cores are taken as fully decoupled: each works through its own queue, so
  the op's compute time is the busiest column's count times the AXPY cost
  (the reference event simulator in ``wafer_reference`` checks this);
- the op ends at max(last item streamed + its AXPY, first item + busiest
  core's work), plus the hops down a column and along a row that carry the
  last weight in and the last partial sum out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from hwmodels import MachineDescription
from spdf_sim.engines.wafer_analytic import stream_bytes_per_weight
from spdf_sim.engines.mesh import core_counts, expected_max_count, features_per_core
from spdf_sim.errors import SpdfSimError

IMBALANCE_MARGIN = 1.1
"""An op compute-bound by its busiest core counts as imbalance-bound when that
core takes over 10% longer than evenly spread work would (or than the stream)."""

PASS_LAYOUT = {"fwd": ("m", "in"), "dgrad": ("m", "out"), "wgrad": ("k", "in")}
"""Per pass: the op column that holds its tokens, and the weight feature split
over the mesh columns. The activation gradient reads Wᵀ, so its features are
the weight's outputs; the weight gradient's dot products run over the tokens
(the op's k) for each non-zero at the input feature's column."""


@dataclass(frozen=True)
class ColumnWork:
    """Non-zeros per mesh column for one weight op, and where the counts came from."""

    max_count: float
    mean_count: float
    nnz: int
    source: str  # "real mask", "random-mask statistics" or "dense"
    max_trials: int = 0  # weight positions in the busiest column's slice


@dataclass(frozen=True)
class OpCycles:
    """Cycles of one weight op on the wafer, split by what could bind it."""

    stream: float
    compute: float
    balanced: float
    latency: float
    total: float
    bound: str


def chosen_format(machine: MachineDescription, density: float, stream_format: str) -> str:
    """Return the format a weight streams in.

    A dense weight (the LM head, or any weight of the dense baseline) always
    streams dense, whatever format sparse weights use. ``auto`` picks the
    smallest stream for the density.
    """
    if density >= 1.0:
        return "dense"
    if stream_format != "auto":
        return stream_format
    sizes = {name: float(stream_bytes_per_weight(machine, density, name))
             for name in ("dense", "coordinate", "bitmask")}
    return min(sizes, key=sizes.get)


def axpy_cycles(machine: MachineDescription, tokens_per_row: int) -> int:
    """Return the cycles of one AXPY over ``tokens_per_row`` values: ceil(L / simd) + overhead."""
    return math.ceil(tokens_per_row / machine["simd_width"]) + int(machine["axpy_overhead_cycles"])


def fixed_latency_cycles(machine: MachineDescription, pass_: str = "fwd") -> float:
    """Return the fill and drain of one op in cycles.

    Every op pays R hops to carry the last non-zero down its column. The
    forward and activation-gradient partial sums then travel up to C - 1 hops
    along a row. The weight gradient's partial dot products meet at the bottom
    row while the last non-zero is still travelling down, so they add nothing.
    """
    down = machine["mesh_rows"] * machine["hop_cycles"]
    if pass_ == "wgrad":
        return down
    return down + (machine["mesh_cols"] - 1) * machine["hop_cycles"]


def weight_op_cycles(machine: MachineDescription, work: ColumnWork, stream_bytes: float,
                     tokens_per_row: int, pass_: str = "fwd") -> OpCycles:
    """Time one weight op from its column work, stream bytes and tokens per core row.

    NOTE: partial-sum traffic along the rows is not checked against link
    bandwidth, and decoupled cores were checked against the event simulator
    on meshes of up to 16 x 16 only.
    """
    bytes_per_cycle = machine["io_bandwidth"] / machine["clock_hz"]
    stream = stream_bytes / bytes_per_cycle
    axpy = axpy_cycles(machine, tokens_per_row) if work.nnz else 0
    compute = work.max_count * axpy
    balanced = work.mean_count * axpy
    first_item = stream / work.nnz if work.nnz else 0.0
    latency = fixed_latency_cycles(machine, pass_)

    wait = arrival_wait_cycles(stream - compute, compute_spread_cycles(work, axpy))
    total = max(stream + axpy, first_item + compute) + wait + latency
    return OpCycles(stream=stream, compute=compute, balanced=balanced, latency=latency,
                    total=total, bound=_bound(stream, compute, balanced, latency))


def compute_spread_cycles(work: ColumnWork, axpy: int) -> float:
    """Return the spread in the busiest core's remaining work caused by where its non-zeros sit in the stream.

    Output by output, each output puts Binomial(features, local density)
    non-zeros on the column, so the count that has arrived by any point of
    the stream wanders by about sqrt(count · (1 - local density)) AXPYs.
    """
    if work.max_trials <= 0 or work.max_count <= 0:
        return 0.0
    local_density = min(1.0, work.max_count / work.max_trials)
    return axpy * math.sqrt(work.max_count * (1.0 - local_density))


def arrival_wait_cycles(stream_minus_compute: float, spread: float) -> float:
    """Return the expected idle cycles of the busiest core waiting for its non-zeros to arrive.

    The core finishes at W + max over x in [0, 1] of ((S - W)·x + spread·B(x)),
    with S the stream and W its work in cycles and B a Brownian bridge, and
    E[max] of a bridge from 0 to b is max(0, b) + spread·sqrt(pi/8)·erfcx(|b| /
    (sqrt(2)·spread)) (first-passage law of the Brownian bridge). The max(0, b)
    part is the stream bound, counted elsewhere, so this returns the rest.
    """
    if spread <= 0.0:
        return 0.0
    b = stream_minus_compute
    return spread * math.sqrt(math.pi / 8.0) * float(special.erfcx(abs(b) / (math.sqrt(2.0) * spread)))


def _bound(stream: float, compute: float, balanced: float, latency: float) -> str:
    if latency >= max(stream, compute):
        return "latency"
    if stream >= compute:
        return "stream"
    if compute > IMBALANCE_MARGIN * max(balanced, stream):
        return "imbalance"
    return "compute"


def column_work(machine: MachineDescription, mask: np.ndarray | None, shape: tuple[int, int],
                nnz: int, feature: str) -> ColumnWork:
    """Count the non-zeros per mesh column, exactly from ``mask`` or from random-mask statistics.

    ``shape`` is the weight's [out, in]; ``feature`` the axis split over columns.
    """
    cols = int(machine["mesh_cols"])
    out_features, in_features = shape
    split, other = (in_features, out_features) if feature == "in" else (out_features, in_features)
    size = out_features * in_features
    if not 0 <= nnz <= size:
        raise SpdfSimError(f"non-zero count {nnz} is out of range [0, {size}] for a weight of "
                           f"shape {shape}")
    if mask is not None:
        if tuple(mask.shape) != tuple(shape):
            raise SpdfSimError(f"mask shape {tuple(mask.shape)} does not match the weight shape "
                               f"{tuple(shape)}: give a [out, in] mask")
        counts = core_counts(mask, feature, cols)
        busiest = int(np.argmax(counts))
        return ColumnWork(float(counts[busiest]), float(counts.mean()), int(counts.sum()),
                          "real mask", int(features_per_core(split, cols)[busiest] * other))

    trials = features_per_core(split, cols) * other
    if nnz == size:
        return ColumnWork(float(trials.max()), size / cols, nnz, "dense", int(trials.max()))
    density = nnz / size
    return ColumnWork(expected_max_count(trials, density), nnz / cols, nnz,
                      "random-mask statistics", int(trials.max()))
