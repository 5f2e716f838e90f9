"""The routing snapshot: the rates the switch routes on, exported from the warehouse.

The switch never opens the warehouse. ``ratelab routing export`` writes what it needs into one
JSON file (``SNAPSHOT_FORMAT`` and ``SNAPSHOT_VERSION`` from :mod:`switch.contract`), which
the switch loads at start and on SIGHUP:

.. code-block:: json

    {"format": "ratelab-routing", "version": 1,
     "generated_at": "2026-11-26T08:00:00Z", "rates_at": "2026-11-26T08:00:00Z",
     "customers": {"acme": {"44": "0.020000", "447": "0.030000"}},
     "vendors": {"tollgate": {"44": "0.015000"}}}

Rates are per minute, exact decimal strings in the warehouse's base currency, for the prefixes
in force at ``rates_at``. A customer's rate for a prefix is what rating would charge a number
starting with it: the cheapest of its tables (period, account and account_private;
phone_private tables price single callers and are left out), each table by its own longest
prefix of the number; and for tables
with time bands the snapshot takes the customer's lowest and the vendor's highest band rate: the
profit limit then never lets through a call that loses more than the limit in any band.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ratelab.fx import base_currency, convert, rate_on
from ratelab.reports.common import MissingRateError

# The format and version are the switch's to define (it reads the file): one home, the contract.
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION

__all__ = ["SNAPSHOT_FORMAT", "SNAPSHOT_VERSION", "routing_snapshot", "write_snapshot"]

# A customer's rate for a number is the cheapest of its tables, each table priced by ITS longest
# prefix of the number (what rating charges). A longest match in the snapshot must give that
# price, so the snapshot lists every prefix of any of the customer's tables with the cheapest
# of each table's longest match for it: a private 447 at 0.0139 beside a standard 4470 at
# 0.3381 puts 4470 at 0.0139, not 0.3381 (a prefix-by-prefix minimum let the switch's profit
# limit pass calls that rating then priced at a loss).
_RATES_SQL = """
WITH priced AS (
    SELECT a.side, a.party, a.table_name, r.prefix, t.currency,
           CASE WHEN a.side = 'customer' THEN min(r.rate) ELSE max(r.rate) END AS rate
    FROM assignments a
    JOIN rate_tables t ON t.name = a.table_name
    JOIN rates r ON r.table_name = a.table_name
    WHERE a.kind <> 'phone_private'
      AND a.valid_from <= $at AND (a.valid_to IS NULL OR a.valid_to > $at)
      AND r.effective_from <= $at AND (r.effective_to IS NULL OR r.effective_to > $at)
    GROUP BY a.side, a.party, a.table_name, r.prefix, t.currency
),
ranges AS (SELECT DISTINCT party, prefix FROM priced WHERE side = 'customer'),
heads AS (
    SELECT party, prefix, left(prefix, n) AS head, n
    FROM (SELECT party, prefix, unnest(generate_series(1, length(prefix))) AS n FROM ranges)
),
hits AS (   -- per range and customer table: the rate of the longest prefix that table lists
    SELECT h.party, h.prefix, arg_max(p.rate, h.n) AS rate, any_value(p.currency) AS currency
    FROM heads h
    JOIN priced p ON p.side = 'customer' AND p.party = h.party AND p.prefix = h.head
    GROUP BY h.party, h.prefix, p.table_name
)
SELECT 'customer' AS side, party, prefix, rate, currency FROM hits
UNION ALL
SELECT side, party, prefix, rate, currency FROM priced WHERE side = 'vendor'
"""


def routing_snapshot(con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> dict[str, Any]:
    """The snapshot as a dict, for rates in force at ``at`` (naive UTC, default now), every rate
    in the base currency (converted at ``at``'s day's exchange rate, half up to 6 places; a
    missing rate raises :class:`ratelab.reports.MissingRateError`).

    >>> from ratelab.examples import example_connection
    >>> from ratelab.assignments import assign
    >>> con = example_connection()
    >>> _ = assign(con, "vendor_x", "carrier_x", "vendor")
    >>> routing_snapshot(con, datetime(2026, 6, 1))["vendors"]
    {'carrier_x': {'44': '0.010000'}}
    """
    at = at or datetime.now(UTC).replace(tzinfo=None)
    snapshot: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "generated_at": _utc(datetime.now(UTC).replace(tzinfo=None)),
        "rates_at": _utc(at),
        "customers": {},
        "vendors": {},
    }
    rows = con.execute(_RATES_SQL, {"at": at}).fetchall()
    # the switch compares customer and vendor rates: one currency, the base, at `at`'s rate
    factors = {code: rate_on(con, code, at.date()) for code in {row[4] for row in rows}}
    missing = sorted(code for code, factor in factors.items() if factor is None)
    if missing:
        raise MissingRateError(base_currency(con), {code: [at.date()] for code in missing})
    best: dict[tuple[str, str, str], Decimal] = {}
    for side, party, prefix, rate, currency in rows:
        factor = factors[currency]
        assert factor is not None   # checked above
        value = rate if factor == 1 else convert(rate, factor)
        key = (side, party, prefix)
        kept = best.get(key)
        if kept is None or (value < kept if side == "customer" else value > kept):
            best[key] = value
    for (side, party, prefix), rate in sorted(best.items()):
        book = snapshot["customers" if side == "customer" else "vendors"]
        book.setdefault(party, {})[prefix] = f"{rate:.6f}"
    return snapshot


def write_snapshot(snapshot: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (a temp file renamed over the old one), so a switch reloading on
    SIGHUP never reads half a file.

    >>> import tempfile
    >>> out = write_snapshot({"format": SNAPSHOT_FORMAT, "version": 1, "customers": {},
    ...                       "vendors": {}}, Path(tempfile.mkdtemp()) / "routing.json")
    >>> json.loads(out.read_text())["version"]
    1
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(snapshot, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
