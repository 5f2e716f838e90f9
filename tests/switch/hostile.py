"""Hostile SIP traffic for the end-to-end tests of issue 8: raw messages, a corpus, raw peers.

Not a test module; import as ``from tests.switch.hostile import ...``. Everything here works on
bytes, never on decoded text, so a test can put any byte anywhere (a non-UTF-8 From user, a NUL
in a header value, a bare CR) and echo what the switch sent back byte for byte (an ACK or BYE
must carry the switch's To tag and our own odd Call-ID exactly).

- :class:`Msg` holds a start line, header lines and a body; :func:`request` builds a well-formed
  request as a ``Msg`` that a test then spoils.
- :func:`malformed_corpus` makes about 2,000 malformed datagrams from valid INVITE, OPTIONS,
  BYE and REGISTER messages, deterministically (seeded).
- :class:`UdpPeer` is a raw UDP socket with a receiver thread that keeps every message it gets;
  :class:`RawCaller` also ACKs final answers and hangs up answered calls; :class:`RawVendor`
  plays a vendor that answers every INVITE with a fixed failure code.
- :func:`tcp_exchange` writes bytes on a TCP connection and reads the answers until EOF.

Addresses are on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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


# --- raw peers ----------------------------------------------------------------------------------


class UdpPeer:
    """A UDP socket on 127.0.0.1 with a thread keeping every datagram it receives.

    ``received`` holds them (parsed; ``Sip.raw`` has the bytes) in arrival order. Subclasses
    react in :meth:`on_message` (called on the receiver thread). Use as a context manager.
    """

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.sock.settimeout(0.1)   # lets the receiver notice close() promptly
        self.port = self.sock.getsockname()[1]
        self.received: list[Sip] = []
        self.unparsed: list[bytes] = []
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.sock.sendto(data, address)

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = parse_sip(data)
            with self._cond:
                if msg is None:
                    self.unparsed.append(data)
                else:
                    msg.at = time.monotonic()
                    msg.source = (source[0], source[1])
                    self.received.append(msg)
                self._cond.notify_all()
            if msg is not None:
                self.on_message(msg)

    def on_message(self, msg: Sip) -> None:
        """React to a received message (receiver thread); nothing by default."""

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds (re-checked on every datagram); False at timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def snapshot(self) -> list[Sip]:
        """A copy of what was received so far."""
        with self._cond:
            return list(self.received)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> UdpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Placed:
    """One INVITE a :class:`RawCaller` sent, and what came of it."""

    invite: Msg
    label: str
    final: Sip | None = None
    provisional: list[int] = field(default_factory=list)
    bye_answer: Sip | None = None
    others: list[int] = field(default_factory=list)   # answers after the first final


class RawCaller(UdpPeer):
    """A customer sending raw INVITEs: ACKs every final answer and hangs up answered calls.

    Answers are matched to INVITEs by Call-ID (bytes). A 2xx is ACKed and followed at once by
    a BYE, whose answer lands in ``Placed.bye_answer``: a hostile call that was routed is
    cleaned up instead of lingering in the switch and the vendor.
    """

    def __init__(self, switch: tuple[str, int]) -> None:
        self.switch = switch
        self.calls: dict[bytes, Placed] = {}
        super().__init__()

    def invite(self, msg: Msg, label: str = "") -> Placed:
        """Send ``msg`` (an INVITE) to the switch and track it."""
        placed = Placed(msg, label)
        with self._cond:
            self.calls[msg.get(b"Call-ID") or b""] = placed
        self.sendto(msg.encode(), self.switch)
        return placed

    def on_message(self, msg: Sip) -> None:
        placed = self.calls.get(msg.call_id)
        status = msg.status
        if placed is None or status is None:
            return
        if msg.cseq_method == b"BYE":
            with self._cond:
                placed.bye_answer = placed.bye_answer or msg
                self._cond.notify_all()
            return
        if status < 200:
            placed.provisional.append(status)
            return
        with self._cond:
            if placed.final is None:
                placed.final = msg
            else:
                placed.others.append(status)
            self._cond.notify_all()
        # every final is ACKed, retransmissions too (our ACK may have been lost)
        self.sendto(ack_for(placed.invite, msg), self.switch)
        if 200 <= status < 300 and placed.final is msg:
            self.sendto(bye_for(placed.invite, msg), self.switch)

    def unanswered(self) -> list[Placed]:
        """INVITEs without a final answer so far."""
        with self._cond:
            return [p for p in self.calls.values() if p.final is None]

    def hung_up_unanswered(self) -> list[Placed]:
        """Answered (2xx) calls whose BYE has no answer so far."""
        with self._cond:
            return [p for p in self.calls.values() if p.final is not None
                    and p.final.status is not None and 200 <= p.final.status < 300
                    and p.bye_answer is None]


class RawVendor(UdpPeer):
    """A vendor that answers every INVITE with ``status`` at once and absorbs the rest.

    ``invites`` lists the INVITEs that reached it (retransmissions included: use
    :meth:`from_users` for the distinct callers). A CANCEL or BYE gets 200.
    """

    def __init__(self, status: int = 486, reason: bytes = b"Busy Here") -> None:
        self.status = status
        self.reason = reason
        self.invites: list[Sip] = []
        super().__init__()

    def on_message(self, msg: Sip) -> None:
        method = msg.method
        if method == b"INVITE":
            self.invites.append(msg)
            self._answer(msg, self.status, self.reason, to_tag=b"vt1")
        elif method in (b"CANCEL", b"BYE"):
            self._answer(msg, 200, b"OK")

    def _answer(self, req: Sip, status: int, reason: bytes, to_tag: bytes | None = None) -> None:
        to = req.get(b"to") or b""
        if to_tag is not None and b";tag=" not in to:
            to += b";tag=" + to_tag
        headers = [(b"Via", v) for v in req.all(b"via")]
        headers += [(b"From", req.get(b"from") or b""), (b"To", to),
                    (b"Call-ID", req.call_id), (b"CSeq", req.get(b"cseq") or b"")]
        start = b"SIP/2.0 " + _b(status) + b" " + reason
        self.sendto(Msg(start, headers).encode(), req.source)

    def from_users(self) -> set[bytes]:
        """The From users (the customers' callers, passed through) of every INVITE received."""
        with self._cond:
            invites = list(self.invites)
        users = set()
        for invite in invites:
            value = invite.get(b"from") or b""
            users.add(value.split(b"sip:", 1)[-1].split(b"@", 1)[0])
        return users


def tcp_exchange(address: tuple[str, int], data: bytes | list[bytes], *,
                 until: Callable[[list[Sip]], bool] | None = None,
                 timeout: float = 5.0) -> tuple[list[Sip], bool]:
    """Write ``data`` (a list: one write each) on a new TCP connection; read answers.

    Reads until the switch closes the connection, until ``until(messages)`` holds, or until
    ``timeout`` seconds passed. Returns (messages received, whether the peer closed).
    """
    messages: list[Sip] = []
    closed = False
    with socket.create_connection(address, timeout=timeout) as conn:
        for chunk in [data] if isinstance(data, bytes) else data:
            conn.sendall(chunk)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (until and until(messages)):
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            frames, buf = split_stream(buf + chunk)
            for frame in frames:
                parsed = parse_sip(frame)
                if parsed is not None:
                    parsed.at = time.monotonic()
                    messages.append(parsed)
    return messages, closed


class TcpPeer:
    """A TCP connection to the switch kept open: send, then wait for framed messages."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.conn = socket.create_connection(address, timeout=timeout)
        self.port = self.conn.getsockname()[1]
        self.messages: list[Sip] = []
        self.closed = False
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def wait_for(self, condition: Callable[[list[Sip]], bool], timeout: float) -> bool:
        """Read until ``condition(messages)`` holds, the peer closes, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not condition(self.messages):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return condition(self.messages)
            self.conn.settimeout(left)
            try:
                chunk = self.conn.recv(65536)
            except TimeoutError:
                return condition(self.messages)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                continue
            frames, self._buf = split_stream(self._buf + chunk)
            for frame in frames:
                parsed = parse_sip(frame)
                if parsed is not None:
                    parsed.at = time.monotonic()
                    self.messages.append(parsed)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()

    def __enter__(self) -> TcpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def options(switch: tuple[str, int], call_id: str, *, local_port: int = 5099,
            transport: str = "UDP") -> bytes:
    """An OPTIONS ping to the switch."""
    return request("OPTIONS", "ping", switch, call_id=call_id, local_port=local_port,
                   transport=transport).encode()


def options_answered(switch: tuple[str, int], timeout: float = 5.0) -> int | None:
    """Send one OPTIONS over UDP from a fresh socket; the first status back, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        call_id = f"alive-{time.monotonic_ns()}"
        sock.sendto(options(switch, call_id, local_port=sock.getsockname()[1]), switch)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = parse_sip(sock.recv(65535))
            except TimeoutError:
                return None
            if msg is not None and msg.call_id == call_id.encode() and msg.status:
                return msg.status
    return None


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
