"""Local media relay processes that the switch starts itself (``python -m switch.media run``).

:func:`start_workers` starts ``count`` relays on this machine, each with its own ng control port
on 127.0.0.1 and its own slice of the media port range, and returns once every one has printed
its ready line; :meth:`Workers.stop` ends them. Their ``addresses`` go to
:class:`switch.media.control.MediaControl`.

A worker that dies later is not restarted: the control's pings (or a request's timeout) mark it
unhealthy and new calls go to the others; its calls lose their media. Restarting is left to a
later change (a restarted relay would have a new control port and no calls anyway).

The workers' stderr (their log) is copied line by line to the switch's stderr, each line prefixed
with ``media worker N:``, so the pipes never fill and the operator sees one log. The copying runs
on the event loop that started the workers: stop them on that loop.

>>> split_port_range(2, 10000, 20000)
[(10000, 14999), (15000, 19999)]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from switch.media.ng import parse_address
from switch.media.pool import RelayAddress

__all__ = ["Workers", "split_port_range", "start_workers"]

log = logging.getLogger("switch.media.workers")

# The package root: put first on the workers' PYTHONPATH so they run this very code, whatever the
# interpreter and the working directory.
_ROOT = Path(__file__).resolve().parents[2]
# Lines of a worker's stderr kept for the error message when it fails to start.
_TAIL_LINES = 20
# The control port is chosen here (the relay's command line does not take port 0): bind, read,
# close, pass it on. Another process may take it in between; then the worker says "Address
# already in use" and is started again on another port, this many times in all.
_PORT_ATTEMPTS = 3
_READY = re.compile(r"relay ready: ng (\S+) ")


def split_port_range(count: int, port_min: int, port_max: int) -> list[tuple[int, int]]:
    """``count`` slices of the even/odd port pairs of [port_min, port_max], as even as can be.

    Each slice starts on an even port and ends on an odd one (whole RTP/RTCP pairs); the first
    slices get one pair more when the pairs do not divide evenly. ValueError if some slice would
    get no pair.

    >>> split_port_range(3, 10001, 10014)
    [(10002, 10005), (10006, 10009), (10010, 10013)]
    >>> split_port_range(2, 10000, 10002)
    Traceback (most recent call last):
    ...
    ValueError: ports 10000-10002 hold 1 even/odd pairs, fewer than 2 workers
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    first = port_min + port_min % 2
    pairs = max(0, (port_max - first + 1) // 2)
    if pairs < count:
        raise ValueError(
            f"ports {port_min}-{port_max} hold {pairs} even/odd pairs, fewer than {count} workers")
    base, extra = divmod(pairs, count)
    slices = []
    start = first
    for index in range(count):
        size = base + (1 if index < extra else 0)
        slices.append((start, start + 2 * size - 1))
        start += 2 * size
    return slices


class _Worker:
    """One relay process, the tasks copying its output, and the tail of its stderr."""

    def __init__(self, index: int, process: asyncio.subprocess.Process) -> None:
        self.index = index
        self.process = process
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.address: RelayAddress | None = None
        assert process.stderr is not None
        self.copier = asyncio.get_running_loop().create_task(self._copy_stderr(process.stderr))
        self.drainer: asyncio.Task[None] | None = None

    async def _copy_stderr(self, stream: asyncio.StreamReader) -> None:
        # Bounded by the process: readline returns b"" at EOF, when it has exited.
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the reader's limit: it is dropped, the rest goes on
                line = b"(an overlong line was dropped)\n"
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            self.tail.append(text)
            # A closed or broken stderr of ours must not stop the draining (the pipe would fill).
            with contextlib.suppress(OSError, ValueError):
                print(f"media worker {self.index}: {text}", file=sys.stderr, flush=True)

    def drain_stdout(self) -> None:
        # After the ready line the relay prints nothing, but a full pipe would block it: read on.
        stream = self.process.stdout
        assert stream is not None

        async def drain() -> None:
            while await stream.read(65536):
                pass

        self.drainer = asyncio.get_running_loop().create_task(drain())

    async def stop(self, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL and reap; then the copiers end."""
        process = self.process
        if process.returncode is None:
            if not _has_exited(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()  # SIGKILL cannot be refused: this returns
        for task in (self.copier, self.drainer):
            if task is None:
                continue
            # The pipes reach EOF once the process is gone; a grandchild holding them open
            # must not hold us up.
            try:
                await asyncio.wait_for(task, 1.0)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:  # a copier that failed has nothing left to do
                log.exception("media worker %d: copying its output failed", self.index)

    def stderr_tail(self) -> str:
        return "\n".join(self.tail) or "(no output)"


class Workers:
    """The running relay subprocesses: their ng ``addresses`` and ``pids``, and ``stop``.

    Usable as ``async with``, which stops them on the way out. Dead workers are not restarted
    (see the module docstring).
    """

    def __init__(self, workers: Sequence[_Worker]) -> None:
        self._workers = list(workers)
        self.addresses: list[RelayAddress] = [w.address for w in self._workers if w.address]
        self.pids: list[int] = [w.process.pid for w in self._workers]

    async def __aenter__(self) -> Workers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def running(self) -> list[int]:
        """The pids of the workers that have not exited (as far as the event loop has seen)."""
        return [w.process.pid for w in self._workers if w.process.returncode is None]

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every worker, wait up to ``timeout`` s, SIGKILL the rest; all are reaped."""
        # Shielded: a cancelled caller must not leave a process behind half-stopped.
        await asyncio.shield(asyncio.gather(*(w.stop(timeout) for w in self._workers)))


async def start_workers(
    count: int,
    *,
    address: str,
    port_min: int,
    port_max: int,
    python: str = sys.executable,
    log_level: str = "WARNING",
    ready_timeout: float = 10.0,
) -> Workers:
    """Start ``count`` relays on 127.0.0.1 control ports with media on ``address``.

    The media ports [port_min, port_max] are split between them by :func:`split_port_range`.
    Returns once every worker printed its ready line. If one exits or is not ready within
    ``ready_timeout`` seconds, every worker is stopped and RuntimeError says which one and ends
    with the tail of its stderr. ValueError for a range too small for ``count``.

    >>> from switch.media import MediaControl
    >>> async def demo() -> int:
    ...     async with await start_workers(2, address="127.0.0.1",
    ...                                    port_min=31540, port_max=31559) as workers:
    ...         control = MediaControl(workers.addresses)
    ...         await control.start()
    ...         await control.close()
    ...     return control.stats()["relays_healthy"]
    >>> asyncio.run(demo())
    2
    """
    ranges = split_port_range(count, port_min, port_max)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    results = await asyncio.gather(
        *(_start_one(index, address, low, high, python, log_level, ready_timeout, env)
          for index, (low, high) in enumerate(ranges)),
        return_exceptions=True,
    )
    started = [r for r in results if isinstance(r, _Worker)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await Workers(started).stop()
        first = errors[0]
        if isinstance(first, RuntimeError) or not isinstance(first, Exception):
            raise first
        raise RuntimeError(f"cannot start media workers: {first}") from first
    return Workers(started)


def _has_exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it (the event loop's watcher does).

    Needed because Popen.terminate() polls first (bpo-38630): on a child that exited but whose
    exit the loop has not seen yet, that poll reaps it behind the watcher's back, and the
    watcher then reports exit status 255 instead of the real one.
    """
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # not on every platform; the race then only costs a wrong exit status
        return False
    try:
        return waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # already reaped


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the switch dies, even by kill -9 (Linux
    PR_SET_PDEATHSIG), so no orphaned relay keeps its ports from the next start."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


async def _start_one(
    index: int, address: str, low: int, high: int, python: str, log_level: str,
    ready_timeout: float, env: dict[str, str],
) -> _Worker:
    for attempt in range(_PORT_ATTEMPTS):
        worker = await _spawn(index, address, low, high, python, log_level, ready_timeout, env)
        if worker.address is not None:
            return worker
        in_use = os.strerror(errno.EADDRINUSE) in worker.stderr_tail()
        if not in_use or attempt + 1 == _PORT_ATTEMPTS:
            raise RuntimeError(
                f"media worker {index} (ports {low}-{high}) did not start "
                f"(exit status {worker.process.returncode}); its stderr:\n{worker.stderr_tail()}")
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def _spawn(
    index: int, address: str, low: int, high: int, python: str, log_level: str,
    ready_timeout: float, env: dict[str, str],
) -> _Worker:
    """Run one worker and wait for its ready line; on failure it is stopped and has no address."""
    command = [python, "-m", "switch.media", "run",
               "--listen-ng", f"127.0.0.1:{_free_udp_port('127.0.0.1')}",
               "--address", address, "--port-min", str(low), "--port-max", str(high),
               "--log-level", log_level]
    process = await asyncio.create_subprocess_exec(
        *command, preexec_fn=_die_with_parent,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    worker = _Worker(index, process)
    assert process.stdout is not None
    try:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), ready_timeout)
        except TimeoutError:
            worker.tail.append(f"(no ready line within {ready_timeout:g} s)")
            line = b""
        match = _READY.match(line.decode("utf-8", errors="replace"))
        if match is not None:
            worker.address = parse_address(match.group(1))
            worker.drain_stdout()
            return worker
        if line:
            worker.tail.append(f"(unexpected output: {line[:200]!r})")
    except BaseException:
        # Cancelled while waiting: nothing else knows this process, so end it here.
        await asyncio.shield(worker.stop(1.0))
        raise
    await worker.stop(1.0)
    return worker
