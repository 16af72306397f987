"""One training step of a model as a networkx DiGraph of ops, and its parameter table.

Every node is one op with these attributes:

- ``kind``: matmul (a weight matmul), attention_score (Q·Kᵀ), attention_value
  (softmax·V), softmax, layernorm, gelu, residual, embedding or loss;
- ``pass_``: fwd, dgrad (activation gradient) or wgrad (weight gradient);
- ``batch``, ``m``, ``k``, ``n``: a matmul-like op multiplies ``batch`` pairs of
  [m, k] · [k, n]; weight matmuls have batch 1, m = tokens, k = in, n = out;
- ``elements``: values read by an elementwise op (0 for matmuls);
- ``weight``: the parameter the op reads (its torch name) or None;
- ``sparse_ok``: whether that weight may be sparse under the default filter;
- ``layer``: the block index, or None outside the blocks;
- ``params``: parameters the op applies besides a matmul weight (biases, norm
  scales, position table, an untied token table), used by conventions that
  count 2 FLOPs per parameter per token;
- ``tokens``: the tokens in the step, on every op.

Edges are data dependencies. Weight names and shapes follow torch's
``nn.Linear`` convention (weight shape [out, in]) and match the torch GPT of
the training engine, so a trace's weights map onto these ops by name.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx

from workloads.errors import WorkloadError
from workloads.models import ModelConfig

SPDF_SPARSE_GLOBS: tuple[str, ...] = (
    "*.attn.q.weight", "*.attn.k.weight", "*.attn.v.weight", "*.attn.proj.weight",
    "*.mlp.fc.weight", "*.mlp.proj.weight",
)
"""Weights SPDF makes sparse: Q, K, V, attention output, both FFN matrices
(Cerebras Model Zoo GPT-3 sparsity configs). Embeddings, LM head, norms and
biases stay dense."""


@dataclass(frozen=True)
class Param:
    """One parameter tensor: its torch name, shape and whether it may be sparse."""

    name: str
    shape: tuple[int, ...]
    sparse_ok: bool

    @property
    def size(self) -> int:
        size = 1
        for dim in self.shape:
            size *= dim
        return size


def parameters(config: ModelConfig) -> list[Param]:
    """List every parameter tensor once (a tied LM head is the token embedding)."""
    return list(_parameters(config))


@lru_cache(maxsize=64)
def _parameters(config: ModelConfig) -> tuple[Param, ...]:
    if not config.is_gpt:
        params = []
        for spec in config.linears:
            params.append(Param(spec.name, (spec.out_features, spec.in_features), True))
            if spec.bias:
                params.append(Param(spec.name.rsplit("weight", 1)[0] + "bias", (spec.out_features,), False))
        return tuple(params)

    d, ff = config.d_model, config.d_ff
    params = [Param("wte.weight", (config.vocab, d), False),
              Param("wpe.weight", (config.context, d), False)]
    for i in range(config.n_layer):
        block = f"blocks.{i}"
        params += _norm(f"{block}.ln_1", d)
        for name, out_features, in_features in (("attn.q", d, d), ("attn.k", d, d), ("attn.v", d, d),
                                                 ("attn.proj", d, d), ("mlp.fc", ff, d),
                                                 ("mlp.proj", d, ff)):
            params += _linear(f"{block}.{name}", out_features, in_features, config.bias)
            if name == "attn.proj":
                params += _norm(f"{block}.ln_2", d)
    params += _norm("ln_f", d)
    if not config.tied_embeddings:
        params.append(Param("lm_head.weight", (config.vocab, d), False))
    return tuple(Param(p.name, p.shape, p.sparse_ok and _default_sparse(p.name)) for p in params)


def _default_sparse(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SPDF_SPARSE_GLOBS)


def _linear(prefix: str, out_features: int, in_features: int, bias: bool) -> list[Param]:
    params = [Param(f"{prefix}.weight", (out_features, in_features), True)]
    if bias:
        params.append(Param(f"{prefix}.bias", (out_features,), False))
    return params


def _norm(prefix: str, d: int) -> list[Param]:
    return [Param(f"{prefix}.weight", (d,), False), Param(f"{prefix}.bias", (d,), False)]


class _StepBuilder:
    """Adds ops to a graph, chaining each op to the ops it reads."""

    def __init__(self, tokens: int) -> None:
        self.graph = nx.DiGraph()
        self.tokens = tokens

    def op(self, name: str, kind: str, pass_: str, inputs: tuple[str, ...] = (), *,
           batch: int = 1, m: int = 0, k: int = 0, n: int = 0, elements: int = 0,
           weight: str | None = None, sparse_ok: bool = False, layer: int | None = None,
           params: int = 0) -> str:
        self.graph.add_node(name, kind=kind, pass_=pass_, tokens=self.tokens, batch=batch, m=m, k=k, n=n,
                            elements=elements, weight=weight, sparse_ok=sparse_ok,
                            layer=layer, params=params)
        for source in inputs:
            self.graph.add_edge(source, name)
        return name

    def weight_matmul(self, name: str, inputs: tuple[str, ...], tokens: int, in_features: int,
                      out_features: int, weight: str, sparse_ok: bool, layer: int | None,
                      bias: int) -> str:
        return self.op(f"{name}.fwd", "matmul", "fwd", inputs, m=tokens, k=in_features,
                       n=out_features, weight=weight, sparse_ok=sparse_ok, layer=layer, params=bias)

    def backward(self) -> None:
        """Mirror every forward op with its gradient ops, in reverse dependency order.

        A weight matmul Y = X·W gets dX = dY·Wᵀ (dgrad) and dW = Xᵀ·dY (wgrad);
        a batched activation matmul (attention) gets two dgrad matmuls, one per
        operand; an elementwise op gets one dgrad op over the same elements.
        """
        forward = [node for node in nx.topological_sort(self.graph)]
        grad_of: dict[str, str] = {}
        for node in reversed(forward):
            attrs = self.graph.nodes[node]
            base = node.removesuffix(".fwd")
            upstream = tuple(grad_of[s] for s in self.graph.successors(node) if s in grad_of)
            if attrs["kind"] == "matmul":
                grad_of[node] = self.op(
                    f"{base}.dgrad", "matmul", "dgrad", upstream, m=attrs["m"], k=attrs["n"],
                    n=attrs["k"], weight=attrs["weight"], sparse_ok=attrs["sparse_ok"],
                    layer=attrs["layer"])
                self.op(f"{base}.wgrad", "matmul", "wgrad", upstream, m=attrs["k"], k=attrs["m"],
                        n=attrs["n"], weight=attrs["weight"], sparse_ok=attrs["sparse_ok"],
                        layer=attrs["layer"], params=attrs["params"])
            elif attrs["kind"] in ("attention_score", "attention_value"):
                first = self.op(f"{base}.dgrad_a", attrs["kind"], "dgrad", upstream,
                                batch=attrs["batch"], m=attrs["m"], k=attrs["n"], n=attrs["k"],
                                layer=attrs["layer"])
                second = self.op(f"{base}.dgrad_b", attrs["kind"], "dgrad", upstream,
                                 batch=attrs["batch"], m=attrs["k"], k=attrs["m"], n=attrs["n"],
                                 layer=attrs["layer"])
                grad_of[node] = self.op(f"{base}.dgrad", "residual", "dgrad", (first, second),
                                        elements=0, layer=attrs["layer"])
            elif attrs["kind"] == "embedding":
                self.op(f"{base}.wgrad", "embedding", "wgrad", upstream, m=attrs["m"],
                        k=attrs["k"], n=attrs["n"], elements=attrs["elements"],
                        weight=attrs["weight"], params=attrs["params"])
            else:
                grad_of[node] = self.op(f"{base}.dgrad", attrs["kind"], "dgrad", upstream,
                                        elements=attrs["elements"], layer=attrs["layer"],
                                        params=attrs["params"])


def build_step_graph(config: ModelConfig, tokens: int) -> nx.DiGraph:
    """Build the op graph of one training step over ``tokens`` tokens.

    Tokens are grouped in sequences of ``config.context``; ``tokens`` must be a
    positive multiple of it for a GPT. The result is cached, so treat it as read-only.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise WorkloadError(f"tokens per step {tokens!r} is invalid: give a whole number >= 1")
    if config.is_gpt and tokens % config.context:
        raise WorkloadError(
            f"tokens per step {tokens} is not a multiple of the context {config.context}: "
            f"give whole sequences"
        )
    return _build_step_graph(config, tokens)


