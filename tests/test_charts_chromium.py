"""The labels are drawn, not only set: headless Chromium (Debian's `chromium` package, as in
tests/test_notebooks.py) opens a daily report of a warehouse with generated CDRs on 2 Nov and
real calls on 5 Nov, and a figure written to HTML, and the tests read the SVG Plotly drew:
the shaded span over the generated buckets (and not over the real ones), its legend entry and
the currency in the money axes' titles.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import ratelab
from ratelab import charts
from ratelab.report_runner import run_report
from tests.helpers import contract_cdr, write_jsonl
from tests.test_charts_polish import quality
from tests.test_notebooks import chromium

SHADE = "fill: rgb(142, 68, 173)"  # charts.SYNTHETIC_FILL, as the browser writes it


def dump_dom(page: Path, profile: Path) -> str:
    """What Chromium drew for ``page``, without the scripts (plotly.js names its classes)."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", f"--user-data-dir={profile}", "--window-size=1000,2000",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return re.sub(r"<script\b[^>]*>.*?</script>", "", result.stdout, flags=re.DOTALL)


def shaded_paths(dom: str) -> list[tuple[float, float]]:
    """The x extent of every shape path drawn in the synthetic colour."""
    spans = []
    for d, style in re.findall(r'<path data-index="\d+"[^>]* d="([^"]+)" style="([^"]+)"', dom):
        if SHADE in style:
            xs = [float(v) for v in re.findall(r"[MH](-?[\d.]+)", d)]
            spans.append((min(xs), max(xs)))
    return spans


def plots(dom: str) -> list[str]:
    """The DOM of each drawn chart."""
    return dom.split('class="plot-container plotly"')[1:]


def svg_width(plot: str) -> float:
    found = re.search(r'<svg class="main-svg"[^>]* width="([\d.]+)"', plot)
    assert found, plot[:500]
    return float(found.group(1))


@pytest.fixture(scope="module")
def report_dom(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("chromium")
    wh = ratelab.sample_warehouse(cdrs=80, rated=True, directory=root / "wh")  # 2 Nov
    write_jsonl(root / "real" / "acme.jsonl", [
        contract_cdr("r1", "442071234567", "2026-11-05T12:00:00Z", 390000),
        contract_cdr("r2", "442071234568", "2026-11-05T13:00:00Z", 400000),
    ])
    wh.ingest(root / "real")
    wh.rate()
    paths = run_report("daily_report", {"warehouse": str(wh.path), "start": "2026-11-02",
                                        "end": "2026-11-06"}, root / "reports")
    return dump_dom(paths.html, root / "profile")


def test_the_report_shades_generated_days_and_says_so_in_the_legend(report_dom: str) -> None:
    drawn = plots(report_dom)
    assert len(drawn) == 3  # waterfall, quality, heatmap (nothing lost money: no loss chart)
    legend = 'class="legendtext"[^>]*data-unformatted="generated \\(synthetic\\) data"'
    shaded_charts = [p for p in drawn if shaded_paths(p)]
    # the ASR/ACD chart (2 Nov generated, 5 Nov real) and the 7-day heatmap
    assert len(shaded_charts) == 2
    for plot in shaded_charts:
        assert re.search(legend, plot), plot[-1500:]
        assert 'class="shape-label-text" data-unformatted="generated"' in plot
        # one span, over part of the chart: the real day stays unshaded
        (x0, x1), = shaded_paths(plot)
        assert 0 < x1 - x0 < svg_width(plot) / 2
    assert "scatterlayer" in shaded_charts[0] and "heatmaplayer" in shaded_charts[1]
    # the waterfall (totals) has nothing to shade
    assert not shaded_paths(drawn[0]) and "waterfalllayer" in drawn[0]


def test_the_report_names_the_currency_on_money_axes(report_dom: str) -> None:
    assert 'class="ytitle"' in report_dom
    assert re.search(r'class="ytitle"[^>]*data-unformatted="amount \(USD\)"', report_dom)
    # the heatmap's scale: profit in USD; empty cells have their own legend note
    assert 'data-unformatted="profit (USD)"' in report_dom
    assert re.search(r'class="legendtext"[^>]*data-unformatted="no calls \(empty cell\)"',
                     report_dom)


def test_a_figure_written_to_html_draws_the_shading_and_the_currency(tmp_path: Path) -> None:
    hours = [datetime(2026, 11, 2, h) for h in range(4)]
    asr = charts.asr_acd_timeseries(quality(hours), synthetic=hours[2:])
    what = charts.what_if_chart(pl.DataFrame({"destination": ["UK", "USA"],
                                              "profit_before": [1.0, 2.0],
                                              "profit_after": [0.5, 2.5]}), currency="EUR")
    page = tmp_path / "figures.html"
    page.write_text(asr.to_html(include_plotlyjs=True, full_html=True, include_mathjax=False)
                    .replace("</body>", what.to_html(include_plotlyjs=False, full_html=False)
                             + "</body>"), encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    first, second = plots(dom)
    (x0, x1), = shaded_paths(first)
    # the last two of four buckets: the right half of the plot area, not the left
    assert 0 < x1 - x0 < svg_width(first) / 2 and x0 > svg_width(first) / 3
    assert re.search(r'class="legendtext"[^>]*data-unformatted="generated \(synthetic\) data"',
                     first)
    assert re.search(r'class="ytitle"[^>]*data-unformatted="profit \(EUR\)"', second)
    assert not shaded_paths(second)
