"""A training run directory read into a typed Run: model, steps, per-layer nnz, masks and phases.

``read_run`` reads ``trace.jsonl`` with every record checked. A torn last
record (a crash while writing it) is dropped with a warning. Any other damage,
a trace from a newer format version, a missing or corrupt mask file, or a
weight whose shape disagrees with the model in the header raises SpdfSimError
naming the file (and line) and what is wrong.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spdf_sim.errors import SpdfSimError
from spdf_sim.runs.masks import load_mask
from spdf_sim.runs.records import (
    MASK_DIR, PHASES, TRACE_FILE, TRACE_FORMAT, TRACE_VERSION, RecordError, check_model,
    check_record,
)
from workloads import ModelConfig, WorkloadError, parameters

log = logging.getLogger(__name__)

STEP_COLUMNS = ["step", "phase", "tokens", "loss", "lr", "step_time_s"]
LAYER_COLUMNS = ["step", "phase", "weight", "nnz", "size", "density"]


@dataclass(frozen=True)
class MaskRecord:
    """The masks in force for the steps of ``phase`` after ``step``: {weight name: mask key}.

    ``step`` counts the steps completed when the record was written. An empty
    mapping means no weight is masked, as after the switch to dense fine-tuning.
    """

    phase: str
    step: int
    keys: dict[str, str]
    line: int


@dataclass
class Run:
    """One training run as its trace records it; masks are loaded on first use."""

    path: Path
    header: dict
    model: ModelConfig
    steps: pd.DataFrame
    """One row per optimizer step (the resumed copy where a step was run twice)."""
    layers: pd.DataFrame
    """Per sparse weight and recorded step: nnz counted from the weight, size and density."""
    mask_records: list[MaskRecord]
    evals: pd.DataFrame
    switch_step: int | None
    finished: bool
    resumed_at: list[int]
    _masks: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def trace_path(self) -> Path:
        return self.path / TRACE_FILE

    @property
    def config(self) -> dict:
        """The run config the engine recorded in the header (empty for other writers)."""
        run = self.header.get("run")
        return run if isinstance(run, dict) else {}

    @property
    def phases(self) -> list[str]:
        """The phases that have steps, in run order."""
        present = set(self.steps["phase"])
        return [phase for phase in PHASES if phase in present]

    def phase_steps(self, phase: str) -> pd.DataFrame:
        return self.steps[self.steps["phase"] == phase]

    def tokens(self, phase: str) -> int:
        return int(self.phase_steps(phase)["tokens"].sum())

    def masks_for_step(self, phase: str, step: int) -> MaskRecord | None:
        """Return the mask record in force for ``step``, or None when its phase has none.

        That is the last record of the phase written before the step, else the
        phase's first record (a writer that records its masks only after a step).
        """
        records = [record for record in self.mask_records if record.phase == phase]
        earlier = [record for record in records if record.step < step]
        if earlier:
            return earlier[-1]
        return records[0] if records else None

    def mask(self, weight: str, key: str) -> np.ndarray:
        """Load (once) and return the bool mask ``key`` of ``weight``, shaped like the weight."""
        if (weight, key) not in self._masks:
            shape = self.weight_shapes()[weight]
            self._masks[weight, key] = load_mask(self.path / MASK_DIR / f"{key}.npy", shape, key)
        return self._masks[weight, key]

    def load_masks(self) -> None:
        """Load every mask the trace names, so that a missing or corrupt file raises now."""
        for record in self.mask_records:
            for weight, key in record.keys.items():
                self.mask(weight, key)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return {p.name: tuple(p.shape) for p in parameters(self.model)}

    def nnz_over_steps(self) -> pd.DataFrame:
        """Return density per recorded step (rows) and sparse weight (columns)."""
        if self.layers.empty:
            return pd.DataFrame()
        table = self.layers.pivot_table(index="step", columns="weight", values="density",
                                        aggfunc="last", sort=False)
        return table.sort_index()


def missing_run_dir(path: Path, hint: str = "") -> SpdfSimError:
    """Return the error for a run directory ``path`` that is a file or does not exist."""
    if path.is_file():
        return SpdfSimError(f"{path} is a file, not a run directory: give the directory "
                            f"{path.parent} that contains it")
    return SpdfSimError(f"run directory {path} not found: give a directory written by "
                        f"'spdf-sim train'{hint}")


def read_run(run_dir: str | Path) -> Run:
    """Read and check the trace of ``run_dir``; see the module docstring for what raises."""
    path = Path(run_dir)
    if not path.is_dir():
        raise missing_run_dir(path)
    trace = path / TRACE_FILE
    numbered = _parse_lines(trace)
    if not numbered:
        raise SpdfSimError(f"trace {trace} is empty: it has no header record; the run wrote "
                           f"nothing, so train it again")
    model = _read_header(trace, numbered[0][1])
    return _build_run(path, trace, numbered, model)


def _read_bytes(trace: Path) -> bytes:
    try:
        return trace.read_bytes()
    except FileNotFoundError:
        raise SpdfSimError(f"trace {trace} not found: the run directory has no trace.jsonl; "
                           f"give a directory written by 'spdf-sim train'") from None
    except OSError as error:
        raise SpdfSimError(f"trace {trace} could not be read: {error.strerror}") from None


def _parse_lines(trace: Path) -> list[tuple[int, object]]:
    """Return (line number, parsed JSON) for every line, dropping a torn last record."""
    data = _read_bytes(trace)
    # A crash can leave the file extended with zero bytes that were never written.
    stripped = data.rstrip(b"\x00")
    torn_possible = not stripped.endswith(b"\n")
    lines = stripped.split(b"\n")
    if not torn_possible:
        lines = lines[:-1]

    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line.decode("utf-8"))))
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
            # Only a record after a readable one can be torn: a bad first line is damage.
            if number == len(lines) and torn_possible and parsed:
                log.warning("trace %s: dropping a torn last record at line %d (%d bytes), "
                            "left by a run that stopped while writing it", trace, number, len(line))
                break
            raise SpdfSimError(f"{trace}:{number}: invalid JSON record ({error}); the trace is "
                               f"damaged, so restore it from a copy or re-run") from None
    if len(stripped) != len(data):
        log.warning("trace %s: dropping %d zero bytes after the last record", trace,
                    len(data) - len(stripped))
    return parsed


def _read_header(trace: Path, header) -> ModelConfig:
    if not isinstance(header, dict) or header.get("format") != TRACE_FORMAT:
        raise SpdfSimError(f"{trace}:1: not an spdf-sim trace: the first record lacks "
                           f"\"format\": \"{TRACE_FORMAT}\"")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SpdfSimError(f"{trace}:1: trace version {version!r} is invalid: expected a "
                           f"whole number >= 1")
    if version > TRACE_VERSION:
        raise SpdfSimError(f"{trace} has trace format version {version}, newer than the version "
                           f"{TRACE_VERSION} this spdf-sim reads: upgrade spdf-sim to read it")
    try:
        shape = check_model(header)
        return ModelConfig(name=str(shape.get("name") or "run"),
                           tied_embeddings=shape.get("tied_embeddings", True),
                           bias=shape.get("bias", True),
                           **{key: shape[key] for key in
                              ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab")})
    except (RecordError, WorkloadError) as error:
        raise SpdfSimError(f"{trace}:1: {error}") from None


def _build_run(path: Path, trace: Path, numbered: list, model: ModelConfig) -> Run:
    collected = _Collected(trace, model)
    for number, record in numbered[1:]:
        try:
            collected.add(check_record(record), number)
        except RecordError as error:
            raise SpdfSimError(f"{trace}:{number}: {error}") from None

    steps = collected.step_frame()
    _check_steps(trace, steps)
    return Run(path=path, header=numbered[0][1], model=model, steps=steps,
               layers=collected.layer_frame(), mask_records=collected.mask_records,
               evals=pd.DataFrame(collected.evals, columns=["phase", "step", "val_loss"]),
               switch_step=collected.switch_step, finished=collected.finished,
               resumed_at=collected.resumed_at)


class _Collected:
    """Records gathered by type; a step or layer recorded twice (a resumed run) keeps the last."""

    def __init__(self, trace: Path, model: ModelConfig) -> None:
        self.trace = trace
        self.model = model
        self.shapes = {p.name: tuple(p.shape) for p in parameters(model)}
        self.steps: dict[int, dict] = {}
        self.layers: dict[tuple[int, str], dict] = {}
        self.mask_records: list[MaskRecord] = []
        self.evals: list[tuple[str, int, float]] = []
        self.switch_step: int | None = None
        self.finished = False
        self.resumed_at: list[int] = []

    def add(self, record: dict, line: int) -> None:
        kind = record["type"]
        if kind == "step":
            self.steps[record["step"]] = record
        elif kind == "layers":
            self._add_layers(record)
        elif kind == "masks":
            self._check_weights(record["masks"], None)
            self.mask_records.append(MaskRecord(record["phase"], record["step"],
                                                dict(record["masks"]), line))
        elif kind == "eval":
            self.evals.append((record["phase"], record["step"], float(record["val_loss"])))
        elif kind == "switch":
            self.switch_step = record["step"]
        elif kind == "resume":
            self.resumed_at.append(record["step"])
            self.finished = False
        elif kind == "end":
            self.finished = True

    def _add_layers(self, record: dict) -> None:
        weights = record["weights"]
        self._check_weights(weights, {name: entry["shape"] for name, entry in weights.items()})
        for name, entry in weights.items():
            size = math.prod(entry["shape"])
            self.layers[record["step"], name] = {
                "step": record["step"], "phase": record["phase"], "weight": name,
                "nnz": entry["nnz"], "size": size, "density": entry["nnz"] / size}

    def _check_weights(self, names, shapes: dict | None) -> None:
        """Raise when a weight is not the model's, or its recorded shape is not the model's."""
        for name in names:
            expected = self.shapes.get(name)
            if expected is None or len(expected) != 2:
                raise RecordError(f"weight {name!r} is not a weight matrix of the model in the "
                                  f"header ({_describe(self.model)}); the header and the records "
                                  f"disagree")
            if shapes is not None and tuple(shapes[name]) != expected:
                raise RecordError(f"weight {name} has shape {list(shapes[name])} but the model "
                                  f"in the header ({_describe(self.model)}) gives it "
                                  f"{list(expected)}; the header and the records disagree")

    def step_frame(self) -> pd.DataFrame:
        rows = [self.steps[step] for step in sorted(self.steps)]
        return pd.DataFrame([{key: row[key] for key in STEP_COLUMNS} for row in rows],
                            columns=STEP_COLUMNS)

    def layer_frame(self) -> pd.DataFrame:
        rows = [self.layers[key] for key in sorted(self.layers, key=lambda key: key[0])]
        return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def _check_steps(trace: Path, steps: pd.DataFrame) -> None:
    """Raise when steps are missing or the phases interleave, since either would change the sums."""
    if steps.empty:
        return
    numbers = steps["step"].to_numpy()
    gaps = _gaps(numbers)
    if gaps:
        raise SpdfSimError(f"{trace}: step records are missing for steps {gaps}; the trace is "
                           f"incomplete, so its cost would be undercounted: re-run or resume "
                           f"the run")
    phase_index = steps["phase"].map(PHASES.index).to_numpy()
    if (np.diff(phase_index) < 0).any():
        first = int(numbers[1:][np.diff(phase_index) < 0][0])
        raise SpdfSimError(f"{trace}: step {first} is a {steps['phase'].iloc[first - 1]} step "
                           f"after fine-tuning began; phases must run in the order "
                           f"{', '.join(PHASES)}")


def _gaps(numbers: np.ndarray) -> str:
    """Describe the steps missing from sorted step numbers as '3, 7-9' (at most five ranges)."""
    previous = np.concatenate([[0], numbers[:-1]])
    starts, ends = previous + 1, numbers - 1
    ranges = [(int(a), int(b)) for a, b in zip(starts, ends) if a <= b]
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:5]]
    return ", ".join(text) + (", ..." if len(ranges) > 5 else "")


def _describe(model: ModelConfig) -> str:
    return (f"n_layer {model.n_layer}, d_model {model.d_model}, d_ff {model.d_ff}, "
            f"vocab {model.vocab}, context {model.context}")
