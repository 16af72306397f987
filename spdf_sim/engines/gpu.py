"""GPU roofline: matmuls at peak times a size-dependent efficiency, other ops at memory bandwidth."""

from __future__ import annotations

import numpy as np

from hwmodels import MachineDescription
from spdf_sim.engines.base import StepTiming, StepWork, op_table
from spdf_sim.errors import SpdfSimError
from spdf_sim.flops import MATMUL_KINDS

GPU_SPARSITY_MODES = ("unstructured", "2:4", "sparse-kernel")


def matmul_efficiency(machine: MachineDescription, smallest_dim: np.ndarray) -> np.ndarray:
    """Return the fraction of peak a GEMM reaches, rising with its smallest dimension.

    eff = max_eff · d / (d + d_half): small matmuls cannot fill the tensor cores.
    """
    half = machine["efficiency_half_dim"]
    return machine["max_matmul_efficiency"] * smallest_dim / (smallest_dim + half)


def time_step(machine: MachineDescription, work: StepWork) -> StepTiming:
    mode = work.options.get("gpu_sparsity", "unstructured")
    if mode not in GPU_SPARSITY_MODES:
        raise SpdfSimError(f"GPU sparsity mode {mode!r} is invalid: give one of "
                           f"{', '.join(GPU_SPARSITY_MODES)}")
    ops = work.ops
    is_matmul = ops["kind"].isin(MATMUL_KINDS).to_numpy()
    value_bytes = machine["bytes_per_value"]
    bandwidth = machine["memory_bandwidth"] * machine["memory_efficiency"]

    m, k, n = (ops[c].to_numpy(float) for c in ("m", "k", "n"))
    batch = ops["batch"].to_numpy(float)
    efficiency = matmul_efficiency(machine, np.minimum(np.minimum(m, k), n))
    peak = np.full(len(ops), float(machine["peak_flops"]))

    # Dense kernels compute every weight, zero or not.
    flops = work.dense_flops.copy()
    sparse_weight = is_matmul & (work.density < 1.0)
    if mode == "2:4":
        # 2:4 runs the forward matmul at up to 2x when at most half the weights are kept.
        fast = sparse_weight & (work.density <= 0.5) & (ops["pass_"] == "fwd").to_numpy()
        peak = np.where(fast, machine["peak_flops_2to4"], peak)
    elif mode == "sparse-kernel":
        use = sparse_weight & (1.0 - work.density >= machine["sparse_kernel_min_sparsity"])
        flops = np.where(use, work.flops / machine["sparse_kernel_efficiency"], flops)

    rate = peak * efficiency
    compute = np.divide(flops, rate, out=np.zeros(len(ops)), where=is_matmul & (rate > 0))
    matmul_bytes = batch * (m * k + k * n + m * n) * value_bytes
    elementwise_bytes = 2.0 * ops["elements"].to_numpy(float) * value_bytes
    memory = np.where(is_matmul, matmul_bytes, elementwise_bytes) / bandwidth
    seconds = np.maximum(compute, memory)
    bound = np.where(compute >= memory, "compute", "memory")

    notes = [f"{machine.name}: roofline, BF16 peak {machine['peak_flops']:.3g} FLOP/s x GEMM "
             f"efficiency (max {machine['max_matmul_efficiency']}, half at smallest dim "
             f"{machine['efficiency_half_dim']}), other ops at {machine['memory_efficiency']:.0%} "
             f"of {machine['memory_bandwidth']:.3g} B/s; sparsity mode {mode}"]
    if mode == "unstructured":
        notes.append(f"{machine.name}: unstructured sparsity gives dense kernels no speedup")
    elif mode == "2:4":
        notes.append(f"{machine.name}: 2:4 mode assumes every sparse weight at density <= 0.5 is "
                     f"2:4-structured, so its forward matmul runs at up to 2x; denser weights "
                     f"and the backward pass run dense")
    else:
        notes.append(f"{machine.name}: sparse-kernel mode runs a sparse weight's non-zero FLOPs at "
                     f"{machine['sparse_kernel_efficiency']:.0%} of dense efficiency from "
                     f"{machine['sparse_kernel_min_sparsity']:.0%} sparsity; below it, dense kernels")
    return StepTiming(seconds=float(seconds.sum()), ops=op_table(work, seconds, bound), notes=notes)
