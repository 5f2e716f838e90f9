"""The end-to-end demo, run twice for real in a subprocess on a temporary warehouse and spool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ratelab.cli.output import SYNTHETIC_BANNER
from tests.helpers import count, query

TITLES = ("Margin by customer, USD", "Margin by vendor, USD", "Margin by destination, USD")


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RATELAB_WAREHOUSE"}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two runs of ``python -m ratelab.demo`` on one warehouse: real calls, then real calls plus
    synthetic history; (warehouse, [out1, out2])."""
    tmp = tmp_path_factory.mktemp("demo")
    warehouse, spool, workdir = tmp / "warehouse.duckdb", tmp / "spool", tmp / "demo"
    outputs = []
    for extra in (["--synthetic-cdrs", 0, "--no-report"],
                  ["--synthetic-cdrs", 500, "--reports", tmp / "reports"]):
        result = run("-m", "ratelab.demo", "--warehouse", warehouse, "--spool", spool,
                     "--workdir", workdir, "--calls", 240, *extra, cwd=tmp)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout)
    # nothing was written outside the temporary folder given to the demo
    assert sorted(p.name for p in tmp.iterdir()) == ["demo", "reports", "spool",
                                                     "warehouse.duckdb"]
    return warehouse, outputs


def test_demo_carries_real_calls_through_the_switch(demo_runs: tuple[Path, list[str]]) -> None:
    warehouse, (first, _) = demo_runs
    for step in ("1/7 importing", "2/7 assigning", "3/7 exporting the routing snapshot",
                 "4/7 carrying 240 real SIP calls", "5/7 ingesting", "6/7 rating",
                 "7/7 margins of today's real calls"):
        assert step in first
    assert "240 calls placed" in first and "240 CDRs written" in first
    assert "the switch stopped cleanly (exit 0)" in first
    assert "ingested 240 CDRs" in first and "none flagged" in first
    assert SYNTHETIC_BANNER not in first, "real calls are not labelled synthetic"
    for name in ("atlas_telecom", "bluewave_voip", "cobalt_mobile", "northstar", "tollgate"):
        assert name in first
    assert first.count("Total: 240 calls") == 1
    # what the traffic is built to show, from the switch's own CDRs
    reasons = dict(query(warehouse, """SELECT disconnect_reason, count(*) FROM cdrs
                                        WHERE switch_id = 'demo' GROUP BY ALL"""))
    assert reasons.get("caller_bye", 0) > 100
    assert reasons.get("profit_limit", 0) > 0 and reasons.get("cps_limit", 0) > 0
    [(failovers,)] = query(warehouse, """SELECT count(*) FROM cdrs WHERE switch_id = 'demo'
                                          AND len(attempts) > 1""")
    assert failovers > 0
    [(limited,)] = query(warehouse, """SELECT count(DISTINCT customer) FROM cdrs
                                        WHERE disconnect_reason = 'cps_limit'""")
    assert limited == 1  # only bluewave_voip offers more than its limit


def test_second_run_adds_new_calls_and_labels_synthetic_history(
        demo_runs: tuple[Path, list[str]]) -> None:
    warehouse, (_, second) = demo_runs
    assert "nothing changed" in second  # the same deck file again is recognised
    assert "240 already present" in second or "(1 unchanged skipped)" in second
    counts = dict(query(warehouse, """SELECT switch_id = 'synthetic', count(*) FROM cdrs
                                       GROUP BY ALL"""))
    assert counts == {False: 480, True: 500}, "each run's calls once, no duplicates"
    [(rated,)] = query(warehouse, "SELECT count(*) FROM rated")
    assert rated == 980
    [(assignments,)] = query(warehouse, "SELECT count(*) FROM assignments")
    assert assignments == 7
    # the tables show today's real calls only: the generated history stays out of them ...
    assert SYNTHETIC_BANNER not in second
    assert "8/8 the daily report over today" in second
    assert "Total: 480 calls" in second  # both runs were today
    # ... and goes into the daily report's trend chart, labelled there
    [html] = (warehouse.parent / "reports").glob("daily_report-*.html")
    assert f"reports/{html.name}" in second
    page = html.read_text()
    assert "SYNTHETIC DATA:" in page and "Plotly.newPlot" in page


def test_cli_demo_command_without_the_switch(tmp_path: Path) -> None:
    result = run("-m", "ratelab.cli", "--warehouse", tmp_path / "w.duckdb", "demo",
                 "--calls", 0, "--synthetic-cdrs", 300, "--no-report",
                 "--spool", tmp_path / "spool",
                 "--workdir", tmp_path / "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total: 300 calls" in result.stdout
    assert count(tmp_path / "w.duckdb", "SELECT count(*) FROM cdrs") == 300


def test_make_demo_and_ratelab_demo_are_one_command(tmp_path: Path) -> None:
    """``python -m ratelab.demo`` (``make demo``) is ``ratelab demo``: the same options."""
    alone = run("-m", "ratelab.demo", "--help", cwd=tmp_path)
    in_cli = run("-m", "ratelab.cli", "demo", "--help", cwd=tmp_path)
    assert alone.returncode == in_cli.returncode == 0, alone.stderr + in_cli.stderr
    assert alone.stdout.startswith("Usage: python -m ratelab.demo [OPTIONS]")
    assert in_cli.stdout.startswith("Usage: ratelab demo [OPTIONS]")
    options = alone.stdout[alone.stdout.index("Options:"):]
    assert options == in_cli.stdout[in_cli.stdout.index("Options:"):]
    for option in ("--warehouse", "--spool", "--workdir", "--calls", "--synthetic-cdrs", "--days",
                   "--report / --no-report", "--reports", "--seed", "--decks"):
        assert option in options
