"""The rating engine: every CDR priced on both sides, vectorized in DuckDB.

The query is assembled from ``sql/rate/``: ``calls.sql`` and ``bands.sql`` (each CDR with its
rate tables' index groups; ``no_bands.sql`` instead when no table has time bands), a lookup
(``match_merged.sql``: one ASOF join against the customer and vendor segments merged per pair
of groups; or ``match_sides.sql``: one ASOF join per side, when the merged segments would
outgrow the calls) and ``charge.sql`` (cheapest-of and the narrow row).
This module selects the CDRs to (re-)rate, runs the query in chunks of time (so a progress bar
moves and memory stays bounded), and replaces the rated rows of exactly the CDRs it selected,
in one transaction. Nothing here loops over CDRs in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib.resources import files

import duckdb
import polars as pl

from ratelab.db import one, scalar
from ratelab.fx import base_currency

__all__ = ["STATUSES", "Lookup", "RateSummary", "cdr_filter", "rate_cdrs", "rated_calls",
           "rating_query"]


class Lookup(StrEnum):
    """How the rating query finds each CDR's rate rows (both give the same rows)."""

    #: One ASOF join against both sides' segments merged per pair of index groups.
    MERGED = "merged"
    #: One ASOF join per side, each partitioned by index group.
    SIDES = "sides"


@cache
def _rate_sql(name: str) -> str:
    return files("ratelab").joinpath(f"sql/rate/{name}.sql").read_text()


def _statements(name: str) -> list[str]:
    """The statements of ``sql/rate/NAME.sql``: each ends with ``;`` at the end of a line."""
    return [part for part in re.split(r";[ \t]*$", _rate_sql(name), flags=re.M) if part.strip()]


_PARTITION = "g.pair = m.pair AND "


@cache
def rating_query(lookup: Lookup, *, several: bool = True, partitioned: bool = True,
                 banded: bool = True) -> str:
    """The rating query's text for ``lookup``; ``{where}`` selects the CDRs.

    ``several=False`` drops the cheapest-of branch (no party has several tables);
    ``partitioned=False`` drops the pair partition of the merged lookup (the run has one pair);
    ``banded=False`` drops the time-band joins (no assigned table has bands).

    >>> sql = rating_query(Lookup.MERGED, several=False, partitioned=False, banded=False)
    >>> "merged_segments" in sql, "arg_min" in sql, "ON g.pair = m.pair" in sql
    (True, False, False)
    >>> "calendar_hours" in sql, "calendar_hours" in rating_query(Lookup.SIDES)
    (False, True)
    """
    match = _rate_sql("match_merged" if lookup is Lookup.MERGED else "match_sides")
    if not partitioned:
        assert lookup is Lookup.MERGED and _PARTITION in match
        match = match.replace(_PARTITION, "")
    charge = _rate_sql("charge")
    if not several:
        charge = re.sub(r"\n *-- multi: begin.*?-- multi: end\n", "\n", charge, flags=re.S)
    return "\n".join((_rate_sql("calls"), _rate_sql("bands" if banded else "no_bands"), match,
                      charge))


#: The names of the status codes stored in ``rated_rows.status`` (the view ``rated`` shows the
#: names; migration 005).
STATUSES = ("ok", "no_customer_rate", "no_vendor_rate", "no_rates", "bad_number")

#: CDRs per chunk: big enough that per-query overhead vanishes, small enough to bound memory.
CHUNK_ROWS = 4_000_000

#: The merged lookup is used while its segments number at most this share of the CDRs rated:
#: building a merged segment costs about 2.5 times what the second ASOF join costs per CDR
#: (docs/performance.md), so past about 0.4 the per-side lookup is cheaper.
MERGED_SHARE = 0.4

# The assignments as the query needs them: the side as a flag, whether the party has several
# tables (only those CDRs pay for the cheapest-of aggregation), and the table's bands.
_PLAN = """
CREATE OR REPLACE TEMP TABLE plan AS
WITH meta AS (
    SELECT t.name, t.time_zone, t.calendar,
           coalesce(bool_or(g.band <> 'any'), false) AS banded
    FROM rate_tables t LEFT JOIN rate_groups g ON g.table_name = t.name
    GROUP BY ALL
)
SELECT a.table_name, a.party, a.side = 'customer' AS is_customer,
       CASE a.kind WHEN 'phone_private' THEN 0 WHEN 'account_private' THEN 1
                   WHEN 'account' THEN 2 ELSE 3 END AS kind_rank,
       count(*) OVER (PARTITION BY a.side, a.party) > 1 AS multi,
       a.phone, a.valid_from, a.valid_to, m.banded, m.time_zone, m.calendar
FROM assignments a JOIN meta m ON m.name = a.table_name
"""

