"""The CDR spool writer: durable group commit, rotation, and recovery after kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ratelab
from switch.cdrlog import CdrLog, CdrWriter, recover_spool


def test_rotation_by_size_and_by_age(tmp_path: Path) -> None:
    now = [0.0]
    log = CdrLog(tmp_path, "sw1", boot="b", rotate_bytes=100, rotate_seconds=60,
                 clock=lambda: now[0])
    log.append([{"cdr_id": "x" * 120}])          # past the size: the next write rotates
    log.append([{"cdr_id": "y"}])
    now[0] = 61.0                                # past the age: the next write rotates
    log.append([{"cdr_id": "z"}])
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["cdr-sw1-b-000001.jsonl", "cdr-sw1-b-000002.jsonl", "cdr-sw1-b-000003.jsonl"]


def test_recovery_cuts_only_a_half_written_last_line(tmp_path: Path) -> None:
    whole = tmp_path / "cdr-sw1-a-000001.jsonl"
    whole.write_bytes(b'{"a":1}\n{"a":2}\n')
    torn = tmp_path / "cdr-sw1-a-000002.jsonl"
    torn.write_bytes(b'{"a":3}\n{"a":')
    result = recover_spool(tmp_path)
    assert (result.files, result.truncated_bytes) == (1, 5)
    assert whole.read_bytes() == b'{"a":1}\n{"a":2}\n' and torn.read_bytes() == b'{"a":3}\n'
    assert not list(tmp_path.glob("*.repair"))


def test_group_commit_makes_every_write_durable_in_fewer_syncs(tmp_path: Path) -> None:
    async def run() -> CdrWriter:
        writer = CdrWriter(CdrLog(tmp_path, "sw1", boot="g"))
        await asyncio.gather(*(writer.write({"cdr_id": f"c{i}"}) for i in range(300)))
        await writer.close()
        return writer

    writer = asyncio.run(run())
    lines = (tmp_path / "cdr-sw1-g-000001.jsonl").read_text().splitlines()
    assert len(lines) == 300
    assert 1 <= writer.syncs < 300


PRODUCER = """
import asyncio, sys
from switch.cdrlog import CdrLog, CdrWriter
from tests.conftest import contract_cdr

async def main():
    log = CdrLog(sys.argv[1], "sw1", rotate_bytes=50_000)
    writer = CdrWriter(log)
    async def call(k):
        while True:
            cdr = contract_cdr(log.next_id(), "447700900001", "2026-11-02T10:00:00Z", 61000)
            await writer.write(cdr)
            print("ack", cdr["cdr_id"], flush=True)
    await asyncio.gather(*(call(k) for k in range(20)))

asyncio.run(main())
"""


def test_kill_9_loses_no_acknowledged_cdr_and_duplicates_none(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", PRODUCER, str(spool)], cwd=root,
                            stdout=subprocess.PIPE, text=True, env={**os.environ,
                                                                   "PYTHONPATH": str(root)})
    acked: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        while len(acked) < 3000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("ack "):
                acked.add(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for line in proc.stdout:  # acks already printed before the kill are promises too
            if line.startswith("ack "):
                acked.add(line.split()[1])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 3000
    recover_spool(spool)
    warehouse = ratelab.connect(tmp_path / "w.duckdb")
    summary = warehouse.ingest(spool)
    assert summary.quarantined == 0 and summary.pending == 0
    ids = warehouse.sql("SELECT cdr_id FROM cdrs")["cdr_id"].to_list()
    assert len(ids) == len(set(ids)), "no duplicate CDR"
    assert acked <= set(ids), "every acknowledged CDR survived the kill"
    assert len(list(spool.glob("cdr-*.jsonl"))) > 1, "the run rotated files"
