"""Validation of single trace records: each type's fields and their types.

A record may carry fields beyond the ones checked here, so a writer can add
information within a format version. A field that is checked and missing, or
of the wrong type, raises SpdfSimError naming the file, the line and the field.
"""

from __future__ import annotations

import math
import re

from spdf_sim.errors import SpdfSimError

TRACE_FORMAT = "spdf-sim-trace"
TRACE_VERSION = 1
"""The format name and the newest version this reader reads; the training engine writes them too."""

TRACE_FILE = "trace.jsonl"
MASK_DIR = "masks"

PHASES = ("pretrain", "finetune")
"""The phases of an SPDF run, in order: sparse pre-training, then dense fine-tuning."""

MASK_KEY = re.compile(r"[0-9a-f]{1,64}")
"""A mask key is a hex digest; anything else could name a path outside the mask folder."""

MODEL_FIELDS = ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab")


class RecordError(SpdfSimError):
    """A record that breaks the format; the reader adds the file and line to the message."""


def check_record(record) -> dict:
    """Return ``record`` if it is a valid non-header record, else raise RecordError."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    kind = record.get("type")
    check = CHECKS.get(kind)
    if check is None:
        known = ", ".join(CHECKS)
        raise RecordError(f"unknown record type {kind!r}: version 1 has {known}")
    check(record)
    return record


def check_model(header: dict) -> dict:
    """Return the header's model shape, or raise when it is missing or malformed."""
    model = header.get("model")
    if not isinstance(model, dict):
        raise RecordError("the header has no 'model' object with the model shape "
                          f"({', '.join(MODEL_FIELDS)})")
    for key in MODEL_FIELDS:
        _whole(model, key, minimum=1, where="model.")
    for key in ("tied_embeddings", "bias"):
        if key in model and not isinstance(model[key], bool):
            raise RecordError(f"model.{key} = {model[key]!r} is invalid: expected true or false")
    if "name" in model and not isinstance(model["name"], str):
        raise RecordError(f"model.name = {model['name']!r} is invalid: expected a string")
    return model


def _check_step(record: dict) -> None:
    _phase(record)
    _whole(record, "step", minimum=1)
    _whole(record, "tokens", minimum=1)
    for key in ("loss", "lr", "step_time_s"):
        _number(record, key)


def _check_masks(record: dict) -> None:
    _phase(record)
    _whole(record, "step", minimum=0)
    masks = record.get("masks")
    if not isinstance(masks, dict):
        raise RecordError(f"field 'masks' = {masks!r} is invalid: expected an object "
                          f"of weight name to mask key")
    for name, key in masks.items():
        _mask_key(name, key)


def _check_layers(record: dict) -> None:
    _phase(record)
    _whole(record, "step", minimum=0)
    weights = record.get("weights")
    if not isinstance(weights, dict):
        raise RecordError(f"field 'weights' = {weights!r} is invalid: expected an object "
                          f"of weight name to shape, nnz and mask")
    for name, entry in weights.items():
        if not isinstance(entry, dict):
            raise RecordError(f"weight {name}: {entry!r} is invalid: expected an object "
                              f"with shape, nnz and mask")
        shape = entry.get("shape")
        if (not isinstance(shape, list) or not shape
                or not all(_is_whole(size) and size >= 1 for size in shape)):
            raise RecordError(f"weight {name}: shape {shape!r} is invalid: expected a list "
                              f"of whole numbers >= 1")
        _whole(entry, "nnz", minimum=0, where=f"weights.{name}.")
        if entry["nnz"] > math.prod(shape):
            raise RecordError(f"weight {name}: nnz {entry['nnz']} exceeds its "
                              f"{math.prod(shape)} weights")
        if entry.get("mask") is not None:
            _mask_key(name, entry["mask"])


def _check_switch(record: dict) -> None:
    _whole(record, "step", minimum=0)


def _check_eval(record: dict) -> None:
    _phase(record)
    _whole(record, "step", minimum=0)
    _number(record, "val_loss")


def _check_resume(record: dict) -> None:
    _whole(record, "step", minimum=0)


def _check_end(record: dict) -> None:
    _whole(record, "step", minimum=0)


CHECKS = {"step": _check_step, "masks": _check_masks, "layers": _check_layers,
          "switch": _check_switch, "eval": _check_eval, "resume": _check_resume,
          "end": _check_end}


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(record: dict, key: str, minimum: int, where: str = "") -> None:
    value = record.get(key)
    if not _is_whole(value) or value < minimum:
        raise RecordError(f"field '{where}{key}' = {value!r} is invalid: expected a whole "
                          f"number >= {minimum}")


def _number(record: dict, key: str) -> None:
    # NaN and infinity are valid values here: a diverged loss is data, not damage.
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"field '{key}' = {value!r} is invalid: expected a number")
    try:
        float(value)
    except OverflowError:
        raise RecordError(f"field '{key}' = {value} is invalid: too large for a float") from None


def _phase(record: dict) -> None:
    phase = record.get("phase")
    if phase not in PHASES:
        raise RecordError(f"field 'phase' = {phase!r} is invalid: expected one of "
                          f"{', '.join(PHASES)}")


def _mask_key(name, key) -> None:
    if not isinstance(key, str) or not MASK_KEY.fullmatch(key):
        raise RecordError(f"weight {name}: mask key {key!r} is invalid: expected a hex "
                          f"digest such as 762a5b231891b213")
