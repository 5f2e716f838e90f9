"""Period comparison: what changed between two periods, per destination, customer or vendor,
and why: the profit change split into volume, mix and price effects.

The measures of each period come from ``ratelab/sql/reports/compare.sql`` (``rated_base``:
money in the base currency, converted at each call's UTC day's exchange rate; the same
calls, minutes, revenue, cost and profit as :func:`ratelab.reports.margin_by`). The split is
computed here in exact Decimal arithmetic (see docs/reports.md, "Period comparison"):

- ``volume_effect = (M_b - M_a) * s_a * p_a``: the row's share of the change in total minutes,
  at its old share and old profit per minute;
- ``mix_effect = M_b * (s_b - s_a) * p_a``: its share of the minutes moving, at its old
  profit per minute;
- ``price_effect = m_b * (p_b - p_a)``: its new minutes at the change in profit per minute,

with ``m`` a row's billed minutes, ``M`` the total, ``s = m / M`` and ``p = profit / m`` (0
when the row has no minutes). A row with calls in only one period is all mix (a new row
brings its profit, a gone row takes its profit away). Volume and mix are rounded half up to
6 places; price is the rest, so the three add up exactly to ``profit_change``.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> frame = compare(wh, "2026-10-26..2026-11-02", "2026-11-02..2026-11-09", by="vendor")
>>> frame.select("vendor", "calls_a", "calls_b").rows()
[('carrier_x', 0, 20)]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

import polars as pl

from ratelab.money import MONEY_PLACES, money_context
from ratelab.reports.common import (
    Keys,
    ReportError,
    When,
    check_keys,
    load_sql,
    moment,
    period,
    require_rates,
)
from ratelab.reports.margins import KEYS

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["COMPARE_MEASURES", "Period", "compare", "compare_periods", "compare_totals",
           "parse_period"]

#: A period: ``(start, end)`` (each a date, datetime or ISO string, end exclusive), or the
#: string ``"START..END"`` (what ``ratelab table`` and report parameters pass).
Period = str | tuple[When, When] | Sequence[When]

_MONEY, _MINUTES = pl.Decimal(18, 6), pl.Decimal(18, 1)
_SIDE = ("calls", "answered", "minutes", "revenue", "cost", "profit", "asr", "margin")
_CHANGES = ("revenue_change", "cost_change", "profit_change", "minutes_change", "asr_change")
_EFFECTS = ("volume_effect", "mix_effect", "price_effect")
#: The columns of :func:`compare` after its keys (and of :func:`compare_totals`).
COMPARE_MEASURES = (*(f"{m}_a" for m in _SIDE), *(f"{m}_b" for m in _SIDE), *_CHANGES,
                    *_EFFECTS, "currency", "synthetic_a", "synthetic_b")
_STEP = Decimal(1).scaleb(-MONEY_PLACES)


def parse_period(value: Period, name: str = "period") -> tuple[datetime, datetime]:
    """A checked period as naive UTC datetimes (start inclusive, end exclusive), from a
    ``(start, end)`` pair or a ``"START..END"`` string; ``name`` names it in errors.

    >>> parse_period("2026-11-01..2026-11-08")
    (datetime.datetime(2026, 11, 1, 0, 0), datetime.datetime(2026, 11, 8, 0, 0))
    >>> parse_period(("2026-11-01T06:00", "2026-11-02"))[0]
    datetime.datetime(2026, 11, 1, 6, 0)
    >>> for bad in ("2026-11-01", "2026-11-08..2026-11-01"):
    ...     try:
    ...         parse_period(bad, "period_a")
    ...     except ReportError as err:
    ...         print(err)
    period_a '2026-11-01' is not a period: write START..END, such as
    2026-11-01..2026-11-08 (end exclusive)
    period_a: the period is empty: start 2026-11-08 00:00 is not before end 2026-11-01 00:00
    """
    start: When
    end: When
    if isinstance(value, str):
        start, dots, end = value.partition("..")
        if not dots or ".." in end or not start.strip() or not end.strip():
            raise ReportError(f"{name} {value!r} is not a period: write START..END, such as "
                              "2026-11-01..2026-11-08 (end exclusive)")
    elif isinstance(value, tuple | list) and len(value) == 2:
        start, end = value
    else:
        raise ReportError(f"{name} must be a (start, end) pair or 'START..END', got {value!r}")
    try:
        return period(start, end)
    except ReportError as err:
        raise ReportError(f"{name}: {err}") from None


def compare_periods(wh: Warehouse, a_start: str = "", a_end: str = "", b_start: str = "",
                    b_end: str = "", *, zone: tzinfo = UTC, days: int = 7,
                    today: date | None = None
                    ) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """The two periods of a comparison from report parameters (strings, empty for a default),
    as naive UTC datetimes; dates without an offset are read in ``zone``.

    Period b: both ends empty, the ``days`` days up to the end of the last UTC day with
    calls (``today`` when the warehouse has none: the latest week of data, so the report is
    useful on a warehouse that is not fed every day); one end given, ``days`` days from or
    to it. Period a: both ends empty, a period as long as b, right before it; one end given,
    as long as b from or to it.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=5)  # calls on 2026-11-02
    >>> a, b = compare_periods(wh)
    >>> [f"{t:%m-%d}" for t in (*a, *b)]
    ['10-20', '10-27', '10-27', '11-03']
    >>> a, b = compare_periods(wh, "", "", "2026-11-02", "2026-11-03")
    >>> [f"{t:%m-%d}" for t in (*a, *b)]
    ['11-01', '11-02', '11-02', '11-03']
    """
    def read(value: str, name: str) -> datetime | None:
        return moment(value, name, zone) if value and value.strip() else None

    def bounds(begin: datetime | None, finish: datetime | None, length: timedelta,
               default_end: datetime, name: str) -> tuple[datetime, datetime]:
        if begin is None:
            finish = finish if finish is not None else default_end
            begin = finish - length
        elif finish is None:
            finish = begin + length
        try:
            return period(begin, finish)
        except ReportError as err:
            raise ReportError(f"{name}: {err}") from None

    b_begin, b_finish = read(b_start, "period_b_start"), read(b_end, "period_b_end")
    last = wh.sql("SELECT CAST(max(start_ts) AS DATE) AS day FROM cdrs")["day"][0]
    last = last or today or datetime.now(UTC).date()
    b = bounds(b_begin, b_finish, timedelta(days=days),
               datetime(last.year, last.month, last.day) + timedelta(days=1), "period b")
    a = bounds(read(a_start, "period_a_start"), read(a_end, "period_a_end"), b[1] - b[0],
               b[0], "period a")
    return a, b


def _effects(row: dict[str, object], total_a: int, total_b: int
             ) -> tuple[Decimal, Decimal, Decimal]:
    """Volume, mix and price effect of one row (see the module docstring).

    Minutes are the exact billed seconds: shares and profit per minute are the same ratios in
    either unit, and rounded minutes would leave a 2-second call's profit without a price.
    """
    profit_a, profit_b = row["profit_a"], row["profit_b"]
    assert isinstance(profit_a, Decimal) and isinstance(profit_b, Decimal)
    change = profit_b - profit_a
    if not row["calls_a"] or not row["calls_b"]:
        return Decimal(0).quantize(_STEP), change, Decimal(0).quantize(_STEP)
    seconds_a, seconds_b = row["seconds_a"], row["seconds_b"]
    assert isinstance(seconds_a, int) and isinstance(seconds_b, int)
    with money_context():
        if seconds_a == 0:  # p_a = 0: no old profit per minute to carry volume or mix
            volume = mix = Decimal(0)
        else:
            # (M_b - M_a) * (m_a / M_a) * (P_a / m_a) and M_b * (m_b / M_b - m_a / M_a) *
            # (P_a / m_a), simplified so each is one division of exact values (M_a >= m_a > 0)
            volume = Decimal(total_b - total_a) * profit_a / Decimal(total_a)
            mix = (profit_a * Decimal(seconds_b * total_a - total_b * seconds_a)
                   / Decimal(seconds_a * total_a))
        volume = volume.quantize(_STEP, rounding=ROUND_HALF_UP)
        mix = mix.quantize(_STEP, rounding=ROUND_HALF_UP)
        return volume, mix, change - volume - mix


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    """numerator / denominator as a Float64 ratio, null when the denominator is 0."""
    below = pl.col(denominator).cast(pl.Float64)
    return pl.col(numerator).cast(pl.Float64) / pl.when(below != 0).then(below)


def _finish(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Ratios, changes and column order from the per-period sums (rows or totals)."""
    return frame.with_columns(
        (pl.col("revenue_a") - pl.col("cost_a")).cast(_MONEY).alias("profit_a"),
        (pl.col("revenue_b") - pl.col("cost_b")).cast(_MONEY).alias("profit_b"),
    ).with_columns(
        _ratio("answered_a", "calls_a").alias("asr_a"),
        _ratio("answered_b", "calls_b").alias("asr_b"),
        _ratio("profit_a", "revenue_a").alias("margin_a"),
        _ratio("profit_b", "revenue_b").alias("margin_b"),
        (pl.col("revenue_b") - pl.col("revenue_a")).cast(_MONEY).alias("revenue_change"),
        (pl.col("cost_b") - pl.col("cost_a")).cast(_MONEY).alias("cost_change"),
        (pl.col("profit_b") - pl.col("profit_a")).cast(_MONEY).alias("profit_change"),
        (pl.col("minutes_b") - pl.col("minutes_a")).cast(_MINUTES).alias("minutes_change"),
    ).with_columns(
        (pl.col("asr_b") - pl.col("asr_a")).alias("asr_change"),
    )


