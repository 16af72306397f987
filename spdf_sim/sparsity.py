"""Sparsity plans: which weights are sparse, and their exact non-zero counts.

A plan comes from a float (uniform over the sparse weights), a mapping of name
globs to sparsity, ``ERK(s)`` (Erdős–Rényi-Kernel), or a torch module's own
zeros. Every plan stores an integer non-zero count per weight, so densities are
what a real mask with an exact count per tensor would have.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from spdf_sim.errors import SpdfSimError, check_sparsity
from workloads import ModelConfig, Param, parameters


@dataclass(frozen=True)
class ERK:
    """Erdős–Rényi-Kernel sparsity at an overall level ``sparsity``.

    A weight of shape [out, in] gets density proportional to (in + out) / (in·out)
    (Mocanu et al. 2018; Evci et al. 2020, "Rigging the Lottery", Appendix on
    ERK). Weights whose density would exceed 1 become dense and the rest are
    re-solved, so the non-zero count hits the target exactly. With
    ``budget="all"`` the target counts the dense weight matrices (embeddings, LM
    head) too, which can make it unsatisfiable.
    """

    sparsity: float
    budget: str = "sparse"


@dataclass(frozen=True)
class SparsityPlan:
    """Non-zero counts per weight; weights not listed are dense."""

    nnz: dict[str, int]
    sizes: dict[str, int]
    description: str
    masks: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def density(self, name: str) -> float:
        if name not in self.nnz:
            return 1.0
        return self.nnz[name] / self.sizes[name]

    @cached_property
    def densities(self) -> dict[str, float]:
        """Density per weight the plan covers (computed once; the plan is immutable)."""
        return {name: self.density(name) for name in self.nnz}

    @property
    def sparse_nnz(self) -> int:
        return sum(self.nnz.values())

    @property
    def sparse_size(self) -> int:
        return sum(self.sizes.values())

    @property
    def sparsity(self) -> float:
        """Fraction of zeros over the weights the plan covers (0 when it covers none)."""
        size = self.sparse_size
        return 1.0 - self.sparse_nnz / size if size else 0.0

    @property
    def is_dense(self) -> bool:
        return all(self.nnz[name] == self.sizes[name] for name in self.nnz)


def dense_plan() -> SparsityPlan:
    return SparsityPlan(nnz={}, sizes={}, description="dense")


def matmul_weights(config: ModelConfig) -> list[Param]:
    """Return the weights that enter a matmul (the position table is only looked up)."""
    return [p for p in parameters(config) if len(p.shape) == 2 and p.name != "wpe.weight"]


def make_plan(config: ModelConfig, sparsity) -> SparsityPlan:
    """Turn any accepted form of ``sparsity`` into a SparsityPlan for ``config``."""
    if isinstance(sparsity, SparsityPlan):
        return sparsity
    if sparsity is None:
        return dense_plan()
    if isinstance(sparsity, ERK):
        return erk_plan(config, sparsity)
    if isinstance(sparsity, str):
        return make_plan(config, parse_sparsity(sparsity))
    if isinstance(sparsity, Mapping):
        return glob_plan(config, sparsity)
    if hasattr(sparsity, "named_parameters"):
        return measured_plan(config, sparsity)
    return uniform_plan(config, check_sparsity(sparsity))


def parse_sparsity(text: str):
    """Parse the CLI forms "0.75", "erk:0.75" and "GLOB=S,GLOB=S"."""
    text = text.strip()
    try:
        if text.lower().startswith("erk:"):
            return ERK(float(text[4:]))
        if "=" in text:
            pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
            return {glob.strip(): float(value) for glob, value in pairs}
        return float(text)
    except ValueError:
        raise SpdfSimError(
            f"sparsity {text!r} is invalid: give a number in [0, 1) such as 0.75, "
            f"'erk:0.75', or 'GLOB=S,GLOB=S' such as '*.mlp.*=0.9'"
        ) from None


def _exact_counts(weights: list[Param], densities: list[float]) -> dict[str, int]:
    return {p.name: int(round(d * p.size)) for p, d in zip(weights, densities)}


def uniform_plan(config: ModelConfig, sparsity: float) -> SparsityPlan:
    """Give every sparse-eligible weight the same sparsity, as SPDF does."""
    weights = [p for p in parameters(config) if p.sparse_ok]
    density = 1.0 - sparsity
    return SparsityPlan(nnz=_exact_counts(weights, [density] * len(weights)),
                        sizes={p.name: p.size for p in weights},
                        description=f"uniform {sparsity:.4g} over {len(weights)} weights")


def glob_plan(config: ModelConfig, mapping: Mapping[str, float]) -> SparsityPlan:
    """Give each weight matching a glob that glob's sparsity; a later glob wins over an earlier one."""
    if not mapping:
        raise SpdfSimError("sparsity mapping is empty: give at least one GLOB=S pair")
    weights = matmul_weights(config)
    chosen: dict[str, float] = {}
    for pattern, value in mapping.items():
        value = check_sparsity(value, f"sparsity for {pattern!r}")
        matched = [p.name for p in weights if fnmatch.fnmatchcase(p.name, pattern)]
        if not matched:
            examples = ", ".join(p.name for p in weights[:4])
            raise SpdfSimError(f"sparsity glob {pattern!r} matches no weight of {config.name}: "
                               f"weight names look like {examples}")
        chosen.update(dict.fromkeys(matched, value))
    selected = [p for p in weights if p.name in chosen]
    return SparsityPlan(nnz=_exact_counts(selected, [1.0 - chosen[p.name] for p in selected]),
                        sizes={p.name: p.size for p in selected},
                        description="per-glob " + ", ".join(f"{k}={v}" for k, v in mapping.items()))


