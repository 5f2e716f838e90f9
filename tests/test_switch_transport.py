"""The UDP and TCP shells on real loopback sockets: messages in and out, bad input contained."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from switch.config import Listen
from switch.sip import Message, Request, make_response, parse_message
from switch.transport import Listener, Stats, listen

OPTIONS = (
    b"OPTIONS sip:sw1@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-{n}\r\n"
    b"From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:sw1@127.0.0.1>\r\n"
    b"Call-ID: opt-{n}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)
BAD_CSEQ = OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")


def options(n: int) -> bytes:
    return OPTIONS.replace(b"{n}", str(n).encode())


def answer_options(message: Message, source, reply) -> None:
    if isinstance(message, Request) and message.method == "OPTIONS":
        reply(make_response(message, 200))
    elif isinstance(message, Request) and message.method == "BYE":
        raise RuntimeError("a bug in call handling")


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request: pytest.FixtureRequest):
    """Run a coroutine on asyncio's own loop and on uvloop (what `switch run` uses): their
    transports differ (uvloop's TCP transport is not an asyncio.Transport subclass)."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


@asynccontextmanager
async def serving(transport: str) -> AsyncIterator[tuple[Listener, Stats]]:
    """A listener on a free loopback port answering OPTIONS, closed afterwards."""
    (listener,), stats = await listen([Listen(transport, "127.0.0.1", 0)], answer_options)
    try:
        yield listener, stats
    finally:
        listener.close()


async def _udp_roundtrip(port: int, payloads: list[bytes], expect: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    try:
        for k, data in enumerate(payloads, start=1):
            sock.sendto(data, ("127.0.0.1", port))  # uvloop has no loop.sock_sendto
            if k % 50 == 0:  # let the listener drain: loopback UDP drops past its buffer
                await asyncio.sleep(0.01)
        got = []
        for _ in range(expect):
            got.append(await asyncio.wait_for(loop.sock_recv(sock, 65535), 5))
        return got
    finally:
        sock.close()


def test_udp_answers_valid_and_repliable_bad_messages_and_drops_garbage(run_loop) -> None:
    async def run() -> None:
        async with serving("udp") as (listener, stats):
            port = listener.address[1]
            [ok] = await _udp_roundtrip(port, [options(1)], 1)
            assert parse_message(ok).status == 200
            [bad] = await _udp_roundtrip(port, [BAD_CSEQ.replace(b"{n}", b"2")], 1)
            # (the reply copies the caller's CSeq as it came, so it is checked as bytes)
            assert bad.startswith(b"SIP/2.0 400 ") and b"Call-ID: opt-2@127.0.0.1" in bad
            # a flood of garbage: nothing answered, all counted, and the socket still serves
            garbage = [b"\x00\xff" * 40, b"", b"INVITE\r\n\r\n", b"SIP/2.0 999\r\n\r\n"] * 250
            [after] = await _udp_roundtrip(port, [*garbage, options(3)], 1)
            assert parse_message(after).status == 200
            assert stats.malformed_dropped == len(garbage)
            assert stats.malformed_answered == 1

    run_loop(run())


def test_a_handler_bug_answers_500_and_the_listener_lives_on(run_loop) -> None:
    async def run() -> None:
        async with serving("udp") as (listener, stats):
            bye = options(4).replace(b"OPTIONS sip", b"BYE sip").replace(b"1 OPTIONS", b"1 BYE")
            [failed, ok] = await _udp_roundtrip(listener.address[1], [bye, options(5)], 2)
            assert parse_message(failed).status == 500 and parse_message(ok).status == 200
            assert stats.handler_errors == 1

    run_loop(run())


def test_tcp_frames_messages_and_closes_a_malformed_stream(run_loop) -> None:
    async def run() -> None:
        async with serving("tcp") as (listener, _):
            host, port = listener.address
            reader, writer = await asyncio.open_connection(host, port)
            # two in one write, then one byte by byte
            writer.write(options(6) + b"\r\n\r\n" + options(7))
            for byte in options(8):
                writer.write(bytes([byte]))
                await writer.drain()
            for _ in range(3):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"SIP/2.0 200 OK")
            writer.write(BAD_CSEQ.replace(b"{n}", b"9"))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"SIP/2.0 400")
            assert await asyncio.wait_for(reader.read(), 5) == b"", "the stream is closed"
            writer.close()

    run_loop(run())
