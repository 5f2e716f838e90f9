"""Per-customer call limits: calls per second (sliding one-second window) and concurrent calls.

Only admitted calls count towards the rate: a customer flooding the switch past its limit keeps
getting the calls the limit allows, instead of being locked out by its own rejected attempts.

>>> from switch.config import MappingGateway
>>> limits = CallLimits()
>>> gw = MappingGateway("acme", ("127.0.0.1",), cps_limit=2, max_concurrent=10)
>>> [limits.admit(gw, t) for t in (0.0, 0.1, 0.2, 1.05)]
[None, None, 'cps_limit', None]
>>> limits.active["acme"]
3
"""

from __future__ import annotations

from collections import Counter, deque

from switch.config import MappingGateway

__all__ = ["CallLimits"]


class CallLimits:
    """Admission control; ``release`` when an admitted call ends."""

    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}
        self.active: Counter[str] = Counter()

    def admit(self, gw: MappingGateway, now: float) -> str | None:
        """None when the call may go on, else the CDR reason (``cps_limit``,
        ``concurrency_limit``)."""
        recent = self._recent.get(gw.name)
        if recent is None:
            recent = self._recent[gw.name] = deque()
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) >= gw.cps_limit:
            return "cps_limit"
        if self.active[gw.name] >= gw.max_concurrent:
            return "concurrency_limit"
        recent.append(now)
        self.active[gw.name] += 1
        return None

    def release(self, name: str) -> None:
        """An admitted call of customer ``name`` has ended."""
        self.active[name] -= 1
