"""Pure finance functions: margin, markup, automatic rate creation, break-even, call rating.

Money is always :class:`decimal.Decimal` (see :mod:`ratelab.money`); every function accepts
``Decimal``, ``int`` or ``str`` amounts and rejects floats. Arithmetic runs in the fixed
money context, so results do not depend on the caller's decimal context.

Margin and markup are different things: margin is profit over *price*, markup is profit
over *cost*. A 25% margin is a 33.3% markup.

>>> quantize(margin("0.02", "0.015"), 4), quantize(markup("0.02", "0.015"), 4)
(Decimal('0.2500'), Decimal('0.3333'))
"""

import decimal
from dataclasses import dataclass
from decimal import Decimal

from ratelab.money import MONEY_PLACES, MoneyLike, Rounding, money_context, quantize, to_decimal

__all__ = [
    "BreakEven",
    "auto_create_rate",
    "billable_seconds",
    "billed_seconds",
    "break_even",
    "call_charge",
    "margin",
    "markup",
]

_SECONDS_PER_DAY = 86_400


def _plain(value: Decimal) -> Decimal:
    """Give an unrounded result a readable exponent without changing its value.

    Division keeps "ideal" exponents, so 2000 / 0.002 comes out as ``1.000E+6``; this
    turns integral results into plain integers and strips trailing zeros otherwise.
    """
    try:
        with money_context():
            if value == value.to_integral_value():
                return value.quantize(Decimal(1))
            return value.normalize()
    except decimal.InvalidOperation:  # more digits than the context holds: leave it
        return value


def _check_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")


def margin(price: MoneyLike, cost: MoneyLike) -> Decimal:
    """Return the margin ``(price - cost) / price`` as an unrounded fraction.

    A negative result means the price is below cost. Raises ValueError (never
    ZeroDivisionError) when the price is zero.

    >>> margin("0.015", "0.010")
    Decimal('0.33333333333333333333333333333333333333333333333333')
    >>> margin("0.02", "0.015")
    Decimal('0.25')
    """
    p = to_decimal(price)
    c = to_decimal(cost)
    if p.is_zero():
        raise ValueError(
            f"price is zero: margin is undefined (margin = (price - cost) / price; cost={c})"
        )
    with money_context():
        return _plain((p - c) / p)


def markup(price: MoneyLike, cost: MoneyLike) -> Decimal:
    """Return the markup ``(price - cost) / cost`` as an unrounded fraction.

    Raises ValueError (never ZeroDivisionError) when the cost is zero.

    >>> markup("0.0125", "0.010")
    Decimal('0.25')
    >>> markup("0.02", "0.015")
    Decimal('0.33333333333333333333333333333333333333333333333333')
    """
    p = to_decimal(price)
    c = to_decimal(cost)
    if c.is_zero():
        raise ValueError(
            f"cost is zero: markup is undefined (markup = (price - cost) / cost; price={p})"
        )
    with money_context():
        return _plain((p - c) / c)


def auto_create_rate(
    cost: MoneyLike,
    *,
    margin: MoneyLike | None = None,
    markup: MoneyLike | None = None,
    fixed: MoneyLike | None = None,
    min_rate: MoneyLike | None = None,
    max_rate: MoneyLike | None = None,
    places: int = MONEY_PLACES,
    rounding: Rounding = "up",
) -> Decimal:
    """Return the customer rate that earns the desired profit over ``cost``.

    Exactly one policy must be given:

    * ``margin`` m (a fraction of the *price*, below 1): rate = cost / (1 - m);
    * ``markup`` k (a fraction of the *cost*): rate = cost * (1 + k);
    * ``fixed`` amount a: rate = cost + a.

    The rate is then rounded with :func:`~ratelab.money.quantize` (``places`` places,
    rounding ``"up"`` by default so the target profit is never undercut), and finally
    clamped to ``[min_rate, max_rate]`` when those are given. Bounds must have at most
    ``places`` decimal places; the result always has exactly ``places`` places.

    Margins and markups are fractions: pass ``"0.25"`` for 25%, not ``25``.

    >>> auto_create_rate("0.008", margin="0.25")
    Decimal('0.010667')
    >>> auto_create_rate("0.008", markup="0.25")
    Decimal('0.010000')
    >>> auto_create_rate("0.008", fixed="0.002", max_rate="0.0095")
    Decimal('0.009500')
    """
    c = to_decimal(cost)
    if c < 0:
        raise ValueError(f"cost must not be negative, got {c}")

    given = {
        name: value
        for name, value in (("margin", margin), ("markup", markup), ("fixed", fixed))
        if value is not None
    }
    if len(given) != 1:
        got = " and ".join(given) if given else "none"
        raise ValueError(f"give exactly one of margin, markup or fixed; got {got}")
    [(policy, raw)] = given.items()
    amount = to_decimal(raw)

    low = None if min_rate is None else to_decimal(min_rate)
    high = None if max_rate is None else to_decimal(max_rate)
    if low is not None and high is not None and low > high:
        raise ValueError(f"min_rate {low} is above max_rate {high}")
    for name, bound in (("min_rate", low), ("max_rate", high)):
        if bound is not None and quantize(bound, places, "down") != bound:
            raise ValueError(f"{name} {bound} has more than {places} decimal places")

    with money_context():
        if policy == "margin":
            if amount >= 1:
                raise ValueError(
                    f"margin must be below 1 (a fraction of the price), got {amount}: "
                    "the rate is cost / (1 - margin)"
                )
            rate = c / (1 - amount)
        elif policy == "markup":
            rate = c * (1 + amount)
        else:
            rate = c + amount
    if rate < 0:
        raise ValueError(f"{policy} {amount} gives a negative rate for cost {c}")

    result = quantize(rate, places, rounding)
    if low is not None and result < low:
        result = quantize(low, places)
    if high is not None and result > high:
        result = quantize(high, places)
    return result


