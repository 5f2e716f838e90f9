"""Why the guard dropped a datagram (:class:`Rule`) and a source's ban (:class:`Ban`).

The rule values are the labels of the guard's counters and metrics (``drop.<rule>``,
``ban.<rule>`` in :attr:`switch.guard.Screen.stats`).

>>> Rule.SCANNER, f"drop.{Rule.HASHLIMIT}"
(<Rule.SCANNER: 'scanner'>, 'drop.hashlimit')
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Ban", "Rule"]


class Rule(StrEnum):
    """Why a datagram was dropped, cheapest layer first; the value is the metric label."""

    BANNED = "banned"  # the source is banned (any earlier rule that bans)
    OPTIONS = "options"  # OPTIONS from an untrusted source (drop_options_from_untrusted)
    REGISTER = "register"  # REGISTER from an untrusted source (drop_register_from_untrusted)
    SCANNER = "scanner"  # a scanner's name in User-Agent / From / To (bans)
    UNSERVED = "unserved"  # a method or Request-URI scheme the switch never serves
    RECENT = "recent"  # more than recent_hits datagrams in recent_seconds (bans)
    HASHLIMIT = "hashlimit"  # token bucket of rate/s, burst (bans)
    DIALOGS_PER_IP = "dialogs_per_ip"  # a new INVITE over the open dialogs per IP (bans)
    DIALOGS_PER_24 = "dialogs_per_24"  # a new INVITE over the open dialogs per /24 or /64 (bans)
    FLOOD = "flood"  # over untrusted_rate, all untrusted sources together (no ban: whose?)


@dataclass(frozen=True, slots=True)
class Ban:
    """A source banned by ``rule`` from ``since`` until ``until`` (monotonic seconds).

    >>> b = Ban("192.0.2.7", Rule.RECENT, since=100.0, until=700.0)
    >>> b.until - b.since, b.rule.value
    (600.0, 'recent')
    """

    ip: str
    rule: Rule
    since: float
    until: float