def erk_densities(shapes: list[tuple[int, int]], target_nnz: float) -> list[float]:
    """Solve ERK densities for [out, in] shapes so their non-zeros sum to ``target_nnz``.

    Raises SpdfSimError when the target exceeds the weights' total size.
    """
    sizes = np.array([out_f * in_f for out_f, in_f in shapes], dtype=float)
    raw = np.array([(out_f + in_f) / (out_f * in_f) for out_f, in_f in shapes])
    if target_nnz > sizes.sum() * (1 + 1e-12):
        raise SpdfSimError(f"ERK target of {target_nnz:.0f} non-zeros exceeds the "
                           f"{sizes.sum():.0f} weights available")
    dense = np.zeros(len(shapes), dtype=bool)
    while True:
        budget = target_nnz - sizes[dense].sum()
        scale = budget / (raw[~dense] * sizes[~dense]).sum() if (~dense).any() else 0.0
        densities = np.where(dense, 1.0, raw * scale)
        over = (densities > 1.0) & ~dense
        if not over.any():
            return densities.tolist()
        dense |= over


def erk_plan(config: ModelConfig, erk: ERK) -> SparsityPlan:
    sparsity = check_sparsity(erk.sparsity, "ERK sparsity")
    if erk.budget not in ("sparse", "all"):
        raise SpdfSimError(f"ERK budget {erk.budget!r} is invalid: give 'sparse' or 'all'")
    weights = [p for p in parameters(config) if p.sparse_ok]
    if not weights:
        raise SpdfSimError(f"{config.name} has no weights that may be sparse")

    fixed = [p for p in matmul_weights(config) if not p.sparse_ok] if erk.budget == "all" else []
    counted = sum(p.size for p in weights) + sum(p.size for p in fixed)
    target = (1.0 - sparsity) * counted - sum(p.size for p in fixed)
    if target < len(weights):
        fixed_size = sum(p.size for p in fixed)
        raise SpdfSimError(
            f"ERK sparsity {sparsity} over all weight matrices is unsatisfiable: the dense "
            f"embedding and LM head alone hold {fixed_size} weights, more than the "
            f"{(1 - sparsity) * counted:.0f} non-zeros allowed; give a lower sparsity or "
            f"budget='sparse'"
        )

    densities = erk_densities([p.shape for p in weights], target)
    nnz = _largest_remainder([d * p.size for d, p in zip(densities, weights)],
                             round(target), [p.size for p in weights])
    return SparsityPlan(nnz={p.name: count for p, count in zip(weights, nnz)},
                        sizes={p.name: p.size for p in weights},
                        description=f"ERK {sparsity:.4g} ({erk.budget} budget)")


def _largest_remainder(values: list[float], total: int, caps: list[int]) -> list[int]:
    """Round ``values`` to integers (each at most its cap) that sum exactly to ``total``."""
    floors = [min(math.floor(v), cap) for v, cap in zip(values, caps)]
    order = sorted(range(len(values)), key=lambda i: values[i] - floors[i], reverse=True)
    short = total - sum(floors)
    for i in order:
        if short <= 0:
            break
        if floors[i] < caps[i]:
            floors[i] += 1
            short -= 1
    return floors


def measured_plan(config: ModelConfig, module) -> SparsityPlan:
    """Read each matmul weight's non-zero count from a torch module's own tensors."""
    tensors = dict(module.named_parameters())
    tensors = {_canonical(name): tensor for name, tensor in tensors.items()}
    nnz, sizes, masks = {}, {}, {}
    for param in matmul_weights(config):
        tensor = tensors.get(param.name)
        if tensor is None:
            continue
        if tuple(tensor.shape) != param.shape:
            raise SpdfSimError(f"module weight {param.name} has shape {tuple(tensor.shape)}, "
                               f"but {config.name} expects {param.shape}")
        mask = (tensor.detach() != 0).cpu().numpy()
        nnz[param.name], sizes[param.name] = int(mask.sum()), param.size
        masks[param.name] = mask
    if not nnz:
        raise SpdfSimError(f"no weight of {config.name} was found in {type(module).__name__}: "
                           f"the module's parameter names do not match the model's")
    plan = SparsityPlan(nnz=nnz, sizes=sizes, description="measured from the module's zeros",
                        masks=masks)
    return plan


def _canonical(name: str) -> str:
    """Strip the prefixes that DDP and torch.compile add to parameter names."""
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name
