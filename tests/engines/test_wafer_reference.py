"""The fast model against the event simulator on small meshes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from engine_helpers import small_wafer, stream_bytes, work_of
from spdf_sim.engines.mesh import core_counts
from spdf_sim.engines.wafer_reference import simulate_op
from spdf_sim.engines.wafer_sim import weight_op_cycles
from spdf_sim.errors import SpdfSimError

AGREEMENT = 0.02


def both(machine, mask, pass_, tokens, stream_format="coordinate"):
    """Return (fast cycles, reference result) for one op."""
    rows = int(machine["mesh_rows"])
    size = stream_bytes(machine, mask, stream_format)
    fast = weight_op_cycles(machine, work_of(machine, mask, pass_), size, -(-tokens // rows), pass_)
    return fast, simulate_op(machine, mask, pass_, tokens, size)


def paced(machine, mask, pass_, tokens, stream_over_compute, stream_format):
    """Return ``machine`` with its I/O rate set so the stream takes that multiple of the compute."""
    rows = int(machine["mesh_rows"])
    size = stream_bytes(machine, mask, stream_format)
    fast = weight_op_cycles(machine, work_of(machine, mask, pass_), size, -(-tokens // rows), pass_)
    scale = fast.stream / max(1.0, fast.compute * stream_over_compute)
    return machine.with_values(io_bandwidth=machine["io_bandwidth"] * scale)


@settings(max_examples=24, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), rows=st.integers(2, 16), cols=st.integers(2, 16),
       out_features=st.integers(16, 64), in_features=st.integers(16, 64),
       density=st.floats(0.05, 1.0), tokens_per_row=st.integers(4, 64),
       pass_=st.sampled_from(["fwd", "dgrad", "wgrad"]),
       stream_format=st.sampled_from(["dense", "coordinate", "bitmask"]),
       stream_over_compute=st.floats(0.3, 3.0))
def test_fast_matches_reference(seed, rows, cols, out_features, in_features, density,
                                tokens_per_row, pass_, stream_format, stream_over_compute):
    mask = np.random.default_rng(seed).random((out_features, in_features)) < density
    tokens = tokens_per_row * rows
    machine = paced(small_wafer(rows, cols), mask, pass_, tokens, stream_over_compute, stream_format)
    fast, reference = both(machine, mask, pass_, tokens, stream_format)
    # Fill and drain are modelled to within a few hops, so short ops are left out.
    assume(fast.total >= 1000)
    assert fast.total == pytest.approx(reference.cycles, rel=AGREEMENT)


@pytest.mark.parametrize("pass_", ["fwd", "dgrad"])
def test_unbalanced_mask_in_both(pass_):
    machine = small_wafer(8, 16)
    unbalanced = np.zeros((128, 128), dtype=bool)
    unbalanced[:16] = True  # 16 dense rows, the rest empty
    if pass_ == "fwd":
        unbalanced = unbalanced.T  # then the dense features are read by the forward op
    balanced = np.random.default_rng(0).permutation(unbalanced.ravel()).reshape(unbalanced.shape)
    machine = paced(machine, balanced, pass_, 256, 0.3, "coordinate")

    fast_bad, reference_bad = both(machine, unbalanced, pass_, 256)
    fast_good, reference_good = both(machine, balanced, pass_, 256)
    assert fast_bad.bound == "imbalance"
    assert fast_bad.total == pytest.approx(reference_bad.cycles, rel=AGREEMENT)
    assert reference_bad.cycles > 3 * reference_good.cycles
    assert fast_bad.total > 3 * fast_good.total


def test_zero_nnz_reference_latency():
    machine = small_wafer(6, 9)
    empty = np.zeros((32, 32), dtype=bool)
    fast, reference = both(machine, empty, "fwd", 60)
    assert reference.cycles == fast.total


def test_shallow_queues_stall_stream():
    # With one slot per core the stream blocks on busy columns and the op runs longer.
    mask = np.random.default_rng(2).random((64, 64)) < 0.5
    machine = paced(small_wafer(4, 16), mask, "fwd", 128, 0.2, "coordinate")
    _, deep = both(machine, mask, "fwd", 128)
    _, shallow = both(machine.with_values(core_queue_depth=1), mask, "fwd", 128)
    assert shallow.cycles > 1.1 * deep.cycles


def test_reference_busy_matches_counts():
    machine = small_wafer(4, 8)
    mask = np.random.default_rng(3).random((32, 40)) < 0.3
    _, reference = both(machine, mask, "fwd", 64)
    axpy = 16 // 4 + int(machine["axpy_overhead_cycles"])
    counts = core_counts(mask, "in", 8)
    assert reference.busy[0].tolist() == (counts * axpy).tolist()


def test_reference_rejects_big_mesh():
    with pytest.raises(SpdfSimError, match="out of range for the reference simulator"):
        simulate_op(small_wafer(32, 8), np.ones((8, 8), dtype=bool), "fwd", 64, 128.0)
