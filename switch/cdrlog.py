"""The CDR spool: JSON lines appended durably, with group commit, rotation and crash recovery.

One CDR per line, in the CDR contract (v1). The switch completes a call (sends the 200 OK to a
BYE, or ends a call it tears down) only after that call's CDR is on disk: ``await
writer.write(cdr)`` returns once the line has been written and ``fsync``-ed. Writes that arrive
while a sync is running are committed together by the next one (group commit), so throughput
holds while every acknowledged CDR is durable.

Files are named ``cdr-{switch}-{boot}-{n:06d}.jsonl`` and rotate by age and size; the active
file has its final name from the start, so ``ratelab ingest`` can read the spool as it is (a
half-written last line is held back until complete). After ``kill -9`` the next start repairs
the files of earlier boots: a half-written last line is cut off, through a copy renamed over
the original (atomic), and nothing acknowledged is lost because only synced lines were
acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CdrLog", "CdrWriter", "Recovery", "recover_spool"]


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_spool` repaired."""

    files: int
    truncated_bytes: int


def recover_spool(spool_dir: str | Path) -> Recovery:
    """Cut half-written last lines off the spool's CDR files (call before writing again).

    >>> import tempfile
    >>> spool = Path(tempfile.mkdtemp())
    >>> _ = (spool / "cdr-sw1-b1-000001.jsonl").write_bytes(b'{"cdr_id": "a"}\\n{"cdr_')
    >>> recover_spool(spool)
    Recovery(files=1, truncated_bytes=6)
    >>> (spool / "cdr-sw1-b1-000001.jsonl").read_bytes()
    b'{"cdr_id": "a"}\\n'
    """
    repaired = cut = 0
    for path in sorted(Path(spool_dir).glob("cdr-*.jsonl")):
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end == len(data):
            continue
        tmp = path.with_suffix(".jsonl.repair")
        with tmp.open("wb") as fh:
            fh.write(data[:end])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_dir(path.parent)
        repaired += 1
        cut += len(data) - end
    return Recovery(repaired, cut)


class CdrLog:
    """The synchronous part: numbering, encoding, appending, syncing and rotating files.

    >>> import tempfile
    >>> log = CdrLog(tempfile.mkdtemp(), "sw1", boot="b1")
    >>> log.next_id()
    'sw1-b1-1'
    >>> log.append([{"cdr_id": "sw1-b1-1"}])
    >>> log.path.name, log.path.read_text()
    ('cdr-sw1-b1-000001.jsonl', '{"cdr_id":"sw1-b1-1"}\\n')
    >>> log.close()
    """

    def __init__(
        self,
        spool_dir: str | Path,
        switch_id: str,
        *,
        boot: str | None = None,
        rotate_seconds: float = 300.0,
        rotate_bytes: int = 64 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dir = Path(spool_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.switch_id = switch_id
        # unique per start, so cdr_ids never repeat across restarts
        self.boot = boot or f"{int(time.time()):x}{os.getpid():x}"
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        self._clock = clock
        self._seq = 0
        self._file_no = 0
        self._fh: Any = None
        self._opened_at = 0.0
        self._size = 0
        self.path = self.dir / "none"

    def next_id(self) -> str:
        """A new ``cdr_id``: switch, boot and sequence, stable across re-ingest."""
        self._seq += 1
        return f"{self.switch_id}-{self.boot}-{self._seq}"

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write records as lines and fsync them: durable when this returns."""
        if self._fh is None or self._due():
            self._rotate()
        data = b"".join(
            json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
            for r in records)
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size += len(data)

    def _due(self) -> bool:
        return (self._size >= self.rotate_bytes
                or self._clock() - self._opened_at >= self.rotate_seconds)

    def _rotate(self) -> None:
        self.close()
        self._file_no += 1
        self.path = self.dir / f"cdr-{self.switch_id}-{self.boot}-{self._file_no:06d}.jsonl"
        self._fh = self.path.open("ab", buffering=0)
        _sync_dir(self.dir)  # the new name must survive a crash too
        self._opened_at = self._clock()
        self._size = 0

    def close(self) -> None:
        """Close the active file (its contents are already synced)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class CdrWriter:
    """Group commit for the asyncio switch: ``await write(cdr)`` returns once it is durable.

    The sync runs in a worker thread so the event loop keeps carrying calls meanwhile; every
    CDR that arrives during a sync goes into the next one.
    """

    def __init__(self, log: CdrLog) -> None:
        self.log = log
        self.syncs = 0
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, record: dict[str, Any]) -> None:
        """Append one CDR; return when it is on disk."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.log.append, [r for r, _ in batch])
            except Exception as exc:  # the callers decide; nothing is acknowledged
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.syncs += 1
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        """Wait for pending CDRs to be durable, then close the file."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        self.log.close()


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
