"""Open dialogs per source IP and per /24 (IPv6: /64): the article's ``connlimit`` rule.

The switch reports the calls it starts (:meth:`Dialogs.open`) and ends (:meth:`Dialogs.close`);
:meth:`Dialogs.over` says whether one more new dialog from an address would exceed a limit.
Counts go away when they fall to 0, so the tables hold only sources with calls up.

>>> d = Dialogs()
>>> d.open("c1", "192.0.2.1"); d.open("c2", "192.0.2.2")
>>> d.over("192.0.2.1", per_ip=1, per_net=5), d.over("192.0.2.9", per_ip=1, per_net=2)
(<Rule.DIALOGS_PER_IP: 'dialogs_per_ip'>, <Rule.DIALOGS_PER_24: 'dialogs_per_24'>)
>>> d.close("c1"); d.close("c1"); d.over("192.0.2.1", per_ip=1, per_net=5) is None
True
"""

from __future__ import annotations

from switch.guard.rules import Rule
from switch.guard.trust import parse_address

__all__ = ["Dialogs", "network_of"]


def network_of(ip: str) -> str:
    """The /24 of an IPv4 address or the /64 of an IPv6 one, as a key (the text if neither).

    >>> network_of("192.0.2.77"), network_of("2001:db8:0:1::9"), network_of("::ffff:192.0.2.7")
    ('192.0.2', '6:20010db800000001', '192.0.2')
    """
    if ":" not in ip:
        return ip.rpartition(".")[0] or ip
    parsed = parse_address(ip)
    if parsed is None:
        return ip
    version, number = parsed
    if version == 4:
        return f"{number >> 24}.{(number >> 16) & 255}.{(number >> 8) & 255}"
    return f"6:{number >> 64:016x}"


class Dialogs:
    """Open dialogs by key, counted per IP and per network."""

    __slots__ = ("_ip_of", "_per_ip", "_per_net")

    def __init__(self) -> None:
        self._ip_of: dict[str, str] = {}
        self._per_ip: dict[str, int] = {}
        self._per_net: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ip_of)

    def open(self, key: str, ip: str) -> None:
        """A dialog ``key`` from ``ip`` started (a key already open is not counted twice)."""
        if key in self._ip_of:
            return
        self._ip_of[key] = ip
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        net = network_of(ip)
        self._per_net[net] = self._per_net.get(net, 0) + 1

    def close(self, key: str) -> None:
        """Dialog ``key`` ended; unknown keys (and second closes) are ignored."""
        ip = self._ip_of.pop(key, None)
        if ip is None:
            return
        for table, k in ((self._per_ip, ip), (self._per_net, network_of(ip))):
            left = table.get(k, 0) - 1
            if left > 0:
                table[k] = left
            else:
                table.pop(k, None)

    def holds(self, key: str | None, ip: str) -> bool:
        """True when dialog ``key`` is open from ``ip`` (an INVITE retransmission, not new)."""
        return key is not None and self._ip_of.get(key) == ip

    def count(self, ip: str) -> tuple[int, int]:
        """Open dialogs from ``ip`` and from its network."""
        return self._per_ip.get(ip, 0), self._per_net.get(network_of(ip), 0)

    def over(self, ip: str, per_ip: int, per_net: int) -> Rule | None:
        """The rule one more new dialog from ``ip`` would break, or None."""
        if self._per_ip.get(ip, 0) >= per_ip:
            return Rule.DIALOGS_PER_IP
        if self._per_net.get(network_of(ip), 0) >= per_net:
            return Rule.DIALOGS_PER_24
        return None
