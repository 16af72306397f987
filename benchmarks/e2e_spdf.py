"""E2E acceptance benchmark: sparse pre-training, dense fine-tuning, BLEU on the E2E test set.

For each pre-training sparsity (by default 0, 0.5 and 0.75) this script
pre-trains a small GPT on a fiction corpus with the training engine and
fine-tunes it dense on E2E train. It then decodes the E2E test inputs greedily
and scores corpus BLEU against all references of each input. It prints one
table row per sparsity, with the BLEU gap to the dense-pretrained model.

The target is BLEU >= 50 for the dense-pretrained model. For scale, a 4-layer,
256-wide GPT with a 2,000-token byte-level BPE was trained from scratch on E2E
train alone for 1,500 steps of 32 examples (about 10 minutes on 2 CPU cores).
It scored about 51.5 BLEU on the first 200 test inputs.

    python benchmarks/e2e_spdf.py                     # estimate: 45-60 minutes on 2 idle CPU cores
    python benchmarks/e2e_spdf.py --pretrain-steps 5 --finetune-steps 5 --eval-inputs 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spdf_sim.training.config import RunConfig, config_from_dict  # noqa: E402
from spdf_sim.training.data import (  # noqa: E402
    TaskBatches, TokenStream, encode_documents, split_tokens,
)
from spdf_sim.training.engine import Sources, Trainer  # noqa: E402
from spdf_sim.training.evaluate import score_examples  # noqa: E402
from spdf_sim.training.tokenizer import BpeTokenizer  # noqa: E402
from workloads.corpus import read_corpus  # noqa: E402
from workloads.tasks import Example, load_task  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SPDF_SIM_DATA", REPO.parent / "shared" / "data"))

# Three or more blank lines end a document, because the Gutenberg fiction file joins its books that way.
DOCUMENT_BREAK = re.compile(r"\n{4,}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA,
                        help="folder that contains e2e/ "
                             "(default: $SPDF_SIM_DATA, else ../shared/data)")
    parser.add_argument("--corpus", type=Path, nargs="+", default=None,
                        help="pre-training text: .txt files, .jsonl files or folders "
                             "(default: DATA_ROOT/gutenberg_fiction/train.txt)")

    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.75],
                        help="pre-training sparsity levels, fraction of zeros in [0, 1)")
    parser.add_argument("--n-layer", type=int, default=4, help="transformer blocks")
    parser.add_argument("--d-model", type=int, default=256,
                        help="model width; d_ff is 4 times this")
    parser.add_argument("--n-head", type=int, default=4, help="attention heads")
    parser.add_argument("--context", type=int, default=128, help="sequence length in tokens")
    parser.add_argument("--vocab-size", type=int, default=2048, help="byte-level BPE vocabulary size")
    parser.add_argument("--tokenizer-chars", type=int, default=2_000_000,
                        help="characters of the corpus the BPE is trained on, with all E2E train text")

    parser.add_argument("--dropout", type=float, default=0.1, help="dropout in both phases")
    parser.add_argument("--pretrain-steps", type=int, default=400,
                        help="pre-training steps of batch-size windows of context tokens")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3,
                        help="peak pre-training LR; warm-up is 5%% of the steps, cosine decay to a tenth")
    parser.add_argument("--finetune-steps", type=int, default=1500,
                        help="fine-tuning steps of batch-size (input, reference) pairs")
    parser.add_argument("--finetune-lr", type=float, default=1e-3,
                        help="peak fine-tuning LR, same schedule as pre-training")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per step, both phases")

    parser.add_argument("--eval-inputs", type=int, default=200,
                        help="score the first N E2E test inputs; 0 scores all 630")
    parser.add_argument("--max-new-tokens", type=int, default=100,
                        help="generation limit per test input, in tokens")
    parser.add_argument("--beam-size", type=int, default=1, help="1 decodes greedily")
    parser.add_argument("--seed", type=int, default=1337,
                        help="seed of the model init, masks and batch order")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace, sparsity: float, vocab: int) -> RunConfig:
    """Build the engine's run config for one sparsity level."""
    def phase(steps: int, lr: float) -> dict:
        return {"steps": steps, "lr": lr, "min_lr": lr / 10, "warmup": max(steps // 20, 1),
                "batch_size": args.batch_size, "weight_decay": 0.1}

    return config_from_dict({
        "model": {"name": "e2e-bench", "n_layer": args.n_layer, "d_model": args.d_model,
                  "n_head": args.n_head, "d_ff": 4 * args.d_model, "context": args.context,
                  "vocab": vocab, "dropout": args.dropout},
        "sparsity": {"level": sparsity},
        "pretrain": phase(args.pretrain_steps, args.pretrain_lr),
        "finetune": phase(args.finetune_steps, args.finetune_lr),
        "data": {"eval_batches": 10},
        "seed": args.seed,
        "log_interval": 50,
    }, source="benchmarks/e2e_spdf.py")


def load_data(args: argparse.Namespace):
    """Read the corpus and E2E, train the tokeniser, and tokenise the corpus."""
    started = time.perf_counter()
    corpus_paths = args.corpus or [args.data_root / "gutenberg_fiction" / "train.txt"]
    documents = [piece for document in read_corpus(corpus_paths)
                 for piece in DOCUMENT_BREAK.split(document) if piece.strip()]
    train, dev, test = (load_task("e2e", split, args.data_root) for split in ("train", "dev", "test"))
    if args.eval_inputs:
        test = test[:args.eval_inputs]

    e2e_text = [example.source for example in train] + [ref for e in train for ref in e.references]
    corpus_sample = "".join(documents)[:args.tokenizer_chars]
    tokenizer = BpeTokenizer.train([corpus_sample, *e2e_text], vocab_size=args.vocab_size)
    tokens = encode_documents(documents, tokenizer)
    print(f"data: {len(documents)} documents, {len(tokens):,} corpus tokens, "
          f"{len(train)} E2E train inputs, {len(test)} test inputs, vocab {tokenizer.vocab_size}, "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return tokenizer, tokens, train, dev, test


def run_one(args, sparsity: float, tokenizer, tokens, train: list[Example], dev: list[Example],
            test: list[Example]) -> dict:
    """Pre-train at ``sparsity``, fine-tune dense on E2E train, and score BLEU on ``test``."""
    started = time.perf_counter()
    run = run_config(args, sparsity, tokenizer.vocab_size)
    corpus_train, corpus_val = split_tokens(tokens, 0.05)
    sources = Sources(
        pretrain=TokenStream(corpus_train, args.batch_size, args.context, seed=args.seed),
        finetune=TaskBatches(train, tokenizer, args.batch_size, args.context, seed=args.seed),
        val={"pretrain": TokenStream(corpus_val, args.batch_size, args.context, seed=args.seed + 1),
             "finetune": TaskBatches(dev, tokenizer, args.batch_size, args.context,
                                     seed=args.seed + 1)},
    )
    trainer = Trainer(run, sources, run_dir=None, trace=False, progress=sys.stderr.isatty())
    result = trainer.train()

    score, hypotheses = score_examples(trainer.model, tokenizer, test, args.max_new_tokens,
                                       beam_size=args.beam_size)
    row = {"sparsity": sparsity,
           "pretrain_val_loss": result.val_loss.get("pretrain", float("nan")),
           "finetune_val_loss": result.val_loss.get("finetune", float("nan")),
           "bleu": score, "minutes": (time.perf_counter() - started) / 60,
           "example": {"source": test[0].source, "hypothesis": hypotheses[0]}}
    print(f"sparsity {sparsity:.2f}: BLEU {score:.1f} in {row['minutes']:.1f} min; "
          f"first output: {hypotheses[0]!r}", flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    dense = next((row["bleu"] for row in rows if row["sparsity"] == 0.0), None)
    print("\n| pretrain sparsity | pretrain val loss | fine-tune val loss | BLEU | gap to dense |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        gap = "n/a" if dense is None else f"{row['bleu'] - dense:+.1f}"
        print(f"| {row['sparsity']:.0%} | {row['pretrain_val_loss']:.3f} | "
              f"{row['finetune_val_loss']:.3f} | {row['bleu']:.1f} | {gap} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tokenizer, tokens, train, dev, test = load_data(args)
    rows = [run_one(args, sparsity, tokenizer, tokens, train, dev, test)
            for sparsity in args.sparsities]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
