"""Billing reports on the golden warehouse (tests/reports_fixtures.py; expected rows in
tests/golden/reports/<function>.json, computed by hand from the decks and CDRs)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

import ratelab
from ratelab.reports import (
    ReportError,
    clearing_details,
    gateway_bill,
    revenue_details,
    settlement_summary,
)
from tests.reports_fixtures import END, START, build_golden_warehouse, check_golden

MONEY, MINUTES = pl.Decimal(18, 6), pl.Decimal(18, 1)

SCHEMAS = {
    revenue_details: {"customer": pl.String, "destination": pl.String,
                      "customer_prefix": pl.String, "customer_rate": MONEY,
                      "currency": pl.String, "calls": pl.Int64,
                      "answered": pl.Int64, "billed_minutes": MINUTES, "revenue": MONEY},
    clearing_details: {"vendor": pl.String, "destination": pl.String, "vendor_prefix": pl.String,
                       "vendor_rate": MONEY, "currency": pl.String, "calls": pl.Int64,
                       "answered": pl.Int64,
                       "billed_minutes": MINUTES, "cost": MONEY},
    settlement_summary: {"period_start": pl.Date, "currency": pl.String, "calls": pl.Int64,
                         "answered": pl.Int64, "revenue": MONEY, "cost": MONEY,
                         "profit": MONEY, "margin": pl.Float64},
}
GATEWAY_SCHEMA = {"day": pl.Date, "currency": pl.String, "calls": pl.Int64, "answered": pl.Int64,
                  "billed_minutes": MINUTES, "amount": MONEY}



@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return build_golden_warehouse(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("report", [revenue_details, clearing_details, gateway_bill,
                                    settlement_summary], ids=lambda f: f.__name__)
def test_golden(report, wh) -> None:
    check_golden(report.__name__, report, wh)


@pytest.mark.parametrize("report", list(SCHEMAS), ids=lambda f: f.__name__)
@pytest.mark.parametrize("period", [(START, END), ("2026-12-01", "2026-12-02")],
                         ids=["data", "empty"])
def test_columns_and_types(report, period, wh) -> None:
    frame = report(wh, *period)
    assert dict(frame.schema) == SCHEMAS[report]
    assert (frame.height == 0) == (period[0] == "2026-12-01")


@pytest.mark.parametrize("period", [(START, END), ("2026-12-01", "2026-12-02")])
def test_gateway_bill_columns(period, wh) -> None:
    frame = gateway_bill(wh, *period, "acme", "customer")
    assert dict(frame.schema) == GATEWAY_SCHEMA


def test_dates_and_datetimes_work_like_strings(wh) -> None:
    by_string = revenue_details(wh, START, END)
    assert revenue_details(wh, date(2026, 11, 2), date(2026, 11, 4)).equals(by_string)
    assert revenue_details(wh, datetime(2026, 11, 2), "2026-11-04T00:00").equals(
        by_string)


def test_totals_agree_with_margin_summary(wh) -> None:
    # The details are in each table's currency; the summary converts EUR at 1.10 (USD base).
    summary = wh.margin_summary("customer", since=datetime(2026, 11, 2),
                                       until=datetime(2026, 11, 4))
    revenue = revenue_details(wh, START, END)
    usd = revenue.filter(pl.col("currency") != "EUR")["revenue"].sum()
    eur = revenue.filter(pl.col("currency") == "EUR")["revenue"].sum()
    assert usd + eur * Decimal("1.10") == summary["revenue"].sum()
    assert revenue["calls"].sum() == summary["calls"].sum()
    assert clearing_details(wh, START, END)["cost"].sum() == summary["cost"].sum()
    assert set(summary["currency"]) == {"USD"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda wh: revenue_details(wh, START, END, customer="nobody"),
     "unknown customer 'nobody'; known: acme, globex"),
    (lambda wh: clearing_details(wh, START, END, vendor="carrier_z"),
     "unknown vendor 'carrier_z'; known: carrier_x, carrier_y"),
    (lambda wh: gateway_bill(wh, START, END, "carrier_z", "vendor"),
     "unknown vendor 'carrier_z'; known: carrier_x, carrier_y"),
    (lambda wh: gateway_bill(wh, START, END, "", "customer"), "name the customer to bill"),
    (lambda wh: gateway_bill(wh, START, END, "acme", "both"),
     "side must be one of customer, vendor; got 'both'"),
    (lambda wh: settlement_summary(wh, START, END, period="year"),
     "period must be one of day, week, month; got 'year'"),
    (lambda wh: revenue_details(wh, "2026-11-31", END),
     "start '2026-11-31' is not a date"),
    (lambda wh: clearing_details(wh, START, "tomorrow"), "end 'tomorrow' is not a date"),
    (lambda wh: settlement_summary(wh, END, START), "the period is empty"),
])
def test_bad_arguments_raise_report_error(call, message, wh) -> None:
    with pytest.raises(ReportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(wh)
