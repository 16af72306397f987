"""``project()``: FLOPs and time of sparse pre-training then dense fine-tuning, against dense."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import hwmodels
from spdf_sim import engines
from spdf_sim.engines import StepTiming, StepWork
from spdf_sim.errors import SpdfSimError, as_spdf_error, check_tokens
from spdf_sim.flops import DEFAULT_CONVENTION, Convention, get_convention, op_flops, ops_frame
from spdf_sim.sparsity import SparsityPlan, dense_plan, make_plan
from workloads import (
    ModelConfig, build_step_graph, chinchilla_tokens, count_parameters, from_hf_config,
    from_torch_module, get_preset, parameters,
)

DEFAULT_SPARSITY = 0.75
DEFAULT_BATCH_SIZE = 256
"""Sequences per step in the SPDF recipe (Cerebras Model Zoo: 256 x 2048 tokens)."""
DEFAULT_REFERENCE_GPU = "a100-80gb"


@dataclass
class MachineResult:
    """Time of each phase on one machine, and the speedups that follow from it."""

    name: str
    kind: str
    step_s: float
    dense_step_s: float
    pretrain_s: float
    finetune_s: float
    dense_pretrain_s: float
    timing: StepTiming = field(repr=False)
    dense_timing: StepTiming = field(repr=False)

    @property
    def speedup(self) -> float:
        """Dense pre-training time over sparse pre-training time on this machine."""
        return self.dense_pretrain_s / self.pretrain_s

    @property
    def total_s(self) -> float:
        return self.pretrain_s + self.finetune_s

    @property
    def dense_total_s(self) -> float:
        return self.dense_pretrain_s + self.finetune_s

    @property
    def total_speedup(self) -> float:
        return self.dense_total_s / self.total_s


@dataclass
class Projection:
    """FLOPs and seconds of SPDF (sparse pre-training, dense fine-tuning) beside dense pre-training."""

    model: ModelConfig
    plan: SparsityPlan
    convention: Convention
    tokens: int
    finetune_tokens: int
    tokens_per_step: int
    ops: pd.DataFrame = field(repr=False)
    flops_per_step: np.ndarray = field(repr=False)
    dense_flops_per_step: np.ndarray = field(repr=False)
    hardware: dict[str, MachineResult] = field(default_factory=dict)
    reference_gpu: str = DEFAULT_REFERENCE_GPU
    assumptions: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict, repr=False)
    """The keyword arguments project() was called with, to re-run it at other sparsities."""

    # FLOPs ---------------------------------------------------------------

    @property
    def train_flops_per_token(self) -> float:
        return float(self.flops_per_step.sum()) / self.tokens_per_step

    @property
    def dense_train_flops_per_token(self) -> float:
        return float(self.dense_flops_per_step.sum()) / self.tokens_per_step

    @property
    def forward_flops_per_token(self) -> float:
        forward = (self.ops["pass_"] == "fwd").to_numpy()
        return self._forward_only(self.flops_per_step, forward)

    @property
    def dense_forward_flops_per_token(self) -> float:
        forward = (self.ops["pass_"] == "fwd").to_numpy()
        return self._forward_only(self.dense_flops_per_step, forward)

    def _forward_only(self, flops: np.ndarray, forward: np.ndarray) -> float:
        # The recompute convention counts each forward op twice; inference runs it once.
        scale = 0.5 if self.convention.recompute else 1.0
        return float(flops[forward].sum()) * scale / self.tokens_per_step

    @property
    def pretrain_flops(self) -> float:
        return self.train_flops_per_token * self.tokens

    @property
    def dense_pretrain_flops(self) -> float:
        return self.dense_train_flops_per_token * self.tokens

    @property
    def finetune_flops(self) -> float:
        return self.dense_train_flops_per_token * self.finetune_tokens

    @property
    def pretrain_reduction(self) -> float:
        """Dense pre-training FLOPs over sparse pre-training FLOPs."""
        return self.dense_pretrain_flops / self.pretrain_flops

    @property
    def total_reduction(self) -> float:
        """Dense pre-training plus fine-tuning over SPDF's pre-training plus fine-tuning."""
        return ((self.dense_pretrain_flops + self.finetune_flops)
                / (self.pretrain_flops + self.finetune_flops))

    # Parameters -----------------------------------------------------------

    @property
    def params_total(self) -> int:
        return count_parameters(self.model)[0]

    @property
    def params_nonzero(self) -> int:
        return count_parameters(self.model, self.plan.densities)[1]

    # Tables ------------------------------------------------------------------

    def op_table(self) -> pd.DataFrame:
        """Return every op of one step with its FLOPs, sparse and dense."""
        table = self.ops[["kind", "pass_", "weight", "layer"]].copy()
        table["flops"] = self.flops_per_step
        table["dense_flops"] = self.dense_flops_per_step
        return table

    def flops_by_kind(self) -> pd.DataFrame:
        """Return training FLOPs per token by op kind, sparse and dense."""
        table = self.op_table()
        table["kind"] = np.where((table["kind"] == "matmul") & table["weight"].isin(self.plan.nnz),
                                 "sparse-eligible matmul", table["kind"])
        grouped = table.groupby("kind")[["flops", "dense_flops"]].sum() / self.tokens_per_step
        return grouped[(grouped["flops"] > 0) | (grouped["dense_flops"] > 0)]

    def layer_table(self) -> pd.DataFrame:
        """Return a row per weight matrix: shape, density, non-zeros and FLOPs per token."""
        table = self.op_table()
        table = table[table["kind"] == "matmul"]
        per_weight = table.groupby("weight", sort=False).agg(
            layer=("layer", "first"), flops=("flops", "sum"), dense_flops=("dense_flops", "sum"))
        forward = table[table["pass_"] == "fwd"].groupby("weight", sort=False)["flops"].sum()
        shapes = {p.name: p.shape for p in parameters(self.model)}
        rows = []
        for weight, row in per_weight.iterrows():
            size = int(np.prod(shapes[weight]))
            density = self.plan.density(weight)
            rows.append({
                "weight": weight, "layer": row["layer"], "shape": shapes[weight], "params": size,
                "density": density, "nnz": round(size * density),
                "forward_flops_per_token": forward.get(weight, 0.0) / self.tokens_per_step,
                "train_flops_per_token": row["flops"] / self.tokens_per_step,
                "dense_train_flops_per_token": row["dense_flops"] / self.tokens_per_step,
            })
        order = {name: i for i, name in enumerate(shapes)}
        rows.sort(key=lambda row: order[row["weight"]])
        frame = pd.DataFrame(rows).set_index("weight")
        # The embedding and head belong to no block, so their layer is <NA>, not a float NaN.
        frame["layer"] = frame["layer"].astype("Int64")
        return frame

    # Output ----------------------------------------------------------------

    def speedup_vs_gpu(self, machine: str) -> float | None:
        """Return the reference GPU's dense pre-training time over this machine's sparse one."""
        gpu = self.hardware.get(self.reference_gpu)
        if gpu is None or machine not in self.hardware:
            return None
        return gpu.dense_pretrain_s / self.hardware[machine].pretrain_s

    def to_dict(self) -> dict:
        """Return the projection as plain JSON-ready data."""
        hardware = {}
        for name, result in self.hardware.items():
            hardware[name] = {
                "kind": result.kind, "step_s": result.step_s, "dense_step_s": result.dense_step_s,
                "pretrain_s": result.pretrain_s, "finetune_s": result.finetune_s,
                "dense_pretrain_s": result.dense_pretrain_s, "speedup": result.speedup,
                "total_s": result.total_s, "dense_total_s": result.dense_total_s,
                "total_speedup": result.total_speedup,
                f"speedup_vs_{self.reference_gpu}_dense": self.speedup_vs_gpu(name),
                "details": _plain(result.timing.details),
                "bound_by_kind": result.timing.bound_by_kind(),
            }
        return {
            "model": self.model.name,
            "sparsity": {"plan": self.plan.description, "sparse_weights": len(self.plan.nnz),
                         "sparsity_over_sparse_weights": self.plan.sparsity},
            "convention": self.convention.name,
            "tokens": {"pretrain": self.tokens, "finetune": self.finetune_tokens,
                       "per_step": self.tokens_per_step},
            "flops": {
                "pretrain": self.pretrain_flops, "dense_pretrain": self.dense_pretrain_flops,
                "finetune": self.finetune_flops,
                "total": self.pretrain_flops + self.finetune_flops,
                "dense_total": self.dense_pretrain_flops + self.finetune_flops,
                "pretrain_reduction": self.pretrain_reduction,
                "total_reduction": self.total_reduction,
                "forward_per_token": self.forward_flops_per_token,
                "dense_forward_per_token": self.dense_forward_flops_per_token,
                "train_per_token": self.train_flops_per_token,
                "dense_train_per_token": self.dense_train_flops_per_token,
            },
            "params": {"total": self.params_total, "nonzero": self.params_nonzero,
                       "ratio": self.params_total / self.params_nonzero},
            "hardware": hardware,
            "assumptions": list(self.assumptions),
        }

    def summary(self) -> str:
        from spdf_sim.summary import format_summary

        return format_summary(self)

    def to_html(self, path) -> None:
        """Write a self-contained HTML report (plotly embedded, opens with no network)."""
        from spdf_sim.report import write_projection_report

        write_projection_report(self, path)

    def __str__(self) -> str:
        return self.summary()


