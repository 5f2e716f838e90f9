"""Margin, loss-maker, rate-deviation and break-even reports on the golden warehouse
(tests/reports_fixtures.py; expected rows in tests/golden/reports/<function>.json)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

import ratelab
import ratelab.reports.margins
from ratelab import finance
from ratelab.money import money_context, quantize
from ratelab.reports import (
    ReportError,
    break_even,
    break_even_curve,
    margin_by,
    margin_by_day,
    rate_deviation,
    top_loss_makers,
)
from tests.reports_fixtures import END, START, build_golden_warehouse, check_golden

MONEY, MINUTES = pl.Decimal(18, 6), pl.Decimal(18, 1)
MARGIN_BY = {"calls": pl.Int64, "answered": pl.Int64, "minutes": MINUTES,
             "currency": pl.String, "revenue": MONEY, "cost": MONEY, "profit": MONEY,
             "margin": pl.Float64, "margin_ok": pl.Float64, "markup": pl.Float64,
             "flagged": pl.Int64, "flagged_revenue": MONEY, "synthetic": pl.Boolean}
EMPTY = ("2026-12-01", "2026-12-02")


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return build_golden_warehouse(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("report", [margin_by, margin_by_day, top_loss_makers, rate_deviation,
                                    break_even_curve], ids=lambda f: f.__name__)
def test_golden(report, wh) -> None:
    check_golden(report.__name__, report, wh)


@pytest.mark.parametrize("by", ["destination", "customer", "vendor"])
@pytest.mark.parametrize("period", [(START, END), EMPTY], ids=["data", "empty"])
def test_margin_columns_and_types(by, period, wh) -> None:
    assert dict(margin_by(wh, *period, by=by).schema) == {by: pl.String, **MARGIN_BY}
    assert dict(top_loss_makers(wh, *period, by=by).schema) == {by: pl.String, **MARGIN_BY}
    assert dict(margin_by_day(wh, *period, by=by).schema) == {
        "day": pl.Date, by: pl.String, "currency": pl.String, "revenue": MONEY, "cost": MONEY,
        "profit": MONEY, "margin": pl.Float64}


@pytest.mark.parametrize("period", [(START, END), EMPTY], ids=["data", "empty"])
def test_deviation_and_curve_columns(period, wh) -> None:
    assert dict(rate_deviation(wh, *period).schema) == {
        "destination": pl.String, "vendor": pl.String, "currency": pl.String,
        "calls_below_cost": pl.Int64,
        "minutes_below_cost": MINUTES, "loss": MONEY, "worst_deviation": MONEY}
    assert dict(break_even_curve(wh, *period, "1").schema) == {
        "day": pl.Date, "currency": pl.String, "cumulative_profit": MONEY,
        "fixed_costs": MONEY}


@pytest.mark.parametrize("by", ["destination", "customer", "vendor"])
def test_margin_by_is_margin_summary(by, wh) -> None:
    # One engine (issue 9): the report and `ratelab summary` give the same frame, every
    # column, type and float bit, for each grouping; also with a customer or vendor filter.
    ours = margin_by(wh, START, END, by=by)
    theirs = wh.margin_summary(by, since=datetime(2026, 11, 2), until=datetime(2026, 11, 4))
    assert ours.equals(theirs) and ours.schema == theirs.schema
    assert margin_by(wh, START, END, by=by, vendor="carrier_y").equals(
        wh.margin_summary(by, since=datetime(2026, 11, 2), until=datetime(2026, 11, 4),
                          vendor="carrier_y"))
    assert margin_by(wh, START, END, by=by, customer="globex").equals(
        wh.margin_summary(by, since=datetime(2026, 11, 2), until=datetime(2026, 11, 4),
                          customer="globex"))


def test_margin_summary_margin_is_not_rounded(wh) -> None:
    # The summary used to round margins to 4 places (0.0769 for UK, 0.076923 in the report):
    # now both keep the ratio of the exact sums, 0.0078 / 0.0798 (globex's EUR 0.018 is
    # USD 0.0198 at 1.10).
    uk = wh.margin_summary("destination", since=datetime(2026, 11, 2),
                           until=datetime(2026, 11, 4)).filter(pl.col("destination") == "UK")
    assert uk["margin"][0] == 0.0078 / 0.0798
    # an open period: every rated call, c10 on 2026-11-05 included
    everyone = wh.margin_summary("customer")
    assert everyone.select("customer", "calls", "flagged").rows() == [
        ("acme", 11, 1), ("globex", 2, 0)]


def test_margin_summary_sample_warehouse_matches_the_report(tmp_path) -> None:
    sample = ratelab.sample_warehouse(cdrs=40, rated=True, directory=tmp_path / "s")
    for by in ("destination", "customer", "vendor"):
        assert sample.margin_summary(by).equals(
            margin_by(sample, "2026-11-02", "2026-11-03", by=by))


@pytest.mark.parametrize("by", ["destination", "customer", "vendor"])
def test_heatmap_cells_are_the_margin_table_of_their_day(by, wh) -> None:
    """The heatmap's query (margin_by_day.sql) and the one margin query answer the same
    question per day and key: each cell equals margin_table's row for that day."""
    cells = margin_by_day(wh, START, END, by=by)
    assert cells.height > 0
    for cell in cells.iter_rows(named=True):
        day = cell["day"]
        table = ratelab.reports.margins.margin_table(
            wh, by, start=datetime(day.year, day.month, day.day),
            end=datetime(day.year, day.month, day.day) + timedelta(days=1))
        row = table.filter(pl.col(by) == cell[by]).row(0, named=True)
        assert (row["revenue"], row["cost"], row["profit"]) == \
            (cell["revenue"], cell["cost"], cell["profit"]), (day, cell[by])
        assert row["margin"] == pytest.approx(cell["margin"], rel=1e-12, abs=0) \
            if cell["margin"] is not None else row["margin"] is None


