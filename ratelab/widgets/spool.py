"""Live statistics from a switch's CDR spool: completed calls per second, ASR, concurrency.

The switch writes one JSON line per call into ``cdr-<switch>-<boot>-<n>.jsonl`` files when the
call *ends* (docs/cdr.md; the names and the torn-line rule come from :mod:`switch.contract`).
:class:`SpoolTail` reads only what was appended since its last look (it remembers each file's
offset), holds back a half-written last line until it is complete, and keeps the recent calls;
:func:`spool_stats` turns them into numbers.

Because a CDR appears only when its call has ended, everything here counts ended calls:
"concurrent" is a lower bound (calls still in progress have no CDR yet), and attempts that
started in the window but have not ended are not counted yet.

>>> import tempfile, json
>>> spool = Path(tempfile.mkdtemp())
>>> cdr = {"cdr_id": "a", "start_ts": "2026-11-02T10:00:00Z", "end_ts": "2026-11-02T10:00:30Z",
...        "duration_ms": 25000, "sip_code": 200}
>>> _ = (spool / "cdr-sw1-b1-000001.jsonl").write_text(json.dumps(cdr) + "\\n")
>>> stats = spool_stats(spool, now=datetime(2026, 11, 2, 10, 0, 40), window_s=60)
>>> stats.calls, stats.answered, stats.asr, stats.concurrent_peak
(1, 1, 1.0, 1)
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from switch.contract import CDR_FILE_GLOB, split_complete

__all__ = ["SpoolStats", "SpoolTail", "spool_figure", "spool_stats"]

_EPOCH = datetime(1970, 1, 1)


def _seconds(text: str) -> float:
    """An RFC 3339 timestamp as seconds since the epoch (naive = UTC)."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return (when - _EPOCH).total_seconds()


def _naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


