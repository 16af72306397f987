"""The projection's HTML report and its CLI flag."""

import re

import spdf_sim
from spdf_sim.cli import main


def test_html_report_is_self_contained(tmp_path):
    path = tmp_path / "report.html"
    spdf_sim.project("gpt3-125m", 0.75, hw=["cs2-like", "a100-80gb"]).to_html(path)
    text = path.read_text()
    assert "<script src=\"http" not in text
    assert re.search(r"plotly\.js v\d", text)
    assert text.count("Plotly.newPlot") >= 2
    assert r"1 \u002f density" in text  # plotly escapes "/" in its JSON


def test_cli_writes_html(tmp_path, capsys):
    path = tmp_path / "out.html"
    assert main(["project", "gpt2-small", "--sparsity", "0.5", "--html", str(path)]) == 0
    assert path.stat().st_size > 100_000
    assert f"report written to {path}" in capsys.readouterr().out


def test_summary_names_assumptions():
    text = spdf_sim.project("gpt3-xl", 0.75, hw="cs2-like").summary()
    assert "assumptions:" in text
    assert "mesh_rows" in text
    assert "micro-batch" in text
