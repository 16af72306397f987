"""Static weight masks: the one place that creates masks and applies them.

Weights, gradients and AdamW state are all masked here and nowhere else. A
mask is a bool tensor (True = the weight may be non-zero) per sparse weight,
keyed by the weight's canonical name (``blocks.0.attn.q.weight``). The number
of True entries per tensor is the sparsity plan's exact ``nnz``, so the cost
model and the trained model agree on every count.

Mask kinds:

- ``random``: positions are the top ``nnz`` of uniform random scores, the same
  level in every tensor (as in the SPDF paper, Thangarasa et al. 2023);
- ``erk``: Erdős–Rényi-Kernel counts per tensor from the plan, random positions;
- ``magnitude``: the ``nnz`` largest-magnitude entries of the current weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from spdf_sim.errors import SpdfSimError
from spdf_sim.sparsity import ERK, SparsityPlan, make_plan
from spdf_sim.training.config import MASK_KINDS
from workloads import ModelConfig


def canonical_name(name: str) -> str:
    """Strip the prefixes that DDP (``module.``) and torch.compile (``_orig_mod.``) add."""
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name


def canonical_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {canonical_name(name): param for name, param in model.named_parameters()}


def build_plan(config: ModelConfig, sparsity, kind: str) -> SparsityPlan:
    """Return the sparsity plan whose counts the masks will have.

    ``sparsity`` is a float (uniform over the SPDF weights) or a {glob: sparsity}
    mapping; ``kind="erk"`` turns a float into an ERK distribution of the same
    overall level.
    """
    if kind not in MASK_KINDS:
        raise SpdfSimError(f"mask kind {kind!r} is invalid: give one of {', '.join(MASK_KINDS)}")
    if kind == "erk":
        if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool):
            raise SpdfSimError(f"ERK masks take one overall sparsity, not {sparsity!r}: "
                               f"give a number in [0, 1)")
        return make_plan(config, ERK(float(sparsity)))
    return make_plan(config, sparsity)


class MaskSet:
    """The masks of one model, and the operations that enforce them.

    After :meth:`drop` every method is a no-op, so the dense phase runs the same
    code as the sparse one.
    """

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        params = canonical_parameters(model)
        for name, mask in masks.items():
            if name not in params:
                raise SpdfSimError(f"mask for {name!r} names no parameter of the model")
            if tuple(mask.shape) != tuple(params[name].shape):
                raise SpdfSimError(f"mask for {name} has shape {tuple(mask.shape)}, but the "
                                   f"weight has shape {tuple(params[name].shape)}")
        self.masks = {name: mask.to(device=params[name].device, dtype=torch.bool)
                      for name, mask in masks.items()}
        self._params = [params[name] for name in self.masks]
        self._masks = list(self.masks.values())
        # Float copies make the in-place multiplies below one fused foreach call
        # with no per-step bool-to-float conversion.
        self._scales = [mask.to(param.dtype) for mask, param in zip(self._masks, self._params)]

    @classmethod
    def create(cls, model: nn.Module, plan: SparsityPlan, kind: str = "random",
               seed: int = 0) -> "MaskSet":
        """Create masks with the plan's exact non-zero count per weight.

        Random scores come from a CPU generator seeded with ``seed`` and are drawn
        in the plan's weight order, so every process (every DDP rank) that passes
        the same seed gets identical masks on any device.
        """
        if kind not in MASK_KINDS:
            raise SpdfSimError(f"mask kind {kind!r} is invalid: give one of {', '.join(MASK_KINDS)}")
        params = canonical_parameters(model)
        generator = torch.Generator().manual_seed(seed)
        masks = {}
        for name, nnz in plan.nnz.items():
            weight = params[name].detach()
            if kind == "magnitude":
                scores = weight.abs().float().cpu()
            else:
                scores = torch.rand(weight.shape, generator=generator)
            masks[name] = top_k_mask(scores, nnz)
        return cls(model, masks)

    @property
    def active(self) -> bool:
        return bool(self.masks)

    def nnz(self) -> dict[str, int]:
        return {name: int(mask.sum()) for name, mask in self.masks.items()}

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        """Zero every masked weight."""
        if self._params:
            torch._foreach_mul_(self._params, self._scales)

    @torch.no_grad()
    def apply_to_grads(self) -> None:
        """Zero the gradients of masked weights; call after backward, before unscaling and clipping.

        torch.where rather than a multiply, because NaN * 0 is NaN: a masked
        entry's gradient must not leak an overflow into the clipping norm.
        """
        for param, mask in zip(self._params, self._masks):
            if param.grad is not None:
                torch.where(mask, param.grad, torch.zeros((), dtype=param.grad.dtype),
                            out=param.grad)

    @torch.no_grad()
    def apply_to_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero AdamW's first and second moments at masked positions.

        The engine calls this when moments come from elsewhere (a loaded
        checkpoint). Masked gradients then keep them zero at every later step.
        """
        moments, scales = [], []
        for param, scale in zip(self._params, self._scales):
            state = optimizer.state.get(param)
            if not state:
                continue
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    moments.append(state[key])
                    scales.append(scale)
        if moments:
            torch._foreach_mul_(moments, scales)

    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Re-impose the masks on the weights after an optimizer step.

        AdamW's moments need no masking here: a masked entry's gradient is zero,
        so moments that start at zero stay zero, and the engine masks them
        whenever they come from elsewhere (a new mask set, a loaded checkpoint).
        Skipping the two extra passes keeps the masked step within 10% of a
        dense one on CPU.
        """
        self.apply_to_weights()

    def drop(self) -> None:
        """Remove every mask: from now on all weights train (the switch to dense)."""
        self.masks = {}
        self._params = []
        self._masks = []
        self._scales = []

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: mask.cpu() for name, mask in self.masks.items()}

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: dict[str, torch.Tensor]) -> "MaskSet":
        return cls(model, {canonical_name(name): mask for name, mask in state.items()})


def top_k_mask(scores: torch.Tensor, nnz: int) -> torch.Tensor:
    """Return a bool mask with True at the ``nnz`` highest scores (ties broken by position)."""
    if not 0 <= nnz <= scores.numel():
        raise SpdfSimError(f"non-zero count {nnz} is out of range [0, {scores.numel()}]")
    flat = torch.zeros(scores.numel(), dtype=torch.bool)
    if nnz:
        flat[torch.topk(scores.flatten(), nnz, sorted=False).indices] = True
    return flat.view(scores.shape)
