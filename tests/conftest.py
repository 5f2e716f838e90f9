"""Shared fixtures: real DuckDB files and real spool files under pytest's tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import ratelab


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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> ratelab.Warehouse:
    return ratelab.connect(tmp_path / "warehouse.duckdb")


@pytest.fixture
def deck(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write deck text to a CSV file and return its path."""

    def make(text: str, name: str = "deck.csv") -> Path:
        path = tmp_path / "decks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return make
