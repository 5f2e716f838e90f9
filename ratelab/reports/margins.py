"""Margin reports: profit by destination, customer or vendor; loss makers; below-cost rates.

They read ``rated_base`` (``rated`` converted to the base currency at each call's UTC day's
exchange rate; a missing rate raises :class:`~ratelab.reports.common.MissingRateError`) for
calls starting in ``[start, end)``, naive UTC (days are UTC days), with the conventions of
:meth:`ratelab.Warehouse.margin_summary`: profit = revenue - cost (an unrated side counts as
0), margin = profit / revenue and markup = profit / cost as Float64 ratios of sums, null when
the divisor is 0; margin_ok is the margin of the fully rated calls only. Money is exact
``Decimal(18, 6)``; minutes are customer-side billed minutes, ``Decimal(18, 1)`` rounded half
up. The queries are in
``ratelab/sql/reports/<function>.sql``.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> margin_by(wh, "2026-11-02", "2026-11-03", by="customer")["customer"].to_list()
['acme']
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from ratelab.reports.common import (
    Keys,
    ReportError,
    When,
    check_keys,
    check_party,
    load_sql,
    moment,
    period,
    require_rates,
)

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["headline", "margin_by", "margin_by_day", "margin_table", "rate_deviation",
           "top_loss_makers"]

KEYS = ("destination", "customer", "vendor")
#: What :func:`margin_table` groups by: the keys, or the UTC day.
GROUPINGS = (*KEYS, "day")


# What an open end of margin_table's period stands for: a plain range keeps the query prunable.
_EARLIEST, _LATEST = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)


#: Columns of :func:`margin_table` after its keys.
MEASURES = ("calls", "answered", "minutes", "currency", "revenue", "cost", "profit", "margin",
            "margin_ok", "markup", "flagged", "flagged_revenue", "synthetic")


def margin_table(wh: Warehouse, by: Keys = "destination", *, start: When | None = None,
                 end: When | None = None, customer: str | None = None,
                 vendor: str | None = None, destination: str | None = None) -> pl.DataFrame:
    """The one margin query (``ratelab/sql/reports/margin_by.sql``) behind :func:`margin_by`,
    :func:`headline`, :meth:`ratelab.Warehouse.margin_summary`, ``ratelab summary`` and the
    margin explorer (:func:`ratelab.widgets.margin_view`).

    Calls starting in ``[start, end)`` (either may be None: open), optionally of one customer,
    vendor or destination (``(unrated)`` for calls no rate matched), grouped ``by`` one or
    several of destination, customer, vendor and day (UTC), a key or a list (an empty list:
    one row for everything). Columns: the keys in the order given (day is a Date), calls,
    answered, minutes, currency (the base currency: revenue, cost, profit and
    flagged_revenue are converted to it at the rate of each call's day), revenue, cost,
    profit, margin, margin_ok (the margin of the fully rated calls), markup, flagged (status
    not ``ok``), flagged_revenue (their revenue), synthetic (the group holds generated CDRs).
    Sorted by day, then profit, highest first, then the keys.

    Raises :class:`~ratelab.reports.common.MissingRateError` when a needed exchange rate is
    missing.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> margin_table(wh, "vendor", customer="acme").select("vendor", "calls", "flagged").rows()
    [('carrier_x', 20, 0)]
    >>> margin_table(wh, "vendor", end="2026-11-02").height
    0
    >>> margin_table(wh, "day", destination="USA").select("day", "calls").rows()
    [(datetime.date(2026, 11, 2), 7)]
    >>> margin_table(wh, ["customer", "vendor"]).columns[:3]
    ['customer', 'vendor', 'calls']
    """
    keys = [] if not isinstance(by, str) and not list(by) else check_keys(by, GROUPINGS)
    begin = _EARLIEST if start is None else moment(start, "start")
    finish = _LATEST if end is None else moment(end, "end")
    require_rates(wh, begin, finish, customer=customer, vendor=vendor)
    frame = wh.sql(load_sql("margin_by"), {"start": begin, "end": finish, "by": keys,
                                           "customer": customer, "vendor": vendor,
                                           "destination": destination})
    frame = frame.rename({f"{k}_key": k for k in GROUPINGS})
    return frame.select(*keys, *MEASURES)


def headline(wh: Warehouse, start: When | None = None, end: When | None = None, *,
             customer: str | None = None, vendor: str | None = None) -> pl.DataFrame:
    """The honest headline: one row of totals over ``[start, end)`` (open ends allowed).

    Columns: the measures of :func:`margin_table` (calls, answered, minutes, currency,
    revenue, cost, profit, margin, margin_ok, markup, flagged, flagged_revenue, synthetic).
    ``margin`` counts every call, flagged ones included (a ``no_vendor_rate`` call adds revenue
    and no cost); ``margin_ok`` is the margin of the fully rated calls only; put them side by
    side, with ``flagged_revenue``. An empty period gives one row of zeros.

    >>> from ratelab.examples import sample_warehouse
    >>> row = headline(sample_warehouse(cdrs=20, rated=True)).row(0, named=True)
    >>> row["calls"], row["flagged"], row["margin"] == row["margin_ok"], row["currency"]
    (20, 0, True, 'USD')
    """
    frame = margin_table(wh, [], start=start, end=end, customer=customer, vendor=vendor)
    if frame.height:
        return frame
    base = str(wh.sql("SELECT value FROM settings WHERE key = 'base_currency'")["value"][0])
    return pl.DataFrame(
        {"calls": [0], "answered": [0], "minutes": [Decimal(0)], "currency": [base],
         "revenue": [Decimal(0)], "cost": [Decimal(0)], "profit": [Decimal(0)],
         "margin": [None], "margin_ok": [None], "markup": [None], "flagged": [0],
         "flagged_revenue": [Decimal(0)], "synthetic": [False]},
        schema=frame.schema)


def margin_by(wh: Warehouse, start: When, end: When, by: Keys = "destination", *,
              customer: str | None = None, vendor: str | None = None) -> pl.DataFrame:
    """Calls, minutes, revenue, cost, profit and margin per destination, customer and/or
    vendor (one key or a list), optionally of one customer or vendor: :func:`margin_table`
    over a checked period.

    Columns: the keys (``(unrated)`` for calls no rate matched, ``(none)`` for calls without a
    vendor), calls, answered, minutes, currency, revenue, cost, profit, margin, margin_ok,
    markup, flagged, flagged_revenue, synthetic. Money is in the base currency (``currency``).
    Sorted by profit, highest first, then the keys.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> frame = margin_by(wh, "2026-11-02", "2026-11-03")
    >>> frame.columns
    ['destination', 'calls', 'answered', 'minutes', 'currency', 'revenue', 'cost', 'profit',
     'margin', 'margin_ok', 'markup', 'flagged', 'flagged_revenue', 'synthetic']
    >>> bool((frame["revenue"] - frame["cost"] == frame["profit"]).all())
    True
    """
    begin, finish = period(start, end)
    keys = check_keys(by, KEYS)
    check_party(wh, "customer", customer)  # a typo is an error, not an empty table
    check_party(wh, "vendor", vendor)
    return margin_table(wh, keys, start=begin, end=finish, customer=customer, vendor=vendor)


def margin_by_day(wh: Warehouse, start: When, end: When,
                  by: Keys = "destination") -> pl.DataFrame:
    """Revenue, cost, profit and margin per UTC day and destination, customer and/or vendor.

    Columns: day (Date), the keys, currency (the base currency), revenue, cost, profit,
    margin; sorted by day, then the keys. The input of :func:`ratelab.charts.margin_heatmap`.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> margin_by_day(wh, "2026-11-01", "2026-11-08", by="vendor").select("day", "vendor").rows()
    [(datetime.date(2026, 11, 2), 'carrier_x')]
    """
    begin, finish = period(start, end)
    keys = check_keys(by, KEYS)
    frame = margin_table(wh, ["day", *keys], start=begin, end=finish)
    return (frame.select("day", *keys, "currency", "revenue", "cost", "profit", "margin")
            .sort(["day", *keys]))


def top_loss_makers(wh: Warehouse, start: When, end: When, by: Keys = "destination",
                    n: int = 10) -> pl.DataFrame:
    """The ``n`` destinations (customers, vendors, or combinations) that lost the most money.

    The columns of :func:`margin_by`, only the rows with profit below 0, most negative first
    (ties by the keys), at most ``n`` of them.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> top_loss_makers(wh, "2026-11-02", "2026-11-03").height  # the sample sells above cost
    0
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ReportError(f"n must be a positive whole number, got {n!r}")
    keys = check_keys(by, KEYS)
    frame = margin_by(wh, start, end, keys)
    return frame.filter(pl.col("profit") < 0).sort(["profit", *keys]).head(n)


def rate_deviation(wh: Warehouse, start: When, end: When) -> pl.DataFrame:
    """Where we sell below cost: answered calls whose customer rate is below the vendor rate.

    Columns: destination, vendor, currency, calls_below_cost, minutes_below_cost
    (customer-side billed minutes), loss (the sum of the negative profits among those calls,
    as a positive amount: increments can still leave such a call in profit, and those add
    nothing), worst_deviation (the most negative customer_rate - vendor_rate, per minute).
    Sorted by loss, highest first, then destination and vendor. Money and rates are in the
    base currency (``currency``), converted at each call's day's exchange rate.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> rate_deviation(wh, "2026-11-02", "2026-11-03").columns
    ['destination', 'vendor', 'currency', 'calls_below_cost', 'minutes_below_cost', 'loss',
     'worst_deviation']
    """
    begin, finish = period(start, end)
    require_rates(wh, begin, finish)
    return wh.sql(load_sql("rate_deviation"), {"start": begin, "end": finish})