@lru_cache(maxsize=64)
def _build_step_graph(config: ModelConfig, tokens: int) -> nx.DiGraph:
    builder = _StepBuilder(tokens)
    if config.is_gpt:
        _add_gpt_forward(builder, config, tokens)
    else:
        _add_linear_chain_forward(builder, config, tokens)
    builder.backward()
    return builder.graph


def _add_linear_chain_forward(builder: _StepBuilder, config: ModelConfig, tokens: int) -> None:
    previous: tuple[str, ...] = ()
    for spec in config.linears:
        name = spec.name.removesuffix(".weight")
        op = builder.weight_matmul(name, previous, tokens, spec.in_features, spec.out_features,
                                   spec.name, True, None, spec.out_features if spec.bias else 0)
        previous = (op,)


def _add_gpt_forward(builder: _StepBuilder, config: ModelConfig, tokens: int) -> None:
    d, ff, seq = config.d_model, config.d_ff, config.context
    sequences, heads, head_dim = tokens // seq, config.n_head, config.head_dim
    bias = d if config.bias else 0
    ff_bias = ff if config.bias else 0
    sparse = {p.name: p.sparse_ok for p in parameters(config)}

    # An embedding lookup is recorded as the one-hot matmul it replaces
    # ([tokens, rows] · [rows, d]), for conventions that count it as one.
    untied = 0 if config.tied_embeddings else config.vocab * d
    wte = builder.op("wte.fwd", "embedding", "fwd", m=tokens, k=config.vocab, n=d,
                     elements=tokens * d, weight="wte.weight", params=untied)
    wpe = builder.op("wpe.fwd", "embedding", "fwd", m=tokens, k=seq, n=d, elements=tokens * d,
                     weight="wpe.weight", params=seq * d)
    hidden = builder.op("embed_add.fwd", "residual", "fwd", (wte, wpe), elements=tokens * d)

    for i in range(config.n_layer):
        block = f"blocks.{i}"
        ln_1 = builder.op(f"{block}.ln_1.fwd", "layernorm", "fwd", (hidden,), elements=tokens * d,
                          layer=i, params=2 * d)
        qkv = tuple(
            builder.weight_matmul(f"{block}.attn.{p}", (ln_1,), tokens, d, d,
                                  f"{block}.attn.{p}.weight", sparse[f"{block}.attn.{p}.weight"],
                                  i, bias)
            for p in ("q", "k", "v")
        )
        score = builder.op(f"{block}.attn.score.fwd", "attention_score", "fwd", qkv[:2],
                           batch=sequences * heads, m=seq, k=head_dim, n=seq, layer=i)
        softmax = builder.op(f"{block}.attn.softmax.fwd", "softmax", "fwd", (score,),
                             elements=sequences * heads * seq * seq, layer=i)
        context = builder.op(f"{block}.attn.value.fwd", "attention_value", "fwd",
                             (softmax, qkv[2]), batch=sequences * heads, m=seq, k=seq,
                             n=head_dim, layer=i)
        proj = builder.weight_matmul(f"{block}.attn.proj", (context,), tokens, d, d,
                                     f"{block}.attn.proj.weight", sparse[f"{block}.attn.proj.weight"],
                                     i, bias)
        hidden = builder.op(f"{block}.attn.residual.fwd", "residual", "fwd", (hidden, proj),
                            elements=tokens * d, layer=i)
        ln_2 = builder.op(f"{block}.ln_2.fwd", "layernorm", "fwd", (hidden,), elements=tokens * d,
                          layer=i, params=2 * d)
        fc = builder.weight_matmul(f"{block}.mlp.fc", (ln_2,), tokens, d, ff,
                                   f"{block}.mlp.fc.weight", sparse[f"{block}.mlp.fc.weight"],
                                   i, ff_bias)
        gelu = builder.op(f"{block}.mlp.gelu.fwd", "gelu", "fwd", (fc,), elements=tokens * ff, layer=i)
        down = builder.weight_matmul(f"{block}.mlp.proj", (gelu,), tokens, ff, d,
                                     f"{block}.mlp.proj.weight", sparse[f"{block}.mlp.proj.weight"],
                                     i, bias)
        hidden = builder.op(f"{block}.mlp.residual.fwd", "residual", "fwd", (hidden, down),
                            elements=tokens * d, layer=i)

    ln_f = builder.op("ln_f.fwd", "layernorm", "fwd", (hidden,), elements=tokens * d, params=2 * d)
    head_weight = "wte.weight" if config.tied_embeddings else "lm_head.weight"
    logits = builder.weight_matmul("lm_head", (ln_f,), tokens, d, config.vocab, head_weight,
                                   False, None, 0)
    builder.op("loss.fwd", "loss", "fwd", (logits,), elements=tokens * config.vocab)


def match_weights(config: ModelConfig, pattern: str) -> list[str]:
    """Return the names of weights that may be sparse and match a glob pattern."""
    return [p.name for p in parameters(config) if p.sparse_ok and fnmatch.fnmatchcase(p.name, pattern)]


def sparse_weights(config: ModelConfig) -> list[Param]:
    """Return the weights the default filter lets be sparse."""
    return [p for p in parameters(config) if p.sparse_ok]


def count_parameters(config: ModelConfig, density: dict[str, float] | None = None) -> tuple[int, int]:
    """Return (total, non-zero) parameter counts; weights absent from ``density`` are dense."""
    density = density or {}
    total = nonzero = 0
    for param in parameters(config):
        total += param.size
        nonzero += round(param.size * density.get(param.name, 1.0))
    return total, nonzero
