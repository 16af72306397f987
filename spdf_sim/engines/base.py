"""The input (StepWork) and result (StepTiming) shared by every timing engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spdf_sim.sparsity import SparsityPlan
from workloads import ModelConfig

BOUNDS = ("compute", "stream", "memory", "imbalance", "latency")


@dataclass(frozen=True)
class StepWork:
    """One training step as the engines see it.

    ``ops`` is the op table of the step graph; ``flops`` the work each op does
    with zero weights skipped, ``dense_flops`` the same op run dense (what a
    dense kernel computes whatever the weights), and ``density`` each op's
    weight density (1 for ops without a sparse weight). Work is counted with
    full attention, as the hardware computes it, whatever convention the
    projection reports FLOPs in.
    """

    config: ModelConfig
    plan: SparsityPlan
    ops: pd.DataFrame
    flops: np.ndarray
    dense_flops: np.ndarray
    density: np.ndarray
    tokens: int
    options: dict = field(default_factory=dict)


@dataclass
class StepTiming:
    """An engine's result for one step: total seconds, a row per op, and what it assumed."""

    seconds: float
    ops: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def bound_by_kind(self) -> dict[str, str]:
        """Return, per op kind, the bound that accounts for most of that kind's time."""
        if "bound" not in self.ops:
            return {}
        time = self.ops.groupby(["kind", "bound"])["seconds"].sum().reset_index()
        top = time.sort_values("seconds").groupby("kind").tail(1)
        return dict(zip(top["kind"], top["bound"]))


def op_table(work: StepWork, seconds: np.ndarray, bound: np.ndarray) -> pd.DataFrame:
    """Build the per-op result table shared by the engines."""
    return pd.DataFrame({
        "kind": work.ops["kind"].to_numpy(), "pass_": work.ops["pass_"].to_numpy(),
        "weight": work.ops["weight"].to_numpy(), "flops": work.flops,
        "seconds": seconds, "bound": bound,
    }, index=work.ops.index)
