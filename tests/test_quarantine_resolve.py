"""Quarantine entries have ids, can be resolved by hand, and are resolved automatically when
the fixed line is re-ingested (kept, never deleted)."""

from __future__ import annotations

import json

import pytest

import ratelab
from tests.helpers import contract_cdr


def _bad_line() -> str:
    record = contract_cdr("q1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000)
    record["duration_ms"] = "sixty"  # the wrong type: quarantined
    return json.dumps(record)


def test_a_fixed_line_re_ingested_resolves_its_entry(tmp_path) -> None:
    wh = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    spool = tmp_path / "spool"
    spool.mkdir()
    good = json.dumps(contract_cdr("q0", "441234567890", "2026-11-02T09:00:00.000000Z", 1000))
    (spool / "a.jsonl").write_text(good + "\n" + _bad_line() + "\n")
    assert wh.ingest(spool).quarantined == 1
    [entry] = wh.quarantine_entries().iter_rows(named=True)
    assert (entry["line"], entry["resolved_at"]) == (2, None)
    # fixed in place: the file is read again, the CDR lands and the entry is resolved
    fixed = json.dumps(contract_cdr("q1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000))
    (spool / "a.jsonl").write_text(good + "\n" + fixed + "\n")
    summary = wh.ingest(spool)
    assert (summary.added, summary.resolved) == (1, 1)
    assert "1 quarantine entries resolved by re-ingest" in str(summary)
    assert wh.quarantine_entries().height == 0
    [kept] = wh.quarantine_entries(include_resolved=True).iter_rows(named=True)
    assert kept["id"] == entry["id"] and kept["resolution"] == "re-ingested as q1"
    assert kept["resolved_at"] is not None


def test_a_fix_in_another_file_resolves_it_too(tmp_path) -> None:
    wh = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text(_bad_line() + "\n")
    wh.ingest(spool)
    fixed = json.dumps(contract_cdr("q1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000))
    (spool / "b.jsonl").write_text(fixed + "\n")
    assert wh.ingest(spool).resolved == 1
    assert wh.quarantine_entries().height == 0


def test_resolve_by_id(tmp_path) -> None:
    wh = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.jsonl").write_text("not json\n" + _bad_line() + "\n")
    wh.ingest(spool)
    ids = wh.quarantine_entries()["id"].to_list()
    assert len(ids) == 2 and len(set(ids)) == 2
    wh.resolve_quarantine(ids[0], "a test line, not a call")
    assert wh.quarantine_entries()["id"].to_list() == ids[1:]
    with pytest.raises(ValueError, match="already resolved"):
        wh.resolve_quarantine(ids[0])
    with pytest.raises(ValueError, match="no quarantine entry 999"):
        wh.resolve_quarantine(999)
    # the old view still lists everything (resolved entries are kept)
    assert wh.quarantine().height == 2
