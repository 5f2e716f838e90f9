"""Shared pieces of the load generator's endpoints: a UDP socket, retransmission, identifiers.

UDP only: the load generator does not speak SIP over TCP (the switch's TCP listener is tested by
its own suite). Each endpoint owns one :class:`SipSocket` on 127.0.0.1 (or any host given);
datagrams are parsed with :func:`switch.sip.parse_message` and handed to the endpoint with the
address they came from. Malformed datagrams are counted and dropped.

>>> parse_hostport("127.0.0.1:5060"), parse_hostport("5080")
(('127.0.0.1', 5060), ('127.0.0.1', 5080))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Callable
from typing import Any

from switch.sip import Message, SipParseError, parse_message, serialize

__all__ = [
    "T1",
    "T2",
    "Address",
    "Retransmitter",
    "SipSocket",
    "new_token",
    "parse_hostport",
    "sdp_body",
]

log = logging.getLogger("switch.loadgen")

Address = tuple[str, int]

#: RFC 3261 timer defaults: T1 (RTT estimate) and T2 (cap for non-INVITE retransmissions).
T1 = 0.5
T2 = 4.0

_RCVBUF = 4 << 20


def new_token(nbytes: int = 6) -> str:
    """A random hex token for tags, branches and Call-IDs.

    >>> len(new_token()), new_token() != new_token()
    (12, True)
    """
    return secrets.token_hex(nbytes)


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> Address:
    """``host:port`` or a bare port -> (host, port); ValueError that says what to write.

    >>> parse_hostport("localhost")
    Traceback (most recent call last):
    ...
    ValueError: 'localhost' is not HOST:PORT or PORT; use e.g. 127.0.0.1:5060
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = default_host, text.strip()
    if not port.isdigit() or not 0 <= int(port) <= 65535 or (sep and not host):
        raise ValueError(f"{text!r} is not HOST:PORT or PORT; use e.g. 127.0.0.1:5060")
    return host, int(port)


def sdp_body(port: int, payloads: tuple[int, ...] = (8, 0), session: str | None = None) -> bytes:
    """A minimal audio SDP on 127.0.0.1 (PCMA=8, PCMU=0, plus telephone-event 101).

    >>> sdp_body(4000, (8,), "1").decode().split("\\r\\n")[5]
    'm=audio 4000 RTP/AVP 8 101'
    """
    names = {0: "PCMU/8000", 8: "PCMA/8000"}
    sid = session or str(secrets.randbelow(10**9))
    lines = ["v=0", f"o=loadgen {sid} 1 IN IP4 127.0.0.1", "s=loadgen", "c=IN IP4 127.0.0.1",
             "t=0 0", f"m=audio {port} RTP/AVP {' '.join(map(str, payloads))} 101"]
    lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in payloads if pt in names]
    lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv", ""]
    return "\r\n".join(lines).encode("ascii")


class Retransmitter:
    """Resend something on the RFC 3261 schedule until stopped or out of time.

    ``send`` is called at once, then after T1, 2*T1, ... (capped at ``cap`` when given, else
    doubling freely, as Timer A does); after ``give_up`` seconds ``on_timeout`` is called.
    """

    def __init__(self, send: Callable[[], None], *, t1: float = T1, cap: float | None = T2,
                 give_up: float = 64 * T1, on_timeout: Callable[[], None] | None = None) -> None:
        self._send = send
        self._interval = t1
        self._cap = cap
        self._on_timeout = on_timeout
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._deadline = loop.time() + give_up
        self._handle: asyncio.TimerHandle | None = None
        self._timeout = loop.call_at(self._deadline, self._expire)
        self.active = True
        self.sent = 0
        self._fire()

    def _fire(self) -> None:
        if not self.active:
            return
        self._send()
        self.sent += 1
        when = self._loop.time() + self._interval
        self._interval *= 2
        if self._cap is not None:
            self._interval = min(self._interval, self._cap)
        if when < self._deadline:
            self._handle = self._loop.call_at(when, self._fire)

    def _expire(self) -> None:
        if self.active:
            self.stop()
            if self._on_timeout is not None:
                self._on_timeout()

    def stop(self) -> None:
        """No more sends, no timeout callback."""
        self.active = False
        if self._handle is not None:
            self._handle.cancel()
        self._timeout.cancel()


class SipSocket(asyncio.DatagramProtocol):
    """One UDP socket: parsed messages go to ``handler(message, source)``."""

    def __init__(self, handler: Callable[[Message, Address], None]) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.address: Address = ("", 0)
        self.received = 0
        self.sent = 0
        self.malformed = 0
        self.handler_errors = 0

    @classmethod
    async def open(cls, host: str, port: int,
                   handler: Callable[[Message, Address], None]) -> SipSocket:
        """Bind ``host:port`` (0 = any free port); ``address`` then holds the bound one."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: cls(handler), local_addr=(host, port))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # capped by the kernel, never fatal
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        bound = transport.get_extra_info("sockname")
        protocol.address = (bound[0], bound[1])
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint is always given a DatagramTransport (uvloop's without subclassing
        # it), but the protocol signature says BaseTransport.
        self.transport = transport  # type: ignore[assignment]

    def send(self, message: Message | bytes, address: Address) -> None:
        """Serialize (unless already bytes) and send ``message`` to ``address``."""
        if self.transport is None or self.transport.is_closing():
            return
        data = message if isinstance(message, bytes) else serialize(message)
        self.transport.sendto(data, address)
        self.sent += 1

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        # addr is (host, port) for IPv4 and (host, port, flowinfo, scope_id) for IPv6.
        self.received += 1
        try:
            message = parse_message(data)
        except SipParseError as err:
            self.malformed += 1
            log.debug("malformed datagram from %s:%s: %s", addr[0], addr[1], err)
            return
        try:
            self.handler(message, (addr[0], addr[1]))
        except Exception:  # one bad exchange must not stop the load
            self.handler_errors += 1
            log.exception("loadgen handler failed on a message from %s:%s", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()
