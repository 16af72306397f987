"""The wafer's analytic model: work follows non-zero weights, bounded by the weight stream.

A closed-form stand-in for the dataflow simulator, kept as ``fidelity="analytic"``.
Per weight matmul it takes max(compute, stream): compute is the non-zero FLOPs
at peak times the AXPY efficiency of the tokens each core row holds; stream is
the bytes of the weight's non-zeros (in the chosen stream format) moved once
per micro-batch over the machine's I/O. Load imbalance between cores, fabric
latency and per-op overlap are ignored here; the simulator models them.
"""

from __future__ import annotations

import math

import numpy as np

from hwmodels import MachineDescription
from spdf_sim.engines.base import StepTiming, StepWork, op_table
from spdf_sim.errors import SpdfSimError

STREAM_FORMATS = ("dense", "coordinate", "bitmask", "auto")


def stream_bytes_per_weight(machine: MachineDescription, density: np.ndarray | float,
                            stream_format: str) -> np.ndarray:
    """Return the bytes streamed per weight position (zero or not) in a stream format.

    dense: a value per weight; coordinate: value + index per non-zero; bitmask:
    value per non-zero + 1 bit per weight; auto: the smallest of the three.
    """
    value, index = machine["bytes_per_value"], machine["index_bytes"]
    density = np.asarray(density, dtype=float)
    sizes = {
        "dense": np.full_like(density, float(value)),
        "coordinate": density * (value + index),
        "bitmask": density * value + 1.0 / 8.0,
    }
    if stream_format == "auto":
        return np.minimum(np.minimum(sizes["dense"], sizes["coordinate"]), sizes["bitmask"])
    if stream_format not in sizes:
        raise SpdfSimError(f"stream format {stream_format!r} is invalid: give one of "
                           f"{', '.join(STREAM_FORMATS)}")
    return sizes[stream_format]


def break_even_density(machine: MachineDescription, stream_format: str) -> float:
    """Return the density above which a format streams more bytes than dense."""
    value, index = machine["bytes_per_value"], machine["index_bytes"]
    if stream_format == "coordinate":
        return value / (value + index)
    if stream_format == "bitmask":
        return (value - 1.0 / 8.0) / value
    return 1.0


def activation_bytes_per_token(machine: MachineDescription, work: StepWork) -> float:
    """Return the bytes of stored activations per token for the whole model."""
    config = work.config
    per_layer = machine["activation_bytes_per_token_per_d"] * config.d_model
    if work.options.get("recompute", False):
        per_layer = 2 * machine["bytes_per_value"] * config.d_model  # only each block's input
    layers = config.n_layer if config.is_gpt else 1
    return per_layer * layers


def choose_micro_batch(machine: MachineDescription, work: StepWork) -> tuple[int, int]:
    """Return (sequences per micro-batch, micro-batches per step).

    The largest micro-batch whose stored activations fit in the SRAM set aside
    for them, unless the caller gives one.
    """
    sequence = work.config.context
    sequences = max(1, work.tokens // sequence)
    given = work.options.get("micro_batch")
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= sequences:
            raise SpdfSimError(f"micro-batch {given!r} is out of range [1, {sequences}]: give "
                               f"sequences per micro-batch, at most the batch")
        micro = given
    else:
        room = machine["sram_bytes"] * machine["sram_fraction_for_activations"]
        fits = int(room // (activation_bytes_per_token(machine, work) * sequence))
        micro = max(1, min(sequences, fits))
    return micro, math.ceil(sequences / micro)


def axpy_efficiency(machine: MachineDescription, tokens_per_row: float) -> float:
    """Return the fraction of SIMD peak an AXPY over ``tokens_per_row`` values reaches.

    An AXPY costs ceil(L / simd) + overhead cycles for L·2 FLOPs per lane-cycle.
    """
    simd, overhead = machine["simd_width"], machine["axpy_overhead_cycles"]
    useful = tokens_per_row / simd
    return useful / (math.ceil(useful) + overhead) if tokens_per_row > 0 else 0.0


def time_step(machine: MachineDescription, work: StepWork) -> StepTiming:
    ops = work.ops
    kind = ops["kind"].to_numpy()
    stream_format = work.options.get("stream_format") or machine.get("stream_format", "auto")
    micro, n_micro = choose_micro_batch(machine, work)
    micro_tokens = micro * work.config.context
    peak = machine["peak_flops"]

    is_weight = kind == "matmul"
    efficiency = axpy_efficiency(machine, micro_tokens / machine["mesh_rows"])
    compute = np.where(is_weight, work.flops / (peak * efficiency), 0.0)

    # Each pass moves the weight's non-zeros once per micro-batch: in for fwd
    # and dgrad, gradients out for wgrad.
    weight_size = ops["m"].to_numpy(float) * ops["k"] * ops["n"] / ops["tokens"]
    # Dense weights (the LM head, the dense baseline) stream dense in any format.
    per_weight = np.where(work.density >= 1.0, float(machine["bytes_per_value"]),
                          stream_bytes_per_weight(machine, work.density, stream_format))
    stream_bytes = weight_size * per_weight
    stream = np.where(is_weight, stream_bytes * n_micro / machine["io_bandwidth"], 0.0)

    attention = np.isin(kind, ("attention_score", "attention_value"))
    compute = np.where(attention, work.flops / (peak * machine["attention_efficiency"]), compute)
    lane_rate = machine["cores"] * machine["simd_width"] * machine["clock_hz"]
    elementwise = ops["elements"].to_numpy(float) / (lane_rate * machine["elementwise_efficiency"])
    compute = np.where(is_weight | attention, compute, elementwise)

    seconds = np.maximum(compute, stream)
    bound = np.where(stream > compute, "stream", "compute")
    optimizer = _optimizer_seconds(machine, work)
    step = float(seconds.sum())
    exposed = max(0.0, optimizer - step)

    notes = [
        f"{machine.name}: analytic wafer model; work follows non-zero weights at "
        f"{peak:.3g} FLOP/s x AXPY efficiency {efficiency:.2f} ({micro_tokens / machine['mesh_rows']:.0f} "
        f"tokens per core row); weight stream {stream_format} at {machine['io_bandwidth']:.3g} B/s "
        f"per micro-batch; load imbalance and fabric latency not modelled",
        f"{machine.name}: micro-batch {micro} sequences x {n_micro} per step (stored activations "
        f"must fit {machine['sram_fraction_for_activations']:.0%} of {machine['sram_bytes']:.3g} B SRAM)",
    ]
    details = {"micro_batch": micro, "micro_batches": n_micro, "stream_format": stream_format,
               "optimizer_s": optimizer, "optimizer_exposed_s": exposed}
    return StepTiming(seconds=step + exposed, ops=op_table(work, seconds, bound), notes=notes,
                      details=details)


def _optimizer_seconds(machine: MachineDescription, work: StepWork) -> float:
    """Return the AdamW update time in external memory, for the non-zero parameters."""
    from workloads import count_parameters

    _, nonzero = count_parameters(work.config, work.plan.densities)
    return nonzero * machine["optimizer_bytes_per_param"] / machine["memoryx_bandwidth"]
