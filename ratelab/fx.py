"""Exchange rates: money of several currencies, reported in the warehouse's base currency.

Rate tables keep the currency their deck was priced in, and ``rated`` keeps every charge in its
table's currency. The table ``fx_rates`` says what one unit of a currency is worth in the base
currency (``settings.base_currency``, USD unless set) from a UTC day on; the rate in force on a
call's UTC day is the latest one on or before that day. The view ``rated_base`` (migration 003)
converts each call's revenue and cost with it: ``amount * rate`` rounded half up (away from
zero) to 6 places, once per call and side, exactly (DECIMAL; :func:`convert` is the same rule
in Python). See docs/rating.md, "Currencies".

Files are CSV with a header ``date,currency,rate``: a bad row is reported with file, line and
reason, and nothing of the file is imported (as for decks).

>>> convert("0.010000", "1.08")
Decimal('0.010800')
>>> convert("0.0125", "1.08000004")       # 0.0135000005 -> half up
Decimal('0.013500')
>>> convert("0.000005", "0.5")            # 0.0000025 -> half up, not half even
Decimal('0.000003')
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ratelab.db import scalar

__all__ = ["FxError", "FxProblem", "FxRate", "FxSummary", "base_currency", "convert",
           "cross_convert", "import_rates", "rate_on", "rates_frame", "read_fx_file",
           "set_base_currency", "set_rate"]

#: Places kept after converting an amount (the same as every stored charge).
PLACES = 6
#: Places an exchange rate may have (``fx_rates.rate`` is DECIMAL(18, 10)).
RATE_PLACES = 10
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_HEADER = ("date", "currency", "rate")


@dataclass(frozen=True)
class FxProblem:
    """One problem in a rate file: the file as given, a 1-based line and why.

    >>> str(FxProblem("fx.csv", 3, "rate '-1' is not above 0"))
    "fx.csv:3: rate '-1' is not above 0"
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class FxError(ValueError):
    """A rate file (or one rate) was refused; ``problems`` lists every problem, in line order.

    >>> print(FxError("fx.csv", [FxProblem("fx.csv", 2, "empty currency")]))
    1 problem(s) in fx.csv; nothing was imported:
    fx.csv:2: empty currency
    """

    def __init__(self, file: str, problems: Iterable[FxProblem]) -> None:
        self.file = file
        self.problems: list[FxProblem] = list(problems)
        listing = "\n".join(str(problem) for problem in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in {file}; nothing was imported:\n{listing}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problems))


@dataclass(frozen=True)
class FxRate:
    """One unit of ``currency`` is worth ``rate`` base-currency units from UTC ``day`` on."""

    day: date
    currency: str
    rate: Decimal


@dataclass
class FxSummary:
    """What an import did."""

    file: str
    rows: int
    added: int
    replaced: int

    def __str__(self) -> str:
        return (f"{self.file}: {self.rows} exchange rates ({self.added} new, "
                f"{self.replaced} replaced)")


def convert(amount: Decimal | str | int, rate: Decimal | str | int) -> Decimal:
    """``amount * rate`` rounded half up to 6 places: what ``rated_base`` does in DuckDB.

    >>> convert("1.234567", "0.9")
    Decimal('1.111110')
    """
    for value in (amount, rate):
        if isinstance(value, float):
            raise TypeError("money and exchange rates are never floats: pass str or Decimal")
    return (Decimal(amount) * Decimal(rate)).quantize(Decimal(1).scaleb(-PLACES), ROUND_HALF_UP)


def cross_convert(amount: Decimal, rate_from: Decimal, rate_to: Decimal) -> Decimal:
    """``amount`` of a currency worth ``rate_from`` base units, in a currency worth ``rate_to``
    base units: ``amount * rate_from / rate_to``, computed with 50 significant digits and
    rounded **up** to 6 places, so a cost converted for pricing is never understated.

    >>> cross_convert(Decimal("0.010000"), Decimal("1.08"), Decimal("1.27"))   # EUR -> GBP
    Decimal('0.008504')
    >>> cross_convert(Decimal("0.010000"), Decimal("1.08"), Decimal(1))        # EUR -> base
    Decimal('0.010800')
    """
    from ratelab.money import money_context, quantize

    with money_context():
        exact = amount * rate_from / rate_to
    return quantize(exact, PLACES, "up")