@dataclass(frozen=True)
class BreakEven:
    """Traffic needed over ``period_days`` for profit to cover fixed costs.

    All figures are unrounded; ``str()`` gives an analyst-readable summary with
    minutes and calls rounded (half up) to whole numbers and cps to 2 places.

    >>> print(break_even("2000", "0.002", "3"))
    break-even over 30 days: 1,000,000 minutes, 333,333 calls, 0.13 calls per second
    """

    minutes: Decimal
    calls: Decimal
    cps: Decimal
    period_days: int

    def __str__(self) -> str:
        days = "day" if self.period_days == 1 else "days"
        return (
            f"break-even over {self.period_days} {days}: "
            f"{quantize(self.minutes, 0):,} minutes, "
            f"{quantize(self.calls, 0):,} calls, "
            f"{quantize(self.cps, 2):,} calls per second"
        )


def break_even(
    fixed_costs: MoneyLike,
    profit_per_minute: MoneyLike,
    avg_call_minutes: MoneyLike,
    period_days: int = 30,
) -> BreakEven:
    """Return the minutes, calls and calls per second needed to cover ``fixed_costs``.

    minutes = fixed_costs / profit_per_minute; calls = minutes / avg_call_minutes;
    cps = calls / (period_days * 86400). Nothing is rounded.

    >>> be = break_even("2000", "0.002", "3")
    >>> be.minutes
    Decimal('1000000')
    >>> quantize(be.calls, 0, "down"), quantize(be.cps, 2)
    (Decimal('333333'), Decimal('0.13'))
    """
    fixed_amount = to_decimal(fixed_costs)
    profit = to_decimal(profit_per_minute)
    avg_minutes = to_decimal(avg_call_minutes)
    _check_int("period_days", period_days)
    if fixed_amount < 0:
        raise ValueError(f"fixed_costs must not be negative, got {fixed_amount}")
    if profit <= 0:
        raise ValueError(
            f"no break-even: each minute loses money or makes none (profit_per_minute={profit})"
        )
    if avg_minutes <= 0:
        raise ValueError(f"avg_call_minutes must be positive, got {avg_minutes}")
    if period_days < 1:
        raise ValueError(f"period_days must be at least 1, got {period_days}")
    with money_context():
        minutes = fixed_amount / profit
        calls = minutes / avg_minutes
        cps = calls / (period_days * _SECONDS_PER_DAY)
    return BreakEven(
        minutes=_plain(minutes), calls=_plain(calls), cps=_plain(cps), period_days=period_days
    )


def billed_seconds(duration_s: int, first: int, cycle: int) -> int:
    """Return the seconds billed for a call under ``first``/``cycle`` increments.

    A zero-length call bills nothing; a call up to ``first`` seconds bills ``first``;
    longer calls add whole ``cycle``-second blocks after the first increment.

    >>> billed_seconds(32, 30, 6), billed_seconds(61, 60, 60), billed_seconds(61, 1, 1)
    (36, 120, 61)
    >>> billed_seconds(0, 60, 60)
    0
    """
    _check_int("duration_s", duration_s)
    _check_int("first", first)
    _check_int("cycle", cycle)
    if duration_s < 0:
        raise ValueError(f"duration_s must not be negative, got {duration_s}")
    if first < 0:
        raise ValueError(f"first increment must not be negative, got {first}")
    if cycle < 1:
        raise ValueError(f"cycle must be at least 1 second, got {cycle}")
    if duration_s == 0:
        return 0
    if duration_s <= first:
        return first
    blocks = -(-(duration_s - first) // cycle)  # ceiling division on ints
    return first + blocks * cycle


def billable_seconds(duration_ms: int) -> int:
    """Return a CDR's duration in whole seconds, rounding any part second up.

    >>> billable_seconds(0), billable_seconds(1), billable_seconds(1000), billable_seconds(1001)
    (0, 1, 1, 2)
    """
    _check_int("duration_ms", duration_ms)
    if duration_ms < 0:
        raise ValueError(f"duration_ms must not be negative, got {duration_ms}")
    return -(-duration_ms // 1000)


def call_charge(
    duration_s: int,
    first_rate: MoneyLike,
    first: int,
    rate: MoneyLike,
    cycle: int,
    connect_fee: MoneyLike = 0,
) -> Decimal:
    """Return the charge for one call, rounded half up to 6 places once at the end.

    Rates are per minute: ``first_rate`` applies to the first increment of ``first``
    seconds, ``rate`` to the remaining billed seconds (see :func:`billed_seconds`).
    Unanswered calls (nothing billed) cost nothing, not even ``connect_fee``.

    >>> call_charge(60, "0.05", 60, "0.05", 60)
    Decimal('0.050000')
    >>> call_charge(75, "0.012", 30, "0.012", 6, connect_fee="0.01")
    Decimal('0.025600')
    >>> call_charge(0, "0.012", 30, "0.012", 6, connect_fee="0.01")
    Decimal('0.000000')
    """
    first_price = to_decimal(first_rate)
    next_price = to_decimal(rate)
    fee = to_decimal(connect_fee)
    billed = billed_seconds(duration_s, first, cycle)
    if billed == 0:
        return quantize(0, MONEY_PLACES)
    with money_context():
        charge = fee + (first_price * first + next_price * (billed - first)) / 60
    return quantize(charge, MONEY_PLACES, "half_up")
