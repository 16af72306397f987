"""The physical limit: every FLOP of real work at peak, zeros skipped for free."""

from __future__ import annotations

import numpy as np

from hwmodels import MachineDescription
from spdf_sim.engines.base import StepTiming, StepWork, op_table


def time_step(machine: MachineDescription, work: StepWork) -> StepTiming:
    seconds = work.flops / machine["peak_flops"]
    ops = op_table(work, seconds, np.full(len(seconds), "compute"))
    note = (f"{machine.name}: work FLOPs / peak ({machine['peak_flops']:.3g} FLOP/s), counted as the "
            f"hardware computes them (full attention, 3 matmuls per weight) whatever the FLOP "
            f"convention; nothing else costs time. Its time is a lower bound, but a machine whose "
            f"dense step is bound by something else can show a larger speedup")
    return StepTiming(seconds=float(seconds.sum()), ops=ops, notes=[note])
