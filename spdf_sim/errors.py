"""The package's one exception type, and the bridge from the data layers' errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hwmodels import MachineError
from workloads import WorkloadError


class SpdfSimError(ValueError):
    """Invalid input to spdf-sim: the message names the value and what is allowed."""


@contextlib.contextmanager
def as_spdf_error() -> Iterator[None]:
    """Re-raise the data layers' input errors as SpdfSimError, with the same message."""
    try:
        yield
    except (WorkloadError, MachineError) as error:
        raise SpdfSimError(str(error)) from None


def check_sparsity(value, what: str = "sparsity") -> float:
    """Return ``value`` as a float in [0, 1), or raise naming the value and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpdfSimError(f"{what} {value!r} is invalid: give a number in [0, 1), "
                           f"the fraction of weights that are zero")
    value = float(value)
    if not 0.0 <= value < 1.0:  # also rejects NaN
        hint = f" (for {value:g}% give {value / 100:g})" if 1.0 < value < 100.0 else ""
        raise SpdfSimError(f"{what} {value} is out of range [0, 1): give the fraction of "
                           f"weights that are zero{hint}")
    return value


def check_tokens(value, what: str = "tokens", minimum: int = 1) -> int:
    """Return ``value`` as a whole number of tokens >= ``minimum``, or raise."""
    bound = "> 0" if minimum == 1 else f">= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise SpdfSimError(f"{what} {value!r} is invalid: give a whole number of tokens {bound}")
    if value < minimum or value != int(value):
        raise SpdfSimError(f"{what} {value!r} is out of range: give a whole number of tokens {bound}")
    return int(value)
