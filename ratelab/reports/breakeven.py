"""Break-even reports: the traffic needed for profit to cover fixed costs, and the day it did.

:func:`break_even` feeds a period's profit per minute and average call length to
:func:`ratelab.finance.break_even` (exact Decimal arithmetic); :func:`break_even_curve` gives
the cumulative profit per UTC day for the chart. Calls starting in ``[start, end)``, naive UTC.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> break_even(wh, "2026-11-02", "2026-11-03", "1000")["calls"].to_list()
[20]
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from ratelab import finance
from ratelab.money import MoneyLike, money_context, quantize, to_decimal
from ratelab.reports.common import ReportError, When, load_sql, period, require_rates

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["BREAK_EVEN_SCHEMA", "break_even", "break_even_curve"]

#: The columns and types of :func:`break_even`'s one row.
BREAK_EVEN_SCHEMA: dict[str, pl.DataType] = {
    "period_start": pl.Datetime("us"),
    "period_end": pl.Datetime("us"),
    "currency": pl.String(),
    "fixed_costs": pl.Decimal(18, 6),
    "profit": pl.Decimal(18, 6),
    "profit_per_minute": pl.Decimal(18, 6),
    "minutes": pl.Decimal(18, 1),
    "calls": pl.Int64(),
    "avg_call_minutes": pl.Decimal(18, 4),
    "minutes_needed": pl.Decimal(18, 1),
    "calls_needed": pl.Int64(),
    "cps_needed": pl.Float64(),
    "broke_even_on": pl.Date(),
}


def _fixed_costs(value: MoneyLike) -> Decimal:
    try:
        amount = to_decimal(value)
    except (TypeError, ValueError) as err:
        raise ReportError(f"fixed_costs: {err}") from None
    if amount < 0:
        raise ReportError(f"fixed_costs must not be negative, got {amount}")
    return quantize(amount)


def break_even_curve(wh: Warehouse, start: When, end: When,
                     fixed_costs: MoneyLike) -> pl.DataFrame:
    """Cumulative profit per UTC day against the fixed costs (for the break-even chart).

    Columns: day (Date; every day from the day of ``start`` to the last day before ``end``,
    days without calls included), currency (the base currency: profit is converted at each
    call's day's exchange rate, and ``fixed_costs`` are taken to be in it),
    cumulative_profit, fixed_costs. Empty when the period has no calls. A missing exchange
    rate raises :class:`~ratelab.reports.common.MissingRateError`.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> curve = break_even_curve(wh, "2026-11-01", "2026-11-04", "0.5")
    >>> curve["day"].dt.day().to_list(), curve["fixed_costs"].to_list()
    ([1, 2, 3], [Decimal('0.500000'), Decimal('0.500000'), Decimal('0.500000')])
    """
    begin, finish = period(start, end)
    fixed = _fixed_costs(fixed_costs)
    require_rates(wh, begin, finish)
    return wh.sql(load_sql("break_even_curve"),
                  {"start": begin, "end": finish, "fixed_costs": str(fixed)})


def break_even(wh: Warehouse, start: When, end: When, fixed_costs: MoneyLike) -> pl.DataFrame:
    """The traffic the period's economics need to cover ``fixed_costs``, and when they did.

    One row: period_start, period_end, currency (the base currency, that of fixed_costs and
    of every amount: profit is converted at each call's day's exchange rate), fixed_costs,
    profit (revenue - cost), minutes
    (customer-side billed), calls (every call, answered or not), profit_per_minute (profit /
    minutes), avg_call_minutes (minutes / calls), then :func:`ratelab.finance.break_even` of
    those: minutes_needed (rounded up to 0.1), calls_needed (rounded up; at today's answer
    rate, since unanswered calls count), cps_needed (calls_needed spread over the period,
    Float64); and broke_even_on (Date: the first UTC day the cumulative profit reached the
    fixed costs, null if it did not). The *_needed columns are null when the period made no
    profit per minute (no break-even). No calls: an empty frame.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> row = break_even(wh, "2026-11-02", "2026-11-03", "0.01").row(0, named=True)
    >>> row["calls"], row["broke_even_on"]
    (50, datetime.date(2026, 11, 2))
    """
    begin, finish = period(start, end)
    fixed = _fixed_costs(fixed_costs)
    base = require_rates(wh, begin, finish)
    totals = wh.sql(load_sql("break_even"), {"start": begin, "end": finish}).row(0, named=True)
    calls, billed_s, profit = totals["calls"], totals["billed_s"], totals["profit"]
    if calls == 0:
        return pl.DataFrame(schema=BREAK_EVEN_SCHEMA)
    with money_context():
        minutes = Decimal(billed_s) / 60
        per_minute = profit / minutes if billed_s else None
        avg_minutes = minutes / calls
    needed: tuple[Decimal | None, int | None, float | None] = (None, None, None)
    if per_minute is not None and per_minute > 0:
        be = finance.break_even(fixed, per_minute, avg_minutes)
        with money_context():
            seconds = Decimal((finish - begin) // timedelta(microseconds=1)) / 1_000_000
            cps = be.calls / seconds
        needed = (quantize(be.minutes, 1, "up"), int(quantize(be.calls, 0, "up")), float(cps))
    row = {
        "period_start": begin,
        "period_end": finish,
        "currency": base,
        "fixed_costs": fixed,
        "profit": profit,
        "profit_per_minute": None if per_minute is None else quantize(per_minute),
        "minutes": quantize(minutes, 1),
        "calls": calls,
        "avg_call_minutes": quantize(avg_minutes, 4),
        "minutes_needed": needed[0],
        "calls_needed": needed[1],
        "cps_needed": needed[2],
        "broke_even_on": _broke_even_on(break_even_curve(wh, begin, finish, fixed), fixed),
    }
    return pl.DataFrame([row], schema=BREAK_EVEN_SCHEMA)


def _broke_even_on(curve: pl.DataFrame, fixed: Decimal) -> date | None:
    reached = curve.filter(pl.col("cumulative_profit") >= fixed)
    return reached["day"][0] if reached.height else None
