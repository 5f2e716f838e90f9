"""What if a vendor's prices changed? Re-rate a period on a scratch copy and compare.

Two kinds of candidate:

* ``deck=`` a candidate deck for rate table ``table`` (``deck_side`` says which side that
  table prices, vendor by default): it replaces the table, as a full deck, for the whole
  period (the deck's own effective dates are ignored; a deck listing a prefix and band twice
  is refused), and the calls of every party the table prices are re-rated;
* ``change_pct=`` a percentage change to every rate (first and next rate; connect fees stay)
  of the rate tables priced for ``vendor`` in the period, each rounded half-up to 6 places,
  and that vendor's calls are re-rated.

How: an in-memory scratch DuckDB attaches the warehouse file READ_ONLY, the rows rating
needs are copied from it into the scratch database, the candidate is
applied with ratelab's own deck import and index code (``ratelab.rates.import_rows``; a
percentage change re-prices the rows and the index segments that name them) and the period
is re-rated with ratelab's rating query (``ratelab.rating.rate_cdrs``), all on the scratch
copy. The stored results cannot change: the file is never opened for writing. The period
must be rated first.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from ratelab.db import scalar
from ratelab.decks import DeckError, DeckRow, read_deck
from ratelab.money import MoneyLike, money_context, to_decimal
from ratelab.rates import import_rows
from ratelab.rating import rate_cdrs
from ratelab.reports.common import (
    ReportError,
    When,
    check_party,
    load_sql,
    period,
    require_rates,
)

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["change_factor", "repriced_sql", "what_if"]


#: The stored views the scratch database recreates over its own tables, in dependency order.
_VIEWS = ("rate_rows", "rated", "rated_base")

#: The stored warehouse's catalog name in the scratch connection (attached READ_ONLY).
STORED = "ratelab_stored"


@contextmanager
def _scratch(wh: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the warehouse file attached READ_ONLY as ``STORED``.

    Waits up to the warehouse's ``lock_timeout`` for a writer in another process.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{wh.memory_limit}'")
        con.execute("SET enable_progress_bar = false")  # as the warehouse's own connections
        path = str(wh.path).replace("'", "''")
        deadline = time.monotonic() + wh.lock_timeout
        while True:
            try:
                con.execute(f"ATTACH '{path}' AS {STORED} (READ_ONLY)")
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise ReportError(f"cannot read {wh.path}: {exc}") from exc
                time.sleep(0.1)
        yield con
    finally:
        con.close()


def _parts() -> dict[str, str]:
    parts = re.split(r"^-- name: (\w+)\n", load_sql("what_if"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> None:
    """Run each statement of ``sql`` with the parameters it names (DuckDB refuses others)."""
    for text in sql.split(";\n"):
        statement = re.sub(r"--[^\n]*", "", text).strip()   # comments name parameters too
        if not statement:
            continue
        used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", statement)}
        con.execute(statement, used)


def change_factor(change_pct: MoneyLike | float) -> Decimal:
    """``1 + change_pct / 100``, exactly: the one reading of a percentage change, for
    :func:`what_if` and the rate simulator. A float is read as the decimal it prints as.

    >>> change_factor("3.3333"), change_factor(-5), change_factor(2.5)
    (Decimal('1.033333'), Decimal('0.95'), Decimal('1.025'))
    >>> try:
    ...     change_factor("0.0000001")
    ... except ReportError as err:
    ...     print(err)
    change_pct 1E-7 has more than 6 decimal places
    """
    raw = str(change_pct) if isinstance(change_pct, float) else change_pct
    try:
        pct = to_decimal(raw)
    except (TypeError, ValueError) as err:
        raise ReportError(f"change_pct: {err}") from None
    if pct < -100:
        raise ReportError(f"change_pct {pct} would make rates negative (at least -100)")
    # exponent is typed int | str (a str only for NaN/infinity, which to_decimal rejected).
    if pct.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ReportError(f"change_pct {pct} has more than 6 decimal places")
    with money_context():
        return 1 + pct / 100


def _local(moment: datetime, time_zone: str) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


def _candidate(deck: str | Path, start: datetime, time_zone: str) -> list[DeckRow]:
    """The candidate deck's rows, all in force from ``start`` (deck-local) on."""
    local = _local(start, time_zone)
    try:
        rows = read_deck(deck, effective_from=local)
    except DeckError as err:
        raise ReportError(str(err)) from err
    except OSError as err:
        raise ReportError(f"cannot read candidate deck {deck}: {err.strerror}") from None
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.prefix, row.band)
        if key in seen:
            raise ReportError(f"{deck}:{row.line}: prefix {row.prefix} (band {row.band}) is "
                              f"also on line {seen[key]}; a what-if deck lists each once")
        seen[key] = row.line
    return [dataclasses.replace(r, effective_from=local, effective_to=None) for r in rows]


