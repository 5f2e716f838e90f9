"""Nonces for digest authentication: stateless, verifiable nonces (:class:`NonceFactory`) and
the nonce-counts seen (:class:`NonceCounts`), which is what lets a server refuse a replayed
response. Sans-IO: ``now`` comes in as an argument.

>>> f = NonceFactory(b"0123456789abcdef", lifetime=60)
>>> f.check(f.make(now=0.0), now=10.0)
'ok'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections import OrderedDict

__all__ = ["NonceCounts", "NonceFactory"]


class NonceFactory:
    """Stateless, verifiable nonces: base64url(timestamp_ms || HMAC-SHA256(secret, ts||realm)[:16]).

    The MAC lets :meth:`check` reject forged or altered nonces without a store, and the embedded
    timestamp lets it call an old-but-genuine nonce ``"stale"`` (the client retries silently)
    rather than ``"invalid"``. Binding the realm keeps a nonce issued for one realm from being
    accepted for another when several share a secret.

    >>> f = NonceFactory(b"0123456789abcdef", lifetime=60)
    >>> n = f.make(now=100.0)
    >>> f.check(n, now=130.0), f.check(n, now=161.0), f.check("x" + n[1:], now=130.0)
    ('ok', 'stale', 'invalid')
    """

    _MAC_LEN = 16  # 128-bit tag: forgery is out of reach, and the nonce stays 32 characters.
    _SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")

    def __init__(self, secret: bytes, *, lifetime: float = 300.0, realm: str = "") -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("nonce lifetime must be positive")
        self._secret = bytes(secret)
        self._realm = realm.encode("utf-8")
        self.lifetime = float(lifetime)
        self._serial = 0

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp + self._realm, hashlib.sha256).digest()[: self._MAC_LEN]

    def make(self, now: float, serial: int = 0) -> str:
        """A nonce issued at ``now`` (seconds; any clock, as long as check() uses the same one).

        The 8-byte stamp is ``serial`` (16 bits) then milliseconds (48 bits): with serial 0 the
        nonce is a pure function of ``now``; :meth:`fresh` varies it so that two challenges in
        one millisecond differ, which nonce-count replay tracking needs.
        """
        if now < 0:
            raise ValueError("now must not be negative")
        if not 0 <= serial <= 0xFFFF:
            raise ValueError("serial must fit in 16 bits")
        # Milliseconds: whole seconds would make expiry up to a second late.
        stamp = struct.pack(">Q", (serial << 48) | (int(now * 1000) & 0xFFFF_FFFF_FFFF))
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode("ascii")

    def fresh(self, now: float) -> str:
        """A nonce issued at ``now`` that differs from every other recent one of this factory.

        >>> f = NonceFactory(b"0123456789abcdef")
        >>> f.fresh(1.0) != f.fresh(1.0)
        True
        """
        self._serial = (self._serial + 1) & 0xFFFF
        return self.make(now, self._serial)

    def check(self, nonce: str, now: float) -> str:
        """``"ok"``, ``"stale"`` (genuine but expired, or from a clock that went back) or
        ``"invalid"`` (not made by this factory)."""
        # Exact shape first: cheap rejection of junk, and one spelling per nonce (the decoder
        # would otherwise also accept '+' and '/').
        if not isinstance(nonce, str) or not self._SHAPE.fullmatch(nonce):
            return "invalid"
        raw = base64.urlsafe_b64decode(nonce)
        stamp, tag = raw[:8], raw[8:]
        if not hmac.compare_digest(tag, self._mac(stamp)):
            return "invalid"
        age = now - (struct.unpack(">Q", stamp)[0] & 0xFFFF_FFFF_FFFF) / 1000
        # A future nonce is ours (the MAC says so); the clock stepped back. Ask for a retry
        # rather than accusing the client.
        if age < 0 or age > self.lifetime:
            return "stale"
        return "ok"


class NonceCounts:
    """The highest nonce-count accepted per nonce, kept until the nonce's lifetime is over.

    Only successful responses are recorded (a wrong guess must not burn a count). With no qop
    there is no ``nc``; a nonce then counts as used once (nc=1). The table is bounded: beyond
    ``max_entries`` live nonces the oldest is forgotten (a replay of it then meets ``stale``
    soon anyway, since entries expire no later than their nonce).

    >>> c = NonceCounts()
    >>> c.accept("n", 1, now=0.0, lifetime=60.0), c.accept("n", 1, now=1.0, lifetime=60.0)
    (True, False)
    >>> c.accept("n", 2, now=2.0, lifetime=60.0), len(c)
    (True, 1)
    >>> c.accept("n", 3, now=100.0, lifetime=60.0), len(c)  # expired entry dropped first
    (True, 1)
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        # Ordered: the oldest at the front. An OrderedDict, so that looking at the front after
        # dropping entries there costs O(1) (a dict's iterator steps over the holes they leave).
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.max_entries = max_entries

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        # Entries are inserted in time order, so expired ones are at the front: stop at the
        # first live one (once the table is below its bound). O(1) per accept, amortized.
        seen = self._seen
        while seen:
            key = next(iter(seen))
            if seen[key][1] >= now and len(seen) < self.max_entries:
                break
            del seen[key]

    def accept(self, nonce: str, nc: int, now: float, lifetime: float) -> bool:
        """Record ``nc`` for ``nonce`` and say True, or say False if it is not above the last."""
        self._prune(now)
        last = self._seen.get(nonce)
        if last is not None and nc <= last[0]:
            return False
        # Updated in place: insertion order stays expiry order, which _prune relies on.
        self._seen[nonce] = (nc, last[1] if last is not None else now + lifetime)
        return True
