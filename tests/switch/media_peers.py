"""Plain UDP sockets that play the caller and the callee around a media relay, and SDP/RTP builders.

Shared by the tests of our relay (tests/switch/test_media_relay.py) and of a real rtpengine
(tests/switch/test_media_rtpengine.py).
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from switch.sip.sdp import parse_sdp

# How long a test waits for a datagram that must come: a bound against hanging, not a timing
# assertion (loopback delivers in microseconds).
WAIT = 5.0


def rtpengine_command(binary: str, ng: tuple[str, int], ports: tuple[int, int],
                      workdir: Path | str, *extra: str) -> list[str]:
    """The userspace rtpengine command line the tests' fixture and ``bench/rtp.py`` both run.

    ``--table=-1``: no kernel module, forwarding in userspace; deleted calls go at once
    (``--delete-delay=0``; the default keeps them 30 s), so statistics show them gone.

    >>> rtpengine_command("rtpengine", ("127.0.0.1", 2223), (30000, 30099), "/tmp/w")[:3]
    ['rtpengine', '--config-file=none', '--table=-1']
    """
    return [binary, "--config-file=none", "--table=-1", "--interface=127.0.0.1",
            f"--listen-ng={ng[0]}:{ng[1]}", "--foreground", "--log-stderr",
            f"--port-min={ports[0]}", f"--port-max={ports[1]}", "--delete-delay=0",
            f"--pidfile={workdir}/rtpengine.pid", *extra]


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


# --- end-to-end media checks (tests/switch/test_switch_media*.py) ----------------------------

PCAP_GLOBAL_HEADER = 24
PCAP_RECORD_HEADER = 16


def pcap_records(data: bytes) -> list[bytes]:
    """The frames of a classic little-endian pcap file (as sip-tester's g711a.pcap)."""
    magic = struct.unpack_from("<I", data)[0]
    assert magic == 0xA1B2C3D4, f"not a little-endian microsecond pcap: magic {magic:#x}"
    frames, offset = [], PCAP_GLOBAL_HEADER
    while offset + PCAP_RECORD_HEADER <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        start = offset + PCAP_RECORD_HEADER
        frames.append(data[start:start + length])
        offset = start + length
    return frames


def shorten_pcap(source: bytes, count: int) -> bytes:
    """The pcap file ``source`` cut to its first ``count`` frames (same global header)."""
    offset = PCAP_GLOBAL_HEADER
    for _ in range(count):
        offset += PCAP_RECORD_HEADER + struct.unpack_from("<I", source, offset + 8)[0]
    return source[:offset]


def udp_payload_of_frame(frame: bytes) -> bytes:
    """The UDP payload of an Ethernet/IPv4/UDP frame (a pcap record or an AF_PACKET read)."""
    assert frame[12:14] == b"\x08\x00", "not IPv4"
    ihl = (frame[14] & 0x0F) * 4
    assert frame[14 + 9] == 17, "not UDP"
    return frame[14 + ihl + 8:]


def udp_of_frame(frame: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(source IP, port, destination IP, port, payload) of an Ethernet/IPv4/UDP frame, else None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[14 + 9] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    ip = frame[14:14 + ihl]
    sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
    src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    return src, sport, dst, dport, frame[14 + ihl + 8:]


class LoopbackCapture:
    """Every UDP datagram crossing ``lo`` while the ``with`` block runs, read by a thread from
    an AF_PACKET raw socket (needs root, or CAP_NET_RAW). Outgoing copies are left out, so
    each datagram is seen once. ``datagrams`` holds (src IP, src port, dst IP, dst port, data).
    """

    PACKET_OUTGOING = 4
    ETH_P_ALL = 0x0003

    def __init__(self) -> None:
        import socket
        import threading

        self.datagrams: list[tuple[str, int, str, int, bytes]] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                   socket.htons(self.ETH_P_ALL))
        # SO_RCVBUF is capped by net.core.rmem_max (often 208 KiB: a few hundred loopback
        # frames); as root SO_RCVBUFFORCE is not, so other traffic on lo cannot crowd ours out.
        self._sock.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # 33 = SO_RCVBUFFORCE
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == self.PACKET_OUTGOING:
                continue
            udp = udp_of_frame(frame)
            if udp is not None:
                self.datagrams.append(udp)

    def __enter__(self) -> LoopbackCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def between(self, src: str, dst: str, sports: range | None = None,
                dports: range | None = None) -> list[bytes]:
        """The payloads seen from IP ``src`` to IP ``dst`` (ports within the ranges given)."""
        return [data for s, sp, d, dp, data in list(self.datagrams)
                if s == src and d == dst and (sports is None or sp in sports)
                and (dports is None or dp in dports)]
