"""Replay a run's trace through the simulator: each step's cost from its real masks and tokens.

Steps that share a phase, a mask record and a token count cost the same, so
each such group is timed once per machine and multiplied by its step count.
Which weights are zero in a step comes from the masks in force:

- a phase with mask records is costed from the masks (an empty record, as
  after the switch, means dense);
- a phase with no mask record at all (a writer that stores only counts) is
  costed from the nnz of its nearest earlier layers record;
- fine-tuning steps without masks are dense even while some weights are
  still exactly zero, because nothing tells the machine ahead of time which
  weights the optimizer leaves at zero.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import pandas as pd

from spdf_sim import engines
from spdf_sim.errors import SpdfSimError
from spdf_sim.flops import DEFAULT_CONVENTION, Convention, get_convention, op_flops, ops_frame
from spdf_sim.projection import (
    DEFAULT_REFERENCE_GPU, MachineResult, Projection, resolve_machines, step_work,
)
from spdf_sim.runs.run import Run, read_run
from spdf_sim.sparsity import SparsityPlan, dense_plan
from workloads import build_step_graph


@dataclass
class StepGroup:
    """Steps of one phase that share a sparsity plan and a token count."""

    phase: str
    plan: SparsityPlan
    tokens_per_step: int
    steps: int
    step_numbers: list[int] = field(default_factory=list)
    flops_per_step: float = 0.0
    dense_flops_per_step: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    dense_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunMachineResult(MachineResult):
    """A MachineResult that stays defined for a run without pre-training steps (a fine-tuning run)."""

    @property
    def speedup(self) -> float:
        return self.dense_pretrain_s / self.pretrain_s if self.pretrain_s else math.nan


@dataclass
class RunProjection(Projection):
    """A Projection whose FLOPs and seconds are sums over a run's recorded steps.

    ``plan``, ``ops`` and the per-step figures describe the step group that
    holds most pre-training tokens; the phase totals cover every step.
    """

    run: Run | None = field(default=None, repr=False)
    groups: list[StepGroup] = field(default_factory=list, repr=False)

    def phase_flops(self, phase: str, dense: bool = False) -> float:
        return float(sum(g.steps * (g.dense_flops_per_step if dense else g.flops_per_step)
                         for g in self.groups if g.phase == phase))

    @property
    def pretrain_flops(self) -> float:
        return self.phase_flops("pretrain")

    @property
    def dense_pretrain_flops(self) -> float:
        return self.phase_flops("pretrain", dense=True)

    @property
    def finetune_flops(self) -> float:
        return self.phase_flops("finetune")

    @property
    def pretrain_reduction(self) -> float:
        return self.dense_pretrain_flops / self.pretrain_flops if self.pretrain_flops else math.nan

    def phase_table(self) -> pd.DataFrame:
        """Return one row per phase: steps, tokens, FLOPs (as run and dense) and seconds per machine."""
        rows = []
        for phase in ("pretrain", "finetune"):
            groups = [g for g in self.groups if g.phase == phase]
            if not groups:
                continue
            row = {"phase": phase, "steps": sum(g.steps for g in groups),
                   "tokens": sum(g.steps * g.tokens_per_step for g in groups),
                   "flops": self.phase_flops(phase), "dense_flops": self.phase_flops(phase, True)}
            for name in self.hardware:
                row[f"{name}_s"] = sum(g.steps * g.seconds[name] for g in groups)
                row[f"{name}_dense_s"] = sum(g.steps * g.dense_seconds[name] for g in groups)
            rows.append(row)
        return pd.DataFrame(rows).set_index("phase")

    def step_costs(self) -> pd.DataFrame:
        """Return one row per step: phase, tokens, FLOPs (as run and dense) and seconds per machine."""
        rows = []
        for group in self.groups:
            row = {"phase": group.phase, "tokens": group.tokens_per_step,
                   "flops": group.flops_per_step, "dense_flops": group.dense_flops_per_step}
            for name in self.hardware:
                row[f"{name}_s"] = group.seconds[name]
                row[f"{name}_dense_s"] = group.dense_seconds[name]
            rows += [{"step": step, **row} for step in group.step_numbers]
        return pd.DataFrame(rows).sort_values("step").set_index("step")

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["run"] = {"path": str(self.run.path), "finished": self.run.finished,
                       "steps": len(self.run.steps), "resumed_at": list(self.run.resumed_at)}
        data["phases"] = self.phase_table().reset_index().to_dict(orient="records")
        return data


def project_run(run_dir, hw="cs2-like", *, convention: str | Convention = DEFAULT_CONVENTION,
                fidelity: str | None = None, gpu_sparsity: str = "unstructured",
                micro_batch: int | None = None, stream_format: str | None = None,
                recompute: bool = False, reference_gpu: str | None = DEFAULT_REFERENCE_GPU,
                run: Run | None = None) -> RunProjection:
    """Project every recorded step of ``run_dir`` on each machine of ``hw``, beside the same run dense.

    The model shape, masks, phases and tokens come from the trace; the other
    keywords mean what they mean for ``project()``. Pass ``run`` to reuse a
    Run already read.
    """
    run = run or read_run(run_dir)
    if run.steps.empty:
        raise SpdfSimError(f"{run.trace_path} has no step records: the run stopped before its "
                           f"first step, so there is nothing to project")
    convention = get_convention(convention)
    machines = resolve_machines(hw)
    if reference_gpu is not None and reference_gpu not in [m.name for m in machines]:
        machines += resolve_machines(reference_gpu)

    groups = group_steps(run)
    options = {"gpu_sparsity": gpu_sparsity, "micro_batch": micro_batch,
               "stream_format": stream_format, "recompute": recompute}
    timings = {}
    for group in groups:
        timings[id(group)] = _cost_group(run, group, convention, machines, options, fidelity)
    main = _main_group(groups)
    return _assemble(run, groups, main, timings[id(main)], convention, machines, reference_gpu,
                     fidelity, options)


def group_steps(run: Run) -> list[StepGroup]:
    """Split the run's steps into groups that share phase, plan and tokens per step."""
    groups: dict[tuple, StepGroup] = {}
    plans: dict[tuple, SparsityPlan] = {}
    for phase in run.phases:
        counts = _layer_counts(run, phase)
        steps = run.phase_steps(phase)
        for step, tokens in zip(steps["step"].tolist(), steps["tokens"].tolist()):
            source, plan_key = _plan_source(run, phase, step, counts)
            if plan_key not in plans:
                plans[plan_key] = _build_plan(run, source)
            key = (phase, plan_key, tokens)
            if key not in groups:
                groups[key] = StepGroup(phase, plans[plan_key], tokens, 0)
            groups[key].steps += 1
            groups[key].step_numbers.append(step)
    return list(groups.values())


