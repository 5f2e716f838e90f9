"""The project's one money type: :class:`decimal.Decimal`, never ``float``.

Every amount (rates, costs, fees, charges) enters the code through :func:`to_decimal`
and is rounded with :func:`quantize`. Arithmetic runs inside :func:`money_context`, a
fixed 50-digit context that traps invalid operations and division by zero, so results
never depend on whatever decimal context the caller happens to have set.

>>> quantize(to_decimal("0.0106666"), 6, "up")
Decimal('0.010667')
"""

import decimal
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Literal, TypeAlias

__all__ = [
    "MONEY_PLACES",
    "MONEY_SQL",
    "MoneyLike",
    "Rounding",
    "money_context",
    "quantize",
    "to_decimal",
]

MONEY_PLACES = 6
"""Decimal places kept for stored money (rates per minute, costs, charges)."""

MONEY_SQL = "DECIMAL(18,6)"
"""DuckDB column type for money; matches :data:`MONEY_PLACES`."""

MoneyLike: TypeAlias = Decimal | int | str
"""What the money helpers accept. ``float`` is deliberately not part of it."""

Rounding: TypeAlias = Literal["half_up", "up", "down", "half_even"]
"""Rounding names accepted by :func:`quantize`."""

_ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "up": decimal.ROUND_UP,  # away from zero: a ceiling for positive money
    "down": decimal.ROUND_DOWN,  # toward zero: a floor for positive money
    "half_even": decimal.ROUND_HALF_EVEN,
}

_PRECISION = 50

# Every field is given explicitly so that nothing is inherited from decimal.DefaultContext,
# which callers may have changed.
_CONTEXT = decimal.Context(
    prec=_PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def money_context() -> AbstractContextManager[decimal.Context]:
    """Return a context manager running decimal arithmetic in the money context.

    The context has 50 significant digits, rounds half-even on inexact intermediate
    results and raises on invalid operations, division by zero and overflow, whatever
    the caller's own decimal context is.

    >>> with money_context():
    ...     Decimal(1) / Decimal(3)
    Decimal('0.33333333333333333333333333333333333333333333333333')
    """
    return decimal.localcontext(_CONTEXT)


def to_decimal(value: MoneyLike) -> Decimal:
    """Convert an int, str or Decimal to a finite Decimal, exactly.

    Floats are rejected with a TypeError (``0.1`` is not exactly one tenth, so it has
    no place in money); so are bools. Strings that do not parse, and NaN or infinite
    values, raise ValueError naming the offending value.

    >>> to_decimal("0.010")
    Decimal('0.010')
    >>> to_decimal(3)
    Decimal('3')
    >>> to_decimal(0.1)
    Traceback (most recent call last):
    ...
    TypeError: money must not be a float (got 0.1): pass a str or Decimal, e.g. '0.1'
    """
    if isinstance(value, bool):
        raise TypeError(f"money must not be a bool (got {value!r}): pass a str or Decimal")
    if isinstance(value, float):
        raise TypeError(
            f"money must not be a float (got {value!r}): pass a str or Decimal, e.g. '{value!r}'"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            with money_context():
                result = Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise TypeError(
            f"money must be a Decimal, int or str, got {type(value).__name__}: {value!r}"
        )
    if not result.is_finite():
        raise ValueError(f"money must be a finite number, got {value!r}")
    return result


def _check_places(places: int) -> None:
    if isinstance(places, bool) or not isinstance(places, int):
        raise TypeError(f"places must be an int, got {type(places).__name__}: {places!r}")
    if places < 0:
        raise ValueError(f"places must be 0 or more, got {places}")


def quantize(
    value: MoneyLike, places: int = MONEY_PLACES, rounding: Rounding = "half_up"
) -> Decimal:
    """Round ``value`` to ``places`` decimal places.

    ``rounding`` is one of ``"half_up"`` (the default), ``"up"`` (away from zero, i.e. a
    ceiling for positive money), ``"down"`` (toward zero) or ``"half_even"``. The result
    always carries exactly ``places`` decimal places; a zero result is never negative.

    >>> quantize("0.0106665")
    Decimal('0.010667')
    >>> quantize("0.0106661", rounding="up")
    Decimal('0.010667')
    >>> quantize("0.33333", 4, "down")
    Decimal('0.3333')
    >>> quantize("0.0000025", rounding="half_even")
    Decimal('0.000002')
    """
    amount = to_decimal(value)
    _check_places(places)
    try:
        mode = _ROUNDING_MODES[rounding]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(name) for name in _ROUNDING_MODES)
        raise ValueError(f"rounding must be one of {allowed}; got {rounding!r}") from None
    try:
        with money_context():
            result = amount.quantize(Decimal(1).scaleb(-places), rounding=mode)
    except decimal.InvalidOperation:
        raise ValueError(
            f"{amount} has too many digits to keep {places} decimal places "
            f"({_PRECISION} significant digits at most)"
        ) from None
    if result.is_zero():
        result = result.copy_abs()
    return result
