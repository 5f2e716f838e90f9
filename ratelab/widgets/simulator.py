"""Rate simulator: a vendor's rates change by a percentage, or customer rates are set at a target
margin over the (new) vendor rates; what would last period's traffic have earned?

The pure part is :func:`simulate`; :class:`RateSimulator` is the ipywidgets layer. Nothing is
written: the stored ``rated`` rows are only read.

Exact arithmetic, as in the rating engine (docs/rating.md), in integer millionths:

* a call's new cost is its stored cost times ``1 + change_pct / 100``, rounded half up to 6
  places per call;
* with a target margin, the new customer rate of each vendor prefix and rate seen in the period
  is ``auto_create_rate(new vendor rate, margin=target_margin)`` (rounded up, so the margin is
  never undercut; the new vendor rate is the stored one times the same factor, rounded half up);
  a call's new revenue is ``connect fee + new rate x customer billed seconds / 60``, rounded half
  up to 6 places: the customer's increments and connect fee stay, the new rate replaces the
  first-period and next-period rates. Calls without a vendor rate keep their revenue.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=30, rated=True)
>>> rates, impact = simulate(wh, vendor="carrier_x", change_pct=10,
...                          start="2026-11-02", end="2026-11-03")
>>> rates.select("vendor_prefix", "vendor_rate", "new_vendor_rate").row(0)
('1', Decimal('0.008000'), Decimal('0.008800'))
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from ratelab.finance import auto_create_rate
from ratelab.money import MoneyLike, money_context, quantize, to_decimal
from ratelab.reports.common import check_party, period
from ratelab.widgets.common import (
    date_range,
    distinct,
    html_table,
    no_data_figure,
    show_figure,
    to_float,
)

__all__ = ["RateSimulator", "simulate", "simulate_figure"]

_PCT_PLACES = 6
_MONEY = pl.Decimal(18, 6)

_RATES_SQL = """
SELECT coalesce(destination, '(unrated)') AS destination, vendor_prefix, vendor_rate,
       count(*) AS calls
FROM rated
WHERE vendor = $vendor AND start_ts >= $since AND start_ts < $until
  AND vendor_rate IS NOT NULL
