"""The asyncio shells around the sans-IO SIP core: UDP and TCP listeners.

Thin on purpose: bytes from a socket go to :mod:`switch.sip` for parsing, parsed messages go to
the switch's handler, and messages the handler sends go back out serialized. What the shells own
is bad input: a malformed message gets a 400 (or the status the parser names) with the parser's
reason phrase naming the header at fault ("400 Bad Max-Forwards") when enough of it was parsed
to build a response, and is otherwise dropped; either way it is counted under the parser's
``kind`` in ``Stats.malformed``. Nothing a peer sends can raise out of a shell or leave state
behind. A TCP stream that turns malformed first delivers the messages framed before the bad
one, then answers it (when possible) and is closed, since its framing can no longer be trusted.
Size limits come from :class:`switch.sip.ParseLimits` (``listen(..., limits=...)``). When a TCP
connection closes, either side having closed it, the listener's ``on_close`` is told which peer
and which sender went, so whoever kept that sender to answer later can let it go.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from switch.config import Listen
from switch.sip import (
    Message,
    ParseLimits,
    Request,
    SipParseError,
    StreamParser,
    make_response,
    parse_message,
    serialize,
)

__all__ = ["Address", "Closed", "Handler", "Listener", "Screen", "Sender", "Stats",
           "TcpConnection", "UdpTransport", "listen"]

log = logging.getLogger(__name__)

#: Receive buffer asked for on UDP sockets (the kernel may cap it at net.core.rmem_max).
UDP_BUFFER_BYTES = 4 << 20

Address = tuple[str, int]
#: The guard's verdict on a datagram or a TCP message's header section before it is parsed:
#: called with the bytes, the source IP and the loop's clock; anything but None drops it
#: silently (a TCP connection is closed). :meth:`switch.guard.Screen.check` is one.
Screen = Callable[[bytes, str, float], object]
#: Called with each parsed message, where it came from, and the way to answer on the same path.
Handler = Callable[[Message, Address, "Sender"], None]
Sender = Callable[[Message], None]
#: Called once when a TCP connection is gone, with its peer and the sender its messages came with.
Closed = Callable[[Address, Sender], None]


@dataclass
class Stats:
    """What the listeners saw; the switch's admin page and the tests read it.

    ``malformed`` counts malformed messages (answered or dropped) per parser ``kind``
    ("bad_via", "nul_byte", ...; docs/sip-parsing.md lists them).

    >>> s = Stats(); s.malformed["bad_via"] += 1; s.malformed
    Counter({'bad_via': 1})
    """

    received: int = 0
    malformed_answered: int = 0
    malformed_dropped: int = 0
    sent: int = 0
    handler_errors: int = 0
    screened: int = 0  # datagrams and TCP messages the guard dropped before parsing
    malformed: Counter[str] = field(default_factory=Counter)


def _answer_malformed(err: SipParseError, send: Callable[[bytes], None], stats: Stats) -> None:
    stats.malformed[err.kind] += 1
    if err.can_reply and err.request is not None and err.request.method != "ACK":
        send(serialize(make_response(err.request, err.status, err.phrase)))
        stats.malformed_answered += 1
    else:
        stats.malformed_dropped += 1
    log.debug("malformed message (%s): %s", err.kind, err.reason)


def _limits(limits: ParseLimits | None, max_size: int | None) -> ParseLimits:
    # max_size predates ParseLimits: it overrides max_message_bytes.
    limits = limits if limits is not None else ParseLimits()
    return limits if max_size is None else replace(limits, max_message_bytes=max_size)


def _dispatch(handler: Handler, message: Message, source: Address, reply: Sender,
              stats: Stats) -> None:
    try:
        handler(message, source, reply)
    except Exception:  # a bug in call handling must not take the listener down
        stats.handler_errors += 1
        log.exception("handler failed on a message from %s:%s", *source)
        if isinstance(message, Request) and message.method != "ACK":
            reply(make_response(message, 500))


class UdpTransport(asyncio.DatagramProtocol):
    """One UDP socket: a datagram is one message."""

    def __init__(self, handler: Handler, stats: Stats, *, limits: ParseLimits | None = None,
                 max_size: int | None = None, screen: Screen | None = None) -> None:
        self.handler = handler
        self.stats = stats
        self.limits = _limits(limits, max_size)
        self.transport: asyncio.DatagramTransport | None = None
        self.screen = screen
        self._clock = asyncio.get_running_loop().time if screen is not None else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint is always given a DatagramTransport (uvloop's without subclassing
        # it), but the protocol signature says BaseTransport.
        self.transport = transport  # type: ignore[assignment]

    def send(self, message: Message, address: Address) -> None:
        """Serialize and send ``message`` to ``address``."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(serialize(message), address)
            self.stats.sent += 1

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        # addr is (host, port) for IPv4 and (host, port, flowinfo, scope_id) for IPv6.
        screen = self.screen
        if screen is not None and self._clock is not None \
                and screen(data, addr[0], self._clock()) is not None:
            self.stats.screened += 1
            return
        self.stats.received += 1
        source: Address = (addr[0], addr[1])
        try:
            message = parse_message(data, limits=self.limits)
        except SipParseError as err:
            transport = self.transport
            assert transport is not None
            _answer_malformed(err, lambda raw: transport.sendto(raw, addr), self.stats)
            return
        _dispatch(self.handler, message, source, lambda m: self.send(m, source), self.stats)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is gone; timers handle the rest
        log.debug("UDP error: %s", exc)


