import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.masks import MaskSet, build_plan, canonical_parameters
from spdf_sim.training.model import GPT
from workloads import ModelConfig

CONFIG = ModelConfig("t", n_layer=2, d_model=32, n_head=4, d_ff=96, context=16, vocab=50)


def masked_model(sparsity, kind="random", seed=0):
    torch.manual_seed(0)
    model = GPT(CONFIG)
    plan = build_plan(CONFIG, sparsity, kind)
    masks = MaskSet.create(model, plan, kind, seed=seed)
    masks.apply_to_weights()
    return model, plan, masks


@pytest.mark.parametrize("kind", ["random", "erk", "magnitude"])
def test_realised_sparsity_exact(kind):
    model, plan, masks = masked_model(0.75, kind)
    params = canonical_parameters(model)
    assert set(masks.masks) == set(plan.nnz)
    for name, nnz in plan.nnz.items():
        assert int(masks.masks[name].sum()) == nnz, name
        assert int(torch.count_nonzero(params[name])) == nnz, name


def test_uniform_level_per_tensor():
    _, plan, masks = masked_model(0.5)
    for name, mask in masks.masks.items():
        assert int(mask.sum()) == round(mask.numel() * 0.5), name


def test_glob_matching_nothing_raises():
    with pytest.raises(SpdfSimError, match=r"'\*\.nothing\.weight' matches no weight"):
        build_plan(CONFIG, {"*.nothing.weight": 0.5}, "random")


def test_unknown_mask_kind_raises():
    with pytest.raises(SpdfSimError, match="mask kind 'best' is invalid"):
        build_plan(CONFIG, 0.5, "best")


def test_magnitude_keeps_largest():
    model, _, masks = masked_model(0.5, "magnitude")
    torch.manual_seed(0)
    original = canonical_parameters(GPT(CONFIG))["blocks.0.mlp.fc.weight"].detach().abs()
    mask = masks.masks["blocks.0.mlp.fc.weight"]
    assert original[mask].min() >= original[~mask].max()


def test_same_seed_same_masks():
    _, _, first = masked_model(0.75, seed=7)
    _, _, second = masked_model(0.75, seed=7)
    _, _, other = masked_model(0.75, seed=8)
    for name in first.masks:
        assert torch.equal(first.masks[name], second.masks[name]), name
    assert any(not torch.equal(first.masks[n], other.masks[n]) for n in first.masks)


def test_masked_grads_zero_even_nan():
    model, _, masks = masked_model(0.5)
    params = canonical_parameters(model)
    weight = params["blocks.0.attn.q.weight"]
    weight.grad = torch.full_like(weight, float("nan"))
    masks.apply_to_grads()
    mask = masks.masks["blocks.0.attn.q.weight"]
    assert torch.count_nonzero(weight.grad[~mask]) == 0
    assert torch.isnan(weight.grad[mask]).all()


def test_weights_and_state_stay_zero(tiny_config, tiny_trainer):
    # A high LR, weight decay and momentum: any leak through AdamW would show within 200 steps.
    run = tiny_config(pretrain={"steps": 200, "lr": 1e-2, "weight_decay": 0.1})
    trainer = tiny_trainer(run)
    params = canonical_parameters(trainer.model)
    source = trainer.sources.pretrain
    for _ in range(200):
        trainer.train_step(source, run.pretrain, 1e-2)
        for name, mask in trainer.masks.masks.items():
            assert torch.count_nonzero(params[name][~mask]) == 0, name
    for name, mask in trainer.masks.masks.items():
        state = trainer.optimizer.state[params[name]]
        assert torch.count_nonzero(state["exp_avg"][~mask]) == 0, name
        assert torch.count_nonzero(state["exp_avg_sq"][~mask]) == 0, name
        assert torch.count_nonzero(state["exp_avg"][mask]) > 0, name


def test_state_masked_after_load():
    model, _, masks = masked_model(0.5)
    optimizer = torch.optim.AdamW(model.parameters())
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    optimizer.step()
    masks.apply_to_optimizer(optimizer)
    name = "blocks.1.mlp.proj.weight"
    state = optimizer.state[canonical_parameters(model)[name]]
    assert torch.count_nonzero(state["exp_avg"][~masks.masks[name]]) == 0
    assert torch.count_nonzero(state["exp_avg_sq"][~masks.masks[name]]) == 0


def test_switch_frees_masked_weights(tiny_config, tiny_trainer):
    run = tiny_config(pretrain={"steps": 10}, finetune={"steps": 5})
    trainer = tiny_trainer(run)
    masks = {name: mask.clone() for name, mask in trainer.masks.masks.items()}
    trainer.train()
    params = canonical_parameters(trainer.model)
    assert not trainer.masks.active
    for name, mask in masks.items():
        freed = params[name].detach()[~mask]
        assert torch.count_nonzero(freed) > 0.9 * freed.numel(), name


def test_dense_run_has_no_masks(tiny_config, tiny_trainer):
    trainer = tiny_trainer(tiny_config(sparsity={"level": 0.0}))
    assert not trainer.masks.active