def rate_on(con: duckdb.DuckDBPyConnection, currency: str, day: date) -> Decimal | None:
    """What one unit of ``currency`` is worth in the base currency on UTC ``day`` (the latest
    rate on or before it; 1 for the base currency), or None when there is none.

    >>> from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> _ = set_rate(con, "EUR", "1.08", date(2026, 11, 1))
    >>> rate_on(con, "EUR", date(2026, 11, 5)), rate_on(con, "EUR", date(2026, 10, 31))
    (Decimal('1.0800000000'), None)
    >>> rate_on(con, "USD", date(2026, 10, 31))
    Decimal('1')
    """
    if currency == base_currency(con):
        return Decimal(1)
    rate = scalar(con, """SELECT rate FROM fx_rates WHERE currency = ? AND day <= ?
                          ORDER BY day DESC LIMIT 1""", [currency, day])
    return None if rate is None else Decimal(rate)


def check_currency(code: str) -> str:
    """Upper-case a currency code and check it is three letters (ISO 4217 style).

    >>> check_currency("eur")
    'EUR'
    >>> check_currency("euro")
    Traceback (most recent call last):
    ...
    ValueError: currency 'euro' is not a three-letter code such as EUR
    """
    upper = code.strip().upper()
    if not _CURRENCY.match(upper):
        raise ValueError(f"currency {code!r} is not a three-letter code such as EUR")
    return upper


def parse_rate(text: str) -> Decimal:
    """A positive exchange rate of at most 10 decimal places, from text.

    >>> parse_rate("1.08")
    Decimal('1.08')
    >>> parse_rate("0")
    Traceback (most recent call last):
    ...
    ValueError: rate '0' is not above 0
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"rate {text!r} is not a number (use a dot: 1.08)") from None
    if not value.is_finite():
        raise ValueError(f"rate {text!r} is not a number (use a dot: 1.08)")
    if value <= 0:
        raise ValueError(f"rate {text!r} is not above 0")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATE_PLACES:
        raise ValueError(f"rate {text!r} has more than {RATE_PLACES} decimal places")
    if value >= Decimal(10) ** (18 - RATE_PLACES):
        raise ValueError(f"rate {text!r} is too large")
    return value


def read_fx_file(path: str | Path) -> list[FxRate]:
    """Read and validate a CSV of ``date,currency,rate`` rows (header required, any order).

    Every problem is collected and raised together as :class:`FxError`.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "fx.csv"
    >>> _ = f.write_text("date,currency,rate\\n2026-11-01,EUR,1.08\\n2026-11-02,eur,x\\n"
    ...                  "2026-11-01,EUR,1.09\\n")
    >>> try:
    ...     read_fx_file(f)
    ... except FxError as err:
    ...     print("\\n".join(p.reason for p in err.problems))
    rate 'x' is not a number (use a dot: 1.08)
    EUR on 2026-11-01 is given twice (line 2 and line 4)
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FxError(name, [FxProblem(name, 0, f"cannot read the file: {exc}")]) from None
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        raise FxError(name, [FxProblem(name, 1, "empty file: expected a header "
                                                 "date,currency,rate")])
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in _HEADER if column not in header]
    if missing:
        raise FxError(name, [FxProblem(name, 1, f"the header lacks {', '.join(missing)} "
                                                 "(expected date,currency,rate)")])
    where = {column: header.index(column) for column in _HEADER}
    problems: list[FxProblem] = []
    found: list[FxRate] = []
    seen: dict[tuple[date, str], int] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            hint = " (a decimal comma? write rates with a dot: 1.27)" if len(cells) > len(
                header) else ""
            problems.append(FxProblem(name, number, f"expected {len(header)} columns, "
                                                    f"found {len(cells)}{hint}"))
            continue
        reasons = []
        day: date | None = None
        try:
            day = date.fromisoformat(cells[where["date"]].strip())
        except ValueError:
            reasons.append(f"date {cells[where['date']]!r} is not YYYY-MM-DD")
        currency = ""
        try:
            currency = check_currency(cells[where["currency"]])
        except ValueError as exc:
            reasons.append(str(exc) if cells[where["currency"]].strip() else "empty currency")
        rate = Decimal(0)
        try:
            rate = parse_rate(cells[where["rate"]])
        except ValueError as exc:
            reasons.append(str(exc))
        if reasons:
            problems.extend(FxProblem(name, number, reason) for reason in reasons)
            continue
        assert day is not None
        if (day, currency) in seen:
            problems.append(FxProblem(name, number, f"{currency} on {day} is given twice "
                                                    f"(line {seen[day, currency]} and "
                                                    f"line {number})"))
            continue
        seen[day, currency] = number
        found.append(FxRate(day, currency, rate))
    if problems:
        raise FxError(name, problems)
    if not found:
        raise FxError(name, [FxProblem(name, 2, "no rates in the file")])
    return found


