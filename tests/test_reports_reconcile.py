"""reconcile: our CDRs through carrier_x against their CDR file (tests/fixtures/reports/).

Vendor deck: 44 at 0.06/min, 1/1 increments, so our cost is 0.001 a second. Golden style: our
CDRs and their file in, expected rows out (status, callee, our cdr_id, their line, differences).
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from ratelab.finance import call_charge
from ratelab.reports.common import ReportError
from ratelab.reports.reconcile import TheirFileError, reconcile, reconcile_summary
from tests.helpers import contract_cdr, write_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
THEIRS = FIXTURES / "reconcile_theirs.csv"
DAY = ("2026-11-02", "2026-11-03")

# (cdr_id, callee suffix, start, duration_ms[, vendor])
OURS = [
    ("c14", "14", "2026-11-02T00:00:00.500000Z", 1000),
    ("c09", "09", "2026-11-02T09:35:00Z", 30000),
    ("c01", "01", "2026-11-02T10:00:00Z", 30000),
    ("c02", "02", "2026-11-02T10:05:00Z", 20000),
    ("c04", "04", "2026-11-02T10:10:00Z", 30000),
    ("c05", "05", "2026-11-02T10:15:00Z", 30000),
    ("c06", "06", "2026-11-02T10:20:00Z", 30000),
    ("c07", "07", "2026-11-02T10:25:00Z", 30000),
    ("c08", "08", "2026-11-02T10:30:00Z", 30000),
    ("c10", "10", "2026-11-02T10:40:00Z", 30000),
    ("c11a", "11", "2026-11-02T11:00:00Z", 30000),
    ("c11b", "11", "2026-11-02T11:00:01Z", 40000),
    ("c12", "12", "2026-11-02T11:10:00Z", 0),                 # unanswered: not billed
    ("c13", "13", "2026-11-02T11:20:00Z", 30000, "other"),    # another vendor
    ("c16", "16", "2026-11-03T00:00:01Z", 2000),              # the next day's
]

# status, callee suffix, our cdr_id, their line, duration_diff_s, amount_diff
EXPECTED = [
    ("matched", "14", "c14", 2, "0.000", "0.000000"),        # across the period start
    ("deviation", "09", "c09", 11, "0.000", "-0.010001"),    # +01:00 in their file
    ("matched", "01", "c01", 4, "0.000", "0.000000"),
    ("only_ours", "02", "c02", None, None, None),
    ("only_theirs", "03", None, 5, None, None),
    ("deviation", "04", "c04", 6, "5.000", "0.000000"),
    ("deviation", "05", "c05", 7, "0.000", "0.020100"),
    ("matched", "06", "c06", 8, "1.000", "0.010000"),        # every tolerance at its edge
    ("only_ours", "07", "c07", None, None, None),
    ("only_theirs", "07", None, 9, None, None),              # 2.001 s apart
    ("deviation", "08", "c08", 10, "0.000", "0.010001"),
    ("matched", "10", "c10", 12, "0.000", "-0.010000"),
    ("matched", "11", "c11a", 14, "0.000", "0.000000"),      # nearest first, not file order
    ("matched", "11", "c11b", 13, "0.000", "0.000000"),
]


def _text(value: object) -> object:
    return None if value is None else str(value)


@pytest.fixture
def wh(warehouse, deck, tmp_path: Path):
    warehouse.import_deck(deck("prefix,rate,increment,effective_from\n"
                               "44,0.1000,1/1,2026-01-01\n", "cust.csv"), "cust", "customer")
    warehouse.import_deck(deck("prefix,rate,increment,effective_from\n"
                               "44,0.0600,1/1,2026-01-01\n", "vend.csv"), "vend", "vendor")
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend", vendor="carrier_x")
    cdrs = [contract_cdr(c[0], "4477009000" + c[1], c[2], c[3],
                         vendor=c[4] if len(c) > 4 else "carrier_x") for c in OURS]
    write_jsonl(tmp_path / "spool" / "cdrs.jsonl", cdrs)
    warehouse.ingest(tmp_path / "spool")
    warehouse.rate()
    return warehouse


def test_golden(wh) -> None:
    frame = reconcile(wh, "carrier_x", THEIRS, *DAY)
    assert frame.columns == ["status", "callee", "our_start", "their_start", "our_duration_s",
                             "their_duration_s", "duration_diff_s", "our_amount",
                             "their_amount", "amount_diff", "cdr_id", "their_line",
                             "currency"]
    assert frame["currency"].unique().to_list() == ["USD"]    # the vendor table's currency
    got = [(r["status"], r["callee"][-2:], r["cdr_id"], r["their_line"],
            _text(r["duration_diff_s"]), _text(r["amount_diff"]))
           for r in frame.iter_rows(named=True)]
    assert got == EXPECTED


def test_our_amount_is_the_rated_vendor_cost(wh) -> None:
    frame = reconcile(wh, "carrier_x", THEIRS, *DAY)
    ours = frame.filter(frame["cdr_id"].is_not_null())
    for row in ours.iter_rows(named=True):
        seconds = int(row["our_duration_s"].to_integral_value(rounding="ROUND_CEILING"))
        assert row["our_amount"] == call_charge(seconds, "0.06", 1, "0.06", 1)


def test_summary(wh) -> None:
    summary = reconcile_summary(reconcile(wh, "carrier_x", THEIRS, *DAY))
    assert summary.rows() == [
        ("matched", 6, Decimal("0.000000"), Decimal("0.161000"), Decimal("0.161000"), "USD"),
        ("deviation", 4, Decimal("0.020100"), Decimal("0.120000"), Decimal("0.140100"), "USD"),
        ("only_ours", 2, Decimal("-0.050000"), Decimal("0.050000"), Decimal("0.000000"), "USD"),
        ("only_theirs", 2, Decimal("0.040000"), Decimal("0.000000"), Decimal("0.040000"), "USD"),
    ]
    assert summary.columns == ["status", "calls", "amount", "our_amount", "their_amount",
                               "currency"]


def test_tolerances_are_parameters(wh) -> None:
    frame = reconcile(wh, "carrier_x", THEIRS, *DAY, time_tolerance_s=0,
                      duration_tolerance_s="5", amount_lower="-0.02", amount_upper="0.03")
    status = {(r["callee"][-2:], r["status"]) for r in frame.iter_rows(named=True)}
    assert ("04", "matched") in status and ("05", "matched") in status  # within looser bounds
    assert ("06", "only_ours") in status and ("06", "only_theirs") in status  # 2 s > 0 s
    loose = reconcile(wh, "carrier_x", THEIRS, *DAY, time_tolerance_s=2.5)
    assert loose.filter(loose["callee"] == "447700900007")["status"].to_list() == ["matched"]


def test_other_spellings_and_delimiter(wh, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("Number;Connect-Time;BillSec;Charge;Trunk\n"
                      "+44 7700 900001;2026-11-02 10:00:00;30;0.03;T1\n")
    frame = reconcile(wh, "carrier_x", theirs, *DAY)
    row = frame.filter(frame["callee"] == "447700900001").row(0, named=True)
    assert row["status"] == "matched" and row["their_line"] == 2


def test_bad_rows_are_all_reported(wh) -> None:
    with pytest.raises(TheirFileError) as caught:
        reconcile(wh, "carrier_x", FIXTURES / "reconcile_bad.csv", *DAY)
    file = str(FIXTURES / "reconcile_bad.csv")
    assert [(f == file, line, reason) for f, line, reason in caught.value.problems] == [
        (True, 2, "amount '0,03' is not a number"),
        (True, 3, "callee 'abc' is not an E.164 number (1-17 digits)"),
        (True, 5, "start_time '2026-13-02T10:00:00' is not an ISO 8601 time "
                  "(e.g. 2026-11-02T10:00:00Z)"),
        (True, 6, "empty duration_s"),
        (True, 7, "duration_s 30.0001 has more than 3 decimal places"),
        (True, 7, "negative amount -0.01"),
        (True, 8, "amount 0.0300001 has more than 6 decimal places"),
    ]
    assert isinstance(caught.value, ReportError)
    assert f"{file}:3: callee 'abc'" in str(caught.value)
    assert "nothing was reconciled" in str(caught.value)


@pytest.mark.parametrize(("header", "message"), [
    ("callee,start_time,duration_s\n", "missing column amount"),
    ("callee,number,start,duration,cost\n", "two columns for callee"),
    ("", "empty file"),
])
def test_bad_headers(wh, tmp_path: Path, header: str, message: str) -> None:
    theirs = tmp_path / "theirs.csv"
    theirs.write_text(header)
    with pytest.raises(TheirFileError, match=message):
        reconcile(wh, "carrier_x", theirs, *DAY)


def test_errors(wh, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="unknown vendor 'carrier_y'; known: carrier_x"):
        reconcile(wh, "carrier_y", THEIRS, *DAY)
    with pytest.raises(ReportError, match="the period is empty"):
        reconcile(wh, "carrier_x", THEIRS, "2026-11-03", "2026-11-02")
    with pytest.raises(ReportError, match="cannot read"):
        reconcile(wh, "carrier_x", tmp_path / "missing.csv", *DAY)
    with pytest.raises(ReportError, match=r"amount_lower 0\.01 is above"):
        reconcile(wh, "carrier_x", THEIRS, *DAY, amount_lower="0.01", amount_upper="0")


def test_unrated_calls_are_refused(wh, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spool2" / "late.jsonl",
                [contract_cdr("late", "447700900099", "2026-11-02T12:00:00Z", 5000)])
    wh.ingest(tmp_path / "spool2")
    with pytest.raises(ReportError, match=r"1 answered call.* not rated yet"):
        reconcile(wh, "carrier_x", THEIRS, *DAY)


def test_empty_period(wh, tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copy(THEIRS, copy)
    frame = reconcile(wh, "carrier_x", copy, "2026-10-01", "2026-10-02")
    assert frame.height == 0 and frame.width == 13
    assert reconcile_summary(frame)["calls"].to_list() == [0, 0, 0, 0]


def test_a_eur_vendor_is_reconciled_in_eur_and_two_currencies_are_refused(tmp_path: Path,
                                                                          deck) -> None:
    import ratelab
    from tests.helpers import contract_cdr, write_jsonl

    wh = ratelab.connect(tmp_path / "w.duckdb", create=True)
    head = "prefix,destination,rate,increment,effective_from\n"
    wh.import_deck(deck(head + "44,UK,0.010,60/60,2026-01-01\n", "c.csv"), "cust", "customer")
    wh.import_deck(deck(head + "44,UK,0.006,60/60,2026-01-01\n", "v.csv"), "v_eur", "vendor",
                   currency="EUR")
    wh.import_deck(deck(head + "44,UK,0.007,60/60,2026-01-01\n", "u.csv"), "v_usd", "vendor")
    wh.assign("cust", customer="acme")
    wh.assign("v_eur", vendor="carrier_eu", valid_from="2026-11-01")
    wh.assign("v_usd", vendor="carrier_eu", valid_from="2026-11-03")
    write_jsonl(tmp_path / "spool" / "c.jsonl", [
        contract_cdr(f"c{day}", "447700900001", f"2026-11-0{day}T10:00:00Z", 60_000,
                     customer="acme", vendor="carrier_eu") for day in (2, 3)])
    wh.ingest(tmp_path / "spool")
    wh.rate()
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("callee,start_time,duration_s,amount\n"
                      "447700900001,2026-11-02T10:00:00Z,60,0.006\n")
    frame = reconcile(wh, "carrier_eu", theirs, "2026-11-02", "2026-11-03")
    assert frame.select("status", "our_amount", "currency").rows() == [
        ("matched", Decimal("0.006000"), "EUR")]                  # compared in EUR, unconverted
    with pytest.raises(ReportError, match="priced in EUR and USD"):
        reconcile(wh, "carrier_eu", theirs, "2026-11-02", "2026-11-04")
