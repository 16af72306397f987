"""The ``spdf-sim`` command line."""

from __future__ import annotations

import argparse
import json
import sys

import hwmodels
from spdf_sim.engines import FIDELITIES
from spdf_sim.engines.gpu import GPU_SPARSITY_MODES
from spdf_sim.errors import SpdfSimError
from spdf_sim.flops import CONVENTIONS, DEFAULT_CONVENTION
from spdf_sim.projection import (
    DEFAULT_BATCH_SIZE, DEFAULT_REFERENCE_GPU, DEFAULT_SPARSITY, project,
)
from spdf_sim.run_report import add_report_parser
from spdf_sim.sparsity import parse_sparsity
from spdf_sim.study import add_study_parser
from spdf_sim.training.cli_train import add_train_parser
from workloads import PRESETS, count_parameters


def _tokens(text: str) -> int:
    """Parse a token count such as 26e9 or 2_000_000; range checks happen in project()."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of tokens") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of tokens")
    return int(value) if value == int(value) else value


def _add_project_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "project", help="project FLOPs and time of SPDF against dense pre-training",
        description="Project the FLOPs and time of sparse pre-training followed by dense "
                    "fine-tuning, against dense pre-training, on one or more machines.")
    parser.add_argument("model", help="model preset (see 'spdf-sim models'), or a run directory "
                                      "written by 'spdf-sim train' to replay its trace")
    parser.add_argument("--sparsity", default=None,
                        help="fraction of zero weights in [0, 1) for every SPDF-sparse weight; "
                             f"or 'erk:S', or 'GLOB=S,GLOB=S' (default {DEFAULT_SPARSITY})")
    parser.add_argument("--hw", nargs="+", default=["cs2-like"], metavar="NAME",
                        help="machines to time on (see 'spdf-sim hardware'; default cs2-like); "
                             "the reference GPU is always timed as well")
    parser.add_argument("--tokens", type=_tokens, default=None,
                        help="pre-training tokens (default: 20 per parameter, Chinchilla)")
    parser.add_argument("--finetune-tokens", type=_tokens, default=None,
                        help="dense fine-tuning tokens (default 0)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"sequences per step (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--convention", default=DEFAULT_CONVENTION, choices=list(CONVENTIONS),
                        help=f"FLOP counting convention (default {DEFAULT_CONVENTION})")
    parser.add_argument("--fidelity", default=None, choices=list(FIDELITIES),
                        help="wafer engine (default simulated)")
    parser.add_argument("--gpu-sparsity", default="unstructured", choices=list(GPU_SPARSITY_MODES),
                        help="GPU kernels for sparse weights: unstructured runs dense kernels, 2:4 "
                             "assumes 2:4-structured masks, sparse-kernel a sparse library "
                             "(default unstructured)")
    parser.add_argument("--reference-gpu", default=DEFAULT_REFERENCE_GPU,
                        help=f"GPU that 'speedup vs GPU' compares to (default {DEFAULT_REFERENCE_GPU})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    parser.set_defaults(run=_run_project)


def _run_project(args) -> int:
    projection = project(
        args.model, None if args.sparsity is None else parse_sparsity(args.sparsity),
        hw=args.hw, tokens=args.tokens,
        finetune_tokens=args.finetune_tokens, convention=args.convention,
        batch_size=args.batch_size, fidelity=args.fidelity, gpu_sparsity=args.gpu_sparsity,
        reference_gpu=args.reference_gpu)
    if args.json:
        print(json.dumps(projection.to_dict(), indent=2))
    else:
        print(projection.summary())
    if args.html:
        projection.to_html(args.html)
        if not args.json:
            print(f"report written to {args.html}")
    return 0


def _run_models(args) -> int:
    print(f"{'name':<12} {'layers':>6} {'d_model':>7} {'heads':>5} {'context':>7} {'params':>15}  source")
    for name, config in PRESETS.items():
        total, _ = count_parameters(config)
        print(f"{name:<12} {config.n_layer:>6} {config.d_model:>7} {config.n_head:>5} "
              f"{config.context:>7} {total:>15,}  {config.source}")
    return 0


def _run_hardware(args) -> int:
    for name in hwmodels.available():
        machine = hwmodels.load(name)
        print(f"{name:<10} {machine.kind:<6} peak {machine['peak_flops']:.3g} FLOP/s  {machine.summary}")
        if args.verbose:
            for key, value in machine.values.items():
                print(f"    {key} = {value}  ({machine.source(key)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spdf-sim",
        description="FLOPs and wall-clock of sparse pre-training then dense fine-tuning (SPDF).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_project_parser(subparsers)
    subparsers.add_parser("models", help="list model presets",
                          description="List the model presets with their shapes, parameter "
                                      "counts and sources.").set_defaults(run=_run_models)
    hardware = subparsers.add_parser(
        "hardware", help="list machine descriptions",
        description="List the machine descriptions; -v prints every number with its source.")
    hardware.add_argument("-v", "--verbose", action="store_true", help="print every number and its source")
    hardware.set_defaults(run=_run_hardware)
    add_train_parser(subparsers)
    add_report_parser(subparsers)
    add_study_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SpdfSimError as error:
        print(f"spdf-sim: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("spdf-sim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
