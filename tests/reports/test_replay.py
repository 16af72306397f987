"""Replaying a run's trace: per-phase FLOPs equal the analytic project() of the same run."""

from __future__ import annotations

import json

import pytest

from spdf_sim import project
from spdf_sim.errors import SpdfSimError
from spdf_sim.runs import project_run, read_run
from spdf_sim.runs.records import TRACE_FILE

from .helpers import run_cli

MACHINES = ["cs2-like", "a100-80gb"]


def analytic(run_dir, sparsity):
    """Project the run's model, sparsity and tokens analytically, with pre-training's batch."""
    run = read_run(run_dir)
    batch = int(run.phase_steps("pretrain")["tokens"].iloc[0]) // run.model.context
    return project(run.model, sparsity, hw=MACHINES, tokens=run.tokens("pretrain"),
                   finetune_tokens=run.tokens("finetune"), batch_size=batch)


@pytest.mark.parametrize("kind, sparsity", [("sparse", 0.75), ("dense", 0.0)])
def test_phase_flops_match_analytic(tiny_runs, kind, sparsity):
    replay = project_run(tiny_runs[kind], hw=MACHINES)
    expected = analytic(tiny_runs[kind], sparsity)
    assert replay.pretrain_flops == pytest.approx(expected.pretrain_flops, rel=0.005)
    assert replay.dense_pretrain_flops == pytest.approx(expected.dense_pretrain_flops, rel=0.005)
    assert replay.finetune_flops == pytest.approx(expected.finetune_flops, rel=0.005)


def test_report_json_matches_analytic(tiny_runs, tmp_path, monkeypatch):
    html_path = tmp_path / "report.html"
    code = run_cli(monkeypatch, ["report", str(tiny_runs["sparse"]), "--html", str(html_path)])
    assert code == 0
    row = json.loads(html_path.with_suffix(".json").read_text())[0]
    expected = analytic(tiny_runs["sparse"], 0.75)
    assert row["pretrain_flops"] == pytest.approx(expected.pretrain_flops, rel=0.005)
    assert row["finetune_flops"] == pytest.approx(expected.finetune_flops, rel=0.005)


def test_sparse_pretraining_is_cheaper(tiny_runs):
    replay = project_run(tiny_runs["sparse"], hw=MACHINES)
    assert replay.pretrain_reduction > 2.0
    assert replay.hardware["cs2-like"].speedup > 1.0


def test_phase_table_sums_steps(tiny_runs):
    replay = project_run(tiny_runs["sparse"], hw=MACHINES)
    table = replay.phase_table()
    assert table.loc["pretrain", "steps"] == 12
    assert table.loc["finetune", "steps"] == 6
    assert table.loc["pretrain", "flops"] == pytest.approx(replay.step_costs().query(
        "phase == 'pretrain'")["flops"].sum())


def test_timing_groups_by_batch(tiny_runs):
    replay = project_run(tiny_runs["sparse"], hw=MACHINES)
    assert sorted(g.tokens_per_step for g in replay.groups) == [32, 64]


def test_unfinished_run_projects_recorded_steps(run_copy):
    run_dir = run_copy()
    kept = [line for line in (run_dir / TRACE_FILE).read_text().splitlines(keepends=True)
            if '"type":"step"' not in line or int(line.split('"step":')[1].split(",")[0]) <= 5]
    kept = [line for line in kept if '"type":"end"' not in line]
    (run_dir / TRACE_FILE).write_text("".join(kept))
    replay = project_run(run_dir, hw=MACHINES)
    assert replay.tokens == 5 * 64
    assert replay.finetune_tokens == 0
    assert not replay.run.finished


def test_counts_only_trace(run_copy):
    """A writer that stores nnz counts but no masks is costed from its layers records."""
    run_dir = run_copy()
    kept = [line for line in (run_dir / TRACE_FILE).read_text().splitlines(keepends=True)
            if '"type":"masks"' not in line]
    (run_dir / TRACE_FILE).write_text("".join(kept))
    replay = project_run(run_dir, hw=MACHINES)
    assert replay.pretrain_reduction == pytest.approx(
        analytic(run_dir, 0.75).pretrain_reduction, rel=0.005)


def test_run_without_steps(run_copy):
    run_dir = run_copy()
    header = (run_dir / TRACE_FILE).read_text().splitlines(keepends=True)[0]
    (run_dir / TRACE_FILE).write_text(header)
    with pytest.raises(SpdfSimError, match="no step records"):
        project_run(run_dir)


def test_cli_bad_trace_one_line(run_copy, monkeypatch, capsys):
    run_dir = run_copy()
    (run_dir / TRACE_FILE).write_text('{"format":"spdf-sim-trace","version":99}\n')
    code = run_cli(monkeypatch, ["report", str(run_dir)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1
    assert "version 99" in error


def test_project_accepts_run_dir(tiny_runs):
    """spdf_sim.project(run_dir) hands a run directory to the replay."""
    projection = project(str(tiny_runs["sparse"]), hw=MACHINES)
    replay = project_run(tiny_runs["sparse"], hw=MACHINES)
    assert projection.pretrain_flops == replay.pretrain_flops
    assert projection.finetune_flops == replay.finetune_flops


def test_cli_run_dir_rejects_sparsity(tiny_runs, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["project", str(tiny_runs["sparse"]), "--sparsity", "0.5",
                                 "--tokens", "1e9"])
    assert code == 2
    assert "sparsity, tokens cannot be given with run directory" in capsys.readouterr().err


@pytest.mark.parametrize("given", [{"finetune_tokens": 10**6}, {"batch_size": 4}, {"context": 8}])
def test_run_dir_rejects_shape_options(tiny_runs, given):
    with pytest.raises(SpdfSimError, match=f"{next(iter(given))} cannot be given"):
        project(tiny_runs["sparse"], hw="ideal", **given)


def test_missing_run_dir_message(tmp_path):
    with pytest.raises(SpdfSimError, match="run directory .*absent not found"):
        project(str(tmp_path / "absent"))


def test_trace_file_instead_of_run_dir(tiny_runs, monkeypatch, capsys):
    trace = tiny_runs["sparse"] / TRACE_FILE
    for command in (["project", str(trace)], ["report", str(trace)]):
        assert run_cli(monkeypatch, command) == 2
        message = capsys.readouterr().err
        assert "is a file, not a run directory" in message
        assert f"give the directory {tiny_runs['sparse']} that contains it" in message
