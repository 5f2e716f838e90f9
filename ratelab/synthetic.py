"""Synthetic CDRs in the CDR contract (v1) format, for the demo and the benchmarks.

Every CDR written here is labelled: ``switch_id`` is ``"synthetic"`` and ``cdr_id`` starts with
``"synthetic-"``, so reports can say so wherever the data shows. The generator runs inside
DuckDB (``COPY ... TO`` JSON lines), so ten million CDRs take seconds, not minutes, and the
same seed always gives the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from switch.contract import cdr_file_name

__all__ = ["SYNTHETIC_SWITCH_ID", "SyntheticSpec", "write_synthetic_cdrs"]

SYNTHETIC_SWITCH_ID = "synthetic"

_TS = "'%Y-%m-%dT%H:%M:%S.%fZ'"

# h1..h6 are independent hashes of the row number; everything random derives from them.
_CDR_SQL = f"""
WITH seeded AS (
    -- BIGINT: an INTEGER seed times 1000000007 overflows INT32 from seed 3 on
    SELECT i, CAST($seed AS BIGINT) * 1000000007 AS s FROM range($first, $first + $n) AS t(i)
), base AS (
    SELECT
        i,
        hash(i * 8 + 1 + s) AS h1, hash(i * 8 + 2 + s) AS h2,
        hash(i * 8 + 3 + s) AS h3, hash(i * 8 + 4 + s) AS h4,
        hash(i * 8 + 5 + s) AS h5, hash(i * 8 + 6 + s) AS h6
    FROM seeded
), call AS (
    SELECT
        i, h5, h6,
        $customers[1 + (h1 % len($customers))::INTEGER] AS customer,
        $vendors[1 + (h2 % len($vendors))::INTEGER] AS vendor,
        $prefixes[1 + (h3 % len($prefixes))::INTEGER] AS prefix,
        $start + to_microseconds((h4 % $span_us)::BIGINT) AS start_ts,
        (h5 % 1000) < $answer_permille AS answered,
        -- a long-tailed duration: most calls short, some long (0.5 s .. ~40 min)
        CAST(500 + (h6 % 1000) * (h6 % 1000) * (h6 % 2400) // 1000 AS BIGINT) AS duration_ms,
        CAST(800 + (h5 // 1000) % 5200 AS BIGINT) AS pdd_ms,
        -- about 1 call in 5 fails over from another of the given vendors (never a made-up
        -- name: every vendor in a report is one the caller named); with one vendor, none does
        ((h5 // 7) % 10) < 2 AND len($vendors) > 1 AS failed_over,
        $vendors[1 + ((h2 + 1) % len($vendors))::INTEGER] AS failover_vendor
    FROM base
), numbered AS (
    SELECT *,
        prefix || lpad(CAST((h6 // 3) % 100000000000 AS VARCHAR),
                       CAST(12 - length(prefix) AS INTEGER), '0')
            AS e164,
        CASE WHEN answered THEN duration_ms ELSE 0 END AS talk_ms
    FROM call
)
SELECT
    'synthetic-' || $batch || '-' || i AS cdr_id,
    '{SYNTHETIC_SWITCH_ID}' AS switch_id,
    'syn' || i || '@synthetic.ratelab' AS call_id,
    '1555' || lpad(CAST(h5 % 10000000 AS VARCHAR), 7, '0') AS caller,
    e164 AS callee,
    e164 AS callee_e164,
    customer,
    vendor,
    '127.0.0.1' AS src_ip,
    5060 AS src_port,
    strftime(start_ts, {_TS}) AS start_ts,
    CASE WHEN answered THEN strftime(start_ts + to_milliseconds(pdd_ms), {_TS}) END AS answer_ts,
    strftime(start_ts + to_milliseconds(pdd_ms + talk_ms), {_TS}) AS end_ts,
    talk_ms AS duration_ms,
    pdd_ms,
    CASE WHEN answered THEN 200 WHEN h5 % 3 = 0 THEN 486 WHEN h5 % 3 = 1 THEN 487 ELSE 503 END
        AS sip_code,
    CASE WHEN answered THEN (CASE WHEN h6 % 2 = 0 THEN 'caller_bye' ELSE 'callee_bye' END)
         WHEN h5 % 3 = 0 THEN 'busy' WHEN h5 % 3 = 1 THEN 'no_answer' ELSE 'rejected' END
        AS disconnect_reason,
    CASE WHEN failed_over THEN [
            {{'vendor': failover_vendor, 'start_ts': strftime(start_ts, {_TS}),
              'sip_code': 503, 'pdd_ms': 0}},
            {{'vendor': vendor, 'start_ts': strftime(start_ts, {_TS}),
              'sip_code': CASE WHEN answered THEN 200 ELSE 486 END, 'pdd_ms': pdd_ms}}]
         ELSE [{{'vendor': vendor, 'start_ts': strftime(start_ts, {_TS}),
                 'sip_code': CASE WHEN answered THEN 200 ELSE 486 END, 'pdd_ms': pdd_ms}}]
    END AS attempts,
    'PCMA' AS codec,
    0 AS rtp_encryption,
    {{'customer': {{'packets_in': talk_ms // 20, 'packets_out': talk_ms // 20,
                   'bytes_in': talk_ms * 8, 'bytes_out': talk_ms * 8, 'encryption': 0}},
     'vendor': {{'packets_in': talk_ms // 20, 'packets_out': talk_ms // 20,
                 'bytes_in': talk_ms * 8, 'bytes_out': talk_ms * 8, 'encryption': 0}}}} AS rtp
FROM numbered
ORDER BY i
"""


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: who calls, through whom, to which prefixes, when."""

    customers: Sequence[str]
    vendors: Sequence[str]
    prefixes: Sequence[str]
    start: datetime
    end: datetime
    answer_ratio: float = 0.6
    seed: int = 1


def write_synthetic_cdrs(
    spool_dir: str | Path, count: int, spec: SyntheticSpec, *, files: int = 1, batch: str = "0"
) -> list[Path]:
    """Write ``count`` synthetic CDRs as JSON lines into ``files`` files under ``spool_dir``.

    The files are named as a switch names its spool files (:func:`switch.contract.cdr_file_name`),
    with ``"synthetic"`` for the switch and ``batch`` for its boot, numbered from 1.

    >>> import tempfile, json
    >>> spec = SyntheticSpec(["acme"], ["carrier_x"], ["44"],
    ...                      datetime(2026, 11, 1), datetime(2026, 11, 2))
    >>> [path] = write_synthetic_cdrs(tempfile.mkdtemp(), 3, spec)
    >>> rows = [json.loads(line) for line in path.read_text().splitlines()]
    >>> len(rows), rows[0]["switch_id"], rows[0]["callee_e164"][:2]
    (3, 'synthetic', '44')
    >>> path.name
    'cdr-synthetic-0-000001.jsonl'
    """
    if count < 0 or files < 1:
        raise ValueError("count must be >= 0 and files >= 1")
    if not (spec.customers and spec.vendors and spec.prefixes):
        raise ValueError("customers, vendors and prefixes must each be non-empty")
    if spec.end <= spec.start:
        raise ValueError("end must be after start")
    spool = Path(spool_dir)
    spool.mkdir(parents=True, exist_ok=True)
    span_us = int((spec.end - spec.start).total_seconds() * 1_000_000)
    paths = []
    con = duckdb.connect()
    try:
        per_file = -(-count // files)
        for k in range(files):
            first = k * per_file
            n = max(0, min(per_file, count - first))
            path = spool / cdr_file_name(SYNTHETIC_SWITCH_ID, batch, k + 1)
            con.execute(
                f"COPY ({_CDR_SQL}) TO '{_sql_path(path)}' (FORMAT json)",
                {
                    "seed": spec.seed, "first": first, "n": n, "batch": batch,
                    "customers": list(spec.customers), "vendors": list(spec.vendors),
                    "prefixes": list(spec.prefixes), "start": spec.start, "span_us": span_us,
                    "answer_permille": round(spec.answer_ratio * 1000),
                },
            )
            paths.append(path)
    finally:
        con.close()
    return paths


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
