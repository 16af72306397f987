"""Generation (greedy, batched, beam) and BLEU against all references."""

from __future__ import annotations

import pytest
import sacrebleu
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.evaluate import bleu, generate
from spdf_sim.training.tokenizer import CharTokenizer

PROMPTS = ["abc", "a", "cabbage", "bead", "dd"]


@pytest.fixture
def chars():
    return CharTokenizer.train(["abcdeg "])


def test_greedy_batch_equals_one_by_one(tiny_lm, chars):
    model = tiny_lm(chars.vocab_size, seed=1)
    batched = generate(model, chars, PROMPTS, max_new_tokens=12, batch_size=5)
    alone = [generate(model, chars, [prompt], max_new_tokens=12)[0] for prompt in PROMPTS]
    assert batched == alone
    assert any(batched)


def test_greedy_equals_beam_one(tiny_lm, chars):
    for seed in range(3):
        model = tiny_lm(chars.vocab_size, seed=seed)
        greedy = generate(model, chars, PROMPTS, max_new_tokens=10)
        beam = generate(model, chars, PROMPTS, max_new_tokens=10, beam_size=1, batch_size=1)
        assert greedy == beam


def test_beam_runs_and_respects_length(tiny_lm, chars):
    model = tiny_lm(chars.vocab_size, seed=2)
    outputs = generate(model, chars, PROMPTS, max_new_tokens=6, beam_size=4)
    assert len(outputs) == len(PROMPTS)
    assert all(len(text) <= 6 for text in outputs)


def test_generation_stops_at_context(tiny_lm, chars):
    model = tiny_lm(chars.vocab_size, context=8, seed=0)
    for beam_size in (1, 3):
        outputs = generate(model, chars, ["abcde"], max_new_tokens=50, beam_size=beam_size)
        assert len(outputs[0]) <= 3


def test_generation_keeps_train_mode(tiny_lm, chars):
    model = tiny_lm(chars.vocab_size)
    model.train()
    generate(model, chars, ["ab"], max_new_tokens=2)
    assert model.training


def test_prompt_too_long(tiny_lm, chars):
    model = tiny_lm(chars.vocab_size, context=4)
    with pytest.raises(SpdfSimError, match="prompt 0 has 4 tokens"):
        generate(model, chars, ["abcd"], max_new_tokens=2)


HYPOTHESES = ["the cat sat on the mat", "a dog barked loudly at night", "it rains"]
REFERENCES = [
    ["the cat sat on a mat", "there is a cat on the mat", "a cat sat on the mat"],
    ["a dog barked at night"],
    ["it is raining", "rain falls"],
]


def test_bleu_identical_is_100():
    assert bleu(HYPOTHESES, [[h] for h in HYPOTHESES]) == pytest.approx(100.0)


def test_bleu_matches_sacrebleu_equal_streams():
    references = [refs[:1] for refs in REFERENCES]
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [[refs[0] for refs in references]]).score
    assert bleu(HYPOTHESES, references) == pytest.approx(expected)


def test_bleu_repeat_padding_leaves_score_unchanged():
    # Same references, with every list padded by hand to three by repeating a different item.
    by_last = [refs + [refs[-1]] * (3 - len(refs)) for refs in REFERENCES]
    streams = [[refs[i] for refs in by_last] for i in range(3)]
    expected = sacrebleu.corpus_bleu(HYPOTHESES, streams).score
    assert bleu(HYPOTHESES, REFERENCES) == pytest.approx(expected)
    assert 0.0 < expected < 100.0


def test_bleu_uses_all_references():
    single = bleu(HYPOTHESES, [refs[:1] for refs in REFERENCES])
    assert bleu(HYPOTHESES, REFERENCES) > single


def test_repeat_padding_equals_none_padding():
    # sacrebleu drops None references, its own way to give inputs fewer references.
    padded = [refs + [None] * (3 - len(refs)) for refs in REFERENCES]
    streams = [[refs[i] for refs in padded] for i in range(3)]
    assert bleu(HYPOTHESES, REFERENCES) == pytest.approx(
        sacrebleu.corpus_bleu(HYPOTHESES, streams).score)


def test_empty_string_padding_would_differ():
    # An empty reference is the closest length to a short hypothesis, so it lifts the brevity penalty.
    hypotheses = ["the cat sat on the mat", "it is raining"]
    references = [["the cat sat on the mat", "a cat sat on a mat"],
                  ["it is raining today in the city"]]
    with_empty = sacrebleu.corpus_bleu(hypotheses, [[refs[0] for refs in references],
                                                    [references[0][1], ""]]).score
    padded_by_repeat = bleu(hypotheses, references)
    assert padded_by_repeat > 0.0
    assert with_empty != pytest.approx(padded_by_repeat)


def test_bleu_length_mismatch():
    with pytest.raises(SpdfSimError, match="2 hypotheses but 1 reference lists"):
        bleu(["a", "b"], [["a"]])


def test_bleu_empty_reference_list():
    with pytest.raises(SpdfSimError, match="input 1 has reference list"):
        bleu(["a", "b"], [["a"], []])


def test_generate_with_package_gpt(chars):
    from spdf_sim.training.model import GPT
    from workloads import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(name="tiny", n_layer=1, d_model=16, n_head=2, d_ff=32, context=24,
                         vocab=chars.vocab_size)
    model = GPT(config)
    batched = generate(model, chars, PROMPTS, max_new_tokens=8, batch_size=5)
    alone = [generate(model, chars, [prompt], max_new_tokens=8)[0] for prompt in PROMPTS]
    beam = generate(model, chars, PROMPTS, max_new_tokens=8, beam_size=1)
    assert batched == alone
    assert batched == beam
