"""Tokenisers: round trips, special ids, save and load, GPT-2 style files."""

from __future__ import annotations

import json

import pytest

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.tokenizer import (
    EOS_TOKEN, BpeTokenizer, CharTokenizer, load_tokenizer,
)

TEXTS = ["The Eagle is a pub near the river.", "Café Rouge serves French food, £20-25.",
         "name[The Eagle], eatType[pub]"] * 20
ODD_TEXT = "  leading spaces\n\ttabs, ünïcödé £ and emoji 🙂 never seen  "


@pytest.fixture(scope="module")
def bpe():
    return BpeTokenizer.train(TEXTS, vocab_size=320)


def test_bpe_round_trip_unseen_text(bpe):
    for text in TEXTS[:3] + [ODD_TEXT, ""]:
        assert bpe.decode(bpe.encode(text)) == text


def test_bpe_special_ids(bpe):
    assert bpe.eos_id != bpe.sep_id
    assert bpe.pad_id == bpe.eos_id
    assert bpe.decode([bpe.eos_id]) == EOS_TOKEN
    assert bpe.vocab_size <= 320
    assert max(bpe.encode(ODD_TEXT)) < bpe.vocab_size


def test_bpe_special_strings_in_text(bpe):
    ids = bpe.encode("pub<|sep|>The")
    assert ids.count(bpe.sep_id) == 1


def test_bpe_merges_learned(bpe):
    assert len(bpe.encode(TEXTS[0])) < len(TEXTS[0].encode("utf-8"))


def test_bpe_save_load(bpe, tmp_path):
    path = bpe.save(tmp_path / "run")
    assert path.name == "tokenizer.json"
    loaded = load_tokenizer(tmp_path / "run")
    assert loaded.encode(ODD_TEXT) == bpe.encode(ODD_TEXT)
    assert (loaded.eos_id, loaded.sep_id, loaded.vocab_size) == (bpe.eos_id, bpe.sep_id,
                                                                 bpe.vocab_size)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["tokenizer.json"]


def test_bpe_vocab_too_small():
    with pytest.raises(SpdfSimError, match="vocab_size 100 is too small"):
        BpeTokenizer.train(TEXTS, vocab_size=100)


def test_gpt2_files(bpe, tmp_path):
    # vocab.json + merges.txt in GPT-2's format, written from a trained BPE model.
    vocab_file, merges_file = bpe.tokenizer.model.save(str(tmp_path))
    vocab = json.loads(open(vocab_file, encoding="utf-8").read())
    gpt2_style = BpeTokenizer.from_gpt2_files(vocab_file, merges_file)
    assert gpt2_style.encode(TEXTS[1]) == bpe.encode(TEXTS[1])
    assert gpt2_style.decode(gpt2_style.encode(ODD_TEXT)) == ODD_TEXT
    assert gpt2_style.eos_id == vocab[EOS_TOKEN]


def test_gpt2_files_missing(tmp_path):
    with pytest.raises(SpdfSimError, match="vocab.json not found"):
        BpeTokenizer.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")


def test_char_round_trip_and_unknown():
    chars = CharTokenizer.train(["hello world"])
    assert chars.vocab_size == len(set("hello world")) + 3
    assert chars.decode(chars.encode("hello")) == "hello"
    assert chars.encode("hz") == [chars.index["h"], chars.unk_id]
    assert chars.decode([chars.index["o"], chars.eos_id]) == "o" + EOS_TOKEN
    assert chars.decode([chars.index["o"], chars.eos_id], skip_special_tokens=True) == "o"


def test_char_save_load(tmp_path):
    chars = CharTokenizer.train(["to be, or not to be"])
    chars.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.encode("not be!") == chars.encode("not be!")
    assert loaded.sep_id == chars.sep_id


def test_load_missing_names_folder(tmp_path):
    with pytest.raises(SpdfSimError, match="no tokeniser in"):
        load_tokenizer(tmp_path)
