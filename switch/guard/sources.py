"""Per-source rate state: the article's ``recent`` and ``hashlimit`` rules, sans-IO.

A :class:`Source` is what the guard remembers of one untrusted address: its ban, if any, a
token bucket (``tokens`` as of ``stamp``) and a ring of the times of its last ``recent_hits``
datagrams (a compact ``array('d')``, grown on demand so a one-datagram source costs little).
:class:`RateRules` applies the limits to a source for one datagram at ``now``.

>>> from switch.config_types import GuardSettings
>>> rules = RateRules(GuardSettings(recent_hits=3, recent_seconds=10, rate=100, burst=100))
>>> src = rules.fresh(now=0.0)
>>> [rules.hit(src, t) for t in (0.0, 1.0, 2.0, 3.0, 11.0)]
[None, None, None, <Rule.RECENT: 'recent'>, None]
"""

from __future__ import annotations

from array import array

from switch.config_types import GuardSettings
from switch.guard.rules import Ban, Rule

__all__ = ["RateRules", "Source"]

_EPSILON = 1e-9  # float slack in the bucket: 10/s spread evenly must never look like 9.999/s


class Source:
    """One untrusted source's state: ban, token bucket, ring of recent datagram times."""

    __slots__ = ("ban", "head", "hits", "stamp", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.ban: Ban | None = None
        self.tokens = tokens
        self.stamp = now
        self.hits: array[float] = array("d")
        self.head = 0

    def reset(self, tokens: float, now: float) -> None:
        """Forget the rate history (a ban starts, or the limits changed)."""
        self.tokens = tokens
        self.stamp = now
        self.hits = array("d")
        self.head = 0


class RateRules:
    """``recent`` (sliding window) then ``hashlimit`` (token bucket), for one datagram.

    The window is exact, like ``-m recent --update --seconds S --hitcount N``: a datagram is
    over the limit when the ``recent_hits`` before it all fall within the last
    ``recent_seconds`` (so with 20/60 s the 21st in 60 s is dropped, and 20 spread over each
    60 s pass forever). The bucket holds ``burst`` tokens, refilled at ``rate`` per second; a
    datagram takes one. Every datagram counts toward the window, the dropped one included.

    >>> from switch.config_types import GuardSettings
    >>> rules = RateRules(GuardSettings(recent_hits=100, rate=1, burst=2))
    >>> src = rules.fresh(now=0.0)
    >>> [rules.hit(src, 0.0), rules.hit(src, 0.0), rules.hit(src, 0.0), rules.hit(src, 1.0)]
    [None, None, <Rule.HASHLIMIT: 'hashlimit'>, None]
    """

    __slots__ = ("burst", "rate", "recent_hits", "recent_seconds")

    def __init__(self, settings: GuardSettings) -> None:
        self.recent_hits = max(1, int(settings.recent_hits))
        self.recent_seconds = float(settings.recent_seconds)
        self.rate = float(settings.rate)
        self.burst = float(max(1, settings.burst))

    def fresh(self, now: float) -> Source:
        """A new source with a full bucket and an empty window."""
        return Source(self.burst, now)

    def hit(self, src: Source, now: float) -> Rule | None:
        """Count one datagram from ``src`` at ``now``; the rule it breaks, or None."""
        hits = src.hits
        n = self.recent_hits
        if len(hits) < n:
            hits.append(now)
        else:
            head = src.head
            if head >= len(hits):  # the window was shortened (reload): start over
                head = 0
            over = now - hits[head] < self.recent_seconds
            hits[head] = now
            head += 1
            src.head = 0 if head >= n else head
            if over:
                return Rule.RECENT
        tokens = src.tokens
        elapsed = now - src.stamp
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.burst:
                tokens = self.burst
            src.stamp = now
        if tokens < 1.0 - _EPSILON:
            src.tokens = tokens
            return Rule.HASHLIMIT
        src.tokens = tokens - 1.0
        return None
