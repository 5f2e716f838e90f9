"""Hourly aggregates of the rated calls (table ``watch_hourly``, migration 004), so a watch run
reads hours, never the history of calls.

Rating marks the hours it is about to change as stale (table ``watch_stale``, migration 006)
instead of aggregating them itself; the watch aggregates the stale hours it reads before its
detectors run. A full re-rate therefore costs the rating alone, and hours no run reads are
never aggregated in vain.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> with wh.connection() as con:
...     refresh_stale(con)
...     wh.sql("SELECT sum(calls) AS n FROM watch_hourly")["n"][0]
1
Decimal('20')
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import duckdb

from ratelab.db import one

__all__ = ["SHORT_CALL_MS", "hour_floor", "load_watch_sql", "mark_stale", "refresh_hourly",
           "refresh_stale"]

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
    """Whole hours covering [since, until). An open end reaches the first / last CDR, rated
    call or aggregated hour, whichever is further: aggregates of calls since deleted go too,
    and CDRs about to be rated are covered."""
    first = last = None
    if since is None or until is None:   # one pass over the three tables, not six queries
        first, last = one(con, """SELECT min(t), max(t)
                                  FROM (SELECT start_ts AS t FROM cdrs
                                        UNION ALL SELECT start_ts FROM rated_rows
                                        UNION ALL SELECT hour FROM watch_hourly)""") or (None, None)
    lo = hour_floor(since) if since is not None else None
    if since is None and first is not None:
        lo = hour_floor(first)
    hi = _hour_ceil(until) if until is not None else None
    if until is None and last is not None:
        hi = hour_floor(last) + HOUR
    if lo is None or hi is None or lo >= hi:
        return None
    return lo, hi


def refresh_hourly(con: duckdb.DuckDBPyConnection, since: datetime | None,
                   until: datetime | None) -> None:
    """Keep the hourly aggregates of the rated calls in [since, until) up to date: every hour
    that range touches is aggregated again from ``rated`` (money converted by the rule of
    ``rated_base``; whole hours, so re-rating part of an hour is right too). ``None`` is
    open-ended on that side. Runs in its own transaction. The watch calls
    :func:`refresh_stale` instead, for the hours rating marked.

    >>> from ratelab.db import scalar
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


def mark_stale(con: duckdb.DuckDBPyConnection, since: datetime | None,
               until: datetime | None) -> None:
    """Record that the hours [since, until) touch are about to change (``None``: open-ended),
    in a transaction of its own. ``Warehouse.rate`` calls it *before* rating, so a crash in
    between costs a needless refresh, never a stale hour taken for a fresh one.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> with wh.connection() as con:
    ...     mark_stale(con, datetime(2026, 11, 2, 9, 30), datetime(2026, 11, 2, 10, 5))
    ...     con.execute("SELECT lo, hi FROM watch_stale ORDER BY lo DESC LIMIT 1").fetchall()
    [(datetime.datetime(2026, 11, 2, 9, 0), datetime.datetime(2026, 11, 2, 11, 0))]
    """
    bounds = _bounds(con, since, until)
    if bounds is not None:
        con.execute("INSERT INTO watch_stale VALUES ($lo, $hi)",
                    {"lo": bounds[0], "hi": bounds[1]})


def refresh_stale(con: duckdb.DuckDBPyConnection, since: datetime | None = None) -> int:
    """Aggregate again the stale hours from ``since`` on (every stale hour when ``None``) and
    return how many ranges were aggregated; older stale hours stay listed. Runs inside the
    caller's transaction (the watch's run), so its detectors read what it wrote.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> with wh.connection() as con:
    ...     refresh_stale(con, since=datetime(2030, 1, 1)), refresh_stale(con)
    (0, 1)
    """
    stale = con.execute("SELECT lo, hi FROM watch_stale ORDER BY lo, hi").fetchall()
    merged: list[list[datetime]] = []
    for lo, hi in stale:   # overlapping marks (a 15-minute rating cycle) are one range
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    start = hour_floor(since) if since is not None else None
    kept, done = [], 0
    for lo, hi in merged:
        first = lo if start is None else max(lo, start)
        if first < hi:
            _refresh(con, first, hi)
            done += 1
        if first > lo:
            kept.append((lo, min(first, hi)))
    con.execute("DELETE FROM watch_stale")
    if kept:
        con.executemany("INSERT INTO watch_stale VALUES (?, ?)", kept)
    return done
