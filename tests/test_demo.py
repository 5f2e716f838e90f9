"""The end-to-end demo, run twice for real in a subprocess on a temporary warehouse and spool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ratelab.cli import SYNTHETIC_BANNER

TITLES = ("Margin by customer, USD", "Margin by vendor, USD", "Margin by destination, USD")


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RATELAB_WAREHOUSE"}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def cdr_count(warehouse: Path) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM cdrs").fetchall()[0][0])
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two runs of ``python -m ratelab.demo`` on one warehouse; (warehouse, [out1, out2])."""
    tmp = tmp_path_factory.mktemp("demo")
    warehouse, spool = tmp / "warehouse.duckdb", tmp / "spool"
    outputs = []
    for _ in range(2):
        result = run("-m", "ratelab.demo", "--warehouse", warehouse, "--spool", spool,
                     "--cdrs", 2000, cwd=tmp)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout)
        assert cdr_count(warehouse) == 2000
    # nothing was written outside the temporary folder given to the demo
    assert sorted(p.name for p in tmp.iterdir()) == ["spool", "warehouse.duckdb"]
    return warehouse, outputs


def test_demo_prints_the_steps_and_tables(demo_runs: tuple[Path, list[str]]) -> None:
    _, (first, _) = demo_runs
    for step in ("1/6 importing", "2/6 assigning", "3/6 generating 2,000 SYNTHETIC CDRs",
                 "4/6 ingesting", "5/6 rating", "6/6 margins"):
        assert step in first
    assert "ingested 2000 CDRs" in first
    assert "rated 2000 CDRs" in first and "none flagged" in first
    assert "cheapest-of rule: bluewave_voip's answered calls were priced" in first
    assert "by bluewave_private" in first
    for name in ("atlas_telecom", "bluewave_voip", "cobalt_mobile", "northstar", "tollgate",
                 "meridian", "Nigeria - Mobile"):
        assert name in first
    assert "(top 15 of " in first
    assert first.count("Total: 2,000 calls") == 1


def test_every_table_is_labelled_synthetic(demo_runs: tuple[Path, list[str]]) -> None:
    for out in demo_runs[1]:
        lines = out.splitlines()
        titles = [i for i, line in enumerate(lines) if line.startswith(TITLES)]
        assert len(titles) == 3
        for i in titles:
            assert lines[i - 1] == SYNTHETIC_BANNER
        total = next(i for i, line in enumerate(lines) if line.startswith("Total:"))
        assert lines[total - 1] == SYNTHETIC_BANNER


def test_second_run_adds_nothing(demo_runs: tuple[Path, list[str]]) -> None:
    warehouse, (first, second) = demo_runs
    assert "ingested 0 CDRs" in second and "2000 already present" in second
    assert "nothing changed" in second  # the same deck file again is recognised
    assert cdr_count(warehouse) == 2000
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM rated").fetchall()[0][0] == 2000
        assert con.execute("SELECT count(*) FROM assignments").fetchall()[0][0] == 7
    finally:
        con.close()
    # same synthetic CDRs, same prices: the totals line is identical
    total = [line for line in first.splitlines() if line.startswith("Total:")]
    assert total == [line for line in second.splitlines() if line.startswith("Total:")]


def test_cli_demo_command(tmp_path: Path) -> None:
    result = run("-m", "ratelab.cli", "--warehouse", tmp_path / "w.duckdb", "demo",
                 "--cdrs", 300, "--spool", tmp_path / "spool", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total: 300 calls" in result.stdout
    assert cdr_count(tmp_path / "w.duckdb") == 300
