"""Model shapes: the GPT presets with their sources, and conversions from torch and Hugging Face."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

from workloads.errors import WorkloadError

CHINCHILLA_TOKENS_PER_PARAM = 20
"""Compute-optimal tokens per parameter (Hoffmann et al. 2022, "Training Compute-Optimal LLMs")."""


@dataclass(frozen=True)
class LinearSpec:
    """One weight matrix of a plain torch module, in the module's own order."""

    name: str
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a decoder-only GPT, or of a plain stack of Linear layers.

    A GPT has ``n_layer`` blocks of attention (``n_head`` heads) and a two-matrix
    feed-forward of width ``d_ff``, learned position embeddings and, by default,
    an LM head tied to the token embedding. When ``linears`` is set the model is
    a plain chain of those Linear layers and the GPT fields other than
    ``context`` are unused.
    """

    name: str
    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    context: int
    vocab: int
    tied_embeddings: bool = True
    bias: bool = True
    source: str = ""
    linears: tuple[LinearSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        for key in ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkloadError(
                    f"model {self.name!r}: {key}={value!r} is invalid: give a whole number >= 1"
                )
        if not self.linears and self.d_model % self.n_head:
            raise WorkloadError(
                f"model {self.name!r}: d_model={self.d_model} is not divisible by "
                f"n_head={self.n_head}: give a head count that divides the width"
            )

    @property
    def is_gpt(self) -> bool:
        return not self.linears

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def with_context(self, context: int) -> "ModelConfig":
        return replace(self, context=context)


def _gpt(name: str, n_layer: int, d_model: int, n_head: int, context: int, source: str,
         vocab: int = 50257) -> ModelConfig:
    return ModelConfig(name=name, n_layer=n_layer, d_model=d_model, n_head=n_head,
                       d_ff=4 * d_model, context=context, vocab=vocab, source=source)


_GPT2 = "Radford et al. 2019, GPT-2 model card and Hugging Face gpt2 configs"
_GPT3 = "Brown et al. 2020, 'Language Models are Few-Shot Learners', Table 2.1"
_ZOO = "Cerebras Model Zoo GPT-3 configs"

PRESETS: dict[str, ModelConfig] = {
    preset.name: preset
    for preset in (
        _gpt("gpt2-small", 12, 768, 12, 1024, _GPT2),
        _gpt("gpt2-medium", 24, 1024, 16, 1024, _GPT2),
        _gpt("gpt2-large", 36, 1280, 20, 1024, _GPT2),
        _gpt("gpt2-xl", 48, 1600, 25, 1024, _GPT2),
        _gpt("gpt3-125m", 12, 768, 12, 2048, f"{_GPT3}; {_ZOO}"),
        _gpt("gpt3-350m", 24, 1024, 16, 2048, _GPT3),
        _gpt("gpt3-760m", 24, 1536, 16, 2048, _GPT3),
        # Table 2.1 lists 24 heads of 128 for GPT-3 XL; the Model Zoo config used
        # for SPDF has 16. Head count does not change FLOPs or parameters.
        _gpt("gpt3-xl", 24, 2048, 16, 2048, f"{_ZOO} (16 heads); {_GPT3}"),
        _gpt("gpt3-2.7b", 32, 2560, 32, 2048, _GPT3),
        _gpt("gpt3-6.7b", 32, 4096, 32, 2048, _GPT3),
        # Table 2.1 prints d_model 5140, which 40 heads of 128 do not divide;
        # the Model Zoo's 13B config uses 5120.
        _gpt("gpt3-13b", 40, 5120, 40, 2048, f"{_ZOO} (d_model 5120); {_GPT3}"),
        _gpt("gpt3-175b", 96, 12288, 96, 2048, _GPT3),
    )
}


def get_preset(name: str) -> ModelConfig:
    """Look up a preset by name; an unknown name raises with the closest match."""
    try:
        return PRESETS[name]
    except KeyError:
        raise WorkloadError(unknown_name_message("model", name, list(PRESETS))) from None


def unknown_name_message(what: str, name: str, known: list[str]) -> str:
    lowered = {item.lower(): item for item in known}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.4)
    hint = f"; did you mean {lowered[close[0]]!r}?" if close else "."
    return f"unknown {what} {name!r}{hint} Known: {', '.join(known)}"


def from_hf_config(config_or_model) -> ModelConfig:
    """Build a ModelConfig from a Hugging Face ``GPT2Config`` or a model built from one."""
    config = getattr(config_or_model, "config", config_or_model)
    try:
        n_embd = config.n_embd
        n_inner = config.n_inner or 4 * n_embd
        return ModelConfig(
            name=getattr(config, "name_or_path", "") or "hf-gpt2",
            n_layer=config.n_layer, d_model=n_embd, n_head=config.n_head, d_ff=n_inner,
            context=config.n_positions, vocab=config.vocab_size,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
            source="Hugging Face GPT2Config",
        )
    except AttributeError as error:
        raise WorkloadError(
            f"{type(config).__name__} is not a GPT2Config: missing field {error.name!r}"
        ) from None


def from_torch_module(module, context: int = 1, name: str | None = None) -> ModelConfig:
    """Build a ModelConfig from a plain torch module's ``nn.Linear`` layers, in module order.

    Each Linear is one weight matmul over all tokens of a step; the layers form
    a chain. ``context`` is the sequence length a step's tokens are grouped in.
    """
    import torch.nn as nn  # torch stays optional for the analytic model

    linears = tuple(
        LinearSpec(f"{prefix}.weight" if prefix else "weight",
                   layer.in_features, layer.out_features, layer.bias is not None)
        for prefix, layer in module.named_modules()
        if isinstance(layer, nn.Linear)
    )
    if not linears:
        raise WorkloadError(
            f"{type(module).__name__} has no nn.Linear layers: nothing to cost"
        )
    widest = max(max(spec.in_features, spec.out_features) for spec in linears)
    return ModelConfig(name=name or type(module).__name__, n_layer=len(linears),
                       d_model=widest, n_head=1, d_ff=widest, context=context, vocab=1,
                       tied_embeddings=False, source="torch module", linears=linears)


def chinchilla_tokens(total_params: int) -> int:
    """Return the compute-optimal token budget: 20 tokens per parameter."""
    return int(CHINCHILLA_TOKENS_PER_PARAM * total_params)
