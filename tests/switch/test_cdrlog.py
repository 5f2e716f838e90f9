"""The CDR spool writer: durable group commit, rotation, and recovery of a cut last line.

That no acknowledged CDR is lost to kill -9 is checked with ratelab's ingest, in
``tests/test_cdrlog_kill9.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

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
