"""Fixtures for the data tests: the shared data folder and a tiny causal language model."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

DATA_VARIABLE = "SPDF_SIM_DATA"


def data_folder() -> Path:
    """Return the data folder: $SPDF_SIM_DATA, else ``shared/data`` beside the repository."""
    if os.environ.get(DATA_VARIABLE):
        return Path(os.environ[DATA_VARIABLE])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_folder()
    if not root.is_dir():
        pytest.skip(f"data folder {root} not found: set {DATA_VARIABLE} to the folder "
                    f"holding e2e/, webnlg/, dart/ and the corpora")
    return root


class TinyCausalLM(nn.Module):
    """A causal model whose logits at position t depend on tokens 0..t only.

    The hidden state at a position is the running mean of the embeddings so far
    plus that token's own embedding, projected to the vocabulary.
    """

    def __init__(self, vocab: int, context: int = 48, width: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = SimpleNamespace(context=context, vocab=vocab)
        self.embed = nn.Embedding(vocab, width)
        self.own = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor):
        if idx.shape[1] > self.config.context:
            raise ValueError("sequence longer than the context")
        embedded = self.embed(idx)
        counts = torch.arange(1, idx.shape[1] + 1, dtype=torch.float)[None, :, None]
        running_mean = embedded.cumsum(dim=1) / counts
        logits = self.head(torch.tanh(running_mean + self.own(idx))) * 3.0
        return logits, None


@pytest.fixture
def tiny_lm():
    """Return the TinyCausalLM class, for tests that build models of their own size."""
    return TinyCausalLM
