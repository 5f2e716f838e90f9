"""The CDR spool: JSON lines appended durably, with group commit, rotation and crash recovery.

One CDR per line, in the CDR contract (v1). The switch completes a call (sends the 200 OK to a
BYE, or ends a call it tears down) only after that call's CDR is on disk: ``await
writer.write(cdr)`` returns once the line has been written and ``fsync``-ed. Writes that arrive
while a sync is running are committed together by the next one (group commit), so throughput
holds while every acknowledged CDR is durable.

Files are named ``cdr-{switch}-{boot}-{n:06d}.jsonl`` (:mod:`switch.contract` holds the spool's
names and its torn-last-line rule) and rotate by age and size; the active
file has its final name from the start, so ``ratelab ingest`` can read the spool as it is (a
half-written last line is held back until complete). After ``kill -9`` the next start repairs
the files of earlier boots: a half-written last line is cut off, through a copy renamed over
the original (atomic), and nothing acknowledged is lost because only synced lines were
acknowledged.

Each record is encoded on its own, so one record never fails another of its group. A record
holding text that is not UTF-8 (header bytes the SIP parser kept as surrogates) is written with
that text escaped and flagged (:mod:`switch.contract`); a record that cannot be written as JSON
at all goes, with the reason, to the boot's reject file ``rejects-{switch}-{boot}.jsonl`` in
the same directory, synced the same way. Either way it is durable and counted.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switch.contract import (
    CDR_FILE_GLOB,
    REJECT_FILE_GLOB,
    cdr_file_name,
    escape_record,
    escape_text,
    reject_file_name,
    split_complete,
)

__all__ = ["CdrLog", "CdrWriter", "Outcome", "Recovery", "recover_spool"]

_logger = logging.getLogger("switch.cdrlog")


class Outcome(enum.Enum):
    """Where a record went; every outcome is durable."""

    WRITTEN = "written"
    ESCAPED = "escaped"    # written, its non-UTF-8 text escaped and listed in ``escaped``
    REJECTED = "rejected"  # not a writable CDR: in the reject file with the reason


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_spool` repaired."""

    files: int
    truncated_bytes: int


def recover_spool(spool_dir: str | Path) -> Recovery:
    """Cut half-written last lines off the spool's CDR and reject files (call before writing).

    >>> import tempfile
    >>> spool = Path(tempfile.mkdtemp())
    >>> _ = (spool / "cdr-sw1-b1-000001.jsonl").write_bytes(b'{"cdr_id": "a"}\\n{"cdr_')
    >>> recover_spool(spool)
    Recovery(files=1, truncated_bytes=6)
    >>> (spool / "cdr-sw1-b1-000001.jsonl").read_bytes()
    b'{"cdr_id": "a"}\\n'
    """
    repaired = cut = 0
    spool = Path(spool_dir)
    for path in sorted([*spool.glob(CDR_FILE_GLOB), *spool.glob(REJECT_FILE_GLOB)]):
        complete, torn = split_complete(path.read_bytes())
        if not torn:
            continue
        tmp = path.with_suffix(".jsonl.repair")
        with tmp.open("wb") as fh:
            fh.write(complete)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_dir(path.parent)
        repaired += 1
        cut += len(torn)
    return Recovery(repaired, cut)


