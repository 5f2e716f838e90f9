"""The registrar's state file, written by group commit (the shell's part, like CDRs).

A 200 to a REGISTER goes out only once the binding it made is on disk. Writing the whole table
(atomic: temporary file, fsync, rename) on the event loop for every REGISTER held the switch to
about 50 registrations per second with 2,000 gateways (docs/performance.md). So:

* :class:`StateFile` keeps each binding's line of the file from the last save while the binding
  is the same object (bindings are frozen and replaced on every change), so a save encodes only
  the bindings that changed since the last one.
* :class:`GroupSave` saves in a worker thread. Changes made while a save is in flight go into the
  next save, which starts when that one ends, but no sooner than ``spacing`` seconds after that
  one began (a few milliseconds: under a registration storm, back-to-back saves of a few
  bindings each would take a core for themselves). Whatever the shell must hold until the
  bindings are durable (:meth:`GroupSave.after_saved`) runs when the save that covers them is
  done.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from operator import attrgetter
from pathlib import Path

from switch.registrar import Binding, binding_row, state_text, write_state

__all__ = ["GroupSave", "StateFile"]

log = logging.getLogger("switch")

#: Seconds the wall-clock offset may move before every cached line is encoded again. The lines
#: of one file always share one offset; this bounds how far the expiries written may lag a
#: wall-clock step (NTP slewing moves it by well under a millisecond a second).
OFFSET_SLACK = 0.001

#: Seconds from the start of one save to the start of the next, at least. A REGISTER's 200
#: waits that much longer at most; SIP's retransmission timer (T1) is 500 ms.
SAVE_SPACING = 0.01

_by_gateway = attrgetter("gateway")


class StateFile:
    """The state file at ``path``, written whole on each :meth:`save`.

    >>> import tempfile
    >>> f = StateFile(Path(tempfile.mkdtemp()) / "sw1.registrations.json")
    >>> b = Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0)
    >>> f.save([b], wall_offset=1000.0); f.save([b], wall_offset=1000.0); f.encoded
    1
    >>> from switch.registrar import load_bindings
    >>> load_bindings(f.path, 1000.0, now=0.0) == [b]
    True
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saves = 0
        self.encoded = 0  # binding lines encoded (the rest came from the cache)
        self._offset: float | None = None
        self._lines: dict[str, tuple[Binding, str]] = {}

    def text(self, bindings: Iterable[Binding], wall_offset: float) -> str:
        """The file's text (as :func:`switch.registrar.dump_bindings` would write it)."""
        if self._offset is None or abs(wall_offset - self._offset) > OFFSET_SLACK:
            self._offset, self._lines = wall_offset, {}
        offset, old = self._offset, self._lines
        lines: dict[str, tuple[Binding, str]] = {}
        for b in sorted(bindings, key=_by_gateway):
            cached = old.get(b.gateway)
            if cached is None or cached[0] is not b:
                cached = (b, binding_row(b, offset))
                self.encoded += 1
            lines[b.gateway] = cached
        self._lines = lines  # bindings gone are forgotten with their lines
        return state_text([line for _, line in lines.values()])

    def save(self, bindings: Iterable[Binding], wall_offset: float) -> None:
        """Write the file atomically (blocking: the shell runs this in a worker thread)."""
        write_state(self.path, self.text(bindings, wall_offset))
        self.saves += 1


class GroupSave:
    """Group commit of a :class:`StateFile` for the asyncio shell.

    ``snapshot()`` gives the bindings and the wall-clock offset when a save begins (on the event
    loop); the writing runs in a worker thread. A save that fails is logged and counted in
    ``errors``, and what waited for it runs all the same (the switch answers rather than holding
    its answers forever; the next change tries again).

    >>> import tempfile
    >>> f = StateFile(Path(tempfile.mkdtemp()) / "sw1.registrations.json")
    >>> b = Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0)
    >>> async def demo():
    ...     saver, done = GroupSave(f, lambda: ([b], 1000.0)), []
    ...     saver.after_saved(lambda: done.append("at once: nothing pending"))
    ...     task = saver.changed()
    ...     saver.after_saved(lambda: done.append(f"after {f.saves} save(s)"))
    ...     await task
    ...     return done
    >>> asyncio.run(demo())
    ['at once: nothing pending', 'after 1 save(s)']
    """

    def __init__(self, file: StateFile, snapshot: Callable[[], tuple[list[Binding], float]],
                 *, spacing: float = SAVE_SPACING) -> None:
        self.file = file
        self.snapshot = snapshot
        self.spacing = spacing
        self.errors = 0
        self._began = float("-inf")  # when the last save began, on the loop's clock
        self._changes = 0  # changes noted so far
        self._saved = 0    # changes on disk (or given up on: see errors)
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """True while a change is not on disk yet."""
        return self._saved < self._changes

    def changed(self) -> asyncio.Task[None] | None:
        """Note that the bindings changed. Starts the saving task unless it runs already, and
        returns it when it was started here (the caller may await it at shutdown)."""
        self._changes += 1
        if self._task is not None and not self._task.done():
            return None  # the running task saves again after its current save
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    def after_saved(self, then: Callable[[], None]) -> None:
        """Run ``then`` once every change noted so far is on disk; at once when none is
        pending. Callbacks run in the order given."""
        if not self.pending:
            then()
            return
        self._waiting.append((self._changes, then))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._saved < self._changes:
            wait = self._began + self.spacing - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # more changes join this save meanwhile
            self._began = loop.time()
            covered = self._changes
            bindings, wall_offset = self.snapshot()
            try:
                await asyncio.to_thread(self.file.save, bindings, wall_offset)
            except Exception:
                self.errors += 1
                log.exception("registrations could not be saved to %s", self.file.path)
            self._saved = covered
            while self._waiting and self._waiting[0][0] <= covered:
                _, then = self._waiting.popleft()
                try:
                    then()
                except Exception:  # one failed callback must not hold back the others
                    log.exception("after saving the registrations")
