"""The training trace: an append-only JSONL file plus bit-packed masks, one run directory.

Layout of a run directory (format described in docs/trace-format.md)::

    trace.jsonl          one JSON record per line, flushed after each record
    masks/<hash>.npy     each distinct mask once: np.packbits of the flattened bool mask

The first record is the header ``{"type": "header", "format": "spdf-sim-trace",
"version": 1, ...}``. Later records have a ``type``: step, masks, layers,
switch, eval, resume or end.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.runs.masks import mask_hash
from spdf_sim.runs.records import MASK_DIR, TRACE_FILE, TRACE_FORMAT, TRACE_VERSION


log = logging.getLogger(__name__)


class TraceWriter:
    """Appends records to ``run_dir/trace.jsonl`` and stores each distinct mask once."""

    def __init__(self, run_dir: str | Path, header: dict | None = None) -> None:
        self.run_dir = Path(run_dir)
        (self.run_dir / MASK_DIR).mkdir(parents=True, exist_ok=True)
        path = self.run_dir / TRACE_FILE
        is_new = not path.exists() or path.stat().st_size == 0
        if not is_new:
            _drop_torn_tail(path)
        self.file = open(path, "a", encoding="utf-8")
        if is_new:
            self.write({"type": "header", "format": TRACE_FORMAT, "version": TRACE_VERSION,
                        **(header or {})})

    def write(self, record: dict) -> None:
        # A flush per record means a process crash loses at most the record being
        # written. There is no fsync, so a machine failure can still lose recent lines.
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()

    def step(self, phase: str, step: int, tokens: int, loss: float, lr: float,
             step_time_s: float) -> None:
        self.write({"type": "step", "phase": phase, "step": step, "tokens": tokens,
                    "loss": loss, "lr": lr, "step_time_s": step_time_s})

    def masks(self, phase: str, step: int, masks: dict[str, torch.Tensor]) -> dict[str, str]:
        """Store each mask not stored yet and record the {weight name: mask hash} map."""
        hashes = {name: self.store_mask(mask) for name, mask in masks.items()}
        self.write({"type": "masks", "phase": phase, "step": step, "masks": hashes})
        return hashes

    def store_mask(self, mask: torch.Tensor) -> str:
        array = mask.detach().cpu().numpy().astype(bool)
        key = mask_hash(array)
        path = self.run_dir / MASK_DIR / f"{key}.npy"
        if not path.exists():
            temporary = path.with_suffix(".tmp")
            with open(temporary, "wb") as file:
                np.save(file, np.packbits(array.reshape(-1)))
            os.replace(temporary, path)
        return key

    def layers(self, phase: str, step: int, weights: dict[str, torch.Tensor],
               mask_hashes: dict[str, str]) -> None:
        """Record each sparse weight's shape and non-zero count, counted from the tensor itself."""
        names = list(weights)
        counts = torch.stack([torch.count_nonzero(weights[name].detach()) for name in names]).tolist()
        record = {name: {"shape": list(weights[name].shape), "nnz": count,
                         "mask": mask_hashes.get(name)}
                  for name, count in zip(names, counts)}
        self.write({"type": "layers", "phase": phase, "step": step, "weights": record})

    def close(self) -> None:
        self.file.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a record torn by a crash) before appending."""
    with open(path, "rb+") as file:
        data = file.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        log.warning("trace %s: dropping a torn last record of %d bytes before appending",
                    path, len(data) - cut)
        file.truncate(cut)


def read_trace(run_dir: str | Path) -> list[dict]:
    """Return the records of ``run_dir/trace.jsonl``; a torn last line is dropped with a warning.

    Raises SpdfSimError when the file is missing, its header is not a version
    this code reads, or a line other than the last is not valid JSON.
    """
    path = Path(run_dir) / TRACE_FILE
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as error:
        raise SpdfSimError(f"trace {path} could not be read: {error.strerror}") from None
    torn_allowed = lines[-1] != ""  # a complete file ends with a newline
    lines = [line for line in lines if line]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and torn_allowed:
                log.warning("trace %s: dropping a torn last record at line %d", path, number)
                break
            raise SpdfSimError(f"{path}:{number}: invalid JSON record in the trace") from None
    _check_header(path, records)
    return records


def _check_header(path: Path, records: list[dict]) -> None:
    header = records[0] if records else {}
    if header.get("format") != TRACE_FORMAT:
        raise SpdfSimError(f"{path} is not an spdf-sim trace: its first record lacks "
                           f"format={TRACE_FORMAT!r}")
    if header.get("version") != TRACE_VERSION:
        raise SpdfSimError(f"{path} has trace version {header.get('version')!r}; this code "
                           f"reads version {TRACE_VERSION}")


def load_mask(run_dir: str | Path, key: str, shape) -> np.ndarray:
    """Load a stored mask by hash and unpack it to a bool array of ``shape``."""
    packed = np.load(Path(run_dir) / MASK_DIR / f"{key}.npy")
    size = int(np.prod(shape))
    return np.unpackbits(packed, count=size).astype(bool).reshape(shape)


def step_records(records: list[dict]) -> list[dict]:
    """Return the step records in step order, keeping the last record of any step written twice.

    A resumed run repeats the steps after its last checkpoint, so a step can
    appear once from the interrupted attempt and once from the resumed one.
    """
    latest = {}
    for record in records:
        if record.get("type") == "step":
            latest[record["step"]] = record
    return [latest[step] for step in sorted(latest)]
