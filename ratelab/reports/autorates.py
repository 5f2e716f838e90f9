"""Customer rates made from a vendor's: the vendor rate in force plus a margin, as a deck.

For every prefix (and band) of a vendor rate table in force at a moment, the customer rate is
:func:`ratelab.finance.auto_create_rate` of the vendor rate with the wanted ``margin`` (a
fraction of the *price*: ``"0.25"`` for 25%), rounded to ``places`` decimal places. The first
rate and the connect fee are marked up the same way, so every call earns at least the margin.
The billing increment, destination and band are the vendor's.

The customer deck is in the vendor table's currency unless ``currency`` names another: then
each vendor amount is first converted at the exchange rates in force on ``at``'s UTC day
(:func:`ratelab.fx.cross_convert`: through the base currency, rounded up to 6 places, so the
margin is never eaten by the conversion); a missing rate is refused with
:class:`~ratelab.reports.MissingRateError`. ``vendor_rate`` stays in the vendor's currency
(``vendor_currency``); the customer columns are in ``currency``.

With ``out`` the result is also written as a canonical deck CSV (``prefix, destination, rate,
increment, connect_fee, effective_from``, plus ``band`` and ``first_rate`` columns only when
the vendor table needs them) that ``ratelab deck import`` / ``Warehouse.import_deck`` reads
back unchanged. Its effective dates are local to the vendor table's time zone (as in the
vendor's own deck): import it into a customer table with the same time zone.

>>> from ratelab.examples import sample_warehouse
>>> frame = auto_create_rates(sample_warehouse(cdrs=1), "vend_x", "0.25", at="2026-11-01")
>>> frame.select("prefix", "vendor_rate", "customer_rate").rows()  # doctest: +NORMALIZE_WHITESPACE
[('1', Decimal('0.008000'), Decimal('0.010700')),
 ('44', Decimal('0.015000'), Decimal('0.020000')),
 ('447', Decimal('0.024000'), Decimal('0.032000'))]
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

from ratelab.db import one
from ratelab.decks.cells import format_moment
from ratelab.finance import auto_create_rate
from ratelab.fx import base_currency, check_currency, cross_convert, rate_on
from ratelab.money import MoneyLike, Rounding
from ratelab.rates import rows_in_force
from ratelab.reports.common import MissingRateError, ReportError
from ratelab.reports.common import moment as parse_moment

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["ROUNDINGS", "auto_create_rates"]

#: Accepted ``rounding`` names and the :func:`ratelab.money.quantize` mode each means.
ROUNDINGS: dict[str, Rounding] = {
    "ceil": "up", "up": "up",          # never below the target margin (the default)
    "floor": "down", "down": "down",
    "half_up": "half_up", "half_even": "half_even",
}

_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "prefix": pl.String, "destination": pl.String, "vendor_rate": pl.Decimal(18, 6),
    "customer_rate": pl.Decimal(18, 6), "increment": pl.String,
    "effective_from": pl.Datetime("us"), "band": pl.String,
    "first_rate": pl.Decimal(18, 6), "connect_fee": pl.Decimal(18, 6),
    "vendor_currency": pl.String, "currency": pl.String,
}


def auto_create_rates(
    wh: Warehouse,
    vendor_table: str,
    margin: MoneyLike,
    *,
    at: datetime | date | str | None = None,
    rounding: str = "ceil",
    places: int = 4,
    out: str | Path | None = None,
    effective_from: datetime | date | str | None = None,
    currency: str | None = None,
) -> pl.DataFrame:
    """Customer rates earning ``margin`` over ``vendor_table``'s rates in force at ``at``.

    Returns prefix, destination, vendor_rate, customer_rate, increment ("first/cycle"),
    effective_from (the deck date: the vendor row's own, local to the vendor table, unless
    ``effective_from`` is given), band, first_rate and connect_fee (the customer's), sorted
    by prefix and band, then vendor_currency and currency (the customer columns' currency:
    ``currency``, default the vendor table's). ``at`` is naive UTC (default now). ``rounding``
    is ceil (default), floor, half_up or half_even, to ``places`` places. With ``out``, also
    writes the deck CSV.

    >>> from ratelab.examples import sample_warehouse
    >>> try:
    ...     auto_create_rates(sample_warehouse(cdrs=1), "cust_std", "0.2")
    ... except ReportError as err:
    ...     print(err)
    'cust_std' is a customer rate table; vendor tables: vend_x
    """
    if rounding not in ROUNDINGS:
        raise ReportError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    moment = datetime.now(UTC).replace(tzinfo=None) if at is None else parse_moment(at, "at")
    deck_from = None if effective_from is None else parse_moment(effective_from, "effective_from")
    with wh.connection() as con:
        row = one(con, "SELECT side, time_zone, currency FROM rate_tables WHERE name = ?",
                  [vendor_table])
        if row is None or row[0] != "vendor":
            known = [r[0] for r in con.execute(
                "SELECT name FROM rate_tables WHERE side = 'vendor' ORDER BY name").fetchall()]
            what = (f"no rate table {vendor_table!r}" if row is None
                    else f"{vendor_table!r} is a customer rate table")
            raise ReportError(f"{what}; vendor tables: {', '.join(known) or '(none yet)'}")
        zone, vendor_currency = ZoneInfo(row[1]), str(row[2])
        try:
            target = vendor_currency if currency is None else check_currency(currency)
        except ValueError as err:
            raise ReportError(str(err)) from None
        factors = (None if target == vendor_currency
                   else _factors(con, vendor_currency, target, moment.date()))
        rows = rows_in_force(con, vendor_table, moment)
    priced: dict[Decimal, Decimal] = {}

    def price(cost: Decimal) -> Decimal:
        # Decks repeat amounts (connect fees of 0, first rates equal to rates, shared prices):
        # each distinct amount is priced once.
        found = priced.get(cost)
        if found is None:
            local = cost if factors is None else cross_convert(cost, *factors)
            found = priced[cost] = _price(local, margin, places, rounding)
        return found

    records = []
    for r in rows.iter_rows(named=True):
        local = r["effective_from"].replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        records.append({
            "prefix": r["prefix"], "destination": r["destination"],
            "vendor_rate": r["rate"],
            "customer_rate": price(r["rate"]),
            "increment": f"{r['first_period']}/{r['cycle']}",
            "effective_from": deck_from or local, "band": r["band"],
            "first_rate": price(r["first_rate"]),
            "connect_fee": price(r["connect_fee"]),
            "vendor_currency": vendor_currency, "currency": target,
        })
    frame = pl.DataFrame(records, schema=_SCHEMA, orient="row").sort("prefix", "band")
    if out is not None:
        if not records:
            raise ReportError(f"rate table {vendor_table!r} has no rates in force at "
                              f"{format_moment(moment)}: no deck written")
        write_deck(records, out)
    return frame


def _factors(con: Any, source: str, target: str, day: date) -> tuple[Decimal, Decimal]:
    """The base-currency worth of one unit of ``source`` and of ``target`` on ``day``."""
    rates = {code: rate_on(con, code, day) for code in (source, target)}
    missing = {code: [day] for code, rate in rates.items() if rate is None}
    if missing:
        raise MissingRateError(base_currency(con), missing)
    return rates[source] or Decimal(1), rates[target] or Decimal(1)


def _price(cost: Decimal, margin: MoneyLike, places: int, rounding: str) -> Decimal:
    try:
        return auto_create_rate(cost, margin=margin, places=places, rounding=ROUNDINGS[rounding])
    except (TypeError, ValueError) as err:
        raise ReportError(f"cannot apply margin {margin!r}: {err}") from None


def write_deck(records: list[dict[str, Any]], out: str | Path) -> Path:
    """Write customer rate records (as made by :func:`auto_create_rates`) as a deck CSV.

    >>> import tempfile, os
    >>> path = write_deck([{"prefix": "44", "destination": "UK, mobile", "band": "any",
    ...                     "customer_rate": Decimal("0.02"), "first_rate": Decimal("0.02"),
    ...                     "increment": "60/60", "connect_fee": Decimal(0),
    ...                     "effective_from": datetime(2026, 1, 1)}],
    ...                   os.path.join(tempfile.mkdtemp(), "deck.csv"))
    >>> print(path.read_text(), end="")
    prefix,destination,rate,increment,connect_fee,effective_from
    44,"UK, mobile",0.02,60/60,0,2026-01-01
    """
    banded = any(r["band"] != "any" for r in records)
    first = any(r["first_rate"] != r["customer_rate"] for r in records)
    header = ["prefix", "destination", *(["band"] if banded else []),
              *(["first_rate"] if first else []), "rate", "increment", "connect_fee",
              "effective_from"]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for r in sorted(records, key=lambda r: (r["prefix"], r["band"])):
            cells = {**r, "rate": r["customer_rate"],
                     "effective_from": format_moment(r["effective_from"])}
            writer.writerow([str(cells[name]) for name in header])
    return path
