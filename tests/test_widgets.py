"""The explorers' pure functions against a real warehouse, and their widgets driven headless."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

import ratelab
from ratelab import auto_create_rate, call_charge, quantize
from ratelab.reports.common import ReportError
from ratelab.widgets import (
    MarginExplorer,
    RateSimulator,
    margin_figure,
    margin_view,
    simulate,
    simulate_figure,
)
from tests.conftest import contract_cdr, write_jsonl

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
    assert "0.040000" in explorer.table.value

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
    # g1 costs 0.015250; +1 % is 0.0154025, a tie: half up gives 0.015403 (half even 0.015402)
    rates, impact = simulate(wh, vendor="carrier_x", change_pct="1", **NOV5)
    assert impact.select("destination", "calls", "cost_before", "cost_after",
                         "revenue_before", "revenue_after", "profit_change").rows() == [
        ("United Kingdom", 1, Decimal("0.015250"), Decimal("0.015403"),
         Decimal("0.040000"), Decimal("0.040000"), Decimal("-0.000153"))]
    assert rates.select("vendor_prefix", "vendor_rate", "new_vendor_rate",
                        "new_customer_rate").rows() == [
        ("44", Decimal("0.015000"), Decimal("0.015150"), None)]


def test_simulate_target_margin_hand_computed(wh):
    # +10 %: vendor 0.015 -> 0.0165; margin 0.5 -> customer 0.033; 120 s billed -> 0.066000
    rates, impact = simulate(wh, vendor="carrier_x", change_pct=10, target_margin="0.5",
                             **NOV5)
    assert rates["new_customer_rate"].to_list() == [Decimal("0.033000")]
    assert impact.select("revenue_after", "cost_after", "profit_after").row(0) == (
        Decimal("0.066000"), Decimal("0.016775"), Decimal("0.049225"))
    assert impact["margin_after"][0] == pytest.approx(0.049225 / 0.066)


def test_simulate_matches_an_independent_python_computation(wh):
    pct, target = Decimal("7.5"), Decimal("0.3")
    before = wh.rated()
    rates, impact = simulate(wh, vendor="carrier_x", change_pct=pct, target_margin=target,
                             **DAY)
    factor = 1 + pct / 100
    expected = defaultdict(lambda: [Decimal(0)] * 4)
    for row in before.filter(pl.col("start_ts").dt.day() == 2).iter_rows(named=True):
        new_vendor = quantize(row["vendor_rate"] * factor, 6, "half_up")
        new_rate = auto_create_rate(new_vendor, margin=target)
        acc = expected[row["destination"]]
        acc[0] += row["revenue"]
        acc[1] += call_charge(row["billed_s_customer"], new_rate, 1, new_rate, 1)
        acc[2] += row["cost"]
        acc[3] += quantize(row["cost"] * factor, 6, "half_up")
    got = {r[0]: list(r[1:]) for r in impact.select(
        "destination", "revenue_before", "revenue_after", "cost_before", "cost_after").rows()}
    assert got == {k: list(v) for k, v in expected.items()}
    assert impact["destination"].to_list() == sorted(expected)
    assert rates.height >= 3 and rates["new_customer_rate"].is_not_null().all()
    # nothing stored changed
    assert wh.rated().equals(before)


def test_simulate_errors(wh):
    with pytest.raises(ValueError, match="give change_pct, target_margin or both"):
        simulate(wh, vendor="carrier_x", **DAY)
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        simulate(wh, vendor="carrier_x", change_pct="0.0000001", **DAY)
    with pytest.raises(TypeError, match="float"):
        simulate(wh, vendor="carrier_x", change_pct=1.5, **DAY)
    with pytest.raises(ReportError, match="unknown vendor 'nobody'"):
        simulate(wh, vendor="nobody", change_pct=1, **DAY)
    rates, impact = simulate(wh, vendor="carrier_x", change_pct=1, start="2026-12-01",
                             end="2026-12-02")
    assert rates.height == impact.height == 0 and "profit_change" in impact.columns
    assert simulate_figure(impact).layout.annotations[0].text == "no calls in this period"


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
    assert "0.033000" in sim.rates_table.value
    sim.start.value, sim.end.value = date(2026, 11, 5), date(2026, 11, 6)
    assert sim.impact["revenue_after"].to_list() == [Decimal("0.066000")]
