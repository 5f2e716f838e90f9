"""Rate tables in the warehouse: versioned rows, the rating index, and what is in force.

A deck import adds a version of a rate table. Rows are versioned by effective dates: a row is
in force on ``[effective_from, effective_to)`` and until the next version of its prefix and
band, whatever order the versions were imported in. A *full* deck (the default; what vendors
send) also closes every prefix it no longer lists, from the deck's newest effective date
(vendors keep the old dates on unchanged rows, so an earlier date would re-price the past).
Re-importing the identical file changes nothing.

Which tables price whom is :mod:`ratelab.assignments`; the time bands of banded rows come
from :mod:`ratelab.calendars`.

After every change the table's rating index is rebuilt (``rate_groups`` / ``rate_segments``, see
``ratelab.prefix``), inside the same transaction, so rating never sees a stale index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl

from ratelab.calendars import BANDS
from ratelab.db import one, scalar
from ratelab.decks import DeckRow, diff_rates
from ratelab.prefix import segments

__all__ = [
    "ImportSummary",
    "diff_deck",
    "ensure_table",
    "import_rows",
    "rebuild_index",
    "rows_in_force",
    "table_overview",
    "to_utc",
]


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


def diff_deck(con: duckdb.DuckDBPyConnection, name: str, new: Sequence[DeckRow], *,
              as_of: datetime | None = None, notice_days: int = 7) -> pl.DataFrame:
    """Classify each prefix of deck rows ``new`` against rate table ``name`` as in force at
    ``as_of`` (local to the table; default now): :func:`ratelab.decks.diff_rates` as a frame.

    >>> from ratelab.examples import example_connection
    >>> from decimal import Decimal
    >>> con = example_connection()      # vendor_x: prefix 44 from 2026-01-01
    >>> row = DeckRow(line=2, prefix="44", destination="UK", band="any",
    ...               first_rate=Decimal("0.02"), first_period=1, rate=Decimal("0.02"),
    ...               cycle=1, connect_fee=Decimal(0), effective_from=datetime(2026, 7, 1),
    ...               effective_to=None)
    >>> diff_deck(con, "vendor_x", [row], as_of=datetime(2026, 6, 1))["status"].to_list()
    ['increase']
    """
    tz_row = one(con, "SELECT time_zone FROM rate_tables WHERE name = ?", [name])
    if tz_row is None:
        raise ValueError(f"no rate table {name!r} to compare with")
    if as_of is None:  # now, on the rate table's own clock (its deck dates are local)
        as_of = datetime.now(ZoneInfo(tz_row[0])).replace(tzinfo=None)
    current = rows_in_force(con, name, to_utc(as_of, tz_row[0]))
    changes = diff_rates(_deck_rows(current), new, as_of=as_of, notice_days=notice_days)
    return pl.DataFrame(
        [c.__dict__ for c in changes],
        schema={"prefix": pl.String, "destination": pl.String, "band": pl.String,
                "status": pl.String, "old_rate": pl.Decimal(18, 6),
                "new_rate": pl.Decimal(18, 6), "change": pl.Decimal(18, 6),
                "effective_from": pl.Datetime("us"), "short_notice": pl.Boolean},
    )


def _deck_rows(frame: pl.DataFrame) -> list[DeckRow]:
    return [DeckRow(line=0, **row) for row in frame.iter_rows(named=True)]


# One row per rate table: what is in force at $now, what is scheduled, its imports and whom it
# prices now.
_OVERVIEW_SQL = """
WITH counts AS (
    SELECT table_name,
           count(*) FILTER (WHERE effective_from <= $now
                            AND (effective_to IS NULL OR effective_to > $now))
               AS in_force,
           count(*) FILTER (WHERE effective_from > $now) AS scheduled
    FROM rates GROUP BY ALL),
imports AS (
    SELECT table_name, count(*) AS imports, max(imported_at) AS last_import,
           arg_max(file, imported_at) AS last_file
    FROM deck_imports GROUP BY ALL),
parties AS (
    SELECT table_name,
           string_agg(DISTINCT party || CASE WHEN kind = 'account' THEN ''
                                             ELSE ' (' || kind || ')' END, ', '
                      ORDER BY party || CASE WHEN kind = 'account' THEN ''
                                             ELSE ' (' || kind || ')' END)
               AS assigned
    FROM assignments WHERE valid_to IS NULL OR valid_to > $now GROUP BY ALL)
SELECT t.name, t.side, t.currency, t.time_zone,
       coalesce(c.in_force, 0) AS in_force, coalesce(c.scheduled, 0) AS scheduled,
       i.imports, i.last_import, i.last_file, p.assigned
FROM rate_tables t
LEFT JOIN counts c ON c.table_name = t.name
LEFT JOIN imports i ON i.table_name = t.name
LEFT JOIN parties p ON p.table_name = t.name
ORDER BY t.side, t.name
"""


def table_overview(con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> pl.DataFrame:
    """The rate tables: side, currency, time zone, rows in force at ``at`` (naive UTC,
    default now) and scheduled after it, imports, the last file, and whom each prices.

    >>> from ratelab.examples import example_connection
    >>> con = example_connection()      # vendor_x: prefix 44 from 2026-01-01
    >>> table_overview(con, datetime(2026, 6, 1)).select("name", "in_force", "imports").rows()
    [('vendor_x', 1, 1)]
    """
    frame: pl.DataFrame = con.sql(_OVERVIEW_SQL, params={"now": at or _now()}).pl()
    return frame


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
