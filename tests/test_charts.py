"""The Plotly figures of ratelab.charts, on small frames with the reports contract's columns.

The checks read the figures' traces (values, names, axes), not pixels.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import plotly.graph_objects as go
import polars as pl
import pytest

from ratelab import charts

D = Decimal
MONEY = pl.Decimal(18, 6)


def margin_day_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "day": [date(2026, 11, 1), date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)],
            "destination": ["UK", "USA", "UK", "USA"],
            "revenue": [D("10"), D("4"), D("8"), D("5")],
            "cost": [D("7"), D("6"), D("9"), D("2")],
            "profit": [D("3"), D("-2"), D("-1"), D("3")],
            "margin": [0.3, -0.5, -0.125, 0.6],
        },
        schema_overrides={"revenue": MONEY, "cost": MONEY, "profit": MONEY},
    )


def margin_by_frame(by: str = "destination") -> pl.DataFrame:
    return pl.DataFrame(
        {
            by: ["UK", "USA", "France"],
            "calls": [10, 5, 3],
            "answered": [8, 4, 2],
            "minutes": [D("20.5"), D("7.0"), D("3.0")],
            "revenue": [D("1.5"), D("0.5"), D("0.2")],
            "cost": [D("1.0"), D("0.9"), D("0.3")],
            "profit": [D("0.5"), D("-0.4"), D("-0.1")],
            "margin": [1 / 3, -0.8, -0.5],
            "markup": [0.5, -0.444, -0.333],
        },
        schema_overrides={"revenue": MONEY, "cost": MONEY, "profit": MONEY},
    )


def quality_frame() -> pl.DataFrame:
    h1, h2 = datetime(2026, 11, 2, 10), datetime(2026, 11, 2, 11)
    return pl.DataFrame({
        "bucket": [h1, h1, h2],
        "vendor": ["carrier_x", "carrier_y", "carrier_x"],
        "attempts": [10, 10, 4],
        "answered": [5, 8, 0],
        "asr": [0.5, 0.8, 0.0],
        "acd_s": [60.0, 30.0, None],
        "pdd_ms": [1200.0, 900.0, 3000.0],
        "short_calls": [1, 0, 0],
        "short_ratio": [0.2, 0.0, None],
    })


def assert_no_data(fig: go.Figure, text: str = charts.NO_DATA) -> None:
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == [text]


def test_margin_heatmap_is_destination_by_day_centred_on_zero() -> None:
    fig = charts.margin_heatmap(margin_day_frame())
    heat, empty = fig.data  # the second draws the cells without calls (test_charts_polish)
    assert empty.name == charts.EMPTY_LABEL
    assert heat.type == "heatmap"
    assert list(heat.x) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    # UK totals 2, USA totals 1: the worse destination comes first
    assert list(heat.y) == ["USA", "UK"]
    assert [list(row) for row in heat.z] == [[-2.0, None, 3.0], [3.0, -1.0, None]]
    assert heat.zmid == 0
    scale = [c for _, c in heat.colorscale]
    assert scale[0] != scale[-1]  # diverging: two ends of different colours
    assert "destination" in fig.layout.title.text


def test_margin_heatmap_can_show_the_margin_and_other_keys() -> None:
    frame = margin_day_frame().rename({"destination": "customer"})
    fig = charts.margin_heatmap(frame, value="margin")
    assert fig.data[0].z[0][0] == pytest.approx(-0.5)
    assert fig.layout.yaxis.title.text == "customer"
    with pytest.raises(ValueError, match="value must be"):
        charts.margin_heatmap(frame, value="calls")


def test_top_loss_makers_chart_lists_losses_worst_first() -> None:
    fig = charts.top_loss_makers_chart(margin_by_frame())
    (bars,) = fig.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["USA", "France"]
    assert list(bars.x) == [-0.4, -0.1]
    assert bars.customdata[0][0] == pytest.approx(0.5)  # revenue of USA for the hover


def test_top_loss_makers_chart_without_losses_says_so() -> None:
    profitable = margin_by_frame("vendor").filter(pl.col("profit") > 0)
    assert_no_data(charts.top_loss_makers_chart(profitable), "no loss makers in this period")


def test_waterfall_goes_from_revenue_through_cost_to_profit() -> None:
    fig = charts.waterfall(margin_by_frame())
    (fall,) = fig.data
    assert fall.type == "waterfall"
    assert list(fall.x) == ["revenue", "cost", "profit"]
    assert list(fall.measure) == ["absolute", "relative", "total"]
    assert fall.y[0] == pytest.approx(2.2)
    assert fall.y[1] == pytest.approx(-2.2)
    assert fall.y[2] == pytest.approx(0.0)


def test_waterfall_of_a_settlement_frame() -> None:
    settlement = pl.DataFrame({
        "period_start": [date(2026, 11, 2)], "currency": ["USD"], "calls": [3], "answered": [2],
        "revenue": [D("0.120000")], "cost": [D("0.090000")], "profit": [D("0.030000")],
        "margin": [0.25]}, schema_overrides={"revenue": MONEY, "cost": MONEY, "profit": MONEY})
    fall = charts.waterfall(settlement).data[0]
    assert [round(v, 6) for v in fall.y] == [0.12, -0.09, 0.03]


def test_break_even_chart_marks_the_day_profit_reaches_fixed_costs() -> None:
    curve = pl.DataFrame({
        "day": [date(2026, 11, 3), date(2026, 11, 1), date(2026, 11, 2)],
        "cumulative_profit": [D("120"), D("40"), D("90")],
        "fixed_costs": [D("100")] * 3}, schema_overrides={"cumulative_profit": MONEY,
                                                          "fixed_costs": MONEY})
    fig = charts.break_even_chart(curve)
    profit, fixed, star = fig.data
    assert (profit.name, fixed.name, star.name) == ("cumulative profit", "fixed costs",
                                                    "break-even")
    assert list(profit.x) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert list(profit.y) == [40.0, 90.0, 120.0]
    assert list(fixed.y) == [100.0] * 3
    assert fixed.line.dash == "dash"
    assert list(star.x) == ["2026-11-03"]


def test_break_even_chart_without_reaching_it_has_no_marker() -> None:
    curve = pl.DataFrame({"day": [date(2026, 11, 1)], "cumulative_profit": [D("-5")],
                          "fixed_costs": [D("100")]})
    assert [t.name for t in charts.break_even_chart(curve).data] == ["cumulative profit",
                                                                     "fixed costs"]


def test_asr_acd_timeseries_adds_vendors_up_per_bucket() -> None:
    fig = charts.asr_acd_timeseries(quality_frame())
    attempts, asr, acd = fig.data
    assert (attempts.type, asr.type, acd.type) == ("bar", "scatter", "scatter")
    assert list(attempts.x) == ["2026-11-02 10:00", "2026-11-02 11:00"]
    assert list(attempts.y) == [20, 4]
    assert list(asr.y) == [65.0, 0.0]          # 13 answered of 20, then 0 of 4
    assert list(acd.y) == [pytest.approx(41.5), None]  # (5*60 + 8*30) / 13, none answered
    # bars on the primary axis, the lines each on a secondary one
    assert (attempts.yaxis, asr.yaxis, acd.yaxis) == ("y", "y2", "y3")
    assert fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.yaxis2.side == "right"


def test_asr_acd_timeseries_for_one_vendor_and_split() -> None:
    one = charts.asr_acd_timeseries(quality_frame(), key="carrier_y")
    assert [list(t.y) for t in one.data] == [[10], [80.0], [30.0]]
    assert "carrier_y" in one.layout.title.text
    split = charts.asr_acd_timeseries(quality_frame(), split=True)
    assert [t.name for t in split.data] == [
        "attempts carrier_x", "ASR carrier_x", "ACD carrier_x",
        "attempts carrier_y", "ASR carrier_y", "ACD carrier_y"]
    assert list(split.data[1].y) == [50.0, 0.0]
    assert_no_data(charts.asr_acd_timeseries(quality_frame(), key="nobody"))


def reconcile_frame() -> pl.DataFrame:
    t = datetime(2026, 11, 2, 10)
    return pl.DataFrame({
        "status": ["matched", "deviation", "only_ours", "only_theirs", "deviation"],
        "callee": ["441", "442", "443", "444", "445"],
        "our_start": [t, t.replace(minute=5), t.replace(minute=9), None, t.replace(minute=1)],
        "their_start": [t, t.replace(minute=5), None, t.replace(minute=7), t.replace(minute=1)],
        "our_duration_s": [D("60"), D("30"), D("10"), None, D("5")],
        "their_duration_s": [D("60"), D("33"), None, D("20"), D("5")],
        "duration_diff_s": [D("0"), D("3"), None, None, D("0")],
        "our_amount": [D("0.02"), D("0.01"), D("0.01"), None, D("0.01")],
        "their_amount": [D("0.02"), D("0.03"), None, D("0.02"), D("0.05")],
        "amount_diff": [D("0"), D("0.02"), None, None, D("0.04")],
    })


def test_reconciliation_chart_counts_statuses_and_plots_deviations() -> None:
    fig = charts.reconciliation_chart(reconcile_frame())
    counts = fig.data[0]
    assert list(counts.x) == ["matched", "deviation", "only_ours", "only_theirs"]
    assert list(counts.y) == [1, 2, 1, 1]
    scatter = {t.name: t for t in fig.data[1:]}
    assert sorted(scatter) == ["deviation", "matched"]
    assert list(scatter["deviation"].y) == [0.04, 0.02]   # in time order
    assert list(scatter["deviation"].text) == ["445", "442"]
    assert list(scatter["matched"].y) == [0.0]


def test_rate_deviation_and_what_if_charts() -> None:
    deviation = pl.DataFrame({
        "destination": ["UK", "USA"], "vendor": ["carrier_x", "carrier_x"],
        "calls_below_cost": [2, 7], "minutes_below_cost": [D("3.0"), D("9.5")],
        "loss": [D("0.010"), D("0.250")], "worst_deviation": [D("-0.001"), D("-0.004")]})
    bars = charts.rate_deviation_chart(deviation).data[0]
    assert list(bars.y) == ["USA · carrier_x", "UK · carrier_x"]
    assert list(bars.x) == [0.25, 0.01]
    what = pl.DataFrame({"destination": ["USA", "UK"], "revenue": [D("2"), D("3")],
                         "profit_before": [D("1"), D("2")], "profit_after": [D("0.5"), D("1.9")]})
    before, after = charts.what_if_chart(what).data
    # ordered by the change in profit, the biggest loss first (USA -0.5, UK -0.1)
    assert list(before.x) == ["USA", "UK"]
    assert (list(before.y), list(after.y)) == ([1.0, 2.0], [0.5, 1.9])


@pytest.mark.parametrize("chart, frame", [
    (charts.margin_heatmap, margin_day_frame()),
    (charts.top_loss_makers_chart, margin_by_frame()),
    (charts.waterfall, margin_by_frame()),
    (charts.break_even_chart, pl.DataFrame(schema={"day": pl.Date, "cumulative_profit": MONEY,
                                                   "fixed_costs": MONEY})),
    (charts.asr_acd_timeseries, quality_frame()),
    (charts.reconciliation_chart, reconcile_frame()),
    (charts.what_if_chart, pl.DataFrame(schema={"destination": pl.String,
                                                "profit_before": MONEY,
                                                "profit_after": MONEY})),
])
def test_an_empty_frame_gives_a_no_data_figure(chart, frame: pl.DataFrame) -> None:
    assert_no_data(chart(frame.clear()))


def test_empty_rate_deviation_says_nothing_was_below_cost() -> None:
    empty = pl.DataFrame(schema={"destination": pl.String, "vendor": pl.String, "loss": MONEY})
    assert_no_data(charts.rate_deviation_chart(empty), "no calls below cost in this period")


def test_a_frame_without_the_needed_columns_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="waterfall needs the columns cost"):
        charts.waterfall(pl.DataFrame({"revenue": [1.0], "profit": [1.0]}))


def test_charts_do_not_change_the_frame() -> None:
    frame = margin_day_frame()
    before = frame.clone()
    charts.margin_heatmap(frame)
    charts.waterfall(frame)
    assert frame.equals(before)
