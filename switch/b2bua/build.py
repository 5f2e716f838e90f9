"""Building the requests and responses the B2BUA sends on each leg (RFC 3261 sections 8, 12, 13).

A :class:`Leg` is one side of a call as the switch sees it: its dialog identifiers, the peer's
address, and what the switch says about itself there. The builders are pure: identifiers come
from an :class:`Ids` source (unique per process, cheap: a random boot prefix and a counter), so
tests can predict them.

>>> ids = Ids("t")
>>> ids.branch(), ids.tag(), ids.call_id("127.0.0.1")
('z9hG4bKt1', 't2', 't3@127.0.0.1')
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from switch.sip import Headers, Request, Response, make_response

__all__ = ["Ids", "Leg", "Peer", "ack_for_2xx", "cancel_for", "in_dialog", "respond",
           "uri_of", "user_of"]

#: Where a message goes or came from: (transport, host, port); transport is "udp" or "tcp".
Peer = tuple[str, str, int]

_CONTENT_TYPE = "application/sdp"


class Ids:
    """Branches, tags and Call-IDs: a per-process random prefix plus a counter."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else os.urandom(4).hex()
        self._next = itertools.count(1).__next__

    def branch(self) -> str:
        """A new RFC 3261 branch (magic cookie first)."""
        return f"z9hG4bK{self.prefix}{self._next():x}"

    def tag(self) -> str:
        """A new From/To tag."""
        return f"{self.prefix}{self._next():x}"

    def call_id(self, host: str) -> str:
        """A new Call-ID for a leg the switch originates."""
        return f"{self.prefix}{self._next():x}@{host}"


def uri_of(value: str) -> str:
    """The URI in a From/To/Contact value.

    >>> uri_of('"Bob" <sip:bob@10.0.0.2:5070;transport=tcp>;tag=9'), uri_of("sip:a@h;tag=1")
    ('sip:bob@10.0.0.2:5070;transport=tcp', 'sip:a@h')
    """
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1:end if end > 0 else len(value)].strip()
    return value.split(";", 1)[0].strip()


def user_of(uri: str) -> str:
    """The user part of a SIP URI ('' when there is none).

    >>> user_of("sip:900447700900123@sw1;user=phone"), user_of("sip:h.example")
    ('900447700900123', '')
    """
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user, at, _ = rest.partition("@")
    return user.split(";", 1)[0] if at else ""


@dataclass(slots=True)
class Leg:
    """One dialog of a call, seen from the switch.

    ``local_party`` / ``remote_party`` are whole From/To values with their tags (the remote tag
    is added once the peer has chosen it); ``remote_target`` is where in-dialog requests go
    (the peer's Contact); ``peer`` is the address messages are actually sent to.
    """

    peer: Peer
    local: Peer
    call_id: str
    local_party: str
    remote_party: str
    remote_target: str
    cseq: int = 0

    def contact(self, user: str) -> str:
        """Our Contact header value on this leg."""
        transport = ";transport=tcp" if self.local[0] == "tcp" else ""
        return f"<sip:{user}@{self.local[1]}:{self.local[2]}{transport}>"

    def via(self, branch: str) -> str:
        """A Via header value for a request we send on this leg."""
        transport, host, port = self.local
        return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch};rport"


def _dialog_headers(leg: Leg, ids: Ids, cseq_value: str) -> Headers:
    return Headers([
        ("Via", leg.via(ids.branch())),
        ("Max-Forwards", "70"),
        ("From", leg.local_party),
        ("To", leg.remote_party),
        ("Call-ID", leg.call_id),
        ("CSeq", cseq_value),
    ])


