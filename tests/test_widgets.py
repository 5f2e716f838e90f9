"""The explorers' pure functions against a real warehouse, and their widgets driven headless."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import duckdb
import polars as pl
import pytest

import ratelab
from ratelab.reports import margin_by, what_if, whatif
from ratelab.reports.common import ReportError
from ratelab.reports.margins import margin_table
from ratelab.reports.whatif import change_factor, repriced_sql
from ratelab.widgets import (
    MarginExplorer,
    RateSimulator,
    margin_figure,
    margin_view,
    simulate,
    simulate_figure,
    simulator,
)
from tests.helpers import contract_cdr, write_jsonl
from tests.reports_fixtures import END, START, build_golden_warehouse

DAY = {"start": "2026-11-02", "end": "2026-11-03"}
NOV5 = {"start": "2026-11-05", "end": "2026-11-06"}


@pytest.fixture
def wh(tmp_path):
    """The sample warehouse (acme -> carrier_x, 2 Nov) plus two hand-made globex calls on 5 Nov:
    g1 to the UK via carrier_x, 61 s (customer 0.02 60/60: 120 s, 0.040000; vendor 0.015 1/1:
    61 s, 0.015250) and g2 to the USA via carrier_y, which has no rate table (30 s at 0.01 6/6:
    0.005000 revenue, no cost: no_vendor_rate)."""
    wh = ratelab.sample_warehouse(cdrs=60, rated=True, directory=tmp_path / "wh")
    wh.assign("cust_std", customer="globex")
    write_jsonl(tmp_path / "more" / "globex.jsonl", [
        contract_cdr("g1", "442071234567", "2026-11-05T12:00:00Z", 61000, customer="globex"),
        contract_cdr("g2", "15551234567", "2026-11-05T12:00:05Z", 30000, customer="globex",
                     vendor="carrier_y"),
    ])
    wh.ingest(tmp_path / "more")
    wh.rate()
    return wh


def _sums(rows, key):
    out = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for row in rows:
        acc = out[row[key]]
        acc[0] += 1
        acc[1] += row["revenue"] or 0
        acc[2] += row["cost"] or 0
    return out


def test_margin_view_matches_sums_computed_in_python(wh):
    view = margin_view(wh, **DAY, by="destination")
    expected = _sums(wh.rated().filter(pl.col("start_ts").dt.day() == 2)
                     .iter_rows(named=True), "destination")
    assert sorted(view["destination"]) == sorted(expected)
    for row in view.iter_rows(named=True):
        calls, revenue, cost = expected[row["destination"]]
        assert (row["calls"], row["revenue"], row["cost"]) == (calls, revenue, cost)
        assert row["profit"] == revenue - cost
        assert row["margin"] == pytest.approx(float((revenue - cost) / revenue))
        assert row["markup"] == pytest.approx(float((revenue - cost) / cost))
    assert view["profit"].to_list() == sorted(view["profit"].to_list(), reverse=True)
    assert view.schema["revenue"] == pl.Decimal(18, 6) and view.schema["margin"] == pl.Float64


def test_margin_view_filters_with_hand_computed_money(wh):
    view = margin_view(wh, **NOV5, customer="globex", by="vendor")
    assert view.select("vendor", "calls", "revenue", "cost", "profit", "flagged").rows() == [
        ("carrier_x", 1, Decimal("0.040000"), Decimal("0.015250"), Decimal("0.024750"), 0),
        ("carrier_y", 1, Decimal("0.005000"), Decimal("0.000000"), Decimal("0.005000"), 1),
    ]
    usa = margin_view(wh, start="2026-11-01", end="2026-11-30", destination="USA",
                      vendor="carrier_y")
    assert usa.select("destination", "calls", "minutes").rows() == [("USA", 1, Decimal("0.5"))]
    days = margin_view(wh, start="2026-11-01", end="2026-11-30", by="day")
    assert days["day"].to_list() == [date(2026, 11, 2), date(2026, 11, 5)]
    assert days["calls"].to_list() == [60, 2]


def test_margin_view_empty_period_and_bad_input(wh):
    empty = margin_view(wh, start="2026-12-01", end="2026-12-02")
    assert empty.height == 0 and empty.columns[:3] == ["destination", "calls", "answered"]
    assert margin_figure(empty).layout.annotations[0].text == "no calls in this period"
    with pytest.raises(ReportError, match="known: acme, globex"):
        margin_view(wh, **DAY, customer="acmee")
    with pytest.raises(ReportError, match="period is empty"):
        margin_view(wh, start="2026-11-03", end="2026-11-02")
    with pytest.raises(ValueError, match="by must be one of"):
        margin_view(wh, **DAY, by="prefix")


def test_margin_explorer_rerenders_when_values_change(wh):
    explorer = MarginExplorer(wh)
    assert (explorer.start.value, explorer.end.value) == (date(2026, 11, 2), date(2026, 11, 6))
    assert explorer.customer.options == ("(all)", "acme", "globex")
    assert explorer.frame["calls"].sum() == 62
    first = explorer.figure

    explorer.customer.value = "globex"
    assert explorer.frame["calls"].sum() == 2
    assert explorer.figure is not first
    assert sorted(explorer.figure.data[0].x) == ["USA", "United Kingdom"]
    # tables are for people: 2-4 decimals (the frame keeps 0.040000)
    assert ">0.04<" in explorer.table.value

    explorer.by.value = "vendor"
    assert explorer.frame["vendor"].to_list() == ["carrier_x", "carrier_y"]
    assert explorer.figure.layout.title.text == "Margin by vendor"
    assert explorer.chart.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]

    explorer.start.value = date(2026, 11, 6)
    explorer.end.value = date(2026, 11, 7)
    assert explorer.frame.height == 0 and "no calls in this period" in explorer.table.value

    explorer.end.value = date(2026, 11, 1)
    assert "period is empty" in explorer.message.value
    explorer.end.value = date(2026, 11, 7)
    assert explorer.message.value == ""


def test_simulate_vendor_change_rounds_half_up_per_call(wh):
    # g1's vendor rate 0.015 (1/1) +1 % is 0.01515, exact; 61 s cost 0.01515 * 61 / 60 =
    # 0.0154025, a tie: half up gives 0.015403 (half even 0.015402). The impact is what_if's
    # frame: every call of the period, so g2 (USA via carrier_y, unchanged) has its row too.
    rates, impact = simulate(wh, **NOV5, vendor="carrier_x", change_pct="1")
    assert impact.select("destination", "calls", "cost_before", "cost_after",
                         "revenue", "revenue_after", "profit_change").rows() == [
        ("USA", 1, Decimal("0"), Decimal("0"), Decimal("0.005000"), Decimal("0.005000"),
         Decimal("0")),
        ("United Kingdom", 1, Decimal("0.015250"), Decimal("0.015403"),
         Decimal("0.040000"), Decimal("0.040000"), Decimal("-0.000153"))]
    assert rates.select("vendor_prefix", "vendor_rate", "new_vendor_rate",
                        "new_customer_rate").rows() == [
        ("44", Decimal("0.015000"), Decimal("0.015150"), None)]


def test_simulate_target_margin_hand_computed(wh):
    # +10 %: vendor 0.015 -> 0.0165; margin 0.5 -> customer 0.033; 120 s billed -> 0.066000;
    # cost 0.0165 * 61 / 60 = 0.016775
    rates, impact = simulate(wh, **NOV5, vendor="carrier_x", change_pct=10,
                             target_margin="0.5")
    assert rates["new_customer_rate"].to_list() == [Decimal("0.033000")]
    uk = impact.filter(pl.col("destination") == "United Kingdom")
    assert uk.select("revenue_after", "cost_after", "profit_after", "profit_change").row(0) == (
        Decimal("0.066000"), Decimal("0.016775"), Decimal("0.049225"), Decimal("0.024475"))
    assert uk["margin_after"][0] == pytest.approx(0.049225 / 0.066)
    # g2 went through carrier_y: neither its cost nor its revenue moves
    usa = impact.filter(pl.col("destination") == "USA")
    assert usa.select("revenue", "revenue_after", "profit_change").row(0) == (
        Decimal("0.005000"), Decimal("0.005000"), Decimal("0"))


@pytest.fixture
def sim_wh(warehouse, deck, tmp_path):
    """acme -> carrier_x on 5 Nov, every amount worked by hand (see the test below)."""
    warehouse.import_deck(deck(
        "prefix,destination,rate,increment,connect_fee,effective_from\n"
        "44,UK,0.020,60/60,0,2026-01-01\n447,UK Mobile,0.050,30/6,0.010,2026-01-01\n"
        "1,USA,0.010,6/6,0,2026-01-01\n49,Germany,0.030,60/60,0,2026-01-01\n", "c.csv"),
        "cust", "customer")
    warehouse.import_deck(deck(
        "prefix,destination,rate,increment,effective_from\n"
        "44,UK,0.0150,1/1,2026-01-01\n447,UK Mobile,0.0331,1/1,2026-01-01\n"
        "1,USA,0.0072,6/6,2026-01-01\n", "v.csv"), "vend", "vendor")
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend", vendor="carrier_x")
    write_jsonl(tmp_path / "sim" / "cdrs.jsonl", [
        contract_cdr(i, number, f"2026-11-05T12:00:0{k}Z", ms)
        for k, (i, number, ms) in enumerate([
            ("a1", "442071234567", 61000), ("a2", "442071234568", 30000),
            ("a3", "447700900001", 45000), ("a4", "447700900002", 0),
            ("a5", "12125550001", 7000), ("a6", "4930123456", 60000)])])
    warehouse.ingest(tmp_path / "sim")
    warehouse.rate()
    return warehouse


def test_simulate_hand_computed(sim_wh):
    # As rated (customer | vendor), in millionths u where it helps:
    #   a1 UK 61 s:        60/60 -> 120 s, 0.020*120/60 = 0.040000 | 1/1, 0.015*61/60 = 0.015250
    #   a2 UK 30 s:        60 s, 0.020000                          | 0.015*30/60 = 0.007500
    #   a3 UK Mobile 45 s: 30/6 -> 30 + ceil(15/6)*6 = 48 s, fee 0.010 + 0.050*48/60 = 0.050000
    #                                                              | 0.0331*45/60 = 0.024825
    #   a4 UK Mobile, unanswered: 0 | 0
    #   a5 USA 7 s:        6/6 -> 12 s, 0.010*12/60 = 0.002000     | 12 s, 0.0072*12/60 = 0.001440
    #   a6 Germany 60 s:   0.030000 | carrier_x has no 49: no vendor rate, cost null
    before = sim_wh.rated()
    assert before.sort("cdr_id").select("cdr_id", "revenue", "cost").rows() == [
        ("a1", Decimal("0.040000"), Decimal("0.015250")),
        ("a2", Decimal("0.020000"), Decimal("0.007500")),
        ("a3", Decimal("0.050000"), Decimal("0.024825")),
        ("a4", Decimal("0.000000"), Decimal("0.000000")),
        ("a5", Decimal("0.002000"), Decimal("0.001440")),
        ("a6", Decimal("0.030000"), None)]
    rates, impact = simulate(sim_wh, **NOV5, vendor="carrier_x", change_pct="7.5",
                             target_margin="0.3")
    # New vendor rates: x 1.075, half up to 6 places.
    #   44: 0.015 * 1.075 = 0.016125;  447: 0.0331 * 1.075 = 0.0355825, a tie -> 0.035583
    #   (half even: 0.035582);  1: 0.0072 * 1.075 = 0.00774
    # New customer rates: new vendor rate / (1 - 0.3), rounded up to 6 places.
    #   44: 0.016125 / 0.7 = 0.0230357... -> 0.023036
    #   447: 0.035583 / 0.7 = 0.0508328... -> 0.050833
    #   1: 0.00774 / 0.7 = 0.0110571... -> 0.011058 (half up would be 0.011057)
    assert rates.rows() == [
        ("UK", "44", Decimal("0.015000"), 2, Decimal("0.016125"), Decimal("0.023036")),
        ("UK Mobile", "447", Decimal("0.033100"), 2, Decimal("0.035583"), Decimal("0.050833")),
        ("USA", "1", Decimal("0.007200"), 1, Decimal("0.007740"), Decimal("0.011058"))]
    # Per call, cost after = the call re-rated at the new vendor rate (what_if), half up;
    # revenue after = (fee*60 + new rate * billed customer seconds) / 60 half up, the
    # customer's increments and fee kept:
    #   a1: 0.016125 * 61 / 60 = 0.01639375 -> 0.016394;  23036u * 120 / 60 = 46072u -> 0.046072
    #   a2: 0.016125 * 30 / 60 = 0.0080625, a tie -> 0.008063;  23036u * 60 / 60 -> 0.023036
    #   a3: 0.035583 * 45 / 60 = 0.02668725 -> 0.026687 (the old simulator's stored cost x
    #       1.075 = 0.026686875 rounds to the same);
    #       (10000u * 60 + 50833u * 48) / 60 = (600000 + 2439984) / 60 = 50666.4u -> 0.050666
    #   a4: 0 -> 0;  unanswered -> 0
    #   a5: 0.00774 * 12 / 60 = 0.001548;  11058u * 12 / 60 = 2211.6u -> 0.002212
    #   a6: no vendor rate: revenue kept, 0.030000; cost null counts 0
    # Sums per destination (revenue before, after; cost before, after):
    #   Germany   0.030000, 0.030000; 0, 0
    #   UK        0.040000 + 0.020000 = 0.060000, 0.046072 + 0.023036 = 0.069108;
    #             0.015250 + 0.007500 = 0.022750, 0.016394 + 0.008063 = 0.024457
    #   UK Mobile 0.050000, 0.050666; 0.024825, 0.026687
    #   USA       0.002000, 0.002212; 0.001440, 0.001548
    # Profit before, after, change:
    #   Germany   0.030000, 0.030000, 0
    #   UK        0.060000 - 0.022750 = 0.037250, 0.069108 - 0.024457 = 0.044651, +0.007401
    #   UK Mobile 0.050000 - 0.024825 = 0.025175, 0.050666 - 0.026687 = 0.023979, -0.001196
    #   USA       0.002000 - 0.001440 = 0.000560, 0.002212 - 0.001548 = 0.000664, +0.000104
    assert impact.select(
        "destination", "calls", "revenue", "revenue_after", "cost_before", "cost_after",
        "profit_before", "profit_after", "profit_change").rows() == [
        ("Germany", 1, *map(Decimal, ("0.030000", "0.030000", "0", "0",
                                      "0.030000", "0.030000", "0"))),
        ("UK", 2, *map(Decimal, ("0.060000", "0.069108", "0.022750", "0.024457",
                                 "0.037250", "0.044651", "0.007401"))),
        ("UK Mobile", 2, *map(Decimal, ("0.050000", "0.050666", "0.024825", "0.026687",
                                        "0.025175", "0.023979", "-0.001196"))),
        ("USA", 1, *map(Decimal, ("0.002000", "0.002212", "0.001440", "0.001548",
                                  "0.000560", "0.000664", "0.000104")))]
    assert impact["margin_before"].to_list() == pytest.approx(
        [1.0, 0.037250 / 0.060000, 0.025175 / 0.050000, 0.000560 / 0.002000])
    assert impact["margin_after"].to_list() == pytest.approx(
        [1.0, 0.044651 / 0.069108, 0.023979 / 0.050666, 0.000664 / 0.002212])
    # nothing stored changed
    assert sim_wh.rated().equals(before)


def test_simulate_errors(wh):
    with pytest.raises(ReportError, match="give change_pct, target_margin or both"):
        simulate(wh, **DAY, vendor="carrier_x")
    with pytest.raises(ReportError, match="more than 6 decimal places"):
        simulate(wh, **DAY, vendor="carrier_x", change_pct="0.0000001")
    with pytest.raises(ReportError, match="unknown vendor 'nobody'"):
        simulate(wh, **DAY, vendor="nobody", change_pct=1)
    # what_if's convention: a float percentage is the decimal it prints as
    assert simulate(wh, **DAY, vendor="carrier_x", change_pct=1.5)[1].equals(
        simulate(wh, **DAY, vendor="carrier_x", change_pct="1.5")[1])
    rates, impact = simulate(wh, "2026-12-01", "2026-12-02", vendor="carrier_x", change_pct=1)
    assert rates.height == impact.height == 0 and "profit_change" in impact.columns
    assert simulate_figure(impact).layout.annotations[0].text == "no calls in this period"


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return build_golden_warehouse(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("by", ["destination", "customer", "vendor", "day"])
@pytest.mark.parametrize("filters", [
    {}, {"customer": "acme"}, {"vendor": "carrier_y"}, {"destination": "UK"},
    {"destination": "(unrated)"}, {"customer": "globex", "vendor": "carrier_y",
                                   "destination": "UK"},
], ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()) or "all")
@pytest.mark.parametrize("period", [(START, END), ("2026-11-01", "2026-11-30")],
                         ids=["report-period", "month"])
def test_margin_view_is_margin_table_on_the_golden_warehouse(golden, by, filters, period):
    # One engine (issue 9): the explorer's frame is margin_table's (the query of margin_by and
    # Warehouse.margin_summary) for the same filters, every value and type, minus `synthetic`.
    start, end = period
    view = margin_view(golden, start=start, end=end, by=by, **filters)
    table = margin_table(golden, by, start=start, end=end, **filters)
    assert view.equals(table.drop("synthetic")) and view.schema == table.drop("synthetic").schema
    assert view.columns == [by, "calls", "answered", "minutes", "currency", "revenue", "cost",
                            "profit", "margin", "margin_ok", "markup", "flagged",
                            "flagged_revenue"]
    assert view.height > 0
    if by != "day" and "destination" not in filters:
        assert view.equals(margin_by(golden, start, end, by=by, **filters).drop("synthetic"))


def test_margin_table_day_and_destination_agree_with_margin_by(golden):
    # The groupings the explorer added to the one query: a day's row is margin_by over that
    # day, summed; a destination filter keeps margin_by's row of that destination.
    days = margin_table(golden, "day", start=START, end="2026-11-30")
    assert days["day"].to_list() == [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5)]
    for row in days.iter_rows(named=True):
        day = row["day"].isoformat()
        after = date.fromordinal(row["day"].toordinal() + 1).isoformat()
        per_vendor = margin_by(golden, day, after, by="vendor")
        for column in ("calls", "answered", "revenue", "cost", "profit", "flagged"):
            assert row[column] == per_vendor[column].sum(), (day, column)
    by_destination = margin_by(golden, START, END)
    for destination in by_destination["destination"]:
        only = margin_table(golden, start=START, end=END, destination=destination)
        assert only.equals(by_destination.filter(pl.col("destination") == destination))
    assert margin_table(golden, start=START, end=END, destination="Mars").height == 0


@pytest.mark.parametrize("vendor", ["carrier_x", "carrier_y"])
@pytest.mark.parametrize("change", ["3.3333", "-7.5", "0", "12.345678", "-100"])
def test_simulate_is_what_if_on_the_golden_warehouse(golden, vendor, change):
    # One engine (issue 9): the widget's impact is what_if's frame, every column and value.
    _, impact = simulate(golden, START, END, vendor=vendor, change_pct=change)
    assert impact.equals(what_if(golden, START, END, vendor=vendor, change_pct=change))
    assert impact.schema == what_if(golden, START, END, vendor=vendor,
                                    change_pct=change).schema


@pytest.mark.parametrize(("change", "expected"), [
    # carrier_x's rates as seen in the period (UK 0.015, UK Mobile 0.035, USA 0.008), each
    # times 1 + change / 100, half up to 6 places: 0.008 * 1.0000625 = 0.0080005 -> 0.008001.
    ("0.00625", ["0.015001", "0.035002", "0.008001"]),
    ("3.3333", ["0.015500", "0.036167", "0.008267"]),
    ("-7.5", ["0.013875", "0.032375", "0.007400"]),
    ("12.345678", ["0.016852", "0.039321", "0.008988"]),
    ("-100", ["0.000000", "0.000000", "0.000000"]),
])
def test_simulate_new_vendor_rate_is_what_ifs_rule(golden, change, expected):
    # One rule (issue 9): the simulator's new vendor rate is what_if's re-pricing expression
    # (repriced_sql), and what_if's own re-pricing of a rate table gives the same rates.
    assert simulator._RATES_SQL.count(repriced_sql("vendor_rate")) == 1
    rates, _ = simulate(golden, START, END, vendor="carrier_x", change_pct=change)
    by_rate = dict(zip(rates["vendor_rate"], rates["new_vendor_rate"], strict=True))
    old = [Decimal("0.015"), Decimal("0.035"), Decimal("0.008")]
    assert [by_rate[rate] for rate in old] == [Decimal(e) for e in expected]
    con = duckdb.connect()
    con.execute("CREATE TABLE rates (i INTEGER, first_rate DECIMAL(18, 6), rate DECIMAL(18, 6))")
    con.executemany("INSERT INTO rates VALUES (?, ?, ?)",
                    [(i, rate, rate) for i, rate in enumerate(rates["vendor_rate"])])
    whatif._reprice(con, change_factor(change))
    repriced = con.execute("SELECT first_rate, rate FROM rates ORDER BY i").fetchall()
    assert repriced == [(new, new) for new in rates["new_vendor_rate"]]


def test_simulate_3_3333_percent_hand_computed(golden):
    # carrier_x's USA rate 0.008 (6/6) +3.3333 %: 0.008 * 1.033333 = 0.008266664, a rate table
    # holds 6 places: 0.008267. c7 30 s: 0.008267 * 30 / 60 = 0.0041335 -> 0.004134 (half up);
    # c12 600 s: 0.008267 * 600 / 60 = 0.082670; c5 unanswered: 0. Sum 0.086804.
    # (The old simulator scaled stored costs instead: 0.004 * 1.033333 -> 0.004133 and
    # 0.08 * 1.033333 = 0.08266664 -> 0.082667, sum 0.086800: a per-minute rate of
    # 0.0082666640 that no rate table can hold, so no vendor would bill it.)
    rates, impact = simulate(golden, START, END, vendor="carrier_x", change_pct="3.3333")
    usa = impact.filter(pl.col("destination") == "USA")
    assert usa.select("cost_before", "cost_after").row(0) == (Decimal("0.084000"),
                                                              Decimal("0.086804"))
    assert rates.filter(pl.col("vendor_prefix") == "1")["new_vendor_rate"].to_list() == [
        Decimal("0.008267")]


@pytest.fixture
def fee_wh(warehouse, deck, tmp_path):
    """A vendor with a connect fee: 44 UK 0.0150 1/1, fee 0.0100; acme buys UK at 0.02 60/60."""
    warehouse.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                               "44,UK,0.020,60/60,2026-01-01\n", "c.csv"), "cust", "customer")
    warehouse.import_deck(deck("prefix,destination,rate,increment,connect_fee,effective_from\n"
                               "44,UK,0.0150,1/1,0.0100,2026-01-01\n", "v.csv"),
                          "vend", "vendor")
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend", vendor="carrier_x")
    write_jsonl(tmp_path / "fee" / "cdrs.jsonl", [
        contract_cdr("f1", "442071234567", "2026-11-05T12:00:00Z", 61000),
        contract_cdr("f2", "442071234568", "2026-11-05T12:00:01Z", 0)])
    warehouse.ingest(tmp_path / "fee")
    warehouse.rate()
    return warehouse


@pytest.mark.parametrize(("change", "cost_after"), [
    # the fee stays, the rate moves: 0.01 + new rate * 61 / 60
    ("10", "0.026775"),     # 0.0165 * 61 / 60 = 0.016775
    ("-20", "0.022200"),    # 0.012 * 61 / 60 = 0.0122
    ("3.3333", "0.025758"),  # 0.015 * 1.033333 = 0.015499995 -> 0.015500; * 61/60 = 0.0157583
])
def test_simulate_keeps_the_vendor_connect_fee(fee_wh, change, cost_after):
    # f1 61 s cost 0.0100 + 0.015 * 61 / 60 = 0.025250; f2 unanswered: no fee, 0.
    # The old simulator scaled the whole stored cost, fee included (+10 %: 0.027775).
    _, impact = simulate(fee_wh, **NOV5, vendor="carrier_x", change_pct=change)
    assert impact.select("cost_before", "cost_after").row(0) == (Decimal("0.025250"),
                                                                 Decimal(cost_after))
    assert impact.equals(what_if(fee_wh, **NOV5, vendor="carrier_x", change_pct=change))


def test_rate_simulator_widget(wh):
    sim = RateSimulator(wh)
    assert sim.vendor.options == ("carrier_x", "carrier_y")
    assert sim.message.value == ""                    # 0 %: the traffic as it was
    assert (sim.impact["cost_after"] == sim.impact["cost_before"]).all()
    sim.change_pct.value = 10.0
    assert (sim.impact["cost_after"] > sim.impact["cost_before"]).all()
    assert sim.rates["new_customer_rate"].is_null().all()
    sim.use_target.value = True
    sim.target_pct.value = 50.0
    assert sim.rates.filter(pl.col("vendor_prefix") == "44")["new_customer_rate"].to_list() \
        == [Decimal("0.033000")]
    assert [t.name for t in sim.figure.data] == ["profit before", "profit after"]
    assert ">0.0330<" in sim.rates_table.value    # a rate: 4-6 decimals for people
    sim.start.value, sim.end.value = date(2026, 11, 5), date(2026, 11, 6)
    # USA: g2 via carrier_y, unchanged; United Kingdom: g1 at the 50 % target margin
    assert sim.impact["revenue_after"].to_list() == [Decimal("0.005000"), Decimal("0.066000")]
