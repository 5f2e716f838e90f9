"""Rate simulator: a vendor's rates change by a percentage, or customer rates are set at a target
margin over the (new) vendor rates; what would last period's traffic have earned?

The pure part is :func:`simulate`; :class:`RateSimulator` is the ipywidgets layer. Nothing is
written: the stored ``rated`` rows are only read.

One engine (docs/reports.md): the vendor change *is* :func:`ratelab.reports.what_if` with
``vendor=`` and ``change_pct=``: every first and next rate of the vendor's rate tables times
``1 + change_pct / 100``, rounded half up to 6 places (a rate table holds 6), connect fees
unchanged, and the vendor's calls re-rated by the rating engine. The impact frame is what_if's
frame, column for column, with the same arguments (``start``, ``end`` first), and the rates
frame's new_vendor_rate is what_if's SQL expression for a new rate
(:func:`ratelab.reports.whatif.repriced_sql`), not a second implementation of the rule.

With a target margin, the new customer rate of each vendor prefix and rate seen in the period
is ``auto_create_rate(new vendor rate, margin=target_margin)`` (rounded up, so the margin is
never undercut; the new vendor rate is the one what_if rates with). A call's new revenue is
``connect fee + new rate x customer billed seconds / 60``, rounded half up to 6 places: the
customer's increments and connect fee stay, the new rate replaces the first-period and
next-period rates. Calls without a vendor rate keep their revenue.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=30, rated=True)
>>> rates, impact = simulate(wh, "2026-11-02", "2026-11-03", vendor="carrier_x", change_pct=10)
>>> rates.select("vendor_prefix", "vendor_rate", "new_vendor_rate").row(0)
('1', Decimal('0.008000'), Decimal('0.008800'))
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from ratelab.charts import WHAT_IF_TOP, shade_synthetic, warehouse_currency, what_if_chart
from ratelab.finance import auto_create_rate
from ratelab.money import MoneyLike, money_context, to_decimal
from ratelab.reports.common import ReportError, When, period
from ratelab.reports.whatif import change_factor, repriced_sql, what_if
from ratelab.widgets.common import (
    date_range,
    distinct,
    html_table,
    no_data_figure,
    show_figure,
    synthetic_note,
)

__all__ = ["RateSimulator", "simulate", "simulate_figure", "synthetic_destinations"]

_MONEY = pl.Decimal(18, 6)

# The new vendor rate is what_if's re-pricing expression (repriced_sql), not a copy of it.
_RATES_SQL = f"""
SELECT coalesce(destination, '(unrated)') AS destination, vendor_prefix, vendor_rate,
       count(*) AS calls, {repriced_sql("vendor_rate")} AS new_vendor_rate
FROM rated
WHERE vendor = $vendor AND start_ts >= $since AND start_ts < $until
  AND vendor_rate IS NOT NULL
GROUP BY ALL
ORDER BY destination, vendor_prefix, vendor_rate
"""

# Revenue at the target margin, per destination, for the vendor's calls: the stored revenue and
# the new one, summed in integer millionths. new_rates(vendor_prefix, vendor_rate_u, new_rate_u)
# is registered from Python (auto_create_rate there: Decimal only).
_TARGET_SQL = """
WITH calls AS (
    SELECT r.cdr_seq, r.start_ts, coalesce(r.destination, '(unrated)') AS destination,
           r.customer_table, r.customer_prefix, r.customer_rate, r.billed_s_customer,
           r.vendor_prefix, CAST(r.vendor_rate * 1000000 AS BIGINT) AS vendor_rate_u,
           CAST(r.revenue * 1000000 AS HUGEINT) AS revenue_u
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
    SELECT c.destination, coalesce(c.revenue_u, 0) AS revenue_u,
           CASE WHEN n.new_rate_u IS NULL OR c.revenue_u IS NULL THEN coalesce(c.revenue_u, 0)
                WHEN c.billed_s_customer = 0 THEN 0
                ELSE (coalesce(f.fee_u, 0) * 60 + n.new_rate_u * c.billed_s_customer + 30) // 60
           END AS revenue_after_u
    FROM calls c
    LEFT JOIN fees f USING (cdr_seq)
    LEFT JOIN new_rates n
      ON n.vendor_prefix = c.vendor_prefix AND n.vendor_rate_u = c.vendor_rate_u
)
SELECT destination,
       CAST(CAST(sum(revenue_after_u) - sum(revenue_u) AS DECIMAL(18, 0)) * 0.000001
            AS DECIMAL(18, 6)) AS revenue_delta
