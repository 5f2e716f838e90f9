"""rtpengine's ng control protocol: message framing, a sans-IO codec and an asyncio client.

Every ng datagram is ``<cookie> <dictionary>``: the cookie matches a reply to its request (and lets
the relay answer a retransmission from its cache instead of acting twice), the dictionary is
bencoded (or JSON, which rtpengine also accepts). Requests carry ``command``; replies carry
``result`` (``ok``, ``pong`` or ``error`` with ``error-reason``). :class:`NgClient` speaks it over
UDP to our relay (``python -m switch.media run``) or to a real rtpengine alike.

>>> encode_message("5323_1", {"command": "ping"})
b'5323_1 d7:command4:pinge'
>>> decode_message(b"5323_1 d6:result4:ponge")
NgMessage(cookie='5323_1', body={'result': 'pong'}, json=False)
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from switch.media.bencode import MAX_LENGTH, BencodeError, BValue, decode, encode

__all__ = [
    "ENCRYPTION_OPTION",
    "NgClient",
    "NgCodec",
    "NgError",
    "NgMessage",
    "NgProtocolError",
    "NgTimeoutError",
    "check_reply",
    "decode_message",
    "encode_message",
    "encryption_option",
    "parse_address",
]

ENCRYPTION_OPTION: Final = "ratelab-encryption"
"""Our key in offer/answer dictionaries: ``{"mode": int, "key": "<hex>"}`` for the leg of the
side whose SDP the message carries. rtpengine ignores keys it does not know."""

# rtpengine cookies are short tokens ("5323_1"); the bound keeps junk from being echoed at length.
_MAX_COOKIE = 64


class NgProtocolError(ValueError):
    """A datagram that is not an ng message (no cookie, bad dictionary...).

    >>> str(NgProtocolError("no space after the cookie"))
    'no space after the cookie'
    """


class NgError(Exception):
    """An ng request that failed: ``result: error`` (``reason`` is rtpengine's ``error-reason``),
    an unusable reply, or no reply in time (:class:`NgTimeoutError`).

    >>> str(NgError("Unknown call-id", command="query"))
    'ng query failed: Unknown call-id'
    """

    def __init__(self, reason: str, *, command: str = "request") -> None:
        self.reason = reason
        self.command = command
        super().__init__(f"ng {command} failed: {reason}")


class NgTimeoutError(NgError):
    """No reply within the timeout, retransmissions included.

    >>> isinstance(NgTimeoutError("no reply"), NgError)
    True
    """


@dataclass(frozen=True)
class NgMessage:
    """One decoded datagram; ``json`` says the dictionary came as JSON (reply the same way).

    >>> NgMessage("c1", {"command": "ping"}).cookie
    'c1'
    """

    cookie: str
    body: dict[str, BValue]
    json: bool = False


def _valid_cookie(cookie: str) -> bool:
    return 0 < len(cookie) <= _MAX_COOKIE and cookie.isascii() and cookie.isprintable() \
        and " " not in cookie


def encode_message(cookie: str, body: Mapping[str, object], *, as_json: bool = False) -> bytes:
    """The datagram for ``body`` under ``cookie`` (bencoded, or JSON when ``as_json``).

    >>> encode_message("c9", {"result": "ok"}, as_json=True)
    b'c9 {"result": "ok"}'
    """
    if not _valid_cookie(cookie):
        raise NgProtocolError(f"bad cookie {cookie!r}")
    payload = json.dumps(body).encode() if as_json else encode(body)
    return cookie.encode("ascii") + b" " + payload


def _from_json(value: object, depth: int) -> BValue:
    # JSON has floats, booleans and null, bencode does not; refuse them so both formats decode to
    # the same kind of values.
    if depth > 32:
        raise NgProtocolError("JSON nested too deep")
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, list):
        return [_from_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(k): _from_json(v, depth + 1) for k, v in value.items()}
    raise NgProtocolError(f"JSON value of type {type(value).__name__} has no bencode form")


def decode_message(datagram: bytes) -> NgMessage:
    """Split ``datagram`` into cookie and dictionary (strings decoded as UTF-8).

    Raises :class:`NgProtocolError` for anything that is not an ng message.

    >>> decode_message(b'c2 {"command": "ping"}')
    NgMessage(cookie='c2', body={'command': 'ping'}, json=True)
    >>> decode_message(b"c3 i1e")
    Traceback (most recent call last):
    ...
    switch.media.ng.NgProtocolError: the message is not a dictionary
    """
    if len(datagram) > MAX_LENGTH:
        raise NgProtocolError(f"datagram of {len(datagram)} bytes is too long")
    raw_cookie, space, payload = bytes(datagram).partition(b" ")
    if not space:
        raise NgProtocolError("no space after the cookie")
    cookie = raw_cookie.decode("ascii", errors="replace")
    if not _valid_cookie(cookie):
        raise NgProtocolError(f"bad cookie {raw_cookie[:_MAX_COOKIE]!r}")
    is_json = payload.startswith(b"{")
    try:
        body: object = _from_json(json.loads(payload), 0) if is_json else decode(payload, text=True)
    # json.JSONDecodeError is a ValueError; RecursionError: deeply nested JSON.
    except (BencodeError, ValueError, RecursionError) as exc:
        raise NgProtocolError(f"bad {'JSON' if is_json else 'bencode'} dictionary: {exc}") from None
    if not isinstance(body, dict):
        raise NgProtocolError("the message is not a dictionary")
    return NgMessage(cookie, body, is_json)


def check_reply(body: Mapping[str, BValue], command: str = "request") -> dict[str, BValue]:
    """``body`` as a dict if it is a success reply; raise :class:`NgError` for ``result: error``.

    >>> check_reply({"result": "ok", "sdp": "v=0"})["sdp"]
    'v=0'
    >>> check_reply({"result": "error", "error-reason": "Unknown call-id"}, "query")
    Traceback (most recent call last):
    ...
    switch.media.ng.NgError: ng query failed: Unknown call-id
    """
    result = body.get("result")
    if result == "error":
        reason = body.get("error-reason")
        raise NgError(reason if isinstance(reason, str) else "unspecified error", command=command)
    if result not in ("ok", "pong"):
        raise NgError(f"reply has no valid result: {result!r}", command=command)
    return dict(body)


def encryption_option(mode: int, key: bytes) -> dict[str, BValue]:
    """The ``ratelab-encryption`` value for a leg: mode number and hex key.

    >>> encryption_option(3, bytes(16))
    {'mode': 3, 'key': '00000000000000000000000000000000'}
    """
    return {"mode": int(mode), "key": key.hex()}


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a tuple; ValueError if malformed.

    >>> parse_address("127.0.0.1:2223"), parse_address("[::1]:2223")
    (('127.0.0.1', 2223), ('::1', 2223))
    """
    host, colon, port_text = text.rpartition(":")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


class NgCodec:
    """Sans-IO client side: fresh cookies for requests, replies decoded and checked.

    Cookies are ``<random prefix>_<counter>``: the prefix keeps a restarted client from reusing
    cookies that a relay still holds in its retransmission cache.

    >>> codec = NgCodec(prefix="ab")
    >>> codec.request({"command": "ping"})
    ('ab_1', b'ab_1 d7:command4:pinge')
    >>> codec.reply(b"ab_1 d6:result4:ponge")
    ('ab_1', {'result': 'pong'})
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else secrets.token_hex(4)
        self._counter = 0

    def request(self, command: Mapping[str, object]) -> tuple[str, bytes]:
        """A new cookie and the datagram carrying ``command`` under it."""
        self._counter += 1
        cookie = f"{self.prefix}_{self._counter}"
        return cookie, encode_message(cookie, command)

    def reply(self, datagram: bytes) -> tuple[str, dict[str, BValue]]:
        """Cookie and dictionary of a reply datagram (NgProtocolError if it is not one)."""
        message = decode_message(datagram)
        return message.cookie, message.body


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: keep it for the timeout message, the request may
        # still succeed on a retransmission.
        self.client._last_error = exc

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._transport = None


class NgClient:
    """An ng client over UDP for one relay (ours or rtpengine); safe for concurrent requests.

    ``request`` sends a command and retransmits it (same cookie) up to ``attempts`` times within
    the timeout; the first reply wins. Replies with ``result: error`` raise :class:`NgError`.

    >>> async def demo() -> None:
    ...     async with NgClient("127.0.0.1:9", timeout=0.2) as client:
    ...         await client.ping()
    >>> asyncio.run(demo())
    Traceback (most recent call last):
    ...
    switch.media.ng.NgTimeoutError: ng ping failed: no reply from 127.0.0.1:9 within 0.2 s...
    """

    def __init__(
        self, address: str | tuple[str, int], *, timeout: float = 2.0, attempts: int = 3
    ) -> None:
        self.address = parse_address(address) if isinstance(address, str) else address
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.timeout = timeout
        self.attempts = attempts
        self.codec = NgCodec()
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[str, asyncio.Future[dict[str, BValue]]] = {}
        self._last_error: Exception | None = None
        self._opening: asyncio.Lock | None = None

    async def __aenter__(self) -> NgClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket; requests in flight fail with NgError."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NgError("client closed"))
        self._pending.clear()

    async def _open(self) -> asyncio.DatagramTransport:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._transport is None:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _ClientProtocol(self), remote_addr=self.address
                )
                self._transport = transport
            return self._transport

    def _received(self, data: bytes) -> None:
        cookie = data.partition(b" ")[0].decode("ascii", errors="replace")
        future = self._pending.get(cookie)
        if future is None or future.done():
            return  # a late or duplicate reply (answered retransmission): nothing waits for it
        try:
            future.set_result(self.codec.reply(data)[1])
        except NgProtocolError as exc:
            future.set_exception(NgError(f"unusable reply: {exc}"))

    async def request(
        self, command: Mapping[str, object], timeout: float | None = None
    ) -> dict[str, BValue]:
        """Send ``command``; the checked reply dictionary (NgError on error or timeout)."""
        name = str(command.get("command", "request"))
        budget = self.timeout if timeout is None else timeout
        transport = await self._open()
        cookie, datagram = self.codec.request(command)
        future: asyncio.Future[dict[str, BValue]] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = future
        try:
            for _ in range(self.attempts):
                transport.sendto(datagram)
                try:
                    body = await asyncio.wait_for(asyncio.shield(future), budget / self.attempts)
                except TimeoutError:
                    continue
                except NgError as exc:
                    raise NgError(exc.reason, command=name) from None
                return check_reply(body, name)
        finally:
            self._pending.pop(cookie, None)
            if not future.done():
                future.cancel()
        host, port = self.address
        extra = f" (last socket error: {self._last_error})" if self._last_error else ""
        raise NgTimeoutError(
            f"no reply from {host}:{port} within {budget:g} s ({self.attempts} sends){extra}",
            command=name,
        )

    async def ping(self, timeout: float | None = None) -> None:
        """Raise NgError unless the relay answers ``pong``."""
        body = await self.request({"command": "ping"}, timeout)
        if body.get("result") != "pong":
            raise NgError(f"expected pong, got {body.get('result')!r}", command="ping")

    @staticmethod
    def _sdp_command(
        command: str,
        call_id: str,
        from_tag: str,
        sdp: str,
        encryption: tuple[int, bytes] | None,
        options: Mapping[str, object] | None,
    ) -> dict[str, object]:
        message: dict[str, object] = dict(options or {})
        message.update({"command": command, "call-id": call_id, "from-tag": from_tag, "sdp": sdp})
        if encryption is not None:
            message[ENCRYPTION_OPTION] = encryption_option(*encryption)
        return message

    @staticmethod
    def _sdp_of(body: Mapping[str, BValue], command: str) -> str:
        sdp = body.get("sdp")
        if not isinstance(sdp, str):
            raise NgError("reply has no sdp", command=command)
        return sdp

    async def offer(
        self,
        call_id: str,
        from_tag: str,
        sdp: str,
        *,
        encryption: tuple[int, bytes] | None = None,
        options: Mapping[str, object] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Send the caller's SDP; the SDP to forward to the callee (pointing at the relay).

        ``encryption`` (mode, key) encrypts the caller's leg (relay ours only); ``options`` adds
        other ng keys (e.g. ``{"flags": ["strict source"]}`` for rtpengine).
        """
        message = self._sdp_command("offer", call_id, from_tag, sdp, encryption, options)
        return self._sdp_of(await self.request(message, timeout), "offer")

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: str,
        *,
        encryption: tuple[int, bytes] | None = None,
        options: Mapping[str, object] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Send the callee's SDP; the SDP to forward to the caller. ``encryption``: callee's leg."""
        message = self._sdp_command("answer", call_id, from_tag, sdp, encryption, options)
        message["to-tag"] = to_tag
        return self._sdp_of(await self.request(message, timeout), "answer")

    async def delete(
        self,
        call_id: str,
        from_tag: str | None = None,
        to_tag: str | None = None,
        *,
        options: Mapping[str, object] | None = None,
        timeout: float | None = None,
    ) -> dict[str, BValue]:
        """End the call; the reply (query-shaped statistics, a ``warning`` if it was unknown)."""
        message: dict[str, object] = dict(options or {})
        message.update({"command": "delete", "call-id": call_id})
        if from_tag is not None:
            message["from-tag"] = from_tag
        if to_tag is not None:
            message["to-tag"] = to_tag
        return await self.request(message, timeout)

    async def query(
        self, call_id: str | None = None, from_tag: str | None = None,
        *, timeout: float | None = None,
    ) -> dict[str, BValue]:
        """One call's statistics; without ``call_id`` (our relay only) the relay's port usage."""
        message: dict[str, object] = {"command": "query"}
        if call_id is not None:
            message["call-id"] = call_id
        if from_tag is not None:
            message["from-tag"] = from_tag
        return await self.request(message, timeout)

    async def statistics(self, *, timeout: float | None = None) -> dict[str, BValue]:
        """Relay-wide statistics (rtpengine's ``statistics`` shape)."""
        return await self.request({"command": "statistics"}, timeout)
