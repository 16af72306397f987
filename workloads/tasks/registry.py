"""Paths of each task's splits below a data folder, and ``load_task`` to read a split."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from workloads.errors import WorkloadError
from workloads.tasks.dart import read_dart
from workloads.tasks.e2e import read_e2e
from workloads.tasks.example import Example
from workloads.tasks.webnlg import read_webnlg

# Environment variable naming the data folder when load_task gets no root.
DATA_ROOT_VARIABLE = "SPDF_SIM_DATA"

# (reader, {split: path relative to the data folder}) for each task name.
# "webnlg" is the 2017 challenge data; "webnlg-v3" is release 3.0 (WebNLG 2020).
TASKS: dict[str, tuple[Callable[[Path], list[Example]], dict[str, str]]] = {
    "e2e": (read_e2e, {
        "train": "e2e/trainset.csv",
        "dev": "e2e/devset.csv",
        "test": "e2e/testset_w_refs.csv",
    }),
    "webnlg": (read_webnlg, {
        "train": "webnlg/webnlg_challenge_2017/train",
        "dev": "webnlg/webnlg_challenge_2017/dev",
        "test": "webnlg/webnlg_challenge_2017/test/testdata_with_lex.xml",
        "test-unseen": "webnlg/webnlg_challenge_2017/test/testdata_unseen_with_lex.xml",
    }),
    "webnlg-v3": (read_webnlg, {
        "train": "webnlg/release_v3.0/en/train",
        "dev": "webnlg/release_v3.0/en/dev",
        "test": "webnlg/release_v3.0/en/test/rdf-to-text-generation-test-data-with-refs-en.xml",
    }),
    "dart": (read_dart, {
        "train": "dart/dart-v1.1.1-full-train.json",
        "dev": "dart/dart-v1.1.1-full-dev.json",
        "test": "dart/dart-v1.1.1-full-test.xml",
    }),
}

SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}


def task_path(name: str, split: str, root: str | Path | None = None) -> Path:
    """Return the file or folder that contains ``split`` of task ``name`` below ``root``."""
    if name not in TASKS:
        raise WorkloadError(f"task {name!r} is unknown: choose one of {sorted(TASKS)}")
    splits = TASKS[name][1]
    split = SPLIT_ALIASES.get(split, split)
    if split not in splits:
        raise WorkloadError(f"task {name!r} has no split {split!r}: choose one of "
                            f"{sorted(splits)}")
    return _data_root(root) / splits[split]


def load_task(name: str, split: str, root: str | Path | None = None) -> list[Example]:
    """Read ``split`` ("train", "dev" or "test") of task ``name`` from the data folder ``root``.

    ``root`` defaults to the folder in the SPDF_SIM_DATA environment variable.
    """
    path = task_path(name, split, root)
    if not path.exists():
        raise WorkloadError(f"task {name!r} split {split!r} not found: expected {path}")
    reader = TASKS[name][0]
    return reader(path)


def _data_root(root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    if os.environ.get(DATA_ROOT_VARIABLE):
        return Path(os.environ[DATA_ROOT_VARIABLE])
    raise WorkloadError(f"no data folder given: pass root or set {DATA_ROOT_VARIABLE} to "
                        f"the folder that holds e2e/, webnlg/ and dart/")
