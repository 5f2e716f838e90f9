"""Margin reports: profit by destination, customer or vendor; loss makers; below-cost rates.

They read ``rated`` for calls starting in ``[start, end)``, naive UTC (days are UTC days), with
the conventions of :meth:`ratelab.Warehouse.margin_summary`: profit = revenue - cost (an
unrated side counts as 0), margin = profit / revenue and markup = profit / cost as Float64
ratios of sums, null when the divisor is 0. Money is exact ``Decimal(18, 6)``; minutes are
customer-side billed minutes, ``Decimal(18, 1)`` rounded half up. The queries are in
``ratelab/sql/reports/<function>.sql``.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> margin_by(wh, "2026-11-02", "2026-11-03", by="customer")["customer"].to_list()
['acme']
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from ratelab.reports.common import ReportError, When, check_choice, load_sql, moment, period

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["margin_by", "margin_by_day", "margin_table", "rate_deviation", "top_loss_makers"]

KEYS = ("destination", "customer", "vendor")
#: What :func:`margin_table` groups by: the keys, or the UTC day.
GROUPINGS = (*KEYS, "day")


# What an open end of margin_table's period stands for: a plain range keeps the query prunable.
_EARLIEST, _LATEST = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)


def margin_table(wh: Warehouse, by: str = "destination", *, start: When | None = None,
                 end: When | None = None, customer: str | None = None,
                 vendor: str | None = None, destination: str | None = None) -> pl.DataFrame:
    """The one margin query (``ratelab/sql/reports/margin_by.sql``) behind :func:`margin_by`,
    :meth:`ratelab.Warehouse.margin_summary`, ``ratelab summary`` and the margin explorer
    (:func:`ratelab.widgets.margin_view`).

    Calls starting in ``[start, end)`` (either may be None: open), optionally of one customer,
    vendor or destination (``(unrated)`` for calls no rate matched), grouped ``by``
    destination, customer, vendor or day (UTC). Columns: ``<by>`` (a Date by day), calls,
    answered, minutes, revenue, cost, profit, margin, markup, flagged (status not ``ok``),
    synthetic (the group holds generated CDRs). Sorted by profit, highest first, then
    ``<by>``; by day, by day.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> margin_table(wh, "vendor", customer="acme").select("vendor", "calls", "flagged").rows()
    [('carrier_x', 20, 0)]
    >>> margin_table(wh, "vendor", end="2026-11-02").height
    0
    >>> margin_table(wh, "day", destination="USA").select("day", "calls").rows()
    [(datetime.date(2026, 11, 2), 7)]
    """
    check_choice("by", by, GROUPINGS)
    begin = _EARLIEST if start is None else moment(start, "start")
    finish = _LATEST if end is None else moment(end, "end")
    frame = wh.sql(load_sql("margin_by"), {"start": begin, "end": finish, "by": by,
                                           "customer": customer, "vendor": vendor,
                                           "destination": destination})
    if by == "day":
        return frame.drop("key")
    return frame.drop("day").rename({"key": by})


def margin_by(wh: Warehouse, start: When, end: When, by: str = "destination", *,
              customer: str | None = None, vendor: str | None = None) -> pl.DataFrame:
    """Calls, minutes, revenue, cost, profit, margin and markup per destination, customer or
    vendor, optionally of one customer or vendor: :func:`margin_table` over a checked period.

    Columns: ``<by>`` (``(unrated)`` for calls no rate matched, ``(none)`` for calls without a
    vendor), calls, answered, minutes, revenue, cost, profit, margin, markup, flagged,
    synthetic. Sorted by profit, highest first, then ``<by>``.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> frame = margin_by(wh, "2026-11-02", "2026-11-03")
    >>> frame.columns
    ['destination', 'calls', 'answered', 'minutes', 'revenue', 'cost', 'profit', 'margin',
     'markup', 'flagged', 'synthetic']
    >>> bool((frame["revenue"] - frame["cost"] == frame["profit"]).all())
    True
    """
    begin, finish = period(start, end)
    check_choice("by", by, KEYS)
    return margin_table(wh, by, start=begin, end=finish, customer=customer, vendor=vendor)


def margin_by_day(wh: Warehouse, start: When, end: When,
                  by: str = "destination") -> pl.DataFrame:
    """Revenue, cost, profit and margin per UTC day and destination, customer or vendor.

    Columns: day (Date), ``<by>``, revenue, cost, profit, margin; sorted by day, then
    ``<by>``. The input of :func:`ratelab.charts.margin_heatmap`.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> margin_by_day(wh, "2026-11-01", "2026-11-08", by="vendor").select("day", "vendor").rows()
    [(datetime.date(2026, 11, 2), 'carrier_x')]
    """
    begin, finish = period(start, end)
    check_choice("by", by, KEYS)
    frame = wh.sql(load_sql("margin_by_day"), {"start": begin, "end": finish, "by": by})
    return frame.rename({"key": by})


def top_loss_makers(wh: Warehouse, start: When, end: When, by: str = "destination",
                    n: int = 10) -> pl.DataFrame:
    """The ``n`` destinations (customers, vendors) that lost the most money.

    The columns of :func:`margin_by`, only the rows with profit below 0, most negative first
    (ties by ``<by>``), at most ``n`` of them.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> top_loss_makers(wh, "2026-11-02", "2026-11-03").height  # the sample sells above cost
    0
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ReportError(f"n must be a positive whole number, got {n!r}")
    frame = margin_by(wh, start, end, by)
    return frame.filter(pl.col("profit") < 0).sort(["profit", by]).head(n)


def rate_deviation(wh: Warehouse, start: When, end: When) -> pl.DataFrame:
    """Where we sell below cost: answered calls whose customer rate is below the vendor rate.

    Columns: destination, vendor, calls_below_cost, minutes_below_cost (customer-side billed
    minutes), loss (the sum of the negative profits among those calls, as a positive amount:
    increments can still leave such a call in profit, and those add nothing), worst_deviation
    (the most negative customer_rate - vendor_rate, per minute). Sorted by loss, highest
    first, then destination and vendor. Rates are compared as stored (no currency conversion).

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> rate_deviation(wh, "2026-11-02", "2026-11-03").columns
    ['destination', 'vendor', 'calls_below_cost', 'minutes_below_cost', 'loss',
     'worst_deviation']
    """
    begin, finish = period(start, end)
    return wh.sql(load_sql("rate_deviation"), {"start": begin, "end": finish})
