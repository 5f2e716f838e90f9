"""Rate tables in the warehouse: versioned rows, assignments, and the rating index.

A deck import adds a version of a rate table. Rows are versioned by effective dates: a row is
in force on ``[effective_from, effective_to)`` and until the next version of its prefix and
band, whatever order the versions were imported in. A *full* deck (the default; what vendors
send) also closes every prefix it no longer lists, from the deck's newest effective date
(vendors keep the old dates on unchanged rows, so an earlier date would re-price the past).
Re-importing the identical file changes nothing.

Assignments say which tables price whom, over time; see :func:`assign`.

After every change the table's rating index is rebuilt (``rate_groups`` / ``rate_segments``, see
``ratelab.prefix``), inside the same transaction, so rating never sees a stale index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl

from ratelab.db import one, scalar
from ratelab.decks import DeckRow
from ratelab.prefix import segments

__all__ = [
    "BANDS",
    "CUSTOMER_KINDS",
    "EPOCH",
    "HistoryError",
    "ImportSummary",
    "assign",
    "assignment_history",
    "ensure_table",
    "import_rows",
    "rebuild_index",
    "rows_in_force",
    "set_calendar",
    "to_utc",
]

BANDS = ("peak", "offpeak", "weekend")
#: "Since the beginning": the start of an assignment given no date.
EPOCH = datetime(1970, 1, 1)
#: VOS billing principle kinds, most specific first (the tie-break when charges are equal).
CUSTOMER_KINDS = ("phone_private", "account_private", "account", "period")


@dataclass(frozen=True)
class ImportSummary:
    """What one deck import changed."""

    table: str
    import_id: int
    rows: int
    replaced: int
    superseded: int
    closed: int
    segments: int
    unchanged: bool = False

    def __str__(self) -> str:
        if self.unchanged:
            return (f"{self.table}: this file is already import {self.import_id} "
                    "(same content); nothing changed")
        return (
            f"{self.table}: imported {self.rows} rows (import {self.import_id}); "
            f"{self.superseded} superseded, {self.closed} closed, {self.replaced} corrected; "
            f"index {self.segments} segments"
        )


def to_utc(local: datetime, time_zone: str) -> datetime:
    """A naive local time in ``time_zone`` as naive UTC (how the warehouse stores times).

    >>> to_utc(datetime(2026, 7, 1), "Europe/Madrid")
    datetime.datetime(2026, 6, 30, 22, 0)
    """
    zone = _zone(time_zone)
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {time_zone!r} (use an IANA name such as 'UTC')"
        ) from None


def ensure_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    side: str,
    *,
    currency: str | None = None,
    time_zone: str | None = None,
    calendar: str | None = None,
) -> tuple[str, str]:
    """Create rate table ``name`` if new (USD, UTC and the default calendar unless given);
    return its (side, time_zone).

    A table keeps its side, currency, time zone and calendar: asking an existing table for
    different ones is refused rather than silently ignored, since its stored dates and
    prices were read in them.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> ensure_table(con, "vendor_x", "vendor", time_zone="Europe/Madrid")
    ('vendor', 'Europe/Madrid')
    >>> ensure_table(con, "vendor_x", "vendor")
    ('vendor', 'Europe/Madrid')
    """
    if side not in ("customer", "vendor"):
        raise ValueError(f"side must be 'customer' or 'vendor', got {side!r}")
    if time_zone is not None:
        _zone(time_zone)
    row = one(con, "SELECT side, currency, time_zone, calendar FROM rate_tables WHERE name = ?",
              [name])
    if row is not None:
        if row[0] != side:
            raise ValueError(f"rate table {name!r} is a {row[0]} table, not a {side} table")
        for what, have, want in (("currency", row[1], currency), ("time zone", row[2], time_zone),
                                 ("calendar", row[3], calendar)):
            if want is not None and want != have:
                raise ValueError(
                    f"rate table {name!r} has {what} {have}, not {want}: its decks are read in "
                    f"{have}. Leave the {what} out, or import into a new table."
                )
        return row[0], row[2]
    if calendar is not None and not scalar(
            con, "SELECT count(*) FROM calendar_hours WHERE calendar = ?", [calendar]):
        raise ValueError(f"no work calendar {calendar!r}: define it with set_calendar first")
    time_zone = time_zone or "UTC"
    con.execute(
        "INSERT INTO rate_tables VALUES (?, ?, ?, ?, ?, ?)",
        [name, side, currency or "USD", time_zone, calendar or "default", _now()],
    )
    return side, time_zone


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


def import_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[DeckRow],
    *,
    file: str,
    sha256: str,
    mode: str = "full",
    on_stored: Callable[[], None] | None = None,
) -> ImportSummary:
    """Add validated deck rows as a new version of ``table``. Call inside a transaction.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> from decimal import Decimal
    >>> row = DeckRow(line=2, prefix="44", destination="UK", band="any",
    ...               first_rate=Decimal("0.01"), first_period=60, rate=Decimal("0.01"),
    ...               cycle=60, connect_fee=Decimal(0), effective_from=datetime(2026, 1, 1),
    ...               effective_to=None)
    >>> _ = ensure_table(con, "vendor_x", "vendor")
    >>> print(import_rows(con, "vendor_x", [row], file="x.csv", sha256="ab"))
    vendor_x: imported 1 rows (import 1); 0 superseded, 0 closed, 0 corrected; index 1 segments
    """
    if mode not in ("full", "update"):
        raise ValueError(f"mode must be 'full' or 'update', got {mode!r}")
    if not rows:
        raise ValueError("a deck with no rows cannot be imported")
    tz_row = one(con, "SELECT time_zone FROM rate_tables WHERE name = ?", [table])
    if tz_row is None:
        raise ValueError(f"no rate table {table!r}; create it with ensure_table first")
    time_zone = tz_row[0]
    last = one(con, """SELECT import_id, sha256, mode FROM deck_imports WHERE table_name = ?
                       ORDER BY import_id DESC LIMIT 1""", [table])
    if last is not None and last[1] == sha256 and last[2] == mode:
        # the same file again (a re-run demo or cron job): nothing to correct
        return ImportSummary(table, last[0], 0, 0, 0, 0, 0, unchanged=True)
    import_id = int(scalar(con, "SELECT coalesce(max(import_id), 0) + 1 FROM deck_imports"))
    new = _to_utc_rows(rows, time_zone)
    frame = pl.DataFrame(
        new,
        schema={
            "prefix": pl.String, "destination": pl.String, "band": pl.String,
            "first_rate": pl.Decimal(18, 6), "first_period": pl.Int32,
            "rate": pl.Decimal(18, 6), "cycle": pl.Int32, "connect_fee": pl.Decimal(18, 6),
            "effective_from": pl.Datetime("us"), "effective_to": pl.Datetime("us"),
        },
        orient="row",
    )
    con.register("deck_new", frame)
    try:
        # A corrected row is archived, never deleted: rated calls refer to it by rate_id.
        con.execute(
            """INSERT INTO rates_superseded BY NAME
               SELECT r.*, $now AS superseded_at FROM rates r JOIN deck_new n
                 ON r.prefix = n.prefix AND r.band = n.band
                AND r.effective_from = n.effective_from
               WHERE r.table_name = $t""", {"t": table, "now": _now()})
        replaced = _count(con, """
            DELETE FROM rates r USING deck_new n
            WHERE r.table_name = $t AND r.prefix = n.prefix AND r.band = n.band
              AND r.effective_from = n.effective_from""", table)
        closed = 0
        if mode == "full":
            # A full deck dated by its newest change: unchanged rows keep their old dates, so
            # the prefixes it no longer lists stop when its newest rows start, not earlier.
            closed = _count(con, """
                UPDATE rates r SET effective_to = d.deck_from
                FROM (SELECT max(effective_from) AS deck_from FROM deck_new) d
                WHERE r.table_name = $t AND r.effective_from < d.deck_from
                  AND (r.effective_to IS NULL OR r.effective_to > d.deck_from)
                  AND NOT EXISTS (SELECT 1 FROM deck_new n
                                  WHERE n.prefix = r.prefix AND n.band = r.band)""", table)
        con.execute(
            f"""INSERT INTO rates
               SELECT $t, prefix, destination, band, first_rate, first_period, rate, cycle,
                      connect_fee, effective_from, effective_to, $id,
                      ({_NEXT_RATE_ID}) + row_number() OVER () FROM deck_new""",
            {"t": table, "id": import_id},
        )
        # Each version stays in force until the next version of its prefix and band, in
        # whatever order the versions were imported.
        superseded = _count(con, """
            UPDATE rates r SET effective_to = n.next_from
            FROM (SELECT rowid AS rid, lead(effective_from) OVER (
                      PARTITION BY prefix, band ORDER BY effective_from) AS next_from
                  FROM rates WHERE table_name = $t) n
            WHERE r.rowid = n.rid AND n.next_from IS NOT NULL
              AND (r.effective_to IS NULL OR r.effective_to > n.next_from)""", table)
    finally:
        con.unregister("deck_new")
    con.execute(
        "INSERT INTO deck_imports VALUES (?, ?, ?, ?, ?, ?, ?)",
        [import_id, table, file, sha256, len(new), mode, _now()],
    )
    if on_stored is not None:
        on_stored()
    count = rebuild_index(con, table)
    return ImportSummary(table, import_id, len(new), replaced, superseded, closed, count)


# Rate ids are never reused: rated rows refer to them, also after a correction archived the row.
_NEXT_RATE_ID = """SELECT greatest((SELECT coalesce(max(rate_id), 0) FROM rates),
                                  (SELECT coalesce(max(rate_id), 0) FROM rates_superseded))"""


def _to_utc_rows(rows: Sequence[DeckRow], time_zone: str) -> list[tuple[Any, ...]]:
    """Deck rows as tuples with their effective dates in UTC."""
    return [
        (row.prefix, row.destination, row.band, row.first_rate, row.first_period, row.rate,
         row.cycle, row.connect_fee, to_utc(row.effective_from, time_zone),
         to_utc(row.effective_to, time_zone) if row.effective_to else None)
        for row in rows
    ]


def _count(con: duckdb.DuckDBPyConnection, sql: str, table: str) -> int:
    return int(scalar(con, sql, {"t": table}) or 0)


def rebuild_index(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rebuild ``table``'s rating index from its rows; return the number of segments.

    (Importing already rebuilds it; this is for repairs.)

    >>> from ratelab.examples import example_connection
    >>> con = example_connection()      # vendor_x: prefix 44 from 2026-01-01
    >>> rebuild_index(con, "vendor_x")
    1
    """
    old = con.execute("SELECT grp FROM rate_groups WHERE table_name = ?", [table]).fetchall()
    if old:
        con.execute(
            "DELETE FROM rate_segments WHERE grp IN (SELECT grp FROM rate_groups "
            "WHERE table_name = ?)", [table])
        con.execute("DELETE FROM rate_groups WHERE table_name = ?", [table])
    rows = con.execute(
        """SELECT rowid, prefix, band, effective_from, effective_to FROM rates
           WHERE table_name = ? AND (effective_to IS NULL OR effective_to > effective_from)""",
        [table],
    ).fetchall()
    if not rows:
        return 0
    bounds = sorted({r[3] for r in rows} | {r[4] for r in rows if r[4] is not None})
    bands = BANDS if any(r[2] != "any" for r in rows) else ("any",)
    next_grp = int(scalar(con, "SELECT coalesce(max(grp), 0) + 1 FROM rate_groups"))
    groups, seg_grp, seg_lo, seg_hi, seg_rid = [], [], [], [], []
    for i, epoch_from in enumerate(bounds):
        epoch_to = bounds[i + 1] if i + 1 < len(bounds) else None
        live = [r for r in rows if r[3] <= epoch_from and (r[4] is None or r[4] > epoch_from)]
        if not live:
            continue
        # Segments come from every prefix in force, priced or not for the band: a prefix
        # without a price for this band leaves a hole (no rate), never its parent's price.
        epoch_segments = list(segments({r[1] for r in live}))
        for band in bands:
            owner = _owners(live, band)
            if not owner:
                continue
            groups.append((next_grp, table, band, epoch_from, epoch_to))
            for seg in epoch_segments:
                if seg.prefix not in owner:
                    continue
                seg_grp.append(next_grp)
                seg_lo.append(seg.lo)
                seg_hi.append(seg.hi)
                seg_rid.append(owner[seg.prefix])
            next_grp += 1
    if groups:
        con.executemany("INSERT INTO rate_groups VALUES (?, ?, ?, ?, ?)", groups)
    seg_frame = pl.DataFrame(
        {"grp": seg_grp, "lo": seg_lo, "hi": seg_hi, "rid": seg_rid},
        schema={"grp": pl.Int32, "lo": pl.Int64, "hi": pl.Int64, "rid": pl.Int64},
    )
    con.register("seg_new", seg_frame)
    try:
        con.execute(
            """INSERT INTO rate_segments
               SELECT (SELECT coalesce(max(sid), 0) FROM rate_segments)
                          + row_number() OVER (ORDER BY s.grp, s.lo),
                      s.grp, s.lo, s.hi, r.prefix, r.destination,
                      CAST(r.first_rate * 1000000 AS BIGINT), r.first_period,
                      CAST(r.rate * 1000000 AS BIGINT), r.cycle,
                      CAST(r.connect_fee * 1000000 AS BIGINT), r.rate_id
               FROM seg_new s JOIN rates r ON r.rowid = s.rid
               ORDER BY s.grp, s.lo"""
        )
    finally:
        con.unregister("seg_new")
    return len(seg_grp)


