"""`ratelab assign --history` / `--replace-history` and `ratelab quarantine [resolve]`, run for
real against a warehouse file: what an analyst types to explain last month's bill and to clear
a quarantine entry."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import contract_cdr, ok, write_jsonl
from tests.helpers import ratelab as run_cli
from tests.test_assignment_history import _warehouse


def test_assign_refuses_to_reprice_the_past_unless_asked_and_history_shows_both(
        tmp_path: Path) -> None:
    wh = _warehouse(tmp_path)
    path = wh.path
    wh.close()
    refused = run_cli("assign", "cheap", "--customer", "acme", "--from", "1970-01-01",
                      warehouse=path)
    assert refused.returncode != 0 and "re-price 1 call(s)" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    ok(run_cli("assign", "cheap", "--customer", "acme", "--from", "1970-01-01",
               "--replace-history", warehouse=path))
    shown = ok(run_cli("assign", "--history", "--customer", "acme", warehouse=path,
                       env={"COLUMNS": "200"}))
    lines = [line for line in shown.splitlines() if "std" in line or "cheap" in line]
    assert len(lines) == 2, shown
    assert "superseded" in lines[0] and "std" in lines[0], shown
    assert "in force" in lines[1] and "cheap" in lines[1], shown
    none = run_cli("assign", "--history", "--vendor", "nobody", warehouse=path)
    assert none.returncode == 2 and "no assignment for vendor nobody" in none.stderr
    usage = run_cli("assign", "--customer", "acme", warehouse=path)
    assert usage.returncode == 2 and "TABLE" in usage.stderr


def test_quarantine_lists_ids_and_resolve_keeps_the_entry(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path)
    path = wh.path
    record = contract_cdr("q1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000)
    record["duration_ms"] = "sixty"
    write_jsonl(tmp_path / "spool2" / "bad.jsonl", [record])
    (tmp_path / "spool2" / "worse.jsonl").write_text("not json\n")
    wh.ingest(tmp_path / "spool2")
    ids = wh.quarantine_entries()["id"].to_list()
    wh.close()
    listed = ok(run_cli("quarantine", warehouse=path))
    assert all(f"[{i}]" in listed for i in ids) and "2 quarantined line(s)" in listed, listed
    done = ok(run_cli("quarantine", "resolve", ids[0], "--note", "sent again", warehouse=path))
    assert f"quarantine entry {ids[0]} resolved: sent again" in done
    after = ok(run_cli("quarantine", warehouse=path))
    assert f"[{ids[0]}]" not in after and f"[{ids[1]}]" in after, after
    both = ok(run_cli("quarantine", "--all", warehouse=path))
    assert f"[{ids[0]}]" in both and "[resolved: sent again]" in both, both
    again = run_cli("quarantine", "resolve", ids[0], warehouse=path)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
    unknown = run_cli("quarantine", "resolve", 999_999, warehouse=path)
    assert unknown.returncode == 2 and "999999" in unknown.stderr, unknown.stderr
