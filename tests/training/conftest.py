"""Fixtures of the training-engine tests: tiny runs of a few seconds each on one core."""

from __future__ import annotations

import copy

import pytest
import torch

from spdf_sim.training.batches import sources_from_config
from spdf_sim.training.config import config_from_dict
from spdf_sim.training.engine import Trainer

TINY = {
    "model": {"name": "tiny", "n_layer": 2, "d_model": 32, "n_head": 4, "d_ff": 64,
              "context": 16, "vocab": 64},
    "sparsity": {"level": 0.75},
    "pretrain": {"steps": 20, "lr": 3e-3, "min_lr": 3e-4, "warmup": 4, "batch_size": 4},
    "finetune": {"steps": 10, "lr": 1e-3, "min_lr": 1e-4, "warmup": 2, "batch_size": 4},
    "data": {"eval_batches": 2},
    "log_interval": 5, "trace_interval": 5, "checkpoint_interval": 5,
}


def make_tiny_config(**sections):
    """Return the tiny RunConfig with ``sections`` ({section: {key: value}} or key=value) merged in."""
    table = copy.deepcopy(TINY)
    for key, value in sections.items():
        if isinstance(value, dict):
            table.setdefault(key, {}).update(value)
        else:
            table[key] = value
    return config_from_dict(table)


def make_tiny_trainer(run, run_dir=None, **options) -> Trainer:
    config = run.model_config()
    sources = sources_from_config(run, config.vocab, config.context)
    return Trainer(run, sources, run_dir=run_dir, progress=False, **options)


@pytest.fixture(scope="session")
def tiny_config():
    """Factory of the tiny RunConfig: ``tiny_config(pretrain={"steps": 5})``."""
    return make_tiny_config


@pytest.fixture(scope="session")
def tiny_trainer():
    """Factory of a Trainer on the tiny config's synthetic data: ``tiny_trainer(run, run_dir)``."""
    return make_tiny_trainer


@pytest.fixture(autouse=True)
def one_thread():
    """Keep each test on one core and make CPU results reproducible across runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
