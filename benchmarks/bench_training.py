"""Overheads of the training engine, measured side by side in one process.

1. Masked step time over dense step time (target <= 1.10): the same model and
   batches, one trainer at the requested sparsity and one dense.
2. Trace recording overhead (target <= 2%): the time to write a step's trace
   records (a step record every step, per-layer counts every trace_interval
   steps) over the time of the masked step itself.

Repetitions of the three measurements are interleaved so that load from other
processes falls on all of them alike, and medians are reported.

    python benchmarks/bench_training.py [--reps 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spdf_sim.training.batches import sources_from_config  # noqa: E402
from spdf_sim.training.config import config_from_dict  # noqa: E402
from spdf_sim.training.engine import Trainer  # noqa: E402

MASKED_TARGET = 1.10
TRACE_TARGET = 0.02


def make_trainer(args, sparsity: float, run_dir=None) -> Trainer:
    run = config_from_dict({
        "model": {"name": "bench", "n_layer": args.n_layer, "d_model": args.d_model,
                  "n_head": 4, "d_ff": 4 * args.d_model, "context": args.context, "vocab": 256},
        "sparsity": {"level": sparsity},
        "pretrain": {"steps": 10**6, "batch_size": args.batch_size, "lr": 1e-3},
        "trace_interval": args.trace_interval,
    })
    config = run.model_config()
    return Trainer(run, sources_from_config(run, config.vocab, config.context), run_dir=run_dir,
                   progress=False)


def time_steps(trainer: Trainer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(trainer.sources.pretrain, trainer.run.pretrain, 1e-3)
    return (time.perf_counter() - start) / steps


def time_trace(trainer: Trainer, steps: int) -> float:
    """Return the trace time per step: ``steps`` step records and their share of layer records."""
    start = time.perf_counter()
    for step in range(1, steps + 1):
        trainer.trace.step("pretrain", step, 1024, 1.2345, 1e-3, 0.05)
        if step % trainer.run.trace_interval == 0:
            trainer._trace_layers("pretrain")
    return (time.perf_counter() - start) / steps


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=5, help="steps timed per repetition")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--trace-interval", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as run_dir:
        dense = make_trainer(args, 0.0)
        masked = make_trainer(args, args.sparsity, run_dir=run_dir)
        masked.mask_hashes = masked.trace.masks("pretrain", 0, masked.masks.state_dict())
        time_steps(dense, 2)  # warm-up: allocator and kernels
        time_steps(masked, 2)

        dense_s, masked_s, trace_s = [], [], []
        for _ in range(args.reps):
            dense_s.append(time_steps(dense, args.steps))
            masked_s.append(time_steps(masked, args.steps))
            trace_s.append(time_trace(masked, args.trace_interval))
        masked.trace.close()

    dense_median = statistics.median(dense_s)
    masked_median = statistics.median(masked_s)
    trace_median = statistics.median(trace_s)
    masked_ratio = masked_median / dense_median
    trace_share = trace_median / masked_median
    print(f"model: {args.n_layer} layers, d_model {args.d_model}, context {args.context}, "
          f"batch {args.batch_size}, sparsity {args.sparsity}, {args.threads} thread(s), "
          f"{args.reps} reps x {args.steps} steps")
    print(f"dense step      {dense_median * 1e3:8.2f} ms (median)")
    print(f"masked step     {masked_median * 1e3:8.2f} ms (median)")
    print(f"trace per step  {trace_median * 1e3:8.3f} ms (median)")
    print(f"masked / dense step time = {masked_ratio:.3f} (target <= {MASKED_TARGET:.2f}): "
          f"{verdict(masked_ratio, MASKED_TARGET)}")
    print(f"trace overhead = {trace_share:.2%} of the masked step (target <= {TRACE_TARGET:.0%}): "
          f"{verdict(trace_share, TRACE_TARGET)}")
    return 0 if masked_ratio <= MASKED_TARGET and trace_share <= TRACE_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