def test_top_loss_makers_only_negative_most_negative_first(wh) -> None:
    everyone = margin_by(wh, START, "2026-11-03", by="customer")
    losers = top_loss_makers(wh, START, "2026-11-03", by="customer")
    # globex's EUR 0.018 against USD 0.019 looked like a loss when unlike money was added; at
    # 1.10 it is USD 0.0198, a profit. acme lost 0.000833.
    assert losers["customer"].to_list() == ["acme"]
    assert (losers["profit"] < 0).all()
    assert losers.rows() == everyone.filter(pl.col("profit") < 0).sort("profit").rows()
    assert top_loss_makers(wh, START, END, by=["vendor", "destination"]).select(
        "vendor", "destination", "profit").rows() == [
            ("carrier_x", "UK Mobile", Decimal("-0.008333"))]
    assert top_loss_makers(wh, START, END, by="vendor").height == 0  # every vendor made money


# The golden period's totals (see tests/reports_fixtures.py): profit 0.020467 USD over 12 calls
# and 970 customer-billed seconds (globex's EUR 0.018 counts as USD 0.0198 at 1.10); day 1 ended
# at -0.000033, day 2 at 0.020467.
PROFIT, SECONDS, CALLS = Decimal("0.020467"), 970, 12


def _expected(fixed: str, days: int) -> dict:
    with money_context():
        minutes = Decimal(SECONDS) / 60
        per_minute = PROFIT / minutes
        avg = minutes / CALLS
    be = finance.break_even(fixed, per_minute, avg, period_days=days)
    return {"profit_per_minute": quantize(per_minute), "minutes": Decimal("16.2"),
            "avg_call_minutes": quantize(avg, 4), "minutes_needed": quantize(be.minutes, 1, "up"),
            "calls_needed": int(quantize(be.calls, 0, "up")), "cps_needed": float(be.cps)}


@pytest.mark.parametrize(("fixed", "day"), [("0.01", date(2026, 11, 3)), ("0.05", None),
                                            ("0", date(2026, 11, 3))])
def test_break_even_matches_finance(fixed, day, wh) -> None:
    row = break_even(wh, START, END, fixed).row(0, named=True)
    want = _expected(fixed, days=2)
    assert row["period_start"] == datetime(2026, 11, 2)
    assert row["period_end"] == datetime(2026, 11, 4)
    assert row["fixed_costs"] == quantize(fixed)
    assert (row["profit"], row["calls"]) == (PROFIT, CALLS)
    for column in ("profit_per_minute", "minutes", "avg_call_minutes", "minutes_needed",
                   "calls_needed"):
        assert row[column] == want[column], column
    assert row["cps_needed"] == pytest.approx(want["cps_needed"], rel=1e-15)
    assert row["broke_even_on"] == day


def test_break_even_by_hand(wh) -> None:
    # 0.01 / (0.020467 / (970 / 60)) = 7.899... minutes -> 7.9 (rounded up); at 970 / 60 / 12
    # minutes per call that is 5.86 calls -> 6; over two days 5.86 / 172800 calls per second
    row = break_even(wh, START, END, Decimal("0.01")).row(0, named=True)
    assert row["currency"] == "USD"
    assert row["profit_per_minute"] == Decimal("0.001266")
    assert row["minutes_needed"] == Decimal("7.9")
    assert row["calls_needed"] == 6
    assert row["avg_call_minutes"] == Decimal("1.3472")
    assert row["cps_needed"] == pytest.approx(0.01 / (0.020467 / (970 / 60)) / (970 / 60 / 12)
                                              / 172800)


def test_no_break_even_when_the_period_loses_money(wh) -> None:
    row = break_even(wh, START, "2026-11-03", "0.01").row(0, named=True)  # day 1: -0.000033
    assert row["profit"] == Decimal("-0.000033")
    assert (row["minutes_needed"], row["calls_needed"], row["cps_needed"]) == (None, None, None)
    assert row["broke_even_on"] is None


def test_break_even_empty_period(wh) -> None:
    frame = break_even(wh, *EMPTY, "100")
    assert frame.height == 0
    assert frame.columns == ["period_start", "period_end", "currency", "fixed_costs", "profit",
                             "profit_per_minute", "minutes", "calls", "avg_call_minutes",
                             "minutes_needed", "calls_needed", "cps_needed", "broke_even_on"]


def test_break_even_schema(wh) -> None:
    assert break_even(wh, START, END, "1").schema == break_even(wh, *EMPTY, "1").schema


@pytest.mark.parametrize(("call", "message"), [
    (lambda wh: break_even(wh, START, END, 100.0), "fixed_costs: money must not be a float"),
    (lambda wh: break_even(wh, START, END, "-5"), "fixed_costs must not be negative"),
    (lambda wh: break_even_curve(wh, START, END, "lots"), "fixed_costs"),
    (lambda wh: margin_by(wh, START, END, by="prefix"),
     "by must be one of destination, customer, vendor; got 'prefix'"),
    (lambda wh: top_loss_makers(wh, START, END, n=0), "n must be a positive whole number"),
    (lambda wh: margin_by_day(wh, "2026-11-02", "2026-11-02"), "the period is empty"),
    (lambda wh: rate_deviation(wh, "11/02/2026", END), "start '11/02/2026' is not a date"),
])
def test_bad_arguments_raise_report_error(call, message, wh) -> None:
    with pytest.raises(ReportError, match=message):
        call(wh)
