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
import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from switch.sip import (
    Headers,
    Request,
    Response,
    is_request_uri,
    make_response,
    server_key,
    uri_of,
)

__all__ = ["Ids", "Leg", "Peer", "Problem", "ack_for_2xx", "cancel_for", "check_request",
           "in_dialog", "one_line", "party_uri", "respond", "sdp_body", "sip_uri", "uri_of",
           "uri_user", "user_of"]


class Peer(NamedTuple):
    """Where a message goes or came from. Still a tuple: it hashes and compares equal to the
    plain ``(transport, host, port)`` it replaced, so either may be used as a key.

    >>> peer = Peer("udp", "127.0.0.1", 5071)
    >>> peer.transport, peer.host, peer.port, peer == ("udp", "127.0.0.1", 5071)
    ('udp', '127.0.0.1', 5071, True)
    """

    transport: str  # "udp" or "tcp"
    host: str
    port: int


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


def user_of(uri: str) -> str:
    """The user part of a SIP URI ('' when there is none).

    >>> user_of("sip:900447700900123@sw1;user=phone"), user_of("sip:h.example")
    ('900447700900123', '')
    """
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user, at, _ = rest.partition("@")
    return user.split(";", 1)[0] if at else ""


# A URI scheme (RFC 3986 3.1), and what may not appear in a URI the engine copies into a
# message: whitespace and controls (they would end the start line or a header), and the
# delimiters of a name-addr. Bytes that are not UTF-8 (surrogates after parsing) are allowed:
# they are the peer's to send, and the CDR keeps them (docs/cdr.md).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_NOT_IN_URI = re.compile(r'[\x00-\x20\x7f<>"]')


def party_uri(value: str) -> str | None:
    """The URI of a From/To/Contact value, or None when it holds no usable URI.

    >>> party_uri('"Bob" <sip:bob@10.0.0.2>;tag=9'), party_uri("tel:+4477;tag=1")
    ('sip:bob@10.0.0.2', 'tel:+4477')
    >>> party_uri("garbage"), party_uri("<sip:a b@h>"), party_uri("*")
    (None, None, None)
    """
    uri = uri_of(value)
    scheme, colon, rest = uri.partition(":")
    if not colon or not rest or not _SCHEME.match(scheme) or _NOT_IN_URI.search(uri):
        return None
    return uri


def sip_uri(value: str) -> str | None:
    """Like :func:`party_uri`, but only a ``sip:`` or ``sips:`` URI that is a valid
    Request-URI (RFC 3261 25.1; ASCII, anything else %-escaped): one the switch can send a
    request to, and that the peer's parser will take.

    >>> sip_uri("<sips:bob@h:5061>"), sip_uri("<tel:+4477>"), sip_uri("<sip:b\\udcff@h>")
    ('sips:bob@h:5061', None, None)
    >>> sip_uri("<sip:v@127.0.0.1:99999>") is None
    True
    """
    uri = party_uri(value)
    if uri is None or not uri.isascii() or uri.partition(":")[0].lower() not in ("sip", "sips"):
        return None
    return uri if is_request_uri(uri) else None


def uri_user(user: str) -> str:
    """``user`` escaped for the user part of a SIP URI (RFC 3261 25.1): what a peer sent may
    hold anything, what the switch writes into a header may not.

    >>> uri_user("+44 (0)20"), uri_user("bob%20x"), uri_user("a\\r\\n>b")
    ('+44%20(0)20', 'bob%20x', 'a%0D%0A%3Eb')
    """
    # unreserved, user-unreserved and "%" (an escape the peer already wrote stays as it is)
    return quote(user, safe="-_.!~*'()&=+$,;?/%", errors="surrogateescape")


def one_line(value: str) -> str:
    """``value`` with any CR or LF replaced by a space, so it cannot start a header of its own.

    >>> one_line("<sip:a@h>;tag=1\\r\\nX-Evil: 1")
    '<sip:a@h>;tag=1  X-Evil: 1'
    """
    if "\r" in value or "\n" in value:
        return value.replace("\r", " ").replace("\n", " ")
    return value


#: Why the engine cannot take a request: (status, reason phrase, counter in Engine.stats).
Problem = tuple[int, str, str]

# The fields every response copies (8.2.6.2): a problem in one has its own counter.
_COPIED = {"Via": "bad_via", "From": "bad_from", "To": "bad_to", "Call-ID": "bad_call_id",
           "CSeq": "bad_cseq"}


