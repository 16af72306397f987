"""TokenStream and TaskBatches: shapes, shifts, loss masks and resumable order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.data import (
    IGNORE_INDEX, TaskBatches, TokenStream, encode_documents, prompt_ids, split_tokens,
)
from spdf_sim.training.tokenizer import CharTokenizer
from workloads.tasks import Example

EXAMPLES = [
    Example("name[A], food[Thai]", ("A serves Thai food.", "Thai food at A.")),
    Example("name[B]", ("B is a pub.",)),
    Example("name[C], area[riverside]", ("C is by the river.", "At the river: C.", "C.")),
]


@pytest.fixture
def chars():
    texts = [e.source for e in EXAMPLES] + [r for e in EXAMPLES for r in e.references]
    return CharTokenizer.train(texts)


def test_encode_documents_joins_with_eos(chars):
    tokens = encode_documents(["ab", "c"], chars)
    assert tokens.tolist() == chars.encode("ab") + [chars.eos_id] + chars.encode("c") + [chars.eos_id]


def test_split_tokens_tail():
    train, val = split_tokens(np.arange(100), 0.1)
    assert train.tolist() == list(range(90))
    assert val.tolist() == list(range(90, 100))


def test_token_stream_shift():
    stream = TokenStream(np.arange(1000), batch_size=4, context=16, seed=3)
    x, y = stream.next_batch()
    assert x.shape == (4, 16)
    assert x.dtype == torch.long
    assert torch.equal(y, x + 1)


def test_token_stream_resume_same_batches():
    tokens = np.random.default_rng(0).integers(0, 50, size=5000)
    stream = TokenStream(tokens, batch_size=8, context=32, seed=7)
    for _ in range(3):
        stream.next_batch()
    state = stream.state_dict()
    expected = [stream.next_batch() for _ in range(4)]

    resumed = TokenStream(tokens, batch_size=8, context=32, seed=999)
    resumed.load_state_dict(state)
    for x, y in expected:
        x2, y2 = resumed.next_batch()
        assert torch.equal(x, x2)
        assert torch.equal(y, y2)
    assert resumed.batches == 7


def test_token_stream_too_short():
    with pytest.raises(SpdfSimError, match="too short"):
        TokenStream(np.arange(10), batch_size=2, context=10)


def test_token_stream_other_corpus_rejected():
    state = TokenStream(np.arange(100), 2, 8).state_dict()
    with pytest.raises(SpdfSimError, match="same corpus"):
        TokenStream(np.arange(200), 2, 8).load_state_dict(state)


def test_task_batches_mask_source(chars):
    batches = TaskBatches(EXAMPLES[1:2], chars, batch_size=1, context=64, seed=0)
    x, y = batches.next_batch()
    prompt = prompt_ids(chars, "name[B]")
    target = chars.encode("B is a pub.") + [chars.eos_id]
    assert x[0].tolist() == prompt + target[:-1]
    assert y[0, :len(prompt) - 1].tolist() == [IGNORE_INDEX] * (len(prompt) - 1)
    assert y[0, len(prompt) - 1:].tolist() == target


def test_task_batches_pad_and_pairs(chars):
    batches = TaskBatches(EXAMPLES, chars, batch_size=6, context=64, seed=1)
    assert len(batches.pairs) == 6
    x, y = batches.next_batch()
    longest = max(len(ids) for ids, _ in batches.pairs) - 1
    assert x.shape == y.shape == (6, longest)
    targets = sorted(chars.decode([t for t in row if t != IGNORE_INDEX]) for row in y.tolist())
    expected = sorted(r + "<|endoftext|>" for e in EXAMPLES for r in e.references)
    assert targets == expected


def test_task_batches_pad_to_context(chars):
    batches = TaskBatches(EXAMPLES, chars, batch_size=3, context=64, seed=1, pad_to_context=True)
    x, y = batches.next_batch()
    assert x.shape == y.shape == (3, 64)
    assert (x[:, -1] == chars.pad_id).all()
    assert (y[:, -1] == IGNORE_INDEX).all()


def test_task_batches_epoch_wrap(chars):
    batches = TaskBatches(EXAMPLES, chars, batch_size=4, context=64, seed=2)
    batches.next_batch()
    batches.next_batch()
    assert batches.epoch == 1
    assert batches.position == 2


def test_task_batches_resume(chars):
    batches = TaskBatches(EXAMPLES, chars, batch_size=4, context=64, seed=5)
    for _ in range(3):
        batches.next_batch()
    state = batches.state_dict()
    expected = [batches.next_batch() for _ in range(5)]

    resumed = TaskBatches(EXAMPLES, chars, batch_size=4, context=64, seed=0)
    resumed.load_state_dict(state)
    for x, y in expected:
        x2, y2 = resumed.next_batch()
        assert torch.equal(x, x2)
        assert torch.equal(y, y2)


def test_task_batches_truncate_target(chars):
    batches = TaskBatches(EXAMPLES[:1], chars, batch_size=2, context=25, seed=0)
    x, y = batches.next_batch()
    assert x.shape[1] == 25
    assert (y != IGNORE_INDEX).any()


def test_task_batches_prompt_too_long(chars):
    with pytest.raises(SpdfSimError, match="example 0 has a 20-token prompt"):
        TaskBatches(EXAMPLES[:1], chars, batch_size=1, context=20)


def test_task_batches_wrong_state_kind(chars):
    batches = TaskBatches(EXAMPLES, chars, batch_size=2, context=64)
    with pytest.raises(SpdfSimError, match="expected 'task-batches'"):
        batches.load_state_dict(TokenStream(np.arange(100), 2, 8).state_dict())
