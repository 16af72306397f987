"""The run config of ``spdf-sim train``: TOML sections as dataclasses, and ``--set`` overrides.

Every key of the file and of ``--set key=value`` is checked against the
dataclass fields below: an unknown key or a value of the wrong type raises
SpdfSimError naming the file (and line) or the override, and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import torch

import hwmodels
from spdf_sim.errors import SpdfSimError
from workloads import ModelConfig, WorkloadError, get_preset


@dataclass
class ModelSection:
    """The GPT's shape: a preset name, explicit fields, or a preset with some fields replaced."""

    preset: str = ""
    name: str = ""
    n_layer: int | None = None
    d_model: int | None = None
    n_head: int | None = None
    d_ff: int | None = None
    context: int | None = None
    vocab: int | None = None
    tied_embeddings: bool = True
    bias: bool = True
    dropout: float = 0.0


@dataclass
class SparsitySection:
    """Sparsity of pre-training: the sparse weights, their level and the mask kind.

    ``level`` applies to every SPDF weight (Q, K, V, attention output, both FFN
    matrices); ``globs`` ({name glob: sparsity}) replaces it when given. ``mask``
    is random (the default), erk or magnitude. ``seed`` defaults to the run's seed.
    """

    level: float = 0.0
    globs: dict[str, float] = field(default_factory=dict)
    mask: str = "random"
    seed: int | None = None


@dataclass
class PhaseSection:
    """One training phase: step count, warm-up plus cosine LR schedule, and batch shape.

    A step is one optimizer update over ``batch_size * grad_accum`` sequences per
    process. Defaults follow the Cerebras Model Zoo GPT-3 125M SPDF recipe
    (peak LR 6e-4 decaying to 6e-5, weight decay 0.1).
    """

    steps: int = 0
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup: int = 0
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.1


@dataclass
class DataSection:
    """Sources of the token streams.

    ``format`` is synthetic (a seeded Markov chain, no files), text (a UTF-8
    file read as bytes, so vocab must be at least 256), npy (a 1D array of
    token ids) or corpus (a text file, a folder of .txt files or a JSONL file,
    encoded with a BPE tokeniser; an empty ``pretrain`` reads CPython's
    documentation text). ``finetune`` defaults to the ``pretrain`` file; the
    last ``val_fraction`` of each stream is held out for the validation loss.

    With format corpus, ``tokenizer`` is a folder with tokenizer.json or
    GPT-2's vocab.json and merges.txt; empty trains a byte-level BPE of
    ``model.vocab`` tokens and saves it in out_dir. ``task`` (e2e, webnlg or
    dart) fine-tunes on the task's ``task_train`` split and validates on
    ``task_val``, read from ``task_root`` (empty: $SPDF_SIM_DATA).
    """

    format: str = "synthetic"
    pretrain: str = ""
    finetune: str = ""
    val_fraction: float = 0.1
    eval_batches: int = 10
    tokenizer: str = ""
    task: str = ""
    task_root: str = ""
    task_train: str = "train"
    task_val: str = "dev"


