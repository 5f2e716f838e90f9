"""The media relay: rtpengine's ng control protocol over UDP in, RTP/RTCP relayed between two legs.

The switch (or Kamailio, or anything speaking ng) sends the subset of rtpengine's commands below;
the relay rewrites SDP to point at its own ports and forwards media between the two parties.
Replies have rtpengine's shapes, so a client written for one works with the other for plain calls.

``ping``
    ``{"command": "ping"}`` -> ``{"result": "pong"}``.
``offer``
    ``{"command": "offer", "call-id": str, "from-tag": str, "sdp": str,
    ["ratelab-encryption": {"mode": 0-3, "key": "<hex>"}]}`` -> ``{"result": "ok", "sdp": str}``.
    The SDP is the offerer's; the reply's points at relay ports allocated for the other party.
    An offer for a known call from one of its tags is a re-offer (re-INVITE), either direction.
    ``"media address": IP`` (rtpengine's key) replaces the SDP's c= address as the party's
    address, for gateways behind NAT that signal their private address.
``answer``
    As ``offer`` plus ``"to-tag": str``; the SDP is the answerer's, the reply's points at ports
    allocated for the offerer. A new to-tag replaces the previous answerer's (no forking).
``delete``
    ``{"command": "delete", "call-id": str, ["from-tag": str], ["flags": ["fatal"|"fast"]]}``
    -> ``{"result": "ok", <query statistics unless "fast">}``; the whole call ends and its ports
    are freed. Unknown call: ``ok`` with ``warning`` as rtpengine (``error`` with flag ``fatal``).
``query``
    ``{"command": "query", "call-id": str}`` -> ``{"result": "ok", "created", "last signal",
    "tags": {tag: {"tag", "created", "in dialogue with", "medias": [{"index", "type", "protocol",
    "flags", "streams": [{"local port", "endpoint", "advertised endpoint", "last packet",
    "flags", "stats": {"packets", "bytes", "errors"}, "ratelab-sent": {"packets", "bytes"}}]}],
    "ratelab-encryption": {"mode"}}}, "totals": {"RTP": stats, "RTCP": stats}}``.
    A tag's streams are its party's: ``local port`` is where it sends, ``stats`` what arrived
    from it (``errors``: dropped), ``ratelab-sent`` what the relay sent to it, ``last packet``
    the UNIX time (whole seconds, as rtpengine) of the last packet from it (the stream's
    creation time before the first). Without ``call-id`` (ours only; rtpengine requires it):
    ``{"result": "ok", "calls": int, "ratelab-ports": {"in use", "free pairs", "min", "max"}}``.
``statistics`` / ``list``
    rtpengine's ``currentstatistics``/``totalstatistics`` subset plus ``ratelab-ports``; the
    list of call-ids (``limit``, default 32).

``ratelab-encryption`` (rtpengine ignores unknown keys) sets the encryption of the hop between the
relay and the party whose SDP the message carries; ``key`` is hex (bencode and JSON alike carry it).
Absent, the leg keeps its current setting (clear for a new leg), so a re-INVITE that forgets it
cannot downgrade a call to clear text; ``{"mode": 0}`` turns encryption off. Errors are
``{"result": "error", "error-reason": str}``; a malformed datagram never stops the relay.

>>> async def demo() -> str:
...     relay = Relay("127.0.0.1", port_min=31500, port_max=31509)
...     await relay.start("127.0.0.1", 0)
...     reply = await relay.execute({"command": "ping"})
...     await relay.close()
...     return str(reply["result"])
>>> asyncio.run(demo())
'pong'
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from switch.media.bencode import BValue
from switch.media.crypto import Mode, check_key
from switch.media.ng import (
    ENCRYPTION_OPTION,
    NgMessage,
    NgProtocolError,
    decode_message,
    encode_message,
)
from switch.media.ports import DEFAULT_PORT_MAX, DEFAULT_PORT_MIN, PortAllocator, PortsExhausted
from switch.media.session import Call, Leg, MediaPort, PortPair, is_unspecified
from switch.sip.sdp import SdpError, SessionDescription, parse_sdp, rewrite_for_relay, serialize_sdp

__all__ = ["Relay", "RelayError"]

log = logging.getLogger("switch.media.relay")

# A retransmitted request (same cookie) gets the cached reply instead of being run twice, as
# rtpengine does; 30 s outlasts any client's retransmission schedule.
_CACHE_SECONDS = 30.0
_CACHE_MAX = 100_000
# Requests wait in a bounded queue; beyond it they are dropped and the client retransmits.
_QUEUE_MAX = 1024
# Attempts to find a bindable pair when ports of the range are taken by other processes.
_BIND_ATTEMPTS = 16
# rtp/rtcp-mux would carry RTCP on the RTP port, which this relay pairs with RTP ports only.
_STRIPPED_ATTRIBUTES = frozenset({"rtcp-mux"})


class RelayError(Exception):
    """A request the relay refuses; the message becomes the reply's ``error-reason``.

    >>> str(RelayError("Unknown call-id"))
    'Unknown call-id'
    """


@dataclass(frozen=True)
class _StreamPlan:
    """What one m= line of an incoming SDP asks for (None address: rejected or on hold)."""

    kind: str
    protocol: str
    rtp: tuple[str, int] | None
    rtcp: tuple[str, int] | None


class _ControlProtocol(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay._control_datagram(data, addr)


def _string(body: Mapping[str, BValue], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise RelayError(f"No {key} in message")
        return None
    if not isinstance(value, str) or (required and not value):
        raise RelayError(f"{key} must be a non-empty string")
    return value


def _flags(body: Mapping[str, BValue]) -> set[str]:
    flags = body.get("flags")
    if flags is None:
        return set()
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise RelayError("flags must be a list of strings")
    return {str(f) for f in flags}


def _encryption(body: Mapping[str, BValue]) -> tuple[Mode, bytes] | None:
    option = body.get(ENCRYPTION_OPTION)
    if option is None:
        return None
    if not isinstance(option, dict):
        raise RelayError(f"{ENCRYPTION_OPTION} must be a dictionary")
    mode_value, key_value = option.get("mode"), option.get("key", "")
    if not isinstance(mode_value, int) or not isinstance(key_value, str):
        raise RelayError(f"{ENCRYPTION_OPTION} needs an integer mode and a hex string key")
    try:
        key = bytes.fromhex(key_value)
        check_key(mode_value, key)
    except ValueError as exc:
        raise RelayError(f"{ENCRYPTION_OPTION}: {exc}") from None
    return Mode(mode_value), key


class Relay:
    r"""An ng-controlled RTP relay with media on ``address`` and ports from the given range.

    ``start`` binds the control socket; ``execute`` runs one command dictionary (what the control
    socket does for each request); ``close`` ends every call and closes all sockets.

    >>> async def offer() -> BValue:
    ...     relay = Relay("127.0.0.1", port_min=31510, port_max=31519)
    ...     reply = await relay.execute({"command": "offer", "call-id": "c1", "from-tag": "a",
    ...         "sdp": "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    ...                "m=audio 4000 RTP/AVP 0\r\n"})
    ...     await relay.close()
    ...     return reply["sdp"]
    >>> print(asyncio.run(offer()))  # doctest: +NORMALIZE_WHITESPACE
    v=0 o=- 1 2 IN IP4 127.0.0.1 s=- c=IN IP4 127.0.0.1 t=0 0 m=audio 31510 RTP/AVP 0
    """

    def __init__(
        self,
        address: str,
        *,
        port_min: int = DEFAULT_PORT_MIN,
        port_max: int = DEFAULT_PORT_MAX,
    ) -> None:
        try:
            self.family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 \
                else socket.AF_INET
        except ValueError:
            raise ValueError(f"media address is not an IP address: {address!r}") from None
        self.address = address
        self.ports = PortAllocator(port_min, port_max)
        self.calls: dict[str, Call] = {}
        self.ng_address: tuple[str, int] | None = None
        self.started = time.time()
        self.managed_sessions = 0  # calls ever created, rtpengine's "managedsessions"
        self._ended_packets = self._ended_errors = 0  # of ended calls, for "statistics"
        self._media_ports: set[MediaPort] = set()
        self._control: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[tuple[NgMessage, Any]] = asyncio.Queue(_QUEUE_MAX)
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._in_progress: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._bind_failures: set[int] = set()

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind the ng control socket (port 0: any) and start serving; returns its address.

        Raises OSError when the media address is not one of this machine's (every offer would
        fail to bind its ports) or the control address cannot be bound.
        """
        with socket.socket(self.family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((self.address, 0))
            except OSError as exc:
                raise OSError(f"cannot bind media address {self.address}: {exc}") from None
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _ControlProtocol(self), local_addr=(host, port)
        )
        self._control = transport
        sockname = transport.get_extra_info("sockname")
        self.ng_address = (sockname[0], sockname[1])
        self._tasks = [loop.create_task(self._worker()), loop.create_task(self._ticker())]
        return self.ng_address

    async def close(self) -> None:
        """Stop serving, end every call and wait (briefly) until the media sockets are closed."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._control is not None:
            self._control.close()
            self._control = None
        for call_id in list(self.calls):
            self._end_call(call_id)
        # Sockets close on the next loop iterations; a bounded wait lets the ports come back.
        for _ in range(100):
            if self.ports.in_use == 0:
                break
            await asyncio.sleep(0.01)

    # --- control socket ---------------------------------------------------------------------------

    def _control_datagram(self, data: bytes, addr: Any) -> None:
        try:
            message = decode_message(data)
        except NgProtocolError as exc:
            cookie, space, _ = data.partition(b" ")
            log.info("bad ng datagram from %s: %s", addr, exc)
            # Answer when there is a cookie to answer to; a reply to pure junk would go nowhere.
            if space and 0 < len(cookie) <= 64 and cookie.isascii() and b" " not in cookie:
                with contextlib.suppress(NgProtocolError):
                    self._send(encode_message(cookie.decode("ascii"), _error(str(exc))), addr)
            return
        cached = self._cache.get(message.cookie)
        if cached is not None:
            self._send(cached[1], addr)  # a retransmission: the same answer, not a second run
            return
        if message.cookie in self._in_progress:
            return  # a retransmission of a request still queued: it will be answered once
        try:
            self._queue.put_nowait((message, addr))
        except asyncio.QueueFull:
            log.warning("ng queue full, dropping request %s", message.cookie)
            return
        self._in_progress.add(message.cookie)

    def _send(self, datagram: bytes, addr: Any) -> None:
        if self._control is not None:
            self._control.sendto(datagram, addr)

    async def _worker(self) -> None:
        # One request at a time: offer/answer/delete of a call never interleave, and every step
        # but binding sockets is synchronous anyway.
        while True:
            message, addr = await self._queue.get()
            try:
                reply = await self.execute(message.body)
            except Exception as exc:  # a bug must cost one reply, not the relay
                log.exception("ng request %s failed", message.cookie)
                reply = _error(f"internal error: {type(exc).__name__}")
            try:
                datagram = encode_message(message.cookie, reply, as_json=message.json)
            except (ValueError, TypeError) as exc:
                datagram = encode_message(message.cookie, _error(f"unencodable reply: {exc}"))
            self._in_progress.discard(message.cookie)
            self._cache[message.cookie] = (time.monotonic() + _CACHE_SECONDS, datagram)
            if len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)
            self._send(datagram, addr)

    async def _ticker(self) -> None:
        # Once a second: "last packet" from the counters (no clock read per packet) and expiry
        # of the retransmission cache (oldest first, so the loop stops at the first live entry).
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            for port in self._media_ports:
                port.refresh_last_packet(now)
            monotonic = time.monotonic()
            for _ in range(len(self._cache)):
                cookie, (expiry, _) = next(iter(self._cache.items()))
                if expiry > monotonic:
                    break
                del self._cache[cookie]

    # --- commands ---------------------------------------------------------------------------------

    async def execute(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        """Run one ng command dictionary; the reply dictionary (errors as ``result: error``).

        >>> asyncio.run(Relay("127.0.0.1").execute({"command": "dance"}))
        {'result': 'error', 'error-reason': 'Unrecognized command'}
        """
        command = body.get("command")
        try:
            if command == "ping":
                return {"result": "pong"}
            if command == "offer":
                return await self._offer(body)
            if command == "answer":
                return await self._answer(body)
            if command == "delete":
                return self._delete(body)
            if command == "query":
                return self._query(body)
            if command == "statistics":
                return self._statistics()
            if command == "list":
                return self._list(body)
            if command is None:
                return _error("No command in message")
            return _error("Unrecognized command")
        except RelayError as exc:
            return _error(str(exc))

    async def _offer(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        call_id = _require(body, "call-id")
        from_tag = _require(body, "from-tag")
        sd, plans = self._read_sdp(body)
        encryption = _encryption(body)
        call = self.calls.get(call_id)
        created = call is None
        if call is None:
            call = Call(call_id, from_tag)
            self.calls[call_id] = call
            self.managed_sessions += 1
        sender = call.leg_for(from_tag)
        if sender is None:
            raise RelayError("from-tag does not belong to this call")
        try:
            sdp = await self._relay_sdp(call, sender, sd, plans, encryption)
        except RelayError:
            if created:
                self._end_call(call_id)
            raise
        return {"result": "ok", "sdp": sdp}

    async def _answer(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        call_id = _require(body, "call-id")
        from_tag = _require(body, "from-tag")
        to_tag = _require(body, "to-tag")
        sd, plans = self._read_sdp(body)
        encryption = _encryption(body)
        call = self.calls.get(call_id)
        if call is None:
            raise RelayError("Unknown call-id")
        offerer = call.leg_for(from_tag)
        if offerer is None:
            raise RelayError("Unknown from-tag")
        sender = call.other(offerer)
        if sender.tag != to_tag:
            if to_tag == offerer.tag:
                raise RelayError("to-tag equals from-tag")
            sender.tag = to_tag  # first answer, or a new answerer replacing the previous one
        return {"result": "ok", "sdp": await self._relay_sdp(call, sender, sd, plans, encryption)}

    def _delete(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        call_id = _require(body, "call-id")
        from_tag = _string(body, "from-tag", required=False)
        flags = _flags(body)
        call = self.calls.get(call_id)
        if call is None or (from_tag and call.leg_for(from_tag) is None):
            reason = "Call-ID not found or tags didn't match"
            if "fatal" in flags:
                raise RelayError(reason)
            return {"result": "ok", "warning": reason}
        reply: dict[str, BValue] = {"result": "ok"}
        if "fast" not in flags:
            reply.update(call.stats(time.time()))
        self._end_call(call_id)
        return reply

    def _query(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        call_id = _string(body, "call-id", required=False)
        if not call_id:
            return {"result": "ok", "calls": len(self.calls), "ratelab-ports": self._port_stats()}
        call = self.calls.get(call_id)
        if call is None:
            raise RelayError("Unknown call-id")
        return {"result": "ok", **call.stats(time.time())}

    def _statistics(self) -> dict[str, BValue]:
        packets, errors = self._ended_packets, self._ended_errors
        for port in self._media_ports:
            packets += port.packets
            errors += port.errors
        return {
            "result": "ok",
            "statistics": {
                "currentstatistics": {
                    "sessionsown": len(self.calls),
                    "sessionsforeign": 0,
                    "sessionstotal": len(self.calls),
                },
                "totalstatistics": {
                    "uptime": str(int(time.time() - self.started)),
                    "managedsessions": self.managed_sessions,
                    "relayedpackets": packets,
                    "relayedpacketerrors": errors,
                },
            },
            "ratelab-ports": self._port_stats(),
        }

    def _list(self, body: Mapping[str, BValue]) -> dict[str, BValue]:
        limit = body.get("limit", 32)
        if not isinstance(limit, int) or limit <= 0:
            raise RelayError("limit must be a positive integer")
        calls: list[BValue] = [call_id for call_id in list(self.calls)[:limit]]
        return {"result": "ok", "calls": calls}

    def _port_stats(self) -> dict[str, BValue]:
        return {
            "in use": self.ports.in_use,
            "free pairs": self.ports.free_pairs,
            "min": self.ports.port_min,
            "max": self.ports.port_max,
        }

    # --- SDP and ports ----------------------------------------------------------------------------

    def _read_sdp(self, body: Mapping[str, BValue]) -> tuple[SessionDescription, list[_StreamPlan]]:
        text = _require(body, "sdp")
        try:
            sd = parse_sdp(text.encode("utf-8"))
        except SdpError as exc:
            raise RelayError(f"Failed to parse SDP: {exc}") from None
        # rtpengine's "media address": the party's real address when its SDP carries another
        # (a gateway behind NAT writing its private address); the switch knows it from SIP.
        override = _string(body, "media address", required=False)
        plans: list[_StreamPlan] = []
        for index, media in enumerate(sd.media):
            if media.port == 0:
                plans.append(_StreamPlan(media.kind, media.proto, None, None))
                continue
            ip = override or media.connection or sd.connection
            if ip is None:
                raise RelayError(f"No c= line for media {index + 1}")
            try:
                parsed = ipaddress.ip_address(ip)
            except ValueError:
                raise RelayError(f"c= address is not an IP address: {ip!r}") from None
            if (parsed.version == 6) != (self.family == socket.AF_INET6):
                raise RelayError(f"c= address {ip} is not of the relay's address family")
            rtcp_port = media.port + 1
            rtcp_value = media.attribute("rtcp")
            if rtcp_value:
                first = rtcp_value.split()[0]
                if first.isdigit() and 0 < int(first) < 65536:
                    rtcp_port = int(first)
            ip = parsed.compressed  # the form the socket reports sources in
            hold = is_unspecified(ip)
            plans.append(_StreamPlan(
                media.kind, media.proto,
                None if hold else (ip, media.port),
                None if hold else (ip, rtcp_port),
            ))
        return sd, plans

    async def _relay_sdp(
        self,
        call: Call,
        sender: Leg,
        sd: SessionDescription,
        plans: list[_StreamPlan],
        encryption: tuple[Mode, bytes] | None,
    ) -> str:
        """Record ``sender``'s SDP, give the other party ports, return the SDP rewritten for it."""
        receiver = call.other(sender)
        call.last_signal = time.time()
        ports: list[int] = []
        for index, plan in enumerate(plans):
            stream = sender.stream(index)
            stream.kind, stream.protocol = plan.kind, plan.protocol
            stream.rtp_address, stream.rtcp_address = plan.rtp, plan.rtcp
            stream.apply(sender)
            facing = receiver.stream(index)
            if plan.rtp is None and facing.pair is None:
                ports.append(0)  # rejected stream: rewrite_for_relay keeps port 0 anyway
                continue
            if facing.pair is None:
                facing.pair = await self._open_pair()
                facing.kind, facing.protocol = plan.kind, plan.protocol
                facing.apply(receiver)
            stream.link(facing)
            ports.append(facing.pair.port)
        if encryption is not None:
            sender.set_encryption(*encryption)
        out = rewrite_for_relay(sd, self.address, ports)
        out.attributes = [a for a in out.attributes if a[0] not in _STRIPPED_ATTRIBUTES]
        for media in out.media:
            media.attributes = [a for a in media.attributes if a[0] not in _STRIPPED_ATTRIBUTES]
        return serialize_sdp(out).decode("utf-8")

    async def _open_pair(self) -> PortPair:
        loop = asyncio.get_running_loop()
        for _ in range(_BIND_ATTEMPTS):
            try:
                port = self.ports.allocate()
            except PortsExhausted as exc:
                raise RelayError(str(exc)) from None
            sockets: list[socket.socket] = []
            try:
                for number in (port, port + 1):
                    sock = socket.socket(self.family, socket.SOCK_DGRAM)
                    sockets.append(sock)
                    sock.setblocking(False)
                    sock.bind((self.address, number))
            except OSError as exc:
                for sock in sockets:
                    sock.close()
                # Once per port: a port held by another process fails on every turn.
                level = logging.DEBUG if port in self._bind_failures else logging.WARNING
                self._bind_failures.add(port)
                log.log(level, "cannot bind media port pair %d: %s (ports of the range should "
                        "be outside the kernel's ephemeral range)", port, exc)
                # Taken by another process: it goes to the back of the queue for a later try.
                self.ports.release(port)
                continue
            pair = PortPair(port, self.ports.release)
            try:
                for media_port, sock in ((pair.rtp, sockets[0]), (pair.rtcp, sockets[1])):
                    await loop.create_datagram_endpoint(_factory(media_port), sock=sock)
            except OSError as exc:
                # Not expected once bound; undo by hand since on_closed may never run.
                pair.on_released = lambda _port: None
                pair.close()
                for sock in sockets:
                    sock.close()
                self.ports.release(port)
                raise RelayError(f"cannot open media port pair {port}: {exc}") from None
            self._media_ports.add(pair.rtp)
            self._media_ports.add(pair.rtcp)
            return pair
        raise RelayError(f"no bindable media ports after {_BIND_ATTEMPTS} attempts")

    def _end_call(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        for pair in call.pairs():
            for port in (pair.rtp, pair.rtcp):
                self._media_ports.discard(port)
                self._ended_packets += port.packets
                self._ended_errors += port.errors
            pair.close()


def _factory(port: MediaPort) -> Callable[[], MediaPort]:
    return lambda: port


def _require(body: Mapping[str, BValue], key: str) -> str:
    value = _string(body, key)
    assert value is not None
    return value


def _error(reason: str) -> dict[str, BValue]:
    return {"result": "error", "error-reason": reason}
