"""The SPDF training loop: sparse pre-training, the switch, dense fine-tuning.

Phases run in order. Pre-training keeps the plan's weights masked (a sparsity
of 0 gives an empty mask set, so dense pre-training is the same code). At the
switch the masks are dropped: the masked weights start at exactly zero and
train from then on. Each phase has its own AdamW (fresh moments, because the
pre-training moments of masked weights are zero and of no use for the new
objective) and its own warm-up plus cosine LR schedule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from spdf_sim.errors import SpdfSimError
from spdf_sim.training import checkpoint as ckpt
from spdf_sim.training.batches import BatchSource
from spdf_sim.training.config import PhaseSection, RunConfig
from spdf_sim.training.masks import MaskSet, build_plan, canonical_parameters
from spdf_sim.training.model import GPT
from spdf_sim.training.speedup import StepSpeedup, plan_from_masks, projected_speedup
from spdf_sim.training.trace import TRACE_FILE, TraceWriter

ADAM_BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
GRAD_CLIP = 1.0
"""AdamW betas, eps and the gradient-norm clip of the Cerebras Model Zoo GPT-3 125M SPDF recipe."""

PRETRAIN, FINETUNE = "pretrain", "finetune"
STATUS_FILE = "status.json"

log = logging.getLogger(__name__)


@dataclass
class Sources:
    """Batch sources per phase; ``val`` sources, when given, are scored at the end of their phase."""

    pretrain: BatchSource
    finetune: BatchSource | None = None
    val: dict[str, BatchSource] = field(default_factory=dict)


@dataclass
class RunResult:
    losses: list[float]
    val_loss: dict[str, float]
    step: int
    finished: bool


@dataclass
class Distributed:
    """This process's place in a data-parallel job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1: gloo on CPU, nccl on CUDA."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(device=torch.device(device))
    # NOTE: the nccl/CUDA path has not been run yet; gloo on CPU is tested.
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       device=torch.device(device))


def lr_at(step: int, phase: PhaseSection) -> float:
    """Return the LR of a phase's ``step``: linear warm-up from 0, then cosine decay to min_lr."""
    if step < phase.warmup:
        return phase.lr * (step + 1) / phase.warmup
    decay_steps = max(phase.steps - phase.warmup, 1)
    progress = min((step - phase.warmup) / decay_steps, 1.0)
    return phase.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (phase.lr - phase.min_lr)


