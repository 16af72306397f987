"""Mask-to-mesh mapping: exact per-column counts and random-mask statistics."""

import numpy as np
import pytest

from spdf_sim.engines.mesh import core_counts, expected_max_count, features_per_core, slice_bounds
from spdf_sim.errors import SpdfSimError


def test_slices_cover_features():
    sizes = features_per_core(12288, 922)
    assert sizes.sum() == 12288
    assert sizes.max() - sizes.min() <= 1


def test_slices_fewer_features_than_cols():
    sizes = features_per_core(5, 8)
    assert sizes.sum() == 5
    assert (sizes == 0).sum() == 3


def test_slices_reject_zero_parts():
    with pytest.raises(SpdfSimError, match="mesh dimension 0"):
        slice_bounds(10, 0)


def test_counts_match_loop():
    rng = np.random.default_rng(3)
    mask = rng.random((37, 53)) < 0.3
    cols = 7
    bounds = slice_bounds(53, cols)
    expected = [mask[:, bounds[c]:bounds[c + 1]].sum() for c in range(cols)]
    assert core_counts(mask, "in", cols).tolist() == expected


def test_counts_transposed_for_out():
    rng = np.random.default_rng(4)
    mask = rng.random((40, 24)) < 0.5
    bounds = slice_bounds(40, 6)
    expected = [mask[bounds[c]:bounds[c + 1], :].sum() for c in range(6)]
    assert core_counts(mask, "out", 6).tolist() == expected


def test_expected_max_matches_sampling():
    rng = np.random.default_rng(5)
    trials = np.array([140] * 30 + [130] * 70)
    samples = rng.binomial(trials, 0.25, size=(20000, trials.size)).max(axis=1)
    assert expected_max_count(trials, 0.25) == pytest.approx(samples.mean(), rel=0.005)


def test_expected_max_at_least_mean():
    trials = np.full(922, 13 * 12288)
    assert expected_max_count(trials, 0.1) > 0.1 * trials[0]


def test_expected_max_edge_densities():
    trials = np.array([10, 12])
    assert expected_max_count(trials, 0.0) == 0.0
    assert expected_max_count(trials, 1.0) == 12.0