@dataclass
class SpoolTail:
    """Incremental reader of a CDR spool directory; ``poll()`` reads what is new.

    Calls are kept while they ended less than ``retain_s`` seconds before the newest end seen;
    files not touched for ``retain_s`` seconds when first found are skipped (old history is not
    read at all). Duplicate ``cdr_id`` s (a file rewritten by the switch's crash recovery) are
    counted once. Thread-safe.

    >>> import tempfile
    >>> spool = Path(tempfile.mkdtemp())
    >>> tail = SpoolTail(spool)
    >>> _ = (spool / "cdr-sw1-b1-000001.jsonl").write_text('{"cdr_id": "a", "start_ts": ')
    >>> tail.poll(), tail.pending_bytes
    (0, 28)
    """

    spool_dir: Path
    retain_s: float = 3600.0
    offsets: dict[Path, int] = field(default_factory=dict)
    lines: int = 0
    bad_lines: int = 0
    pending_bytes: int = 0
    _starts: list[float] = field(default_factory=list, repr=False)
    _ends: list[float] = field(default_factory=list, repr=False)
    _answered_ends: list[float] = field(default_factory=list, repr=False)
    _seen: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.spool_dir = Path(self.spool_dir)

    def poll(self) -> int:
        """Read the complete lines appended since the last poll; return how many calls were
        added. A torn last line stays unread (``pending_bytes``) until its newline arrives."""
        added, pending = 0, 0
        with self._lock:
            files = sorted(self.spool_dir.glob(CDR_FILE_GLOB)) if self.spool_dir.is_dir() else []
            for path in files:
                try:
                    info = path.stat()
                except OSError:  # rotated away or being repaired: next poll
                    continue
                size, offset = info.st_size, self.offsets.get(path)
                if offset is None:
                    old = datetime.now(UTC).timestamp() - info.st_mtime > self.retain_s
                    offset = size if old else 0
                if size < offset:  # rewritten (crash recovery): read again, ids dedupe
                    offset = 0
                if size > offset:
                    with path.open("rb") as fh:
                        fh.seek(offset)
                        data = fh.read(size - offset)
                    complete, torn = split_complete(data)
                    added += self._ingest(complete)
                    offset += len(complete)
                    pending += len(torn)
                self.offsets[path] = offset
            self.pending_bytes = pending
            self._prune()
        return added

    def _ingest(self, data: bytes) -> int:
        added = 0
        for raw in data.splitlines():
            if not raw.strip():
                continue
            self.lines += 1
            try:
                cdr = json.loads(raw)
                cdr_id = str(cdr["cdr_id"])
                start = _seconds(cdr["start_ts"])
                end = _seconds(cdr["end_ts"]) if cdr.get("end_ts") else start
                answered = int(cdr.get("duration_ms") or 0) > 0
            except (ValueError, KeyError, TypeError):
                self.bad_lines += 1
                continue
            if cdr_id in self._seen:
                continue
            end = max(end, start)
            self._seen[cdr_id] = end
            insort(self._starts, start)
            insort(self._ends, end)
            if answered:
                insort(self._answered_ends, end)
            added += 1
        return added

    def _prune(self) -> None:
        if not self._ends:
            return
        horizon = self._ends[-1] - self.retain_s
        if self._ends[0] >= horizon:
            return
        keep = {k: e for k, e in self._seen.items() if e >= horizon}
        self._seen = keep
        self._ends = self._ends[bisect_left(self._ends, horizon):]
        self._answered_ends = self._answered_ends[bisect_left(self._answered_ends, horizon):]
        # starts are not linked to ends: drop as many of the earliest starts as calls were
        # dropped. For every t >= horizon the count of starts <= t is still exact, since all
        # dropped calls (and so the k earliest starts) started before the horizon.
        self._starts = self._starts[len(self._starts) - len(self._ends):]

    def stats(self, now: datetime | None = None, window_s: int = 60) -> SpoolStats:
        """Numbers over the ``window_s`` whole seconds before ``now`` (naive = UTC; default
        the current time) from the calls read so far (call :meth:`poll` first)."""
        if window_s < 1:
            raise ValueError(f"window_s must be at least 1, got {window_s}")
        moment = _naive_utc(now) if now is not None else datetime.now(UTC).replace(tzinfo=None)
        last = int((moment - _EPOCH).total_seconds())  # the window ends at a whole second
        first = last - window_s
        seconds, completed, answered, concurrent = [], [], [], []
        with self._lock:
            for t in range(first, last):
                seconds.append(_EPOCH + timedelta(seconds=t))
                completed.append(bisect_left(self._ends, t + 1) - bisect_left(self._ends, t))
                answered.append(bisect_left(self._answered_ends, t + 1)
                                - bisect_left(self._answered_ends, t))
                # start <= t < end; every call with end <= t also has start <= t
                concurrent.append(bisect_right(self._starts, t) - bisect_right(self._ends, t))
            files, lines, bad, pending = (len(self.offsets), self.lines, self.bad_lines,
                                          self.pending_bytes)
        per_second = pl.DataFrame(
            {"second": seconds, "completed": completed, "answered": answered,
             "concurrent": concurrent},
            schema={"second": pl.Datetime("us"), "completed": pl.Int64,
                    "answered": pl.Int64, "concurrent": pl.Int64})
        calls, ok = sum(completed), sum(answered)
        return SpoolStats(
            now=_EPOCH + timedelta(seconds=last), window_s=window_s, calls=calls, answered=ok,
            asr=ok / calls if calls else None, cps=calls / window_s,
            concurrent=concurrent[-1], concurrent_peak=max(concurrent),
            per_second=per_second, files=files, lines=lines, bad_lines=bad,
            pending_bytes=pending)


