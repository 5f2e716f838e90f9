"""Billing reports: what customers are billed, what vendors charge, bills and settlement.

Every function reads the ``rated`` table for calls starting in ``[start, end)`` (naive UTC,
see :func:`ratelab.reports.period`) and returns a Polars frame; money columns are exact
``Decimal(18, 6)``, billed minutes ``Decimal(18, 1)`` (rounded half up), counts ``Int64``.
Days, weeks and months are UTC. A period without calls gives an empty frame with the same
columns. The queries are in ``ratelab/sql/reports/<function>.sql``.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> revenue_details(wh, "2026-11-02", "2026-11-03")["calls"].sum()
20
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ratelab.reports.common import ReportError, When, check_choice, check_party, load_sql
from ratelab.reports.common import period as _period

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["clearing_details", "gateway_bill", "revenue_details", "settlement_summary"]

SIDES = ("customer", "vendor")
PERIODS = ("day", "week", "month")


def revenue_details(wh: Warehouse, start: When, end: When,
                    customer: str | None = None) -> pl.DataFrame:
    """What each customer was billed: one row per customer, destination, prefix and rate.

    Columns: customer, destination, customer_prefix, customer_rate, currency (the customer
    rate table's: rate and revenue are as billed, not converted), calls, answered,
    billed_minutes (customer side), revenue; sorted by customer, destination, prefix.
    Calls the customer side could not rate keep their count with a null prefix and rate and
    zero revenue (destination ``(unrated)`` when neither side matched a rate).

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> details = revenue_details(wh, "2026-11-02", "2026-11-03", customer="acme")
    >>> details.select("destination", "customer_prefix", "customer_rate").rows()
    [('USA', '1', Decimal('0.010000')), ('United Kingdom', '44', Decimal('0.020000')),
     ('United Kingdom - Mobile', '447', Decimal('0.030000'))]
    """
    begin, finish = _period(start, end)
    check_party(wh, "customer", customer)
    return wh.sql(load_sql("revenue_details"),
                  {"start": begin, "end": finish, "customer": customer})


def clearing_details(wh: Warehouse, start: When, end: When,
                     vendor: str | None = None) -> pl.DataFrame:
    """What each vendor will charge: one row per vendor, destination, prefix and rate.

    Columns: vendor, destination, vendor_prefix, vendor_rate, currency (the vendor rate
    table's: rate and cost are as charged, not converted), calls, answered, billed_minutes
    (vendor side), cost; sorted by vendor, destination, prefix. Only calls that
    reached a vendor, counted for the final vendor (failed failover attempts cost nothing).

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> clearing_details(wh, "2026-11-02", "2026-11-03")["vendor_rate"].to_list()
    [Decimal('0.008000'), Decimal('0.015000'), Decimal('0.024000')]
    """
    begin, finish = _period(start, end)
    check_party(wh, "vendor", vendor)
    return wh.sql(load_sql("clearing_details"), {"start": begin, "end": finish, "vendor": vendor})


def gateway_bill(wh: Warehouse, start: When, end: When, party: str,
                 side: str) -> pl.DataFrame:
    """One customer's (``side="customer"``) or vendor's (``side="vendor"``) bill per UTC day.

    Columns: day, currency (that side's rate table's; amounts are not converted: a bill is in
    the currency it is paid in), calls, answered, billed_minutes (that side's), amount
    (revenue for a customer, cost for a vendor); sorted by day, then currency. Totals are the
    caller's to add, per currency.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> bill = gateway_bill(wh, "2026-11-01", "2026-11-08", "carrier_x", "vendor")
    >>> bill.select("day", "calls").rows()
    [(datetime.date(2026, 11, 2), 50)]
    """
    begin, finish = _period(start, end)
    check_choice("side", side, SIDES)
    if not party:
        raise ReportError(f"name the {side} to bill (party)")
    check_party(wh, side, party)
    return wh.sql(load_sql("gateway_bill"),
                  {"start": begin, "end": finish, "side": side, "party": party})


def settlement_summary(wh: Warehouse, start: When, end: When,
                       period: str = "day") -> pl.DataFrame:
    """Calls, revenue, cost, profit and margin per UTC day, ISO week or month and currency.

    Columns: period_start (Date; weeks start on Monday, the first and last bucket may be
    partial), currency, calls, answered, revenue, cost, profit, margin (Float64, null when
    revenue is 0). Sorted by period_start, currency. Settlement per currency, unconverted:
    revenue is summed under its customer table's currency and cost under its vendor table's,
    so no row adds unlike money (a EUR vendor's cost is on the EUR row). Calls are counted
    under the customer side's currency (the vendor side's when the customer side did not
    rate; ``(unrated)`` when neither did). Converted totals: :func:`ratelab.reports.margin_by`.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> summary = settlement_summary(wh, "2026-11-01", "2026-12-01", period="month")
    >>> summary.select("period_start", "currency", "calls").rows()
    [(datetime.date(2026, 11, 1), 'USD', 50)]
    """
    begin, finish = _period(start, end)  # imported as _period: the argument is ``period``
    check_choice("period", period, PERIODS)
    return wh.sql(load_sql("settlement_summary"),
                  {"start": begin, "end": finish, "period": period})
