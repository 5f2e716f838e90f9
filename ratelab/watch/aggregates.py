"""Hourly aggregates of the rated calls (table ``watch_hourly``, migration 004), kept up to date
at rating time so a watch run reads hours, never the history of calls.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> wh.sql("SELECT sum(calls) AS n FROM watch_hourly")["n"][0]
Decimal('20')
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import duckdb

from ratelab.db import scalar

__all__ = ["SHORT_CALL_MS", "hour_floor", "load_watch_sql", "refresh_hourly"]

SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "watch"

#: An answered call shorter than this (10 s) is a short call; it is fixed in the aggregates.
SHORT_CALL_MS = 10_000

HOUR = timedelta(hours=1)


@cache
def load_watch_sql(name: str) -> str:
    """The text of ``ratelab/sql/watch/NAME.sql``.

    >>> "watch_hourly" in load_watch_sql("traffic_spike")
    False
    >>> "watch_window" in load_watch_sql("traffic_spike")
    True
    """
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def hour_floor(moment: datetime) -> datetime:
    """The start of the hour ``moment`` is in.

    >>> hour_floor(datetime(2026, 11, 2, 3, 59, 59))
    datetime.datetime(2026, 11, 2, 3, 0)
    """
    return moment.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def _bounds(con: duckdb.DuckDBPyConnection, since: datetime | None,
            until: datetime | None) -> tuple[datetime, datetime] | None:
    """Whole hours covering [since, until). An open end reaches the first / last rated call or
    aggregated hour, whichever is further: aggregates of calls since deleted go too."""
    if since is not None:
        lo: datetime | None = hour_floor(since)
    else:
        found = [x for x in (scalar(con, "SELECT min(start_ts) FROM rated"),
                             scalar(con, "SELECT min(hour) FROM watch_hourly")) if x is not None]
        lo = hour_floor(min(found)) if found else None
    if until is not None:
        hi: datetime | None = _hour_ceil(until)
    else:
        found = [x for x in (scalar(con, "SELECT max(start_ts) FROM rated"),
                             scalar(con, "SELECT max(hour) FROM watch_hourly")) if x is not None]
        hi = hour_floor(max(found)) + HOUR if found else None
    if lo is None or hi is None or lo >= hi:
        return None
    return lo, hi


def refresh_hourly(con: duckdb.DuckDBPyConnection, since: datetime | None,
                   until: datetime | None) -> None:
    """Keep the hourly aggregates of the rated calls in [since, until) up to date: every hour
    that range touches is aggregated again from ``rated`` (money converted by the rule of
    ``rated_base``; whole hours, so re-rating part of an hour is right too). ``None`` is
    open-ended on that side. Runs in its own transaction;
    ``Warehouse.rate`` calls it after rating, on the same connection.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> with wh.connection() as con:
    ...     _ = con.execute("DELETE FROM watch_hourly")
    ...     refresh_hourly(con, datetime(2026, 11, 2), None)
    ...     scalar(con, "SELECT sum(calls) FROM watch_hourly")
    20
    """
    con.execute("BEGIN TRANSACTION")
    try:
        _refresh(con, since, until)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _refresh(con: duckdb.DuckDBPyConnection, since: datetime | None,
             until: datetime | None) -> None:
    """:func:`refresh_hourly` inside the caller's transaction."""
    bounds = _bounds(con, since, until)
    if bounds is None:
        return
    lo, hi = bounds
    con.execute("DELETE FROM watch_hourly WHERE hour >= $lo AND hour < $hi",
                {"lo": lo, "hi": hi})
    con.execute(f"INSERT INTO watch_hourly BY NAME {load_watch_sql('refresh_hourly')}",
                {"lo": lo, "hi": hi})


def refresh_days(con: duckdb.DuckDBPyConnection, days: list[date]) -> None:
    """Aggregate the given UTC days again (inside the caller's transaction)."""
    for day in days:
        start = datetime(day.year, day.month, day.day)
        _refresh(con, start, start + timedelta(days=1))
