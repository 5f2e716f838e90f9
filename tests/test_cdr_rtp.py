"""A CDR's ``rtp`` in the warehouse: typed by the contract's keys at ingest (migration 008)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

import ratelab
from ratelab.ingest import ingest_spool
from ratelab.migrations import MIGRATIONS_DIR, available, current_version, migrate
from switch.contract import RTP_COUNTERS, RTP_ENCRYPTION, RTP_LEGS
from tests.helpers import contract_cdr, write_jsonl

START = "2026-03-01T10:00:00.000000Z"
FULL = {leg: {**{c: 10 * i + k for k, c in enumerate(RTP_COUNTERS)}, RTP_ENCRYPTION: i}
        for i, leg in enumerate(RTP_LEGS, start=1)}


def _cdr(cdr_id: str, rtp: object) -> dict:
    record = contract_cdr(cdr_id, "447700900001", START, 60_000)
    record["rtp"] = rtp
    return record


def _rtp(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    return dict(con.execute("SELECT cdr_id, rtp FROM cdrs").fetchall())


def test_rtp_is_stored_as_the_contracts_struct(warehouse: ratelab.Warehouse,
                                               tmp_path: Path) -> None:
    with_unknown = {"customer": {"packets_in": 5, "jitter_ms": 3}, "mos": 4.1}
    write_jsonl(tmp_path / "spool" / "a.jsonl", [
        _cdr("full", FULL), _cdr("customer-only", {"customer": {"packets_in": 7}}),
        _cdr("none", None), _cdr("unknown-keys", with_unknown)])
    assert warehouse.ingest(tmp_path / "spool").added == 4

    with warehouse.connection() as con:
        got = _rtp(con)
        legs = con.execute("SELECT rtp.vendor.bytes_out, rtp.customer.encryption FROM cdrs "
                           "WHERE cdr_id = 'full'").fetchone()
    assert got["full"] == FULL
    assert legs == (FULL["vendor"]["bytes_out"], 1)
    empty = dict.fromkeys((*RTP_COUNTERS, RTP_ENCRYPTION))
    assert got["customer-only"] == {"customer": {**empty, "packets_in": 7}, "vendor": None}
    assert got["none"] is None
    # keys the contract does not list are not stored (a v1 reader ignores them)
    assert got["unknown-keys"] == {"customer": {**empty, "packets_in": 5}, "vendor": None}


@pytest.mark.parametrize(("rtp", "reason"), [
    ({"customer": {"packets_in": "many"}}, "invalid rtp.customer.packets_in"),
    ({"vendor": [1, 2]}, "invalid rtp.vendor"),
    (5, "invalid rtp: 5"),
], ids=["counter", "leg", "rtp"])
def test_an_rtp_value_that_does_not_fit_is_quarantined_by_name(
    warehouse: ratelab.Warehouse, tmp_path: Path, rtp: object, reason: str
) -> None:
    path = write_jsonl(tmp_path / "spool" / "a.jsonl",
                       [_cdr("g1", FULL), _cdr("bad", rtp), _cdr("g2", FULL)])
    summary = warehouse.ingest(tmp_path / "spool")
    assert (summary.added, summary.quarantined) == (2, 1)
    q = warehouse.quarantine()
    assert q.select("file", "line").rows() == [(str(path), 2)]
    assert q["reason"][0].startswith(reason), q["reason"][0]


def test_migration_008_types_stored_rtp_and_keeps_what_does_not_fit(tmp_path: Path) -> None:
    old = tmp_path / "migrations_1_to_7"
    old.mkdir()
    for migration in available()[:7]:
        shutil.copy(migration.path, old / migration.path.name)
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    migrate(con, old)
    assert current_version(con) == 7
    stored = {   # as an older ratelab stored them: JSON text
        "full": json.dumps(FULL),
        "partial": '{"customer": {"packets_in": 7}}',
        "unknown-key": '{"customer": {"packets_in": 5, "jitter_ms": 3}}',
        "text-counter": '{"vendor": {"bytes_in": "12"}}',
        "not-an-object": "[1, 2]",
    }
    write_jsonl(tmp_path / "spool" / "a.jsonl", [_cdr(i, None) for i in [*stored, "null"]])
    assert ingest_spool(con, tmp_path / "spool").added == len(stored) + 1
    for cdr_id, text in stored.items():
        con.execute("UPDATE cdrs SET rtp = ? WHERE cdr_id = ?", [text, cdr_id])

    migrate(con, MIGRATIONS_DIR)
    got = _rtp(con)
    assert got["full"] == FULL
    assert got["partial"]["customer"]["packets_in"] == 7 and got["partial"]["vendor"] is None
    assert got["null"] is None
    kept = dict(con.execute("""SELECT c.cdr_id, o.rtp FROM cdr_rtp_original o
                               JOIN cdrs c USING (cdr_seq)""").fetchall())
    assert {k: json.loads(v) for k, v in kept.items()} == {
        k: json.loads(stored[k]) for k in ("unknown-key", "text-counter", "not-an-object")}
    con.close()
