"""Findings in the warehouse (table ``watch_findings``, migration 004): upserted by id, so a
finding keeps its ``first_seen`` and is new only once; :func:`findings` reads them back.

>>> from ratelab.examples import sample_warehouse
>>> findings(sample_warehouse(cdrs=1)).columns[:4]
['id', 'kind', 'severity', 'customer']
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from ratelab.watch.model import Finding, FindingKind, Severity

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse
    from ratelab.watch.model import Draft

__all__ = ["findings", "store_findings"]

_KIND_ORDER = {kind: n for n, kind in enumerate(FindingKind)}

_SEVERITY_RANK = ("CASE severity WHEN 'info' THEN 1 WHEN 'warning' THEN 2 "
                  "WHEN 'critical' THEN 3 END")


def store_findings(con: duckdb.DuckDBPyConnection, drafts: list[Draft], *,
                   seen_at: datetime) -> list[Finding]:
    """Upsert ``drafts`` by id (inside the caller's transaction): a new id is stored with
    ``first_seen = seen_at``; a known one keeps its ``first_seen`` and gets ``last_seen``, the
    latest severity, summary and numbers. Returns the findings, most severe first."""
    unique = {d.id: d for d in drafts}   # one subject per id, whatever the detectors returned
    batch = pl.DataFrame(
        [(d.id, str(d.kind), str(d.severity), d.customer, d.destination, d.window_start,
          d.window_end, d.summary, json.dumps(d.numbers)) for d in unique.values()],
        schema={"id": pl.String, "kind": pl.String, "severity": pl.String,
                "customer": pl.String, "destination": pl.String,
                "window_start": pl.Datetime("us"), "window_end": pl.Datetime("us"),
                "summary": pl.String, "numbers": pl.String},
        orient="row")
    con.register("watch_batch_frame", batch)
    con.execute("CREATE OR REPLACE TEMP TABLE watch_batch AS SELECT * FROM watch_batch_frame")
    con.unregister("watch_batch_frame")
    known = {row[0]: row[1] for row in con.execute(
        "SELECT f.id, f.first_seen FROM watch_findings f JOIN watch_batch b USING (id)"
    ).fetchall()}
    con.execute(
        """INSERT INTO watch_findings
           SELECT id, kind, severity, customer, destination, window_start, window_end,
                  summary, numbers, $seen AS first_seen, $seen AS last_seen,
                  NULL AS resolved_at, NULL AS resolution
           FROM watch_batch
           ON CONFLICT (id) DO UPDATE SET
               severity = excluded.severity, window_start = excluded.window_start,
               window_end = excluded.window_end, summary = excluded.summary,
               numbers = excluded.numbers, last_seen = excluded.last_seen""",
        {"seen": seen_at})
    con.execute("DROP TABLE watch_batch")
    result = [Finding(id=d.id, kind=d.kind, severity=d.severity, customer=d.customer,
                      destination=d.destination, window_start=d.window_start,
                      window_end=d.window_end, summary=d.summary, numbers=d.numbers,
                      first_seen=known.get(d.id, seen_at), new=d.id not in known)
              for d in unique.values()]
    result.sort(key=lambda f: (-f.severity, _KIND_ORDER[f.kind], f.window_start, f.id))
    return result


def findings(wh: Warehouse, *, since: datetime | None = None,
             severity: Severity = Severity.INFO) -> pl.DataFrame:
    """Stored findings of ``severity`` or worse, seen by a run at or after ``since`` (naive
    UTC; default all), newest first: id, kind, severity (text), customer, destination,
    window_start, window_end, summary, numbers (JSON text), first_seen, last_seen.

    >>> from ratelab.examples import sample_warehouse
    >>> findings(sample_warehouse(cdrs=1), severity=Severity.CRITICAL).height
    0
    """
    return wh.sql(
        f"""SELECT id, kind, severity, customer, destination, window_start, window_end,
                   summary, CAST(numbers AS VARCHAR) AS numbers, first_seen, last_seen
            FROM watch_findings
            WHERE ($since IS NULL OR last_seen >= $since) AND {_SEVERITY_RANK} >= $rank
            ORDER BY first_seen DESC, {_SEVERITY_RANK} DESC, window_start DESC, id""",
        {"since": since, "rank": int(severity)})
