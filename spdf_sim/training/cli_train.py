"""The ``spdf-sim train CONFIG [--set KEY=VALUE ...] [--resume]`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from spdf_sim.training.config import load_config


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="sparse pre-train then dense fine-tune a GPT, recording a trace",
        description="Run sparse pre-training, the switch to dense, and dense fine-tuning, "
                    "writing checkpoints, the trace and status.json to the config's out_dir. "
                    "Under torchrun every process trains data-parallel; rank 0 writes.")
    parser.add_argument("config", help="TOML run config, such as spdf_sim/configs/tiny.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key with a TOML value, such as "
                             "--set pretrain.steps=100 or --set sparsity.level=0.5 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in out_dir from its last checkpoint")
    parser.set_defaults(run=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    """Load the config, build the data sources and train; return the process exit code."""
    # Imported here so that commands without torch work stay fast to start.
    from spdf_sim.training.batches import sources_from_config
    from spdf_sim.training.engine import Trainer, check_new_run_dir, setup_distributed

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run = load_config(args.config, args.overrides)
    if not args.resume:
        # Checked before the data is read, which can take minutes; the Trainer checks again.
        check_new_run_dir(Path(run.out_dir))
    distributed = setup_distributed(run.device)
    config = run.model_config()
    sources = sources_from_config(run, config.vocab, config.context, rank=distributed.rank)
    trainer = Trainer(run, sources, run_dir=run.out_dir, resume=args.resume,
                      distributed=distributed)
    result = trainer.train()
    if distributed.is_main:
        losses = ", ".join(f"{phase} {loss:.4f}" for phase, loss in result.val_loss.items())
        print(f"finished {result.step} steps in {run.out_dir}; validation loss: {losses or 'n/a'}",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``spdf-sim train`` alone, as ``python -m spdf_sim.training.cli_train`` (torchrun uses this)."""
    from spdf_sim.cli import main as cli_main  # the CLI imports this module

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
