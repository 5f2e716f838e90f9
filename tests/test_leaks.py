"""The rate-plan leak check (reports.rate_leaks, `ratelab check rates`) on a golden warehouse.

tests/golden/leaks/warehouse.json holds the decks, assignments, exchange rate, switch config and
CDRs, and every expected row computed by hand: planted leaks (the sample decks' 447/4470
undercut, a plain leak, a leak through the second vendor only, a EUR vendor converted) and clean
look-alikes that must not be flagged (a cheaper private table still above cost, a longer dearer
prefix of the same table, a phone_private table, a table not yet in force, an assignment that
ended), on decks alone and with rated CDRs.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import ratelab
from ratelab.reports import MissingRateError, ReportError, rate_leaks
from ratelab.reports.leaks import LEAK_COLUMNS
from tests.helpers import contract_cdr, demo_decks_warehouse, write_jsonl
from tests.helpers import ratelab as run_cli
from tests.reports_fixtures import plain

GOLDEN = json.loads((Path(__file__).parent / "golden" / "leaks" / "warehouse.json").read_text())


def _build(root: Path, *, cdrs: bool) -> ratelab.Warehouse:
    wh = ratelab.connect(root / "warehouse.duckdb", create=True)
    for deck in GOLDEN["decks"]:
        path = root / f"{deck['name']}.csv"
        path.write_text(deck["csv"])
        wh.import_deck(path, deck["name"], deck["side"], currency=deck["currency"])
        assign = dict(deck["assign"])
        for key in ("valid_from", "valid_to"):
            if key in assign:
                assign[key] = datetime.fromisoformat(assign[key])
        wh.assign(deck["name"], **assign)
    fx = root / "fx.csv"
    fx.write_text(GOLDEN["fx"])
    wh.import_fx(fx)
    if cdrs:
        records = [dict(zip(GOLDEN["cdr_columns"], row, strict=True)) for row in GOLDEN["cdrs"]]
        write_jsonl(root / "spool" / "cdrs.jsonl", [
            contract_cdr(r["id"], r["callee"], r["start"] + ".000000Z", r["seconds"] * 1000,
                         customer=r["customer"], vendor=r["vendor"]) for r in records])
        assert wh.ingest(root / "spool").added == len(records)
        wh.rate()
    return wh


@pytest.fixture(scope="module")
def decks_only(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return _build(tmp_path_factory.mktemp("leaks_decks"), cdrs=False)


@pytest.fixture(scope="module")
def with_cdrs(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return _build(tmp_path_factory.mktemp("leaks_cdrs"), cdrs=True)


@pytest.fixture(scope="module")
def switch_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("leaks_switch") / "switch.toml"
    path.write_text(GOLDEN["switch_config"])
    return path


def _args(case: dict, switch_toml: Path) -> dict:
    args = dict(case["args"])
    if args.pop("switch_config", False):
        args["switch_config"] = switch_toml
    return args


@pytest.mark.parametrize("number", range(len(GOLDEN["cases"])),
                         ids=[c["about"].split(":")[0] for c in GOLDEN["cases"]])
def test_golden_cases(number: int, decks_only, with_cdrs, switch_toml) -> None:
    case = GOLDEN["cases"][number]
    wh = with_cdrs if case["cdrs"] else decks_only
    frame = rate_leaks(wh, **_args(case, switch_toml))
    assert frame.columns == GOLDEN["columns"] == list(LEAK_COLUMNS)
    got = [[plain(v) for v in row] for row in frame.iter_rows()]
    assert got == case["rows"], case["about"]
    assert all(isinstance(v, Decimal) for v in frame["loss"])  # money stays exact


def test_no_leak_gives_the_empty_frame_with_every_column(decks_only) -> None:
    # before any deck is in force nothing is priced, so nothing leaks
    frame = rate_leaks(decks_only, at="2026-09-01")
    assert frame.is_empty() and frame.columns == list(LEAK_COLUMNS)
    assert str(frame.schema["loss"]) == "Decimal(precision=18, scale=6)"


def test_the_calls_decide_nothing_about_what_leaks(decks_only, with_cdrs) -> None:
    # the same decks with and without CDRs flag the same rows; only calls/minutes/loss differ
    keys = ["customer", "prefix", "vendor", "route_rank", "loss_per_minute"]
    before = rate_leaks(decks_only, at="2026-11-15").select(keys).sort(keys)
    after = rate_leaks(with_cdrs, at="2026-11-15").select(keys).sort(keys)
    assert before.equals(after)


def test_a_missing_exchange_rate_is_refused_naming_currency_and_day(decks_only) -> None:
    with pytest.raises(MissingRateError) as caught:
        rate_leaks(decks_only, at="2026-10-20")  # EUR is priced from 2026-11-01 only
    assert caught.value.missing == {"EUR": [date(2026, 10, 20)]}
    assert "ratelab fx set EUR RATE --date 2026-10-20" in str(caught.value)


@pytest.mark.parametrize("args, message", [
    ({"customer": "acmee"}, "unknown customer 'acmee'; known: acme, bluewave"),
    ({"days": 0}, "days must be a whole number of at least 1"),
    ({"at": "15/11/2026"}, "at '15/11/2026' is not a date"),
])
def test_bad_arguments_say_what_to_change(decks_only, args, message) -> None:
    with pytest.raises(ReportError, match=message):
        rate_leaks(decks_only, **{"at": "2026-11-15", **args})


# -- the command --------------------------------------------------------------------------

def test_check_rates_exits_1_and_lists_the_leaks(with_cdrs) -> None:
    result = run_cli("check", "rates", "--at", "2026-11-15", warehouse=with_cdrs.path,
                     env={"COLUMNS": "250"})
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Rate-plan leaks, USD per minute"
    assert any(line.split()[:4] == ["bluewave", "4470", "UK", "Personal"] and "0.6135" in line
               for line in lines)
    assert lines[-1] == ("6 leak(s) at 2026-11-15 00:00 UTC: 4 range(s) of 2 customer(s) "
                         "priced below a vendor's cost (3 below every vendor); loss over the "
                         "last 30 days 0.85 USD")


def test_check_rates_exits_0_when_nothing_leaks(decks_only) -> None:
    result = run_cli("check", "rates", "--at", "2026-09-01", warehouse=decks_only.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("no leaks: no customer is priced below a vendor's cost at "
                             "2026-09-01 00:00 UTC\n")


@pytest.mark.parametrize("args, message", [
    (["--customer", "nobody"], "error: unknown customer 'nobody'"),
    (["--days", "0"], "Invalid value for '--days'"),
    (["--at", "yesterday"], "--at 'yesterday' is not a date"),
    (["--switch-config", "{bad}"], "problem(s) in"),
    (["--switch-config", "/nonexistent/switch.toml"], "no such file: /nonexistent/switch.toml"),
])
def test_check_rates_exits_2_for_bad_input(decks_only, tmp_path, args, message) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[switch]\nid = 1\n")
    args = [str(bad) if a == "{bad}" else a for a in args]
    result = run_cli("check", "rates", "--at", "2026-11-15", *args, warehouse=decks_only.path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_check_rates_exports_exact_values(decks_only, tmp_path) -> None:
    out = tmp_path / "leaks.json"
    result = run_cli("check", "rates", "--at", "2026-11-15", "--output", out,
                     warehouse=decks_only.path)
    assert result.returncode == 1
    rows = json.loads(out.read_text())
    assert [r["vendor_rate"] for r in rows][:2] == ["0.247300", "0.218400"]
    assert rows[0]["loss"] == "0.000000" and rows[0]["undercut"] is True
    assert "6 leak(s)" in result.stderr


def test_check_rates_on_the_sample_decks_finds_the_bluewave_leak(tmp_path) -> None:
    wh = demo_decks_warehouse(tmp_path / "demo.duckdb")
    frame = rate_leaks(wh, at="2026-11-15", customer="bluewave_voip")
    undercut = frame.filter(frame["prefix"] == "4470")
    assert undercut.select("customer_table", "customer_prefix", "customer_rate", "vendor",
                           "vendor_rate", "route_rank", "undercut").rows() == [
        ("bluewave_private", "447", Decimal("0.013900"), "meridian", Decimal("0.330200"), 3,
         True),
        ("bluewave_private", "447", Decimal("0.013900"), "northstar", Decimal("0.247350"), 2,
         True),
        ("bluewave_private", "447", Decimal("0.013900"), "tollgate", Decimal("0.218400"), 1,
         True)]
    assert undercut["destination"].unique().to_list() == ["United Kingdom - Personal Numbering"]
    result = run_cli("check", "rates", "--at", "2026-11-15", "--format", "csv",
                     warehouse=wh.path)
    assert result.returncode == 1
    assert ("bluewave_voip,4470,United Kingdom - Personal Numbering,bluewave_private,447,"
            "0.013900,tollgate,vendor_tollgate,4470,0.218400,1,0.204500,true,true"
            in result.stdout)


def test_the_daily_report_shows_the_month_behind_a_clean_day_and_the_leaks(with_cdrs,
                                                                           tmp_path) -> None:
    # 2026-11-06: acme's Spain calls make money overall (a3 via tollgate covers a2's loss via
    # northstar), so no destination lost money that day; the 30 days before hold b3's 4470
    # call (2026-10-10) and a1's France call, which did.
    import nbformat

    from ratelab.report_runner import run_report

    paths = run_report("daily_report", {"warehouse": str(with_cdrs.path),
                                        "start": "2026-11-06", "end": "2026-11-07"},
                       tmp_path / "reports")
    nb = nbformat.read(paths.notebook, as_version=4)
    text = "\n".join(o.data["text/markdown"] for cell in nb.cells
                     for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {}))
    assert "No destination lost money in this period, but some did in the 30 days" in text
    assert "No destination lost money in this period, nor" not in text
    assert "### Loss makers, last 30 days" in text
    html = paths.html.read_text(encoding="utf-8")
    month = html.split("Loss makers, last 30 days")[1].split("Rate-plan leaks")[0]
    # rating names a call by the customer prefix that priced it: b3 is "UK Mobile" there (the
    # private 447), which is how the issue saw it
    assert "<td>UK Mobile</td>" in month and "<td>France</td>" in month
    assert "<td>Spain</td>" not in month
    # the leaks at the report's end, with the loss of [2026-10-08, 2026-11-07): b3 0.2045,
    # a1 0.0015, a2 0.002
    assert "## Rate-plan leaks" in text
    assert "**6 leak(s)**, 0.21 USD lost in the last 30 days." in text


def test_banded_tables_compare_the_worst_case(warehouse, deck) -> None:
    # Band by band nothing leaks (peak 0.0200 > 0.0090, offpeak 0.0080 > 0.0070), but the
    # check compares the customer's lowest band with the vendor's highest, as the routing
    # snapshot does: 0.0080 < 0.0090 is flagged.
    head = "prefix,destination,band,rate,increment,effective_from\n"
    warehouse.import_deck(deck(head + "44,UK,peak,0.0200,60/60,2026-01-01\n"
                                      "44,UK,offpeak,0.0080,60/60,2026-01-01\n"
                                      "44,UK,weekend,0.0080,60/60,2026-01-01\n", "c.csv"),
                          "cust_banded", "customer")
    warehouse.import_deck(deck(head + "44,UK,peak,0.0090,60/60,2026-01-01\n"
                                      "44,UK,offpeak,0.0070,60/60,2026-01-01\n"
                                      "44,UK,weekend,0.0050,60/60,2026-01-01\n", "v.csv"),
                          "vend_banded", "vendor")
    warehouse.assign("cust_banded", customer="acme")
    warehouse.assign("vend_banded", vendor="carrier_x")
    frame = rate_leaks(warehouse, at="2026-06-01")
    assert frame.select("prefix", "customer_rate", "vendor_rate", "loss_per_minute").rows() == [
        ("44", Decimal("0.008000"), Decimal("0.009000"), Decimal("0.001000"))]
