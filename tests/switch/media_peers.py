"""Plain UDP sockets that play the caller and the callee around a media relay, and SDP/RTP builders.

Shared by the tests of our relay (tests/switch/test_media_relay.py) and of a real rtpengine
(tests/switch/test_media_rtpengine.py).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from switch.sip.sdp import parse_sdp

# How long a test waits for a datagram that must come: a bound against hanging, not a timing
# assertion (loopback delivers in microseconds).
WAIT = 5.0


def offer_sdp(ip: str, port: int, *, session: int = 1) -> str:
    """An audio SDP (PCMU, PCMA, DTMF) with media at ip:port."""
    return (
        f"v=0\r\no=- {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=sendrecv\r\n"
    )


def media_address(sdp: str) -> tuple[str, int]:
    """(c= address, first m= port) of an SDP body."""
    sd = parse_sdp(sdp.encode())
    media = sd.media[0]
    address = media.connection or sd.connection
    assert address is not None
    return address, media.port


def rtp(seq: int, payload: bytes, *, ssrc: int = 0x1234_5678, pt: int = 0) -> bytes:
    """A minimal RTP packet (version 2, no CSRCs or extension)."""
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, seq * 160, ssrc) + payload


def rtcp_sender_report(ssrc: int = 0x1234_5678) -> bytes:
    """An RTCP sender report without report blocks (28 bytes)."""
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0, 0, 0, 0, 0)


class Peer(asyncio.DatagramProtocol):
    """A UDP socket bound to ``host`` (port chosen by the system unless given) with a receive
    queue of (data, source address)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def bind(cls, host: str = "127.0.0.1", port: int = 0) -> Peer:
        loop = asyncio.get_running_loop()
        peer = cls()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=(host, port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, (addr[0], addr[1])))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def receive(self, timeout: float = WAIT) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
