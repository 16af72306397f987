"""The analytic model against the published SPDF and Cerebras figures."""

import json

import pytest

import spdf_sim
from spdf_sim.cli import main


def test_cli_gpt3_xl_pretrain_reduction(capsys):
    assert main(["project", "gpt3-xl", "--sparsity", "0.75", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # Published: 2.5x fewer pre-training FLOPs (Thangarasa et al. 2023).
    assert result["flops"]["pretrain_reduction"] == pytest.approx(2.49, abs=0.02)


def test_cli_json_has_documented_keys(capsys):
    assert main(["project", "gpt3-xl", "--sparsity", "0.75", "--hw", "cs2-like", "h100-sxm",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("pretrain", "dense_pretrain", "pretrain_reduction", "forward_per_token",
                "dense_forward_per_token"):
        assert key in result["flops"]
    for key in ("total", "nonzero"):
        assert key in result["params"]
    for machine in ("cs2-like", "h100-sxm"):
        for key in ("pretrain_s", "dense_pretrain_s", "speedup"):
            assert key in result["hardware"][machine]


def test_gpt3_xl_pruned_inference_ratio():
    projection = spdf_sim.project("gpt3-xl", 0.838, hw="ideal")
    # Cerebras blog on iterative pruning: 3x fewer inference FLOPs, 4.3x fewer parameters.
    ratio = projection.dense_forward_flops_per_token / projection.forward_flops_per_token
    assert ratio == pytest.approx(3.02, abs=0.05)


def test_gpt3_xl_pruned_parameter_ratio():
    projection = spdf_sim.project("gpt3-xl", 0.838, hw="ideal")
    assert projection.params_total / projection.params_nonzero == pytest.approx(4.34, abs=0.03)


def test_gpt3_xl_dense_pretrain_flops():
    projection = spdf_sim.project("gpt3-xl", 0.0, hw="ideal", tokens=26.3e9)
    # About 2.39e20 by the SPDF convention; 6·N·D gives 2.08e20.
    assert projection.dense_pretrain_flops == pytest.approx(2.39e20, rel=0.01)
    kaplan = spdf_sim.project("gpt3-xl", 0.0, hw="ideal", tokens=26.3e9, convention="kaplan")
    assert kaplan.dense_pretrain_flops == pytest.approx(2.08e20, rel=0.01)


def test_chinchilla_default_tokens():
    projection = spdf_sim.project("gpt3-xl", 0.75, hw="ideal")
    assert projection.tokens == 20 * projection.params_total