@dataclass
class RunConfig:
    """A whole training run: model, sparsity, both phases, data and run settings."""

    model: ModelSection = field(default_factory=ModelSection)
    sparsity: SparsitySection = field(default_factory=SparsitySection)
    pretrain: PhaseSection = field(default_factory=PhaseSection)
    finetune: PhaseSection = field(default_factory=PhaseSection)
    data: DataSection = field(default_factory=DataSection)
    seed: int = 1337
    out_dir: str = "runs/run"
    log_interval: int = 10
    trace_interval: int = 10
    checkpoint_interval: int = 100
    bf16: bool = False
    device: str = "cpu"
    gpu: str = "a100-80gb"

    def model_config(self) -> ModelConfig:
        """Build the ModelConfig: the preset (if any) with every explicitly given field replaced."""
        section = self.model
        explicit = {key: getattr(section, key)
                    for key in ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab")
                    if getattr(section, key) is not None}
        try:
            if section.preset:
                base = get_preset(section.preset)
                return dataclasses.replace(base, name=section.name or base.name, **explicit,
                                           tied_embeddings=section.tied_embeddings, bias=section.bias)
            missing = [key for key in ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab")
                       if key not in explicit]
            if missing:
                raise SpdfSimError(f"model section is missing {', '.join(missing)}: give a preset "
                                   f"name or all six shape fields")
            return ModelConfig(name=section.name or "custom", tied_embeddings=section.tied_embeddings,
                               bias=section.bias, **explicit)
        except WorkloadError as error:
            raise SpdfSimError(str(error)) from None

    def sparsity_spec(self):
        """Return the sparsity as make_plan takes it: a float, or the {glob: sparsity} mapping."""
        return dict(self.sparsity.globs) if self.sparsity.globs else self.sparsity.level

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML run config, apply ``KEY=VALUE`` overrides (dotted keys), and type-check every key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpdfSimError(f"config file {path} could not be read: {error.strerror}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpdfSimError(f"{path}: invalid TOML: {error}") from None

    origins: dict[str, str] = {}
    for override in overrides:
        key, value = parse_override(override)
        _set_dotted(table, key, value, f"--set {override}")
        origins[key] = f"--set {override}"
    return config_from_dict(table, source=str(path), text=text, origins=origins)


def config_from_dict(table: dict, source: str = "<dict>", text: str = "",
                     origins: dict[str, str] | None = None) -> RunConfig:
    """Build a RunConfig from nested dicts, raising on the first unknown key or wrong type."""
    where = _Where(source, text, origins or {})
    run = _build(RunConfig, table, "", where)
    _check_values(run, where)
    return run


MASK_KINDS = ("random", "erk", "magnitude")
DATA_FORMATS = ("synthetic", "text", "npy", "corpus")
TASKS = ("e2e", "webnlg", "dart")


def _check_values(run: RunConfig, where: _Where) -> None:
    """Raise on the first value that has the right type but is out of range."""
    def fail(key: str, value, expected: str) -> None:
        raise SpdfSimError(f"{where.describe(key)}: {key} = {value!r} is invalid: {expected}")

    for name in ("pretrain", "finetune"):
        phase = getattr(run, name)
        for key in ("steps", "warmup"):
            if getattr(phase, key) < 0:
                fail(f"{name}.{key}", getattr(phase, key), "give a whole number >= 0")
        for key in ("batch_size", "grad_accum"):
            if getattr(phase, key) < 1:
                fail(f"{name}.{key}", getattr(phase, key), "give a whole number >= 1")
        for key in ("lr", "min_lr", "weight_decay"):
            if not getattr(phase, key) >= 0:
                fail(f"{name}.{key}", getattr(phase, key), "give a number >= 0")
    for key in ("log_interval", "trace_interval", "checkpoint_interval"):
        if getattr(run, key) < 1:
            fail(key, getattr(run, key), "give a whole number of steps >= 1")
    if run.sparsity.mask not in MASK_KINDS:
        fail("sparsity.mask", run.sparsity.mask, f"give one of {', '.join(MASK_KINDS)}")
    for glob, level in [("level", run.sparsity.level), *run.sparsity.globs.items()]:
        if not 0.0 <= level < 1.0:
            key = "sparsity.level" if glob == "level" else f"sparsity.globs.{glob}"
            fail(key, level, "give the fraction of weights that are zero, in [0, 1)")
    if run.data.format not in DATA_FORMATS:
        fail("data.format", run.data.format, f"give one of {', '.join(DATA_FORMATS)}")
    if not 0.0 < run.data.val_fraction < 1.0:
        fail("data.val_fraction", run.data.val_fraction, "give a fraction in (0, 1)")
    if run.data.format in ("text", "npy") and not run.data.pretrain:
        fail("data.pretrain", run.data.pretrain, f"give a file path for format {run.data.format!r}")
    if run.data.task and run.data.task not in TASKS:
        fail("data.task", run.data.task, f"give one of {', '.join(TASKS)}, or \"\" to fine-tune "
                                         f"on the pre-training text")
    for key in ("task", "tokenizer"):
        if getattr(run.data, key) and run.data.format != "corpus":
            fail(f"data.{key}", getattr(run.data, key), "set data.format = \"corpus\" to use it")
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", run.device):
        fail("device", run.device, "give 'cpu', 'cuda' or 'cuda:N'")
    if run.device.startswith("cuda") and not torch.cuda.is_available():
        fail("device", run.device, "this torch build sees no CUDA device: give 'cpu'")
    gpus = [name for name in hwmodels.available() if hwmodels.load(name).kind == "gpu"]
    if run.gpu not in gpus and not (run.gpu.endswith(".json") and Path(run.gpu).is_file()):
        fail("gpu", run.gpu, f"give one of {', '.join(gpus)}, or a machine description .json file")


def parse_override(override: str) -> tuple[str, object]:
    """Split ``KEY=VALUE`` and parse VALUE as a TOML value; a bare word is taken as a string."""
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpdfSimError(f"override {override!r} is invalid: write KEY=VALUE, such as "
                           f"pretrain.steps=100")
    if key not in valid_keys():
        raise SpdfSimError(_unknown_key_message(key, f"--set {override}"))
    try:
        return key, tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key, raw.strip()


def valid_keys(cls=RunConfig, prefix: str = "") -> list[str]:
    """List every dotted key a run config accepts, sections included."""
    keys = []
    for item in dataclasses.fields(cls):
        key = prefix + item.name
        keys.append(key)
        kind = typing.get_type_hints(cls)[item.name]
        if dataclasses.is_dataclass(kind):
            keys += valid_keys(kind, key + ".")
    return keys


@dataclass
class _Where:
    source: str
    text: str
    origins: dict[str, str]

    def describe(self, key: str) -> str:
        """Name where ``key`` was set: the override, or the file and line."""
        if key in self.origins:
            return self.origins[key]
        name = re.escape(key.rsplit(".", 1)[-1])
        for number, line in enumerate(self.text.splitlines(), start=1):
            if re.match(rf'\s*("?){name}\1\s*=|\s*\[{re.escape(key)}\]', line):
                return f"{self.source}:{number}"
        return self.source


def _build(cls, table, prefix: str, where: _Where):
    if not isinstance(table, dict):
        raise SpdfSimError(f"{where.describe(prefix.rstrip('.'))}: {prefix.rstrip('.')} must be a "
                           f"table of keys, not {table!r}")
    hints = typing.get_type_hints(cls)
    names = {item.name for item in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        dotted = prefix + key
        if key not in names:
            raise SpdfSimError(_unknown_key_message(dotted, where.describe(dotted)))
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = _build(kind, value, dotted + ".", where)
        else:
            values[key] = _check_type(dotted, value, kind, where)
    return cls(**values)


def _check_type(key: str, value, kind, where: _Where):
    """Return ``value`` if it has type ``kind`` (an int is accepted as a float), else raise."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    for option in options:
        if option is type(None) and value is None:
            return value
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is dict and isinstance(value, dict):
            return {str(name): _check_type(f"{key}.{name}", item, typing.get_args(option)[1], where)
                    for name, item in value.items()}
    expected = " or ".join(_type_name(option) for option in options if option is not type(None))
    raise SpdfSimError(f"{where.describe(key)}: {key} = {value!r} has the wrong type: expected "
                       f"{expected}, got {_type_name(type(value))}")


def _type_name(kind) -> str:
    if typing.get_origin(kind) is dict:
        return "a table of numbers"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             dict: "a table", list: "an array"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _unknown_key_message(key: str, where: str) -> str:
    keys = valid_keys()
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}: unknown config key {key!r}{hint}. Valid keys: {', '.join(keys)}"


def _set_dotted(table: dict, key: str, value, where: str) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise SpdfSimError(f"{where}: {part} is not a table, so {key} cannot be set")
    table[parts[-1]] = value