def _owners(live: list[tuple[Any, ...]], band: str) -> dict[str, int]:
    """prefix -> rowid of the row that prices ``band``: the band's own row, else its 'any' row."""
    owner: dict[str, int] = {}
    exact: set[str] = set()
    for rid, prefix, row_band, *_ in live:
        if row_band == band:
            owner[prefix] = rid
            exact.add(prefix)
        elif row_band == "any" and prefix not in exact:
            owner[prefix] = rid
    return owner


def rows_in_force(con: duckdb.DuckDBPyConnection, table: str, at: datetime) -> pl.DataFrame:
    """The rows of ``table`` in force at ``at`` (naive UTC), one per prefix and band.

    >>> from ratelab.examples import example_connection
    >>> con = example_connection()      # vendor_x: prefix 44 from 2026-01-01
    >>> rows_in_force(con, "vendor_x", datetime(2026, 6, 1))["prefix"].to_list()
    ['44']
    >>> rows_in_force(con, "vendor_x", datetime(2025, 6, 1)).height
    0
    """
    rows: pl.DataFrame = con.sql(  # duckdb types .pl() as Any
        """SELECT prefix, destination, band, first_rate, first_period, rate, cycle, connect_fee,
                  effective_from, effective_to
           FROM rates
           WHERE table_name = $t AND effective_from <= $at
             AND (effective_to IS NULL OR effective_to > $at)
           ORDER BY prefix, band""",
        params={"t": table, "at": at},
    ).pl()
    return rows