def in_dialog(leg: Leg, method: str, ids: Ids, *, body: bytes = b"",
              content_type: str | None = None, contact: str | None = None) -> Request:
    """A new request within ``leg``'s dialog (12.2.1.1), with the next local CSeq.

    >>> leg = Leg(("udp", "10.0.0.2", 5070), ("udp", "10.0.0.1", 5060), "c1",
    ...           "<sip:a@10.0.0.1>;tag=1", "<sip:b@10.0.0.2>;tag=2", "sip:b@10.0.0.2:5070")
    >>> bye = in_dialog(leg, "BYE", Ids("x"))
    >>> bye.uri, bye.headers.get("cseq"), bye.headers.get("to")
    ('sip:b@10.0.0.2:5070', '1 BYE', '<sip:b@10.0.0.2>;tag=2')
    """
    leg.cseq += 1
    headers = _dialog_headers(leg, ids, f"{leg.cseq} {method}")
    if contact is not None:
        headers.add("Contact", contact)
    if body:
        headers.add("Content-Type", content_type or _CONTENT_TYPE)
    headers.add("Content-Length", str(len(body)))
    return Request(method, leg.remote_target, headers, body)


def ack_for_2xx(leg: Leg, invite_cseq: int, ids: Ids) -> Request:
    """The ACK for a 2xx to our INVITE (13.2.2.4): its own branch, the INVITE's CSeq number.

    >>> leg = Leg(("udp", "h", 1), ("udp", "s", 2), "c", "<sip:a@s>;tag=1", "<sip:b@h>;tag=2",
    ...           "sip:b@h:1")
    >>> ack_for_2xx(leg, 1, Ids("x")).headers.get("cseq")
    '1 ACK'
    """
    headers = _dialog_headers(leg, ids, f"{invite_cseq} ACK")
    headers.add("Content-Length", "0")
    return Request("ACK", leg.remote_target, headers)


def respond(request: Request, status: int, to_tag: str | None, *, contact: str | None = None,
            body: bytes = b"", content_type: str | None = None,
            extra: list[tuple[str, str]] | None = None, reason: str | None = None) -> Response:
    """A response to ``request`` with our To tag, Contact and body as needed.

    >>> from switch.sip import parse_message
    >>> req = parse_message(b"INVITE sip:1@h SIP/2.0\\r\\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\\r\\n"
    ...                     b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:1@h>\\r\\nCall-ID: c\\r\\n"
    ...                     b"CSeq: 1 INVITE\\r\\n\\r\\n")
    >>> r = respond(req, 503, "t", extra=[("Retry-After", "1")])
    >>> r.headers.get("to"), r.headers.get("retry-after"), r.headers.get("content-length")
    ('<sip:1@h>;tag=t', '1', '0')
    """
    headers = list(extra or [])
    if contact is not None:
        headers.append(("Contact", contact))
    if body:
        headers.append(("Content-Type", content_type or _CONTENT_TYPE))
    headers.append(("Content-Length", str(len(body))))
    return make_response(request, status, reason, to_tag=to_tag, headers=headers, body=body)


def cancel_for(invite: Request) -> Request:
    """The CANCEL for an INVITE we sent (9.1): same top Via, URI, From, To, Call-ID, CSeq number.

    >>> leg = Leg(("udp", "h", 1), ("udp", "s", 2), "c", "<sip:a@s>;tag=1", "<sip:b@h>",
    ...           "sip:b@h:1")
    >>> inv = in_dialog(leg, "INVITE", Ids("x"))
    >>> c = cancel_for(inv)
    >>> c.method, c.headers.get("cseq"), c.headers.get("via") == inv.headers.get("via")
    ('CANCEL', '1 CANCEL', True)
    """
    h = invite.headers
    number = (h.get("cseq") or "1").split(" ", 1)[0]
    headers = Headers([
        ("Via", h.get("via") or ""),
        ("Max-Forwards", "70"),
        ("From", h.get("from") or ""),
        ("To", h.get("to") or ""),
        ("Call-ID", h.get("call-id") or ""),
        ("CSeq", f"{number} CANCEL"),
        ("Content-Length", "0"),
    ])
    return Request("CANCEL", invite.uri, headers)
