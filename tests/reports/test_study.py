"""The study command on a tiny config: killed midway, run again, it finishes without redoing work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from spdf_sim import project
from spdf_sim.errors import SpdfSimError
from spdf_sim.study import load_study_config

from .helpers import run_cli

TINY_CONFIG = Path(__file__).with_name("study-tiny.toml")
SMALL_CONFIG = Path(__file__).resolve().parents[2] / "spdf_sim" / "configs" / "study-small.toml"


def data_folder() -> Path:
    """Return $SPDF_SIM_DATA, else the shared data folder beside the repository."""
    if os.environ.get("SPDF_SIM_DATA"):
        return Path(os.environ["SPDF_SIM_DATA"])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def study_command(out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "spdf_sim.study", str(TINY_CONFIG), "--out-dir", str(out_dir),
            "--data-root", str(data_folder())]


def has_steps(trace: Path) -> bool:
    return trace.exists() and '"type":"step"' in trace.read_text()


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """Start the tiny study, kill it inside the second pre-training run, then run it to the end."""
    if not (data_folder() / "e2e").is_dir():
        pytest.skip(f"data folder {data_folder()} has no e2e/: set SPDF_SIM_DATA to the folder "
                    f"holding e2e/, dart/ and tinyshakespeare/")
    out = tmp_path_factory.mktemp("study")
    first = subprocess.Popen(study_command(out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    # The limits only catch a hang: the tiny study takes seconds on an idle
    # machine, but minutes where other jobs share the cores.
    deadline = time.monotonic() + 900
    try:
        while not has_steps(out / "pretrain-s75" / "trace.jsonl") and first.poll() is None:
            assert time.monotonic() < deadline, "the study never reached its second run"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    dense_trace = out / "pretrain-s00" / "trace.jsonl"
    before = dense_trace.stat().st_mtime_ns

    second = subprocess.run(study_command(out), capture_output=True, text=True, timeout=1800)
    return {"out": out, "result": second, "dense_mtime": before,
            "dense_trace": dense_trace}


def test_study_finishes_after_kill(tiny_study):
    assert tiny_study["result"].returncode == 0, tiny_study["result"].stderr[-2000:]


def test_finished_run_not_redone(tiny_study):
    assert tiny_study["dense_trace"].stat().st_mtime_ns == tiny_study["dense_mtime"]


def test_study_table_rows(tiny_study):
    table = pd.read_csv(tiny_study["out"] / "study.csv")
    assert len(table) == 4
    assert set(table["task"]) == {"e2e", "dart"}
    assert table["bleu"].notna().all()


def test_sparse_rows_cost_less(tiny_study):
    table = pd.read_csv(tiny_study["out"] / "study.csv")
    dense = table[table["sparsity"] == 0.0]
    sparse = table[table["sparsity"] == 0.75]
    assert (sparse["pretrain_flops"].to_numpy() < dense["pretrain_flops"].to_numpy()).all()
    assert (sparse["reduction"] > 1.0).all()


def test_table_in_closing_output(tiny_study):
    stdout = tiny_study["result"].stdout
    assert "| sparsity | task | pretrain_flops" in stdout
    assert "Projected analytically at paper scale" in stdout


def test_paper_scale_rows(tiny_study):
    rows = json.loads((tiny_study["out"] / "study.json").read_text())["paper_scale"]
    assert [row["model"] for row in rows] == ["gpt3-125m", "gpt3-125m"]
    expected = project("gpt3-125m", 0.75, hw="ideal", reference_gpu=None)
    assert rows[1]["pretrain_reduction"] == pytest.approx(expected.pretrain_reduction)


def test_report_written(tiny_study):
    assert (tiny_study["out"] / "report.html").stat().st_size > 100_000
    assert (tiny_study["out"] / "report.csv").exists()


def test_resumed_run_counts_each_step_once(tiny_study):
    from spdf_sim.runs import read_run

    run = read_run(tiny_study["out"] / "pretrain-s75")
    assert run.finished
    assert run.steps["step"].tolist() == list(range(1, 9))


def test_small_config_loads():
    config = load_study_config(SMALL_CONFIG)
    assert config["sparsities"] == [0.0, 0.5, 0.75]
    assert sorted(config["tasks"]) == ["dart", "e2e", "webnlg"]


def test_config_without_dense_baseline(tmp_path):
    text = TINY_CONFIG.read_text().replace("sparsities = [0.0, 0.75]", "sparsities = [0.75]")
    (tmp_path / "study.toml").write_text(text)
    with pytest.raises(SpdfSimError, match="must include 0"):
        load_study_config(tmp_path / "study.toml")


def test_cli_missing_config(tmp_path, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["study", str(tmp_path / "absent.toml")])
    assert code == 2
    assert "could not be read" in capsys.readouterr().err


def test_missing_data_root_leaves_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code = run_cli(monkeypatch, ["study", str(TINY_CONFIG), "--out-dir", str(out),
                                 "--data-root", str(tmp_path / "absent")])
    assert code == 2
    message = capsys.readouterr().err
    assert "absent is not a folder" in message
    assert not out.exists()


def test_data_root_without_corpus_leaves_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    code = run_cli(monkeypatch, ["study", str(TINY_CONFIG), "--out-dir", str(out),
                                 "--data-root", str(tmp_path / "empty")])
    assert code == 2
    message = capsys.readouterr().err
    assert "corpus file" in message
    assert "not found" in message
    assert not out.exists()


def test_unknown_machine_rejected_before_training(tmp_path):
    text = TINY_CONFIG.read_text()
    assert "hw = [" in text
    lines = [('hw = ["cs2-like", "tpu"]' if line.startswith("hw = [") else line)
             for line in text.splitlines()]
    (tmp_path / "study.toml").write_text("\n".join(lines))
    with pytest.raises(SpdfSimError, match="study.toml: hw: unknown machine 'tpu'"):
        load_study_config(tmp_path / "study.toml")
