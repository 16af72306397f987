"""Checkpoints: everything a run needs to continue as if it had never stopped, written atomically.

A checkpoint contains the model and optimizer state, the masks (all under
canonical parameter names, without ``module.`` or ``_orig_mod.``), the step,
the RNG states of python, numpy and torch, the data position and the config.
It is written to a temporary file in the same directory, fsynced, then moved
over the old one with os.replace, so a crash mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.masks import canonical_name

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = "spdf-sim-checkpoint"
CHECKPOINT_VERSION = 1


def canonical_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {canonical_name(name): tensor for name, tensor in model.state_dict().items()}


def rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temp file in the same directory, fsync, os.replace."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as file:
            torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed (POSIX).
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by save_checkpoint; raise SpdfSimError if it is missing or foreign."""
    path = Path(path)
    if not path.exists():
        raise SpdfSimError(f"checkpoint {path} not found: resume needs a run directory that "
                           f"contains {CHECKPOINT_FILE}")
    try:
        # weights_only=False because the checkpoint contains python and numpy RNG
        # states; only load checkpoints this package wrote.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for damaged files
        raise SpdfSimError(f"checkpoint {path} could not be read: {error}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SpdfSimError(f"{path} is not an spdf-sim checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise SpdfSimError(f"checkpoint {path} has version {state.get('version')!r}; this code "
                           f"reads version {CHECKPOINT_VERSION}")
    return state


def check_same_shape(path: str | Path, saved: dict, current: dict) -> None:
    """Raise when a checkpoint's model shape differs from the config's, naming both shapes."""
    keys = ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab", "tied_embeddings", "bias")
    saved_shape = {key: saved.get(key) for key in keys}
    current_shape = {key: current.get(key) for key in keys}
    if saved_shape != current_shape:
        raise SpdfSimError(f"checkpoint {path} is of another model shape: it contains {saved_shape}, "
                           f"but the config gives {current_shape}. Resume with the config the "
                           f"run was started with, or start a new run in another out_dir")
