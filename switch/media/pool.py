"""Which media relays the switch may use right now, sans-IO: health, round robin and ping times.

:class:`RelayPool` holds the ng addresses of the relays (ours, ``python -m switch.media run``, or
rtpengines) and decides; :class:`switch.media.control.MediaControl` does the talking and reports
back. Time is whatever monotonic ``now`` the caller passes (the switch uses ``loop.time()``).

>>> pool = RelayPool([("127.0.0.1", 2223), ("127.0.0.1", 2224)], ping_interval=5.0)
>>> pool.pick(0.0), pool.pick(0.0), pool.pick(0.0)
(('127.0.0.1', 2223), ('127.0.0.1', 2224), ('127.0.0.1', 2223))
>>> pool.failed(("127.0.0.1", 2224), 1.0)
True
>>> pool.pick(1.0), pool.pick(1.0)
(('127.0.0.1', 2223), ('127.0.0.1', 2223))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RelayAddress", "RelayPool", "RelayState"]

RelayAddress = tuple[str, int]
"""An ng control address, ``(host, port)``."""


@dataclass
class RelayState:
    """What the pool knows of one relay; times are the caller's monotonic ``now``.

    >>> RelayState().healthy
    True
    """

    # Presumed healthy until something fails: a pool that is never pinged still spreads calls,
    # and MediaControl.start pings every relay before the first call anyway.
    healthy: bool = True
    last_answered: float | None = None
    last_failed: float | None = None
    # -inf: every relay is due for a ping the first time due_pings is asked.
    next_ping: float = -math.inf


class RelayPool:
    """The relays, their health, round robin over the healthy ones, and when to ping which.

    ``pick`` goes round robin over the relays in the order given, skipping unhealthy ones, and
    returns None when none is healthy. ``failed`` (a request timed out, a ping got no pong)
    takes a relay out of the rotation; ``answered`` (any reply at all) puts it back.
    ``due_pings`` says which relays to ping now: every relay, healthy or not, every
    ``ping_interval`` seconds, so a relay that died is found by the pings and one that came back
    is taken again.

    >>> pool = RelayPool([("10.0.0.1", 2223)], ping_interval=5.0)
    >>> pool.due_pings(100.0), pool.due_pings(101.0), pool.next_ping_at()
    ([('10.0.0.1', 2223)], [], 105.0)
    >>> pool.failed(("10.0.0.1", 2223), 101.0), pool.pick(101.0), pool.counts()
    (True, None, {'relays': 1, 'healthy': 0, 'unhealthy': 1})
    >>> pool.answered(("10.0.0.1", 2223), 105.1), pool.pick(105.1)
    (True, ('10.0.0.1', 2223))
    """

    def __init__(self, relays: Sequence[RelayAddress], *, ping_interval: float = 5.0) -> None:
        if not ping_interval > 0:
            raise ValueError(f"ping_interval must be positive, got {ping_interval!r}")
        self.ping_interval = ping_interval
        self.relays: tuple[RelayAddress, ...] = tuple((str(h), int(p)) for h, p in relays)
        if len(set(self.relays)) != len(self.relays):
            # A relay listed twice would get twice the calls and make "which relay" ambiguous.
            raise ValueError(f"a relay is listed twice: {list(self.relays)}")
        self._states: dict[RelayAddress, RelayState] = {r: RelayState() for r in self.relays}
        self._cursor = 0  # index of the relay round robin tries first next time

    def state(self, address: RelayAddress) -> RelayState:
        """The state of one relay (KeyError if it is not in the pool).

        >>> RelayPool([("10.0.0.1", 2223)]).state(("10.0.0.1", 2223)).next_ping
        -inf
        """
        return self._states[address]

    def is_healthy(self, address: RelayAddress) -> bool:
        """Whether ``address`` is in the pool and healthy.

        >>> RelayPool([("10.0.0.1", 2223)]).is_healthy(("10.0.0.2", 2223))
        False
        """
        state = self._states.get(address)
        return state is not None and state.healthy

    def healthy(self) -> list[RelayAddress]:
        """The healthy relays, in pool order.

        >>> RelayPool([("10.0.0.1", 1), ("10.0.0.1", 2)]).healthy()
        [('10.0.0.1', 1), ('10.0.0.1', 2)]
        """
        return [r for r in self.relays if self._states[r].healthy]

    def counts(self) -> dict[str, int]:
        """How many relays there are, healthy and not.

        >>> RelayPool([]).counts()
        {'relays': 0, 'healthy': 0, 'unhealthy': 0}
        """
        healthy = sum(1 for state in self._states.values() if state.healthy)
        return {"relays": len(self.relays), "healthy": healthy,
                "unhealthy": len(self.relays) - healthy}

    def pick(self, now: float) -> RelayAddress | None:
        """The next healthy relay round robin, or None when no relay is healthy.

        ``now`` is unused today; it is part of the signature so a later policy (back-off,
        weights by load) needs no change at the callers.

        >>> RelayPool([]).pick(0.0) is None
        True
        """
        count = len(self.relays)
        for step in range(count):  # at most one lap
            index = (self._cursor + step) % count
            relay = self.relays[index]
            if self._states[relay].healthy:
                self._cursor = (index + 1) % count
                return relay
        return None

    def failed(self, address: RelayAddress, now: float) -> bool:
        """Mark ``address`` unhealthy; True if it was healthy (worth a log line).

        >>> pool = RelayPool([("10.0.0.1", 2223)])
        >>> pool.failed(("10.0.0.1", 2223), 3.0), pool.failed(("10.0.0.1", 2223), 4.0)
        (True, False)
        """
        state = self._states[address]
        was_healthy = state.healthy
        state.healthy = False
        state.last_failed = now
        return was_healthy

    def answered(self, address: RelayAddress, now: float) -> bool:
        """Mark ``address`` healthy (it replied); True if it was unhealthy (worth a log line).

        >>> RelayPool([("10.0.0.1", 2223)]).answered(("10.0.0.1", 2223), 3.0)
        False
        """
        state = self._states[address]
        was_unhealthy = not state.healthy
        state.healthy = True
        state.last_answered = now
        return was_unhealthy

    def due_pings(self, now: float) -> list[RelayAddress]:
        """The relays to ping now; each is then not due again for ``ping_interval`` seconds.

        Unhealthy relays are pinged on the same schedule: their pong is how they come back.

        >>> pool = RelayPool([("10.0.0.1", 1), ("10.0.0.1", 2)], ping_interval=5.0)
        >>> len(pool.due_pings(0.0)), len(pool.due_pings(4.9)), len(pool.due_pings(5.0))
        (2, 0, 2)
        """
        due = [r for r in self.relays if self._states[r].next_ping <= now]
        for relay in due:
            # From now, not from the old due time: a loop that woke late pings once, not in bursts.
            self._states[relay].next_ping = now + self.ping_interval
        return due

    def next_ping_at(self) -> float | None:
        """When the next ping is due (None for an empty pool): how long a ping loop may sleep.

        >>> RelayPool([("10.0.0.1", 1)]).next_ping_at()
        -inf
        """
        if not self.relays:
            return None
        return min(state.next_ping for state in self._states.values())
