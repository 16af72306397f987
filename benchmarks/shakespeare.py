"""Tiny Shakespeare, character level: dense against 50% and 75% sparse pre-training.

The recipe is nanoGPT's CPU run (4 layers, 4 heads, 128 wide, context 64,
batch 12, 2000 iterations, no dropout, peak LR 1e-3 decaying to 1e-4), which
reaches a validation loss of about 1.88 dense (nanoGPT README). The target
here is a dense validation loss <= 1.95; the sparse runs report their loss and
its gap to dense. ``--finetune-steps N`` adds N dense fine-tuning steps after
each sparse run (SPDF); it is 0 by default.

    python benchmarks/shakespeare.py [--data PATH] [--iters 2000] [--levels 0 0.5 0.75]

Data: ``input.txt`` of Tiny Shakespeare, by default from the shared data
folder next to the repository (override with SPDF_SIM_DATA or --data).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spdf_sim.training.data import TokenStream  # noqa: E402
from spdf_sim.training.config import config_from_dict  # noqa: E402
from spdf_sim.training.engine import Sources, Trainer  # noqa: E402

DENSE_TARGET = 1.95


def default_data() -> Path:
    root = os.environ.get("SPDF_SIM_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(root) / "tinyshakespeare" / "input.txt"


def char_tokens(path: Path) -> tuple[np.ndarray, int]:
    """Encode the text one character per token; the vocabulary is the sorted set of characters."""
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {char: i for i, char in enumerate(chars)}
    return np.array([index[char] for char in text], dtype=np.int64), len(chars)


def run_level(sparsity: float, tokens: np.ndarray, vocab: int, args) -> float:
    cut = int(0.9 * len(tokens))  # nanoGPT's split: the first 90% trains
    run = config_from_dict({
        "model": {"name": "shakespeare-char", "n_layer": 4, "d_model": 128, "n_head": 4,
                  "d_ff": 512, "context": 64, "vocab": vocab},
        "sparsity": {"level": sparsity},
        "pretrain": {"steps": args.iters, "lr": 1e-3, "min_lr": 1e-4, "warmup": 100,
                     "batch_size": 12},
        "finetune": {"steps": args.finetune_steps if sparsity else 0, "lr": 3e-4,
                     "min_lr": 3e-5, "warmup": 20, "batch_size": 12},
        "data": {"eval_batches": args.eval_batches},
        "seed": args.seed, "log_interval": 50,
    })
    def windows(part, seed):
        return TokenStream(part, 12, 64, seed=seed)

    sources = Sources(pretrain=windows(tokens[:cut], args.seed),
                      finetune=windows(tokens[:cut], args.seed + 1),
                      val={"pretrain": windows(tokens[cut:], 7), "finetune": windows(tokens[cut:], 7)})
    result = Trainer(run, sources, progress=not args.quiet).train()
    return result.val_loss.get("finetune", result.val_loss["pretrain"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="Tiny Shakespeare input.txt")
    parser.add_argument("--iters", type=int, default=2000, help="pre-training steps per level")
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="dense fine-tuning steps after each sparse run")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 0.75],
                        help="sparsity levels; the first is the baseline (use 0 for dense)")
    parser.add_argument("--eval-batches", type=int, default=200, help="validation batches of 12")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: Tiny Shakespeare not found at {args.data}; pass --data PATH or set "
              f"SPDF_SIM_DATA to the folder that holds tinyshakespeare/input.txt")
        return 0
    torch.set_num_threads(args.threads)

    tokens, vocab = char_tokens(args.data)
    losses = {}
    for level in args.levels:
        start = time.perf_counter()
        losses[level] = run_level(level, tokens, vocab, args)
        print(f"sparsity {level:.2f}: val loss {losses[level]:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    baseline = args.levels[0]
    print(f"\n{'sparsity':>8}  {'val loss':>8}  {'gap':>7}")
    for level, loss in losses.items():
        print(f"{level:8.2f}  {loss:8.4f}  {loss - losses[baseline]:+7.4f}")
    if baseline == 0.0 and args.iters >= 2000:
        ok = losses[0.0] <= DENSE_TARGET
        print(f"dense val loss {losses[0.0]:.4f} (target <= {DENSE_TARGET}): {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