FROM priced
GROUP BY ALL
"""


def simulate(
    wh: Any,
    start: When,
    end: When,
    *,
    vendor: str,
    change_pct: MoneyLike | float | None = None,
    target_margin: MoneyLike | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Re-price ``vendor``'s calls starting in [start, end) with its rates changed by
    ``change_pct`` percent (``"10"`` for +10 %, up to 6 decimal places; a float is read as
    the decimal it prints as, as in what_if) and/or customer rates at ``target_margin`` (a
    fraction of the price: ``"0.25"``) over the new vendor rates.

    Returns ``(rates, impact)``. ``rates``: one row per destination, vendor prefix and vendor
    rate that carried traffic in the period: destination, vendor_prefix, vendor_rate, calls,
    new_vendor_rate, new_customer_rate (null without a target margin). ``impact``: the frame
    of :func:`ratelab.reports.what_if` (every call of the period per destination: destination,
    revenue, cost_before, cost_after, profit_before, profit_after, margin_before,
    margin_after, profit_change, revenue_after, calls, unpriced_after), with revenue_after,
    profit_after, margin_after and profit_change at the target margin when one is given.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=30, rated=True)
    >>> rates, impact = simulate(wh, "2026-11-02", "2026-11-03", vendor="carrier_x",
    ...                          target_margin="0.5")
    >>> rates.filter(pl.col("vendor_prefix") == "44")["new_customer_rate"].to_list()
    [Decimal('0.030000')]
    >>> (impact["revenue"] == impact["revenue_after"]).all()
    False
    """
    if change_pct is None and target_margin is None:
        raise ReportError("give change_pct, target_margin or both")
    change = 0 if change_pct is None else change_pct
    # what_if checks the period, the vendor and the percentage, and does the re-pricing.
    impact = what_if(wh, start, end, vendor=vendor, change_pct=change)
    factor = change_factor(change)
    margin = None if target_margin is None else to_decimal(target_margin)
    since, until = period(start, end)
    params = {"vendor": vendor, "since": since, "until": until}
    rows = []
    found = wh.sql(_RATES_SQL, {**params, "factor": str(factor)})
    for destination, prefix, rate, calls, new_vendor in found.iter_rows():
        new_customer = None if margin is None else auto_create_rate(new_vendor, margin=margin)
        rows.append((destination, prefix, rate, calls, new_vendor, new_customer))
    rates = pl.DataFrame(rows, orient="row", schema={
        "destination": pl.String, "vendor_prefix": pl.String, "vendor_rate": _MONEY,
        "calls": pl.Int64, "new_vendor_rate": _MONEY, "new_customer_rate": _MONEY})
    if margin is None:
        return rates, impact
    new_rates = pl.DataFrame({
        "vendor_prefix": rates["vendor_prefix"],
        "vendor_rate_u": [int(r * 10**6) for r in rates["vendor_rate"].to_list()],
        "new_rate_u": [int(r * 10**6) for r in rates["new_customer_rate"].to_list()],
    }, schema={"vendor_prefix": pl.String, "vendor_rate_u": pl.Int64, "new_rate_u": pl.Int64})
    with wh.connection() as con:
        con.register("new_rates", new_rates.to_arrow())
        deltas = con.sql(_TARGET_SQL, params=params).pl()
    return rates, _with_revenue(impact, deltas)