def repriced_sql(rate: str) -> str:
    """The one re-pricing rule, as a SQL expression: the DECIMAL(18, 6) rate ``rate`` (a
    column) times the factor bound as ``$factor`` (:func:`change_factor`, passed as its
    string), rounded half up to 6 places (a rate table holds 6). :func:`what_if` re-prices the
    scratch rate tables with it and the rate simulator shows the new vendor rates with it.

    DECIMAL times DECIMAL is exact, and DuckDB's ROUND on a DECIMAL rounds half away from zero,
    which is half up for rates (never negative). The factor has at most 8 places (a percentage
    with 6), so the product fits DECIMAL(38, 14).

    >>> import duckdb
    >>> duckdb.sql(f"SELECT {repriced_sql('r')} AS new FROM (SELECT 0.008::DECIMAL(18, 6) AS r)",
    ...            params={"factor": str(change_factor("0.00625"))}).fetchall()
    [(Decimal('0.008001'),)]
    """
    return f"CAST(round({rate} * CAST($factor AS DECIMAL(20, 8)), 6) AS DECIMAL(18, 6))"


def _reprice(con: duckdb.DuckDBPyConnection, factor: Decimal,
             tables: list[str] | None = None) -> None:
    """Multiply first and next rates of the scratch ``rates`` (of ``tables``; all when None) by
    ``factor`` with :func:`repriced_sql` (half up, 6 places)."""
    where = "" if tables is None else "WHERE list_contains($tables::VARCHAR[], table_name)"
    params: dict[str, Any] = {"factor": str(factor)}
    if tables is not None:
        params["tables"] = tables
    con.execute(f"""UPDATE rates SET first_rate = {repriced_sql("first_rate")},
                                     rate = {repriced_sql("rate")} {where}""", params)


