"""auto_create_rates: golden cases (tests/fixtures/reports/autorates.json) and the deck round trip.

A vendor table in a real warehouse file; the expected rows name the columns they check, money as
exact decimal strings.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ratelab.finance import auto_create_rate
from ratelab.reports.autorates import auto_create_rates
from ratelab.reports.common import ReportError

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
GOLDEN = json.loads((FIXTURES / "autorates.json").read_text())


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@pytest.fixture
def vendor_wh(warehouse):
    warehouse.import_deck(FIXTURES / "autorates_vendor.csv", "vend", "vendor")
    warehouse.import_deck(FIXTURES / "autorates_vendor_december.csv", "vend", "vendor",
                          mode="update")
    warehouse.import_deck(FIXTURES / "autorates_vendor.csv", "cust", "customer")
    warehouse.assign("vend", vendor="carrier_x")
    return warehouse


@pytest.mark.parametrize("case", GOLDEN["cases"],
                         ids=[f"{c['at']}-{c['rounding']}" for c in GOLDEN["cases"]])
def test_golden(vendor_wh, case: dict) -> None:
    frame = auto_create_rates(vendor_wh, "vend", "0.25", at=case["at"],
                              rounding=case["rounding"])
    assert frame.columns[:6] == ["prefix", "destination", "vendor_rate", "customer_rate",
                                 "increment", "effective_from"]
    rows = frame.rows(named=True)
    assert [r["prefix"] for r in rows] == [e["prefix"] for e in case["expected"]]
    for got, want in zip(rows, case["expected"], strict=True):
        for column, value in want.items():
            assert _plain(got[column]) == value, f"{want['prefix']}.{column}"


def test_rates_are_finance_auto_create_rate(vendor_wh) -> None:
    frame = auto_create_rates(vendor_wh, "vend", "0.3", at="2026-11-15", rounding="half_even",
                              places=5)
    for row in frame.iter_rows(named=True):
        assert row["customer_rate"] == auto_create_rate(row["vendor_rate"], margin="0.3",
                                                        places=5, rounding="half_even")


def test_deck_round_trip(vendor_wh, tmp_path: Path) -> None:
    out = tmp_path / "out" / "customer_auto.csv"
    frame = auto_create_rates(vendor_wh, "vend", "0.25", at="2026-12-15", out=out)
    assert out.read_text().splitlines()[0] == (
        "prefix,destination,first_rate,rate,increment,connect_fee,effective_from")
    vendor_wh.import_deck(out, "cust_auto", "customer")
    stored = vendor_wh.sql(
        """SELECT prefix, destination, rate, first_rate, connect_fee,
                  concat(first_period, '/', cycle) AS increment, effective_from
           FROM rates WHERE table_name = 'cust_auto' ORDER BY prefix""")
    assert stored["prefix"].to_list() == frame["prefix"].to_list()
    assert stored["destination"].to_list() == frame["destination"].to_list()
    assert stored["rate"].to_list() == frame["customer_rate"].to_list()
    assert stored["first_rate"].to_list() == frame["first_rate"].to_list()
    assert stored["connect_fee"].to_list() == frame["connect_fee"].to_list()
    assert stored["increment"].to_list() == frame["increment"].to_list()
    assert stored["effective_from"].to_list() == frame["effective_from"].to_list()


def test_banded_table_round_trip(warehouse, deck, tmp_path: Path) -> None:
    warehouse.import_deck(deck("prefix,destination,band,rate,effective_from\n"
                               "44,UK,peak,0.0300,2026-01-01\n44,UK,offpeak,0.0150,2026-01-01\n"),
                          "vend_banded", "vendor")
    out = tmp_path / "banded.csv"
    frame = auto_create_rates(warehouse, "vend_banded", "0.25", at="2026-06-01", out=out,
                              effective_from="2026-07-01")
    assert frame.select("band", "customer_rate").rows() == [
        ("offpeak", Decimal("0.020000")), ("peak", Decimal("0.040000"))]
    assert "band" in out.read_text().splitlines()[0].split(",")
    warehouse.import_deck(out, "cust_banded", "customer")
    stored = warehouse.sql("SELECT band, rate, effective_from FROM rates "
                           "WHERE table_name = 'cust_banded' ORDER BY band")
    assert stored.rows() == [("offpeak", Decimal("0.020000"), datetime(2026, 7, 1)),
                             ("peak", Decimal("0.040000"), datetime(2026, 7, 1))]


def test_local_effective_dates(warehouse, deck) -> None:
    warehouse.import_deck(deck("prefix,rate,effective_from\n44,0.0150,2026-01-01\n"),
                          "vend_madrid", "vendor", time_zone="Europe/Madrid")
    frame = auto_create_rates(warehouse, "vend_madrid", "0.25", at="2026-06-01")
    assert frame["effective_from"].to_list() == [datetime(2026, 1, 1)]   # as in the deck


def test_errors(vendor_wh, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no rate table 'nope'; vendor tables: vend"):
        auto_create_rates(vendor_wh, "nope", "0.25")
    with pytest.raises(ReportError, match="'cust' is a customer rate table"):
        auto_create_rates(vendor_wh, "cust", "0.25")
    with pytest.raises(ReportError, match="margin must be below 1"):
        auto_create_rates(vendor_wh, "vend", "25")
    with pytest.raises(ReportError, match="float"):
        auto_create_rates(vendor_wh, "vend", 0.25)
    with pytest.raises(ReportError, match="rounding must be one of"):
        auto_create_rates(vendor_wh, "vend", "0.25", rounding="nearest")
    with pytest.raises(ReportError, match="is not a date"):
        auto_create_rates(vendor_wh, "vend", "0.25", at="soon")
    out = tmp_path / "none.csv"
    with pytest.raises(ReportError, match="no rates in force"):
        auto_create_rates(vendor_wh, "vend", "0.25", at="2025-01-01", out=out)
    assert not out.exists()


def test_default_at_is_now(vendor_wh) -> None:
    frame = auto_create_rates(vendor_wh, "vend", "0.25")
    assert frame.height == 3
