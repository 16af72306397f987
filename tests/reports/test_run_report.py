"""The report command: one page for several runs, and the same table as CSV and JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from spdf_sim.errors import SpdfSimError
from spdf_sim.run_report import build_report, write_report

from .helpers import run_cli


@pytest.fixture(scope="module")
def written(tiny_runs, tmp_path_factory):
    report = build_report([tiny_runs["sparse"], tiny_runs["dense"]])
    paths = write_report(report, tmp_path_factory.mktemp("report") / "report.html")
    return report, paths


def test_missing_folder_rejected(tiny_runs, tmp_path, monkeypatch, capsys):
    html_path = tmp_path / "absent" / "report.html"
    code = run_cli(monkeypatch, ["report", str(tiny_runs["sparse"]), "--html", str(html_path)])
    assert code == 2
    assert "give a path in an existing, writable folder" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


def test_table_has_row_per_run(written):
    report, _ = written
    assert report.table().index.tolist() == ["sparse-75", "dense"]


def test_csv_matches_table(written):
    report, paths = written
    table = pd.read_csv(paths["csv"], index_col="run")
    assert table["pretrain_flops"].tolist() == pytest.approx(
        report.table()["pretrain_flops"].tolist())


def test_json_matches_table(written):
    report, paths = written
    rows = json.loads(paths["json"].read_text())
    assert [row["run"] for row in rows] == ["sparse-75", "dense"]
    assert rows[0]["cs2-like_total_h"] == pytest.approx(
        report.table().loc["sparse-75", "cs2-like_total_h"], rel=1e-12)


def test_sparse_run_saves_flops(written):
    table = written[0].table()
    assert table.loc["sparse-75", "flops_reduction"] > 1.2
    assert table.loc["dense", "flops_reduction"] == pytest.approx(1.0)


def test_page_embeds_plotly(written):
    text = written[1]["html"].read_text()
    assert "Plotly.newPlot" in text
    assert "cdn.plot.ly" not in text.split("<body>")[1][:2000]


def test_default_html_in_run_dir(run_copy, monkeypatch):
    run_dir = run_copy()
    assert run_cli(monkeypatch, ["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").exists()
    assert (run_dir / "report.csv").exists()
    assert (run_dir / "report.json").exists()


def test_same_names_rejected(tiny_runs, tmp_path):
    with pytest.raises(SpdfSimError, match="share a name"):
        build_report([tiny_runs["sparse"], tiny_runs["sparse"]])