@dataclass(frozen=True)
class SpoolStats:
    """What :func:`spool_stats` found. ``now`` is the window's (exclusive) end, a whole second.

    ``calls``: CDRs that ended in the window; ``answered``: those with a duration; ``asr``:
    answered / calls (None without calls); ``cps``: calls / window_s (completed calls per
    second); ``concurrent``: calls in progress at the start of the window's last second and
    ``concurrent_peak`` the most at any second (both lower bounds: only ended calls have
    CDRs); ``per_second``: second, completed, answered, concurrent; ``files``, ``lines``,
    ``bad_lines`` (unparsable, skipped), ``pending_bytes`` (a torn last line held back).
    """

    now: datetime
    window_s: int
    calls: int
    answered: int
    asr: float | None
    cps: float
    concurrent: int
    concurrent_peak: int
    per_second: pl.DataFrame
    files: int
    lines: int
    bad_lines: int
    pending_bytes: int

    def summary(self) -> pl.DataFrame:
        """The scalar figures as a one-row frame (for a table).

        >>> import tempfile
        >>> spool_stats(tempfile.mkdtemp(), now=datetime(2026, 1, 1)).summary()["calls"][0]
        0
        """
        return pl.DataFrame([{
            "now": self.now, "window_s": self.window_s, "calls": self.calls,
            "answered": self.answered, "asr": self.asr, "cps": self.cps,
            "concurrent": self.concurrent, "concurrent_peak": self.concurrent_peak,
            "files": self.files, "bad_lines": self.bad_lines}],
            schema_overrides={"asr": pl.Float64, "cps": pl.Float64})


_TAILS: dict[Path, SpoolTail] = {}
_TAILS_LOCK = threading.Lock()


def spool_stats(spool_dir: str | Path, *, now: datetime | None = None, window_s: int = 60,
                tail: SpoolTail | None = None) -> SpoolStats:
    """Read what is new in ``spool_dir`` and return the statistics of the ``window_s``
    seconds before ``now`` (naive = UTC; default the current time).

    Incremental: the offsets are remembered in ``tail``, or, when it is not given, in a
    :class:`SpoolTail` kept per directory for the life of the process, so calling this every
    second reads only the new lines. Concurrency is a lower bound (see the module docstring).

    >>> import tempfile
    >>> stats = spool_stats(tempfile.mkdtemp(), now=datetime(2026, 11, 2, 10, 0), window_s=5)
    >>> stats.calls, stats.asr, stats.per_second.height
    (0, None, 5)
    """
    if tail is None:
        key = Path(spool_dir).resolve()
        with _TAILS_LOCK:
            tail = _TAILS.setdefault(key, SpoolTail(key))
    tail.poll()
    return tail.stats(now, window_s)


def spool_figure(stats: SpoolStats) -> go.Figure:
    """Completed and answered calls per second (bars) and concurrent calls (a line).

    >>> import tempfile
    >>> fig = spool_figure(spool_stats(tempfile.mkdtemp(), now=datetime(2026, 1, 1)))
    >>> [trace.name for trace in fig.data]
    ['completed', 'answered', 'concurrent (lower bound)']
    """
    frame = stats.per_second
    x = frame["second"].to_list()
    fig = go.Figure()
    fig.add_bar(name="completed", x=x, y=frame["completed"].to_list())
    fig.add_bar(name="answered", x=x, y=frame["answered"].to_list())
    fig.add_scatter(name="concurrent (lower bound)", x=x, y=frame["concurrent"].to_list(),
                    yaxis="y2", mode="lines")
    asr = "-" if stats.asr is None else f"{stats.asr:.1%}"
    fig.update_layout(
        title=f"Last {stats.window_s} s to {stats.now:%H:%M:%S} UTC: {stats.calls} calls, "
              f"ASR {asr}, {stats.cps:.2f} cps",
        barmode="overlay", yaxis={"title": "calls per second", "rangemode": "nonnegative"},
        yaxis2={"title": "concurrent", "overlaying": "y", "side": "right",
                "rangemode": "nonnegative"},
        legend={"orientation": "h"})
    return fig
