"""The switch's CDR spool writer after kill -9: ratelab ingests every acknowledged CDR, once.

The writer's own tests (rotation, recovery, group commit) are in ``tests/switch/test_cdrlog.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ratelab
from switch.cdrlog import recover_spool

PRODUCER = """
import asyncio, sys
from switch.cdrlog import CdrLog, CdrWriter
from tests.helpers import contract_cdr

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
    warehouse = ratelab.connect(tmp_path / "w.duckdb", create=True)
    summary = warehouse.ingest(spool)
    assert summary.quarantined == 0 and summary.pending == 0
    ids = warehouse.sql("SELECT cdr_id FROM cdrs")["cdr_id"].to_list()
    assert len(ids) == len(set(ids)), "no duplicate CDR"
    assert acked <= set(ids), "every acknowledged CDR survived the kill"
    assert len(list(spool.glob("cdr-*.jsonl"))) > 1, "the run rotated files"
