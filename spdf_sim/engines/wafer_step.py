"""The simulated wafer step: every op of the step graph in dependency order, micro-batch by micro-batch.

Weight streaming runs one op at a time on the whole wafer, so an op starts
when its inputs are ready and the wafer is free. A step runs as micro-batches
that fit the on-wafer SRAM; each re-streams every weight in and every weight
gradient out, and the gradients accumulate off the wafer. The optimizer
update runs in external memory after the last micro-batch and delays the next
step only where a weight it has not yet updated is needed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from hwmodels import MachineDescription
from spdf_sim.engines.base import StepTiming, StepWork, op_table
from spdf_sim.engines.wafer_analytic import STREAM_FORMATS, break_even_density, choose_micro_batch
from spdf_sim.engines.wafer_sim import (
    PASS_LAYOUT, ColumnWork, chosen_format, column_work, stream_bytes_per_weight, weight_op_cycles,
)
from spdf_sim.errors import SpdfSimError

ELEMENTWISE_KINDS = ("softmax", "layernorm", "gelu", "residual", "loss")


def time_step(machine: MachineDescription, work: StepWork) -> StepTiming:
    """Simulate one training step on a wafer machine and return its timeline."""
    stream_format = work.options.get("stream_format") or machine.get("stream_format", "auto")
    if stream_format not in STREAM_FORMATS:
        raise SpdfSimError(f"stream format {stream_format!r} is invalid: give one of "
                           f"{', '.join(STREAM_FORMATS)}")
    micro, _ = choose_micro_batch(machine, work)
    first_tokens = min(micro * work.config.context, work.tokens)
    sizes = _micro_batch_sizes(work.tokens, first_tokens)
    n_micro = sum(sizes.values())

    ops = work.ops
    is_weight = (ops["kind"] == "matmul").to_numpy()
    per_micro = {tokens: np.zeros(len(ops)) for tokens in sizes}
    bounds = np.full(len(ops), "compute", dtype=object)
    stream_bytes = np.zeros(len(ops))
    cache: dict[tuple[str, str], ColumnWork] = {}
    per_weight: dict[float, float] = {}  # stream bytes per weight position, by density
    sources: set[str] = set()

    columns_of = ("pass_", "weight", "m", "k", "n", "tokens")
    arrays = [ops[column].to_numpy()[is_weight].tolist() for column in columns_of]
    records = dict(zip(np.flatnonzero(is_weight).tolist(),
                       (dict(zip(columns_of, values)) for values in zip(*arrays))))
    # Ops with the same shape, pass, density and column work (every block of a
    # uniformly sparse model without real masks) take the same time, so each
    # distinct one is timed once.
    timed: dict[tuple, tuple[dict[int, float], str, float]] = {}
    for i in np.flatnonzero(is_weight):
        row = records[i]
        columns = _column_work_cached(machine, work, row, cache)
        density = work.density[i]
        key = (id(columns), row["pass_"], row["m"], row["k"], row["n"], density)
        if key not in timed:
            timed[key] = _time_weight_op(machine, columns, row, density, stream_format, sizes,
                                         first_tokens, per_weight)
            sources.add(columns.source)
        op_seconds, bounds[i], op_bytes = timed[key]
        for tokens in sizes:
            per_micro[tokens][i] = op_seconds[tokens]
        stream_bytes[i] = op_bytes * n_micro

    dense_seconds = _dense_op_seconds(machine, work)
    seconds = sum(per_micro[tokens] * count for tokens, count in sizes.items())
    seconds = np.where(is_weight, seconds, dense_seconds)
    first_seconds = np.where(is_weight, per_micro[first_tokens],
                             dense_seconds * first_tokens / work.tokens)
    if work.options.get("recompute", False):
        # The forward pass runs again inside the backward pass to rebuild activations.
        forward = (ops["pass_"] == "fwd").to_numpy()
        seconds = np.where(forward, 2.0 * seconds, seconds)
        first_seconds = np.where(forward, 2.0 * first_seconds, first_seconds)

    table = op_table(work, seconds, bounds)
    table["start"], table["end"] = _walk(work, first_seconds)
    table["bytes_streamed"] = stream_bytes
    table["utilisation"] = np.divide(work.flops, seconds * machine["peak_flops"],
                                     out=np.zeros(len(ops)), where=seconds > 0)

    step = float(seconds.sum())
    optimizer, exposed = _optimizer_seconds(machine, work, table, step, first_seconds)
    timing = StepTiming(seconds=step + exposed, ops=table)
    timing.details = _details(machine, work, timing, micro, first_tokens, n_micro, stream_format,
                              sources, optimizer, exposed)
    timing.notes = _notes(machine, timing.details)
    return timing


def _time_weight_op(machine: MachineDescription, columns: ColumnWork, row: dict, density: float,
                    stream_format: str, sizes: dict[int, int], first_tokens: int,
                    per_weight: dict[float, float]) -> tuple[dict[int, float], str, float]:
    """Return one weight op's seconds per micro-batch size, its bound and its stream bytes."""
    if density not in per_weight:
        op_format = chosen_format(machine, density, stream_format)
        per_weight[density] = float(stream_bytes_per_weight(machine, density, op_format))
    op_bytes = _weight_size(row) * per_weight[density]
    seconds, bound = {}, "compute"
    for tokens in sizes:
        cycles = weight_op_cycles(machine, columns, op_bytes, _tokens_per_row(machine, tokens),
                                  row["pass_"])
        seconds[tokens] = cycles.total / machine["clock_hz"]
        if tokens == first_tokens:  # report the bound of the full-size micro-batches
            bound = cycles.bound
    return seconds, bound, op_bytes


