"""Parsers for single deck cells (CSV text or XLSX values): money, seconds, increments,
prefixes, bands and dates. Each raises :class:`CellError` with a human-readable reason.

These are the building blocks of :func:`ratelab.decks.read_deck`, which adds the file and
line to each reason.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import NoReturn

__all__ = [
    "BANDS",
    "MAX_DECIMAL_PLACES",
    "MAX_PREFIX_DIGITS",
    "CellError",
    "cell_text",
    "format_moment",
    "is_empty",
    "parse_band",
    "parse_datetime",
    "parse_increment",
    "parse_money",
    "parse_prefix",
    "parse_seconds",
]

BANDS: tuple[str, ...] = ("any", "peak", "offpeak", "weekend")
MAX_PREFIX_DIGITS = 17
MAX_DECIMAL_PLACES = 6

_BAND_SPELLINGS = {"any": "any", "all": "any", "peak": "peak", "offpeak": "offpeak",
                   "weekend": "weekend"}


class CellError(ValueError):
    """A cell could not be parsed; ``str(err)`` is the reason."""


def _fail(reason: str) -> NoReturn:
    raise CellError(reason)


def is_empty(value: object) -> bool:
    """True for a missing cell, ``None`` or a blank string.

    >>> is_empty(None), is_empty("  "), is_empty(0)
    (True, True, False)
    """
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: object) -> str:
    """A cell as stripped text; whole floats lose their ``.0`` (an XLSX prefix 44.0 is "44").

    >>> cell_text(44.0), cell_text(44), cell_text(" UK "), cell_text(None)
    ('44', '44', 'UK', '')
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


_MONEY_NOISE = re.compile(r"[$€£\s]")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+\.\d*")


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool | date | time):
        _fail(f"unparseable {field} {cell_text(value)!r}")
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))  # shortest repr: 0.0105 -> Decimal("0.0105")
    else:
        raw = cell_text(value)
        text = _MONEY_NOISE.sub("", raw)
        if "," in text:
            if "." not in text and text.count(",") == 1:
                text = text.replace(",", ".")  # comma decimal: 0,0123
            elif _THOUSANDS.fullmatch(text):
                text = text.replace(",", "")  # thousands separators: 1,234.50
        if not _NUMBER.fullmatch(text):
            _fail(f"unparseable {field} {raw!r}")
        number = Decimal(text)
    if not number.is_finite():
        _fail(f"unparseable {field} {cell_text(value)!r}")
    return number


