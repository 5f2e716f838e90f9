"""The golden warehouses of the period comparison: tests/golden/compare/NAME.json holds the
decks, exchange rates and CDRs (and the hand-computed rows); :func:`build_compare_warehouse`
ingests and rates them. Shared by tests/test_reports_compare.py and docs/reports.md."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import ratelab
from tests.helpers import contract_cdr, write_jsonl

GOLDEN = Path(__file__).parent / "golden" / "compare"


def load_compare_golden(name: str) -> dict:
    """The golden file ``tests/golden/compare/NAME.json`` as a dict."""
    return json.loads((GOLDEN / f"{name}.json").read_text())


def build_compare_warehouse(root: Path, spec: dict | str, *,
                            fx: bool = True) -> ratelab.Warehouse:
    """The warehouse a golden file (or its name) describes, under ``root``, rated;
    ``fx=False`` leaves out its exchange rates."""
    if isinstance(spec, str):
        spec = load_compare_golden(spec)
    wh = ratelab.connect(root / "warehouse.duckdb", create=True)
    for deck in spec["decks"]:
        path = root / f"{deck['name']}.csv"
        path.write_text("\n".join(deck["csv"]) + "\n")
        wh.import_deck(path, deck["name"], deck["side"], currency=deck["currency"])
        wh.assign(deck["name"], **deck["assign"])
    for currency, rate, day in spec["fx"] if fx else []:
        wh.set_fx(currency, rate, date.fromisoformat(day))
    records = [contract_cdr(cdr_id, callee, f"{start}.000000Z", duration_ms,
                            customer=customer)
               for cdr_id, customer, callee, start, duration_ms in spec["cdrs"]]
    write_jsonl(root / "spool" / "cdrs.jsonl", records)
    assert wh.ingest(root / "spool").added == len(records)
    wh.rate()
    return wh
