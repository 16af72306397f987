import math

import torch

from spdf_sim.training.model import GPT
from workloads import ModelConfig, parameters

CONFIG = ModelConfig("t", n_layer=2, d_model=32, n_head=4, d_ff=96, context=16, vocab=50)


def shapes_of(model):
    return {name: tuple(param.shape) for name, param in model.named_parameters()}


def test_names_match_op_graph():
    expected = {p.name: p.shape for p in parameters(CONFIG)}
    assert shapes_of(GPT(CONFIG)) == expected


def test_untied_head_names_match():
    config = ModelConfig("u", 1, 16, 2, 32, 8, 20, tied_embeddings=False, bias=False)
    expected = {p.name: p.shape for p in parameters(config)}
    assert shapes_of(GPT(config)) == expected


def test_loss_ignores_minus_100():
    torch.manual_seed(0)
    model = GPT(CONFIG)
    x = torch.randint(0, 50, (2, 16))
    y = x.clone()
    y[:, :8] = -100
    logits, partial = model(x, y)
    second_half = torch.nn.functional.cross_entropy(logits[:, 8:].reshape(-1, 50), x[:, 8:].reshape(-1))
    assert torch.allclose(partial, second_half)


def test_residual_init_is_scaled():
    torch.manual_seed(0)
    model = GPT(ModelConfig("w", 8, 256, 4, 1024, 8, 10))
    residual = model.blocks[0].mlp.proj.weight.std().item()
    other = model.blocks[0].mlp.fc.weight.std().item()
    assert abs(residual - 0.02 / math.sqrt(16)) < 5e-4
    assert abs(other - 0.02) < 5e-4


def test_causal_attention():
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    x = torch.randint(0, 50, (1, 16))
    changed = x.clone()
    changed[0, -1] = (x[0, -1] + 1) % 50
    logits, _ = model(x)
    logits_changed, _ = model(changed)
    assert torch.equal(logits[0, :-1], logits_changed[0, :-1])
