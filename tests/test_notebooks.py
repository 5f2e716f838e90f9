"""Every report notebook executed for real (papermill, the project kernel, nbconvert) on a small
warehouse; the bad-parameter reports show one message instead of a traceback.

Each notebook runs once, in a module-scoped fixture; the tests read the executed notebooks and
their HTML. One test opens an HTML report in headless Chromium (Debian's `chromium` package)
and checks that Plotly drew its SVG.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

import ratelab
from ratelab.report_runner import list_reports, run_report
from ratelab.watch import run_watch

DAY = {"start": "2026-11-02", "end": "2026-11-03"}

# Vendor carrier_x charges more for the USA (0.012) than acme pays (0.010): a loss maker.
VENDOR_DECK_V2 = """prefix,destination,rate,increment,effective_from
44,United Kingdom,0.0150,1/1,2026-01-01
447,United Kingdom - Mobile,0.0240,1/1,2026-01-01
1,USA,0.0120,6/6,2026-01-01
"""


@dataclass
class Run:
    notebook: nbformat.NotebookNode
    html: str
    path: Path


def their_csv(wh: ratelab.Warehouse, path: Path) -> Path:
    """The vendor's CDR file: our answered calls, one dropped, one re-priced, one extra."""
    ours = wh.sql("""
        SELECT c.callee_e164 AS callee, c.start_ts, c.duration_ms, r.cost
        FROM cdrs c JOIN rated r USING (cdr_seq)
        WHERE r.vendor = 'carrier_x' AND c.duration_ms > 0
        ORDER BY c.start_ts, c.cdr_id""")
    lines = ["callee,start_time,duration_s,amount"]
    for index, (callee, start, duration_ms, cost) in enumerate(ours.iter_rows()):
        if index == 0:
            continue  # only ours
        amount = cost + 1 if index == 1 else cost  # a deviation
        lines.append(f"{callee},{start:%Y-%m-%dT%H:%M:%S.%f}Z,{-(-duration_ms // 1000)},{amount}")
    lines.append("4420000000,2026-11-02T23:59:00Z,60,0.015000")  # only theirs
    path.write_text("\n".join(lines) + "\n")
    return path


CASES: dict[str, tuple[str, dict[str, str]]] = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("notebooks")
    wh = ratelab.sample_warehouse(cdrs=240, rated=True, directory=root / "wh")
    deck = root / "vend_x_v2.csv"
    deck.write_text(VENDOR_DECK_V2)
    wh.import_deck(deck, "vend_x", "vendor")
    wh.rate()
    theirs = their_csv(wh, root / "theirs.csv")
    # the watch page reads what `ratelab watch` stored
    watched = run_watch(wh, now=datetime(2026, 11, 3, 0, 5))
    warehouse = str(wh.path)
    cases = {
        "daily_report": ("daily_report", DAY),
        "margin_by_destination": ("margin_by_destination", DAY),
        "vendor_scorecard": ("vendor_scorecard", {**DAY, "vendor": "carrier_x"}),
        "rate_deviation": ("rate_deviation", DAY),
        "break_even": ("break_even", {**DAY, "fixed_costs": "0.05"}),
        "auto_create_rates": ("auto_create_rates", {"vendor_table": "vend_x", "margin": "0.2",
                                                    "out": str(root / "cust_auto.csv")}),
        "reconciliation": ("reconciliation", {**DAY, "vendor": "carrier_x",
                                              "their_csv": str(theirs)}),
        "what_if": ("what_if", {**DAY, "vendor": "carrier_x", "change_pct": "-10"}),
        "compare": ("compare", {"period_a_start": "2026-11-02", "period_a_end": "2026-11-02T12:00",
                                "period_b_start": "2026-11-02T12:00",
                                "period_b_end": "2026-11-03", "by": "destination"}),
        "compare_defaults": ("compare", {}),
        "watch": ("watch", {"now": "2026-11-03T00:05"}),
        "watch_quiet": ("watch", {"now": "2026-10-01T00:00", "hours": "24"}),
        "watch_bad": ("watch", {"severity": "urgent"}),
        # bad parameters: the report says what is wrong
        "bad_date": ("daily_report", {"start": "2026-11-31", "end": ""}),
        "unknown_vendor": ("vendor_scorecard", {**DAY, "vendor": "0044"}),
        "no_calls": ("margin_by_destination", {"start": "2026-10-01", "end": "2026-10-08"}),
        "compare_bad_period": ("compare", {"period_b_start": "2026-11-03",
                                           "period_b_end": "2026-11-02"}),
        "compare_no_calls": ("compare", {"period_a_end": "2026-10-01",
                                         "period_b_end": "2026-10-08"}),
    }
    out = root / "reports"
    done = {}
    for key, (name, params) in cases.items():
        paths = run_report(name, {"warehouse": warehouse, **params}, out)
        done[key] = Run(nbformat.read(paths.notebook, as_version=4),
                        paths.html.read_text(encoding="utf-8"), paths.html)
    done["_root"] = root  # type: ignore[assignment]
    done["_watched"] = watched  # type: ignore[assignment]
    return done


