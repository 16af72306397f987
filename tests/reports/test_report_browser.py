"""The run report opened in headless Chromium: every plot renders with no network."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from spdf_sim.run_report import build_report, write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Flags that keep Chromium off the network (which a test must not need) and
# out of the user's profile; --virtual-time-budget lets plotly's scripts finish
# before the DOM is dumped.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000", "--dump-dom"]


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless browser test skipped: no chromium on PATH; install Debian's "
                "chromium package (apt-get install chromium), as .ci/run does")


@pytest.fixture(scope="module")
def rendered(tiny_runs, tmp_path_factory):
    """Write a two-run report and return its DOM as Chromium left it after running the scripts."""
    executable = browser()
    folder = tmp_path_factory.mktemp("browser")
    report = build_report([tiny_runs["sparse"], tiny_runs["dense"]])
    html_path = write_report(report, folder / "report.html")["html"]
    result = subprocess.run(
        [executable, *FLAGS, f"--user-data-dir={folder / 'profile'}", html_path.as_uri()],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def plots(dom: str) -> list[str]:
    """Split the DOM at each plotly plot's div; each piece starts with one plot."""
    return dom.split('class="plotly-graph-div')[1:]


def test_every_plot_present(rendered):
    # Loss, one heat map (the dense run has none), cumulative FLOPs and hours.
    assert len(plots(rendered)) == 4


def test_every_plot_drawn(rendered):
    for piece in plots(rendered):
        assert '<svg class="main-svg"' in piece[:5000]


def test_every_plot_has_data(rendered):
    for piece in plots(rendered):
        drawn = re.search(r'class="trace |class="hm"|<image', piece)
        assert drawn is not None


def test_plot_titles(rendered):
    titles = re.findall(r'class="gtitle"[^>]*>([^<]*)<', rendered)
    assert titles[0].startswith("Loss per step")
    assert sum("density of each sparse weight" in title for title in titles) == 1
    assert "Projected hours per machine" in titles


def test_dense_run_named(rendered):
    assert "Dense throughout" in rendered
    assert "dense</p>" in rendered


def test_page_needs_no_network(rendered):
    assert not re.search(r'<script[^>]+src="https?:', rendered)
