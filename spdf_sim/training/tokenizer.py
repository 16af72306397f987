"""Tokenisers for training runs: byte-level BPE, GPT-2's files, and characters.

Every tokeniser has ``encode``, ``decode``, ``vocab_size``, ``eos_id``,
``sep_id``, ``pad_id``, ``save(run_dir)`` and ``load_tokenizer(run_dir)``.

Special-token convention, the same for all three kinds:

- ``<|endoftext|>`` (EOS) ends every document and every fine-tuning target;
  generation stops on it.
- ``<|sep|>`` (SEP) sits between a fine-tuning source and its target, so the
  prompt for generation is ``source + SEP``.
- Padding uses the EOS id. Padded positions are after the sequence's end and
  get target -100, so under causal attention they change no loss and no
  generated token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.implementations import ByteLevelBPETokenizer

from spdf_sim.errors import SpdfSimError

EOS_TOKEN = "<|endoftext|>"
SEP_TOKEN = "<|sep|>"
UNK_TOKEN = "<|unk|>"
SPECIAL_TOKENS = (EOS_TOKEN, SEP_TOKEN)

BPE_FILE = "tokenizer.json"
CHAR_FILE = "char_tokenizer.json"


class BpeTokenizer:
    """A byte-level BPE tokeniser (``tokenizers`` library): any text round-trips exactly.

    The literal strings ``<|endoftext|>`` and ``<|sep|>`` inside a text encode as
    the special ids.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        # Adding a special token that is already in the vocabulary keeps its id.
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.token_to_id(EOS_TOKEN)
        self.sep_id = tokenizer.token_to_id(SEP_TOKEN)
        self.pad_id = self.eos_id

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BpeTokenizer:
        """Train a byte-level BPE of ``vocab_size`` tokens (the 256 bytes and the specials included)."""
        if vocab_size < 256 + len(SPECIAL_TOKENS):
            raise SpdfSimError(f"BPE vocab_size {vocab_size} is too small: give at least "
                               f"{256 + len(SPECIAL_TOKENS)} (256 bytes plus the special tokens)")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            # Seeding every byte keeps text unseen in training encodable.
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def from_gpt2_files(cls, vocab_file: str | Path, merges_file: str | Path) -> BpeTokenizer:
        """Load GPT-2's ``vocab.json`` and ``merges.txt``.

        GPT-2 already has ``<|endoftext|>`` (id 50256). It has no SEP, so SEP is
        appended as id 50257 and ``vocab_size`` is 50258: a model fine-tuned
        with this tokeniser needs an embedding row for it.
        """
        for path in (vocab_file, merges_file):
            if not Path(path).is_file():
                raise SpdfSimError(f"GPT-2 tokeniser file {path} not found: give the "
                                   f"vocab.json and merges.txt of a GPT-2 checkpoint")
        wrapper = ByteLevelBPETokenizer.from_file(str(vocab_file), str(merges_file))
        # Serialise and reload to get the plain Tokenizer inside the wrapper.
        return cls(Tokenizer.from_str(wrapper.to_str()))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts at once, using the library's worker threads."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def save(self, run_dir: str | Path) -> Path:
        """Write ``tokenizer.json`` into ``run_dir`` and return its path.

        The file is written beside and then renamed, so a process killed while
        saving never leaves half a file for a resumed run to load.
        """
        path = Path(run_dir) / BPE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{BPE_FILE}.partial")
        self.tokenizer.save(str(partial))
        os.replace(partial, path)
        return path


class CharTokenizer:
    """One token per character, for character-level runs such as Tiny Shakespeare.

    Ids 0..n-1 are the training text's characters in sorted order, followed by
    EOS, SEP and UNK. A character not seen in training encodes as UNK. Special
    tokens are ids only: the text "<|endoftext|>" encodes as its 13 characters.
    """

    def __init__(self, characters: Sequence[str]) -> None:
        self.characters = list(characters)
        self.index = {char: i for i, char in enumerate(self.characters)}
        if len(self.index) != len(self.characters) or any(len(c) != 1 for c in self.characters):
            raise SpdfSimError("CharTokenizer characters must be distinct single characters")
        self.eos_id = len(self.characters)
        self.sep_id = self.eos_id + 1
        self.unk_id = self.eos_id + 2
        self.pad_id = self.eos_id
        self.specials = {self.eos_id: EOS_TOKEN, self.sep_id: SEP_TOKEN, self.unk_id: UNK_TOKEN}

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        characters: set[str] = set()
        for text in texts:
            characters.update(text)
        return cls(sorted(characters))

    @property
    def vocab_size(self) -> int:
        return len(self.characters) + len(self.specials)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(char, self.unk_id) for char in text]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        pieces = []
        for i in ids:
            if i in self.specials:
                if not skip_special_tokens:
                    pieces.append(self.specials[i])
            else:
                pieces.append(self.characters[i])
        return "".join(pieces)

    def save(self, run_dir: str | Path) -> Path:
        """Write ``char_tokenizer.json`` into ``run_dir`` and return its path."""
        path = Path(run_dir) / CHAR_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"kind": "char", "characters": self.characters}), encoding="utf-8")
        return path


def load_tokenizer(run_dir: str | Path) -> BpeTokenizer | CharTokenizer:
    """Load the tokeniser that ``save`` wrote into ``run_dir``."""
    run_dir = Path(run_dir)
    if (run_dir / BPE_FILE).is_file():
        return BpeTokenizer(Tokenizer.from_file(str(run_dir / BPE_FILE)))
    if (run_dir / CHAR_FILE).is_file():
        return _load_char(run_dir / CHAR_FILE)
    raise SpdfSimError(f"no tokeniser in {run_dir}: expected {BPE_FILE} or {CHAR_FILE} "
                       f"written by a tokeniser's save()")


def _load_char(path: Path) -> CharTokenizer:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        characters = state["characters"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise SpdfSimError(f"tokeniser file {path} is invalid ({error!r}): expected JSON "
                           f"with a 'characters' list, as CharTokenizer.save writes") from None
    return CharTokenizer(characters)
