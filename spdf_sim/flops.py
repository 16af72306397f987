"""FLOP counting: one formula per op kind, and the counting conventions as named presets.

All formulas count 2 FLOPs per multiply-accumulate. A sparse weight's matmuls
are scaled by its density in all three passes (forward, activation gradient,
weight gradient), because a zero-skipping machine does no work for a zero
weight in any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np
import pandas as pd

from spdf_sim.errors import SpdfSimError
from spdf_sim.sparsity import SparsityPlan
from workloads.models import unknown_name_message

MATMUL_KINDS = ("matmul", "attention_score", "attention_value")
ATTENTION_KINDS = ("attention_score", "attention_value")


@dataclass(frozen=True)
class Convention:
    """How FLOPs are counted; each preset names its source.

    ``attention``: factor on the attention-score and softmax·V matmuls (1 full,
    0.5 causal, 0 not counted). ``embedding``: "free" (a lookup) or "matmul"
    (the one-hot matmul it replaces). ``per_parameter``: count 2 FLOPs per
    parameter per token forward and 4 backward, whatever the op (6·N·D).
    ``recompute``: the forward pass runs again in the backward pass.
    """

    name: str
    summary: str
    source: str
    attention: float = 1.0
    embedding: str = "free"
    per_parameter: bool = False
    recompute: bool = False


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "spdf", "every matmul at 2 FLOPs per MAC, attention full, embedding free, "
            "LM head dense, training = 3x forward",
            "derived from the SPDF paper's ratios (Thangarasa et al. 2023, arXiv 2303.10464); "
            "equals torch.utils.flop_counter.FlopCounterMode on Hugging Face GPT-2"),
        Convention(
            "kaplan", "6·N·D with N all non-zero parameters, embeddings included: 2 FLOPs per "
            "parameter per token forward, 4 backward, attention not counted",
            "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', section 2.1, which "
            "leaves embeddings out of N; counting them gives the common 6·N·D rule of thumb",
            attention=0.0, per_parameter=True),
        Convention(
            "causal", "as spdf, but attention counted at half (only the causal triangle)",
            "MaxText and other MFU calculators", attention=0.5),
        Convention(
            "chinchilla", "as spdf, plus the input embedding counted as a matmul "
            "(forward, and twice that backward)",
            "Hoffmann et al. 2022, 'Training Compute-Optimal LLMs', Appendix F",
            embedding="matmul"),
        Convention(
            "recompute", "as spdf, with full activation recomputation: training = 4x forward",
            "Korthikanti et al. 2022, 'Reducing Activation Recomputation in Large "
            "Transformer Models'", recompute=True),
    )
}
DEFAULT_CONVENTION = "spdf"


def get_convention(convention: str | Convention) -> Convention:
    if isinstance(convention, Convention):
        return convention
    try:
        return CONVENTIONS[convention]
    except KeyError:
        raise SpdfSimError(unknown_name_message("FLOP convention", convention,
                                                list(CONVENTIONS))) from None


def ops_frame(graph: nx.DiGraph) -> pd.DataFrame:
    """Return the graph's ops as a DataFrame (one row per op, in dependency order)."""
    return _ops_frame(graph).copy()


@lru_cache(maxsize=64)
def _ops_frame(graph: nx.DiGraph) -> pd.DataFrame:
    names = list(nx.topological_sort(graph))
    frame = pd.DataFrame.from_records([graph.nodes[name] for name in names], index=names)
    frame.index.name = "op"
    for column in ("tokens", "batch", "m", "k", "n", "elements", "params"):
        frame[column] = frame[column].astype(np.int64)
    return frame


def weight_density(ops: pd.DataFrame, plan: SparsityPlan) -> np.ndarray:
    """Return each op's weight density (1 for ops with no weight or a dense one)."""
    densities = plan.densities
    if not densities:
        return np.ones(len(ops))
    return ops["weight"].map(densities).fillna(1.0).to_numpy(dtype=float)


def matmul_flops(ops: pd.DataFrame) -> np.ndarray:
    """Return 2·batch·m·k·n for matmul-like ops and 0 for the rest."""
    macs = ops["batch"].to_numpy(float) * ops["m"] * ops["k"] * ops["n"]
    return np.where(ops["kind"].isin(MATMUL_KINDS), 2.0 * macs, 0.0)


def op_flops(ops: pd.DataFrame, plan: SparsityPlan, convention: str | Convention = "spdf"
             ) -> np.ndarray:
    """Return the FLOPs of every op of one step under a convention and a sparsity plan."""
    convention = get_convention(convention)
    density = weight_density(ops, plan)
    if convention.per_parameter:
        return _per_parameter_flops(ops, density)

    kind = ops["kind"]
    flops = matmul_flops(ops)
    flops = np.where(kind == "matmul", flops * density, flops)
    flops = np.where(kind.isin(ATTENTION_KINDS), flops * convention.attention, flops)
    if convention.embedding == "matmul":
        # Training stays 3x forward: the lookup's weight gradient counts twice its forward.
        is_token_table = (kind == "embedding") & (ops["weight"] == "wte.weight")
        macs = ops["m"].to_numpy(float) * ops["k"] * ops["n"]
        per_pass = np.where(ops["pass_"] == "fwd", 2.0, 4.0)
        flops = np.where(is_token_table, per_pass * macs, flops)
    if convention.recompute:
        flops = np.where(ops["pass_"] == "fwd", 2.0 * flops, flops)
    return flops


def _per_parameter_flops(ops: pd.DataFrame, density: np.ndarray) -> np.ndarray:
    """Count 2 FLOPs per parameter per token forward and 4 backward (6·N·D in all).

    A weight matmul's non-zero weights cost 2 in each of its three ops; its
    bias, like a norm's scales or the position table, costs 2 forward and 4 in
    the one backward op that produces its gradient.
    """
    tokens = ops["tokens"].to_numpy(float)
    is_weight_matmul = (ops["kind"] == "matmul").to_numpy()
    pass_ = ops["pass_"].to_numpy()

    # k·n of the forward op is the weight's size; the dgrad and wgrad ops hold
    # the same three numbers (tokens, in, out) in another order.
    weight_size = ops["m"].to_numpy(float) * ops["k"] * ops["n"] / tokens
    weights = np.where(is_weight_matmul, weight_size * density, 0.0)
    own = ops["params"].to_numpy(float)
    own_factor = np.where(pass_ == "fwd", 1.0, np.where(is_weight_matmul & (pass_ == "dgrad"), 0.0, 2.0))
    return 2.0 * tokens * (weights + own * own_factor)
