"""Simulator figures: the tokens-per-step sweep and the step timeline."""

import pytest

from spdf_sim import project
from spdf_sim.report_sim import stream_bound_tokens, timeline_figure, tokens_sweep, tokens_sweep_figure


@pytest.fixture(scope="module")
def projection():
    return project("gpt3-125m", 0.75, hw="cs2-like", reference_gpu=None)


def test_sweep_stream_bound_at_small_batch(projection):
    sweep = tokens_sweep(projection, batch_sizes=(1, 1024))
    assert sweep["stream_share"][0] == 1.0
    assert stream_bound_tokens(sweep) >= 2048


def test_sweep_figure_has_traces(projection):
    figure = tokens_sweep_figure(projection, batch_sizes=(1, 16))
    assert len(figure.data) == 3


def test_timeline_figure_bars(projection):
    timing = projection.hardware["cs2-like"].timing
    figure = timeline_figure(timing)
    assert sum(len(trace.x) for trace in figure.data) == len(timing.ops)


def test_timeline_needs_simulator():
    analytic = project("gpt3-125m", 0.75, hw="cs2-like", fidelity="analytic", reference_gpu=None)
    with pytest.raises(ValueError, match="no timeline"):
        timeline_figure(analytic.hardware["cs2-like"].timing)