def _micro_batch_sizes(tokens: int, micro_tokens: int) -> dict[int, int]:
    """Return {tokens per micro-batch: how many such micro-batches} for a step of ``tokens``."""
    full, rest = divmod(tokens, micro_tokens)
    sizes = {micro_tokens: full}
    if rest:
        sizes[rest] = 1
    return sizes


def _weight_size(row: dict) -> int:
    return int(row["m"]) * int(row["k"]) * int(row["n"]) // int(row["tokens"])


def _tokens_per_row(machine: MachineDescription, micro_tokens: int) -> int:
    """Return the tokens the busiest core row holds in one micro-batch, in every pass.

    The forward and activation-gradient AXPYs run over a row's tokens; the
    weight-gradient dot products run over the same tokens, so all three passes
    see ceil(micro-batch tokens / mesh rows).
    """
    return math.ceil(micro_tokens / machine["mesh_rows"])


def _column_work_cached(machine: MachineDescription, work: StepWork, row: dict,
                        cache: dict) -> ColumnWork:
    """Count column work once per weight and mapped feature; the three passes share two."""
    name = row["weight"]
    _, feature = PASS_LAYOUT[row["pass_"]]
    out_features = int(row["n"]) if row["pass_"] != "dgrad" else int(row["k"])
    in_features = _weight_size(row) // out_features
    nnz = work.plan.nnz.get(name, out_features * in_features)
    mask = work.plan.masks.get(name)
    # Without a mask the work depends only on shape and count, so weights share it.
    key = (name, feature) if mask is not None else ((out_features, in_features), nnz, feature)
    if key not in cache:
        cache[key] = column_work(machine, mask, (out_features, in_features), nnz, feature)
    return cache[key]


def _dense_op_seconds(machine: MachineDescription, work: StepWork) -> np.ndarray:
    """Return the whole-step time of the ops without a streamed weight, at their efficiencies."""
    kind = work.ops["kind"].to_numpy()
    lane_rate = machine["cores"] * machine["simd_width"] * machine["clock_hz"]
    elements = work.ops["elements"].to_numpy(float)
    attention = work.flops / (machine["peak_flops"] * machine["attention_efficiency"])
    seconds = np.zeros(len(kind))
    seconds = np.where(np.isin(kind, ("attention_score", "attention_value")), attention, seconds)
    seconds = np.where(np.isin(kind, ELEMENTWISE_KINDS),
                       elements / (lane_rate * machine["elementwise_efficiency"]), seconds)
    seconds = np.where(kind == "embedding",
                       elements / (lane_rate * machine["embedding_efficiency"]), seconds)
    return seconds


