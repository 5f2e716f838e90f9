"""Assignments: which rate tables price which customers and vendors, over time.

A customer may have several tables at once, one per kind (the VOS billing principle: period,
account, account private, phone private; the cheapest applicable charge wins); a vendor has one
account table. History is kept, never deleted: see :func:`assign` for how a new assignment
closes, trims or (on purpose only) rewrites older ones, and :func:`assignment_history` to read
it back.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from ratelab.db import one, scalar

__all__ = ["CUSTOMER_KINDS", "EPOCH", "HistoryError", "assign", "assignment_history",
           "party_side"]

#: "Since the beginning": the start of an assignment given no date.
EPOCH = datetime(1970, 1, 1)
#: VOS billing principle kinds, most specific first (the tie-break when charges are equal).
CUSTOMER_KINDS = ("phone_private", "account_private", "account", "period")


def party_side(customer: str | None, vendor: str | None) -> tuple[str, str]:
    """(side, party) of a call that names exactly one of ``customer`` and ``vendor``.

    >>> party_side(None, "carrier_x")
    ('vendor', 'carrier_x')
    >>> party_side("acme", "carrier_x")
    Traceback (most recent call last):
    ...
    ValueError: give exactly one of customer= or vendor=
    """
    if customer is not None and vendor is None:
        return "customer", customer
    if vendor is not None and customer is None:
        return "vendor", vendor
    raise ValueError("give exactly one of customer= or vendor=")


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
    >>> from ratelab.rates import ensure_table
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
    >>> from ratelab.rates import ensure_table
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