def _layer_counts(run: Run, phase: str) -> dict[int, tuple]:
    """Return {recorded step: sorted (weight, nnz, size) tuples} of the phase's layers records."""
    layers = run.layers[run.layers["phase"] == phase]
    return {int(step): tuple(sorted(zip(rows["weight"], rows["nnz"], rows["size"])))
            for step, rows in layers.groupby("step")}


def _plan_source(run: Run, phase: str, step: int, counts: dict[int, tuple]):
    """Return what fixes the zeros of ``step`` (a mask record, nnz counts, or nothing) and a key for it."""
    record = run.masks_for_step(phase, step)
    if record is not None:
        if not record.keys:
            return None, ("dense",)
        return record, ("masks", tuple(sorted(record.keys.items())))
    if phase == "finetune" or not counts:
        return None, ("dense",)

    # The counts in force are those of the last layers record before the step,
    # else the phase's first record.
    recorded = sorted(counts)
    position = bisect.bisect_left(recorded, step) - 1
    chosen = counts[recorded[max(position, 0)]]
    return chosen, ("counts", chosen)


def _build_plan(run: Run, source) -> SparsityPlan:
    if source is None:
        return dense_plan()
    if isinstance(source, tuple):
        return SparsityPlan(nnz={name: int(nnz) for name, nnz, _ in source},
                            sizes={name: int(size) for name, _, size in source},
                            description=f"nnz counts recorded in {run.trace_path}")
    masks = {weight: run.mask(weight, key) for weight, key in source.keys.items()}
    nnz = {name: int(mask.sum()) for name, mask in masks.items()}
    sizes = {name: int(mask.size) for name, mask in masks.items()}
    sparsity = 1.0 - sum(nnz.values()) / sum(sizes.values())
    return SparsityPlan(nnz=nnz, sizes=sizes,
                        description=f"masks of run {run.name}: sparsity {sparsity:.4g} over "
                                    f"{len(masks)} weights", masks=masks)


