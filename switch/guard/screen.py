"""The switch's own scanner defence: ordered layers in front of the SIP stack, sans-IO.

:class:`Screen` decides for each datagram (or TCP message) from a source address whether the
switch should look at it; a dropped one gets no answer. Layers, cheapest first, after the
article's iptables chains (SIP_TRUSTED, SIP_SCANNER_BLOCK, SIP_RATE_LIMIT):

1. trusted sources (``[guard] trusted`` and, with ``trust_gateways``, the gateways' addresses)
   pass, untouched and unremembered; so do the addresses in :attr:`Screen.vouched` (the switch
   puts its registrar's bound addresses there: a gateway that proved its password is trusted
   from where it registered, as long as its binding lives);
2. a banned source is dropped (``banned``) with no other work;
3. signatures (:mod:`switch.guard.signatures`): OPTIONS, REGISTER, unserved methods and URI
   schemes, scanner names (the last also bans);
4. rate rules per source: ``recent``, ``hashlimit`` (:mod:`switch.guard.sources`) and, for an
   INVITE opening a dialog, ``connlimit`` per IP and per /24 (:mod:`switch.guard.dialogs`);
   breaking one drops the datagram and bans the source for ``ban_time`` (0: no ban);
5. the untrusted budget: ``untrusted_rate`` datagrams per second for all untrusted sources
   together (``flood``, no ban), so many sources each under its limits cannot crowd out
   trusted traffic, which never reaches this layer.

Time comes in as ``now`` (monotonic seconds); no clock, no I/O, no threads.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Container, Iterable

from switch.config_types import GuardSettings
from switch.guard.dialogs import Dialogs
from switch.guard.rules import Ban, Rule
from switch.guard.signatures import Signatures, call_id, has_to_tag
from switch.guard.sources import RateRules, Source
from switch.guard.trust import TrustList

__all__ = ["Screen"]

_DROP = {rule: f"drop.{rule}" for rule in Rule}
_BAN = {rule: f"ban.{rule}" for rule in Rule}


class Screen:
    """The guard's layers for one switch: :meth:`check` each datagram, then act on the answer.

    State is bounded: at most ``settings.max_sources`` untrusted sources are remembered (rate
    state and ban together, one :class:`~switch.guard.sources.Source` each), the least recently
    seen forgotten first (counted ``evicted``). Measured with tracemalloc (CPython 3.11,
    100,000 sources, ``tests/switch/test_guard_screen.py``): about 380 bytes per tracked source
    seen once, its address string included, and about 550 once its ``recent`` window is full
    (20 times); so the default cap of 200,000 sources holds at most about 110 MB. The
    trusted-address cache adds at most 65,536 entries (about 6 MB). Trusted sources and
    datagrams dropped by a signature that does not ban cost no state. Dialog counts (connlimit)
    are kept only for calls the switch reports open.

    :attr:`stats` (a snapshot Counter) counts ``drop.<rule>`` per dropped datagram,
    ``ban.<rule>`` per ban started, ``passed`` and ``trusted`` per datagram let through,
    ``evicted`` per source forgotten.

    >>> from switch.config_types import GuardSettings
    >>> s = Screen(GuardSettings(trusted=("10.0.0.0/8",), recent_hits=2, ban_time=60))
    >>> invite = b"INVITE sip:1@sw SIP/2.0\\r\\nTo: <sip:1@sw>\\r\\n\\r\\n"
    >>> [s.check(invite, "192.0.2.1", now=t) for t in (0.0, 1.0, 2.0, 3.0)]
    [None, None, <Rule.RECENT: 'recent'>, <Rule.BANNED: 'banned'>]
    >>> s.check(invite, "10.1.2.3", now=3.0) is None, s.bans(now=3.0)[0].until
    (True, 62.0)
    >>> s.check(invite, "192.0.2.1", now=62.0) is None
    True
    """

    __slots__ = (
        "_ban_time",
        "_bans",
        "_budget",
        "_budget_rate",
        "_counts",
        "_dialogs",
        "_enabled",
        "_max",
        "_per_24",
        "_per_ip",
        "_rates",
        "_signatures",
        "_sources",
        "_trust",
        "_trusting",
        "ignored_gateways",
        "vouched",
    )

    def __init__(self, settings: GuardSettings, *, gateways: Iterable[str] = ()) -> None:
        self._counts: dict[str, int] = {}
        self._sources: OrderedDict[str, Source] = OrderedDict()
        self._bans: dict[str, Ban] = {}
        self._dialogs = Dialogs()
        self._budget = Source(0.0, float("-inf"))  # the untrusted budget's bucket (tokens)
        #: Addresses trusted for now, looked up per datagram (``ip in vouched``): the switch
        #: sets its registrar's bound hosts (:attr:`switch.registrar.BindingTable.hosts`).
        self.vouched: Container[str] = frozenset()
        self._configure(settings, gateways)

    def _configure(self, settings: GuardSettings, gateways: Iterable[str]) -> None:
        gateways = tuple(gateways)
        trust = TrustList(settings.trusted)
        if trust.ignored:
            raise ValueError(f"[guard] trusted: not addresses or CIDRs: {list(trust.ignored)}")
        self._trust = TrustList((*settings.trusted, *gateways))
        self._trusting = bool(self._trust)
        self.ignored_gateways: tuple[str, ...] = self._trust.ignored
        self._enabled = settings.enabled
        self._signatures = Signatures(settings)
        self._rates = RateRules(settings)
        self._per_ip = settings.dialogs_per_ip
        self._per_24 = settings.dialogs_per_24
        self._ban_time = float(settings.ban_time)
        self._max = max(1, settings.max_sources)
        self._budget_rate = float(settings.untrusted_rate)

    def reload(self, settings: GuardSettings, *, gateways: Iterable[str] = ()) -> None:
        """Apply new settings, keeping bans, rate state and open dialogs.

        Sources that the new settings trust are forgotten (with their bans); a new
        ``recent_hits`` restarts every source's window; a smaller ``max_sources`` evicts.

        >>> from switch.config_types import GuardSettings
        >>> s = Screen(GuardSettings())
        >>> s.check(b"INVITE sip:1@h SIP/2.0\\r\\nUser-Agent: sipcli\\r\\n\\r\\n", "192.0.2.5", 0.0)
        <Rule.SCANNER: 'scanner'>
        >>> s.reload(GuardSettings(ban_time=5)); [b.ip for b in s.bans(1.0)]
        ['192.0.2.5']
        >>> s.reload(GuardSettings(), gateways=["192.0.2.5:5060"]); s.bans(1.0)
        []
        """
        old_trust, old_hits = self._trust.entries, self._rates.recent_hits
        self._configure(settings, gateways)
        if self._trust.entries != old_trust:
            for ip in [ip for ip in self._sources if ip in self._trust]:
                del self._sources[ip]
                self._bans.pop(ip, None)
        if self._rates.recent_hits != old_hits:
            for src in self._sources.values():
                src.reset(self._rates.burst, src.stamp)
        while len(self._sources) > self._max:
            self._evict()

    def trusted(self, ip: str) -> bool:
        """True when ``ip`` skips every layer (a trusted network or gateway).

        >>> Screen(GuardSettings(trusted=("2001:db8::/32",))).trusted("2001:db8::1")
        True
        """
        return ip in self._trust

    @property
    def stats(self) -> Counter[str]:
        """A snapshot of the counters: ``drop.<rule>``, ``ban.<rule>``, ``passed``, ``trusted``,
        ``evicted`` (kept in a plain dict: a Counter costs twice as much per datagram).

        >>> s = Screen(GuardSettings(enabled=False)); _ = s.check(b"", "192.0.2.1", 0.0)
        >>> s.stats
        Counter({'passed': 1})
        """
        return Counter(self._counts)

    @property
    def sources(self) -> int:
        """How many untrusted sources are remembered now (at most ``max_sources``)."""
        return len(self._sources)

    def check(self, data: bytes, ip: str, now: float) -> Rule | None:
        """None to let the datagram ``data`` from ``ip`` through at ``now``; else the Rule that
        drops it (silently: no answer). Never raises.

        >>> s = Screen(GuardSettings())
        >>> s.check(b"OPTIONS sip:100@192.0.2.1 SIP/2.0\\r\\n\\r\\n", "198.51.100.9", 0.0)
        <Rule.OPTIONS: 'options'>
        >>> s.check(b"SIP/2.0 180 Ringing\\r\\n\\r\\n", "198.51.100.9", 0.0) is None
        True
        """
        counts = self._counts
        if not self._enabled:
            counts["passed"] = counts.get("passed", 0) + 1
            return None
        if ip in self.vouched:
            counts["trusted"] = counts.get("trusted", 0) + 1
            return None
        sources = self._sources
        src = sources.get(ip)
        if src is not None:
            ban = src.ban
            if ban is not None:
                if now < ban.until:
                    sources.move_to_end(ip)
                    counts["drop.banned"] = counts.get("drop.banned", 0) + 1
                    return Rule.BANNED
                src.ban = None
                self._bans.pop(ip, None)
        elif self._trusting:
            trusted = self._trust.cache.get(ip)
            if trusted is None:
                trusted = self._trust.learn(ip)
            if trusted:
                counts["trusted"] = counts.get("trusted", 0) + 1
                return None
        rule = self._signatures.classify(data)
        if rule is not None:
            if rule is Rule.SCANNER:
                self._ban(ip, src, rule, now)
            key = _DROP[rule]
            counts[key] = counts.get(key, 0) + 1
            return rule
        if src is None:
            src = self._track(ip, now)
        else:
            sources.move_to_end(ip)
        rule = self._rates.hit(src, now)
        if rule is None and data.startswith(b"INVITE ") and self._dialogs:
            rule = self._connlimit(data, ip)
        if rule is not None:
            self._ban(ip, src, rule, now)
            key = _DROP[rule]
            counts[key] = counts.get(key, 0) + 1
            return rule
        rate = self._budget_rate
        if rate:
            budget = self._budget
            elapsed = now - budget.stamp
            if elapsed > 0:  # refill, up to one second's worth
                budget.tokens = min(rate, budget.tokens + elapsed * rate)
                budget.stamp = now
            if budget.tokens < 1.0:
                counts["drop.flood"] = counts.get("drop.flood", 0) + 1
                return Rule.FLOOD
            budget.tokens -= 1.0
        counts["passed"] = counts.get("passed", 0) + 1
        return None

    def _connlimit(self, data: bytes, ip: str) -> Rule | None:
        rule = self._dialogs.over(ip, self._per_ip, self._per_24)
        if rule is None or has_to_tag(data) or self._dialogs.holds(call_id(data), ip):
            return None  # under the limits, inside a dialog, or a retransmitted INVITE
        return rule

    def _track(self, ip: str, now: float) -> Source:
        sources = self._sources
        while len(sources) >= self._max:
            self._evict()
        src = sources[ip] = self._rates.fresh(now)
        return src

    def _evict(self) -> None:
        ip, src = self._sources.popitem(last=False)
        if src.ban is not None:
            self._bans.pop(ip, None)
        self._counts["evicted"] = self._counts.get("evicted", 0) + 1

    def _ban(self, ip: str, src: Source | None, rule: Rule, now: float) -> None:
        if self._ban_time <= 0:
            return
        if src is None:
            src = self._track(ip, now)
        else:
            src.reset(self._rates.burst, now)
        src.ban = self._bans[ip] = Ban(ip, rule, now, now + self._ban_time)
        key = _BAN[rule]
        self._counts[key] = self._counts.get(key, 0) + 1

    def dialog_opened(self, key: str, ip: str) -> None:
        """The switch started a call ``key`` (best: the ingress Call-ID) from ``ip``.

        With the Call-ID as key, a retransmission of that call's INVITE is not taken for a new
        dialog over the connlimit. Calls from trusted sources are not counted.

        >>> s = Screen(GuardSettings(dialogs_per_ip=1))
        >>> s.dialog_opened("a@h", "192.0.2.1")
        >>> s.check(b"INVITE sip:2@h SIP/2.0\\r\\nCall-ID: b@h\\r\\n\\r\\n", "192.0.2.1", 0.0)
        <Rule.DIALOGS_PER_IP: 'dialogs_per_ip'>
        """
        if ip not in self._trust:
            self._dialogs.open(key, ip)

    def dialog_closed(self, key: str) -> None:
        """Call ``key`` ended; idempotent, unknown keys ignored.

        >>> s = Screen(GuardSettings()); s.dialog_closed("never-opened")
        """
        self._dialogs.close(key)

    def bans(self, now: float) -> list[Ban]:
        """The bans in force at ``now``, oldest first; expired ones are pruned.

        >>> s = Screen(GuardSettings(ban_time=10))
        >>> _ = s.check(b"INVITE sip:1@h SIP/2.0\\r\\nFrom: <sip:sipvicious@x>\\r\\n\\r\\n",
        ...             "192.0.2.3", now=0.0)
        >>> [(b.ip, b.rule.value, b.until) for b in s.bans(9.0)], s.bans(10.0)
        ([('192.0.2.3', 'scanner', 10.0)], [])
        """
        for ip in [ip for ip, ban in self._bans.items() if ban.until <= now]:
            del self._bans[ip]
            src = self._sources.get(ip)
            if src is not None:
                src.ban = None
        return sorted(self._bans.values(), key=lambda b: b.since)

    def lift(self, ip: str) -> bool:
        """End the ban on ``ip`` and forget its rate state; False when it was not banned.

        >>> s = Screen(GuardSettings())
        >>> probe = b"INVITE sip:1@h SIP/2.0\\r\\nTo: <sip:iwar@x>\\r\\n\\r\\n"
        >>> s.check(probe, "192.0.2.4", 0.0)
        <Rule.SCANNER: 'scanner'>
        >>> s.lift("192.0.2.4"), s.lift("192.0.2.4"), s.sources
        (True, False, 0)
        """
        if self._bans.pop(ip, None) is None:
            return False
        self._sources.pop(ip, None)
        return True
