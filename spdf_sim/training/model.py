"""A GPT in torch built from the cost model's ModelConfig.

Parameter names and shapes are exactly those of ``workloads.parameters(config)``
(``wte.weight``, ``blocks.{i}.attn.q.weight``, ...), so a trace's weight names
map onto the op graph's weights one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from spdf_sim.errors import SpdfSimError
from workloads import ModelConfig

INIT_STD = 0.02
"""Standard deviation of the normal init of every weight matrix (GPT-2's choice)."""


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate Q, K and V projections.

    Q, K and V are three Linear layers rather than one fused matrix because each
    is its own sparse weight in SPDF and its own op in the cost model.
    """

    def __init__(self, config: ModelConfig, dropout: float) -> None:
        super().__init__()
        d = config.d_model
        self.n_head = config.n_head
        self.q = nn.Linear(d, d, bias=config.bias)
        self.k = nn.Linear(d, d, bias=config.bias)
        self.v = nn.Linear(d, d, bias=config.bias)
        self.proj = nn.Linear(d, d, bias=config.bias)
        self.dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d = x.shape
        head_dim = d // self.n_head

        # [batch, seq, d] -> [batch, n_head, seq, head_dim]
        q = self.q(x).view(batch, seq, self.n_head, head_dim).transpose(1, 2)
        k = self.k(x).view(batch, seq, self.n_head, head_dim).transpose(1, 2)
        v = self.v(x).view(batch, seq, self.n_head, head_dim).transpose(1, 2)

        attn_dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=attn_dropout, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(batch, seq, d)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """The feed-forward: d_model -> d_ff -> d_model with a GELU between."""

    def __init__(self, config: ModelConfig, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: ModelConfig, dropout: float) -> None:
        super().__init__()
        # LayerNorm always has a bias here because the op graph lists one for every norm.
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config, dropout)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only GPT: token and learned position embeddings, blocks, final norm, LM head."""

    def __init__(self, config: ModelConfig, dropout: float = 0.0) -> None:
        super().__init__()
        if not config.is_gpt:
            raise SpdfSimError(f"model {config.name!r} is a plain Linear stack, not a GPT: give a GPT config")
        self.config = config
        self.wte = nn.Embedding(config.vocab, config.d_model)
        self.wpe = nn.Embedding(config.context, config.d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(config, dropout) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model)
        # A tied head reuses wte.weight in forward() and so owns no parameter,
        # matching the op graph, which lists the token embedding once.
        self.lm_head = None
        if not config.tied_embeddings:
            self.lm_head = nn.Linear(config.d_model, config.vocab, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as GPT-2 does: N(0, 0.02) weights, zero biases, scaled residual outputs.

        Each block adds two residual branches (attn.proj and mlp.proj) to the
        stream, so their weights get std 0.02 / sqrt(2 * n_layer) to keep the
        residual stream's variance from growing with depth (Radford et al. 2019).
        """
        residual_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for name, param in self.named_parameters():
            is_norm = ".ln_" in name or name.startswith("ln_f.")
            if is_norm and name.endswith(".weight"):
                nn.init.ones_(param)
            elif param.dim() < 2:
                nn.init.zeros_(param)
            elif name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(param, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(param, mean=0.0, std=INIT_STD)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Return (logits, loss); ``loss`` is None without targets, and targets of -100 add no loss."""
        seq = idx.shape[1]
        if seq > self.config.context:
            raise SpdfSimError(f"sequence of {seq} tokens is longer than the context "
                               f"{self.config.context}: give shorter sequences or a longer context")
        positions = torch.arange(seq, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)

        head_weight = self.wte.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(x, head_weight)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                               ignore_index=-100)
        return logits, loss