def _plain(value):
    """Convert numpy scalars inside a details dict to Python numbers for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def resolve_model(model) -> ModelConfig:
    """Turn a preset name, ModelConfig, HF GPT2Config/model or torch module into a ModelConfig."""
    with as_spdf_error():
        if isinstance(model, ModelConfig):
            return model
        if isinstance(model, (str, os.PathLike)) and (os.sep in str(model) or os.path.exists(model)):
            from spdf_sim.runs.run import missing_run_dir

            raise missing_run_dir(Path(model), ", or a preset name (see 'spdf-sim models')")
        if isinstance(model, str):
            return get_preset(model)
        if hasattr(model, "n_embd") or hasattr(getattr(model, "config", None), "n_embd"):
            return from_hf_config(model)
        if hasattr(model, "named_modules"):
            own = getattr(model, "model_config", None)
            return own if isinstance(own, ModelConfig) else from_torch_module(model)
    raise SpdfSimError(f"model {model!r} is invalid: give a preset name, a ModelConfig, a "
                       f"Hugging Face GPT2Config or a torch module")


def resolve_machines(hw) -> list[hwmodels.MachineDescription]:
    names = [hw] if isinstance(hw, (str, hwmodels.MachineDescription)) else list(hw)
    if not names:
        raise SpdfSimError("no machine given: name at least one, e.g. hw='cs2-like'")
    with as_spdf_error():
        return [hwmodels.load(name) for name in names]


def step_work(config: ModelConfig, plan: SparsityPlan, tokens_per_step: int,
              options: dict) -> StepWork:
    """Build what the timing engines read for one step of ``config`` under ``plan``."""
    with as_spdf_error():
        ops = ops_frame(build_step_graph(config, tokens_per_step))
    work_convention = "recompute" if options.get("recompute") else "spdf"
    flops = op_flops(ops, plan, work_convention)
    dense_flops = op_flops(ops, dense_plan(), work_convention)
    density = ops["weight"].map(plan.densities).fillna(1.0).to_numpy(float)
    density = np.where(ops["kind"] == "matmul", density, 1.0)
    return StepWork(config=config, plan=plan, ops=ops, flops=flops, dense_flops=dense_flops,
                    density=density, tokens=tokens_per_step, options=options)


def project(model, sparsity=None, hw="cs2-like", *, tokens=None, finetune_tokens=None,
            convention: str | Convention = DEFAULT_CONVENTION, batch_size: int | None = None,
            context: int | None = None, fidelity: str | None = None,
            gpu_sparsity: str = "unstructured", micro_batch: int | None = None,
            stream_format: str | None = None, recompute: bool = False,
            reference_gpu: str | None = DEFAULT_REFERENCE_GPU) -> Projection:
    """Project sparse pre-training then dense fine-tuning of ``model`` against dense pre-training.

    ``model``: a run directory written by ``spdf-sim train`` (its trace is
    replayed: the sparsity, tokens, batch and context come from the run, so
    passing any of them raises), a preset name (see ``spdf-sim models``), a
    ModelConfig, a Hugging Face GPT2Config or model, or a torch module.
    ``sparsity`` (default 0.75): a float in [0, 1) applied to every weight the
    SPDF filter selects, ``ERK(s)``, a mapping of name globs to sparsity, a
    SparsityPlan, or a torch module whose zeros are measured. ``tokens``
    defaults to 20 per parameter (Chinchilla), ``finetune_tokens`` to 0 and
    ``batch_size`` to DEFAULT_BATCH_SIZE sequences.
    ``reference_gpu`` (timed dense) is what "speedup against a GPU" compares to;
    None leaves it out.
    """
    if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
        from spdf_sim.runs import project_run  # a run directory: replay its trace

        options = {"sparsity": sparsity, "tokens": tokens, "finetune_tokens": finetune_tokens,
                   "batch_size": batch_size, "context": context}
        conflicting = [name for name, value in options.items() if value is not None]
        if conflicting:
            raise SpdfSimError(f"{', '.join(conflicting)} cannot be given with run directory "
                               f"{model}: its trace sets the sparsity, tokens, batch and context")

        return project_run(model, hw=hw, convention=convention, fidelity=fidelity,
                           gpu_sparsity=gpu_sparsity, micro_batch=micro_batch,
                           stream_format=stream_format, recompute=recompute,
                           reference_gpu=reference_gpu)
    sparsity = DEFAULT_SPARSITY if sparsity is None else sparsity
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    config = resolve_model(model)
    if context is not None:
        config = config.with_context(check_tokens(context, "context"))
    plan = make_plan(config, sparsity)
    convention = get_convention(convention)
    total_params = count_parameters(config)[0]
    tokens = chinchilla_tokens(total_params) if tokens is None else check_tokens(tokens)
    finetune_tokens = check_tokens(finetune_tokens or 0, "fine-tuning tokens", minimum=0)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpdfSimError(f"batch size {batch_size!r} is invalid: give a whole number of "
                           f"sequences >= 1")
    tokens_per_step = batch_size * config.context

    machines = resolve_machines(hw)
    if reference_gpu is not None:
        reference = resolve_machines(reference_gpu)[0]
        if reference.kind != "gpu":
            raise SpdfSimError(f"reference GPU {reference.name!r} is a {reference.kind} machine: "
                               f"give a GPU such as {DEFAULT_REFERENCE_GPU!r}, or None")
        if reference.name not in [m.name for m in machines]:
            machines.append(reference)

    ops = ops_frame(_graph(config, tokens_per_step))
    projection = Projection(
        model=config, plan=plan, convention=convention, tokens=tokens,
        finetune_tokens=finetune_tokens, tokens_per_step=tokens_per_step, ops=ops,
        flops_per_step=op_flops(ops, plan, convention),
        dense_flops_per_step=op_flops(ops, dense_plan(), convention),
        reference_gpu=reference_gpu or "",
        settings={"hw": [m.name for m in machines], "tokens": tokens,
                  "finetune_tokens": finetune_tokens, "convention": convention,
                  "batch_size": batch_size, "context": context, "fidelity": fidelity,
                  "gpu_sparsity": gpu_sparsity, "micro_batch": micro_batch,
                  "stream_format": stream_format, "recompute": recompute,
                  "reference_gpu": reference_gpu},
    )

    options = {"gpu_sparsity": gpu_sparsity, "micro_batch": micro_batch,
               "stream_format": stream_format, "recompute": recompute}
    sparse_work = step_work(config, plan, tokens_per_step, options)
    dense_work = step_work(config, dense_plan(), tokens_per_step, options)
    for machine in machines:
        projection.hardware[machine.name] = _time_machine(
            machine, sparse_work, dense_work, tokens, finetune_tokens, fidelity)

    projection.assumptions = _assumptions(projection, machines)
    return projection


def _graph(config: ModelConfig, tokens_per_step: int):
    with as_spdf_error():
        return build_step_graph(config, tokens_per_step)


def _time_machine(machine, sparse_work: StepWork, dense_work: StepWork, tokens: int,
                  finetune_tokens: int, fidelity: str | None) -> MachineResult:
    """Time one sparse and one dense step, then scale each by the steps of its phase."""
    timing = engines.time_step(machine, sparse_work, fidelity)
    dense_timing = engines.time_step(machine, dense_work, fidelity)
    steps, finetune_steps = tokens / sparse_work.tokens, finetune_tokens / sparse_work.tokens
    return MachineResult(
        name=machine.name, kind=machine.kind, step_s=timing.seconds,
        dense_step_s=dense_timing.seconds, pretrain_s=timing.seconds * steps,
        finetune_s=dense_timing.seconds * finetune_steps,
        dense_pretrain_s=dense_timing.seconds * steps, timing=timing, dense_timing=dense_timing)


def _assumptions(projection: Projection, machines) -> list[str]:
    convention = projection.convention
    lines = [
        f"FLOP convention {convention.name!r}: {convention.summary} (source: {convention.source})",
        f"pre-training tokens {projection.tokens:.4g}; fine-tuning tokens "
        f"{projection.finetune_tokens:.4g} (dense); {projection.tokens_per_step} tokens per step",
        f"sparsity plan: {projection.plan.description}",
        "time per phase = time of one step x steps in the phase; fine-tuning steps are dense",
    ]
    for machine in machines:
        result = projection.hardware[machine.name]
        lines += result.timing.notes
        lines += [f"{machine.name}: {key} = {value}" for key, value in machine.assumptions().items()]
    return lines
