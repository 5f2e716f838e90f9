"""SIP digest authentication (RFC 3261 section 22, RFC 2617, RFC 7616 / RFC 8760).

Algorithms MD5 and SHA-256 (RFC 8760 brings RFC 7616's SHA-256 to SIP), with qop=auth or no qop.
A server may offer several challenges, one header each, in its order of preference
(:func:`challenges`); the client answers the first it can.

Sans-IO and pure: functions take header *values* (the text after ``Authorization:``) and return
values; time (``now``) and client randomness (``cnonce``) come in as arguments so that every path
is deterministic under test. Only the standard library is used.

The server side is stateless: a nonce carries its own timestamp and an HMAC over it, so the switch
keeps no nonce table and can still tell an expired nonce (``stale``: the client may retry with a
fresh one without asking its user) from a forged one.

>>> nonces = NonceFactory(b"0123456789abcdef", realm="sw1")
>>> ch = Challenge(realm="sw1", nonce=nonces.make(now=1000.0))
>>> auth = authorization(ch.header_value(), username="alice", password="s3cret",
...                      method="INVITE", uri="sip:4420@sw1", cnonce="c0ffee")
>>> verify(auth, method="INVITE", password_for={"alice": "s3cret"}.get, realm="sw1",
...        nonces=nonces, now=1010.0)
Verdict(ok=True, username='alice', reason='ok', stale=False)

Replay: a stateless nonce alone cannot tell a replayed Authorization from the first. Pass a
:class:`NonceCounts` to :func:`verify`; it remembers the highest ``nc`` accepted per nonce until the
nonce expires, and refuses a response whose ``nc`` is not above it (``reason="replayed"``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from switch.sip.nonces import NonceCounts, NonceFactory

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "DigestError",
    "NonceCounts",
    "NonceFactory",
    "Verdict",
    "authorization",
    "challenge",
    "challenges",
    "digest_response",
    "ha1",
    "ha2",
    "parse_auth_params",
    "verify",
]


class DigestError(ValueError):
    """A header value that is not a well-formed digest challenge or credentials.

    >>> isinstance(DigestError("x"), ValueError)
    True
    """


# RFC 3261 25.1 token characters; anything else outside quotes is garbage.
_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# LWS: folded continuation lines may still contain CR/LF if the caller did not unfold them.
_WS = frozenset(" \t\r\n")
_LHEX = {"MD5": re.compile(r"[0-9a-fA-F]{32}"), "SHA-256": re.compile(r"[0-9a-fA-F]{64}")}
ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")
# Hashed in place of the password of an unknown user, so that it costs the same work as a known
# user with a wrong password (no timing oracle for account enumeration).
_DUMMY_PASSWORD = "\x00unknown-user\x00"
_NC = re.compile(r"[0-9a-fA-F]{8}")


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _scan_token(s: str, i: int) -> int:
    while i < len(s) and s[i] in _TOKEN_CHARS:
        i += 1
    return i


def _scan_quoted(s: str, i: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``s[i] == '"'``; return (unescaped text, end index)."""
    out: list[str] = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            # quoted-pair (RFC 3261 25.1) may escape anything but CR and LF.
            if i + 1 >= len(s) or s[i + 1] in "\r\n":
                raise DigestError("dangling backslash in quoted string")
            out.append(s[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise DigestError("unterminated quoted string")


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a challenge or credentials value into its scheme and parameters.

    Parameter names are lowercased (they are case-insensitive); values are returned as given,
    with quotes removed and quoted-pairs unescaped. Empty list elements (``a=1,,b=2``) are
    tolerated as RFC 7230 allows; duplicate parameters are rejected, because two readers
    picking different copies is how authentication gets bypassed.

    >>> parse_auth_params('Digest realm="a, \\\\"b\\\\"",NC=00000001')
    ('Digest', {'realm': 'a, "b"', 'nc': '00000001'})
    >>> parse_auth_params('Digest realm')
    Traceback (most recent call last):
    ...
    switch.sip.digest.DigestError: expected '=' after 'realm'
    """
    s = value
    i = _skip_ws(s, 0)
    j = _scan_token(s, i)
    if j == i:
        raise DigestError("missing auth scheme")
    scheme = s[i:j]
    i = j
    if i < len(s) and s[i] not in _WS:
        raise DigestError(f"unexpected {s[i]!r} after auth scheme")
    params: dict[str, str] = {}
    while True:
        i = _skip_ws(s, i)
        if i >= len(s):
            break
        if s[i] == ",":
            i += 1
            continue
        j = _scan_token(s, i)
        if j == i:
            raise DigestError(f"unexpected {s[i]!r} where a parameter name belongs")
        name = s[i:j].lower()
        i = _skip_ws(s, j)
        if i >= len(s) or s[i] != "=":
            raise DigestError(f"expected '=' after {name!r}")
        i = _skip_ws(s, i + 1)
        if i < len(s) and s[i] == '"':
            val, i = _scan_quoted(s, i)
        else:
            j = _scan_token(s, i)
            if j == i:
                raise DigestError(f"missing value for {name!r}")
            val, i = s[i:j], j
        if name in params:
            raise DigestError(f"duplicate parameter {name!r}")
        params[name] = val
        i = _skip_ws(s, i)
        if i < len(s) and s[i] != ",":
            raise DigestError(f"expected ',' after {name!r}")
    return scheme, params


def _quote(text: str) -> str:
    """Render ``text`` as a quoted-string, escaping the two characters that need it.

    >>> _quote('a"b')
    '"a\\\\"b"'
    """
    if "\r" in text or "\n" in text:
        # A raw line break would let a value inject headers into the message.
        raise DigestError("line break in a quoted value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _canon_algorithm(name: str) -> str:
    """``"MD5"`` or ``"SHA-256"`` for any spelling of them; DigestError otherwise.

    >>> _canon_algorithm("sha-256")
    'SHA-256'
    """
    up = name.upper()
    if up not in _LHEX:
        raise DigestError(f"unsupported algorithm {name!r}")
    return up


def _h(text: str, algorithm: str = "MD5") -> str:
    # Passwords and usernames may be non-ASCII; UTF-8 is what every SIP stack uses in practice.
    data = text.encode("utf-8")
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    return hashlib.md5(data).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username:realm:password) (RFC 2617 3.2.2.2, RFC 7616 3.4.2).

    >>> ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    '939e7578ed9e3c518a452acee763bce9'
    """
    return _h(f"{username}:{realm}:{password}", _canon_algorithm(algorithm))


def ha2(method: str, uri: str, algorithm: str = "MD5") -> str:
    """HA2 = H(method:digest-uri) for qop=auth or no qop (RFC 2617 3.2.2.3, RFC 7616 3.4.3).

    >>> ha2("GET", "/dir/index.html")
    '39aff3a2bab6126f332b942af96d3366'
    """
    return _h(f"{method}:{uri}", _canon_algorithm(algorithm))


def digest_response(
    ha1_hex: str,
    nonce: str,
    ha2_hex: str,
    *,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
    algorithm: str = "MD5",
) -> str:
    """The request-digest: with ``qop`` (RFC 2617 3.2.2.1) or in the RFC 2069 form without.

    >>> digest_response("939e7578ed9e3c518a452acee763bce9", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    ...                 "39aff3a2bab6126f332b942af96d3366", qop="auth", nc="00000001",
    ...                 cnonce="0a4f113b")
    '6629fae49393a05397450978507c4ef1'
    """
    alg = _canon_algorithm(algorithm)
    if qop is None:
        return _h(f"{ha1_hex}:{nonce}:{ha2_hex}", alg)
    return _h(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2_hex}", alg)


@dataclass(frozen=True)
class Challenge:
    """A digest challenge, for WWW-Authenticate (401) or Proxy-Authenticate (407).

    >>> Challenge(realm="sw1", nonce="abc", stale=True).header_value()
    'Digest realm="sw1", nonce="abc", algorithm=MD5, qop="auth", stale=TRUE'
    >>> Challenge.parse('Digest realm="sw1",nonce="abc",qop="auth,auth-int"').qop
    'auth,auth-int'
    """

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: str | None = "auth"
    stale: bool = False

    def header_value(self) -> str:
        """Render the value; qop-options is quoted as RFC 2617's grammar requires."""
        parts = [f"Digest realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop is not None:
            parts.append(f"qop={_quote(self.qop)}")
        if self.stale:
            parts.append("stale=TRUE")
        return ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> Challenge:
        """Read a WWW-Authenticate / Proxy-Authenticate value; DigestError if not usable."""
        scheme, p = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise DigestError(f"not a digest challenge: {scheme!r}")
        if "realm" not in p or "nonce" not in p:
            raise DigestError("digest challenge without realm or nonce")
        return cls(
            realm=p["realm"],
            nonce=p["nonce"],
            opaque=p.get("opaque"),
            algorithm=p.get("algorithm", "MD5"),
            qop=p.get("qop"),
            stale=p.get("stale", "").lower() == "true",
        )


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`.

    ``reason`` is one of ``"ok"``, ``"unknown user"``, ``"wrong password"``, ``"wrong realm"``,
    ``"stale nonce"``, ``"invalid nonce"``, ``"unsupported algorithm"``, ``"malformed"``,
    ``"replayed"``. It is
    for logs and CDRs: do not put it on the wire, where telling "unknown user" from "wrong
    password" would help an attacker enumerate accounts. ``stale`` is true only when the
    response was right for an expired nonce, so the next challenge should carry ``stale=TRUE``.

    >>> Verdict(ok=False, username=None, reason="malformed", stale=False).ok
    False
    """

    ok: bool
    username: str | None
    reason: str
    stale: bool = False


def _fail(reason: str, username: str | None = None) -> Verdict:
    return Verdict(ok=False, username=username, reason=reason, stale=False)


def verify(
    authorization: str,
    *,
    method: str,
    password_for: Callable[[str], str | None],
    realm: str,
    nonces: NonceFactory,
    now: float,
    algorithms: tuple[str, ...] = ("MD5",),
    counts: NonceCounts | None = None,
    parsed: tuple[str, Mapping[str, str]] | None = None,
) -> Verdict:
    """Check an Authorization / Proxy-Authorization value against our realm and nonces.

    ``parsed`` is :func:`parse_auth_params` of ``authorization`` when the caller has it already
    (it read the username first): the value is then not parsed again.

    ``password_for(username)`` returns the cleartext password or None for an unknown user; it
    is only called once the header and nonce are sound. The ``uri`` parameter is hashed as
    given (RFC 2617); comparing it with the Request-URI is left to the caller. ``opaque`` is not
    checked, since a stateless server has nothing to compare it with.

    >>> f = NonceFactory(b"0123456789abcdef")
    >>> verify('Digest username="bob"', method="INVITE", password_for=lambda u: None,
    ...        realm="sw1", nonces=f, now=0.0).reason
    'malformed'
    """
    if parsed is None:
        try:
            parsed = parse_auth_params(authorization)
        except DigestError:
            return _fail("malformed")
    scheme, p = parsed
    if scheme.lower() != "digest":
        return _fail("malformed")
    username = p.get("username")
    if any(k not in p for k in ("username", "realm", "nonce", "uri", "response")):
        return _fail("malformed", username)

    qop = p.get("qop")
    if qop is None:
        # RFC 2069 form: nc and cnonce MUST NOT appear without qop (RFC 2617 3.2.2).
        if "nc" in p or "cnonce" in p:
            return _fail("malformed", username)
    else:
        qop = qop.lower()
        # auth-int is never offered by our challenges; answering with it is a broken client.
        if qop != "auth" or not _NC.fullmatch(p.get("nc", "")) or not p.get("cnonce"):
            return _fail("malformed", username)

    if not any(rx.fullmatch(p["response"]) for rx in _LHEX.values()):
        return _fail("malformed", username)
    algorithm = p.get("algorithm", "MD5").upper()
    if algorithm not in _LHEX or algorithm not in {a.upper() for a in algorithms}:
        return _fail("unsupported algorithm", username)
    if not _LHEX[algorithm].fullmatch(p["response"]):
        return _fail("malformed", username)
    if p["realm"] != realm:
        return _fail("wrong realm", username)
    nonce_state = nonces.check(p["nonce"], now)
    if nonce_state == "invalid":
        return _fail("invalid nonce", username)

    password = password_for(p["username"])
    # An unknown user costs the same hashing as a known one (no timing oracle).
    expected = digest_response(
        ha1(p["username"], realm, _DUMMY_PASSWORD if password is None else password, algorithm),
        p["nonce"],
        ha2(method, p["uri"], algorithm),
        qop=qop,
        nc=p.get("nc", ""),
        cnonce=p.get("cnonce", ""),
        algorithm=algorithm,
    )
    # LHEX is specified lowercase, but some clients send uppercase; the digest is the same.
    match = hmac.compare_digest(expected.encode("ascii"), p["response"].lower().encode("ascii"))
    if password is None:
        return _fail("unknown user", username)
    if not match:
        return _fail("wrong password", username)
    if nonce_state == "stale":
        # Right password, old nonce: RFC 2617 3.2.1 says challenge again with stale=TRUE.
        return Verdict(ok=False, username=username, reason="stale nonce", stale=True)
    if counts is not None:
        nc = int(p["nc"], 16) if qop is not None else 1
        if not counts.accept(p["nonce"], nc, now, nonces.lifetime):
            return _fail("replayed", username)
    return Verdict(ok=True, username=username, reason="ok", stale=False)


def challenges(
    *, realm: str, nonces: NonceFactory, now: float, algorithms: tuple[str, ...] = ALGORITHMS,
    stale: bool = False, opaque: str | None = None,
) -> list[Challenge]:
    """One challenge per algorithm, in the order given (one header each, RFC 8760 2.4).

    All share one nonce: it is the nonce, not the algorithm, that carries time and MAC.

    >>> f = NonceFactory(b"0123456789abcdef")
    >>> [c.algorithm for c in challenges(realm="r", nonces=f, now=0.0)]
    ['SHA-256', 'MD5']
    """
    nonce = nonces.fresh(now)
    return [Challenge(realm=realm, nonce=nonce, opaque=opaque, algorithm=_canon_algorithm(a),
                      stale=stale) for a in algorithms]


def challenge(
    *, realm: str, nonces: NonceFactory, now: float, stale: bool = False, opaque: str | None = None
) -> Challenge:
    """A fresh challenge for a 401/407; pass ``stale=verdict.stale`` after a failed verify().

    >>> f = NonceFactory(b"0123456789abcdef")
    >>> challenge(realm="sw1", nonces=f, now=5.0, stale=True).header_value()
    'Digest realm="sw1", nonce="...", algorithm=MD5, qop="auth", stale=TRUE'
    """
    return Challenge(realm=realm, nonce=nonces.make(now), opaque=opaque, stale=stale)


def authorization(
    challenge_value: str,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The client side: the Authorization / Proxy-Authorization value answering a challenge.

    Uses qop=auth when the challenge offers it, else the RFC 2069 form (then ``cnonce`` and
    ``nc`` are unused). Raises DigestError for challenges we cannot answer (not Digest, not
    MD5, or only auth-int offered).

    >>> authorization('Digest realm="r", nonce="n"', username="u", password="p",
    ...               method="INVITE", uri="sip:1@r", cnonce="c")
    'Digest username="u", realm="r", nonce="n", uri="sip:1@r", response="...", algorithm=MD5'
    """
    ch = Challenge.parse(challenge_value)
    algorithm = _canon_algorithm(ch.algorithm)
    qop: str | None = None
    if ch.qop is not None:
        offered = {q.strip().lower() for q in ch.qop.split(",")}
        if "auth" not in offered:
            raise DigestError(f"no supported qop in {ch.qop!r}")
        qop = "auth"
        if not 1 <= nc <= 0xFFFFFFFF:
            raise ValueError("nc must fit in 8 hex digits and be at least 1")
        if not cnonce:
            raise ValueError("qop=auth needs a cnonce")
    nc_hex = f"{nc:08x}"
    response = digest_response(
        ha1(username, ch.realm, password, algorithm),
        ch.nonce,
        ha2(method, uri, algorithm),
        qop=qop,
        nc=nc_hex,
        cnonce=cnonce,
        algorithm=algorithm,
    )
    parts = [
        f"Digest username={_quote(username)}",
        f"realm={_quote(ch.realm)}",
        f"nonce={_quote(ch.nonce)}",
        f"uri={_quote(uri)}",
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop is not None:
        # nc and qop are unquoted tokens in credentials (RFC 2617 3.2.2), unlike the challenge.
        parts += [f"qop={qop}", f"nc={nc_hex}", f"cnonce={_quote(cnonce)}"]
    if ch.opaque is not None:
        parts.append(f"opaque={_quote(ch.opaque)}")
    return ", ".join(parts)
