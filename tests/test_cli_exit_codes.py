"""Every command's exit status, run for real: 0 when it did its job, 1 when it could not (or
found a problem), 2 when the command must change; never 0 with a problem. `ratelab report`
writes the HTML that explains a problem and still exits non-zero with the reason on stderr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ratelab
from tests.helpers import DECKS
from tests.helpers import ratelab as run_cli

DAY = ("-p", "start", "2026-11-02", "-p", "end", "2026-11-03")


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return ratelab.sample_warehouse(cdrs=60, rated=True,
                                    directory=tmp_path_factory.mktemp("codes"))


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("garbage") / "garbage.duckdb"
    path.write_bytes(b"not a database\n" * 300)
    return path


def reason(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    return stderr


# Every command that opens the warehouse, with arguments that are fine otherwise.
def commands(tmp: Path) -> list[tuple[str, ...]]:
    spool = tmp / "spool"
    spool.mkdir(exist_ok=True)
    return [
        ("summary",),
        ("deck", "list"),
        ("deck", "diff", str(DECKS / "vendor_tollgate.csv"), "--name", "vend_x"),
        ("deck", "import", str(DECKS / "vendor_tollgate.csv"), "--name", "t", "--side",
         "vendor"),
        ("assign", "vend_x", "--vendor", "v2"),
        ("calendar", "show"),
        ("calendar", "day", "2026-12-25", "--band", "weekend"),
        ("ingest", str(spool)),
        ("quarantine",),
        ("rate", "--since", "2026-11-01"),
        ("routing", "export", "--out", str(tmp / "routing.json")),
        ("generate", str(tmp / "gen"), "--count", "5"),
        ("table", "margin_by", *DAY),
    ]


@pytest.mark.parametrize("index", range(13))
def test_a_missing_warehouse_exits_2_and_creates_nothing(tmp_path: Path, index: int) -> None:
    args = commands(tmp_path)[index]
    missing = tmp_path / "typo" / "w.duckdb"
    result = run_cli(*args, warehouse=missing)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert f"no warehouse at {missing}" in reason(result)
    assert f"ratelab init {missing}" in result.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("index", range(13))
def test_a_file_that_is_not_a_warehouse_exits_1(tmp_path: Path, garbage: Path,
                                                index: int) -> None:
    args = commands(tmp_path)[index]
    result = run_cli(*args, warehouse=garbage)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert reason(result).startswith("error: cannot open")
    assert "not a valid DuckDB database file" in result.stderr


def test_summary_of_an_empty_range_exits_1(wh: ratelab.Warehouse) -> None:
    result = run_cli("summary", "--since", "2020-01-01", "--until", "2020-02-01",
                     warehouse=wh.path)
    assert result.returncode == 1
    assert "nothing rated in that range" in reason(result)
    assert run_cli("summary", warehouse=wh.path).returncode == 0


@pytest.mark.parametrize(("args", "code", "message"), [
    (("table",), 2, "name a report function"),
    (("table", "no_such_table"), 2, "unknown table 'no_such_table'"),
    (("table", "margin_by", "-p", "start", "2026-11-02"), 2, "margin_by needs -p end VALUE"),
    (("table", "margin_by", *DAY, "-p", "colour", "red"), 2, "unknown parameter(s) colour"),
    (("table", "margin_by", *DAY, "-p", "by", "country"), 2, "by must be one of"),
    (("table", "clearing_details", *DAY, "-p", "vendor", "nosuchvendor"), 2,
     "unknown vendor 'nosuchvendor'"),
    (("table", "top_loss_makers", *DAY, "-p", "n", "many"), 2, "n 'many' is not a whole number"),
    (("table", "margin_by", "-p", "start", "2026-13-01", "-p", "end", "2026-12-01"), 2,
     "start '2026-13-01' is not a date"),
    (("summary", "--since", "yesterday"), 2, "is not a date"),
    (("summary", "--by", "country"), 2, "Invalid value for '--by'"),
    (("assign", "nope", "--vendor", "v"), 2, "no rate table 'nope'"),
    (("calendar", "show", "nope"), 2, "no work calendar 'nope'"),
    (("ingest", "/no/such/spool"), 2, "does not exist"),
])
def test_bad_commands_exit_2_with_the_reason(wh: ratelab.Warehouse, args: tuple[str, ...],
                                             code: int, message: str) -> None:
    result = run_cli(*args, warehouse=wh.path)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in reason(result)


def test_good_commands_exit_0(wh: ratelab.Warehouse, tmp_path: Path) -> None:
    for args in (("summary",), ("deck", "list"), ("quarantine",), ("calendar", "show"),
                 ("table", "margin_by", *DAY), ("table", "--list"), ("report", "--list"),
                 ("table", "compare", "-p", "period_a", "2026-11-01..2026-11-02",
                  "-p", "period_b", "2026-11-02..2026-11-03"),
                 ("report", "compare", "--out", tmp_path)):
        result = run_cli(*args, warehouse=wh.path)
        assert result.returncode == 0, (args, result.stderr)


# -- ratelab report ---------------------------------------------------------------------------

def written_html(stdout: str) -> Path:
    [html] = [Path(m) for m in re.findall(r"^wrote (.*\.html)$", stdout, re.M)]
    return html


@pytest.mark.parametrize(("args", "code", "message"), [
    # the case: the page explains it well; now the exit status says so too
    (("what_if", *DAY, "-p", "vendor", "nosuchvendor", "-p", "change_pct", "10"), 2,
     "unknown vendor 'nosuchvendor'"),
    (("vendor_scorecard", *DAY, "-p", "vendor", "nosuchvendor"), 2,
     "unknown vendor 'nosuchvendor'"),
    (("daily_report", "-p", "start", "2026-11-31"), 2, "start '2026-11-31' is not a date"),
    (("break_even", *DAY, "-p", "fixed_costs", "lots"), 2, "fixed_costs 'lots' is not a number"),
    (("daily_report", "-p", "start", "2026-10-01"), 1, "no calls in this period"),
    (("compare", "-p", "period_a_start", "2026-11-31"), 2,
     "period_a_start '2026-11-31' is not a date"),
    (("compare", "-p", "by", "country"), 2, "by must be one of destination, customer, vendor"),
    (("compare", "-p", "period_a_end", "2026-10-01", "-p", "period_b_end", "2026-10-08"), 1,
     "no calls in either period"),
])
def test_a_report_that_shows_a_problem_writes_its_page_and_exits_non_zero(
        wh: ratelab.Warehouse, tmp_path: Path, args: tuple[str, ...], code: int,
        message: str) -> None:
    result = run_cli("report", *args, "--out", tmp_path, warehouse=wh.path)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in reason(result)
    assert result.stderr.startswith(f"error: report {args[0]} could not show its figures")
    html = written_html(result.stdout)
    page = html.read_text().replace("&#x27;", "'").lower()
    assert html.is_file() and message.lower() in page


def test_a_report_on_a_missing_warehouse_exits_2_and_explains_it(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    result = run_cli("report", "daily_report", "--out", tmp_path / "out", warehouse=missing)
    assert result.returncode == 2
    assert f"no warehouse at {missing}" in reason(result)
    assert f"no warehouse at {missing}" in written_html(result.stdout).read_text()
    assert not missing.exists()


def test_a_report_with_an_unknown_parameter_name_exits_2_and_writes_nothing(
        wh: ratelab.Warehouse, tmp_path: Path) -> None:
    result = run_cli("report", "daily_report", "-p", "vendr", "x", "--out", tmp_path / "out",
                     warehouse=wh.path)
    assert result.returncode == 2
    assert "unknown parameter(s) vendr for report daily_report" in reason(result)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_good_report_exits_0(wh: ratelab.Warehouse, tmp_path: Path) -> None:
    result = run_cli("report", "vendor_scorecard", *DAY, "-p", "vendor", "carrier_x",
                     "--out", tmp_path, warehouse=wh.path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Vendor scorecard" in written_html(result.stdout).read_text()


def test_run_report_returns_the_problem_to_python_callers(wh: ratelab.Warehouse,
                                                          tmp_path: Path) -> None:
    from ratelab.report_runner import run_report

    bad = run_report("vendor_scorecard", {"warehouse": str(wh.path), "start": "2026-11-02",
                                          "end": "2026-11-03", "vendor": "nosuchvendor"},
                     tmp_path)
    assert not bad.ok and bad.exit_code == 2
    assert bad.problem is not None and "unknown vendor 'nosuchvendor'" in bad.problem
    good = run_report("margin_by_destination", {"warehouse": str(wh.path),
                                                "start": "2026-11-02", "end": "2026-11-03"},
                      tmp_path)
    assert good.ok and good.problem is None and good.exit_code == 0


def test_a_missing_exchange_rate_exits_1_everywhere(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    assert run_cli("init", wh).returncode == 0
    for name, side, rate, extra in (("v", "vendor", "0.0150", ("--currency", "EUR")),
                                    ("c", "customer", "0.0200", ())):
        deck = tmp_path / f"{name}.csv"
        deck.write_text(f"prefix,destination,rate,increment,effective_from\n"
                        f"44,UK,{rate},1/1,2026-01-01\n")
        assert run_cli("deck", "import", deck, "--name", name, "--side", side, *extra,
                       warehouse=wh).returncode == 0
    assert run_cli("assign", "v", "--vendor", "carrier_x", warehouse=wh).returncode == 0
    assert run_cli("assign", "c", "--customer", "acme", warehouse=wh).returncode == 0
    assert run_cli("generate", tmp_path / "spool", "--count", "10", "--start", "2026-11-02",
                   "--days", "1", warehouse=wh).returncode == 0
    assert run_cli("ingest", tmp_path / "spool", warehouse=wh).returncode == 0
    assert run_cli("rate", warehouse=wh).returncode == 0
    for args in (("summary",), ("table", "margin_by", *DAY),
                 ("report", "margin_by_destination", *DAY, "--out", str(tmp_path / "out"))):
        result = run_cli(*args, warehouse=wh)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "no exchange rate to USD for EUR on 2026-11-02" in reason(result)
    assert run_cli("fx", "set", "EUR", "1.08", "--date", "2026-11-01",
                   warehouse=wh).returncode == 0
    assert run_cli("summary", warehouse=wh).returncode == 0