def make_optimizer(model: torch.nn.Module, phase: PhaseSection) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices and embeddings only (not norms or biases)."""
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": phase.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=phase.lr, betas=ADAM_BETAS, eps=ADAM_EPS)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Runs both phases of one run, writing the trace, checkpoints and status to ``run_dir``.

    ``run_dir=None`` trains without writing anything (benchmarks, quick tests).
    Only rank 0 writes.
    """

    def __init__(self, run: RunConfig, sources: Sources, run_dir: str | Path | None = None,
                 resume: bool = False, trace: bool = True, progress: bool = True,
                 distributed: Distributed | None = None) -> None:
        self.run = run
        self.sources = sources
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.dist = distributed or setup_distributed(run.device)
        self.progress = progress and self.dist.is_main
        self.config = run.model_config()
        self.phases = [(PRETRAIN, run.pretrain), (FINETUNE, run.finetune)]
        self.total_steps = run.pretrain.steps + run.finetune.steps
        self.step = 0
        self.losses: list[float] = []
        self.val_loss: dict[str, float] = {}

        seed_everything(run.seed)
        self.model = GPT(self.config, dropout=run.model.dropout).to(self.dist.device)
        self.plan = build_plan(self.config, run.sparsity_spec(), run.sparsity.mask)
        self.masks = self._create_masks()
        self.optimizer = make_optimizer(self.model, run.pretrain)
        self.wrapped = self.model
        if self.dist.world_size > 1:
            self.wrapped = DistributedDataParallel(self.model)

        if resume and self._stopped_before_first_checkpoint():
            self._start_over()
            resume = False
        saved = self._load() if resume else None
        self.resumed = saved is not None
        self.checkpoint_step: int | None = saved["step"] if saved else None
        writes = self.run_dir is not None and self.dist.is_main
        if writes and not resume:
            check_new_run_dir(self.run_dir)
        self.trace = self._open_trace(saved) if writes and trace else None
        if writes:
            self._write_status("running")
        if saved is not None:
            self._restore(saved)
        self.mask_hashes: dict[str, str] = {}

    # Setup ------------------------------------------------------------------

    def _create_masks(self) -> MaskSet:
        """Mask only the weights the plan leaves with zeros, then zero them."""
        sparse_plan = plan_with_zeros(self.plan)
        masks = MaskSet.create(self.model, sparse_plan, self.run.sparsity.mask,
                               seed=self._mask_seed())
        masks.apply_to_weights()
        return masks

    def _stopped_before_first_checkpoint(self) -> bool:
        """Return whether the run directory contains a trace or status but no checkpoint."""
        if self.run_dir is None or (self.run_dir / ckpt.CHECKPOINT_FILE).exists():
            return False
        if not self.dist.is_main:
            # Rank 0 may already have cleared the trace and status, so only it decides.
            return True
        return bool(run_files(self.run_dir))

    def _start_over(self) -> None:
        """Clear a run stopped before its first checkpoint, so that it starts again at step 0."""
        status = self.run_dir / STATUS_FILE
        if status.exists() and '"finished"' in status.read_text():
            raise SpdfSimError(f"run directory {self.run_dir} contains a finished run but no "
                               f"{ckpt.CHECKPOINT_FILE}: there is nothing to resume, so set "
                               f"out_dir to a new directory")
        if self.dist.is_main:
            log.warning("%s has no %s because the run stopped before its first checkpoint: "
                        "starting again from step 0", self.run_dir, ckpt.CHECKPOINT_FILE)
            for name in (TRACE_FILE, STATUS_FILE):
                (self.run_dir / name).unlink(missing_ok=True)

    def _load(self) -> dict:
        if self.run_dir is None:
            raise SpdfSimError("resume needs a run directory")
        path = self.run_dir / ckpt.CHECKPOINT_FILE
        saved = ckpt.load_checkpoint(path)
        ckpt.check_same_shape(path, saved["model_config"], model_shape(self.config))
        return saved

    def _open_trace(self, saved: dict | None) -> TraceWriter:
        header = {"model": model_shape(self.config), "run": self.run.to_dict(),
                  "world_size": self.dist.world_size, "sparsity_plan": self.plan.description,
                  "seed": self.run.seed, "mask_seed": self._mask_seed()}
        trace = TraceWriter(self.run_dir, header)
        if saved is not None:
            trace.write({"type": "resume", "step": saved["step"]})
        return trace

    def _mask_seed(self) -> int:
        return self.run.sparsity.seed if self.run.sparsity.seed is not None else self.run.seed

    def _restore(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.step = saved["step"]
        self.losses = list(saved["losses"])
        self.val_loss = dict(saved["val_loss"])
        self.masks = MaskSet.from_state_dict(self.model, saved["masks"])
        if saved["phase"] == FINETUNE:
            self.optimizer = make_optimizer(self.model, self.run.finetune)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.masks.apply_to_weights()
        self.masks.apply_to_optimizer(self.optimizer)
        ckpt.restore_rng_states(saved["rng"])
        data = saved["data"][self.dist.rank % len(saved["data"])]
        for phase, state in data.items():
            source = getattr(self.sources, phase)
            if source is not None and state is not None:
                source.load_state_dict(state)

    # The loop ---------------------------------------------------------------

    def train(self, stop_at: int | None = None) -> RunResult:
        """Train to the end of the fine-tuning phase, or stop after global step ``stop_at``."""
        # Redirected to a file, a bar would fill it with carriage returns, so the
        # progress line is logged at each log interval instead.
        self.log_progress = self.progress and not sys.stderr.isatty()
        bar = tqdm(total=self.total_steps, initial=self.step,
                   disable=not self.progress or self.log_progress, dynamic_ncols=True)
        try:
            for phase, section in self.phases:
                start = 0 if phase == PRETRAIN else self.run.pretrain.steps
                end = start + section.steps
                if self.step >= end or (stop_at is not None and self.step >= stop_at):
                    continue
                self._run_phase(phase, section, start, end, stop_at, bar)
        except KeyboardInterrupt:
            self._write_status("stopped")
            if self.run_dir is not None and self.dist.is_main:
                if self.checkpoint_step is not None:
                    log.warning("interrupted at step %d of %d: run again with --resume to "
                                "continue from the checkpoint at step %d", self.step,
                                self.total_steps, self.checkpoint_step)
                else:
                    log.warning("interrupted at step %d of %d before the first checkpoint: "
                                "run again with --resume to start it over", self.step,
                                self.total_steps)
            raise
        except BaseException:
            self._write_status("failed")
            raise
        finally:
            bar.close()
        finished = self.step >= self.total_steps
        self._finish(finished)
        return RunResult(self.losses, self.val_loss, self.step, finished)

    def _run_phase(self, phase: str, section: PhaseSection, start: int, end: int,
                   stop_at: int | None, bar: tqdm) -> None:
        if phase == FINETUNE and self.step == start:
            self._switch(section)
        source = getattr(self.sources, phase) or self.sources.pretrain
        sequences = section.batch_size * section.grad_accum * self.dist.world_size
        speedup = self._speedup(sequences)
        if self.trace and (self.step == start or (self.masks.active and not self.mask_hashes)):
            # Masks are recorded at a phase start, and again after a resume so that
            # later layer records can name them. A stored mask file is never rewritten.
            self.mask_hashes = self.trace.masks(phase, self.step, self.masks.state_dict())
            self._trace_layers(phase)

        window_start, window_tokens = time.perf_counter(), 0
        while self.step < end and (stop_at is None or self.step < stop_at):
            lr = lr_at(self.step - start, section)
            began = time.perf_counter()
            loss = self.train_step(source, section, lr)
            # NOTE: a step is recorded as whole context-length sequences, the shape
            # the cost model prices. Fine-tuning batches padded only to their longest
            # pair hold fewer positions, so their recorded tokens are an upper bound.
            tokens = sequences * self.config.context
            self.step += 1
            self.losses.append(loss)
            window_tokens += tokens
            if self.trace:
                self.trace.step(phase, self.step, tokens, loss, lr, time.perf_counter() - began)
                if self.step % self.run.trace_interval == 0 or self.step == end:
                    self._trace_layers(phase)
            bar.update(1)
            if self.step % self.run.log_interval == 0 or self.step == end:
                rate = window_tokens / max(time.perf_counter() - window_start, 1e-9)
                line = progress_line(phase, loss, rate, speedup, self.run.gpu)
                bar.set_postfix_str(line)
                if self.log_progress:
                    log.info("step %d/%d: %s", self.step, self.total_steps, line)
                window_start, window_tokens = time.perf_counter(), 0
            if self.step % self.run.checkpoint_interval == 0 or self.step == end:
                if self.step == end:
                    self._evaluate(phase)
                self.save()

    def train_step(self, source: BatchSource, section: PhaseSection, lr: float) -> float:
        """Run one optimizer step over ``grad_accum`` micro-batches; return the mean loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.dist.device)
        for micro in range(section.grad_accum):
            x, y = source.next_batch()
            x, y = x.to(self.dist.device), y.to(self.dist.device)
            # DDP all-reduces gradients only on the last micro-batch of a step.
            is_last = micro == section.grad_accum - 1
            sync = contextlib.nullcontext()
            if self.wrapped is not self.model and not is_last:
                sync = self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    _, loss = self.wrapped(x, y)
                (loss / section.grad_accum).backward()
            total += loss.detach()

        self.masks.apply_to_grads()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.masks.after_step(self.optimizer)

        if self.dist.world_size > 1:
            # The logged loss is the mean over ranks (gloo has no AVG reduction).
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            total /= self.dist.world_size
        return total.item() / section.grad_accum

    def _autocast(self):
        return torch.autocast(device_type=self.dist.device.type, dtype=torch.bfloat16,
                              enabled=self.run.bf16)

    def _switch(self, section: PhaseSection) -> None:
        """Drop the masks and start the fine-tuning optimizer; masked weights are zero here."""
        zeros = {name: int(mask.numel() - mask.sum()) for name, mask in self.masks.masks.items()}
        self.masks.drop()
        self.optimizer = make_optimizer(self.model, section)
        if self.trace:
            self.trace.write({"type": "switch", "step": self.step, "from": PRETRAIN,
                              "to": FINETUNE, "masked_zeros": sum(zeros.values())})
        log.info("step %d: switched to dense fine-tuning; %d masked weights start at zero",
                 self.step, sum(zeros.values()))

    def _speedup(self, sequences: int) -> StepSpeedup | None:
        return projected_speedup(self.config, plan_from_masks(self.masks.masks), sequences,
                                 self.run.gpu)

    def _trace_layers(self, phase: str) -> None:
        params = canonical_parameters(self.model)
        weights = {name: params[name] for name in self.plan.nnz}
        self.trace.layers(phase, self.step, weights, self.mask_hashes if self.masks.active else {})

    @torch.no_grad()
    def _evaluate(self, phase: str) -> None:
        source = self.sources.val.get(phase)
        if source is None:
            return
        self.val_loss[phase] = evaluate_loss(self.model, source, self.run.data.eval_batches,
                                             self._autocast)
        if self.trace:
            self.trace.write({"type": "eval", "phase": phase, "step": self.step,
                              "val_loss": self.val_loss[phase]})

    # Checkpoints and status ------------------------------------------------

    def save(self) -> None:
        """Write a checkpoint of the whole run state (rank 0; every rank's data position)."""
        data = {PRETRAIN: _state(self.sources.pretrain), FINETUNE: _state(self.sources.finetune)}
        positions = [data]
        if self.dist.world_size > 1:
            positions = [None] * self.dist.world_size
            dist.all_gather_object(positions, data)
        if self.run_dir is None or not self.dist.is_main:
            return
        phase = FINETUNE if self.step > self.run.pretrain.steps else PRETRAIN
        ckpt.save_checkpoint(self.run_dir / ckpt.CHECKPOINT_FILE, {
            "model": ckpt.canonical_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "masks": self.masks.state_dict(),
            "step": self.step, "phase": phase, "losses": self.losses, "val_loss": self.val_loss,
            "rng": ckpt.rng_states(), "data": positions,
            "config": self.run.to_dict(), "model_config": model_shape(self.config),
        })
        self.checkpoint_step = self.step

    def _finish(self, finished: bool) -> None:
        if self.trace:
            if finished:
                self.trace.write({"type": "end", "step": self.step, "val_loss": self.val_loss})
            self.trace.close()
        self._write_status("finished" if finished else "stopped")

    def _write_status(self, state: str) -> None:
        """Write status.json atomically; "finished" is written last, after everything else."""
        if self.run_dir is None or not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / STATUS_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"state": state, "step": self.step,
                                         "total_steps": self.total_steps}) + "\n")
        os.replace(temporary, path)