class CdrLog:
    """The synchronous part: numbering, encoding, appending, syncing and rotating files.

    >>> import tempfile
    >>> log = CdrLog(tempfile.mkdtemp(), "sw1", boot="b1")
    >>> log.next_id()
    'sw1-b1-1'
    >>> log.append([{"cdr_id": "sw1-b1-1"}, {"cdr_id": "sw1-b1-2", "caller": "1\\udcff"}])
    [<Outcome.WRITTEN: 'written'>, <Outcome.ESCAPED: 'escaped'>]
    >>> log.path.name
    'cdr-sw1-b1-000001.jsonl'
    >>> print(log.path.read_text(), end="")
    {"cdr_id":"sw1-b1-1"}
    {"cdr_id":"sw1-b1-2","caller":"1\\\\xff","escaped":["caller"]}
    >>> log.repaired, log.rejected
    (1, 0)
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
        self.reject_path = self.dir / reject_file_name(switch_id, self.boot)
        #: Records written with escaped text, and records sent to the reject file (durably).
        self.repaired = 0
        self.rejected = 0

    def next_id(self) -> str:
        """A new ``cdr_id``: switch, boot and sequence, stable across re-ingest."""
        self._seq += 1
        return f"{self.switch_id}-{self.boot}-{self._seq}"

    def append(self, records: list[dict[str, Any]]) -> list[Outcome]:
        """Write records as lines and fsync them: durable when this returns (else OSError)."""
        outcomes = self.commit(records)
        for outcome in outcomes:
            if isinstance(outcome, OSError):
                raise outcome
        return [o for o in outcomes if isinstance(o, Outcome)]

    def commit(self, records: list[dict[str, Any]]) -> list[Outcome | OSError]:
        """Make each record durable on its own; return, per record, where it went or the error.

        Only an I/O error fails a record: one on the CDR file fails the group's CDRs (none of
        them is acknowledged), one on the reject file only its rejects. A record's content
        never fails another record.

        >>> import tempfile
        >>> log = CdrLog(tempfile.mkdtemp(), "sw1", boot="b1")
        >>> log.commit([{"cdr_id": "a"}, {"cdr_id": "b", "x": object()}, {"cdr_id": "c"}])
        [<Outcome.WRITTEN: 'written'>, <Outcome.REJECTED: 'rejected'>, <Outcome.WRITTEN: ...>]
        >>> len(log.path.read_text().splitlines()), log.reject_path.name
        (2, 'rejects-sw1-b1.jsonl')
        >>> print(log.reject_path.read_text(), end="")  # doctest: +ELLIPSIS
        {"cdr_id":"b","reason":"TypeError: Object of type object is not JSON serializable",...}
        """
        outcomes: list[Outcome | OSError] = []
        lines: list[tuple[int, bytes]] = []
        rejects: list[tuple[int, bytes]] = []
        for i, record in enumerate(records):
            try:
                line, outcome = _encode(record)
            except Exception as exc:  # whatever the record holds, it stops here
                rejects.append((i, _reject_line(record, exc)))
                # a bug upstream (the engine made a record JSON cannot hold): say so at once
                _logger.error("CDR %r is not writable (%s: %s); it goes to %s",
                              record.get("cdr_id") if isinstance(record, dict) else None,
                              type(exc).__name__, exc, self.reject_path.name)
                outcomes.append(Outcome.REJECTED)
                continue
            lines.append((i, line))
            outcomes.append(outcome)
        if lines:
            try:
                self._write_cdrs(b"".join(line for _, line in lines))
            except OSError as err:
                for i, _ in lines:
                    outcomes[i] = err
            else:
                self.repaired += sum(outcomes[i] is Outcome.ESCAPED for i, _ in lines)
        if rejects:
            try:
                self._write_rejects(b"".join(line for _, line in rejects))
            except OSError as err:
                for i, _ in rejects:
                    outcomes[i] = err
            else:
                self.rejected += len(rejects)
        return outcomes

    def _write_cdrs(self, data: bytes) -> None:
        if self._fh is None or self._due():
            self._rotate()
        try:
            _write_all(self._fh, data)
            os.fsync(self._fh.fileno())
        except OSError:
            # The file may now end in part of a line: later lines go to a new file, so the
            # torn tail stays a last line (held back by ingest, cut by recovery) and never
            # runs into an acknowledged CDR.
            self.close()
            raise
        self._size += len(data)

    def _write_rejects(self, data: bytes) -> None:
        new = not self.reject_path.exists()
        with self.reject_path.open("ab", buffering=0) as fh:
            _write_all(fh, data)
            os.fsync(fh.fileno())
        if new:
            _sync_dir(self.dir)

    def _due(self) -> bool:
        return (self._size >= self.rotate_bytes
                or self._clock() - self._opened_at >= self.rotate_seconds)

    def _rotate(self) -> None:
        self.close()
        self._file_no += 1
        self.path = self.dir / cdr_file_name(self.switch_id, self.boot, self._file_no)
        self._fh = self.path.open("ab", buffering=0)
        _sync_dir(self.dir)  # the new name must survive a crash too
        self._opened_at = self._clock()
        self._size = 0

    def close(self) -> None:
        """Close the active file (its contents are already synced)."""
        fh, self._fh = self._fh, None  # forgotten even if close fails: the next write rotates
        if fh is not None:
            fh.close()


class CdrWriter:
    """Group commit for the asyncio switch: ``await write(cdr)`` returns once it is durable.

    The sync runs in a worker thread so the event loop keeps carrying calls meanwhile; every
    CDR that arrives during a sync goes into the next one.
    """

    def __init__(self, log: CdrLog) -> None:
        self.log = log
        self.syncs = 0
        self._pending: list[tuple[dict[str, Any], asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # Loop times the oldest waiting record came: of those queued, of the batch being written.
        self._queued_since: float | None = None
        self._writing_since: float | None = None

    def lag(self, now: float) -> float:
        """Seconds the oldest CDR not yet durable has waited (0 when none): the spool lag.

        ``now`` is the event loop's clock (``loop.time()``).
        """
        since = [t for t in (self._queued_since, self._writing_since) if t is not None]
        return max(0.0, now - min(since)) if since else 0.0

    @property
    def repaired(self) -> int:
        """CDRs written with non-UTF-8 text escaped (see :class:`Outcome`)."""
        return self.log.repaired

    @property
    def rejected(self) -> int:
        """Records put in the reject file instead of the CDR file."""
        return self.log.rejected

    async def write(self, record: dict[str, Any]) -> Outcome:
        """Append one CDR; return where it went once it is on disk (OSError if it is not).

        >>> import tempfile
        >>> async def demo():
        ...     writer = CdrWriter(CdrLog(tempfile.mkdtemp(), "sw1", boot="b1"))
        ...     got = await asyncio.gather(writer.write({"cdr_id": "a"}),
        ...                                writer.write({"cdr_id": "b", "caller": "\\udcff"}))
        ...     await writer.close()
        ...     return got, writer.repaired
        >>> asyncio.run(demo())
        ([<Outcome.WRITTEN: 'written'>, <Outcome.ESCAPED: 'escaped'>], 1)
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        if not self._pending:
            self._queued_since = loop.time()
        self._pending.append((record, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            self._writing_since, self._queued_since = self._queued_since, None
            try:
                results = await asyncio.to_thread(self.log.commit, [r for r, _ in batch])
            except Exception as exc:  # the callers decide; nothing is acknowledged
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            finally:
                self._writing_since = None
            self.syncs += 1
            for (_, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, OSError):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    async def close(self) -> None:
        """Wait for pending CDRs to be durable, then close the file."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        self.log.close()


def _encode(record: Any) -> tuple[bytes, Outcome]:
    """One record's line; its non-UTF-8 text escaped if it has any. Raises if it has no line."""
    if not isinstance(record, dict):
        raise TypeError(f"a CDR is a JSON object, not {type(record).__name__}")
    # allow_nan=False: NaN and Infinity are not JSON, and ingest could not read the line
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode() + b"\n", Outcome.WRITTEN
    except UnicodeEncodeError:
        pass
    text = json.dumps(escape_record(record), separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return text.encode() + b"\n", Outcome.ESCAPED


def _reject_line(record: Any, exc: Exception) -> bytes:
    """The reject file's line for a record: always writable, whatever the record holds."""
    cdr_id = record.get("cdr_id") if isinstance(record, dict) else None
    entry = {
        "cdr_id": escape_text(cdr_id) if isinstance(cdr_id, str) else None,
        "reason": _printable(lambda: f"{type(exc).__name__}: {exc}"),
        "record": _printable(lambda: repr(record)),
    }
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _printable(text: Callable[[], str]) -> str:
    try:
        value = text()
    except Exception as exc:  # a broken __repr__ or __str__ must not lose the reject itself
        return f"<unprintable: {type(exc).__name__}>"
    return value.encode("utf-8", "backslashreplace").decode()


def _write_all(fh: Any, data: bytes) -> None:
    # An unbuffered file's write may write less than asked (a full disk, a signal).
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
