"""The routing snapshot: the rates the switch routes on, exported from the warehouse.

The switch never opens the warehouse. ``ratelab routing export`` writes what it needs into one
JSON file (``SNAPSHOT_FORMAT`` and ``SNAPSHOT_VERSION`` from :mod:`switch.contract`), which
the switch loads at start and on SIGHUP:

.. code-block:: json

    {"format": "ratelab-routing", "version": 1,
     "generated_at": "2026-11-26T08:00:00Z", "rates_at": "2026-11-26T08:00:00Z",
     "customers": {"acme": {"44": "0.020000", "447": "0.030000"}},
     "vendors": {"tollgate": {"44": "0.015000"}}}

Rates are per minute, exact decimal strings, for the prefixes in force at ``rates_at``.
A customer's rate for a prefix is the cheapest of its tables (period, account and
account_private; phone_private tables price single callers and are left out), and for tables
with time bands the snapshot takes the customer's lowest and the vendor's highest band rate: the
profit limit then never lets through a call that loses more than the limit in any band.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

# The format and version are the switch's to define (it reads the file): one home, the contract.
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION

__all__ = ["SNAPSHOT_FORMAT", "SNAPSHOT_VERSION", "routing_snapshot", "write_snapshot"]

_RATES_SQL = """
SELECT a.side, a.party, r.prefix,
       CASE WHEN a.side = 'customer' THEN min(r.rate) ELSE max(r.rate) END AS rate
FROM assignments a
JOIN rates r ON r.table_name = a.table_name
WHERE a.kind <> 'phone_private'
  AND a.valid_from <= $at AND (a.valid_to IS NULL OR a.valid_to > $at)
  AND r.effective_from <= $at AND (r.effective_to IS NULL OR r.effective_to > $at)
GROUP BY a.side, a.party, r.prefix
ORDER BY a.side, a.party, r.prefix
"""


def routing_snapshot(con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> dict[str, Any]:
    """The snapshot as a dict, for rates in force at ``at`` (naive UTC, default now).

    >>> from ratelab.examples import example_connection
    >>> from ratelab.rates import assign
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
    for side, party, prefix, rate in con.execute(_RATES_SQL, {"at": at}).fetchall():
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