# The assignments with their index groups where the group depends on time alone (tables without
# bands: one row per assignment and epoch, over the part of each the other covers), so most CDRs
# find their group in the assignment join. A banded table's group depends on the call's local
# time: its rows keep grp NULL and the query finds the band, then the group.
_PLAN_GROUPS = """
CREATE OR REPLACE TEMP TABLE plan_groups AS
SELECT p.party, p.is_customer, p.phone, p.kind_rank, p.multi, false AS banded,
       greatest(p.valid_from, g.epoch_from) AS valid_from,
       CASE WHEN p.valid_to IS NULL THEN g.epoch_to WHEN g.epoch_to IS NULL THEN p.valid_to
            ELSE least(p.valid_to, g.epoch_to) END AS valid_to,
       g.grp, NULL AS table_name, NULL AS time_zone, NULL AS calendar
FROM plan p JOIN rate_groups g ON g.table_name = p.table_name
WHERE NOT p.banded
  AND (g.epoch_to IS NULL OR g.epoch_to > p.valid_from)
  AND (p.valid_to IS NULL OR p.valid_to > g.epoch_from)
UNION ALL
SELECT party, is_customer, phone, kind_rank, multi, true, valid_from, valid_to,
       NULL, table_name, time_zone, calendar
FROM plan WHERE banded
"""


@dataclass
class RateSummary:
    """What a rating run did; money as exact Decimals.

    ``revenue`` and ``cost`` are in ``currency``, the warehouse's base currency, converted as
    summaries and reports convert (the view ``rated_base``: the exchange rate of each call's
    UTC day, half up to 6 places). They are None when some amount has no exchange rate
    (``missing_fx`` names the currencies): unlike money is never added. ``by_currency`` keeps
    each rate-table currency's own sums, unconverted.
    """

    cdrs: int = 0
    status: dict[str, int] = field(default_factory=dict)
    revenue: Decimal | None = Decimal(0)
    cost: Decimal | None = Decimal(0)
    #: Revenue and cost per currency (of the rate tables that priced them), unconverted.
    by_currency: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    #: The base currency: what ``revenue``, ``cost`` and ``profit`` are in.
    currency: str = "USD"
    #: Currencies with amounts this run priced on a day without an exchange rate.
    missing_fx: list[str] = field(default_factory=list)

    @property
    def profit(self) -> Decimal | None:
        if self.revenue is None or self.cost is None:
            return None
        return self.revenue - self.cost

    @property
    def flagged(self) -> int:
        return sum(n for s, n in self.status.items() if s != "ok")

    def __str__(self) -> str:
        """One line: amounts in the base currency, or per currency when a rate is missing.

        >>> print(RateSummary(2, {"ok": 2}, Decimal("2.85"), Decimal("1.35"),
        ...                   {"EUR": (Decimal(0), Decimal("1.25")),
        ...                    "USD": (Decimal("2.85"), Decimal(0))}))
        ... # doctest: +NORMALIZE_WHITESPACE
        rated 2 CDRs: revenue 2.85 USD, cost 1.35 USD, profit 1.50 USD
        (converted from EUR, USD); none flagged
        >>> print(RateSummary(2, {"ok": 2}, None, None,
        ...                   {"EUR": (Decimal(0), Decimal("1.25")),
        ...                    "USD": (Decimal("1.5"), Decimal(0))}, missing_fx=["EUR"]))
        ... # doctest: +NORMALIZE_WHITESPACE
        rated 2 CDRs: revenue 0 EUR + 1.5 USD, cost 1.25 EUR + 0 USD (not converted: no USD
        rate for EUR on some days; `ratelab fx set`); none flagged
        """
        flags = ", ".join(f"{n} {s}" for s, n in sorted(self.status.items()) if s != "ok")
        if self.revenue is None or self.cost is None:
            revenue = " + ".join(f"{r} {c}" for c, (r, _) in sorted(self.by_currency.items()))
            cost = " + ".join(f"{k} {c}" for c, (_, k) in sorted(self.by_currency.items()))
            money = (f"revenue {revenue}, cost {cost} (not converted: no {self.currency} rate "
                     f"for {', '.join(self.missing_fx)} on some days; `ratelab fx set`)")
        else:
            c = self.currency
            money = f"revenue {self.revenue} {c}, cost {self.cost} {c}, profit {self.profit} {c}"
            if set(self.by_currency) - {c}:
                money += f" (converted from {', '.join(sorted(self.by_currency))})"
        return (f"rated {self.cdrs} CDRs: {money}"
                + (f"; flagged: {flags}" if flags else "; none flagged"))