class HistoryError(ValueError):
    """A re-assignment would change which table priced calls already made."""


def assign(
    con: duckdb.DuckDBPyConnection,
    table: str,
    party: str,
    side: str,
    *,
    kind: str = "account",
    phone: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    replace_history: bool = False,
    now: datetime | None = None,
) -> tuple[datetime, datetime | None]:
    """Record that ``table`` prices ``party`` on [valid_from, valid_to); return that interval.

    One table at a time per party, kind (and phone). Without ``valid_from`` the assignment
    applies from the beginning of time (1970-01-01) when the party has no such assignment yet,
    and from ``now`` when it replaces one, so calls already rated keep the table that priced
    them.

    History is kept, never deleted:

    * An assignment that starts now or later **closes** the one in force at its start (sets
      its ``valid_to``) and trims or splits any scheduled ones it overlaps.
    * An assignment that starts in the past, over an interval in which another table of the
      same kind priced calls already in the warehouse, would re-price them: it is refused
      with :class:`HistoryError` naming that interval and the number of calls, unless
      ``replace_history=True``. Whenever a row's already-begun part changes, the row as it
      was is moved to ``assignments_superseded`` (with the moment) and its remaining parts
      stay in force. :func:`assignment_history` lists both.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> _ = ensure_table(con, "std", "customer"); _ = ensure_table(con, "new", "customer")
    >>> assign(con, "std", "acme", "customer")
    (datetime.datetime(1970, 1, 1, 0, 0), None)
    >>> assign(con, "new", "acme", "customer", valid_from=datetime(2026, 1, 1),
    ...        now=datetime(2026, 6, 1))      # no calls yet: nothing is re-priced
    (datetime.datetime(2026, 1, 1, 0, 0), None)
    """
    row = one(con, "SELECT side FROM rate_tables WHERE name = ?", [table])
    if row is None:
        raise ValueError(f"no rate table {table!r}: import a deck into it first")
    if row[0] != side:
        raise ValueError(f"rate table {table!r} is a {row[0]} table; it cannot price a {side}")
    if kind not in CUSTOMER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CUSTOMER_KINDS)}, got {kind!r}")
    if side == "vendor" and kind != "account":
        raise ValueError("vendors have account rate tables only (kind='account')")
    if (kind == "phone_private") != (phone is not None):
        raise ValueError("phone= is required for kind='phone_private' and only for it")
    now = now or _now()
    key = {"p": party, "side": side, "kind": kind, "phone": phone}
    same = ("party = $p AND side = $side AND kind = $kind "
            "AND phone IS NOT DISTINCT FROM $phone")
    if valid_from is None:
        had = scalar(con, f"SELECT count(*) FROM assignments WHERE {same}", key)
        valid_from = now if had else EPOCH
    if valid_to is not None and valid_to <= valid_from:
        raise ValueError("valid_to must be after valid_from")
    con.execute(
        "INSERT INTO parties SELECT ?, ?, ? WHERE NOT EXISTS "
        "(SELECT 1 FROM parties WHERE name = ? AND side = ?)",
        [party, side, now, party, side],
    )
    span = {**key, "s": valid_from, "e": valid_to}
    end = "coalesce($e, TIMESTAMP 'infinity')"
    until = "coalesce(valid_to, TIMESTAMP 'infinity')"
    covered = scalar(
        con,
        f"""SELECT count(*) FROM assignments WHERE {same} AND table_name = $t
            AND valid_from <= $s AND {until} >= {end}""",
        {**span, "t": table},
    )
    if covered:
        return valid_from, valid_to  # already priced by this table over it: nothing to change
    # The rows whose past this would change: another table over [s, min(e, now)), with the
    # calls already made in that overlap (nothing is re-priced where there are none).
    past = con.execute(
        f"""SELECT a.table_name, a.valid_from, a.valid_to,
                   (SELECT count(*) FROM cdrs c
                    WHERE c.{side} = $p AND c.start_ts >= greatest(a.valid_from, $s)
                      AND c.start_ts < least(coalesce(a.valid_to, TIMESTAMP 'infinity'),
                                             {end}, $now)
                      AND ($phone IS NULL OR c.caller = $phone)) AS calls
            FROM assignments a
            WHERE {same} AND $s < $now AND valid_from < least({end}, $now)
              AND {until} > $s
            ORDER BY valid_from""",
        {**span, "now": now},
    ).fetchall()
    repriced = [row for row in past if row[3]]
    if repriced and not replace_history:
        name, start, stop, calls = repriced[0]
        shown = f"to {stop:%Y-%m-%d %H:%M}" if stop is not None else "(open)"
        raise HistoryError(
            f"{party} ({side}, {kind}) was priced by {name} from {start:%Y-%m-%d %H:%M} "
            f"{shown}; a new assignment from {valid_from:%Y-%m-%d %H:%M} would re-price "
            f"{calls} call(s) already made with it. Pass replace_history=True (ratelab "
            "assign --replace-history) to do so on purpose; the old interval is kept in the "
            "history.")
    overlap = f"{same} AND valid_from < {end} AND {until} > $s"
    # Rows whose already-begun part changes are archived as they were before being cut.
    con.execute(
        f"""INSERT INTO assignments_superseded
            SELECT table_name, party, side, kind, phone, valid_from, valid_to, assigned_at, $now
            FROM assignments
            WHERE {overlap} AND greatest(valid_from, $s) < $now""",
        {**span, "now": now},
    )
    for sql in (
        # an assignment that spans the whole new interval continues after it ...
        f"""INSERT INTO assignments
            SELECT table_name, party, side, kind, phone, $e, valid_to, assigned_at
            FROM assignments
            WHERE {same} AND $e IS NOT NULL AND valid_from < $s AND {until} > $e""",
        # ... and every overlapping one is cut back to the parts outside it (the one in force
        # at the start is closed there)
        f"""UPDATE assignments SET valid_to = $s
            WHERE {same} AND valid_from < $s AND {until} > $s""",
        f"""UPDATE assignments SET valid_from = $e
            WHERE {same} AND $e IS NOT NULL AND valid_from >= $s AND valid_from < $e
              AND {until} > $e""",
        # rows wholly inside the new interval: archived above if they had begun; a scheduled
        # one that never began is replaced before it priced anything
        f"DELETE FROM assignments WHERE {same} AND valid_from >= $s AND {until} <= {end}",
    ):
        # DuckDB refuses named parameters a statement does not use
        con.execute(sql, {k: v for k, v in span.items() if f"${k}" in sql})
    con.execute(
        "INSERT INTO assignments (table_name, party, side, kind, phone, valid_from, valid_to, "
        "assigned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [table, party, side, kind, phone, valid_from, valid_to, now],
    )
    return valid_from, valid_to


