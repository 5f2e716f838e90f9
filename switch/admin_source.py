"""What the running switch shows its admin API (:mod:`switch.admin`): an :class:`AdminSource`.

Everything is read from the switch's own state when a request comes: the engine's calls and
counters, the registrar's bindings, the guard's bans. Two figures need history or a relay's
answer and are kept up to date by :meth:`SwitchAdmin.tick`, which the switch calls once a
second: the calls per second (new calls over the last ``CPS_WINDOW`` seconds) and the relay
ports in use (each relay's ng ``statistics``, asked every ``PORTS_EVERY`` seconds; rtpengine does
not report ports, so a switch driving only rtpengine reports none).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from switch.admin import Snapshot
from switch.contract import DisconnectReason

if TYPE_CHECKING:
    from switch.server import Switch

__all__ = ["CPS_WINDOW", "PORTS_EVERY", "SwitchAdmin"]

#: Seconds over which ``cps`` is averaged.
CPS_WINDOW = 5.0
#: Seconds between two asks of the relays' ports in use.
PORTS_EVERY = 5.0

_REASONS = tuple(str(reason) for reason in DisconnectReason)


class SwitchAdmin:
    """The :class:`switch.admin.AdminSource` of one running :class:`switch.server.Switch`.

    ``now`` is the switch's monotonic clock (the engine's); ``wall`` the UNIX time, for the
    times it shows. Ban times are shown as UNIX seconds.

    >>> admin = SwitchAdmin.__new__(SwitchAdmin)  # the parts that need no switch
    >>> admin._samples = deque([(0.0, 10), (5.0, 60)])
    >>> admin.cps()
    10.0
    """

    def __init__(self, switch: Switch, *, now: Callable[[], float],
                 wall: Callable[[], float] = time.time) -> None:
        self.switch = switch
        self._now = now
        self._wall = wall
        self._samples: deque[tuple[float, int]] = deque()
        self.ports_in_use: int | None = None
        self._ports_at = float("-inf")

    # --- kept up to date by the switch ----------------------------------------------------------

    def tick(self) -> None:
        """Take a calls-count sample (once a second) and prune those older than the window."""
        engine = self.switch.engine
        now = self._now()
        self._samples.append((now, engine.stats["calls"] if engine is not None else 0))
        while len(self._samples) > 2 and self._samples[0][0] < now - CPS_WINDOW:
            self._samples.popleft()

    def ports_due(self) -> bool:
        """True when the relays' ports in use should be asked again (and marks it asked)."""
        now = self._now()
        if now - self._ports_at < PORTS_EVERY:
            return False
        self._ports_at = now
        return True

    def cps(self) -> float:
        """New calls per second over the samples kept (0 before two samples)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    # --- AdminSource ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        switch = self.switch
        engine = switch.engine
        counters = switch.counters()
        stats = engine.stats if engine is not None else {}
        screen = switch.screen
        drops: dict[str, int] = {}
        bans: dict[str, int] = {}
        banned = 0
        if screen is not None:
            for key, n in screen.stats.items():
                kind, _, rule = key.partition(".")
                if kind == "drop":
                    drops[rule] = n
                elif kind == "ban":
                    bans[rule] = n
            banned = len(screen.bans(self._now()))
        reported = {"calls", *_REASONS}
        return Snapshot(
            calls_by_result={reason: stats[reason] for reason in _REASONS if stats.get(reason)},
            cps=self.cps(),
            concurrent_calls=engine.active_calls if engine is not None else 0,
            registrations=len(self.registrations()),
            guard_drops=drops,
            guard_bans=bans,
            banned_now=banned,
            relay_ports_in_use=self.ports_in_use if switch.media is not None else None,
            spool_lag_seconds=(switch.writer.lag(self._now()) if switch.writer is not None
                               else 0.0),
            counters={key: n for key, n in counters.items() if key not in reported},
        )

    def calls(self) -> list[dict[str, object]]:
        engine = self.switch.engine
        if engine is None:
            return []
        offset = self._wall() - self._now()
        return [{
            "cdr_id": call.rec.cdr_id,
            "call_id": call.rec.call_id,
            "customer": call.rec.customer,
            "caller": call.rec.caller,
            "callee": call.rec.callee,
            "vendor": call.b_vendor.name if call.b_vendor is not None else None,
            "state": call.state.name.lower(),
            "src_ip": call.rec.src_ip,
            "start": round(call.rec.start + offset, 3),
            "answered": (None if call.rec.answer is None
                         else round(call.rec.answer + offset, 3)),
        } for call in engine.calls_in_progress()]

    def registrations(self) -> list[dict[str, object]]:
        engine = self.switch.engine
        if engine is None:
            return []
        now = self._now()
        offset = self._wall() - now
        return [{
            "gateway": b.gateway, "contact": b.contact, "transport": b.transport,
            "host": b.host, "port": b.port, "user_agent": b.user_agent,
            "expires": round(b.expires + offset, 3),
            "remaining": max(0.0, round(b.expires - now, 3)),
        } for b in engine.registrar.bindings.values() if b.expires > now]

    def bans(self) -> list[dict[str, object]]:
        screen = self.switch.screen
        if screen is None:
            return []
        now = self._now()
        offset = self._wall() - now
        return [{"ip": ban.ip, "rule": str(ban.rule), "since": round(ban.since + offset, 3),
                 "until": round(ban.until + offset, 3),
                 "remaining": max(0.0, round(ban.until - now, 3))}
                for ban in screen.bans(now)]

    def lift(self, ip: str) -> bool:
        screen = self.switch.screen
        return screen.lift(ip) if screen is not None else False