def run_files(run_dir: Path) -> list[str]:
    """Return the names of the files in ``run_dir`` that a started run writes."""
    return [name for name in (STATUS_FILE, TRACE_FILE, ckpt.CHECKPOINT_FILE)
            if (run_dir / name).exists()]


def check_new_run_dir(run_dir: Path) -> None:
    """Raise when ``run_dir`` already contains a run, so a new run never mixes with an old one."""
    found = run_files(run_dir)
    if found:
        raise SpdfSimError(f"run directory {run_dir} already contains a run ({found[0]}): pass "
                           f"--resume to continue it, or set out_dir to a new directory")


def _state(source) -> dict | None:
    return source.state_dict() if source is not None else None


def plan_with_zeros(plan):
    """Return the plan restricted to weights it leaves with at least one zero."""
    from spdf_sim.sparsity import SparsityPlan

    names = [name for name in plan.nnz if plan.nnz[name] < plan.sizes[name]]
    return SparsityPlan(nnz={n: plan.nnz[n] for n in names}, sizes={n: plan.sizes[n] for n in names},
                        description=plan.description)


def model_shape(config) -> dict:
    return {"name": config.name, "n_layer": config.n_layer, "d_model": config.d_model,
            "n_head": config.n_head, "d_ff": config.d_ff, "context": config.context,
            "vocab": config.vocab, "tied_embeddings": config.tied_embeddings, "bias": config.bias}


def progress_line(phase: str, loss: float, tokens_per_s: float, speedup: StepSpeedup | None,
                  gpu: str) -> str:
    """Format the progress-bar postfix: loss, tokens/s and the projected step speedups."""
    line = f"{phase} loss {loss:.4f} | {tokens_per_s:,.0f} tok/s"
    if speedup is None:
        return line + " | projected speedup n/a"
    return (f"{line} | cs2-like vs dense {speedup.vs_dense:.2f}x"
            f" | vs {gpu} {speedup.vs_gpu:.2f}x")


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, source: BatchSource, batches: int,
                  autocast=contextlib.nullcontext) -> float:
    """Return the mean loss over ``batches`` batches of ``source``, in eval mode."""
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(batches):
        x, y = source.next_batch()
        device = next(model.parameters()).device
        with autocast():
            _, loss = model(x.to(device), y.to(device))
        total += loss.item()
    model.train(was_training)
    return total / batches
