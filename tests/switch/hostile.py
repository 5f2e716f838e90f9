"""Hostile SIP traffic for the end-to-end tests of issue 8: raw messages and the spool as bytes.

The corpus lives in :mod:`tests.switch.hostile_corpus`, the raw peers in
:mod:`tests.switch.hostile_peers`.

Not a test module; import as ``from tests.switch.hostile import ...``. Everything here works on
bytes, never on decoded text, so a test can put any byte anywhere (a non-UTF-8 From user, a NUL
in a header value, a bare CR) and echo what the switch sent back byte for byte (an ACK or BYE
must carry the switch's To tag and our own odd Call-ID exactly).

- :class:`Msg` holds a start line, header lines and a body; :func:`request` builds a well-formed
  request as a ``Msg`` that a test then spoils.
- ``hostile_corpus.malformed_corpus`` makes about 2,000 malformed datagrams from valid INVITE,
  OPTIONS, BYE and REGISTER messages, deterministically (seeded).
- ``hostile_peers.UdpPeer`` is a raw UDP socket with a receiver thread that keeps every message
  it gets; ``RawCaller`` also ACKs final answers and hangs up answered calls; ``RawVendor``
  plays a vendor that answers every INVITE with a fixed failure code.
- ``hostile_peers.tcp_exchange`` writes bytes on a TCP connection and reads the answers until EOF.

Addresses are on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CRLF = b"\r\n"
HOST = "127.0.0.1"

# Compact header names (RFC 3261 7.3.3) that can show up in what the switch sends or relays.
_COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id", b"m": b"contact",
            b"l": b"content-length", b"c": b"content-type", b"s": b"subject"}


def _b(value: bytes | str | int) -> bytes:
    """Bytes as they are; text as UTF-8; numbers as digits."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


# --- messages ---------------------------------------------------------------------------------


