"""Batch sources of the ``corpus`` data format: real text, a BPE tokeniser and a task.

Pre-training reads a text file, a folder of ``.txt`` files or a JSONL file (or,
with no path, CPython's documentation text), encodes it with the run's
tokeniser and draws random windows. Fine-tuning draws the same windows, or,
when ``data.task`` names E2E, WebNLG or DART, (input, reference) pairs from the
task's official files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch.distributed as dist

from spdf_sim.errors import SpdfSimError

log = logging.getLogger(__name__)


def corpus_sources(run, vocab: int, context: int, rank: int = 0):
    """Build the Sources of a run whose ``data.format`` is ``corpus``."""
    from spdf_sim.training.data import (
        TaskBatches, TokenStream, encode_documents, fitting, split_tokens,
    )
    from spdf_sim.training.engine import Sources  # the engine imports the batches module

    data = run.data
    documents = read_documents(data.pretrain)
    # Every input is read before the tokeniser is trained and saved, so bad input fails first.
    downstream = []
    if data.finetune and not data.task:
        downstream = read_documents(data.finetune, "finetune")
    examples = {}
    if data.task:
        if data.task_train == data.task_val:
            log.warning("data.task_train and data.task_val are both %r: the validation loss is "
                        "measured on training pairs", data.task_train)
        examples = {split: task_examples(data.task, split, data.task_root)
                    for split in dict.fromkeys((data.task_train, data.task_val))}
    tokenizer = run_tokenizer(run, documents, examples.get(data.task_train, []), rank)
    if tokenizer.vocab_size > vocab:
        raise SpdfSimError(f"the tokeniser has {tokenizer.vocab_size} tokens, more than the "
                           f"model's vocab of {vocab}: raise model.vocab to at least "
                           f"{tokenizer.vocab_size}")

    train, val = split_tokens(encode_documents(documents, tokenizer), data.val_fraction)
    seed = run.seed + rank
    streams = {"pretrain": TokenStream(train, run.pretrain.batch_size, context, seed=seed)}
    held_out = {"pretrain": TokenStream(val, run.pretrain.batch_size, context, seed=seed + 500)}
    if data.task:
        batch = run.finetune.batch_size
        pairs = {split: fitting(examples[split], tokenizer, context, f"{data.task} {split}")
                 for split in examples}
        streams["finetune"] = TaskBatches(pairs[data.task_train], tokenizer, batch, context,
                                          seed=seed + 1000)
        held_out["finetune"] = TaskBatches(pairs[data.task_val], tokenizer, batch, context,
                                           seed=seed + 1500)
    else:
        if downstream:
            # The pre-training tokeniser encodes the downstream text too, as in any fine-tuning.
            train, val = split_tokens(encode_documents(downstream, tokenizer), data.val_fraction)
        streams["finetune"] = TokenStream(train, run.finetune.batch_size, context, seed=seed + 1000)
        held_out["finetune"] = TokenStream(val, run.finetune.batch_size, context, seed=seed + 1500)
    return Sources(pretrain=streams["pretrain"], finetune=streams["finetune"], val=held_out)


def read_documents(path: str, key: str = "pretrain") -> list[str]:
    """Read the documents at ``path`` (data.``key``); an empty path gives the default corpus."""
    from workloads import WorkloadError
    from workloads.corpus import default_corpus, read_corpus

    if not path:
        return default_corpus()
    try:
        return read_corpus(path)
    except WorkloadError as error:
        raise SpdfSimError(f"data.{key}: {error}") from None


def task_examples(task: str, split: str, root: str) -> list:
    """Read one split of ``task`` from ``root`` (empty: the SPDF_SIM_DATA folder)."""
    from workloads import WorkloadError
    from workloads.tasks.registry import DATA_ROOT_VARIABLE, load_task

    if not root and not os.environ.get(DATA_ROOT_VARIABLE):
        raise SpdfSimError(f"data.task_root is empty and {DATA_ROOT_VARIABLE} is not set: give "
                           f"the folder that holds {task}/")
    if root and not Path(root).is_dir():
        raise SpdfSimError(f"data.task_root = {root!r} is not a folder: give the folder that "
                           f"holds {task}/")
    try:
        return load_task(task, split, root or None)
    except WorkloadError as error:
        raise SpdfSimError(f"data.task: {error}") from None


def run_tokenizer(run, documents: list[str], pairs: list, rank: int):
    """Return the run's tokeniser: loaded from data.tokenizer or out_dir, else trained and saved.

    A trained byte-level BPE has ``model.vocab`` tokens, learnt from the corpus
    and the task's training pairs, and is saved as out_dir/tokenizer.json (by
    rank 0), so a resumed run encodes its data the same way.
    """
    from spdf_sim.training.data import example_texts
    from spdf_sim.training.tokenizer import BPE_FILE, BpeTokenizer, load_tokenizer

    folder = Path(run.data.tokenizer) if run.data.tokenizer else None
    if folder is not None:
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return BpeTokenizer.from_gpt2_files(folder / "vocab.json", folder / "merges.txt")
        if (folder / BPE_FILE).is_file():
            return load_tokenizer(folder)
        raise SpdfSimError(f"data.tokenizer = {str(folder)!r} is invalid: give a folder that "
                           f"contains {BPE_FILE}, or GPT-2's vocab.json and merges.txt")

    out_dir = Path(run.out_dir)
    saved = [(out_dir / BPE_FILE).is_file()]
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if distributed:
        # Rank 0 decides, so every rank takes the same path through the barrier below.
        dist.broadcast_object_list(saved, src=0)
    if saved[0]:
        return load_tokenizer(out_dir)

    tokenizer = None
    if rank == 0 or not distributed:
        vocab = run.model_config().vocab
        texts = documents + example_texts(pairs)
        log.info("training a byte-level BPE of %d tokens on %d texts", vocab, len(texts))
        tokenizer = BpeTokenizer.train(texts, vocab)
    if rank == 0:
        tokenizer.save(out_dir)
    if distributed:
        # The other ranks load rank 0's tokeniser, so every rank encodes the data the same way.
        dist.barrier()
    return tokenizer if tokenizer is not None else load_tokenizer(out_dir)
