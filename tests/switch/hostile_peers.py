"""Raw SIP peers for the hostile-input tests: UDP and TCP sockets that keep every byte.

Not a test module. Messages are built and read with :mod:`tests.switch.hostile`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.switch.hostile import (
    HOST,
    Msg,
    Sip,
    _b,
    ack_for,
    bye_for,
    parse_sip,
    request,
    split_stream,
)

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