def errors(nb: nbformat.NotebookNode) -> list[str]:
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"{output.ename}: {output.evalue}")
            if output.output_type == "stream" and output.name == "stderr":
                found.append(output.text)
    return found


def markdown_outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.data["text/markdown"] for cell in nb.cells
                     for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {}))


def plot_count(html: str) -> int:
    return html.count("Plotly.newPlot(")


GOOD = {
    # report: trace or axis names that must be in its HTML, and how many charts it draws
    "daily_report": (['"waterfall"', '"heatmap"', '"ASR carrier_x"', '"profit"'], 4),
    "margin_by_destination": (['"waterfall"', '"heatmap"', '"USA"'], 3),
    "vendor_scorecard": (['"ASR"', '"ACD"', '"attempts"', "carrier_x"], 1),
    "rate_deviation": (['"USA \\u00b7 carrier_x"', '"loss"'], 1),
    "break_even": (['"cumulative profit"', '"fixed costs"'], 1),
    "auto_create_rates": ([], 0),
    "reconciliation": (['"calls per status"', '"deviation"', '"only_theirs"'], 1),
    "what_if": (['"profit before"', '"profit after"'], 1),
    "compare": (['"waterfall"', '"volume"', '"mix"', '"price"', '"profit change"'], 2),
    "watch": (['"revenue"', '"cost"', '"profit"', '"critical from"', "loss_maker"], 2),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_report_runs_without_errors_and_embeds_its_charts(runs: dict[str, Run],
                                                          name: str) -> None:
    run = runs[name]
    assert errors(run.notebook) == []
    assert "This report cannot run" not in run.html
    assert "No calls in this period" not in run.html
    names, charts = GOOD[name]
    for text in names:
        assert text in run.html, text
    assert plot_count(run.html) == charts
    # plotly.js itself is embedded once (offline) where there are charts; no code cells
    assert run.html.count("plotly.js v") == (1 if charts else 0)
    assert "page.guard()" not in run.html and "import plotly" not in run.html
    assert not re.search(r"<script[^>]+src=[\"']https?://[^\"']*plot", run.html)


def test_parameters_reach_the_notebook_as_strings(runs: dict[str, Run]) -> None:
    cell = next(c for c in runs["unknown_vendor"].notebook.cells
                if "injected-parameters" in c.metadata.get("tags", []))
    assert "vendor = \"0044\"" in cell.source or "vendor = '0044'" in cell.source


def test_daily_report_shows_every_section(runs: dict[str, Run]) -> None:
    text = markdown_outputs(runs["daily_report"].notebook)
    for heading in ("## Settlement", "## Margin by destination", "### Margin by customer",
                    "### Margin by vendor", "## Top loss makers",
                    "### Loss makers, last 30 days", "## Rate-plan leaks",
                    "## Quality by vendor", "## Profit by destination, last 7 days"):
        assert heading in text
    assert "**Period:** 2026-11-02 00:00 to 2026-11-03 00:00 UTC" in text
    assert "acme" in runs["daily_report"].html  # the margin by customer table
    # vend_x v2 sells the USA at 0.012 to acme's 0.010: the leak check lists it with its loss
    assert "**1 leak(s)**, 0.81 USD lost in the last 30 days." in text
    leak_table = runs["daily_report"].html.split("Rate-plan leaks")[-1].split("Quality by")[0]
    assert re.search(r"<td>acme</td><td>1</td><td>USA</td>.*<td>carrier_x</td>", leak_table)
    # the sample warehouse's CDRs are generated: the report must say so, for the period and
    # again for the heatmap's seven days
    assert text.count("**SYNTHETIC DATA:**") == 2


def test_compare_shows_every_section_and_finds_the_data(runs: dict[str, Run]) -> None:
    text = markdown_outputs(runs["compare"].notebook)
    for heading in ("## Headline", "## What changed the profit", "## By destination",
                    "## Profit change by destination"):
        assert heading in text
    assert "**Period a:** 2026-11-02..2026-11-02 12:00 · **period b:** 2026-11-02 12:00.." \
           "2026-11-03 (UTC, end exclusive)" in text
    assert text.count("**SYNTHETIC DATA:**") == 2 and "profit change: price" in runs["compare"].html
    # no dates: the latest week with calls (the sample's 2026-11-02) against the week before
    defaults = markdown_outputs(runs["compare_defaults"].notebook)
    assert "**Period a:** 2026-10-20..2026-10-27 · **period b:** 2026-10-27..2026-11-03" in defaults
    assert errors(runs["compare_defaults"].notebook) == []
    assert plot_count(runs["compare_defaults"].html) == 2


def test_auto_create_rates_writes_the_deck(runs: dict[str, Run]) -> None:
    deck = runs["_root"] / "cust_auto.csv"  # type: ignore[operator]
    assert deck.read_text().splitlines()[0].startswith("prefix,destination,rate")
    assert "Customer rates for a 20 % margin over vend_x" in runs["auto_create_rates"].html


@pytest.mark.parametrize("case, message", [
    ("bad_date", "start &#x27;2026-11-31&#x27; is not a date|start '2026-11-31' is not a date"),
    ("unknown_vendor", "unknown vendor &#x27;0044&#x27;; known: carrier_x|"
                       "unknown vendor '0044'; known: carrier_x"),
    ("no_calls", "No calls in this period"),
    ("compare_bad_period", "period b: the period is empty: start 2026-11-03 00:00"),
    ("compare_no_calls", "No calls in either period"),
])
def test_bad_parameters_show_a_message_not_a_traceback(runs: dict[str, Run], case: str,
                                                       message: str) -> None:
    run = runs[case]
    assert errors(run.notebook) == []
    assert re.search(message, run.html), run.path
    assert re.search(message.split("|")[-1].replace("&#x27;", "'"),
                     markdown_outputs(run.notebook).replace("\\", ""))
    assert "Traceback" not in run.html
    assert plot_count(run.html) == 0


def test_watch_page_shows_the_stored_findings(runs: dict[str, Run]) -> None:
    watched = runs["_watched"]
    kinds = {str(f.kind) for f in watched.findings}  # type: ignore[attr-defined]
    # the sample's trouble: the USA sold below cost, and one call to Jamaica (1876)
    assert kinds == {"loss_maker", "high_risk"}, kinds
    run = runs["watch"]
    text = markdown_outputs(run.notebook)
    assert "## By severity and kind" in text and "## Findings" in text
    assert "### Loss maker" in text and "### High risk" in text
    for finding in watched.findings:  # type: ignore[attr-defined]
        assert finding.id in run.html
        for key, value in finding.numbers.items():  # exact, as the engine wrote them
            assert f"{key} {value}" in run.html, (key, value)
    # the page only reads: nothing new was stored while it ran
    assert ratelab.connect(runs["watch"].path.parent.parent / "wh" / "warehouse.duckdb",
                           read_only=True).sql(
        "SELECT count(*) AS n FROM watch_findings")["n"][0] == len(watched.findings)  # type: ignore[attr-defined]


def test_watch_page_without_findings_says_so_and_exits_0(runs: dict[str, Run]) -> None:
    run = runs["watch_quiet"]
    assert errors(run.notebook) == []
    assert "**No findings** in these hours" in markdown_outputs(run.notebook)
    assert "This report cannot run" not in run.html and plot_count(run.html) == 0
    bad = runs["watch_bad"]
    assert "unknown severity &#x27;urgent&#x27;" in bad.html or \
        "unknown severity 'urgent'" in bad.html


def test_every_report_notebook_is_covered() -> None:
    assert {info.name for info in list_reports()} == set(GOOD)


CHROMIUM_HINT = ("headless Chromium is needed to check that the report charts draw: "
                 "apt-get install -y chromium (Debian's package; .ci/run installs it)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(CHROMIUM_HINT)


def test_report_html_draws_its_charts_in_a_browser(runs: dict[str, Run]) -> None:
    browser = chromium()
    run = runs["daily_report"]
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--user-data-dir=" + str(run.path.parent / "chromium-profile"),
         "--virtual-time-budget=5000", "--dump-dom", run.path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # what the browser drew, without the scripts (plotly.js itself names its classes)
    dom = re.sub(r"<script\b[^>]*>.*?</script>", "", result.stdout, flags=re.DOTALL)
    charts = GOOD["daily_report"][1]
    assert dom.count('class="plot-container plotly"') == charts, dom[-2000:]
    assert dom.count('class="main-svg"') >= charts
    assert dom.count('class="gtitle"') == charts
    for drawn in ("waterfalllayer", "heatmaplayer", 'class="trace bars"', "scatterlayer"):
        assert drawn in dom, drawn
    assert 'data-unformatted="Profit by destination and day"' in dom
