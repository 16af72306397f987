"""Published-shape checks: the GPT-3 175B-width layer and the SPDF gpt3-xl step on cs2-like."""

import pytest

import hwmodels
from engine_helpers import WIDE, layer_work
from spdf_sim import engines, project

CS2 = hwmodels.load("cs2-like")
BATCH_TOKENS = 2048 * 256


@pytest.fixture(scope="module")
def dense_wide():
    return engines.time_step(CS2, layer_work(WIDE, WIDE, BATCH_TOKENS))


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_wide_layer_near_linear(dense_wide, sparsity):
    sparse = engines.time_step(CS2, layer_work(WIDE, WIDE, BATCH_TOKENS, sparsity=sparsity))
    fraction = dense_wide.seconds / sparse.seconds * (1 - sparsity)
    assert fraction <= 1.0
    assert fraction >= 0.75
    assert set(sparse.ops["bound"]) <= {"stream", "compute", "imbalance", "latency"}


def test_wide_layer_90_stream_bound():
    sparse = engines.time_step(CS2, layer_work(WIDE, WIDE, BATCH_TOKENS, sparsity=0.9))
    assert set(sparse.ops["bound"]) == {"stream"}


def test_wide_layer_small_batch_stream_bound():
    timing = engines.time_step(CS2, layer_work(WIDE, WIDE, 2048, sparsity=0.75))
    assert set(timing.ops["bound"]) == {"stream"}


def test_gpt3_xl_uses_simulator():
    projection = project("gpt3-xl", 0.75, hw="cs2-like", reference_gpu=None)
    timing = projection.hardware["cs2-like"].timing
    assert timing.details["engine"] == "simulated"
    assert timing.details["micro_batch"] * timing.details["micro_batches"] >= 256
    summary = projection.summary()
    assert f"x {timing.details['micro_batch']} sequences" in summary
    assert "weight matmuls bound by stream" in summary
