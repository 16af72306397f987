"""Right values of the analytic cost model, each a fact that a wrong formula would break."""

import numpy as np
import pandas as pd
import pytest
import torch

import spdf_sim
from spdf_sim.sparsity import ERK, make_plan
from workloads import ModelConfig, count_parameters, from_torch_module, get_preset


def test_two_flops_per_multiply_accumulate():
    config = from_torch_module(torch.nn.Linear(3, 5, bias=False), context=7)
    projection = spdf_sim.project(config, 0.0, hw="ideal", batch_size=1, tokens=7)
    assert projection.dense_forward_flops_per_token * 7 == 2 * 7 * 3 * 5


def _attention_score_flops(projection):
    table = projection.op_table()
    return table.loc[(table["kind"] == "attention_score") & (table["pass_"] == "fwd"), "flops"].sum()


def test_double_context_quadruples_attention_scores():
    config = get_preset("gpt2-small")
    short = spdf_sim.project(config, 0.0, hw="ideal", batch_size=2)
    long = spdf_sim.project(config.with_context(2 * config.context), 0.0, hw="ideal", batch_size=2)
    assert _attention_score_flops(long) == 4 * _attention_score_flops(short)


def test_tied_head_counted_once_in_params():
    tied = get_preset("gpt2-small")
    untied = ModelConfig(**{**tied.__dict__, "tied_embeddings": False})
    assert count_parameters(untied)[0] - count_parameters(tied)[0] == tied.vocab * tied.d_model
    assert count_parameters(tied)[0] == 124_439_808  # GPT-2 small as released (Hugging Face gpt2)


def test_tied_head_counted_per_use_in_flops():
    tied = get_preset("gpt2-small")
    untied = ModelConfig(**{**tied.__dict__, "tied_embeddings": False})
    first = spdf_sim.project(tied, 0.0, hw="ideal")
    second = spdf_sim.project(untied, 0.0, hw="ideal")
    assert first.dense_forward_flops_per_token == second.dense_forward_flops_per_token
    head = 2 * tied.vocab * tied.d_model
    body = 24 * tied.n_layer * tied.d_model ** 2 + 4 * tied.n_layer * tied.context * tied.d_model
    assert first.dense_forward_flops_per_token == body + head


def _sparse_matmul_share(projection, machine, column):
    table = projection.hardware[machine].timing.ops
    dense = projection.hardware[machine].dense_timing.ops
    sparse_rows = table["weight"].isin(projection.plan.nnz) & (table["kind"] == "matmul")
    return table.loc[sparse_rows, column].sum() / dense.loc[sparse_rows, column].sum()


def test_92_percent_sparse_projects_8_percent():
    projection = spdf_sim.project("gpt3-xl", 0.92, hw=["ideal", "a100-80gb"])
    assert _sparse_matmul_share(projection, "ideal", "flops") == pytest.approx(0.08, rel=1e-6)
    assert _sparse_matmul_share(projection, "ideal", "seconds") == pytest.approx(0.08, rel=1e-6)
    assert _sparse_matmul_share(projection, "a100-80gb", "seconds") == pytest.approx(1.0, rel=1e-12)


def test_causal_halves_attention_scores():
    full = spdf_sim.project("gpt2-small", 0.5, hw="ideal", convention="spdf")
    causal = spdf_sim.project("gpt2-small", 0.5, hw="ideal", convention="causal")
    assert _attention_score_flops(causal) == _attention_score_flops(full) / 2


def test_recompute_is_four_forwards():
    projection = spdf_sim.project("gpt2-small", 0.0, hw="ideal", convention="recompute")
    assert projection.dense_train_flops_per_token == pytest.approx(4 * projection.dense_forward_flops_per_token)


def test_kaplan_is_six_n_d():
    projection = spdf_sim.project("gpt3-125m", 0.5, hw="ideal", convention="kaplan", tokens=1000 * 2048)
    assert projection.pretrain_flops == pytest.approx(6 * projection.params_nonzero * 1000 * 2048, rel=1e-9)


def test_chinchilla_counts_input_embedding():
    config = get_preset("gpt3-125m")
    spdf = spdf_sim.project(config, 0.0, hw="ideal")
    chinchilla = spdf_sim.project(config, 0.0, hw="ideal", convention="chinchilla")
    extra = chinchilla.dense_forward_flops_per_token - spdf.dense_forward_flops_per_token
    assert extra == 2 * config.vocab * config.d_model


def test_erk_dense_capacity():
    config = ModelConfig("skinny", n_layer=1, d_model=8, n_head=1, d_ff=4096, context=8, vocab=10)
    plan = make_plan(config, ERK(0.3))
    # The narrow attention matrices get ERK densities above 1, so they become dense.
    assert plan.density("blocks.0.attn.q.weight") == 1.0
    assert plan.density("blocks.0.mlp.fc.weight") < 0.7


def test_uniform_plan_exact_count():
    plan = make_plan(get_preset("gpt2-small"), 0.75)
    for name, nnz in plan.nnz.items():
        assert nnz == round(0.25 * plan.sizes[name])


def test_measured_plan_reads_zeros():
    module = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.Linear(20, 4))
    with torch.no_grad():
        module[0].weight[:5] = 0.0
    config = from_torch_module(module, context=4)
    plan = make_plan(config, module)
    assert plan.nnz["0.weight"] == 150
    assert plan.nnz["1.weight"] == 80
    assert np.array_equal(plan.masks["0.weight"], module[0].weight.detach().numpy() != 0)


def test_glob_plan_sets_matching_weights():
    plan = make_plan(get_preset("gpt2-small"), {"*.mlp.*": 0.9})
    assert plan.density("blocks.3.mlp.fc.weight") == pytest.approx(0.1, abs=1e-6)
    assert plan.density("blocks.3.attn.q.weight") == 1.0


def test_hf_config_conversion():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config()
    model_config = spdf_sim.projection.resolve_model(config)
    assert count_parameters(model_config)[0] == count_parameters(get_preset("gpt2-small"))[0]


def test_chinchilla_training_three_forwards():
    projection = spdf_sim.project("gpt3-125m", 0.0, hw="ideal", convention="chinchilla")
    assert projection.dense_train_flops_per_token == pytest.approx(3 * projection.dense_forward_flops_per_token)


def test_layer_table_layer_is_integer():
    table = spdf_sim.project("gpt2-small", 0.75, hw="ideal").layer_table()
    assert str(table["layer"].dtype) == "Int64"
    assert table.loc["blocks.11.mlp.proj.weight", "layer"] == 11
    assert pd.isna(table.loc["wte.weight", "layer"])
    assert table["nnz"].sum() < table["params"].sum()