def compare(wh: Warehouse, period_a: Period, period_b: Period,
            by: Keys = "destination") -> pl.DataFrame:
    """What changed from ``period_a`` to ``period_b`` per destination, customer and/or vendor
    (one key or a list), and why: the profit change split into volume, mix and price.

    Each period is ``(start, end)`` or ``"START..END"`` (end exclusive; the periods may
    overlap). Columns: the keys; for each period (suffix ``_a``, ``_b``) calls, answered,
    minutes (customer billed), revenue, cost, profit, asr (answered / calls), margin (profit
    / revenue); revenue_change, cost_change, profit_change, minutes_change, asr_change (b -
    a; null when a side has no ASR); volume_effect, mix_effect, price_effect (adding up
    exactly to profit_change); currency (the base currency); synthetic_a, synthetic_b (the
    row holds generated CDRs in that period). A key with calls in one period only has zeros
    in the other. Sorted by the size of the profit change, largest first, then the keys.

    Raises :class:`~ratelab.reports.common.ReportError` for a bad period or key and
    :class:`~ratelab.reports.common.MissingRateError` when an exchange rate is missing.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> frame = compare(wh, ("2026-11-02", "2026-11-02T12:00"),
    ...                 ("2026-11-02T12:00", "2026-11-03"), by="vendor")
    >>> row = frame.row(0, named=True)
    >>> row["calls_a"] + row["calls_b"], row["currency"]
    (50, 'USD')
    >>> row["volume_effect"] + row["mix_effect"] + row["price_effect"] == row["profit_change"]
    True
    """
    a_start, a_end = parse_period(period_a, "period_a")
    b_start, b_end = parse_period(period_b, "period_b")
    keys = check_keys(by, KEYS)
    base = require_rates(wh, a_start, a_end)
    require_rates(wh, b_start, b_end)
    sums = wh.sql(load_sql("compare"), {"a_start": a_start, "a_end": a_end,
                                        "b_start": b_start, "b_end": b_end, "by": keys})
    sums = sums.rename({f"{k}_key": k for k in KEYS})
    frame = _finish(sums, keys)
    total_a, total_b = (int(sums.get_column(c).sum()) for c in ("seconds_a", "seconds_b"))
    split = [_effects(row, total_a, total_b) for row in frame.iter_rows(named=True)]
    frame = frame.with_columns(
        *(pl.Series(name, [s[i] for s in split], dtype=_MONEY)
          for i, name in enumerate(_EFFECTS)),
        pl.lit(base, dtype=pl.String).alias("currency"),
    )
    return (frame.with_columns(pl.col("profit_change").abs().alias("_size"))
            .sort(["_size", *keys], descending=[True, *[False] * len(keys)])
            .select(*keys, *COMPARE_MEASURES))


