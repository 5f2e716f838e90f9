"""The small golden warehouse the report tests share, and the golden-file comparison.

Decks (all USD unless said):

* customer ``cust_usd`` (acme): 44 UK 0.02 60/60; 447 UK Mobile 0.03 1/1; 1 USA 0.01 6/6
* customer ``cust_eur`` (globex, EUR): 44 UK 0.018 60/60
* vendor ``vend_x`` (carrier_x): 44 UK 0.015 1/1; 447 UK Mobile 0.035 1/1 (above acme's
  0.03: sold below cost); 1 USA 0.008 6/6
* vendor ``vend_y`` (carrier_y): 44 UK 0.019 1/1 (above globex's 0.018)

CDRs, 2026-11-02 (a Monday) and 2026-11-03, UTC, and one on 2026-11-05 outside the usual
period. Revenue / cost / profit as rated (hand-computed):

====  =======  =========  ============  ======  ====  ========  ========  =========
id    cust     vendor     destination   dur s   sip   revenue   cost      profit
====  =======  =========  ============  ======  ====  ========  ========  =========
c1    acme     carrier_x  UK            60      200   0.020000  0.015000   0.005000
c2    acme     carrier_x  UK Mobile     90      200   0.045000  0.052500  -0.007500
c3    acme     carrier_x  UK Mobile     4       200   0.002000  0.002333  -0.000333
c4    acme     carrier_y  UK            120     200   0.040000  0.038000   0.002000
      (failover: carrier_x answered 503 first, then carrier_y 200)
c5    acme     carrier_x  USA           0       486   0         0          0
c6    globex   carrier_y  UK            60      200   0.018000  0.019000  -0.001000
c7    acme     carrier_x  USA           30      200   0.005000  0.004000   0.001000
c8    acme     carrier_x  UK            0       480   0         0          0
c9    globex   (none)     UK            0       404   0         0          0
c11   acme     carrier_x  UK Mobile     5.999   200   0.003000  0.003500  -0.000500
c12   acme     carrier_x  USA           600     200   0.100000  0.080000   0.020000
c13   acme     carrier_x  (unrated)     60      200   null      null       (no_rates)
c10   acme     carrier_x  UK            60      200   0.020000  0.015000   0.005000  (11-05)
====  =======  =========  ============  ======  ====  ========  ========  =========
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import ratelab
from tests.helpers import contract_cdr, write_jsonl

GOLDEN = Path(__file__).parent / "golden" / "reports"

START, END = "2026-11-02", "2026-11-04"

DECKS = [
    ("cust_usd", "customer", "USD", {"customer": "acme"},
     "prefix,destination,rate,increment,effective_from\n"
     "44,UK,0.0200,60/60,2026-01-01\n447,UK Mobile,0.0300,1/1,2026-01-01\n"
     "1,USA,0.0100,6/6,2026-01-01\n"),
    ("cust_eur", "customer", "EUR", {"customer": "globex"},
     "prefix,destination,rate,increment,effective_from\n44,UK,0.0180,60/60,2026-01-01\n"),
    ("vend_x", "vendor", "USD", {"vendor": "carrier_x"},
     "prefix,destination,rate,increment,effective_from\n"
     "44,UK,0.0150,1/1,2026-01-01\n447,UK Mobile,0.0350,1/1,2026-01-01\n"
     "1,USA,0.0080,6/6,2026-01-01\n"),
    ("vend_y", "vendor", "USD", {"vendor": "carrier_y"},
     "prefix,destination,rate,increment,effective_from\n44,UK,0.0190,1/1,2026-01-01\n"),
]

# (id, customer, vendor, callee, start, duration_ms, pdd_ms, sip_code, reason, attempts)
# attempts: (vendor, sip_code, pdd_ms); None means one attempt by the CDR's vendor.
CDRS = [
    ("c1", "acme", "carrier_x", "441234567890", "2026-11-02T10:00:00", 60000, 2000, 200,
     "caller_bye", None),
    ("c2", "acme", "carrier_x", "447700900001", "2026-11-02T10:30:00", 90000, 3000, 200,
     "callee_bye", None),
    ("c3", "acme", "carrier_x", "447700900002", "2026-11-02T11:15:00", 4000, 1000, 200,
     "caller_bye", None),
    ("c4", "acme", "carrier_y", "441234567891", "2026-11-02T14:00:00", 120000, 2500, 200,
     "caller_bye", [("carrier_x", 503, 0), ("carrier_y", 200, 2500)]),
    ("c5", "acme", "carrier_x", "12125550001", "2026-11-02T15:00:00", 0, 4000, 486,
     "busy", None),
    ("c6", "globex", "carrier_y", "441234567892", "2026-11-02T16:00:00", 60000, 1500, 200,
     "caller_bye", None),
    ("c7", "acme", "carrier_x", "12125550002", "2026-11-03T09:00:00", 30000, 1000, 200,
     "caller_bye", None),
    ("c8", "acme", "carrier_x", "441234567893", "2026-11-03T09:30:00", 0, 6000, 480,
     "no_answer", None),
    ("c9", "globex", None, "441234567894", "2026-11-03T10:00:00", 0, 0, 404,
     "no_route", []),
    ("c11", "acme", "carrier_x", "447700900003", "2026-11-03T13:00:00", 5999, 500, 200,
     "caller_bye", None),
    ("c12", "acme", "carrier_x", "12125550003", "2026-11-03T14:00:00", 600000, 1000, 200,
     "callee_bye", None),
    ("c13", "acme", "carrier_x", "61212345678", "2026-11-03T11:00:00", 60000, 2000, 200,
     "caller_bye", None),
    ("c10", "acme", "carrier_x", "441234567895", "2026-11-05T10:00:00", 60000, 2000, 200,
     "caller_bye", None),
]


def _record(spec: tuple) -> dict:
    cdr_id, customer, vendor, callee, start, duration_ms, pdd_ms, sip, reason, attempts = spec
    stamp = f"{start}.000000Z"
    record = contract_cdr(cdr_id, callee, stamp, duration_ms, customer=customer, vendor=vendor)
    if attempts is None:
        attempts = [(vendor, sip, pdd_ms)]
    record.update(pdd_ms=pdd_ms, sip_code=sip, disconnect_reason=reason,
                  attempts=[{"vendor": v, "start_ts": stamp, "sip_code": code, "pdd_ms": pdd}
                            for v, code, pdd in attempts])
    return record


def build_golden_warehouse(root: Path) -> ratelab.Warehouse:
    """The warehouse described in the module docstring, ingested and rated, under ``root``."""
    wh = ratelab.connect(root / "warehouse.duckdb", create=True)
    for name, side, currency, who, text in DECKS:
        deck = root / f"{name}.csv"
        deck.write_text(text)
        wh.import_deck(deck, name, side, currency=currency)
        wh.assign(name, **who)
    # globex's EUR revenue is converted to the base currency (USD) at 1.10 in margin reports
    # (c6: 0.018000 EUR = 0.019800 USD); settlement and bills stay in EUR.
    wh.set_fx("EUR", "1.10", date(2026, 11, 1))
    write_jsonl(root / "spool" / "cdrs.jsonl", [_record(spec) for spec in CDRS])
    summary = wh.ingest(root / "spool")
    assert summary.added == len(CDRS) and summary.quarantined == 0
    wh.rate()
    return wh


def plain(value: object) -> object:
    """A frame cell as the golden files write it: Decimals and dates as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def same(got: object, want: object) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return got == pytest.approx(want, rel=1e-12, abs=1e-12)
    return got == want


def check_golden(name: str, report: Callable[..., pl.DataFrame], wh: ratelab.Warehouse) -> None:
    """Run every case of ``tests/golden/reports/NAME.json`` and compare rows exactly, in order.

    A case is ``{"args": {...}, "rows": [{column: value, ...}, ...]}``: the report is called as
    ``report(wh, START, END, **args)`` (args may override start and end), and each row must hold
    exactly the columns and values given (Decimal as its exact string, floats to 1e-12).
    """
    spec = json.loads((GOLDEN / f"{name}.json").read_text())
    for number, case in enumerate(spec["cases"]):
        args = {"start": START, "end": END, **case["args"]}
        frame = report(wh, **args)
        got = [{k: plain(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
        want = case["rows"]
        where = f"{name} case {number} {case['args']}"
        assert len(got) == len(want), f"{where}: {len(got)} rows, want {len(want)}: {got}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert list(g) == list(w), f"{where} row {i}: columns {list(g)}"
            for column in w:
                assert same(g[column], w[column]), (
                    f"{where} row {i} {column}: got {g[column]!r}, want {w[column]!r}")
