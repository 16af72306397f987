"""spdf-sim: FLOPs and wall-clock of sparse pre-training then dense fine-tuning (SPDF).

    >>> import spdf_sim
    >>> p = spdf_sim.project("gpt3-xl", 0.75, hw=["cs2-like", "a100-80gb"])
    >>> round(p.pretrain_reduction, 2)
    2.49
"""

from spdf_sim.errors import SpdfSimError
from spdf_sim.flops import CONVENTIONS
from spdf_sim.projection import Projection, project
from spdf_sim.sparsity import ERK, SparsityPlan, make_plan

__all__ = ["CONVENTIONS", "ERK", "Projection", "SparsityPlan", "SpdfSimError", "make_plan", "project"]