class TcpConnection(asyncio.Protocol):
    """One TCP connection: messages framed by Content-Length."""

    def __init__(self, handler: Handler, stats: Stats, *, limits: ParseLimits | None = None,
                 max_size: int | None = None, on_close: Closed | None = None,
                 screen: Screen | None = None) -> None:
        self.handler = handler
        self.stats = stats
        self.on_close = on_close
        self.screen = screen
        self.parser = StreamParser(limits=_limits(limits, max_size),
                                   screen=self._admit if screen is not None else None)
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)

    def _admit(self, head: bytes) -> bool:
        assert self.screen is not None
        return self.screen(head, self.peer[0], asyncio.get_running_loop().time()) is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])

    def connection_lost(self, exc: Exception | None) -> None:
        # The switch keeps this connection's sender to reach the peer later (in-dialog requests,
        # retransmitted answers); a closed connection can carry none, and a map that only grows
        # would hold every connection a scanner ever opened.
        if self.on_close is not None:
            try:
                self.on_close(self.peer, self.send)
            except Exception:
                log.exception("on_close failed for %s:%s", *self.peer)

    def send(self, message: Message) -> None:
        """Serialize and send ``message`` on this connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(serialize(message))
            self.stats.sent += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            messages = self.parser.feed(data)
        except SipParseError as err:
            # Messages framed before the bad one were sent in good faith: handle them first
            # (their answers go out before the 400), then answer the error and hang up.
            for message in err.framed:
                self.stats.received += 1
                _dispatch(self.handler, message, self.peer, self.send, self.stats)
            if err.kind == "screened":  # the guard's: no answer, and the connection goes
                self.stats.screened += 1
                self.transport.close()
                return
            self.stats.received += 1
            if not self.transport.is_closing():
                _answer_malformed(err, self.transport.write, self.stats)
            else:
                self.stats.malformed[err.kind] += 1
                self.stats.malformed_dropped += 1
            self.transport.close()
            return
        for message in messages:
            self.stats.received += 1
            _dispatch(self.handler, message, self.peer, self.send, self.stats)


@dataclass
class Listener:
    """A bound socket (UDP transport or TCP server) and the address it got."""

    listen: Listen
    address: Address
    closer: Callable[[], None]
    udp: UdpTransport | None = None

    def close(self) -> None:
        self.closer()


async def listen(listens: list[Listen], handler: Handler, stats: Stats | None = None,
                 *, limits: ParseLimits | None = None, max_size: int | None = None,
                 on_close: Closed | None = None,
                 screen: Screen | None = None) -> tuple[list[Listener], Stats]:
    """Bind every configured ``udp:``/``tcp:`` address; return the listeners and shared stats.

    A port of 0 binds any free port; ``Listener.address`` says which. ``limits`` bounds what
    one message may hold (``max_size``, older, overrides its ``max_message_bytes``).
    ``on_close`` is called as each TCP connection goes (see :class:`Closed`). ``screen``
    (the guard) sees every datagram and every TCP message's header section before the parser.

    >>> async def demo():
    ...     listeners, stats = await listen([Listen("udp", "127.0.0.1", 0)], lambda m, a, r: None)
    ...     for item in listeners:
    ...         item.close()
    ...     return [str(item.listen) for item in listeners], stats.received
    >>> asyncio.run(demo())
    (['udp:127.0.0.1:0'], 0)
    """
    stats = stats or Stats()
    limits = _limits(limits, max_size)
    loop = asyncio.get_running_loop()
    listeners: list[Listener] = []
    try:
        for item in listens:
            if item.transport == "udp":
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: UdpTransport(handler, stats, limits=limits, screen=screen),
                    local_addr=(item.host, item.port))
                sock = transport.get_extra_info("socket")
                if sock is not None:  # bursts at 1,000 calls/s overflow the default buffer
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER_BYTES)
                bound = transport.get_extra_info("sockname")
                listeners.append(Listener(item, (bound[0], bound[1]), transport.close, protocol))
            else:
                server = await loop.create_server(
                    lambda: TcpConnection(handler, stats, limits=limits, on_close=on_close,
                                          screen=screen),
                    host=item.host, port=item.port)
                bound = server.sockets[0].getsockname()
                listeners.append(Listener(item, (bound[0], bound[1]), server.close))
    except OSError:
        for done in listeners:
            done.close()
        raise
    return listeners, stats