GROUP BY ALL
ORDER BY destination, vendor_prefix, vendor_rate
"""

# $num / $den is 1 + change_pct / 100 exactly; new_rates(vendor_prefix, vendor_rate_u,
# new_rate_u) is registered from Python (auto_create_rate there: Decimal only).
_IMPACT_SQL = """
WITH calls AS (
    SELECT r.cdr_seq, r.start_ts, coalesce(r.destination, '(unrated)') AS destination,
           r.customer_table, r.customer_prefix, r.customer_rate, r.billed_s_customer,
           r.vendor_prefix, CAST(r.vendor_rate * 1000000 AS BIGINT) AS vendor_rate_u,
           CAST(r.revenue * 1000000 AS HUGEINT) AS revenue_u,
           CAST(r.cost * 1000000 AS HUGEINT) AS cost_u
    FROM rated r
    WHERE r.vendor = $vendor AND r.start_ts >= $since AND r.start_ts < $until
),
fees AS (   -- the customer row that priced the call: its connect fee stays
    SELECT c.cdr_seq, max(CAST(x.connect_fee * 1000000 AS HUGEINT)) AS fee_u
    FROM calls c
    JOIN rates x ON x.table_name = c.customer_table AND x.prefix = c.customer_prefix
     AND x.rate = c.customer_rate AND x.effective_from <= c.start_ts
     AND (x.effective_to IS NULL OR c.start_ts < x.effective_to)
    GROUP BY c.cdr_seq
),
priced AS (
    SELECT c.destination, c.revenue_u, c.cost_u,
           (c.cost_u * $num + $den // 2) // $den AS cost_after_u,
           CASE WHEN NOT $targeted OR n.new_rate_u IS NULL OR c.revenue_u IS NULL
                THEN c.revenue_u
                WHEN c.billed_s_customer = 0 THEN 0
                ELSE (coalesce(f.fee_u, 0) * 60 + n.new_rate_u * c.billed_s_customer + 30) // 60
           END AS revenue_after_u
    FROM calls c
    LEFT JOIN fees f USING (cdr_seq)
    LEFT JOIN new_rates n
      ON n.vendor_prefix = c.vendor_prefix AND n.vendor_rate_u = c.vendor_rate_u
),
money AS (
    SELECT destination,
           CAST(CAST(revenue_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS rev,
           CAST(CAST(revenue_after_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS rev2,
           CAST(CAST(cost_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS cost,
           CAST(CAST(cost_after_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS cost2
    FROM priced
),
sums AS (
    SELECT destination, count(*) AS calls,
           CAST(coalesce(sum(rev), 0) AS DECIMAL(18, 6)) AS revenue_before,
           CAST(coalesce(sum(rev2), 0) AS DECIMAL(18, 6)) AS revenue_after,
           CAST(coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS cost_before,
           CAST(coalesce(sum(cost2), 0) AS DECIMAL(18, 6)) AS cost_after
    FROM money GROUP BY ALL
)
SELECT destination, calls, revenue_before, revenue_after, cost_before, cost_after,
       CAST(revenue_before - cost_before AS DECIMAL(18, 6)) AS profit_before,
       CAST(revenue_after - cost_after AS DECIMAL(18, 6)) AS profit_after,
       CAST((revenue_after - cost_after) - (revenue_before - cost_before) AS DECIMAL(18, 6))
           AS profit_change,
       CAST((revenue_before - cost_before) / NULLIF(revenue_before, 0) AS DOUBLE)
           AS margin_before,
       CAST((revenue_after - cost_after) / NULLIF(revenue_after, 0) AS DOUBLE) AS margin_after
FROM sums
ORDER BY destination
"""


def _factor(change_pct: MoneyLike | None) -> tuple[Decimal, int, int]:
    """(percentage, numerator, denominator) with 1 + pct/100 == num/den exactly."""
    pct = Decimal(0) if change_pct is None else to_decimal(change_pct)
    if quantize(pct, _PCT_PLACES, "down") != pct:
        raise ValueError(f"change_pct {pct} has more than {_PCT_PLACES} decimal places")
    if pct < -100:
        raise ValueError(f"change_pct {pct} would make rates negative (at least -100)")
    den = 10 ** (_PCT_PLACES + 2)
    with money_context():
        num = int((100 + pct) * 10**_PCT_PLACES)
    return pct, num, den


def simulate(
    wh: Any,
    *,
    vendor: str,
    change_pct: MoneyLike | None = None,
    target_margin: MoneyLike | None = None,
    start: datetime | date | str,
    end: datetime | date | str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Re-price ``vendor``'s calls starting in [start, end) with its rates changed by
    ``change_pct`` percent (``"10"`` for +10 %, up to 6 decimal places) and/or customer rates
    at ``target_margin`` (a fraction of the price: ``"0.25"``) over the new vendor rates.

    Returns ``(rates, impact)``. ``rates``: one row per destination, vendor prefix and vendor
    rate that carried traffic in the period: destination, vendor_prefix, vendor_rate, calls,
    new_vendor_rate, new_customer_rate (null without a target margin). ``impact``: one row per
    destination: calls, revenue_before/after, cost_before/after, profit_before/after,
    profit_change (Decimal(18, 6)) and margin_before/after (Float64, null when revenue is 0).
    Both are sorted by destination. See the module docstring for the exact rounding.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=30, rated=True)
    >>> rates, impact = simulate(wh, vendor="carrier_x", target_margin="0.5",
    ...                          start="2026-11-02", end="2026-11-03")
    >>> rates.filter(pl.col("vendor_prefix") == "44")["new_customer_rate"].to_list()
    [Decimal('0.030000')]
    >>> (impact["revenue_before"] == impact["revenue_after"]).all()
    False
    """
    if change_pct is None and target_margin is None:
        raise ValueError("give change_pct, target_margin or both")
    since, until = period(start, end)
    check_party(wh, "vendor", vendor)
    _, num, den = _factor(change_pct)
    margin = None if target_margin is None else to_decimal(target_margin)
    params = {"vendor": vendor, "since": since, "until": until}
    seen = wh.sql(_RATES_SQL, params)
    rows = []
    for destination, prefix, rate, calls in seen.iter_rows():
        with money_context():
            new_vendor = quantize(rate * num / den, 6, "half_up")
        new_customer = None if margin is None else auto_create_rate(new_vendor, margin=margin)
        rows.append((destination, prefix, rate, calls, new_vendor, new_customer))
    rates = pl.DataFrame(rows, orient="row", schema={
        "destination": pl.String, "vendor_prefix": pl.String, "vendor_rate": _MONEY,
        "calls": pl.Int64, "new_vendor_rate": _MONEY, "new_customer_rate": _MONEY})
    new_rates = pl.DataFrame({
        "vendor_prefix": rates["vendor_prefix"],
        "vendor_rate_u": [int(r * 10**6) for r in rates["vendor_rate"].to_list()],
        "new_rate_u": [None if r is None else int(r * 10**6)
                       for r in rates["new_customer_rate"].to_list()],
    }, schema={"vendor_prefix": pl.String, "vendor_rate_u": pl.Int64, "new_rate_u": pl.Int64})
    with wh.connection() as con:
        con.register("new_rates", new_rates.to_arrow())
        impact = con.sql(_IMPACT_SQL, params={**params, "num": num, "den": den,
                                              "targeted": margin is not None}).pl()
    return rates, impact


def simulate_figure(impact: pl.DataFrame) -> go.Figure:
    """Profit before and after per destination from :func:`simulate`'s impact frame.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> _, impact = simulate(wh, vendor="carrier_x", change_pct="-5",
    ...                      start="2026-11-02", end="2026-11-03")
    >>> [trace.name for trace in simulate_figure(impact).data]
    ['profit before', 'profit after']
    """
    title = "Profit per destination, before and after"
    if impact.height == 0:
        return no_data_figure(title)
    labels = impact["destination"].to_list()
    fig = go.Figure()
    fig.add_bar(name="profit before", x=labels, y=to_float(impact["profit_before"].to_list()))
    fig.add_bar(name="profit after", x=labels, y=to_float(impact["profit_after"].to_list()))
    fig.update_layout(title=title, barmode="group", yaxis={"title": "profit"},
                      legend={"orientation": "h"})
    return fig


def _decimal_text(value: float) -> str:
    """A float from a text box as the decimal the analyst typed (``repr`` is the shortest)."""
    return repr(float(value))


class RateSimulator:
    """Pick a vendor and a period, type a rate change in percent and, optionally, a target
    margin in percent; see the new rates, the impact per destination and a chart.

    The percent boxes hold floats (ipywidgets has no decimal box); they are turned into the
    Decimal the analyst typed (``repr``, e.g. 2.5 -> Decimal('2.5')) before any arithmetic.
    ``.rates``, ``.impact`` and ``.figure`` are what is shown.

    >>> from ratelab.examples import sample_warehouse
    >>> sim = RateSimulator(sample_warehouse(cdrs=20, rated=True))
    >>> sim.change_pct.value = 10.0
    >>> bool((sim.impact["cost_after"] > sim.impact["cost_before"]).all())
    True
    """

    def __init__(self, wh: Any, *, start: date | None = None, end: date | None = None) -> None:
        self.wh = wh
        first, after = date_range(wh)
        vendors = distinct(wh, "vendor")
        self.vendor = widgets.Dropdown(description="vendor", options=vendors,
                                       value=vendors[0] if vendors else None)
        wide = {"description_width": "initial"}
        self.change_pct = widgets.BoundedFloatText(description="vendor rate change %",
                                                   value=0.0, min=-100.0, max=1000.0, step=0.5,
                                                   style=wide)
        self.use_target = widgets.Checkbox(description="customer rates at a target margin",
                                           value=False, style=wide)
        self.target_pct = widgets.BoundedFloatText(description="target margin %", value=20.0,
                                                   min=-1000.0, max=99.0, step=1.0, style=wide)
        self.start = widgets.DatePicker(description="from", value=start or first)
        self.end = widgets.DatePicker(description="until (excl.)", value=end or after)
        self.message = widgets.HTML()
        self.rates_table = widgets.HTML()
        self.impact_table = widgets.HTML()
        self.chart = widgets.Output()
        self.rates: pl.DataFrame = pl.DataFrame()
        self.impact: pl.DataFrame = pl.DataFrame()
        self.figure: go.Figure = go.Figure()
        controls = [self.vendor, self.change_pct, self.use_target, self.target_pct,
                    self.start, self.end]
        for control in controls:
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.vendor, self.start, self.end]),
            widgets.HBox([self.change_pct, self.use_target, self.target_pct]),
            self.message, self.chart,
            widgets.HTML("<h4>Impact per destination</h4>"), self.impact_table,
            widgets.HTML("<h4>New rates</h4>"), self.rates_table])
        self.render()

    def _changed(self, _change: dict) -> None:
        self.render()

    def render(self) -> pl.DataFrame:
        """Re-run :func:`simulate` with the current values and show the result."""
        try:
            if self.vendor.value is None:
                raise ValueError("no vendor has rated calls yet")
            if self.start.value is None or self.end.value is None:
                raise ValueError("pick both dates")
            target = None
            if self.use_target.value:
                with money_context():
                    target = Decimal(_decimal_text(self.target_pct.value)) / 100
            self.rates, self.impact = simulate(
                self.wh, vendor=self.vendor.value,
                change_pct=Decimal(_decimal_text(self.change_pct.value)),
                target_margin=target, start=self.start.value, end=self.end.value)
        except ValueError as err:
            self.message.value = f"<b>{err}</b>"
            self.rates, self.impact = pl.DataFrame(), pl.DataFrame()
        else:
            self.message.value = ""
        self.figure = simulate_figure(self.impact)
        self.rates_table.value = html_table(self.rates)
        self.impact_table.value = html_table(self.impact)
        show_figure(self.chart, self.figure)
        return self.impact
