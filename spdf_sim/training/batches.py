"""Batch sources: what the engine draws (input, target) token batches from.

Any object with ``next_batch() -> (x, y)`` (LongTensors of shape [batch, seq];
y is -100 where a position adds no loss) and ``state_dict()`` /
``load_state_dict()`` for its position can feed the engine. This module builds
the sources a run config names: synthetic, byte-text and npy streams here, the
corpus format in text_sources.py. The sources themselves live in data.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.data import TokenStream


class BatchSource(Protocol):
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def synthetic_tokens(vocab: int, length: int, seed: int = 0) -> np.ndarray:
    """Return a learnable token sequence: a sparse random Markov chain over ``vocab`` tokens.

    Each token has 4 likely successors, so a model can cut its loss well below
    log(vocab) in a few hundred steps, which makes training tests meaningful
    without any data files.
    """
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, vocab, size=(vocab, 4))
    choices = rng.integers(0, 4, size=length)
    tokens = np.empty(length, dtype=np.int64)
    tokens[0] = 0
    for i in range(1, length):
        tokens[i] = successors[tokens[i - 1], choices[i]]
    return tokens


def load_tokens(path: str, data_format: str) -> np.ndarray:
    """Read a token stream: a UTF-8 text file as bytes (``text``) or a 1D ``.npy`` array (``npy``)."""
    try:
        if data_format == "text":
            return np.frombuffer(Path(path).read_bytes(), dtype=np.uint8).astype(np.int64)
        tokens = np.load(path)
    except (OSError, ValueError, EOFError) as error:
        raise SpdfSimError(f"data file {path} could not be read as {data_format}: "
                           f"{error or 'the file is empty'}") from None
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise SpdfSimError(f"data file {path} contains an array of shape {tokens.shape} and dtype "
                           f"{tokens.dtype}: give a 1D array of integer token ids")
    if tokens.size == 0:
        raise SpdfSimError(f"data file {path} contains no tokens: give a non-empty 1D array")
    if tokens.min() < 0:
        raise SpdfSimError(f"data file {path} contains token id {int(tokens.min())}: token ids "
                           f"must be >= 0")
    return tokens.astype(np.int64)


def sources_from_config(run, vocab: int, context: int, rank: int = 0):
    """Build the train and validation sources of both phases from a RunConfig's data section.

    Each rank draws its own windows (seed + rank); the last ``val_fraction``
    of each stream is held out for validation.
    """
    from spdf_sim.training.engine import Sources  # the engine imports this module

    data = run.data
    if data.format == "corpus":
        from spdf_sim.training.text_sources import corpus_sources

        return corpus_sources(run, vocab, context, rank)
    streams = {}
    for offset, phase in enumerate(("pretrain", "finetune")):
        if data.format == "synthetic":
            streams[phase] = synthetic_tokens(vocab, 200_000, seed=run.seed + offset)
        else:
            path = data.pretrain
            if phase == "finetune" and data.finetune:
                path = data.finetune
            streams[phase] = load_tokens(path, data.format)
        if streams[phase].max() >= vocab:
            raise SpdfSimError(f"{phase} data contains token id {int(streams[phase].max())}, but the "
                               f"model's vocab is {vocab}: raise model.vocab or use other data")

    train, val = {}, {}
    for offset, (phase, tokens) in enumerate(streams.items()):
        section = getattr(run, phase)
        cut = int(len(tokens) * (1.0 - data.val_fraction))
        seed = run.seed + 1000 * offset + rank
        train[phase] = TokenStream(tokens[:cut], section.batch_size, context, seed=seed)
        val[phase] = TokenStream(tokens[cut:], section.batch_size, context, seed=seed + 500)
    return Sources(pretrain=train["pretrain"], finetune=train["finetune"], val=val)
