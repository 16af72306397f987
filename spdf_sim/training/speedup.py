"""Projected speedup of a training step, computed from the run's real masks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from spdf_sim.sparsity import SparsityPlan, dense_plan
from workloads import ModelConfig

WAFER = "cs2-like"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepSpeedup:
    """Projected step time of this run's sparsity on the wafer, against two baselines."""

    vs_dense: float
    """Dense step time over sparse step time, both on the wafer."""
    vs_gpu: float
    """The GPU's dense step time over the wafer's sparse step time."""


def plan_from_masks(masks: dict[str, torch.Tensor]) -> SparsityPlan:
    """Build a sparsity plan whose counts and masks are the given bool masks."""
    if not masks:
        return dense_plan()
    return SparsityPlan(
        nnz={name: int(mask.sum()) for name, mask in masks.items()},
        sizes={name: mask.numel() for name, mask in masks.items()},
        description="measured from the training run's masks",
        masks={name: mask.cpu().numpy() for name, mask in masks.items()},
    )


def projected_speedup(config: ModelConfig, plan: SparsityPlan, sequences_per_step: int,
                      gpu: str) -> StepSpeedup | None:
    """Project one step of ``sequences_per_step`` sequences on the wafer and on ``gpu``.

    Returns None, with a logged warning, when the projection fails, because a
    progress-bar figure must never stop a training run.
    """
    from spdf_sim.projection import project  # the projection stack is not needed to train

    tokens_per_step = sequences_per_step * config.context
    try:
        projection = project(config, plan, hw=[WAFER], tokens=tokens_per_step,
                             batch_size=sequences_per_step, reference_gpu=gpu)
    except Exception as error:  # noqa: BLE001 - any failure only costs the figure
        log.warning("projected speedup unavailable for %s on %s and %s: %s",
                    config.name, WAFER, gpu, error)
        return None
    wafer = projection.hardware[WAFER]
    reference = projection.hardware[gpu]
    return StepSpeedup(vs_dense=wafer.dense_step_s / wafer.step_s,
                       vs_gpu=reference.dense_step_s / wafer.step_s)
