"""Shared builders for the engine tests: small machines, single-layer steps and masks."""

from __future__ import annotations

import numpy as np
import torch

import hwmodels
from spdf_sim.engines.wafer_sim import ColumnWork, column_work, stream_bytes_per_weight
from spdf_sim.projection import step_work
from spdf_sim.sparsity import SparsityPlan, make_plan
from workloads import from_torch_module

WIDE = 12288  # GPT-3 175B width


def small_wafer(rows: int, cols: int, **overrides) -> hwmodels.MachineDescription:
    """Return cs2-like with a small mesh, for the reference simulator."""
    return hwmodels.load("cs2-like").with_values(mesh_rows=rows, mesh_cols=cols, **overrides)


def linear_config(in_features: int, out_features: int, context: int = 2048):
    layer = torch.nn.Linear(in_features, out_features, bias=False, device="meta")  # shapes only
    return from_torch_module(layer, context=context)


def mask_plan(config, mask: np.ndarray) -> SparsityPlan:
    """Return a plan that carries ``mask`` as the real mask of the single weight."""
    return SparsityPlan(nnz={"weight": int(mask.sum())}, sizes={"weight": mask.size},
                        description="test mask", masks={"weight": mask})


def layer_work(in_features: int, out_features: int, tokens: int, sparsity=0.0, mask=None,
               context: int = 2048, **options):
    """Return StepWork for one bias-free Linear layer over ``tokens`` tokens."""
    config = linear_config(in_features, out_features, context)
    plan = mask_plan(config, mask) if mask is not None else make_plan(config, sparsity)
    return step_work(config, plan, tokens, options)


def work_of(machine, mask: np.ndarray, pass_: str) -> ColumnWork:
    feature = "out" if pass_ == "dgrad" else "in"
    return column_work(machine, mask, mask.shape, int(mask.sum()), feature)


def stream_bytes(machine, mask: np.ndarray, stream_format: str) -> float:
    return mask.size * float(stream_bytes_per_weight(machine, mask.mean(), stream_format))


def nested_masks(shape, densities, seed: int = 0) -> list[np.ndarray]:
    """Return masks that keep the top scores of one random draw, so each contains the next."""
    scores = np.random.default_rng(seed).random(shape)
    order = np.sort(scores, axis=None)[::-1]
    return [scores >= order[max(0, int(round(d * scores.size)) - 1)] if d > 0
            else np.zeros(shape, dtype=bool) for d in densities]
