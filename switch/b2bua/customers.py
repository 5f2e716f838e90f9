"""Which customer (mapping gateway) an INVITE comes from: by IP, by IP and port, or by password.

The VOS3000 way: a customer is recognised by where its calls come from; several gateways may
share an address and are then told apart by their tech prefix (the longest one the called
number starts with wins; an empty tech prefix matches any number). ``ip_port`` gateways are more
specific than ``ip`` ones and are tried first. Gateways with ``auth = "password"`` are found by
digest authentication on the INVITE (407 challenge, RFC 3261 22.3): the username is the gateway
name, and when the gateway lists addresses the INVITE must come from one of them too.

No enumeration: an unknown username is verified (hashed against a dummy password) and refused
exactly like a known gateway with a wrong password, and the address check comes after the
password check, so the wire answer and the work done never tell whether a name exists.

A password gateway that registered (``switch/registrar.py``) is also recognised by the source
address of its live binding, so its INVITEs from there need no digest.

Pure: the caller gives the source address and ``now``; nothing here touches a socket or clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from switch.config import MappingGateway
from switch.registrar import Guard
from switch.sip import NonceCounts, NonceFactory, Request, parse_auth_params, verify
from switch.sip.digest import DigestError, challenges

__all__ = ["CustomerDirectory", "Identity"]


@dataclass(frozen=True)
class Identity:
    """The outcome: a gateway, or the status to answer with.

    ``status`` is 0 when ``gateway`` is set and the call may go on; 407 with ``challenges`` (the
    Proxy-Authenticate values, one header each, in order) to ask for credentials; 403 when the
    source is refused. A 403 for a known password gateway (wrong password) still names the
    gateway, so the call gets a CDR.
    """

    gateway: MappingGateway | None
    status: int = 0
    challenges: tuple[str, ...] = ()
    reason: str = "ok"

    @property
    def challenge(self) -> str | None:
        """The first challenge, or None."""
        return self.challenges[0] if self.challenges else None


class CustomerDirectory:
    """Look customers up by source and credentials.

    >>> from switch.config import MappingGateway
    >>> d = CustomerDirectory([MappingGateway("acme", ("127.0.0.1",)),
    ...                        MappingGateway("zeta", ("127.0.0.1",), tech_prefix="900")],
    ...                       realm="sw1", nonces=NonceFactory(b"0123456789abcdef"))
    >>> d.identify(None, "127.0.0.1", 5071, "9004477", 0.0).gateway.name
    'zeta'
    >>> d.identify(None, "127.0.0.1", 5071, "4477", 0.0).gateway.name
    'acme'
    >>> d.identify(None, "10.9.9.9", 5071, "4477", 0.0).status
    403
    """

    def __init__(self, gateways: Iterable[MappingGateway], *, realm: str,
                 nonces: NonceFactory, algorithms: tuple[str, ...] = ("MD5",),
                 accept: tuple[str, ...] = ("SHA-256", "MD5"),
                 counts: NonceCounts | None = None, guard: Guard | None = None,
                 registered: Callable[[str, int, float], str | None] | None = None) -> None:
        self.realm = realm
        self.nonces = nonces
        self.algorithms = algorithms  # challenged, in this order
        self.accept = accept  # answered with any of these
        self.counts = counts
        self.guard = guard  # failed-authentication suspensions, shared with the registrar
        self.registered = registered  # (ip, port, now) -> the gateway registered from there
        self._by_ip_port: dict[str, list[MappingGateway]] = {}
        self._by_ip: dict[str, list[MappingGateway]] = {}
        self._by_password: dict[str, MappingGateway] = {}
        for gw in gateways:
            if gw.auth == "password":
                self._by_password[gw.name] = gw
                continue
            index = self._by_ip_port if gw.auth == "ip_port" else self._by_ip
            for address in gw.addresses:
                index.setdefault(address, []).append(gw)
        for index in (self._by_ip_port, self._by_ip):
            for found in index.values():  # longest tech prefix first
                found.sort(key=lambda g: -len(g.tech_prefix))

    def identify(self, request: Request | None, ip: str, port: int, callee: str,
                 now: float) -> Identity:
        """Find the customer of an INVITE from ``ip:port`` to ``callee`` (the number as sent)."""
        for found in (self._by_ip_port.get(f"{ip}:{port}"), self._by_ip.get(ip)):
            if found:
                for gw in found:
                    if callee.startswith(gw.tech_prefix):
                        return Identity(gw)
        if self.registered is not None and self._by_password:
            name = self.registered(ip, port, now)
            known = self._by_password.get(name) if name is not None else None
            if known is not None and callee.startswith(known.tech_prefix):
                return Identity(known)  # from its registered contact: admitted like an IP customer
        if not self._by_password or request is None:
            return Identity(None, 403, reason="unknown source")
        return self._digest(request, ip, now)

    def _digest(self, request: Request, ip: str, now: float) -> Identity:
        value = request.headers.get("proxy-authorization")
        username: str | None = None
        parsed: tuple[str, dict[str, str]] | None = None
        if value is not None:
            try:
                parsed = parse_auth_params(value)
                username = parsed[1].get("username")
            except DigestError:
                username = None
        if self.guard is not None and self.guard.suspended(username, ip, now):
            return Identity(None, 403, reason="suspended")  # the password is not looked at
        if value is None:
            return self._challenge(now, stale=False, reason="credentials asked")
        if parsed is None:
            return Identity(None, 403, reason="malformed credentials")
        gw = self._by_password.get(username or "")
        # Verify first, always: an unknown name costs the same work as a known one.
        verdict = verify(value, method=request.method, realm=self.realm, nonces=self.nonces,
                         now=now, password_for=lambda u: gw.password if gw is not None else None,
                         algorithms=self.accept, counts=self.counts, parsed=parsed)
        if verdict.stale and gw is not None and not (gw.addresses and ip not in gw.addresses):
            return self._challenge(now, stale=True, reason="stale nonce")
        if not verdict.ok:
            if self.guard is not None:
                self.guard.failed(username, ip, now)
            return Identity(gw, 403, reason=verdict.reason)
        if gw is not None and gw.addresses and ip not in gw.addresses:
            return Identity(gw, 403, reason="address not allowed")
        if self.guard is not None:
            self.guard.succeeded(username, ip)
        return Identity(gw)

    def _challenge(self, now: float, *, stale: bool, reason: str) -> Identity:
        chs = challenges(realm=self.realm, nonces=self.nonces, now=now,
                         algorithms=self.algorithms, stale=stale)
        return Identity(None, 407, tuple(c.header_value() for c in chs), reason)