_HISTORY_SQL = """
SELECT table_name, kind, phone, valid_from, valid_to, assigned_at,
       CAST(NULL AS TIMESTAMP) AS superseded_at,
       CASE WHEN valid_from > $now THEN 'scheduled'
            WHEN valid_to IS NOT NULL AND valid_to <= $now THEN 'ended'
            ELSE 'in force' END AS status
FROM assignments WHERE party = $p AND side = $side
UNION ALL
SELECT table_name, kind, phone, valid_from, valid_to, assigned_at, superseded_at, 'superseded'
FROM assignments_superseded WHERE party = $p AND side = $side
ORDER BY kind, phone NULLS FIRST, valid_from, superseded_at NULLS LAST, assigned_at
"""


def assignment_history(con: duckdb.DuckDBPyConnection, party: str, side: str,
                       now: datetime | None = None) -> pl.DataFrame:
    """Every interval a rate table priced ``party`` (a customer or vendor, ``side``), with
    those replaced by a ``replace_history`` re-assignment.

    Columns: table_name, kind, phone, valid_from, valid_to (null: open), assigned_at,
    superseded_at (null unless replaced), status (``in force``, ``ended``, ``scheduled`` or
    ``superseded``). Sorted by kind, phone, valid_from.

    >>> import duckdb; from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> _ = ensure_table(con, "a", "vendor"); _ = ensure_table(con, "b", "vendor")
    >>> _ = assign(con, "a", "x", "vendor", now=datetime(2026, 1, 1))
    >>> _ = assign(con, "b", "x", "vendor", now=datetime(2026, 2, 1))
    >>> assignment_history(con, "x", "vendor", now=datetime(2026, 3, 1)).select(
    ...     "table_name", "valid_from", "valid_to", "status").rows()
    [('a', datetime.datetime(1970, 1, 1, 0, 0), datetime.datetime(2026, 2, 1, 0, 0), 'ended'),
     ('b', datetime.datetime(2026, 2, 1, 0, 0), None, 'in force')]
    """
    if side not in ("customer", "vendor"):
        raise ValueError(f"side must be customer or vendor, got {side!r}")
    frame: pl.DataFrame = con.sql(
        _HISTORY_SQL, params={"p": party, "side": side, "now": now or _now()}).pl()
    return frame


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
