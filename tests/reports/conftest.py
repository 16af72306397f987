"""Tiny training runs made once per session by the real engine, for the reader, replay and report tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from spdf_sim.training.batches import sources_from_config
from spdf_sim.training.config import config_from_dict
from spdf_sim.training.engine import Trainer

TINY_RUN = {
    "model": {"name": "tiny", "n_layer": 2, "d_model": 32, "n_head": 4, "d_ff": 64,
              "context": 16, "vocab": 64},
    "sparsity": {"level": 0.75},
    "pretrain": {"steps": 12, "lr": 3e-3, "min_lr": 3e-4, "warmup": 2, "batch_size": 4},
    "finetune": {"steps": 6, "lr": 1e-3, "min_lr": 1e-4, "warmup": 2, "batch_size": 2},
    "data": {"eval_batches": 1},
    "log_interval": 4, "trace_interval": 4, "checkpoint_interval": 100,
}


def train_tiny(run_dir: Path, level: float) -> Path:
    """Train the tiny run at sparsity ``level`` into ``run_dir`` (about a second on one core)."""
    table = {**TINY_RUN, "sparsity": {"level": level}}
    run = config_from_dict(table)
    config = run.model_config()
    sources = sources_from_config(run, config.vocab, config.context)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(run, sources, run_dir=run_dir, progress=False).train()
    finally:
        torch.set_num_threads(threads)
    return run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Return {"sparse": 75% sparse run, "dense": dense run}, both finished."""
    root = tmp_path_factory.mktemp("runs")
    return {"sparse": train_tiny(root / "sparse-75", 0.75),
            "dense": train_tiny(root / "dense", 0.0)}


@pytest.fixture
def run_copy(tiny_runs, tmp_path):
    """Return a function that copies a tiny run into this test's own folder, to damage it."""
    def copy(kind: str = "sparse") -> Path:
        target = tmp_path / kind
        shutil.copytree(tiny_runs[kind], target)
        return target
    return copy
