"""The switch's media control client: per-call ng requests to a pool of relays, asyncio side.

The call engine asks for media work as ng command dictionaries for one call (``offer``,
``answer``, ``delete``...); :class:`MediaControl` carries them out against the relays of a
:class:`~switch.media.pool.RelayPool` and hands back the reply or None. Relay trouble never
raises: the engine gets None and decides what it means for the call.

A call sticks to the relay its first request went to (the relay holds its ports), and its requests
run one after the other in the order they were made, so an ``answer`` never overtakes its
``offer`` and the results reach the engine in the order it asked. Different calls run
concurrently. A ``delete`` forgets the call.

>>> from switch.media import Relay
>>> async def demo() -> object:
...     relay = Relay("127.0.0.1", port_min=31520, port_max=31539)
...     control = MediaControl([await relay.start("127.0.0.1", 0)], timeout=1.0)
...     await control.start()
...     reply = await control.request("c1", {"command": "delete", "call-id": "c1"})
...     await control.close()
...     await relay.close()
...     return reply
>>> asyncio.run(demo())
{'result': 'ok', 'warning': "Call-ID not found or tags didn't match"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from switch.media.ng import NgClient, NgError, NgTimeoutError
from switch.media.pool import RelayAddress, RelayPool

__all__ = ["MediaControl"]

log = logging.getLogger("switch.media.control")

# The NgClient sends a request this many times within the timeout (the relay answers a
# retransmission from its cache, never running it twice).
_ATTEMPTS = 3


class _CallQueue:
    """The requests of one call that are running or waiting: a FIFO lock and how many hold it.

    asyncio.Lock wakes its waiters first-come first-served, and ``request`` takes it before its
    first await, so requests run in the order ``request`` was called.
    """

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class MediaControl:
    """Requests for calls to a pool of ng relays, with per-call affinity, order and health.

    ``start`` pings every relay once (concurrently) and starts pinging them every
    ``ping_interval`` seconds; ``request`` runs one ng command for a call and returns the reply
    dictionary when its ``result`` is ``ok`` (or ``pong``), else None; ``close`` stops the pings
    and closes the sockets; ``stats`` gives counters for the switch.

    None comes back, with one log line naming the call, the relay and the reason, when the relay
    replied ``result: error``, did not reply within ``timeout`` (the relay is then marked
    unhealthy until it answers a ping), the socket failed (also marks it unhealthy), no relay is
    healthy for a new call, or the call's relay is unhealthy (then at once, without sending: its
    ports are on that relay, no other relay can take over the call). A request takes about
    ``timeout`` at most once it is its call's turn.

    Every call that made a request must end with a ``delete`` (even after a failure): that is
    what frees its entry in the affinity map.
    """

    def __init__(
        self,
        relays: Sequence[RelayAddress],
        *,
        timeout: float = 1.0,
        ping_interval: float = 5.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.pool = RelayPool(relays, ping_interval=ping_interval)
        self.timeout = timeout
        self._clients: dict[RelayAddress, NgClient] = {
            relay: NgClient(relay, timeout=timeout, attempts=_ATTEMPTS)
            for relay in self.pool.relays
        }
        self._affinity: dict[str, RelayAddress] = {}  # call-id -> its relay, until its delete
        self._queues: dict[str, _CallQueue] = {}  # call-id -> requests running or waiting
        self._pinging: set[RelayAddress] = set()  # pings in flight: never two to one relay
        self._tasks: set[asyncio.Task[None]] = set()
        self._ping_loop: asyncio.Task[None] | None = None
        self._closed = False
        self._counters = {"requests": 0, "failures": 0, "timeouts": 0, "errors": 0,
                          "socket_errors": 0, "unavailable": 0, "pings": 0, "ping_failures": 0}

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Ping every relay once, concurrently, then keep pinging them in the background."""
        if self._closed or self._ping_loop is not None:
            raise RuntimeError("MediaControl.start: already started or closed")
        now = self._now()
        await asyncio.gather(*(self._ping(relay) for relay in self.pool.due_pings(now)))
        counts = self.pool.counts()
        if counts["relays"] and not counts["healthy"]:
            log.warning("no media relay answers: %s", _names(self.pool.relays))
        self._ping_loop = asyncio.get_running_loop().create_task(self._pings())

    async def close(self) -> None:
        """Stop pinging and close the sockets; requests still in flight return None."""
        self._closed = True
        tasks = [*self._tasks, *([self._ping_loop] if self._ping_loop is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ping_loop = None
        for client in self._clients.values():
            client.close()

    # --- requests ---------------------------------------------------------------------------------

    async def request(
        self, call_id: str, command: Mapping[str, object]
    ) -> dict[str, object] | None:
        """Run ``command`` for ``call_id`` on the call's relay; the reply, or None (see the class).

        ``command["call-id"]`` is set to ``call_id`` when it is missing. Only a bug (a command
        that cannot be encoded) raises; cancelling the caller cancels the request.
        """
        # The queue entry is taken before the first await: the order of request() calls is the
        # order in which the call's requests run.
        queue = self._queues.get(call_id)
        if queue is None:
            queue = self._queues[call_id] = _CallQueue()
        queue.users += 1
        try:
            async with queue.lock:
                return await self._run(call_id, command)
        finally:
            queue.users -= 1
            if queue.users == 0 and self._queues.get(call_id) is queue:
                del self._queues[call_id]

    async def _run(
        self, call_id: str, command: Mapping[str, object]
    ) -> dict[str, object] | None:
        self._counters["requests"] += 1
        name = str(command.get("command", "request"))
        is_delete = name == "delete"
        try:
            relay = self._affinity.get(call_id)
            if self._closed:
                self._fail("unavailable", call_id, name, relay, "media control is closed")
                return None
            if relay is None:
                relay = self.pool.pick(self._now())
                if relay is None:
                    self._fail("unavailable", call_id, name, None, "no healthy media relay")
                    return None
                self._affinity[call_id] = relay
            elif not self.pool.is_healthy(relay):
                self._fail("unavailable", call_id, name, relay, "the call's relay is down")
                return None
            message = dict(command)
            message.setdefault("call-id", call_id)
            try:
                reply = await self._clients[relay].request(message)
            except NgTimeoutError as exc:
                if self.pool.failed(relay, self._now()):
                    log.warning("media relay %s marked down: no reply to %s", _name(relay), name)
                self._fail("timeouts", call_id, name, relay, exc.reason)
                return None
            except NgError as exc:
                if exc.reason != "client closed":  # our own close, not the relay's doing
                    self._answered(relay)
                self._fail("errors", call_id, name, relay, exc.reason)
                return None
            except OSError as exc:
                if self.pool.failed(relay, self._now()):
                    log.warning("media relay %s marked down: %s", _name(relay), exc)
                self._fail("socket_errors", call_id, name, relay, str(exc))
                return None
            self._answered(relay)
            result: dict[str, object] = dict(reply)  # the engine's type; values are BValues
            return result
        finally:
            if is_delete:  # ok or not, the call is over for us
                self._affinity.pop(call_id, None)

    def _fail(
        self, kind: str, call_id: str, command: str, relay: RelayAddress | None, reason: str
    ) -> None:
        self._counters[kind] += 1
        self._counters["failures"] += 1
        where = _name(relay) if relay is not None else "-"
        log.warning("media %s for call %s on relay %s failed: %s", command, call_id, where, reason)

    def _answered(self, relay: RelayAddress) -> None:
        if self.pool.answered(relay, self._now()):
            log.warning("media relay %s answers again", _name(relay))

    # --- health -----------------------------------------------------------------------------------

    async def _ping(self, relay: RelayAddress) -> None:
        if relay in self._pinging:
            return  # the previous ping is still waiting (timeout longer than the interval)
        self._pinging.add(relay)
        self._counters["pings"] += 1
        try:
            await self._clients[relay].ping()
        except (NgError, OSError) as exc:
            self._counters["ping_failures"] += 1
            if self.pool.failed(relay, self._now()):
                log.warning("media relay %s marked down: ping failed: %s", _name(relay), exc)
        else:
            self._answered(relay)
        finally:
            self._pinging.discard(relay)

    async def _pings(self) -> None:
        # Runs until close() cancels it; each lap sleeps until the next ping is due, so the lap
        # count is bounded by the run time over the ping interval.
        loop = asyncio.get_running_loop()
        while not self._closed:
            due_at = self.pool.next_ping_at()
            if due_at is None:
                return  # no relays: nothing will ever be due
            await asyncio.sleep(max(0.0, due_at - loop.time()))
            for relay in self.pool.due_pings(loop.time()):
                task = loop.create_task(self._ping(relay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # --- observation ------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters for the switch: requests and why some returned None, pings, relay health.

        ``failures`` = ``timeouts`` + ``errors`` (``result: error`` or an unusable reply) +
        ``socket_errors`` + ``unavailable`` (no healthy relay, the call's relay down, closed).
        ``calls``: calls with a relay (until their delete); ``queued_calls``: calls with a request
        running or waiting.

        >>> stats = MediaControl([("127.0.0.1", 9)]).stats()
        >>> stats["requests"], stats["relays"], stats["relays_healthy"], stats["calls"]
        (0, 1, 1, 0)
        """
        counts = self.pool.counts()
        return {**self._counters, "calls": len(self._affinity), "queued_calls": len(self._queues),
                "relays": counts["relays"], "relays_healthy": counts["healthy"],
                "relays_unhealthy": counts["unhealthy"]}

    async def ports_in_use(self) -> int | None:
        """Media ports in use over the healthy relays, from their ng ``statistics`` (our
        relay's ``ratelab-ports``); None when none reports it (rtpengine does not) or answers.
        """
        total: int | None = None
        for relay in self.pool.healthy():
            try:
                reply = await self._clients[relay].request({"command": "statistics"})
            except (NgError, OSError):
                continue
            ports = reply.get("ratelab-ports")
            used = ports.get("in use") if isinstance(ports, Mapping) else None
            if isinstance(used, int):
                total = (total or 0) + used
        return total

    def relay_of(self, call_id: str) -> RelayAddress | None:
        """The relay ``call_id`` sticks to, None before its first request and after its delete.

        >>> MediaControl([("127.0.0.1", 9)]).relay_of("c1") is None
        True
        """
        return self._affinity.get(call_id)

    @staticmethod
    def _now() -> float:
        # The loop's clock, as the switch's engine uses: one monotonic clock for everything.
        return asyncio.get_running_loop().time()


def _name(relay: RelayAddress) -> str:
    host, port = relay
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _names(relays: Sequence[RelayAddress]) -> str:
    return ", ".join(_name(relay) for relay in relays) or "(none)"
