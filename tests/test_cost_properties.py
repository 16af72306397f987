"""Property-based tests of the analytic cost model (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spdf_sim
from spdf_sim.sparsity import ERK, make_plan
from workloads import ModelConfig, parameters

MACHINES = ["cs2-like", "ideal", "a100-80gb"]


@st.composite
def small_gpts(draw):
    n_head = draw(st.sampled_from([1, 2, 4]))
    return ModelConfig(
        name="hypothesis-gpt", n_layer=draw(st.integers(1, 4)),
        d_model=n_head * draw(st.sampled_from([8, 16, 32, 64])), n_head=n_head,
        d_ff=draw(st.sampled_from([32, 64, 256])), context=draw(st.sampled_from([16, 64, 256])),
        vocab=draw(st.integers(50, 3000)), tied_embeddings=draw(st.booleans()))


sparsities = st.floats(0.0, 0.97, allow_nan=False)
common = settings(max_examples=25, deadline=None)


def _project(config, sparsity, **kwargs):
    kwargs.setdefault("hw", MACHINES)
    kwargs.setdefault("batch_size", 4)
    return spdf_sim.project(config, sparsity, **kwargs)


@common
@given(small_gpts(), sparsities, sparsities)
def test_flops_and_time_never_rise_with_sparsity(config, first, second):
    low, high = sorted((first, second))
    dense_side, sparse_side = _project(config, low), _project(config, high)
    assert sparse_side.pretrain_flops <= dense_side.pretrain_flops
    for machine in ("cs2-like", "ideal"):
        assert sparse_side.hardware[machine].pretrain_s <= dense_side.hardware[machine].pretrain_s * (1 + 1e-12)


@common
@given(small_gpts(), sparsities)
def test_gpu_unstructured_time_ignores_sparsity(config, sparsity):
    sparse, dense = _project(config, sparsity), _project(config, 0.0)
    assert sparse.hardware["a100-80gb"].pretrain_s == pytest.approx(dense.hardware["a100-80gb"].pretrain_s, rel=1e-12)


@common
@given(small_gpts(), sparsities, st.integers(1, 10**12))
def test_flops_linear_in_tokens(config, sparsity, tokens):
    once = _project(config, sparsity, tokens=tokens, hw="ideal")
    twice = _project(config, sparsity, tokens=2 * tokens, hw="ideal")
    assert twice.pretrain_flops == pytest.approx(2 * once.pretrain_flops, rel=1e-12)


@common
@given(small_gpts())
def test_sparsity_zero_equals_dense(config):
    projection = _project(config, 0.0)
    assert projection.pretrain_flops == projection.dense_pretrain_flops
    for result in projection.hardware.values():
        assert result.pretrain_s == pytest.approx(result.dense_pretrain_s, rel=1e-12)


@common
@given(small_gpts(), sparsities)
def test_reduction_bounded_by_inverse_density(config, sparsity):
    projection = _project(config, sparsity, hw="ideal")
    assert projection.pretrain_reduction <= 1.0 / (1.0 - sparsity) * (1 + 1e-9)


@common
@given(small_gpts(), sparsities, st.sampled_from(list(spdf_sim.CONVENTIONS)))
def test_op_flops_add_up_to_total(config, sparsity, convention):
    projection = _project(config, sparsity, hw="ideal", convention=convention)
    per_step = projection.op_table()["flops"].sum()
    assert per_step * projection.tokens / projection.tokens_per_step == pytest.approx(projection.pretrain_flops, rel=1e-12)


@common
@given(small_gpts(), st.floats(0.0, 0.99))
def test_erk_nonzero_count_hits_target(config, sparsity):
    plan = make_plan(config, ERK(sparsity))
    sparse_size = sum(p.size for p in parameters(config) if p.sparse_ok)
    assert plan.sparse_nnz == round((1.0 - sparsity) * sparse_size)
    assert all(0 <= plan.nnz[name] <= plan.sizes[name] for name in plan.nnz)
