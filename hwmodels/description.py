"""Loading and validating machine descriptions."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

MACHINES_DIR = Path(__file__).parent / "machines"
KINDS = ("wafer", "gpu", "ideal")

# Numbers each kind of machine must describe; engines read nothing else.
REQUIRED = {
    "ideal": ("peak_flops",),
    "gpu": ("peak_flops", "peak_flops_2to4", "memory_bandwidth", "bytes_per_value",
            "max_matmul_efficiency", "efficiency_half_dim", "memory_efficiency",
            "sparse_kernel_min_sparsity", "sparse_kernel_efficiency"),
    "wafer": ("cores", "mesh_rows", "mesh_cols", "clock_hz", "simd_width", "peak_flops",
              "sram_bytes", "io_bandwidth", "bytes_per_value", "index_bytes",
              "axpy_overhead_cycles", "hop_cycles", "activation_bytes_per_token_per_d",
              "sram_fraction_for_activations", "attention_efficiency", "elementwise_efficiency",
              "memoryx_bandwidth", "optimizer_bytes_per_param", "core_queue_depth",
              "embedding_efficiency"),
}


class MachineError(ValueError):
    """An unknown machine name or an invalid description. spdf_sim re-raises it as SpdfSimError."""


@dataclass(frozen=True)
class MachineDescription:
    """A machine: its kind and its numbers, each with the source it came from.

    A source that starts with "assumption" marks a number that was chosen, not
    published; the projection prints those.
    """

    name: str
    kind: str
    summary: str
    values: dict[str, float | str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str):
        try:
            return self.values[key]
        except KeyError:
            raise MachineError(f"machine {self.name!r} has no number {key!r}") from None

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def source(self, key: str) -> str:
        return self.sources.get(key, "")

    def assumptions(self) -> dict[str, str]:
        """Return the numbers that were chosen rather than published, with their reasons."""
        return {key: f"{self.values[key]} ({source})" for key, source in self.sources.items()
                if source.lower().startswith("assumption")}

    def with_values(self, **overrides) -> "MachineDescription":
        """Return a copy with some numbers replaced, each marked as a user override."""
        unknown = sorted(set(overrides) - set(self.values))
        if unknown:
            raise MachineError(
                f"machine {self.name!r} has no number(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.values))}"
            )
        values = {**self.values, **overrides}
        sources = {**self.sources, **{key: "assumption: user override" for key in overrides}}
        return replace(self, values=values, sources=sources)


def available() -> list[str]:
    """Return the names of the built-in machines."""
    return sorted(path.stem for path in MACHINES_DIR.glob("*.json"))


def load(name: str) -> MachineDescription:
    """Load a built-in machine by name, or a description file by path."""
    if isinstance(name, MachineDescription):
        return name
    path = MACHINES_DIR / f"{name}.json"
    if path.is_file():
        return load_file(path)
    if str(name).endswith(".json") and Path(name).is_file():
        return load_file(Path(name))
    known = available()
    lowered = {item.lower(): item for item in known}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.4)
    hint = f"; did you mean {lowered[close[0]]!r}?" if close else "."
    raise MachineError(f"unknown machine {name!r}{hint} Known: {', '.join(known)}")


def load_file(path: Path | str) -> MachineDescription:
    """Parse and validate one machine description file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise MachineError(f"{path}: cannot read machine description: {error}") from None

    kind = data.get("kind")
    if kind not in KINDS:
        raise MachineError(f"{path}: kind {kind!r} is invalid: give one of {', '.join(KINDS)}")

    values, sources = {}, {}
    for key, entry in data.get("numbers", {}).items():
        if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
            raise MachineError(f"{path}: number {key!r} needs a value and a source")
        value = entry["value"]
        if isinstance(value, (int, float)) and (not math.isfinite(value) or value < 0):
            raise MachineError(f"{path}: number {key!r}={value!r} is invalid: give a finite value >= 0")
        values[key], sources[key] = value, entry["source"]

    missing = [key for key in REQUIRED[kind] if key not in values]
    if missing:
        raise MachineError(f"{path}: a {kind} machine needs the numbers {', '.join(missing)}")
    return MachineDescription(name=data.get("name", path.stem), kind=kind,
                              summary=data.get("summary", ""), values=values, sources=sources)