def _reprice_index(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Give the scratch index segments of ``tables`` the terms of the rate rows they name.

    Prices changed, prefixes and dates did not: the segments stay as they are and take the new
    terms by ``rate_id``, as ``rebuild_index`` would set them, without rebuilding the index.
    """
    con.execute("""UPDATE rate_segments s
                   SET first_rate_u = CAST(r.first_rate * 1000000 AS BIGINT),
                       rate_u = CAST(r.rate * 1000000 AS BIGINT)
                   FROM rates r
                   WHERE r.rate_id = s.rate_id
                     AND list_contains($tables::VARCHAR[], r.table_name)""",
                {"tables": tables})


def what_if(
    wh: Warehouse,
    start: When,
    end: When,
    *,
    deck: str | Path | None = None,
    deck_side: str = "vendor",
    table: str | None = None,
    vendor: str | None = None,
    change_pct: MoneyLike | float | None = None,
) -> pl.DataFrame:
    """Per destination, the period's stored figures against a re-rating with a candidate.

    Returns destination, revenue, cost_before, cost_after, profit_before, profit_after,
    margin_before, margin_after (Float64, NULL without revenue), profit_change, then
    revenue_after (differs from revenue only for a customer-side deck), calls,
    unpriced_after (calls that had rates and lost one: the candidate deck lacks their
    prefix; their missing charge counts 0) and currency (every amount is in the warehouse's
    base currency, converted as ``rated_base`` converts). Sorted by destination. See the
    module docstring.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> frame = what_if(wh, "2026-11-02", "2026-11-03", vendor="carrier_x", change_pct=10)
    >>> frame["destination"].to_list()
    ['USA', 'United Kingdom', 'United Kingdom - Mobile']
    >>> bool((frame["cost_after"] > frame["cost_before"]).all())
    True
    """
    begin, finish = period(start, end)
    if (deck is None) == (change_pct is None):
        raise ReportError("give either deck= (a candidate deck for table=) or change_pct= "
                          "(a percentage change to vendor='s rates)")
    if deck is not None and table is None:
        raise ReportError("deck= needs table=: the rate table the candidate deck would replace")
    if deck_side not in ("customer", "vendor"):
        raise ReportError(f"deck_side must be customer or vendor, got {deck_side!r}")
    if change_pct is not None and vendor is None:
        raise ReportError("change_pct= needs vendor=: whose rates change")
    check_party(wh, "vendor", vendor)
    factor = None if change_pct is None else change_factor(change_pct)
    require_rates(wh, begin, finish)  # amounts are compared in the base currency

    with _scratch(wh) as con:
        con.execute(f"USE {STORED}")       # the checks read the stored warehouse
        # a CDR has at most one rated row, with its start_ts: the difference of the counts is
        # the unrated calls (an anti-join over the period took 1.5 s at 10M CDRs)
        unrated = scalar(con, """SELECT (SELECT count(*) FROM cdrs
                                         WHERE start_ts >= $s AND start_ts < $e)
                                      - (SELECT count(*) FROM rated_rows
                                         WHERE start_ts >= $s AND start_ts < $e)""",
                         {"s": begin, "e": finish})
        if unrated:
            raise ReportError(f"{unrated} call(s) in the period are not rated yet: rate them "
                              "first (`ratelab rate` or Warehouse.rate), then compare")
        if deck is not None:
            assert table is not None  # deck= needs table= (checked above)
            tables = dict(con.execute("SELECT name, side FROM rate_tables").fetchall())
            if tables.get(table) != deck_side:
                known = ", ".join(sorted(n for n, s in tables.items() if s == deck_side))
                raise ReportError(f"no {deck_side} rate table {table!r}; {deck_side} tables: "
                                  f"{known or '(none yet)'}")
            time_zone = scalar(con, "SELECT time_zone FROM rate_tables WHERE name = ?", [table])
            rows = _candidate(deck, begin, time_zone)
            changed = [table]
            parties = [p for (p,) in con.execute(
                "SELECT DISTINCT party FROM assignments WHERE table_name = ? AND side = ?",
                [table, deck_side]).fetchall()]
            if vendor is not None and deck_side == "vendor":
                parties = [p for p in parties if p == vendor]
            side = deck_side
        else:
            changed = [t for (t,) in con.execute(
                """SELECT DISTINCT table_name FROM assignments
                   WHERE side = 'vendor' AND party = $v AND valid_from < $e
                     AND (valid_to IS NULL OR valid_to > $s) ORDER BY table_name""",
                {"v": vendor, "s": begin, "e": finish}).fetchall()]
            parties, side = [vendor], "vendor"
        views = [scalar(con, """SELECT sql FROM duckdb_views()
                                WHERE database_name = $db AND view_name = $v""",
                        {"db": STORED, "v": name}) for name in _VIEWS]
        con.execute("USE memory")         # from here on, unqualified names are scratch tables
        parts = _parts()
        assert side in ("customer", "vendor")   # a column name, checked above
        _run(con, parts["copy"].replace("{db}", STORED).replace("{party}", side),
             {"tables": changed, "parties": parties, "start": begin, "end": finish})
        for view in views:                # the stored views over the scratch tables
            con.execute(view)
        if factor is not None:
            _reprice(con, factor, changed)
            _reprice_index(con, changed)
        else:
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM rates WHERE table_name = ? AND effective_from >= ?",
                        [table, begin])
            con.execute("""UPDATE rates SET effective_to = $s WHERE table_name = $t
                           AND (effective_to IS NULL OR effective_to > $s)""",
                        {"t": table, "s": begin})
            assert table is not None  # no change_pct= means deck= and so table= were given
            import_rows(con, table, rows, file=str(deck), sha256="what-if")
            con.execute("COMMIT")
        rate_cdrs(con, since=begin, until=finish)
        result: pl.DataFrame = con.sql(parts["result"]).pl()  # duckdb types .pl() as Any
        return result
