"""Time the wafer simulator: one gpt3-xl training step with real and with statistical masks,
and the fast model against the reference event simulator on a 16 x 16 mesh.

Run: nice -n 10 python benchmarks/bench_simulator.py [--sensitivity]
Targets: real masks under 5 s and 2 GB; statistical masks under 100 ms; fast
model at least 1000x faster than the reference.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

import hwmodels
from spdf_sim import engines
from spdf_sim.engines.mesh import core_counts
from spdf_sim.engines.wafer_reference import simulate_op
from spdf_sim.engines.wafer_sim import ColumnWork, stream_bytes_per_weight, weight_op_cycles
from spdf_sim.projection import step_work
from spdf_sim.sparsity import SparsityPlan, make_plan
from workloads import get_preset, sparse_weights

SPARSITY = 0.75
BATCH_TOKENS = 256 * 2048


def best_of(function, repeats: int) -> float:
    """Return the shortest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def real_mask_plan(config, seed: int = 0) -> SparsityPlan:
    """Return a plan with a random mask of exactly the SPDF density for every sparse weight."""
    rng = np.random.default_rng(seed)
    plan = make_plan(config, SPARSITY)
    masks = {}
    for param in sparse_weights(config):
        scores = rng.random(param.shape, dtype=np.float32)
        keep = plan.nnz[param.name]
        threshold = np.partition(scores, scores.size - keep, axis=None)[scores.size - keep]
        masks[param.name] = scores >= threshold
    nnz = {name: int(mask.sum()) for name, mask in masks.items()}
    return SparsityPlan(nnz=nnz, sizes=plan.sizes, description="random masks", masks=masks)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


def main() -> None:
    machine = hwmodels.load("cs2-like")
    config = get_preset("gpt3-xl")

    statistical = step_work(config, make_plan(config, SPARSITY), BATCH_TOKENS, {})
    engines.time_step(machine, statistical)  # warm the graph and statistics caches
    seconds = best_of(lambda: engines.time_step(machine, statistical), 5)
    print(f"gpt3-xl step, statistical masks: {seconds * 1e3:.1f} ms (target < 100 ms)")

    start = time.perf_counter()
    plan = real_mask_plan(config)
    print(f"  (building {len(plan.masks)} real masks took {time.perf_counter() - start:.1f} s, "
          f"not counted)")
    real = step_work(config, plan, BATCH_TOKENS, {})
    seconds = best_of(lambda: engines.time_step(machine, real), 1)
    print(f"gpt3-xl step, real masks: {seconds:.2f} s (target < 5 s), peak memory "
          f"{peak_rss_gb():.2f} GB including the masks (target < 2 GB)")

    small = machine.with_values(mesh_rows=16, mesh_cols=16)
    mask = np.random.default_rng(1).random((64, 64)) < 0.5
    size = mask.size * float(stream_bytes_per_weight(small, mask.mean(), "coordinate"))

    def fast() -> None:
        counts = core_counts(mask, "in", 16)
        work = ColumnWork(float(counts.max()), float(counts.mean()), int(counts.sum()),
                          "real mask", 4 * 64)
        weight_op_cycles(small, work, size, 16, "fwd")

    fast_s = best_of(fast, 200)
    reference_s = best_of(lambda: simulate_op(small, mask, "fwd", 256, size), 3)
    print(f"16 x 16 mesh, 64 x 64 mask at 50%: fast {fast_s * 1e6:.0f} us, reference "
          f"{reference_s * 1e3:.0f} ms, {reference_s / fast_s:.0f}x (target >= 1000x)")



SENSITIVITY = {
    # number: (low, high) values tried; mesh shapes keep about 850,000 cores.
    "io_bandwidth": (0.75e11, 3.0e11),
    "axpy_overhead_cycles": (1, 8),
    "hop_cycles": (1, 4),
    "mesh_rows": (461, 1844),
    "sram_fraction_for_activations": (0.25, 0.75),
    "activation_bytes_per_token_per_d": (17, 68),
    "attention_efficiency": (0.25, 1.0),
    "elementwise_efficiency": (0.1, 0.5),
    "embedding_efficiency": (0.1, 0.5),
    "memoryx_bandwidth": (0.5e12, 2.0e12),
    "optimizer_bytes_per_param": (16, 64),
    "index_bytes": (1, 4),
    "stream_format": ("coordinate", "dense"),
}


def speedup(machine, config) -> float:
    """Return the dense-over-sparse step time at SPARSITY, the projected pre-training speedup."""
    sparse = engines.time_step(machine, step_work(config, make_plan(config, SPARSITY), BATCH_TOKENS, {}))
    dense = engines.time_step(machine, step_work(config, make_plan(config, 0.0), BATCH_TOKENS, {}))
    return dense.seconds / sparse.seconds


def sensitivity() -> None:
    """Print how far each assumption moves the gpt3-xl speedup at 75% sparsity on cs2-like."""
    machine = hwmodels.load("cs2-like")
    config = get_preset("gpt3-xl")
    base = speedup(machine, config)
    print(f"gpt3-xl at {SPARSITY:.0%}, cs2-like baseline speedup {base:.3f}")
    print("| number | baseline | low -> speedup | high -> speedup | largest move |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for key, (low, high) in SENSITIVITY.items():
        results = []
        for value in (low, high):
            overrides = {key: value}
            if key == "mesh_rows":
                overrides["mesh_cols"] = round(850_084 / value)
            results.append(speedup(machine.with_values(**overrides), config))
        move = max(abs(r / base - 1) for r in results)
        rows.append((move, key, low, high, results))
    for move, key, low, high, results in sorted(rows, reverse=True):
        print(f"| {key} | {machine[key]} | {low} -> {results[0]:.3f} | {high} -> {results[1]:.3f} "
              f"| {move:.1%} |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--sensitivity"]:
        sensitivity()
    else:
        main()
