"""Mapping a weight mask onto the columns of the wafer's core mesh, and counting each core's work.

Layout (the CS-2-like model): a matmul's tokens are split over the mesh rows
and the features it reads are split over the mesh columns, in contiguous
slices. A non-zero weight whose read feature lies in column ``c``'s slice is
broadcast down column ``c`` and costs one AXPY on each core there. A core's
work is therefore the non-zero count of its column's slice of the mask, the
same for every row. Masks are torch-shaped, [out, in].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

from spdf_sim.errors import SpdfSimError

MASK_AXES = {"in": 1, "out": 0}
"""Mask axis that holds each kind of feature: a [out, in] mask has inputs along axis 1."""


def slice_bounds(features: int, parts: int) -> np.ndarray:
    """Return the ``parts + 1`` bounds of contiguous, near-equal slices of ``features``.

    Slice ``c`` is [bounds[c], bounds[c + 1]); sizes differ by at most one, and
    with fewer features than parts some slices are empty.
    """
    if parts < 1:
        raise SpdfSimError(f"mesh dimension {parts} is invalid: give a whole number >= 1")
    return (np.arange(parts + 1, dtype=np.int64) * features) // parts


def features_per_core(features: int, parts: int) -> np.ndarray:
    """Return how many features each of ``parts`` mesh columns holds."""
    return np.diff(slice_bounds(features, parts))


def core_counts(mask: np.ndarray, feature: str, cols: int) -> np.ndarray:
    """Return the exact non-zero count of each mesh column's slice of ``mask``.

    ``feature`` names the mask axis split over the columns: "in" for the
    forward and weight-gradient ops, "out" for the activation gradient, which
    reads the transposed weight.
    """
    axis = MASK_AXES[feature]
    per_feature = np.count_nonzero(mask, axis=1 - axis)
    return slice_sums(per_feature, cols)


def slice_sums(per_feature: np.ndarray, cols: int) -> np.ndarray:
    """Return the sum of ``per_feature`` over each column's contiguous slice."""
    cumulative = np.concatenate(([0], np.cumsum(per_feature, dtype=np.int64)))
    bounds = slice_bounds(len(per_feature), cols)
    return cumulative[bounds[1:]] - cumulative[bounds[:-1]]


def expected_max_count(trials: np.ndarray, density: float) -> float:
    """Return the expected largest per-column count of a random mask at ``density``.

    Each column's count is taken as Binomial(trials[c], density), independent
    between columns. A mask with an exact total count correlates them weakly,
    which changes the result far less than the spread. E[max] = sum over k >= 0 of
    P(max > k) = sum of 1 - prod_c F_c(k), grouped by equal trial counts.
    """
    trials = np.asarray(trials, dtype=np.int64)
    if not 0.0 <= density <= 1.0:
        raise SpdfSimError(f"density {density} is out of range [0, 1]")
    sizes, multiplicity = np.unique(trials[trials > 0], return_counts=True)
    return _expected_max(tuple(sizes.tolist()), tuple(multiplicity.tolist()), float(density))


@lru_cache(maxsize=1024)
def _expected_max(sizes: tuple[int, ...], multiplicity: tuple[int, ...], density: float) -> float:
    top = max(sizes, default=0)
    if top == 0 or density == 0.0:
        return 0.0
    if density == 1.0:
        return float(top)

    # Below ``low`` the max is almost surely larger, so each term there is 1;
    # above ``high`` (12 standard deviations past the largest column's mean)
    # every term is below 1e-20 even over a million columns, so the sum stops.
    spread = np.sqrt(top * density * (1.0 - density))
    low = max(0, int(np.floor(top * density - 12.0 * spread)) - 1)
    high = min(top, int(np.ceil(top * density + 12.0 * spread)) + 1)
    k = np.arange(low, high + 1)
    log_all_below = np.zeros(k.size)
    for size, count in zip(sizes, multiplicity):
        log_all_below += count * stats.binom.logcdf(k, size, density)
    return float(low + np.sum(-np.expm1(log_all_below)))