def _cost_group(run: Run, group: StepGroup, convention: Convention, machines, options: dict,
                fidelity: str | None) -> tuple:
    """Fill the group's FLOPs and seconds per step; return its (sparse, dense) timings per machine."""
    if run.model.is_gpt and group.tokens_per_step % run.model.context:
        raise SpdfSimError(f"{run.trace_path}: a {group.phase} step has {group.tokens_per_step} "
                           f"tokens, not a multiple of the context {run.model.context} in the "
                           f"header: the projection costs whole sequences")
    ops = ops_frame(build_step_graph(run.model, group.tokens_per_step))
    group.flops_per_step = float(op_flops(ops, group.plan, convention).sum())
    group.dense_flops_per_step = float(op_flops(ops, dense_plan(), convention).sum())

    sparse_work = step_work(run.model, group.plan, group.tokens_per_step, options)
    dense_work = step_work(run.model, dense_plan(), group.tokens_per_step, options)
    timings = {}
    for machine in machines:
        timing = engines.time_step(machine, sparse_work, fidelity)
        dense_timing = engines.time_step(machine, dense_work, fidelity)
        group.seconds[machine.name] = timing.seconds
        group.dense_seconds[machine.name] = dense_timing.seconds
        timings[machine.name] = (timing, dense_timing)
    return timings


def _main_group(groups: list[StepGroup]) -> StepGroup:
    """Return the group with the most pre-training tokens (or, with none, the most tokens)."""
    pretrain = [g for g in groups if g.phase == "pretrain"] or groups
    return max(pretrain, key=lambda g: g.steps * g.tokens_per_step)


def _assemble(run: Run, groups: list[StepGroup], main: StepGroup, main_timings: dict,
              convention: Convention, machines, reference_gpu, fidelity, options) -> RunProjection:
    ops = ops_frame(build_step_graph(run.model, main.tokens_per_step))
    tokens = {phase: sum(g.steps * g.tokens_per_step for g in groups if g.phase == phase)
              for phase in ("pretrain", "finetune")}
    projection = RunProjection(
        model=run.model, plan=main.plan, convention=convention, tokens=tokens["pretrain"],
        finetune_tokens=tokens["finetune"], tokens_per_step=main.tokens_per_step, ops=ops,
        flops_per_step=op_flops(ops, main.plan, convention),
        dense_flops_per_step=op_flops(ops, dense_plan(), convention),
        reference_gpu=reference_gpu or "", run=run, groups=groups,
        settings={"hw": [m.name for m in machines],
                  "tokens": max(tokens["pretrain"], main.tokens_per_step),
                  "finetune_tokens": tokens["finetune"], "convention": convention,
                  "batch_size": main.tokens_per_step // run.model.context, "context": None,
                  "fidelity": fidelity, "reference_gpu": reference_gpu, **options})

    for machine in machines:
        timing, dense_timing = main_timings[machine.name]
        projection.hardware[machine.name] = RunMachineResult(
            name=machine.name, kind=machine.kind, step_s=timing.seconds,
            dense_step_s=dense_timing.seconds,
            pretrain_s=_phase_seconds(groups, "pretrain", machine.name),
            finetune_s=_phase_seconds(groups, "finetune", machine.name),
            dense_pretrain_s=_phase_seconds(groups, "pretrain", machine.name, dense=True),
            timing=timing, dense_timing=dense_timing)
    projection.assumptions = _assumptions(run, groups, projection, machines)
    return projection


def _phase_seconds(groups: list[StepGroup], phase: str, machine: str, dense: bool = False) -> float:
    return float(sum(g.steps * (g.dense_seconds if dense else g.seconds)[machine]
                     for g in groups if g.phase == phase))


def _assumptions(run: Run, groups: list[StepGroup], projection: RunProjection, machines) -> list[str]:
    convention = projection.convention
    finished = "finished" if run.finished else "not finished (the steps recorded so far)"
    lines = [
        f"replay of {run.trace_path}: {len(run.steps)} steps, run {finished}",
        f"FLOP convention {convention.name!r}: {convention.summary} (source: {convention.source})",
        f"pre-training tokens {projection.tokens:.4g}; fine-tuning tokens "
        f"{projection.finetune_tokens:.4g}",
        "each step costed from the masks in force at that step; steps without masks are dense",
    ]
    lines += [f"{g.phase}: {g.steps} steps of {g.tokens_per_step} tokens, {g.plan.description}"
              for g in groups]
    for machine in machines:
        lines += [f"{machine.name}: {key} = {value}" for key, value in machine.assumptions().items()]
    return lines