def cdr_filter(
    since: datetime | None, until: datetime | None, customer: str | None, vendor: str | None
) -> tuple[str, dict[str, object]]:
    """A WHERE clause (and its parameters) selecting CDRs by start time, customer and vendor.

    >>> cdr_filter(None, None, "acme", None)
    ('TRUE AND customer = $customer', {'customer': 'acme'})
    """
    where: list[str] = ["TRUE"]
    params: dict[str, object] = {}
    if since is not None:
        where.append("start_ts >= $since")
        params["since"] = since
    if until is not None:
        where.append("start_ts < $until")
        params["until"] = until
    if customer is not None:
        where.append("customer = $customer")
        params["customer"] = customer
    if vendor is not None:
        where.append("vendor = $vendor")
        params["vendor"] = vendor
    return " AND ".join(where), params


_RATED_SQL = """
SELECT c.cdr_id, r.start_ts, r.customer, r.vendor, c.callee, r.answered,
       CAST(CAST(c.duration_ms AS DECIMAL(18, 0)) * 0.001 AS DECIMAL(18, 3)) AS duration_s,
       r.status, r.destination,
       r.customer_table, r.customer_kind, r.customer_prefix, r.customer_rate,
       r.billed_s_customer, r.revenue,
       r.vendor_table, r.vendor_prefix, r.vendor_rate, r.billed_s_vendor, r.cost,
       r.revenue - r.cost AS profit,
       r.customer_rate - r.vendor_rate AS rate_deviation,
       r.synthetic, r.rated_at
FROM (SELECT * FROM rated WHERE {where}) r
JOIN cdrs c USING (cdr_seq)
ORDER BY r.start_ts, c.cdr_id
"""


def rated_calls(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
                until: datetime | None = None, customer: str | None = None,
                vendor: str | None = None, status: str | None = None) -> pl.DataFrame:
    """Rated CDRs selected as by :func:`cdr_filter` (and ``status``), ordered by start, with
    profit and rate deviation and the CDR's callee, answered and exact ``duration_s``.

    >>> from ratelab.migrations import migrate
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> rated_calls(con, customer="acme").height
    0
    """
    where, params = cdr_filter(since, until, customer, vendor)
    if status is not None:
        where += " AND status = $status"
        params["status"] = status
    frame: pl.DataFrame = con.sql(_RATED_SQL.format(where=where), params=params).pl()
    return frame


def _chunks(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, object]
) -> list[tuple[datetime, datetime, int]]:
    """Half-open start_ts ranges of whole days holding about CHUNK_ROWS CDRs each."""
    days = con.execute(
        f"""SELECT date_trunc('day', start_ts) AS d, count(*) FROM cdrs WHERE {where}
            GROUP BY d ORDER BY d""",
        params,
    ).fetchall()
    chunks: list[tuple[datetime, datetime, int]] = []
    start, count = None, 0
    for i, (day, n) in enumerate(days):
        start = day if start is None else start
        count += n
        last = i + 1 == len(days)
        if count >= CHUNK_ROWS or last:
            end = days[i + 1][0] if not last else day + timedelta(days=1)
            chunks.append((start, end, count))
            start, count = None, 0
    return chunks


def _prepare_lookup(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, object],
                    chunks: list[tuple[datetime, datetime, int]], total: int,
                    lookup: Lookup | None, several: bool, banded: bool) -> str:
    """Choose the lookup for this run (building the merged segments when it is merged) and
    return the query. The pairs cover the whole run, so the segments are built once."""
    if not chunks:
        return rating_query(Lookup.SIDES, several=several, banded=banded)
    if lookup is not Lookup.SIDES:
        pairs_sql, keys_sql = _statements("pairs")
        con.execute(pairs_sql.replace("{where}", where),
                    {**params, "lo": chunks[0][0], "hi": chunks[-1][1]})
        con.execute(keys_sql)
        size = scalar(con, """WITH n AS (SELECT grp, count(*) AS n FROM rate_segments
                                         GROUP BY grp)
                              SELECT coalesce(sum(coalesce(c.n, 0) + coalesce(v.n, 0)), 0)
                              FROM rate_pairs p LEFT JOIN n c ON c.grp = p.cgrp
                              LEFT JOIN n v ON v.grp = p.vgrp""")
        if lookup is None and size > MERGED_SHARE * total:
            lookup = Lookup.SIDES
    if lookup is Lookup.SIDES:
        return rating_query(Lookup.SIDES, several=several, banded=banded)
    con.execute(_rate_sql("merged_segments"))
    pairs = scalar(con, "SELECT count(*) FROM rate_pairs")
    return rating_query(Lookup.MERGED, several=several, partitioned=pairs > 1, banded=banded)


