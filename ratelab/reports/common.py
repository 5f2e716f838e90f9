"""What every report shares: the period, the SQL files, the errors, party checks.

>>> period("2026-11-01", "2026-11-02")
(datetime.datetime(2026, 11, 1, 0, 0), datetime.datetime(2026, 11, 2, 0, 0))
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["MissingRateError", "ReportError", "check_choice", "check_keys", "check_party",
           "load_sql", "moment", "period", "require_rates"]

SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "reports"

When = datetime | date | str
#: One grouping key or several (a list), for a report's ``by=``.
Keys = str | list[str] | tuple[str, ...]


class ReportError(ValueError):
    """A report cannot run with these parameters; the message says what to change."""


class MissingRateError(ReportError):
    """Money in a currency needs converting on days with no exchange rate on or before them.

    ``missing`` maps each currency to its days (sorted). Reports refuse rather than add money
    of different currencies.
    """

    def __init__(self, base: str, missing: dict[str, list[date]]) -> None:
        self.base = base
        self.missing = missing
        parts = []
        for currency, days in missing.items():
            shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[:10])
            more = f" and {len(days) - 10} more days" if len(days) > 10 else ""
            parts.append(f"{currency} on {shown}{more}")
        first_currency, first_days = next(iter(missing.items()))
        super().__init__(
            f"no exchange rate to {base} for " + "; ".join(parts)
            + f" (no rate on or before those days). Amounts in different currencies are "
            f"never added: set one with `ratelab fx set {first_currency} RATE --date "
            f"{first_days[0]:%Y-%m-%d}` or import a file with `ratelab fx import FILE`.")


def moment(value: When, name: str = "date", zone: tzinfo = UTC) -> datetime:
    """The one reader of a period bound, for reports, widgets, the CLI's dates and report pages:
    a naive UTC datetime from a ``datetime``, a ``date`` (its midnight) or an ISO string
    (``2026-11-02``, ``2026-11-02T10:00``, ``2026-11-02 10:00:30``, ``...+01:00``).

    A value without an offset is wall time in ``zone`` (UTC unless a report page passes its
    ``tz``); one with an offset is converted. ``name`` names the value in the error.

    >>> moment("2026-11-02 10:00"), moment(date(2026, 11, 2))
    (datetime.datetime(2026, 11, 2, 10, 0), datetime.datetime(2026, 11, 2, 0, 0))
    >>> moment("2026-11-02T10:00+01:00")
    datetime.datetime(2026, 11, 2, 9, 0)
    >>> from zoneinfo import ZoneInfo
    >>> moment("2026-11-02", "start", ZoneInfo("America/New_York"))
    datetime.datetime(2026, 11, 2, 5, 0)
    >>> try:
    ...     moment("01/11/2026", "until")
    ... except ReportError as err:
    ...     print(err)
    until '01/11/2026' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if zone is UTC:  # the common case: already what the reports want
                return value
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, date):
        return moment(datetime(value.year, value.month, value.day), name, zone)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ReportError(f"{name} {value!r} is not a date: use YYYY-MM-DD or "
                              f"YYYY-MM-DDTHH:MM ({zone})") from None
        return moment(parsed, name, zone)
    raise ReportError(f"{name} must be a date, a datetime or an ISO string, got {value!r}")


def period(start: When, end: When) -> tuple[datetime, datetime]:
    """Validate a report period: naive UTC datetimes, ``start`` inclusive, ``end`` exclusive.

    >>> for bad in (("2026-11-02", "2026-11-01"), ("yesterday", "2026-11-01")):
    ...     try:
    ...         period(*bad)
    ...     except ReportError as err:
    ...         print(err)
    the period is empty: start 2026-11-02 00:00 is not before end 2026-11-01 00:00
    start 'yesterday' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)
    """
    begin, finish = moment(start, "start"), moment(end, "end")
    if begin >= finish:
        raise ReportError(f"the period is empty: start {begin:%Y-%m-%d %H:%M} is not before "
                          f"end {finish:%Y-%m-%d %H:%M}")
    return begin, finish


