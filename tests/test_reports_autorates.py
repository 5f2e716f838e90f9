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


# Worked by hand from autorates_vendor.csv, in force on 2026-11-15 (rate, first_rate, fee):
# 1 at 0.0121, 0.0121, 0; 44 at 0.0150, 0.0150, 0; 447 at 0.0240, 0.0300, 0.01.
# Rows: (prefix, customer_rate, first_rate, connect_fee), 5 places.
BY_HAND = {
    # margin 0.3: price = cost / 0.7, no ties, so every half-rounding agrees
    #   0.0121 / 0.7 = 0.0172857... -> 0.01729    0.0150 / 0.7 = 0.0214285... -> 0.02143
    #   0.0240 / 0.7 = 0.0342857... -> 0.03429    0.0300 / 0.7 = 0.0428571... -> 0.04286
    #   0.01 / 0.7 = 0.0142857... -> 0.01429      0 / 0.7 = 0
    ("0.3", "half_even"): [("1", "0.01729", "0.01729", "0"), ("44", "0.02143", "0.02143", "0"),
                           ("447", "0.03429", "0.04286", "0.01429")],
    # margin 0.2: price = cost / 0.8 = cost * 1.25
    #   0.0121 * 1.25 = 0.015125, an exact tie at 5 places: half_even 0.01512 (2 is even),
    #   half_up and ceil 0.01513, floor 0.01512
    #   0.0150 * 1.25 = 0.01875; 0.0240 * 1.25 = 0.03; 0.0300 * 1.25 = 0.0375;
    #   0.01 * 1.25 = 0.0125 (all exact at 5 places, whatever the rounding)
    ("0.2", "half_even"): [("1", "0.01512", "0.01512", "0"), ("44", "0.01875", "0.01875", "0"),
                           ("447", "0.03000", "0.03750", "0.01250")],
    ("0.2", "half_up"): [("1", "0.01513", "0.01513", "0"), ("44", "0.01875", "0.01875", "0"),
                         ("447", "0.03000", "0.03750", "0.01250")],
    ("0.2", "ceil"): [("1", "0.01513", "0.01513", "0"), ("44", "0.01875", "0.01875", "0"),
                      ("447", "0.03000", "0.03750", "0.01250")],
    ("0.2", "floor"): [("1", "0.01512", "0.01512", "0"), ("44", "0.01875", "0.01875", "0"),
                       ("447", "0.03000", "0.03750", "0.01250")],
}


@pytest.mark.parametrize(("margin", "rounding"), BY_HAND, ids=[f"{m}-{r}" for m, r in BY_HAND])
def test_rates_by_hand(vendor_wh, margin: str, rounding: str) -> None:
    frame = auto_create_rates(vendor_wh, "vend", margin, at="2026-11-15", rounding=rounding,
                              places=5)
    assert frame.select("prefix", "vendor_rate").rows() == [
        ("1", Decimal("0.0121")), ("44", Decimal("0.0150")), ("447", Decimal("0.0240"))]
    assert frame.select("prefix", "customer_rate", "first_rate", "connect_fee").rows() == [
        (prefix, Decimal(rate), Decimal(first), Decimal(fee))
        for prefix, rate, first, fee in BY_HAND[margin, rounding]]


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


def test_a_eur_vendor_priced_for_usd_customers(warehouse, deck) -> None:
    from datetime import date

    from ratelab.reports import MissingRateError

    eur = deck("prefix,destination,rate,increment,connect_fee,effective_from\n"
               "44,UK,0.010000,60/60,0.002,2026-01-01\n", "eur.csv")
    warehouse.import_deck(eur, "vend_eur", "vendor", currency="EUR")
    same = auto_create_rates(warehouse, "vend_eur", "0.25", at="2026-11-02")
    assert same.select("vendor_currency", "currency").row(0) == ("EUR", "EUR")
    assert same["customer_rate"].to_list() == [Decimal("0.013400")]   # 0.01 / 0.75, ceil
    with pytest.raises(MissingRateError, match="EUR on 2026-11-02"):
        auto_create_rates(warehouse, "vend_eur", "0.25", at="2026-11-02", currency="USD")
    warehouse.set_fx("EUR", "1.10", date(2026, 11, 1))
    warehouse.set_fx("GBP", "1.27", date(2026, 11, 1))
    usd = auto_create_rates(warehouse, "vend_eur", "0.25", at="2026-11-02", currency="usd")
    row = usd.row(0, named=True)
    assert (row["vendor_currency"], row["currency"]) == ("EUR", "USD")
    assert row["vendor_rate"] == Decimal("0.010000")             # the vendor's own, in EUR
    # 0.01 EUR = 0.011 USD; / 0.75 = 0.014666.. -> 0.0147 (ceil, 4 places)
    assert row["customer_rate"] == Decimal("0.014700")
    assert row["connect_fee"] == Decimal("0.003000")             # 0.0022 / 0.75 = 0.00293.. up
    # EUR -> GBP through USD: 0.01 * 1.10 / 1.27 = 0.0086614.. -> 0.008662 (up); / 0.75 -> 0.0116
    gbp = auto_create_rates(warehouse, "vend_eur", "0.25", at="2026-11-02", currency="GBP")
    assert gbp["customer_rate"].to_list() == [Decimal("0.011600")]
    with pytest.raises(ReportError, match="three-letter"):
        auto_create_rates(warehouse, "vend_eur", "0.25", currency="euro")
