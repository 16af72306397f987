"""Timing engines, one per kind of machine; ``time_step`` picks by the description's kind."""

from __future__ import annotations

from hwmodels import MachineDescription
from spdf_sim.engines import gpu, ideal, wafer_analytic, wafer_step
from spdf_sim.engines.base import StepTiming, StepWork
from spdf_sim.errors import SpdfSimError

FIDELITIES = ("simulated", "analytic")
"""Wafer engines: the dataflow simulator (default) and the closed-form model."""


def time_step(machine: MachineDescription, work: StepWork, fidelity: str | None = None) -> StepTiming:
    """Time one training step on a machine with the engine for its kind.

    ``fidelity`` applies to wafer machines only; None means "simulated".
    """
    if machine.kind == "gpu":
        return gpu.time_step(machine, work)
    if machine.kind == "ideal":
        return ideal.time_step(machine, work)
    fidelity = fidelity or "simulated"
    if fidelity not in FIDELITIES:
        raise SpdfSimError(f"fidelity {fidelity!r} is invalid: give one of {', '.join(FIDELITIES)}")
    if fidelity == "analytic":
        return wafer_analytic.time_step(machine, work)
    return wafer_step.time_step(machine, work)


__all__ = ["FIDELITIES", "StepTiming", "StepWork", "time_step"]
