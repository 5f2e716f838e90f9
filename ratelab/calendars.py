"""Work calendars: which time band (peak, offpeak, weekend) each local hour of a week falls in,
and special days (holidays) priced as one band all day.

Rate tables with banded rows are priced by their calendar (``rate_tables.calendar``); the rating
query reads ``calendar_hours`` and ``calendar_days`` (``sql/rate.sql``). See docs/rating.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time

import duckdb

__all__ = ["BANDS", "set_calendar", "set_calendar_day"]

#: The bands a work calendar gives an hour (a deck row's band may also be ``any``).
BANDS = ("peak", "offpeak", "weekend")


def set_calendar(
    con: duckdb.DuckDBPyConnection, name: str,
    hours: Sequence[tuple[int, time, time | None, str]],
) -> None:
    """Replace work calendar ``name``'s weekly hours: (weekday 1-7, start, end, band) rows.

    Every weekday must be covered from 00:00 to 24:00 without gaps or overlaps; ``end`` may be
    ``None`` for the end of the day. Calendar days (holidays) are kept.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> set_calendar(con, "flat", [(d, time(0), None, "offpeak") for d in range(1, 8)])
    >>> set_calendar(con, "broken", [(1, time(0), time(8), "peak")])
    Traceback (most recent call last):
    ...
    ValueError: weekday 1: the last span ends at 08:00, not at the end of the day (24:00)
    """
    by_day: dict[int, list[tuple[time, time | None, str]]] = {d: [] for d in range(1, 8)}
    for weekday, start, end, band in hours:
        if weekday not in by_day:
            raise ValueError(f"weekday must be 1 (Monday) to 7 (Sunday), got {weekday}")
        if band not in BANDS:
            raise ValueError(f"band must be one of {', '.join(BANDS)}, got {band!r}")
        by_day[weekday].append((start, end, band))
    for weekday, spans in by_day.items():
        spans.sort(key=lambda span: span[0])
        edge: time | None = time(0)
        for start, end, _ in spans:
            if edge is None or start != edge:
                raise ValueError(
                    f"weekday {weekday}: hours must run from 00:00 to 24:00 without gaps or "
                    f"overlaps; {start:%H:%M} does not follow {_hhmm(edge)}")
            edge = end
        if edge is not None:
            raise ValueError(f"weekday {weekday}: the last span ends at {_hhmm(edge)}, "
                             "not at the end of the day (24:00)")
    con.execute("DELETE FROM calendar_hours WHERE calendar = ?", [name])
    con.executemany(
        "INSERT INTO calendar_hours VALUES (?, ?, ?, coalesce(?, TIME '24:00:00'), ?)",
        [(name, d, start, end, band) for d, spans in by_day.items()
         for start, end, band in spans],
    )


def _hhmm(moment: time | None) -> str:
    return "24:00" if moment is None else f"{moment:%H:%M}"


def set_calendar_day(con: duckdb.DuckDBPyConnection, day: date, band: str, *,
                     calendar: str = "default", note: str = "") -> None:
    """Price the whole local ``day`` as ``band`` in ``calendar``, replacing what it had.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> set_calendar_day(con, date(2026, 12, 25), "weekend", note="Christmas")
    >>> con.sql("SELECT calendar, band, note FROM calendar_days").fetchall()
    [('default', 'weekend', 'Christmas')]
    """
    con.execute("DELETE FROM calendar_days WHERE calendar = ? AND day = ?", [calendar, day])
    con.execute("INSERT INTO calendar_days VALUES (?, ?, ?, ?)", [calendar, day, band, note])
