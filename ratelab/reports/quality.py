"""Traffic quality reports: ASR, ACD, PDD, short calls and why calls fail.

These read the CDRs themselves (``cdrs``, with ``rated`` only for the destination) for calls
starting in ``[start, end)``, naive UTC; hour and day buckets are UTC. A call belongs to the
bucket of its start, its failover attempts included. Ratios are Float64 in 0..1; answered
means SIP code 200. The queries are in ``ratelab/sql/reports/<function>.sql``.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> traffic_quality(wh, "2026-11-02", "2026-11-03", by="customer")["customer"].to_list()
['acme']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ratelab.reports.common import Keys, When, check_choice, check_keys, load_sql, period

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["failure_causes", "traffic_quality"]

KEYS = ("vendor", "customer", "destination")
GRAINS = ("hour", "day")


def traffic_quality(wh: Warehouse, start: When, end: When, by: Keys = "vendor",
                    grain: str = "day") -> pl.DataFrame:
    """ASR, ACD, PDD and short calls per UTC hour or day and per vendor, customer or destination.

    ``by`` is a key or a list of keys (``["vendor", "destination"]``). Columns: bucket
    (Datetime, naive UTC, start of the hour or day), a column per key, in the order given,
    attempts, answered (SIP 200), asr (answered / attempts), acd_s (mean seconds of the
    answered attempts), pdd_ms (mean post-dial delay of the answered attempts),
    short_calls (answered, under 6 s), short_ratio (short_calls / answered; null when nothing
    was answered). Sorted by bucket, then the keys.

    By vendor every attempt in a CDR's ``attempts`` counts for its vendor, so a call that
    failed over from one vendor (503) to another (200) is a failed attempt for the first and
    an answered one for the second. By customer or destination each call is one attempt.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> quality = traffic_quality(wh, "2026-11-02", "2026-11-03", by="vendor")
    >>> quality.columns
    ['bucket', 'vendor', 'attempts', 'answered', 'asr', 'acd_s', 'pdd_ms', 'short_calls',
     'short_ratio']
    >>> quality["vendor"].to_list(), quality["attempts"].to_list()
    (['carrier_x'], [50])
    """
    begin, finish = period(start, end)
    keys = check_keys(by, KEYS)
    check_choice("grain", grain, GRAINS)
    frame = wh.sql(load_sql("traffic_quality"),
                   {"start": begin, "end": finish, "by": keys, "grain": grain})
    frame = frame.rename({f"{k}_key": k for k in KEYS})
    return (frame.select("bucket", *keys, *frame.columns[4:])
            .sort(["bucket", *keys], nulls_last=False))


def failure_causes(wh: Warehouse, start: When, end: When,
                   by: Keys = "vendor") -> pl.DataFrame:
    """Why unanswered calls failed: final SIP code and disconnect reason per key.

    Columns: a column per key of ``by`` (one key or a list; vendor: the call's final vendor,
    ``(none)`` when no vendor was tried; customer; destination), sip_code, disconnect_reason,
    calls, share (of the failed calls of its keys). Unanswered calls only (final SIP code other
    than 200); failed attempts that a failover rescued are counted by :func:`traffic_quality`
    instead. Sorted by the keys, most calls first, then SIP code and reason.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=50, rated=True)
    >>> causes = failure_causes(wh, "2026-11-02", "2026-11-03")
    >>> causes.columns
    ['vendor', 'sip_code', 'disconnect_reason', 'calls', 'share']
    >>> round(causes["share"].sum(), 6)
    1.0
    """
    begin, finish = period(start, end)
    keys = check_keys(by, KEYS)
    frame = wh.sql(load_sql("failure_causes"), {"start": begin, "end": finish, "by": keys})
    frame = frame.rename({f"{k}_key": k for k in KEYS})
    return (frame.select(*keys, *frame.columns[3:])
            .sort([*keys, "calls", "sip_code", "disconnect_reason"],
                  descending=[False] * len(keys) + [True, False, False]))