def _with_revenue(impact: pl.DataFrame, deltas: pl.DataFrame) -> pl.DataFrame:
    """what_if's frame with each destination's revenue_after moved by ``revenue_delta`` and the
    columns that depend on it recomputed the way what_if computes them."""
    columns = impact.columns
    frame = impact.join(deltas, on="destination", how="left").with_columns(
        revenue_after=(pl.col("revenue_after") + pl.col("revenue_delta").fill_null(0))
        .cast(_MONEY))
    frame = frame.with_columns(
        profit_after=(pl.col("revenue_after") - pl.col("cost_after")).cast(_MONEY))
    frame = frame.with_columns(
        profit_change=(pl.col("profit_after") - pl.col("profit_before")).cast(_MONEY),
        # as what_if.sql: a ratio of the exact sums, each cast to DOUBLE first
        margin_after=pl.when(pl.col("revenue_after") != 0).then(
            pl.col("profit_after").cast(pl.Float64) / pl.col("revenue_after").cast(pl.Float64)))
    return frame.select(columns)


def simulate_figure(impact: pl.DataFrame, *, currency: str | None = None,
                    top: int = WHAT_IF_TOP, synthetic: list[str] | None = None) -> go.Figure:
    """Profit before and after per destination from :func:`simulate`'s impact frame: the
    report's :func:`ratelab.charts.what_if_chart` (the ``top`` destinations whose profit
    changes most, ordered by the change, the rest summed in ``other (k)``), the amount axis
    naming ``currency``. Destinations in ``synthetic`` (whose calls include generated CDRs)
    are shaded, with the legend entry ``generated (synthetic) data``.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> _, impact = simulate(wh, "2026-11-02", "2026-11-03", vendor="carrier_x",
    ...                      change_pct="-5")
    >>> [trace.name for trace in simulate_figure(impact).data]
    ['profit before', 'profit after']
    """
    title = "Profit per destination, before and after"
    if impact.height == 0:
        return no_data_figure(title)
    fig = what_if_chart(impact, title=title, currency=currency, top=top)
    if synthetic:
        flagged = set(synthetic)
        shade_synthetic(fig, [str(x) in flagged for x in fig.data[0].x])
    fig.update_layout(legend={"orientation": "h"})
    return fig


def synthetic_destinations(wh: Any, start: When, end: When) -> list[str]:
    """The destinations (``(unrated)`` for none) of generated calls in [start, end).

    >>> from ratelab.examples import sample_warehouse
    >>> synthetic_destinations(sample_warehouse(cdrs=20, rated=True), "2026-11-02",
    ...                        "2026-11-03")
    ['USA', 'United Kingdom', 'United Kingdom - Mobile']
    """
    since, until = period(start, end)
    found = wh.sql("""SELECT DISTINCT coalesce(destination, '(unrated)') AS d FROM rated
                      WHERE synthetic AND start_ts >= $since AND start_ts < $until
                      ORDER BY d""", {"since": since, "until": until})
    names: list[str] = found["d"].to_list()
    return names


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
        #: says "generated (synthetic) data" when the period's calls include generated CDRs
        self.label = widgets.HTML()
        self.currency = warehouse_currency(wh)
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
            self.message, self.label, self.chart,
            widgets.HTML("<h4>Impact per destination</h4>"), self.impact_table,
            widgets.HTML("<h4>New rates</h4>"), self.rates_table])
        self.render()

    def _changed(self, _change: dict[str, Any]) -> None:
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
                self.wh, self.start.value, self.end.value, vendor=self.vendor.value,
                change_pct=Decimal(_decimal_text(self.change_pct.value)),
                target_margin=target)
            flagged = synthetic_destinations(self.wh, self.start.value, self.end.value)
            count = int(self.wh.sql(
                "SELECT count(*) AS n FROM rated WHERE synthetic AND start_ts >= $a "
                "AND start_ts < $b", dict(zip("ab", period(self.start.value, self.end.value),
                                              strict=True)))["n"][0])
        except ValueError as err:
            self.message.value = f"<b>{err}</b>"
            self.rates, self.impact = pl.DataFrame(), pl.DataFrame()
            flagged, count = [], 0
        else:
            self.message.value = ""
        self.label.value = synthetic_note(count)
        self.figure = simulate_figure(self.impact, currency=self.currency, synthetic=flagged)
        self.rates_table.value = html_table(self.rates)
        self.impact_table.value = html_table(self.impact)
        show_figure(self.chart, self.figure)
        return self.impact
