"""Trusted sources: IPv4 and IPv6 CIDRs (or bare addresses), matched fast per packet.

Networks are parsed once; a source address is parsed with ``socket.inet_pton`` (no
``ipaddress`` objects per packet), matched by prefix length against sets of network numbers,
and the answer is cached per address string in a bounded dict (cleared when full, so a flood
of distinct addresses cannot grow it). IPv4-mapped IPv6 sources (``::ffff:a.b.c.d``, from a
dual-stack socket) match the IPv4 networks; a zone (``%eth0``) is ignored.

>>> t = TrustList(["198.51.100.0/24", "2001:db8::/32", "203.0.113.10"])
>>> "198.51.100.77" in t, "::ffff:198.51.100.1" in t, "2001:db8:1::5" in t
(True, True, True)
>>> "203.0.113.11" in t, "not an address" in t, "" in t
(False, False, False)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from switch.config_types import SwitchConfig

__all__ = ["Network", "TrustList", "parse_address", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, IPv4-mapped IPv6 addresses


def parse_address(ip: str) -> tuple[int, int] | None:
    """``(version, number)`` of an address string, or None when it is not one.

    >>> parse_address("10.0.0.1"), parse_address("::ffff:10.0.0.1"), parse_address("x")
    ((4, 167772161), (4, 167772161), None)
    """
    try:
        if ":" not in ip:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip.partition("%")[0]), "big")
    except (OSError, ValueError):  # ValueError: embedded NUL
        return None
    if number >> 32 == 0xFFFF:
        return 4, number & 0xFFFFFFFF
    return 6, number


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR, a bare address, ``addr:port`` or ``[v6]:port``; None when none of these."""
    text = text.strip()
    for candidate in (text, text.rpartition(":")[0].strip("[]")):
        if not candidate:
            continue
        try:
            return ipaddress.ip_network(candidate, strict=False)
        except ValueError:
            continue
    return None


class TrustList:
    """Membership of source addresses in a list of networks (``ip in trust``).

    Entries that are not networks (host names, typos) are skipped and listed in ``ignored``;
    ``entries`` keeps the normalised networks (for comparing two lists).
    """

    __slots__ = ("_cache_max", "_v4", "_v6", "cache", "entries", "ignored")

    def __init__(self, networks: Iterable[str], *, cache_max: int = 65536) -> None:
        v4: dict[int, set[int]] = {}
        v6: dict[int, set[int]] = {}
        entries: set[str] = set()
        ignored: list[str] = []
        for text in networks:
            net = _network(text)
            if net is None:
                ignored.append(text)
                continue
            if net.version == 6 and int(net.network_address) >> 32 == 0xFFFF and \
                    net.prefixlen >= 96:  # ::ffff:a.b.c.d/n is IPv4 a.b.c.d/(n-96)
                net = ipaddress.ip_network(
                    f"{ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)}"
                    f"/{net.prefixlen - 96}")
            entries.add(str(net))
            table, bits = (v4, 32) if net.version == 4 else (v6, 128)
            mask = ((1 << net.prefixlen) - 1) << (bits - net.prefixlen)
            table.setdefault(mask, set()).add(int(net.network_address))
        self._v4 = tuple(v4.items())
        self._v6 = tuple(v6.items())
        self.entries = frozenset(entries)
        self.ignored = tuple(ignored)
        self.cache: dict[str, bool] = {}  # per address; read it first, then call learn()
        self._cache_max = cache_max

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __contains__(self, ip: object) -> bool:
        if not self.entries or not isinstance(ip, str):
            return False
        hit = self.cache.get(ip)
        return self.learn(ip) if hit is None else hit

    def learn(self, ip: str) -> bool:
        """Match ``ip`` against the networks and cache the answer (the cache is bounded)."""
        hit = self._match(ip)
        if len(self.cache) >= self._cache_max:
            self.cache.clear()
        self.cache[ip] = hit
        return hit

    def _match(self, ip: str) -> bool:
        parsed = parse_address(ip)
        if parsed is None:
            return False
        version, number = parsed
        table = self._v4 if version == 4 else self._v6
        return any(number & mask in nets for mask, nets in table)


def trusted_networks(config: SwitchConfig) -> tuple[Network, ...]:
    """The sources every guard layer lets through, the switch's and the kernel rules' alike,
    collapsed, IPv4 networks first: ``[guard] trusted``; the switch's own host (the addresses it
    listens on, or loopback for a wildcard listener: its supervisor's and a local monitor's
    OPTIONS probes come from there, and Linux drops packets from outside that claim a local
    source address); and, with ``trust_gateways``, IP-authenticated customers' ``addresses`` and
    vendors' ``address`` and ``registrar_address`` hosts.

    >>> from switch.config import load_config
    >>> [str(n) for n in trusted_networks(load_config("data/switch.toml"))]
    ['127.0.0.1/32']
    """
    texts = list(config.guard.trusted)
    for listen in config.sip_listen:
        texts += ["127.0.0.1", "::1"] if listen.host in ("0.0.0.0", "::") else [listen.host]
    if config.guard.trust_gateways:
        for customer in config.mapping_gateways:
            if customer.auth in ("ip", "ip_port"):
                texts += [_ip_of(a) if customer.auth == "ip_port" else a
                          for a in customer.addresses]
        for vendor in config.routing_gateways:
            texts += [_ip_of(a) for a in (vendor.address, vendor.registrar_address) if a]
    networks = [ipaddress.ip_network(t, strict=False) for t in texts]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))


def _ip_of(address: str) -> str:
    """The IP of ``"IP:PORT"`` / ``"[IPv6]:PORT"``."""
    return address.rpartition(":")[0].strip("[]")