def rate_cdrs(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    customer: str | None = None,
    vendor: str | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    lookup: Lookup | None = None,
) -> RateSummary:
    """(Re-)rate the CDRs in the range; ``on_chunk(done, total)`` reports progress.

    ``Warehouse.rate`` is the usual way in; this takes an open connection. ``lookup`` forces
    how rate rows are found (the default picks the cheaper for the run; both give the same
    rows, which the golden tests check).

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=30)
    >>> with wh.connection() as con:
    ...     print(rate_cdrs(con, customer="nobody"))
    rated 0 CDRs: revenue 0 USD, cost 0 USD, profit 0 USD; none flagged
    """
    where, params = cdr_filter(since, until, customer, vendor)
    summary = RateSummary(currency=base_currency(con))
    rated_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_PLAN)
        con.execute(_PLAN_GROUPS)
        for statement in _statements("macros"):
            con.execute(statement)
        several = bool(scalar(con, "SELECT count(*) FROM plan WHERE is_customer AND multi"))
        banded = bool(scalar(con, "SELECT count(*) FROM plan WHERE banded"))
        chunks = _chunks(con, where, params)
        total = sum(n for *_, n in chunks)
        query = _prepare_lookup(con, where, params, chunks, total, lookup, several, banded)
        done = 0
        for lo, hi, n in chunks:
            chunk_where = f"{where} AND start_ts >= $lo AND start_ts < $hi"
            chunk_params = {**params, "lo": lo, "hi": hi}
            con.execute(f"DELETE FROM rated_rows WHERE {chunk_where}", chunk_params)
            con.execute(f"INSERT INTO rated_rows BY NAME {query.replace('{where}', chunk_where)}",
                        {**chunk_params, "rated_at": rated_at})
            done += n
            if on_chunk is not None:
                on_chunk(done, total)
        if chunks:
            rows = con.execute(
                f"""SELECT status, count(*)
                    FROM rated_rows WHERE {where} AND rated_at = $rated_at GROUP BY status""",
                {**params, "rated_at": rated_at},
            ).fetchall()
            for status, n in rows:
                summary.status[STATUSES[status]] = n
                summary.cdrs += n
            # summed per rate row first, so only a few thousand sums meet the joins
            money = con.execute(
                f"""WITH run AS (SELECT * FROM rated_rows
                                 WHERE {where} AND rated_at = $rated_at),
                    sides AS (
                        SELECT customer_rate_id AS rate_id, sum(revenue) AS revenue,
                               CAST(NULL AS DECIMAL(38, 6)) AS cost
                        FROM run WHERE customer_rate_id IS NOT NULL GROUP BY ALL
                        UNION ALL
                        SELECT vendor_rate_id, NULL, sum(cost)
                        FROM run WHERE vendor_rate_id IS NOT NULL GROUP BY ALL)
                    SELECT t.currency, coalesce(sum(s.revenue), 0), coalesce(sum(s.cost), 0)
                    FROM sides s JOIN rate_rows k ON k.rate_id = s.rate_id
                    JOIN rate_tables t ON t.name = k.table_name
                    GROUP BY t.currency ORDER BY t.currency""",
                {**params, "rated_at": rated_at},
            ).fetchall()
            summary.by_currency = {c: (r, k) for c, r, k in money}
            if set(summary.by_currency) <= {summary.currency}:   # nothing to convert
                revenue, cost = summary.by_currency.get(summary.currency,
                                                        (Decimal(0), Decimal(0)))
                summary.revenue, summary.cost = revenue, cost
            else:   # the same conversion as every summary and report: the view rated_base
                base = one(
                    con, f"""SELECT coalesce(sum(revenue_base), 0), coalesce(sum(cost_base), 0),
                               list_distinct(list_concat(
                                   coalesce(list(revenue_currency)
                                            FILTER (WHERE revenue_fx_missing), []),
                                   coalesce(list(cost_currency)
                                            FILTER (WHERE cost_fx_missing), [])))
                        FROM rated_base WHERE {where} AND rated_at = $rated_at""",
                    {**params, "rated_at": rated_at})
                assert base is not None   # an aggregate without GROUP BY has one row
                summary.missing_fx = sorted(base[2] or [])
                summary.revenue, summary.cost = ((None, None) if summary.missing_fx
                                                 else (base[0], base[1]))
        for temp in ("plan", "plan_groups", "rate_pairs", "rate_pair_keys", "merged_segments"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return summary
