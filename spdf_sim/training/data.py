"""Batch sources built from text: pre-training token windows and fine-tuning task pairs.

Both follow the engine's batch-source interface: ``next_batch()`` returns
``(x, y)`` LongTensors of shape [batch, seq] with y = -100 where a position adds
no loss, and ``state_dict()`` / ``load_state_dict()`` restore the position so a
resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from spdf_sim.errors import SpdfSimError
from workloads.tasks import Example

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Target value that torch's cross_entropy skips (its default ``ignore_index``)."""


def encode_documents(documents: Sequence[str], tokenizer, batch_size: int = 256) -> np.ndarray:
    """Tokenise ``documents`` into one 1D int32 array, each document followed by EOS."""
    pieces = []
    for start in range(0, len(documents), batch_size):
        for ids in tokenizer.encode_batch(documents[start:start + batch_size]):
            pieces.append(np.asarray(ids, dtype=np.int32))
            pieces.append(np.asarray([tokenizer.eos_id], dtype=np.int32))
    if not pieces:
        raise SpdfSimError("no documents to encode: give at least one non-empty document")
    return np.concatenate(pieces)


def split_tokens(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a token array into (train, validation), the validation part being the last ``val_fraction``.

    A contiguous tail keeps validation text out of every training window, apart
    from the one window that may straddle the cut.
    """
    if not 0.0 < val_fraction < 1.0:
        raise SpdfSimError(f"val_fraction {val_fraction} is out of range (0, 1): give the "
                           f"fraction of tokens held out for validation")
    cut = int(round(len(tokens) * (1.0 - val_fraction)))
    return tokens[:cut], tokens[cut:]


class TokenStream:
    """Random windows of ``context + 1`` tokens from a 1D token array, drawn by a seeded numpy Generator.

    x is a window's first ``context`` tokens and y the same window shifted by one.
    The position is the generator's state, so ``state_dict`` is small and a
    restored stream continues with the batches an uninterrupted one would draw.
    """

    def __init__(self, tokens, batch_size: int, context: int, seed: int = 0) -> None:
        tokens = np.asarray(tokens)
        if tokens.ndim != 1 or len(tokens) < context + 1:
            raise SpdfSimError(f"token array of shape {tokens.shape} is too short for windows "
                               f"of {context + 1} tokens: give a 1D array of at least "
                               f"{context + 1} tokens or a shorter context")
        _check_positive(batch_size=batch_size, context=context)
        self.tokens = tokens
        self.batch_size = batch_size
        self.context = context
        self.seed = seed
        self.generator = np.random.default_rng(seed)
        self.batches = 0
        # A strided view of every window start, so drawing a batch copies only its rows.
        self.windows = sliding_window_view(tokens, context + 1)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.generator.integers(0, len(self.windows), size=self.batch_size)
        batch = torch.from_numpy(self.windows[starts].astype(np.int64))
        self.batches += 1
        return batch[:, :-1], batch[:, 1:]

    def state_dict(self) -> dict:
        return {"kind": "token-stream", "seed": self.seed, "batches": self.batches,
                "tokens": len(self.tokens), "generator": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        _check_kind(state, "token-stream")
        if state["tokens"] != len(self.tokens):
            raise SpdfSimError(f"saved token stream had {state['tokens']} tokens, this one has "
                               f"{len(self.tokens)}: resume with the same corpus and tokeniser")
        self.generator.bit_generator.state = state["generator"]
        self.batches = state["batches"]


def example_texts(examples: Sequence[Example]) -> list[str]:
    """Return every input and reference text of ``examples``, for training a tokeniser."""
    return [text for example in examples for text in (example.source, *example.references)]


def prompt_ids(tokenizer, source: str) -> list[int]:
    """Return the token ids a fine-tuned model is prompted with: ``source + SEP``."""
    return tokenizer.encode(source) + [tokenizer.sep_id]


class TaskBatches:
    """Fine-tuning batches of ``source + SEP + reference + EOS``, one pair per reference.

    y is -100 on every position that predicts the prompt (the source and SEP)
    and on padding, so the loss covers the reference and its EOS only. Pairs
    are shuffled each epoch by a seeded numpy Generator. Every batch contains
    ``batch_size`` pairs: one that reaches the end of an epoch is filled from
    the next epoch's order. A batch is padded with EOS to its longest pair, so x
    and y have shape [batch_size, longest pair - 1]; ``pad_to_context`` pads to
    [batch_size, context] instead, for callers that count tokens as
    batch_size * context.
    """

    def __init__(self, examples: Sequence[Example], tokenizer, batch_size: int, context: int,
                 seed: int = 0, pad_to_context: bool = False) -> None:
        _check_positive(batch_size=batch_size, context=context)
        self.batch_size = batch_size
        self.context = context
        self.pad_to_context = pad_to_context
        self.pad_id = tokenizer.pad_id
        self.seed = seed
        self.pairs = _encode_pairs(examples, tokenizer, context)
        self.generator = np.random.default_rng(seed)
        self.epoch = 0
        self.position = 0
        self._start_epoch()

    def _start_epoch(self) -> None:
        # Saving the generator state before the shuffle lets a restore rebuild this epoch's order.
        self.epoch_generator_state = self.generator.bit_generator.state
        self.order = self.generator.permutation(len(self.pairs))
        self.position = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = []
        while len(chosen) < self.batch_size:
            if self.position == len(self.order):
                self.epoch += 1
                self._start_epoch()
            take = min(self.batch_size - len(chosen), len(self.order) - self.position)
            chosen.extend(self.order[self.position:self.position + take])
            self.position += take
        return self._collate([self.pairs[i] for i in chosen])

    def _collate(self, pairs: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
        length = self.context if self.pad_to_context else max(len(ids) for ids, _ in pairs) - 1
        x = torch.full((len(pairs), length), self.pad_id, dtype=torch.long)
        y = torch.full((len(pairs), length), IGNORE_INDEX, dtype=torch.long)
        for row, (ids, prompt_length) in enumerate(pairs):
            sequence = torch.tensor(ids, dtype=torch.long)
            x[row, :len(ids) - 1] = sequence[:-1]
            y[row, :len(ids) - 1] = sequence[1:]
            # Position i predicts token i + 1, so the first prompt_length - 1 targets are prompt.
            y[row, :prompt_length - 1] = IGNORE_INDEX
        return x, y

    @property
    def tokens_per_epoch(self) -> int:
        """Input tokens in one epoch of pairs, padding excluded."""
        return sum(len(ids) - 1 for ids, _ in self.pairs)

    def state_dict(self) -> dict:
        return {"kind": "task-batches", "seed": self.seed, "pairs": len(self.pairs),
                "epoch": self.epoch, "position": self.position,
                "generator": self.epoch_generator_state}

    def load_state_dict(self, state: dict) -> None:
        _check_kind(state, "task-batches")
        if state["pairs"] != len(self.pairs):
            raise SpdfSimError(f"saved task batches had {state['pairs']} pairs, these have "
                               f"{len(self.pairs)}: resume with the same task split and tokeniser")
        self.generator.bit_generator.state = state["generator"]
        self._start_epoch()
        self.epoch = state["epoch"]
        self.position = state["position"]


def _encode_pairs(examples: Sequence[Example], tokenizer, context: int) -> list[tuple[list[int], int]]:
    """Return (token ids, prompt length) for every (example, reference) pair.

    A pair longer than ``context + 1`` tokens loses the end of its reference, so
    its target has no EOS; a prompt that leaves no room for a target raises.
    """
    pairs = []
    truncated = 0
    for number, example in enumerate(examples):
        prompt = prompt_ids(tokenizer, example.source)
        if len(prompt) >= context:
            raise SpdfSimError(f"example {number} has a {len(prompt)}-token prompt, which leaves "
                               f"no room for a target in context {context}: raise the context")
        for target in tokenizer.encode_batch(list(example.references)):
            ids = prompt + target + [tokenizer.eos_id]
            if len(ids) > context + 1:
                ids = ids[:context + 1]
                truncated += 1
            pairs.append((ids, len(prompt)))
    if not pairs:
        raise SpdfSimError("no fine-tuning pairs: give at least one example with a reference")
    if truncated:
        logger.warning("cut %d of %d fine-tuning pairs to context %d tokens: their targets "
                       "lose their ends", truncated, len(pairs), context)
    return pairs


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpdfSimError(f"{name} {value!r} is invalid: give a whole number >= 1")


def _check_kind(state: dict, kind: str) -> None:
    if state.get("kind") != kind:
        raise SpdfSimError(f"saved batch-source state is of kind {state.get('kind')!r}, "
                           f"expected {kind!r}: resume with the same kind of batch source")


MIN_TARGET_TOKENS = 16
"""Room a prompt must leave in the context for its target; longer prompts are left out."""
# NOTE: leaving out the longest inputs (about 10% of WebNLG and DART at context
# 128) makes BLEU on what is left an easier test than on the full split.


def fitting(examples, tokenizer, context: int, description: str) -> list:
    """Return the examples whose prompt leaves MIN_TARGET_TOKENS of the context free, logging the rest."""
    fit = [e for e in examples
           if len(prompt_ids(tokenizer, e.source)) <= context - MIN_TARGET_TOKENS]
    if len(fit) < len(examples):
        logger.warning("%s: left out %d of %d examples whose prompt leaves fewer than %d of the "
                       "%d context tokens for the target", description, len(examples) - len(fit),
                       len(examples), MIN_TARGET_TOKENS, context)
    if not fit:
        raise SpdfSimError(f"{description}: no example fits the context of {context} tokens: "
                           f"raise the context, or use a tokeniser with more tokens")
    return fit
