import math

import pytest
import torch

from spdf_sim.training.engine import lr_at, progress_line
from spdf_sim.training.masks import canonical_parameters
from spdf_sim.training.speedup import plan_from_masks, projected_speedup
from spdf_sim.training.trace import read_trace


def test_lr_warmup_then_cosine(tiny_config):
    phase = tiny_config().pretrain  # lr 3e-3, min_lr 3e-4, warmup 4, 20 steps
    assert lr_at(0, phase) == pytest.approx(3e-3 / 4)
    assert lr_at(3, phase) == pytest.approx(3e-3)
    assert lr_at(12, phase) == pytest.approx(3e-4 + 0.5 * (3e-3 - 3e-4))
    assert lr_at(20, phase) == pytest.approx(3e-4)


def test_weight_decay_skips_vectors(tiny_trainer, tiny_config):
    trainer = tiny_trainer(tiny_config())
    decayed, plain = trainer.optimizer.param_groups
    assert decayed["weight_decay"] == 0.1
    assert plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert all(p.dim() == 1 for p in plain["params"])


def test_optimizer_recipe(tiny_trainer, tiny_config):
    defaults = tiny_trainer(tiny_config()).optimizer.defaults
    assert defaults["betas"] == (0.9, 0.95)
    assert defaults["eps"] == 1e-8


def test_grad_accum_counts_tokens(tiny_config, tiny_trainer, tmp_path):
    run = tiny_config(pretrain={"steps": 4, "grad_accum": 3}, finetune={"steps": 0})
    tiny_trainer(run, tmp_path).train()
    steps = [r for r in read_trace(tmp_path) if r["type"] == "step"]
    assert [r["tokens"] for r in steps] == [3 * 4 * 16] * 4


def test_bf16_keeps_masks_zero(tiny_config, tiny_trainer):
    trainer = tiny_trainer(tiny_config(bf16=True, finetune={"steps": 0}))
    result = trainer.train()
    params = canonical_parameters(trainer.model)
    assert all(math.isfinite(loss) for loss in result.losses)
    for name, mask in trainer.masks.masks.items():
        assert torch.count_nonzero(params[name][~mask]) == 0, name


def test_erk_run_counts_match_plan(tiny_config, tiny_trainer):
    trainer = tiny_trainer(tiny_config(sparsity={"level": 0.75, "mask": "erk"}))
    assert trainer.masks.nnz() == trainer.plan.nnz
    assert len(set(trainer.plan.densities.values())) > 1


def test_failed_run_marked_failed(tiny_config, tiny_trainer, tmp_path):
    trainer = tiny_trainer(tiny_config(), tmp_path)

    def broken_batch():
        raise RuntimeError("reader crashed")

    trainer.sources.pretrain.next_batch = broken_batch
    with pytest.raises(RuntimeError, match="reader crashed"):
        trainer.train()
    assert '"state": "failed"' in (tmp_path / "status.json").read_text()


def test_speedup_from_real_masks(tiny_config, tiny_trainer):
    trainer = tiny_trainer(tiny_config())
    config = trainer.config
    sparse = projected_speedup(config, plan_from_masks(trainer.masks.masks), 4, "a100-80gb")
    dense = projected_speedup(config, plan_from_masks({}), 4, "a100-80gb")
    assert sparse.vs_dense > 1.0
    assert dense.vs_dense == pytest.approx(1.0)


def test_progress_line_shows_speedups():
    from spdf_sim.training.speedup import StepSpeedup

    line = progress_line("pretrain", 2.5, 12345.0, StepSpeedup(2.25, 3.5), "a100-80gb")
    assert "loss 2.5000" in line
    assert "12,345 tok/s" in line
    assert "cs2-like vs dense 2.25x" in line
    assert "vs a100-80gb 3.50x" in line