def check_request(request: Request) -> Problem | None:
    """What stops the engine from handling ``request``, checked before any work is done.

    A top Via without a sent-by (no transaction can be matched to it), a CR, LF or NUL in any
    header value, a From or To without a URI, an empty Call-ID: 400 with a reason phrase
    naming the header. For an INVITE also a Request-URI whose scheme is not sip
    or sips (416) and a Contact that is not a SIP URI (400: in-dialog requests go there). A
    Via transport the switch does not speak (``SIP/2.0/XYZ``) is no problem: answers go back
    on the transport the request came in on.

    The strict parser (:mod:`switch.sip.message`) already refuses most of these; this keeps
    the engine safe for any :class:`Request` it is given.

    >>> def req(uri="sip:1@h", frm="<sip:a@h>;tag=1", contact="<sip:a@h>"):
    ...     return Request("INVITE", uri, Headers([
    ...         ("Via", "SIP/2.0/XYZ a;branch=z9hG4bK1"), ("From", frm), ("To", "<sip:1@h>"),
    ...         ("Call-ID", "c"), ("CSeq", "1 INVITE"), ("Contact", contact)]))
    >>> check_request(req()) is None
    True
    >>> check_request(req(frm="garbage")), check_request(req(uri="tel:+4477"))
    ((400, 'Bad From', 'bad_from'), (416, 'Unsupported URI Scheme', 'unsupported_uri_scheme'))
    >>> check_request(req(contact="*"))
    (400, 'Bad Contact', 'bad_contact')
    """
    headers = request.headers
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\x00" in value:
            # A 100 Trying copies Timestamp too: no field may carry a line break onwards.
            counter = _COPIED.get(name)
            if counter is not None:
                return 400, f"Bad {name}", counter
            return 400, f"Bad Header {name[:40]}", "bad_header"
    if server_key(request) is None:
        return 400, "Bad Via", "bad_via"
    if party_uri(headers.get("from") or "") is None:
        return 400, "Bad From", "bad_from"
    if party_uri(headers.get("to") or "") is None:
        return 400, "Bad To", "bad_to"
    if not headers.get("call-id"):
        return 400, "Bad Call-ID", "bad_call_id"
    if request.method == "INVITE":
        if request.uri.partition(":")[0].lower() not in ("sip", "sips"):
            return 416, "Unsupported URI Scheme", "unsupported_uri_scheme"
        contact = headers.get("contact")
        if contact is not None and sip_uri(contact) is None:
            return 400, "Bad Contact", "bad_contact"
    return None


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
        local = self.local
        transport = ";transport=tcp" if local.transport == "tcp" else ""
        return f"<sip:{user}@{local.host}:{local.port}{transport}>"

    def via(self, branch: str) -> str:
        """A Via header value for a request we send on this leg."""
        transport, host, port = self.local
        return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch};rport"


def _dialog_headers(leg: Leg, ids: Ids, cseq_value: str) -> Headers:
    # The parties and the Call-ID may come from a peer: one_line keeps each to its own line.
    return Headers([
        ("Via", leg.via(ids.branch())),
        ("Max-Forwards", "70"),
        ("From", one_line(leg.local_party)),
        ("To", one_line(leg.remote_party)),
        ("Call-ID", one_line(leg.call_id)),
        ("CSeq", cseq_value),
    ])


def in_dialog(leg: Leg, method: str, ids: Ids, *, body: bytes = b"",
              content_type: str | None = None, contact: str | None = None) -> Request:
    """A new request within ``leg``'s dialog (12.2.1.1), with the next local CSeq.

    >>> leg = Leg(Peer("udp", "10.0.0.2", 5070), Peer("udp", "10.0.0.1", 5060), "c1",
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
        headers.add("Content-Type", one_line(content_type or _CONTENT_TYPE))
    headers.add("Content-Length", str(len(body)))
    return Request(method, leg.remote_target, headers, body)


def ack_for_2xx(leg: Leg, invite_cseq: int, ids: Ids) -> Request:
    """The ACK for a 2xx to our INVITE (13.2.2.4): its own branch, the INVITE's CSeq number.

    >>> leg = Leg(Peer("udp", "h", 1), Peer("udp", "s", 2), "c", "<sip:a@s>;tag=1",
    ...           "<sip:b@h>;tag=2", "sip:b@h:1")
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

    Values copied from the request (Via, From, To, Call-ID, CSeq) and a relayed ``reason``
    are kept to one line each (:func:`one_line`): a peer's header cannot inject another.

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
    response = make_response(request, status, one_line(reason) if reason else reason,
                             to_tag=to_tag, headers=headers, body=body)
    items = response.headers.items()
    if any("\r" in value or "\n" in value for _, value in items):
        response.headers = Headers([(name, one_line(value)) for name, value in items])
    return response


def sdp_body(message: Request | Response) -> bytes:
    """The body of ``message`` if it is SDP, else nothing: what the switch passes on to the other
    leg with a relayed answer (any other body type stays on its own leg).

    >>> from switch.sip import parse_message
    >>> req = parse_message(b"INVITE sip:1@h SIP/2.0\\r\\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\\r\\n"
    ...                     b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:1@h>\\r\\nCall-ID: c\\r\\n"
    ...                     b"CSeq: 1 INVITE\\r\\n\\r\\n")
    >>> def answer(content_type: str) -> Response:
    ...     return respond(req, 200, "t", body=b"v=0", content_type=content_type)
    >>> sdp_body(answer("Application/SDP ; x=1")), sdp_body(answer("text/plain"))
    (b'v=0', b'')
    """
    content_type = message.headers.get("content-type") or ""
    if message.body and content_type.split(";", 1)[0].strip().lower() == _CONTENT_TYPE:
        return message.body
    return b""


def cancel_for(invite: Request) -> Request:
    """The CANCEL for an INVITE we sent (9.1): same top Via, URI, From, To, Call-ID, CSeq number.

    >>> leg = Leg(Peer("udp", "h", 1), Peer("udp", "s", 2), "c", "<sip:a@s>;tag=1",
    ...           "<sip:b@h>", "sip:b@h:1")
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
        ("From", one_line(h.get("from") or "")),
        ("To", one_line(h.get("to") or "")),
        ("Call-ID", one_line(h.get("call-id") or "")),
        ("CSeq", f"{number} CANCEL"),
        ("Content-Length", "0"),
    ])
    return Request("CANCEL", invite.uri, headers)