def compare_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """One row of totals of a :func:`compare` frame: what its headline and waterfall show
    (profit_a, then volume_effect, mix_effect and price_effect, to profit_b).

    Columns: those of :func:`compare` without the keys. Counts, minutes and money are the
    sums of the rows (so the effects still add up exactly to profit_change); asr and margin
    are recomputed from the sums; currency is the frame's (None for an empty frame, which
    gives one row of zeros).

    >>> from decimal import Decimal
    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> frame = compare(wh, "2026-11-02..2026-11-02T12:00", "2026-11-02T12:00..2026-11-03")
    >>> total = compare_totals(frame).row(0, named=True)
    >>> total["profit_a"] + total["volume_effect"] + total["mix_effect"] \\
    ...     + total["price_effect"] == total["profit_b"]
    True
    >>> compare_totals(frame.head(0))["profit_change"].to_list()
    [Decimal('0.000000')]
    """
    summed = ("calls_a", "answered_a", "minutes_a", "revenue_a", "cost_a",
              "calls_b", "answered_b", "minutes_b", "revenue_b", "cost_b", *_EFFECTS)
    types: dict[str, pl.DataType] = {
        "calls_a": pl.Int64(), "answered_a": pl.Int64(), "calls_b": pl.Int64(),
        "answered_b": pl.Int64(), "minutes_a": _MINUTES, "minutes_b": _MINUTES}
    currencies = sorted({str(c) for c in frame.get_column("currency").to_list()
                         if c is not None})
    if len(currencies) > 1:
        raise ReportError(f"the frame holds amounts in {', '.join(currencies)}: totals add "
                          "no unlike money")
    totals = frame.select(
        *(pl.col(c).sum().cast(types.get(c, _MONEY)) for c in summed),
        *(pl.col(c).any() for c in ("synthetic_a", "synthetic_b")),
    ).with_columns(pl.lit(currencies[0] if currencies else None, dtype=pl.String)
                   .alias("currency"))
    return _finish(totals, []).select(*COMPARE_MEASURES)
