"""The fast wafer model: per-op properties, micro-batches, the step timeline and the engine switch."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import hwmodels
from engine_helpers import layer_work, nested_masks, small_wafer, stream_bytes, work_of
from spdf_sim import engines
from spdf_sim.engines.wafer_sim import fixed_latency_cycles, weight_op_cycles
from spdf_sim.errors import SpdfSimError

CS2 = hwmodels.load("cs2-like")


def op_total(machine, mask, pass_="fwd", tokens_per_row=32, stream_format="bitmask"):
    cycles = weight_op_cycles(machine, work_of(machine, mask, pass_),
                              stream_bytes(machine, mask, stream_format), tokens_per_row, pass_)
    return cycles.total


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), rows=st.integers(2, 64), cols=st.integers(2, 64),
       tokens_per_row=st.integers(1, 128), stream_format=st.sampled_from(["dense", "coordinate", "bitmask", "auto"]),
       pass_=st.sampled_from(["fwd", "dgrad", "wgrad"]))
def test_time_falls_with_sparsity(seed, rows, cols, tokens_per_row, stream_format, pass_):
    machine = small_wafer(rows, cols)
    masks = nested_masks((96, 80), [1.0, 0.7, 0.5, 0.3, 0.1, 0.02], seed)
    times = [op_total(machine, m, pass_, tokens_per_row, stream_format) for m in masks]
    assert all(later <= earlier for earlier, later in zip(times, times[1:]))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), cols=st.sampled_from([2, 4, 8, 16]),
       density=st.floats(0.01, 1.0), tokens_per_row=st.integers(1, 128),
       pass_=st.sampled_from(["fwd", "dgrad", "wgrad"]))
def test_speedup_at_most_inverse_density(seed, cols, density, tokens_per_row, pass_):
    # 64 x 128 features split evenly over the columns, so the dense op is balanced.
    machine = small_wafer(8, cols)
    mask = np.random.default_rng(seed).random((64, 128)) < density
    dense = np.ones_like(mask)
    speedup = op_total(machine, dense, pass_, tokens_per_row) / op_total(machine, mask, pass_, tokens_per_row)
    assert speedup <= 1.0 / max(mask.mean(), 1e-9) + 1e-9


def test_row_permutation_spreads_work():
    machine = small_wafer(4, 16)
    mask = np.zeros((64, 64), dtype=bool)
    mask[:8] = True  # eight dense outputs, all on the first two columns for dgrad
    spread = np.zeros_like(mask)
    spread[::8] = True  # the same rows, one on every other column
    assert op_total(machine, spread, "dgrad") < op_total(machine, mask, "dgrad")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), dense_rows=st.integers(1, 32), density=st.floats(0.0, 0.5))
def test_row_permutation_never_slower_when_even(seed, dense_rows, density):
    rng = np.random.default_rng(seed)
    machine = small_wafer(4, 16)
    mask = rng.random((64, 48)) < density
    mask[:dense_rows] = True
    permuted = mask[rng.permutation(64)]
    before = work_of(machine, mask, "dgrad").max_count
    after = work_of(machine, permuted, "dgrad").max_count
    if after <= before:
        assert op_total(machine, permuted, "dgrad") <= op_total(machine, mask, "dgrad")


def test_zero_nnz_costs_latency():
    machine = small_wafer(12, 10)
    empty = np.zeros((48, 40), dtype=bool)
    for pass_ in ("fwd", "dgrad", "wgrad"):
        total = op_total(machine, empty, pass_, stream_format="coordinate")
        assert total == fixed_latency_cycles(machine, pass_)


def test_unbalanced_mask_reports_imbalance():
    machine = small_wafer(4, 16)
    mask = np.zeros((64, 64), dtype=bool)
    mask[:8] = True
    cycles = weight_op_cycles(machine.with_values(io_bandwidth=1e15), work_of(machine, mask, "dgrad"),
                              stream_bytes(machine, mask, "coordinate"), 32, "dgrad")
    assert cycles.bound == "imbalance"


def test_micro_batch_fits_sram():
    work = layer_work(12288, 12288, 2048 * 256, sparsity=0.5)
    details = engines.time_step(CS2, work).details
    activations = 34 * 12288 * details["micro_batch_tokens"]
    assert activations <= CS2["sram_bytes"] * CS2["sram_fraction_for_activations"]
    assert activations + 34 * 12288 * 2048 > CS2["sram_bytes"] * CS2["sram_fraction_for_activations"]


def test_micro_batch_given():
    work = layer_work(1024, 1024, 2048 * 8, sparsity=0.5, micro_batch=3)
    details = engines.time_step(CS2, work).details
    assert details["micro_batch"] == 3
    assert details["micro_batches"] == 3


def test_micro_batch_out_of_range():
    work = layer_work(1024, 1024, 2048 * 8, sparsity=0.5, micro_batch=9)
    with pytest.raises(SpdfSimError, match="micro-batch 9 is out of range"):
        engines.time_step(CS2, work)


def test_smaller_micro_batches_restream():
    big = engines.time_step(CS2, layer_work(2048, 2048, 2048 * 8, sparsity=0.5, micro_batch=8))
    small = engines.time_step(CS2, layer_work(2048, 2048, 2048 * 8, sparsity=0.5, micro_batch=1))
    assert small.ops["bytes_streamed"].sum() == 8 * big.ops["bytes_streamed"].sum()


def test_recompute_fits_more_tokens():
    plain = engines.time_step(CS2, layer_work(12288, 12288, 2048 * 256, sparsity=0.5))
    recompute = engines.time_step(CS2, layer_work(12288, 12288, 2048 * 256, sparsity=0.5, recompute=True))
    assert recompute.details["micro_batch"] > plain.details["micro_batch"]


def test_default_fidelity_is_simulated():
    timing = engines.time_step(CS2, layer_work(256, 256, 2048, sparsity=0.5))
    assert timing.details["engine"] == "simulated"


def test_analytic_still_selectable():
    timing = engines.time_step(CS2, layer_work(256, 256, 2048, sparsity=0.5), "analytic")
    assert "analytic" in timing.notes[0]


def test_unknown_fidelity():
    with pytest.raises(SpdfSimError, match="fidelity 'exact' is invalid"):
        engines.time_step(CS2, layer_work(256, 256, 2048, sparsity=0.5), "exact")


def test_mask_source_real_mask():
    mask = np.random.default_rng(0).random((256, 256)) < 0.25
    timing = engines.time_step(CS2, layer_work(256, 256, 2048, mask=mask))
    assert timing.details["mask_source"] == "real mask"
    assert any("real mask" in note for note in timing.notes)


def test_mask_source_statistics():
    timing = engines.time_step(CS2, layer_work(256, 256, 2048, sparsity=0.75))
    assert timing.details["mask_source"] == "random-mask statistics"


def test_real_mask_close_to_statistics():
    mask = np.random.default_rng(1).random((4096, 4096)) < 0.25
    real = engines.time_step(CS2, layer_work(4096, 4096, 2048 * 16, mask=mask))
    statistics = engines.time_step(CS2, layer_work(4096, 4096, 2048 * 16, sparsity=1 - mask.mean()))
    assert real.seconds == pytest.approx(statistics.seconds, rel=0.01)


def test_mask_shape_mismatch():
    mask = np.ones((128, 256), dtype=bool)
    work = layer_work(128, 256, 2048, mask=mask)  # weight is [256, 128]
    with pytest.raises(SpdfSimError, match="mask shape"):
        engines.time_step(CS2, work)


def test_timeline_in_dependency_order():
    timing = engines.time_step(CS2, layer_work(512, 512, 2048 * 4, sparsity=0.5))
    ops = timing.ops
    for column in ("start", "end", "bytes_streamed", "utilisation", "bound"):
        assert column in ops
    assert (ops["end"] >= ops["start"]).all()
    assert (ops["start"].to_numpy()[1:] >= ops["end"].to_numpy()[:-1] - 1e-15).all()


def test_utilisation_below_one():
    timing = engines.time_step(CS2, layer_work(4096, 4096, 2048 * 64))
    assert (timing.ops["utilisation"] <= 1.0).all()
    assert (timing.ops["utilisation"] > 0.0).all()


def test_optimizer_exposed_for_single_layer():
    # The only weight is needed first by the next step, so its whole update waits.
    timing = engines.time_step(CS2, layer_work(1024, 1024, 2048, sparsity=0.5))
    assert timing.details["optimizer_exposed_s"] == pytest.approx(timing.details["optimizer_s"], rel=1e-6)


def test_optimizer_mostly_hidden_for_gpt():
    from spdf_sim.projection import step_work
    from spdf_sim.sparsity import make_plan
    from workloads import get_preset

    config = get_preset("gpt3-xl")
    timing = engines.time_step(CS2, step_work(config, make_plan(config, 0.75), 2048 * 256, {}))
    assert timing.details["optimizer_exposed_s"] < timing.details["optimizer_s"]


def test_tokens_below_context():
    timing = engines.time_step(CS2, layer_work(256, 256, 1000, sparsity=0.5))
    assert timing.details["micro_batch_tokens"] == 1000
    assert timing.details["micro_batches"] == 1


def test_remainder_micro_batch():
    timing = engines.time_step(CS2, layer_work(1024, 1024, 2048 * 8, sparsity=0.5, micro_batch=3))
    single = engines.time_step(CS2, layer_work(1024, 1024, 2048 * 8, sparsity=0.5, micro_batch=8))
    assert timing.details["micro_batches"] == 3
    assert timing.seconds > single.seconds