def base_currency(con: duckdb.DuckDBPyConnection) -> str:
    """The warehouse's base currency (USD unless set).

    >>> from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> base_currency(con)
    'USD'
    """
    value = scalar(con, "SELECT value FROM settings WHERE key = 'base_currency'")
    return "USD" if value is None else str(value)


def set_base_currency(con: duckdb.DuckDBPyConnection, currency: str) -> str:
    """Change the base currency; refused once exchange rates exist (they are quoted in it)."""
    code = check_currency(currency)
    if scalar(con, "SELECT count(*) FROM fx_rates") and code != base_currency(con):
        raise ValueError(f"the warehouse has exchange rates quoted in {base_currency(con)}; "
                         "the base currency cannot change under them")
    con.execute("INSERT OR REPLACE INTO settings VALUES ('base_currency', ?)", [code])
    return code


def import_rates(con: duckdb.DuckDBPyConnection, rates: Sequence[FxRate], *,
                 source: str) -> tuple[int, int]:
    """Store ``rates`` (a rate already set for the same day and currency is replaced); return
    (added, replaced). The caller holds the transaction."""
    base = base_currency(con)
    for rate in rates:
        if rate.currency == base:
            raise ValueError(f"{rate.currency} is the base currency: it needs no rate")
    now = datetime.now(UTC).replace(tzinfo=None)
    before = int(scalar(con, "SELECT count(*) FROM fx_rates"))
    con.executemany(
        "INSERT OR REPLACE INTO fx_rates VALUES (?, ?, ?, ?, ?)",
        [(r.day, r.currency, r.rate, source, now) for r in rates])
    added = int(scalar(con, "SELECT count(*) FROM fx_rates")) - before
    return added, len(rates) - added


def set_rate(con: duckdb.DuckDBPyConnection, currency: str, rate: Decimal | str,
             day: date) -> FxRate:
    """Set one rate: 1 ``currency`` = ``rate`` base units from UTC ``day`` on."""
    if isinstance(rate, float):
        raise TypeError("exchange rates are never floats: pass str or Decimal")
    entry = FxRate(day, check_currency(currency), parse_rate(str(rate)))
    import_rates(con, [entry], source="set")
    return entry


def rates_frame(con: duckdb.DuckDBPyConnection, currency: str | None = None) -> pl.DataFrame:
    """The exchange rates (of ``currency``, or all): day, currency, rate, source, set_at;
    sorted by currency and day.

    >>> from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> _ = set_rate(con, "GBP", "1.27", date(2026, 11, 2))
    >>> rates_frame(con, "gbp").select("day", "currency", "rate").rows()
    [(datetime.date(2026, 11, 2), 'GBP', Decimal('1.2700000000'))]
    """
    frame: pl.DataFrame = con.sql(
        "SELECT day, currency, rate, source, set_at FROM fx_rates "
        "WHERE $c IS NULL OR currency = upper($c) ORDER BY currency, day",
        params={"c": currency}).pl()
    return frame