def _walk(work: StepWork, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each op's start and end in one micro-batch, walking the step graph in dependency order.

    An op starts when all its inputs are done and the wafer is free, because
    weight streaming gives the whole wafer to one op at a time.
    """
    from workloads import build_step_graph

    inputs = _input_positions(build_step_graph(work.config, work.tokens), tuple(work.ops.index))
    start, end = [0.0] * len(seconds), [0.0] * len(seconds)
    wafer_free = 0.0
    for i, (op_inputs, op_seconds) in enumerate(zip(inputs, seconds.tolist())):
        inputs_done = max((end[p] for p in op_inputs), default=0.0)
        start[i] = max(wafer_free, inputs_done)
        end[i] = wafer_free = start[i] + op_seconds
    return np.asarray(start), np.asarray(end)


@lru_cache(maxsize=16)
def _input_positions(graph, order: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """Return, per op in ``order``, the positions of the ops it reads."""
    position = {name: i for i, name in enumerate(order)}
    return tuple(tuple(position[p] for p in graph.predecessors(name)) for name in order)


def _optimizer_seconds(machine: MachineDescription, work: StepWork, table: pd.DataFrame,
                       step: float, first_seconds: np.ndarray) -> tuple[float, float]:
    """Return (AdamW time in external memory, the part of it the next step waits for).

    Each weight's update starts once its last gradient has left the wafer (in
    the last micro-batch) and the previous update is done. The next step
    waits only if an op needs a weight before its update has finished.
    NOTE: the last micro-batch's timeline is taken to be the first one's, so
    a smaller remainder micro-batch shifts the ready times slightly.
    """
    from workloads import parameters

    sizes = {p.name: p.size for p in parameters(work.config)}
    rate = machine["memoryx_bandwidth"] / machine["optimizer_bytes_per_param"]
    micro_length = float(first_seconds.sum())
    weights = table.loc[table["pass_"] == "wgrad"].groupby("weight")["end"].max().to_dict()
    first_use = table.loc[table["pass_"] == "fwd"].groupby("weight")["start"].min().to_dict()
    updates = [(step - micro_length + ready, name) for name, ready in weights.items()]
    # Norm scales and biases have no wgrad op here: update them last, needed from the start.
    vectors = sum(size for name, size in sizes.items() if name not in weights)
    updates.sort()

    done, exposed, total = 0.0, 0.0, 0.0
    for ready, name in updates + [(step, None)]:
        params = work.plan.nnz.get(name, sizes.get(name, 0)) if name else vectors
        done = max(done, ready) + params / rate
        total += params / rate
        needed = step + float(first_use.get(name, 0.0))
        exposed = max(exposed, done - needed)
    return total, exposed


def _details(machine: MachineDescription, work: StepWork, timing: StepTiming, micro: int,
             micro_tokens: int, n_micro: int, stream_format: str, sources: set[str],
             optimizer: float, exposed: float) -> dict:
    weights = timing.ops.loc[timing.ops["kind"] == "matmul"]
    density = work.density[(work.ops["kind"] == "matmul").to_numpy()]
    densities, weights_at = np.unique(density, return_counts=True)
    formats = pd.Series(dtype=int)
    for value, count in zip(densities, weights_at):
        name = chosen_format(machine, float(value), stream_format)
        formats[name] = formats.get(name, 0) + count
    return {
        "engine": "simulated",
        "micro_batch": micro,
        "micro_batches": n_micro,
        "micro_batch_tokens": micro_tokens,
        "tokens_per_core_row": math.ceil(micro_tokens / machine["mesh_rows"]),
        "stream_format": stream_format,
        "formats_used": {name: int(count) for name, count in formats.items()},
        "break_even_density": {name: break_even_density(machine, name)
                               for name in ("coordinate", "bitmask")},
        "mask_source": ", ".join(sorted(sources)) or "no weight ops",
        "bound_by_kind": timing.bound_by_kind(),
        "weight_op_bounds": {k: int(v) for k, v in weights["bound"].value_counts().items()},
        "bytes_streamed": float(timing.ops["bytes_streamed"].sum()),
        "optimizer_s": optimizer,
        "optimizer_exposed_s": exposed,
        "step_s": timing.seconds,
        "tokens_per_s": work.tokens / timing.seconds if timing.seconds else 0.0,
        "timeline": f"start and end are for micro-batch 1 of {n_micro}; micro-batches run back to back",
    }


def _notes(machine: MachineDescription, details: dict) -> list[str]:
    name = machine.name
    return [
        f"{name}: simulated wafer ({machine['mesh_rows']} x {machine['mesh_cols']} cores): weights "
        f"stream at {machine['io_bandwidth']:.3g} B/s, one AXPY per non-zero per core, op time = "
        f"busiest core (cores decoupled) or stream, plus fabric fill and drain",
        f"{name}: micro-batch {details['micro_batch']} sequences x {details['micro_batches']} per "
        f"step ({details['tokens_per_core_row']} tokens per core row); every weight re-streamed "
        f"per micro-batch",
        f"{name}: per-core work from {details['mask_source']}",
        f"{name}: stream format {details['stream_format']} (used: {details['formats_used']}); "
        f"break-even density coordinate {details['break_even_density']['coordinate']:.3g}, "
        f"bitmask {details['break_even_density']['bitmask']:.3g}",
        f"{name}: optimizer {details['optimizer_s']:.3g} s in external memory, "
        f"{details['optimizer_exposed_s']:.3g} s of it on the critical path",
    ]
