"""GPU roofline: size-dependent efficiency and what each sparsity mode buys."""

import numpy as np
import pytest

import hwmodels
from engine_helpers import layer_work
from spdf_sim import engines
from spdf_sim.engines.gpu import matmul_efficiency
from spdf_sim.errors import SpdfSimError

A100 = hwmodels.load("a100-80gb")
TOKENS = 2048 * 8


def step_seconds(sparsity, mode, machine=A100):
    return engines.time_step(machine, layer_work(4096, 4096, TOKENS, sparsity=sparsity,
                                                 gpu_sparsity=mode))


def test_efficiency_rises_with_size():
    efficiency = matmul_efficiency(A100, np.array([16.0, 128.0, 1024.0, 16384.0]))
    assert (np.diff(efficiency) > 0).all()
    assert efficiency[-1] < A100["max_matmul_efficiency"]
    assert efficiency[1] == pytest.approx(A100["max_matmul_efficiency"] / 2)


def test_small_matmul_below_peak():
    small = engines.time_step(A100, layer_work(64, 64, 2048))
    assert small.ops["flops"].sum() / small.seconds < 0.5 * A100["peak_flops"]


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_unstructured_no_speedup(sparsity):
    assert step_seconds(sparsity, "unstructured").seconds == step_seconds(0.0, "unstructured").seconds


def test_sparse_kernel_below_threshold():
    assert step_seconds(0.5, "sparse-kernel").seconds == step_seconds(0.0, "sparse-kernel").seconds


def test_sparse_kernel_past_threshold():
    assert step_seconds(0.9, "sparse-kernel").seconds < step_seconds(0.0, "sparse-kernel").seconds


def test_sparse_kernel_breaks_even_at_threshold():
    threshold = A100["sparse_kernel_min_sparsity"]
    at = step_seconds(threshold, "sparse-kernel").ops
    dense = step_seconds(0.0, "sparse-kernel").ops
    assert at["seconds"].sum() == pytest.approx(dense["seconds"].sum(), rel=0.01)


def test_two_four_forward_only():
    sparse = step_seconds(0.5, "2:4").ops.set_index("pass_")["seconds"]
    dense = step_seconds(0.0, "2:4").ops.set_index("pass_")["seconds"]
    assert dense["fwd"] / sparse["fwd"] <= 2.0
    assert dense["fwd"] / sparse["fwd"] > 1.5
    assert sparse["dgrad"] == dense["dgrad"]
    assert sparse["wgrad"] == dense["wgrad"]


def test_two_four_needs_half_zeros():
    assert step_seconds(0.3, "2:4").seconds == step_seconds(0.0, "2:4").seconds


def test_unknown_gpu_mode():
    with pytest.raises(SpdfSimError, match="GPU sparsity mode 'block' is invalid"):
        step_seconds(0.5, "block")


def test_h100_faster_than_a100():
    h100 = hwmodels.load("h100-sxm")
    assert step_seconds(0.0, "unstructured", h100).seconds < step_seconds(0.0, "unstructured").seconds