@cache
def load_sql(name: str) -> str:
    """The text of ``ratelab/sql/reports/NAME.sql``."""
    path = SQL_DIR / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise ReportError(f"no report query {name!r} in {SQL_DIR}") from None


def check_party(wh: Warehouse, side: str, name: str | None) -> None:
    """Raise ReportError when ``name`` is not a known customer / vendor (None passes).

    Known means: has CDRs or a rate assignment on that side.

    >>> from ratelab.examples import sample_warehouse
    >>> try:
    ...     check_party(sample_warehouse(cdrs=5), "customer", "acmee")
    ... except ReportError as err:
    ...     print(err)
    unknown customer 'acmee'; known: acme
    """
    if name is None:
        return
    if side not in ("customer", "vendor"):
        raise ReportError(f"side must be customer or vendor, got {side!r}")
    known = wh.sql(
        f"""SELECT DISTINCT {side} AS name FROM cdrs WHERE {side} IS NOT NULL
            UNION SELECT DISTINCT party FROM assignments WHERE side = $side
            ORDER BY name""", {"side": side})["name"].to_list()
    if name not in known:
        shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise ReportError(f"unknown {side} {name!r}; known: {shown or '(none yet)'}")


_MISSING_SQL = """
SELECT currency, list(DISTINCT day ORDER BY day) AS days FROM (
    SELECT revenue_currency AS currency, day FROM rated_base
    WHERE revenue_fx_missing AND start_ts >= $start AND start_ts < $end
      AND ($customer IS NULL OR customer = $customer) AND ($vendor IS NULL OR vendor = $vendor)
    UNION ALL
    SELECT cost_currency, day FROM rated_base
    WHERE cost_fx_missing AND start_ts >= $start AND start_ts < $end
      AND ($customer IS NULL OR customer = $customer) AND ($vendor IS NULL OR vendor = $vendor)
) GROUP BY currency ORDER BY currency
"""


def require_rates(wh: Warehouse, start: datetime, end: datetime, *,
                  customer: str | None = None, vendor: str | None = None) -> str:
    """Return the base currency, or raise :class:`MissingRateError` naming every currency and
    UTC day in ``[start, end)`` (of ``customer`` / ``vendor``) that has no exchange rate.

    >>> from ratelab.examples import sample_warehouse
    >>> require_rates(sample_warehouse(cdrs=5, rated=True), datetime(2026, 1, 1),
    ...               datetime(2027, 1, 1))
    'USD'
    """
    params = {"start": start, "end": end, "customer": customer, "vendor": vendor}
    frame = wh.sql(_MISSING_SQL, params)
    base = str(wh.sql("SELECT value FROM settings WHERE key = 'base_currency'")["value"][0])
    if frame.height:
        raise MissingRateError(base, {row[0]: list(row[1]) for row in frame.iter_rows()})
    return base


def check_keys(by: str | list[str] | tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    """``by`` as a list of distinct keys, each one of ``allowed`` (a single key is a list of one).

    >>> check_keys("vendor", ("vendor", "customer")), check_keys(["customer", "vendor"],
    ...                                                           ("vendor", "customer"))
    (['vendor'], ['customer', 'vendor'])
    >>> try:
    ...     check_keys([], ("vendor",))
    ... except ReportError as err:
    ...     print(err)
    by needs at least one of vendor
    """
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ReportError(f"by needs at least one of {', '.join(allowed)}")
    for key in keys:
        check_choice("by", key, allowed)
    if len(set(keys)) != len(keys):
        raise ReportError(f"by lists a key twice: {keys}")
    return keys


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` when it is one of ``allowed``, else raise ReportError listing them.

    >>> try:
    ...     check_choice("by", "country", ("vendor", "customer"))
    ... except ReportError as err:
    ...     print(err)
    by must be one of vendor, customer; got 'country'
    """
    if value not in allowed:
        raise ReportError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value
