"""FLOPs of Hugging Face GPT-2 counted by torch's FlopCounterMode against the analytic model."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import spdf_sim  # noqa: E402
from workloads import from_hf_config  # noqa: E402

SIZES = [  # (n_layer, n_embd, n_head, n_positions, vocab)
    (2, 64, 4, 32, 500),
    (3, 128, 4, 64, 1000),
    (4, 192, 6, 128, 2048),
]


def _counted(model, batch, backward):
    tokens = torch.randint(0, model.config.vocab_size, (batch, model.config.n_positions))
    counter = FlopCounterMode(display=False)
    with counter:
        output = model(tokens, labels=tokens)
        if backward:
            output.loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("n_layer, n_embd, n_head, n_positions, vocab", SIZES)
def test_hf_gpt2_matches_flop_counter(n_layer, n_embd, n_head, n_positions, vocab):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                                     n_positions=n_positions, vocab_size=vocab)
    model = transformers.GPT2LMHeadModel(config)
    batch = 2
    projection = spdf_sim.project(from_hf_config(model), 0.0, hw="ideal", batch_size=batch,
                                  tokens=batch * n_positions, convention="spdf")

    forward = projection.dense_forward_flops_per_token * batch * n_positions
    assert forward == pytest.approx(_counted(model, batch, backward=False), rel=0.01)
    assert projection.dense_pretrain_flops == pytest.approx(_counted(model, batch, backward=True),
                                                            rel=0.01)
