"""Chart polish: currency on money axes, numbers for people in tables (the frames stay exact),
empty heatmap cells apart from near-zero ones, a single ASR/ACD bucket that is not one
full-width bar, and what-if bars sorted by change, the top N and the rest summed."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import plotly.graph_objects as go
import polars as pl
import pytest

from ratelab import charts
from ratelab.widgets import margin_figure, simulate_figure
from ratelab.widgets.common import html_table

D = Decimal
MONEY = pl.Decimal(18, 6)


def money_frame(**extra: list[object]) -> pl.DataFrame:
    return pl.DataFrame({"destination": ["UK", "USA"], "revenue": [D("3"), D("1")],
                         "cost": [D("4"), D("2")], "profit": [D("-1"), D("-1")], **extra},
                        schema_overrides={"revenue": MONEY, "cost": MONEY, "profit": MONEY})


# -- currency ------------------------------------------------------------------------------

def axis_titles(fig: go.Figure) -> list[str]:
    titles: list[str] = []
    layout = fig.layout
    for name in ("xaxis", "yaxis", "xaxis2", "yaxis2"):
        axis = getattr(layout, name, None)
        if axis is not None and axis.title.text:
            titles.append(axis.title.text)
    for trace in fig.data:
        if trace.type == "heatmap" and trace.showscale is not False and trace.colorbar.title.text:
            titles.append(trace.colorbar.title.text)
    return titles


def money_charts(currency: str | None) -> dict[str, go.Figure]:
    heat = pl.DataFrame({"day": [date(2026, 11, 2)], "destination": ["UK"],
                         "profit": [D("1")]})
    curve = pl.DataFrame({"day": [date(2026, 11, 2)], "cumulative_profit": [D("1")],
                          "fixed_costs": [D("5")]})
    deviation = pl.DataFrame({"destination": ["UK"], "vendor": ["v"], "loss": [D("1")]})
    recon = pl.DataFrame({"status": ["deviation"], "our_start": [datetime(2026, 11, 2)],
                          "amount_diff": [D("0.5")]})
    what = pl.DataFrame({"destination": ["UK"], "profit_before": [D("1")],
                         "profit_after": [D("2")]})
    return {
        "waterfall": charts.waterfall(money_frame(), currency=currency),
        "top_loss_makers_chart": charts.top_loss_makers_chart(money_frame(), currency=currency),
        "margin_heatmap": charts.margin_heatmap(heat, currency=currency),
        "break_even_chart": charts.break_even_chart(curve, currency=currency),
        "rate_deviation_chart": charts.rate_deviation_chart(deviation, currency=currency),
        "reconciliation_chart": charts.reconciliation_chart(recon, currency=currency),
        "what_if_chart": charts.what_if_chart(what, currency=currency),
    }


@pytest.mark.parametrize("name", sorted(money_charts(None)))
def test_money_axes_name_the_currency_passed_in(name: str) -> None:
    titles = axis_titles(money_charts("EUR")[name])
    assert any(t.endswith("(EUR)") for t in titles), titles
    # without a currency (and none in the frame) the axes say no currency at all
    plain = axis_titles(money_charts(None)[name])
    assert plain and not any(re.search(r"\((?!UTC)[A-Z]{3}\)$", t) for t in plain), plain


def test_the_currency_defaults_to_what_the_frame_says() -> None:
    settlement = money_frame(currency=["GBP", "GBP"])
    assert charts.waterfall(settlement).layout.yaxis.title.text == "amount (GBP)"
    assert charts.top_loss_makers_chart(settlement).layout.xaxis.title.text == \
        "profit (loss) (GBP)"
    # (unrated) rows carry no currency of their own
    assert charts.chart_currency(money_frame(currency=["GBP", "(unrated)"])) == "GBP"
    # an explicit currency wins
    assert charts.waterfall(settlement, currency="USD").layout.yaxis.title.text == \
        "amount (USD)"


def test_unlike_money_is_never_added() -> None:
    mixed = money_frame(currency=["EUR", "USD"])
    with pytest.raises(ValueError, match="EUR, USD: a chart adds no unlike money"):
        charts.waterfall(mixed)
    with pytest.raises(ValueError, match="unlike money"):
        charts.chart_currency(mixed)


def test_the_margin_explorer_figure_names_the_currency() -> None:
    frame = money_frame(margin=[-0.3, -1.0])
    assert margin_figure(frame, currency="EUR").layout.yaxis.title.text == "amount (EUR)"
    assert margin_figure(frame).layout.yaxis.title.text == "amount"


# -- numbers for people --------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (D("1234567.5"), "1,234,567.50"),
    (D("15.527000"), "15.527"),
    (D("11.360400"), "11.3604"),
    (D("0.008333"), "0.0083"),
    (D("0.00005"), "0.0001"),        # half up at the 4th decimal
    (D("-2"), "-2.00"),
    (D("0"), "0.00"),
])
def test_format_amount_has_separators_and_two_to_four_decimals(value: Decimal,
                                                                text: str) -> None:
    assert charts.format_amount(value) == text


def test_people_table_formats_and_the_frame_stays_exact() -> None:
    frame = pl.DataFrame({
        "destination": ["USA"], "calls": [1779], "minutes": [D("12345.6")],
        "revenue": [D("7015.527000")], "customer_rate": [D("0.008267")],
        "margin": [0.268345], "acd_s": [357.724071]},
        schema_overrides={"revenue": MONEY, "customer_rate": MONEY,
                          "minutes": pl.Decimal(18, 1)})
    before = frame.clone()
    shown = charts.people_table(frame)
    assert shown.row(0) == ("USA", "1,779", "12,345.6", "7,015.527", "0.008267", "26.8%",
                            "357.7")
    assert frame.equals(before) and frame["revenue"][0] == D("7015.527000")
    html = charts.table_html(frame)
    assert '<td class="n">7,015.527</td>' in html and '<td>USA</td>' in html
    # every column is there: nothing dropped or cut
    assert html.count("<th>") == frame.width


def test_explorer_tables_use_the_people_format() -> None:
    html = html_table(money_frame(currency=["USD", "USD"]))
    assert '<td class="n">3.00</td>' in html and "3.000000" not in html


# -- empty heatmap cells -------------------------------------------------------------------

def test_empty_heatmap_cells_are_drawn_apart_from_near_zero_ones() -> None:
    frame = pl.DataFrame({
        "day": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 1)],
        "destination": ["UK", "UK", "USA"],
        "profit": [D("0.000001"), D("5"), D("-5")]})
    fig = charts.margin_heatmap(frame)
    values, empty = fig.data
    assert list(values.y) == ["USA", "UK"]
    # the near-zero cell is a value; the USA cell of 2 Nov has no calls
    assert [list(r) for r in values.z] == [[-5.0, None], [1e-06, 5.0]]
    assert [list(r) for r in empty.z] == [[None, 1], [None, None]]
    assert empty.name == charts.EMPTY_LABEL and empty.showlegend is True
    assert empty.showscale is False
    # drawn in a grey that is not on the money scale (white at zero, red, blue)
    colours = {c for _, c in empty.colorscale}
    assert colours == {charts.EMPTY_COLOUR}
    assert charts.EMPTY_COLOUR.lower() not in {c.lower() for _, c in values.colorscale}
    assert fig.layout.plot_bgcolor == "white"  # gaps between cells are not mistaken for data


def test_a_full_heatmap_has_no_empty_legend_entry() -> None:
    frame = pl.DataFrame({"day": [date(2026, 11, 1)], "destination": ["UK"],
                          "profit": [D("0")]})
    values, empty = charts.margin_heatmap(frame).data
    assert list(values.z[0]) == [0.0]
    assert empty.showlegend is False and list(empty.z[0]) == [None]


# -- a single ASR/ACD bucket ---------------------------------------------------------------

def quality(buckets: list[datetime]) -> pl.DataFrame:
    n = len(buckets)
    return pl.DataFrame({"bucket": buckets, "vendor": ["carrier_x"] * n,
                         "attempts": [10] * n, "answered": [5] * n, "asr": [0.5] * n,
                         "acd_s": [60.0] * n})


def test_a_single_bucket_is_a_narrow_bar_with_labelled_markers() -> None:
    fig = charts.asr_acd_timeseries(quality([datetime(2026, 11, 2)]))
    bars, asr, acd = fig.data
    assert list(bars.width) == [0.2]                  # not the full category width
    assert asr.mode == "markers+text" and acd.mode == "markers+text"
    assert list(asr.text) == ["ASR 50.0%"] and list(acd.text) == ["ACD 60.0 s"]
    many = charts.asr_acd_timeseries(quality([datetime(2026, 11, 2), datetime(2026, 11, 3)]))
    assert many.data[0].width is None and many.data[1].mode == "lines+markers"


# -- what-if bars --------------------------------------------------------------------------

def what_if_frame(n: int) -> pl.DataFrame:
    # destination d<i> changes by (i - 5): d0 -5, ..., d5 0, ..., d9 +4
    return pl.DataFrame({
        "destination": [f"d{i}" for i in range(n)],
        "profit_before": [D("10")] * n,
        "profit_after": [D(10 + i - 5) for i in range(n)]},
        schema_overrides={"profit_before": MONEY, "profit_after": MONEY})


def test_what_if_bars_are_the_top_changes_sorted_with_the_rest_summed() -> None:
    frame = what_if_frame(10)
    before, after = charts.what_if_chart(frame, top=4).data
    # the 4 biggest changes in absolute value: d0 -5, d1 -4, d9 +4, d2 -3; by change
    assert list(after.x) == ["d0", "d1", "d2", "d9", "other (6)"]
    assert list(after.y) == [5.0, 6.0, 7.0, 14.0, 60.0 + 3]   # d3..d8 after: 8+9+10+11+12+13
    assert list(before.y) == [10.0] * 4 + [60.0]
    assert list(after.customdata) == [-5.0, -4.0, -3.0, 4.0, 3.0]  # the changes (hover)
    assert frame.equals(what_if_frame(10))


def test_what_if_default_top_and_no_other_bar_when_all_fit() -> None:
    assert charts.WHAT_IF_TOP == 15
    names = list(charts.what_if_chart(what_if_frame(20)).data[0].x)
    assert len(names) == 16 and names[-1] == "other (5)"
    assert "other" not in " ".join(charts.what_if_chart(what_if_frame(3)).data[0].x)
    with pytest.raises(ValueError, match="top must be at least 1"):
        charts.what_if_chart(what_if_frame(3), top=0)


def test_the_simulator_figure_is_the_what_if_chart() -> None:
    fig = simulate_figure(what_if_frame(10), top=2, currency="USD")
    assert list(fig.data[1].x) == ["d0", "d1", "other (8)"]
    assert fig.layout.yaxis.title.text == "profit (USD)"


def test_warehouse_currency_prefers_the_warehouse_base_currency() -> None:
    class Base:
        def base_currency(self) -> str:
            return "EUR"

    class Attribute:
        base_currency = "GBP"

    assert charts.warehouse_currency(Base()) == "EUR"
    assert charts.warehouse_currency(Attribute()) == "GBP"
