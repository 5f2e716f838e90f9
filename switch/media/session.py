"""The relay's per-call state: one UDP port per stream and side, legs, calls and their statistics.

A call has two :class:`Leg` objects, one per SIP party (tag). A leg's :class:`MediaStream` for the
i-th m= line owns a :class:`PortPair`: the relay ports *that party* sends to (its RTP on the even
port, RTCP on the odd one) and from which the relay sends to it. Stream i of one leg is linked to
stream i of the other, so a packet received on one leg's port leaves through the linked port of
the other leg, towards that party.

Each port is a :class:`MediaPort`, an ``asyncio.DatagramProtocol`` whose ``datagram_received`` is
the forwarding fast path: no dictionaries, no per-packet objects besides the cipher's output.

>>> port = MediaPort(10000, StreamKind.RTP)
>>> port.expect(("127.0.0.1", 4000))
>>> port.datagram_received(b"x", ("127.0.0.9", 4000))  # strict source: another IP is dropped
>>> port.packets, port.errors
(0, 1)
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from switch.media.bencode import BValue
from switch.media.crypto import Mode, PayloadCipher

__all__ = ["Call", "Leg", "MediaPort", "MediaStream", "PortPair", "StreamKind"]


class StreamKind(Enum):
    """What a port carries; the value is rtpengine's stream flag.

    >>> StreamKind.RTCP.value
    'RTCP'
    """

    RTP = "RTP"
    RTCP = "RTCP"


def _family(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


def _endpoint(address: tuple[str, int] | None) -> dict[str, BValue]:
    if address is None:
        return {}
    return {"family": _family(address[0]), "address": address[0], "port": address[1]}


def is_unspecified(ip: str) -> bool:
    """0.0.0.0 / :: (the old way to put a call on hold): nothing may be sent there.

    >>> is_unspecified("0.0.0.0"), is_unspecified("127.0.0.1")
    (True, False)
    """
    return ipaddress.ip_address(ip).is_unspecified


class MediaPort(asyncio.DatagramProtocol):
    """One relay UDP port: receives from its party, sends to it on behalf of the linked port.

    Strict source: only datagrams from ``expected_ip`` (the IP the party's SDP signalled) are
    accepted; the first one latches the full source address (the port may differ from the SDP's,
    as behind a NAT), and from then on only that address is accepted and used as destination.
    Until then the relay sends to the SDP's address. ``packets``/``bytes``/``errors`` count what
    arrived (errors: dropped), ``packets_out``/``bytes_out`` what was sent to the party.
    """

    __slots__ = (
        "advertised",
        "bytes",
        "bytes_out",
        "created",
        "decrypt",
        "encrypt",
        "errors",
        "expected_ip",
        "kind",
        "last_packet",
        "on_closed",
        "packets",
        "packets_out",
        "peer",
        "port",
        "remote",
        "seen",
        "source",
        "transport",
    )

    def __init__(self, port: int, kind: StreamKind) -> None:
        self.port = port
        self.kind = kind
        self.transport: asyncio.DatagramTransport | None = None
        self.expected_ip: str | None = None
        self.advertised: tuple[str, int] | None = None
        self.source: tuple[str, int] | None = None  # latched from the first accepted packet
        self.remote: tuple[str, int] | None = None  # where packets for the party go
        self.peer: MediaPort | None = None  # the other leg's port of the same stream and kind
        self.decrypt: Callable[[bytes], bytes] | None = None  # undo the party's encryption
        self.encrypt: Callable[[bytes], bytes] | None = None  # encrypt towards the party
        self.packets = self.bytes = self.errors = 0
        self.packets_out = self.bytes_out = 0
        # "last packet" is refreshed once a second by the relay from the counters (see
        # refresh_last_packet), which keeps a clock call off the per-packet path; before any
        # packet it is the creation time, so a silence timeout counts from setup.
        self.created = self.last_packet = time.time()
        self.seen = 0
        self.on_closed: Callable[[MediaPort], None] | None = None

    # --- asyncio.DatagramProtocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport implements DatagramTransport without subclassing it, so no
        # isinstance check here; the endpoint is always a datagram one.
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.peer = None
        if self.on_closed is not None:
            callback, self.on_closed = self.on_closed, None
            callback(self)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a party that went away: its next packets, if any, still count.
        self.errors += 1

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if addr != self.source:
            # Slow path, taken once per stream (latching) or for packets that get dropped.
            # Port 0 cannot be answered (SIPp 3.6.1 plays pcap audio from it): never latch it.
            if self.source is not None or addr[0] != self.expected_ip or not addr[1]:
                self.errors += 1
                return
            self.source = self.remote = addr
        self.packets += 1
        self.bytes += len(data)
        peer = self.peer
        if peer is None:
            self.errors += 1  # the other side has no ports or address yet
            return
        destination = peer.remote
        transport = peer.transport
        if destination is None or transport is None:
            self.errors += 1
            return
        decrypt = self.decrypt
        encrypt = peer.encrypt
        if decrypt is not None or encrypt is not None:
            try:
                if decrypt is not None:
                    data = decrypt(data)
                if encrypt is not None:
                    data = encrypt(data)
            except ValueError:  # RtpError: not RTP, so neither decryptable nor encryptable
                self.errors += 1
                return
        transport.sendto(data, destination)
        peer.packets_out += 1
        peer.bytes_out += len(data)

    # --- set-up -----------------------------------------------------------------------------------

    def expect(self, advertised: tuple[str, int] | None) -> None:
        """Point the port at the address a party's SDP gave (None: no media, e.g. on hold).

        A changed address (a re-INVITE moved the media) resets the latch; an unchanged one keeps
        it, so a NAT'd party's learned port survives re-INVITEs that repeat its SDP.
        """
        if advertised == self.advertised:
            return
        self.advertised = advertised
        self.source = None
        if advertised is None or is_unspecified(advertised[0]):
            self.expected_ip = None
            self.remote = None
        else:
            self.expected_ip = advertised[0]
            self.remote = advertised

    def refresh_last_packet(self, now: float) -> None:
        """Set ``last_packet`` to ``now`` if packets arrived since the previous refresh.

        >>> port = MediaPort(10000, StreamKind.RTP)
        >>> port.packets = 3
        >>> port.refresh_last_packet(1000.0); port.refresh_last_packet(1001.0); port.last_packet
        1000.0
        """
        if self.packets != self.seen:
            self.seen = self.packets
            self.last_packet = now

    def close(self) -> None:
        """Close the socket; ``on_closed`` runs once it is really closed."""
        self.peer = None
        if self.transport is not None:
            self.transport.close()

    def stats(self) -> dict[str, BValue]:
        """rtpengine's stream dictionary (``query``'s ``streams`` entries) plus our sent counters.

        >>> MediaPort(10001, StreamKind.RTCP).stats()["stats"]
        {'packets': 0, 'bytes': 0, 'errors': 0}
        """
        flags: list[BValue] = [self.kind.value]
        if self.advertised is not None:
            flags.append("filled")
        if self.source is not None:
            flags.append("confirmed")
        result: dict[str, BValue] = {
            "local port": self.port,
            "flags": flags,
            "last packet": int(self.last_packet),
            "stats": {"packets": self.packets, "bytes": self.bytes, "errors": self.errors},
            "ratelab-sent": {"packets": self.packets_out, "bytes": self.bytes_out},
        }
        # rtpengine sends both, empty while unknown.
        result["endpoint"] = _endpoint(self.remote)
        result["advertised endpoint"] = _endpoint(self.advertised)
        return result


class PortPair:
    """The RTP and RTCP ports of one stream of one leg; ``on_released`` runs when both closed.

    >>> pair = PortPair(10000, print)
    >>> pair.rtp.port, pair.rtcp.port, pair.rtcp.kind.value
    (10000, 10001, 'RTCP')
    """

    __slots__ = ("_open", "on_released", "port", "rtcp", "rtp")

    def __init__(self, port: int, on_released: Callable[[int], None]) -> None:
        self.port = port
        self.rtp = MediaPort(port, StreamKind.RTP)
        self.rtcp = MediaPort(port + 1, StreamKind.RTCP)
        self.on_released = on_released
        self._open = 2
        self.rtp.on_closed = self.rtcp.on_closed = self._closed

    def _closed(self, _port: MediaPort) -> None:
        self._open -= 1
        if self._open == 0:
            self.on_released(self.port)

    def close(self) -> None:
        """Close both sockets; the pair goes back to the allocator when they are closed."""
        self.rtp.close()
        self.rtcp.close()


class MediaStream:
    """One m= line of one leg: what the party's SDP said and the ports facing the party.

    >>> MediaStream(0).stats()["streams"]  # no ports allocated yet
    []
    """

    __slots__ = ("index", "kind", "pair", "protocol", "rtcp_address", "rtp_address")

    def __init__(self, index: int) -> None:
        self.index = index
        self.kind = "audio"
        self.protocol = "RTP/AVP"
        self.rtp_address: tuple[str, int] | None = None
        self.rtcp_address: tuple[str, int] | None = None
        self.pair: PortPair | None = None

    def apply(self, leg: Leg) -> None:
        """Push the signalled addresses and the leg's ciphers into the ports (if allocated)."""
        if self.pair is None:
            return
        self.pair.rtp.expect(self.rtp_address)
        self.pair.rtcp.expect(self.rtcp_address)
        # RTCP stays clear: the ciphers transform RTP payloads only (crypto.py refuses RTCP).
        self.pair.rtp.decrypt = leg.decryptor.apply if leg.decryptor is not None else None
        self.pair.rtp.encrypt = leg.encryptor.apply if leg.encryptor is not None else None

    def link(self, other: MediaStream) -> None:
        """Make packets flow between this stream's ports and ``other``'s (same m= index)."""
        if self.pair is None or other.pair is None:
            return
        self.pair.rtp.peer, other.pair.rtp.peer = other.pair.rtp, self.pair.rtp
        self.pair.rtcp.peer, other.pair.rtcp.peer = other.pair.rtcp, self.pair.rtcp

    def stats(self) -> dict[str, BValue]:
        """rtpengine's ``medias`` entry."""
        streams: list[BValue] = []
        if self.pair is not None:
            streams = [self.pair.rtp.stats(), self.pair.rtcp.stats()]
        flags: list[BValue] = ["initialized"] if self.pair is not None else []
        return {
            "index": self.index + 1,
            "type": self.kind,
            "protocol": self.protocol,
            "flags": flags,
            "streams": streams,
        }


