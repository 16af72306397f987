"""Stream formats: bytes per weight follow the format arithmetic exactly."""

import numpy as np
import pytest

import hwmodels
from engine_helpers import layer_work
from spdf_sim import engines
from spdf_sim.engines.wafer_analytic import break_even_density
from spdf_sim.engines.wafer_sim import chosen_format, stream_bytes_per_weight

CS2 = hwmodels.load("cs2-like")


def test_coordinate_half_dense_equals_dense():
    assert stream_bytes_per_weight(CS2, 0.5, "coordinate") == stream_bytes_per_weight(CS2, 0.5, "dense")


def test_coordinate_quarter_dense_is_half():
    dense = stream_bytes_per_weight(CS2, 0.25, "dense")
    assert stream_bytes_per_weight(CS2, 0.25, "coordinate") == 0.5 * dense


def test_bitmask_at_75_percent():
    assert stream_bytes_per_weight(CS2, 0.25, "bitmask") == 2 * 0.25 + 1 / 8


def test_break_even_coordinate():
    assert break_even_density(CS2, "coordinate") == 0.5


def test_break_even_bitmask():
    assert break_even_density(CS2, "bitmask") == pytest.approx(15 / 16)


def test_auto_picks_smallest():
    assert chosen_format(CS2, 0.25, "auto") == "bitmask"
    assert chosen_format(CS2, 0.02, "auto") == "coordinate"
    assert chosen_format(CS2, 1.0, "auto") == "dense"


@pytest.mark.parametrize("stream_format, per_weight", [
    ("dense", 2.0), ("coordinate", 0.25 * 4), ("bitmask", 0.25 * 2 + 1 / 8)])
def test_step_streams_format_bytes(stream_format, per_weight):
    work = layer_work(512, 256, 2048 * 4, sparsity=0.75, stream_format=stream_format)
    timing = engines.time_step(CS2, work)
    micro_batches = timing.details["micro_batches"]
    expected = 512 * 256 * per_weight * micro_batches
    assert np.allclose(timing.ops["bytes_streamed"].to_numpy(), expected)


def test_step_rejects_unknown_format():
    work = layer_work(64, 64, 2048, sparsity=0.5, stream_format="csr")
    with pytest.raises(Exception, match="stream format 'csr' is invalid"):
        engines.time_step(CS2, work)
