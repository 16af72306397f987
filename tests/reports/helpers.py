"""The spdf-sim command line with this package's report and study commands registered."""

from __future__ import annotations

import argparse

from spdf_sim import cli
from spdf_sim.run_report import add_report_parser
from spdf_sim.study import add_study_parser


def commands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


def run_cli(monkeypatch, argv: list[str]) -> int:
    """Run ``spdf-sim ARGV`` through cli.main, adding report and study where cli lacks them."""
    if not {"report", "study"} <= commands(cli.build_parser()):
        add_train_parser = cli.add_train_parser

        def add_with_ours(subparsers):
            add_train_parser(subparsers)
            add_report_parser(subparsers)
            add_study_parser(subparsers)

        monkeypatch.setattr(cli, "add_train_parser", add_with_ours)
    return cli.main(argv)
