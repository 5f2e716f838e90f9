"""The seeded corpus of malformed datagrams for the hostile-input tests.

Not a test module. Messages are built with :mod:`tests.switch.hostile`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from tests.switch.hostile import (
    Msg,
    _b,
    request,
)

# --- the malformed corpus -------------------------------------------------------------------------

ROUTED = "447700900123"       # the test config routes 44 to a vendor
UNROUTED = "8613800138000"    # no customer rate: 404 no_route


@dataclass(frozen=True)
class CorpusItem:
    """One malformed datagram: what it is made from and how it was spoiled.

    ``base`` names the valid message it started as (``invite_routed``, ``invite_unrouted``,
    ``options``, ``bye``, ``register``); ``kind`` the mutation (``max_forwards=abc``,
    ``truncate@123``, ``flip*2`` ...). ``marker`` is the From user: a routed INVITE's
    From user reaches the vendor unchanged, so the vendor side can tell which item it got.
    """

    index: int
    base: str
    kind: str
    data: bytes
    call_id: bytes
    marker: bytes
    ruri: bytes


def _bases(switch: tuple[str, int], call_id: bytes, marker: bytes) -> dict[str, Msg]:
    common = {"call_id": call_id, "from_user": marker}
    return {
        "invite_routed": request("INVITE", ROUTED, switch, **common),
        "invite_unrouted": request("INVITE", UNROUTED, switch, **common),
        "options": request("OPTIONS", "ping", switch, **common),
        "bye": request("BYE", ROUTED, switch, to_tag=b"tt1", cseq=2, **common),
        "register": request("REGISTER", "acme", switch, **common),
    }


def _via_with(msg: Msg, *, transport: bytes = b"UDP", hostport: bytes = b"127.0.0.1:5099",
              branch: bool = True) -> bytes:
    via = msg.get(b"Via") or b""
    tail = b";" + via.split(b";", 1)[1] if branch and b";" in via else b""
    return b"SIP/2.0/" + transport + b" " + hostport + tail


_NON_UTF8 = (b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\x80abc")

#: Structured mutations: name -> function spoiling a copy of a base message.
STRUCTURED: dict[str, Callable[[Msg], Msg]] = {
    "via_no_branch": lambda m: m.set(b"Via", _via_with(m, branch=False)),
    "via_transport=XYZ": lambda m: m.set(b"Via", _via_with(m, transport=b"XYZ")),
    "via_transport=garbage": lambda m: m.set(b"Via", b"garbage"),
    "via_port=-1": lambda m: m.set(b"Via", _via_with(m, hostport=b"127.0.0.1:-1")),
    "via_port=65536": lambda m: m.set(b"Via", _via_with(m, hostport=b"127.0.0.1:65536")),
    "via_port=empty": lambda m: m.set(b"Via", _via_with(m, hostport=b"127.0.0.1:")),
    "max_forwards=-1": lambda m: m.set(b"Max-Forwards", b"-1"),
    "max_forwards=abc": lambda m: m.set(b"Max-Forwards", b"abc"),
    "max_forwards=empty": lambda m: m.set(b"Max-Forwards", b""),
    "max_forwards=20digits": lambda m: m.set(b"Max-Forwards", b"12345678901234567890"),
    "ruri_in_angle_brackets": lambda m: m.__class__(
        m.start.split(b" ")[0] + b" <" + m.start.split(b" ")[1] + b"> SIP/2.0",
        m.headers, m.body, m.content_length),
    "bare_cr_in_subject": lambda m: m.set(b"Subject", b"hello\rworld"),
    "bare_lf_in_subject": lambda m: m.set(b"Subject", b"hello\nworld"),
    "bare_cr_in_from": lambda m: m.set(b"From", (m.get(b"From") or b"") + b";x=a\rb"),
    "bare_lf_in_from": lambda m: m.set(b"From", (m.get(b"From") or b"") + b";x=a\nb"),
    "bare_cr_in_to": lambda m: m.set(b"To", (m.get(b"To") or b"") + b";x=a\rb"),
    "bare_lf_in_call_id": lambda m: m.set(b"Call-ID", (m.get(b"Call-ID") or b"") + b"\nx"),
    "bare_cr_in_via": lambda m: m.set(b"Via", (m.get(b"Via") or b"") + b";x=a\rb"),
    "bare_lf_in_user_agent": lambda m: m.set(b"User-Agent", b"ua\nx"),
    "nul_in_subject": lambda m: m.set(b"Subject", b"hello\x00world"),
    "nul_in_user_agent": lambda m: m.set(b"User-Agent", b"ua\x00x"),
    "cseq=2**32": lambda m: m.set(b"CSeq", _b(2**32) + b" " + m.start.split(b" ")[0]),
    "cseq=2**31": lambda m: m.set(b"CSeq", _b(2**31) + b" " + m.start.split(b" ")[0]),
    "cseq=-1": lambda m: m.set(b"CSeq", b"-1 " + m.start.split(b" ")[0]),
    "content_length=abc": lambda m: m.__class__(m.start, m.headers, m.body, b"abc"),
    "content_length=too_big": lambda m: m.__class__(m.start, m.headers, m.body, b"99999"),
}
for _i, _bad in enumerate(_NON_UTF8):
    STRUCTURED[f"non_utf8_{_i}_in_to_user"] = lambda m, b=_bad: m.set(
        b"To", (m.get(b"To") or b"").replace(b"<sip:", b"<sip:" + b))
    STRUCTURED[f"non_utf8_{_i}_in_from_display"] = lambda m, b=_bad: m.set(
        b"From", b'"x' + b + b'" ' + (m.get(b"From") or b""))
    STRUCTURED[f"non_utf8_{_i}_in_user_agent"] = lambda m, b=_bad: m.set(b"User-Agent", b)
    STRUCTURED[f"non_utf8_{_i}_in_subject"] = lambda m, b=_bad: m.set(b"Subject", b"s" + b)
    STRUCTURED[f"non_utf8_{_i}_in_contact"] = lambda m, b=_bad: m.set(
        b"Contact", b"<sip:c" + b + b"@127.0.0.1:5099>")
    STRUCTURED[f"non_utf8_{_i}_in_call_id"] = lambda m, b=_bad: m.set(
        b"Call-ID", (m.get(b"Call-ID") or b"") + b)


def malformed_corpus(switch: tuple[str, int], *, size: int = 2000,
                     seed: int = 8) -> list[CorpusItem]:
    """About ``size`` malformed datagrams, the same for the same seed and switch address.

    Every structured mutation (:data:`STRUCTURED`) on every base message first; the rest are
    truncations at random points and random byte flips (1-3 bytes) of random bases. Each item
    has its own Call-ID and marker (From user), so answers and vendor INVITEs can be told apart.

    >>> a = malformed_corpus(("127.0.0.1", 5060), size=300)
    >>> b = malformed_corpus(("127.0.0.1", 5060), size=300)
    >>> len(a), a == b, len({i.call_id for i in a}) == len(a)
    (300, True, True)
    """
    rng = random.Random(seed)
    items: list[CorpusItem] = []
    counter = itertools.count()

    def add(base: str, kind: str, spoil: Callable[[Msg], Msg | bytes]) -> None:
        index = next(counter)
        # distinct in several characters, so a byte flip cannot turn one into another
        tag = f"{index:04d}{rng.getrandbits(32):08x}".encode()
        call_id, marker = b"hx" + tag, b"m" + tag
        msg = _bases(switch, call_id, marker)[base]
        out = spoil(msg.copy())
        data = out if isinstance(out, bytes) else out.encode()
        ruri = (out.start if isinstance(out, Msg) else msg.start).split(b" ")[1]
        items.append(CorpusItem(index, base, kind, data, call_id, marker, ruri))

    bases = ["invite_routed", "invite_unrouted", "options", "bye", "register"]
    for kind, spoil in STRUCTURED.items():
        for base in bases:
            add(base, kind, spoil)
    while len(items) < size:
        base = rng.choice(bases)
        if rng.random() < 0.4:
            def cut(m: Msg) -> bytes:
                data = m.encode()
                return data[:rng.randrange(1, len(data))]
            add(base, "truncate", cut)
        else:
            flips = rng.randint(1, 3)

            def flip(m: Msg, flips: int = flips) -> bytes:
                data = bytearray(m.encode())
                for _ in range(flips):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                return bytes(data)
            add(base, f"flip*{flips}", flip)
    return items[:size]