class Leg:
    """One party of a call (rtpengine's monologue), known by its SIP tag ("" until it is known).

    >>> leg = Leg("tag1")
    >>> leg.stream(1).index, len(leg.streams), leg.ports()
    (1, 2, [])
    """

    __slots__ = ("created", "decryptor", "encryptor", "mode", "streams", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.created = time.time()
        self.streams: list[MediaStream] = []
        self.mode = Mode.NONE
        # One cipher object per direction: each tracks the rollover counters of what it sees.
        self.decryptor: PayloadCipher | None = None
        self.encryptor: PayloadCipher | None = None

    def set_encryption(self, mode: Mode, key: bytes) -> None:
        """Encrypt this party's hop (mode NONE: clear); the caller has checked the key."""
        self.mode = mode
        if mode is Mode.NONE:
            self.decryptor = self.encryptor = None
        else:
            self.decryptor = PayloadCipher(mode, key)
            self.encryptor = PayloadCipher(mode, key)
        for stream in self.streams:
            stream.apply(self)

    def stream(self, index: int) -> MediaStream:
        """The stream for m= line ``index``, created (with the ones before it) if needed."""
        while len(self.streams) <= index:
            self.streams.append(MediaStream(len(self.streams)))
        return self.streams[index]

    def ports(self) -> list[MediaPort]:
        """The open ports of this leg."""
        return [p for s in self.streams if s.pair is not None for p in (s.pair.rtp, s.pair.rtcp)]

    def stats(self, other: Leg) -> dict[str, BValue]:
        """rtpengine's ``tags`` entry for this leg."""
        result: dict[str, BValue] = {
            "tag": self.tag,
            "created": int(self.created),
            "medias": [s.stats() for s in self.streams],
            "ratelab-encryption": {"mode": int(self.mode)},
        }
        if other.tag:
            result["in dialogue with"] = other.tag
        return result


class Call:
    """A call: ``legs[0]`` made the first offer, ``legs[1]`` answered it.

    >>> call = Call("abc", "t1")
    >>> call.leg_for("t1") is call.legs[0], call.leg_for("t2")
    (True, None)
    """

    __slots__ = ("call_id", "created", "last_signal", "legs")

    def __init__(self, call_id: str, from_tag: str) -> None:
        self.call_id = call_id
        self.created = self.last_signal = time.time()
        self.legs = (Leg(from_tag), Leg(""))

    def leg_for(self, tag: str) -> Leg | None:
        """The leg with SIP tag ``tag`` (None if no leg has it yet)."""
        for leg in self.legs:
            if leg.tag and leg.tag == tag:
                return leg
        return None

    def other(self, leg: Leg) -> Leg:
        """The leg that is not ``leg``."""
        return self.legs[1] if leg is self.legs[0] else self.legs[0]

    def ports(self) -> list[MediaPort]:
        """Every open port of the call."""
        return self.legs[0].ports() + self.legs[1].ports()

    def pairs(self) -> list[PortPair]:
        """Every port pair of the call."""
        return [s.pair for leg in self.legs for s in leg.streams if s.pair is not None]

    def stats(self, now: float) -> dict[str, BValue]:
        """rtpengine's ``query`` reply body (without ``result``), ``last packet`` fresh."""
        totals = {kind: {"packets": 0, "bytes": 0, "errors": 0} for kind in StreamKind}
        for port in self.ports():
            port.refresh_last_packet(now)
            counters = totals[port.kind]
            counters["packets"] += port.packets
            counters["bytes"] += port.bytes
            counters["errors"] += port.errors
        tags: dict[str, BValue] = {}
        for leg in self.legs:
            tags[leg.tag] = leg.stats(self.other(leg))
        return {
            "created": int(self.created),
            "last signal": int(self.last_signal),
            "tags": tags,
            "totals": {kind.value: dict(counters) for kind, counters in totals.items()},
        }
