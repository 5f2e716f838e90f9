"""Helpers shared by the ratelab tests: CDR records, spool files and the ``ratelab`` command.

Import them from here (``from tests.helpers import contract_cdr``); ``conftest.py`` holds only
fixtures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import duckdb

from ratelab.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
#: The sample rate decks (package data of ratelab).
DECKS = ROOT / "ratelab" / "data" / "decks"


def contract_cdr(
    cdr_id: str,
    callee: str,
    start: str,
    duration_ms: int,
    *,
    customer: str = "acme",
    vendor: str | None = "carrier_x",
    caller: str = "15551234567",
) -> dict:
    """A complete CDR contract (v1) record; answered when duration_ms > 0."""
    answered = duration_ms > 0
    return {
        "cdr_id": cdr_id,
        "switch_id": "test",
        "call_id": f"{cdr_id}@test",
        "caller": caller,
        "callee": callee,
        "callee_e164": callee,
        "customer": customer,
        "vendor": vendor,
        "src_ip": "127.0.0.1",
        "src_port": 5060,
        "start_ts": start,
        "answer_ts": start if answered else None,
        "end_ts": start,
        "duration_ms": duration_ms,
        "pdd_ms": 0,
        "sip_code": 200 if answered else 487,
        "disconnect_reason": "caller_bye" if answered else "no_answer",
        "attempts": [] if vendor is None else
        [{"vendor": vendor, "start_ts": start, "sip_code": 200, "pdd_ms": 0}],
        "codec": "PCMA",
        "rtp_encryption": 0,
        "rtp": {"customer": {"packets_in": 0, "packets_out": 0}},
    }


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    """Write ``records`` as JSON lines to ``path`` (folders created); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ratelab(*args: object, warehouse: Path | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ratelab.cli [--warehouse W] ARGS`` and return the finished process."""
    base_env = {k: v for k, v in os.environ.items() if k != "RATELAB_WAREHOUSE"}
    command = [sys.executable, "-m", "ratelab.cli"]
    if warehouse is not None:
        command += ["--warehouse", str(warehouse)]
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=120,
        cwd=cwd or ROOT, env={**base_env, **(env or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def query(warehouse: Path, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the warehouse file, opened read-only."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def count(warehouse: Path, sql: str) -> int:
    """The single number ``sql`` returns."""
    return int(query(warehouse, sql)[0][0])


def demo_decks_warehouse(path: Path) -> Warehouse:
    """A new warehouse at ``path`` with the sample decks imported and assigned as the demo
    assigns them (no CDRs)."""
    from ratelab.demo import ASSIGNMENTS
    from ratelab.demo import DECKS as DEMO_DECKS

    wh = Warehouse(path, create=True)
    for deck in DEMO_DECKS:
        wh.import_deck(DECKS / deck.file, deck.table, deck.side)
    for a in ASSIGNMENTS:
        if a.side == "vendor":
            wh.assign(a.table, vendor=a.party)
        else:
            wh.assign(a.table, customer=a.party, kind=a.kind)
    return wh