def _exponent(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite numbers only
    return exponent


def parse_money(value: object, field: str = "rate") -> Decimal:
    """A non-negative amount with at most 6 decimal places (trailing zeros don't count).

    Currency symbols ($ € £) and spaces are ignored; ``0,0123`` (comma, no dot) is a
    decimal comma; XLSX numbers go through ``str`` so 0.0105 stays ``Decimal("0.0105")``.

    >>> parse_money("$ 0,0105"), parse_money(0.0105), parse_money("0.01230000")
    (Decimal('0.0105'), Decimal('0.0105'), Decimal('0.01230000'))
    >>> parse_money("-0.01")
    Traceback (most recent call last):
    ...
    ratelab.decks.cells.CellError: negative rate -0.01
    """
    number = _decimal(value, field)
    if number < 0:
        _fail(f"negative {field} {number}")
    if -_exponent(number.normalize()) > MAX_DECIMAL_PLACES:
        _fail(f"{field} {number} has more than {MAX_DECIMAL_PLACES} decimal places")
    if number == 0:
        return abs(number)  # never "-0"
    if _exponent(number) > 0:
        return number.quantize(Decimal(1))  # 1E+1 -> 10
    return number


_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")


def parse_seconds(value: object, field: str = "cycle") -> int:
    """A whole number of seconds (sign kept: range checks are the caller's).

    >>> parse_seconds("60"), parse_seconds(6.0), parse_seconds("-1")
    (60, 6, -1)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = cell_text(value)
    if isinstance(value, str) and _WHOLE.fullmatch(text):
        return int(Decimal(text))
    _fail(f"unparseable {field} {text!r} (whole seconds expected)")


_INCREMENT = re.compile(r"(\d+)\s*(?:[/-]\s*(\d+))?")


def parse_increment(value: object) -> tuple[int, int]:
    """``(first_period, cycle)`` from ``"60/60"``, ``"30/6"``, ``"60 / 60"``, ``"60-60"``;
    a single number n means n/n.

    >>> parse_increment("30/6"), parse_increment("60 - 60"), parse_increment(1)
    ((30, 6), (60, 60), (1, 1))
    """
    if isinstance(value, date | time):
        _fail(
            f"unparseable increment: the cell holds a date ({cell_text(value)}); the "
            "spreadsheet probably turned text like '1/1' into a date, format it as text"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = parse_seconds(value, "increment")
        return seconds, seconds
    text = cell_text(value)
    match = _INCREMENT.fullmatch(text)
    if not match:
        _fail(f"unparseable increment {text!r}")
    return int(match[1]), int(match[2] or match[1])


def parse_prefix(value: object) -> str:
    """Digits only: spaces and one leading ``+`` are removed; at most 17 digits.

    >>> parse_prefix("+44 20"), parse_prefix(44.0)
    ('4420', '44')
    """
    raw = cell_text(value)
    digits = "".join(raw.split()).removeprefix("+")
    if not digits:
        _fail("empty prefix")
    if not (digits.isascii() and digits.isdigit()):
        _fail(f"prefix {raw!r} is not all digits")
    if len(digits) > MAX_PREFIX_DIGITS:
        _fail(f"prefix {digits} is longer than {MAX_PREFIX_DIGITS} digits")
    return digits


def parse_band(value: object) -> str:
    """One of :data:`BANDS`; case-insensitive, ``all`` means ``any``, ``off-peak`` works.

    >>> parse_band("Off-Peak"), parse_band("ALL"), parse_band("")
    ('offpeak', 'any', 'any')
    """
    raw = cell_text(value)
    if not raw:
        return "any"
    band = _BAND_SPELLINGS.get(re.sub(r"[\s_\-]+", "", raw.casefold()))
    if band is None:
        _fail(f"unknown band {raw!r} (expected any, peak, offpeak or weekend)")
    return band


_MONTHS = {
    name: number
    for number, names in enumerate(
        (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")),
        start=1,
    )
    for name in names
}
_TIME = r"(?:(?:\s+|T)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?"
_DATE_FORMS = tuple(
    re.compile(form + _TIME, re.IGNORECASE)
    for form in (
        r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})",  # 2026-01-31
        r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})",  # 20260131
        r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4})",  # 31/01/2026
        r"(?P<d>\d{1,2})[-\s/]*(?P<mon>[a-z]{3,9})\.?,?[-\s/]*(?P<y>\d{4})",  # 31-Jan-2026
        r"(?P<mon>[a-z]{3,9})\.?[-\s/]*(?P<d>\d{1,2}),?[-\s/]+(?P<y>\d{4})",  # Jan 31, 2026
    )
)


def parse_datetime(value: object, field: str = "effective_from", date_order: str = "dmy"
                   ) -> datetime:
    """A naive datetime from a date/datetime cell or text, optionally followed by a time.

    Text forms: ``2026-01-31``, ``2026/01/31``, ``20260131``, ``31/01/2026``,
    ``31.01.2026``, ``31-01-2026`` (``date_order="mdy"`` reads the last three month
    first), ``31-Jan-2026``, ``31 Jan 2026``, ``Jan 31 2026``; then ``10:00[:00]``
    (after a space, or ``T`` as in ISO).

    >>> parse_datetime("31.01.2026 10:30")
    datetime.datetime(2026, 1, 31, 10, 30)
    >>> parse_datetime("01/02/2026", date_order="mdy").date()
    datetime.date(2026, 1, 2)
    >>> parse_datetime("Jan 31 2026") == parse_datetime("2026-01-31T00:00:00")
    True
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    text = " ".join(cell_text(value).split())
    for form in _DATE_FORMS:
        match = form.fullmatch(text)
        if match is None:
            continue
        parts = match.groupdict()
        if parts.get("mon") is not None:
            month = _MONTHS.get(parts["mon"].casefold(), 0)
        elif parts.get("a") is not None:
            day_first = date_order == "dmy"
            month = int(parts["b"] if day_first else parts["a"])
            parts["d"] = parts["a"] if day_first else parts["b"]
        else:
            month = int(parts["m"])
        try:
            return datetime(
                int(parts["y"]), month, int(parts["d"]), int(parts["H"] or 0),
                int(parts["M"] or 0), int(parts["S"] or 0), int((parts["f"] or "").ljust(6, "0")),
            )
        except ValueError:
            break  # matched a form but is not a real date/time (31/02, 25:00)
    _fail(f"unparseable {field} {cell_text(value)!r}")


def format_moment(moment: datetime) -> str:
    """A datetime for messages: the date alone at midnight.

    >>> format_moment(datetime(2026, 2, 1)), format_moment(datetime(2026, 2, 1, 10, 0))
    ('2026-02-01', '2026-02-01 10:00:00')
    """
    return moment.date().isoformat() if moment.time() == time() else moment.isoformat(sep=" ")