@dataclass
class Msg:
    """A SIP message as raw lines: spoil any part, then ``encode()``.

    ``content_length`` None writes the body's true length; a value (bytes) is written as
    given; ``False`` leaves the header out.

    >>> m = Msg(b"OPTIONS sip:x@h SIP/2.0", [(b"Call-ID", b"c1")], b"")
    >>> m.set(b"Call-ID", b"c\\xff").encode()
    b'OPTIONS sip:x@h SIP/2.0\\r\\nCall-ID: c\\xff\\r\\nContent-Length: 0\\r\\n\\r\\n'
    """

    start: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    content_length: bytes | bool | None = None

    def copy(self) -> Msg:
        """An independent copy to spoil."""
        return Msg(self.start, list(self.headers), self.body, self.content_length)

    def get(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (case-insensitive)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set(self, name: bytes, value: bytes) -> Msg:
        """Replace the first ``name`` header's value (append one when absent); returns self."""
        for i, (key, _) in enumerate(self.headers):
            if key.lower() == name.lower():
                self.headers[i] = (key, value)
                return self
        self.headers.append((name, value))
        return self

    def drop(self, name: bytes) -> Msg:
        """Remove every ``name`` header; returns self."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return self

    def encode(self) -> bytes:
        """The wire bytes."""
        lines = [self.start] + [k + b": " + v for k, v in self.headers]
        if self.content_length is None:
            lines.append(b"Content-Length: " + _b(len(self.body)))
        elif self.content_length is not False:
            lines.append(b"Content-Length: " + _b(self.content_length))
        return CRLF.join(lines) + CRLF + CRLF + self.body


SDP = (b"v=0\r\no=hostile 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


def request(method: str, number: bytes | str, switch: tuple[str, int], *,
            call_id: bytes | str, from_user: bytes | str = b"15550000001",
            to_user: bytes | str | None = None, branch: bytes | str | None = None,
            local_port: int = 5099, transport: str = "UDP", cseq: int = 1,
            from_tag: bytes | str = b"ft1", to_tag: bytes | str | None = None,
            ruri: bytes | str | None = None, extra: Iterable[tuple[bytes, bytes]] = (),
            body: bytes | None = None) -> Msg:
    """A well-formed request from a customer on 127.0.0.1 to ``number`` at the switch.

    INVITEs carry an SDP offer unless ``body`` is given. ``branch`` defaults to an RFC 3261
    one derived from the Call-ID (pass ``b""`` for an RFC 2543-style Via without branch).

    >>> m = request("OPTIONS", "44", ("127.0.0.1", 5060), call_id="c9")
    >>> m.start, m.get(b"CSeq")
    (b'OPTIONS sip:44@127.0.0.1:5060 SIP/2.0', b'1 OPTIONS')
    >>> m.get(b"Via")
    b'SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKc9'
    >>> request("INVITE", "44", ("127.0.0.1", 5060), call_id=b"c\\xff\\xc3(9").get(b"Via")
    b'SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKc9'
    """
    host, port = switch
    number = _b(number)
    call_id = _b(call_id)
    if branch is None:
        # a branch is a token: keep only the Call-ID's token characters (ASCII: a poisoned
        # Call-ID must not spoil the Via too, or the Via is what gets the message refused)
        branch = b"z9hG4bK" + bytes(c for c in call_id
                                    if c < 0x80 and (chr(c).isalnum() or c in b"-.!%*_+`'~"))
    via = b"SIP/2.0/" + _b(transport) + b" " + _b(HOST) + b":" + _b(local_port)
    if branch:
        via += b";branch=" + _b(branch)
    to = b"<sip:" + _b(to_user if to_user is not None else number) + b"@" + _b(host) + b">"
    if to_tag is not None:
        to += b";tag=" + _b(to_tag)
    headers = [
        (b"Via", via),
        (b"From", b"<sip:" + _b(from_user) + b"@" + _b(HOST) + b">;tag=" + _b(from_tag)),
        (b"To", to),
        (b"Call-ID", call_id),
        (b"CSeq", _b(cseq) + b" " + _b(method)),
        (b"Contact", b"<sip:hostile@" + _b(HOST) + b":" + _b(local_port) + b">"),
        (b"Max-Forwards", b"70"),
        (b"User-Agent", b"ratelab-hostile"),
        *extra,
    ]
    if body is None and method == "INVITE":
        body = SDP
    if body:
        headers.append((b"Content-Type", b"application/sdp"))
    target = _b(ruri) if ruri is not None else b"sip:" + number + b"@" + _b(host) + b":" + _b(port)
    return Msg(_b(method) + b" " + target + b" SIP/2.0", headers, body or b"")


@dataclass
class Sip:
    """A received message, parsed only as far as the tests need (values stay bytes).

    >>> s = parse_sip(b"SIP/2.0 404 Not Found\\r\\ni: c1\\r\\nCSeq: 1 INVITE\\r\\n\\r\\n")
    >>> s.status, s.call_id, s.cseq_method
    (404, b'c1', b'INVITE')
    """

    start: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raw: bytes
    at: float = 0.0
    source: tuple[str, int] = ("", 0)

    @property
    def status(self) -> int | None:
        """The status code of a response; None for a request."""
        if not self.start.startswith(b"SIP/2.0 "):
            return None
        code = self.start[8:11]
        return int(code) if code.isdigit() else None

    @property
    def method(self) -> bytes | None:
        """The method of a request; None for a response."""
        return None if self.status is not None else self.start.split(b" ", 1)[0]

    def get(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lowercase; compact forms are expanded)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: bytes) -> list[bytes]:
        """Every value of header ``name``, in order."""
        return [v for k, v in self.headers if k == name]

    @property
    def call_id(self) -> bytes:
        return self.get(b"call-id") or b""

    @property
    def cseq_number(self) -> int:
        number = (self.get(b"cseq") or b"0").split(b" ", 1)[0]
        return int(number) if number.isdigit() else -1

    @property
    def cseq_method(self) -> bytes:
        parts = (self.get(b"cseq") or b"").split(b" ", 1)
        return parts[1].strip() if len(parts) == 2 else b""


def parse_sip(data: bytes) -> Sip | None:
    """Split one message into start line, headers and body; None when it is not SIP-shaped."""
    head, sep, body = data.partition(CRLF + CRLF)
    if not sep:
        head, body = data, b""
    lines = head.split(CRLF)
    if not lines or not lines[0]:
        return None
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    return Sip(lines[0], headers, body, data)


def split_stream(buf: bytes) -> tuple[list[bytes], bytes]:
    """Frame a TCP byte stream by Content-Length: (complete messages, the rest).

    >>> one = b"SIP/2.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi"
    >>> split_stream(one + one[:5])
    ([b'SIP/2.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi'], b'SIP/2')
    """
    out: list[bytes] = []
    while True:
        buf = buf.lstrip(CRLF)
        end = buf.find(CRLF + CRLF)
        if end < 0:
            return out, buf
        head = parse_sip(buf[:end])
        length_value = (head.get(b"content-length") if head else None) or b"0"
        length = int(length_value) if length_value.isdigit() else 0
        total = end + 4 + length
        if len(buf) < total:
            return out, buf
        out.append(buf[:total])
        buf = buf[total:]


def ack_for(invite: Msg, answer: Sip) -> bytes:
    """The ACK for a final answer to ``invite`` (17.1.1.3 for non-2xx, 13.2.2.4 for 2xx).

    A non-2xx ACK reuses the INVITE's Request-URI and top Via (same branch); the 2xx ACK is a
    new transaction. Both take the To (with tag) from the answer, byte for byte.
    """
    via = invite.get(b"Via") or b""
    if answer.status is not None and 200 <= answer.status < 300:
        via = via.split(b";branch=", 1)[0] + b";branch=z9hG4bKack" + _b(time.monotonic_ns())
    msg = Msg(b"ACK " + invite.start.split(b" ")[1] + b" SIP/2.0", [
        (b"Via", via),
        (b"From", invite.get(b"From") or b""),
        (b"To", answer.get(b"to") or b""),
        (b"Call-ID", invite.get(b"Call-ID") or b""),
        (b"CSeq", (invite.get(b"CSeq") or b"1").split(b" ", 1)[0] + b" ACK"),
        (b"Max-Forwards", b"70"),
    ])
    return msg.encode()


def ack_from_answer(answer: Sip, ruri: bytes) -> bytes:
    """The ACK for a non-2xx final ``answer`` built from the answer alone (17.1.1.3).

    For datagrams too spoiled to rebuild: Via, From, To, Call-ID and the CSeq number are the
    ones the switch echoed, so the ACK matches its server transaction whatever we had sent.
    """
    return Msg(b"ACK " + ruri + b" SIP/2.0", [
        (b"Via", (answer.all(b"via") or [b""])[0]),
        (b"From", answer.get(b"from") or b""),
        (b"To", answer.get(b"to") or b""),
        (b"Call-ID", answer.call_id),
        (b"CSeq", _b(max(answer.cseq_number, 0)) + b" ACK"),
        (b"Max-Forwards", b"70"),
    ]).encode()


def bye_for(invite: Msg, answer: Sip) -> bytes:
    """A BYE ending the dialog that ``answer`` (a 2xx to ``invite``) established."""
    via = (invite.get(b"Via") or b"").split(b";branch=", 1)[0]
    msg = Msg(b"BYE " + invite.start.split(b" ")[1] + b" SIP/2.0", [
        (b"Via", via + b";branch=z9hG4bKbye" + _b(time.monotonic_ns())),
        (b"From", invite.get(b"From") or b""),
        (b"To", answer.get(b"to") or b""),
        (b"Call-ID", invite.get(b"Call-ID") or b""),
        (b"CSeq", b"2 BYE"),
        (b"Max-Forwards", b"70"),
    ])
    return msg.encode()


# --- the spool, read as bytes ---------------------------------------------------------------------


@dataclass
class SpoolLines:
    """Every line of the spool's CDR files: the records that load, and the lines that do not."""

    records: list[dict]
    bad: list[tuple[str, bytes, str]]   # (file name, line, why)


def read_spool(spool: Path) -> SpoolLines:
    """Read ``cdr-*.jsonl`` strictly: each line must be UTF-8 (the contract) and a JSON object."""
    records: list[dict] = []
    bad: list[tuple[str, bytes, str]] = []
    for path in sorted(spool.glob("cdr-*.jsonl")):
        for line in path.read_bytes().splitlines():
            if not line:
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                bad.append((path.name, line[:200], str(exc)))
                continue
            if not isinstance(record, dict):
                bad.append((path.name, line[:200], "not an object"))
                continue
            records.append(record)
    return SpoolLines(records, bad)


def udp_drops(port: int) -> int | None:
    """The kernel's drop counter of the UDP socket bound to ``port`` (from /proc/net/udp)."""
    want = f"{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) > 12 and parts[1].split(":")[1] == want:
            return int(parts[-1])
    return None
