"""Training runs as data: read a run directory's trace, and replay it through the simulator."""

from spdf_sim.runs.replay import RunProjection, project_run
from spdf_sim.runs.run import MaskRecord, Run, read_run

__all__ = ["MaskRecord", "Run", "RunProjection", "project_run", "read_run"]
