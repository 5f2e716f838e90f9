"""The UDP and TCP shells on real loopback sockets: messages in and out, bad input contained.

Synchronisation is on events, never on sleeps: a test waits for the listener's counters to
reach what it sent (``wait_until``) or for the bytes it expects to arrive.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from switch.config import Listen, load_config_text
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION
from switch.server import Switch
from switch.sip import Message, ParseLimits, Request, make_response, parse_message
from switch.transport import Address, Listener, Sender, Stats, listen

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
async def serving(transport: str, *, limits: ParseLimits | None = None
                  ) -> AsyncIterator[tuple[Listener, Stats]]:
    """A listener on a free loopback port answering OPTIONS, closed afterwards."""
    (listener,), stats = await listen([Listen(transport, "127.0.0.1", 0)], answer_options,
                                      limits=limits)
    try:
        yield listener, stats
    finally:
        listener.close()


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the event loop until ``condition()`` holds (the listener runs on this loop).

    The 5 s bound only turns a hang into a failure; nothing is timed.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 5
    while not condition():
        assert loop.time() < give_up, f"still waiting for {what}"
        await asyncio.sleep(0)


async def _udp_roundtrip(listener: Listener, stats: Stats, payloads: list[bytes],
                         expect: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    before = stats.received
    try:
        for k, data in enumerate(payloads, start=1):
            sock.sendto(data, listener.address)  # uvloop has no loop.sock_sendto
            if k % 50 == 0:  # loopback UDP drops past the socket buffer: let the listener drain
                await wait_until(lambda k=k: stats.received >= before + k,
                                 f"the listener to take datagram {k}")
        got = []
        for _ in range(expect):
            got.append(await asyncio.wait_for(loop.sock_recv(sock, 65535), 5))
        return got
    finally:
        sock.close()


def test_udp_answers_valid_and_repliable_bad_messages_and_drops_garbage(run_loop) -> None:
    async def run() -> None:
        async with serving("udp") as (listener, stats):
            [ok] = await _udp_roundtrip(listener, stats, [options(1)], 1)
            assert parse_message(ok).status == 200
            [bad] = await _udp_roundtrip(listener, stats, [BAD_CSEQ.replace(b"{n}", b"2")], 1)
            # (the reply copies the caller's CSeq as it came, so it is checked as bytes)
            assert bad.startswith(b"SIP/2.0 400 Bad CSeq\r\n")
            assert b"Call-ID: opt-2@127.0.0.1" in bad
            # a flood of garbage: nothing answered, all counted, and the socket still serves
            garbage = [b"\x00\xff" * 40, b"", b"INVITE\r\n\r\n", b"SIP/2.0 999\r\n\r\n"] * 250
            [after] = await _udp_roundtrip(listener, stats, [*garbage, options(3)], 1)
            assert parse_message(after).status == 200
            assert stats.malformed_dropped == len(garbage)
            assert stats.malformed_answered == 1
            assert stats.malformed == Counter(
                {"bad_cseq": 1, "nul_byte": 250, "empty": 250, "bad_request_line": 250,
                 "bad_status_line": 250})

    run_loop(run())


def test_a_handler_bug_answers_500_and_the_listener_lives_on(run_loop) -> None:
    async def run() -> None:
        async with serving("udp") as (listener, stats):
            bye = options(4).replace(b"OPTIONS sip", b"BYE sip").replace(b"1 OPTIONS", b"1 BYE")
            [failed, ok] = await _udp_roundtrip(listener, stats, [bye, options(5)], 2)
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


def spoil(n: int, old: bytes, new: bytes) -> bytes:
    raw = options(n)
    assert old in raw
    return raw.replace(old, new)


def test_udp_malformed_answers_name_the_header_and_are_counted_by_kind(run_loop) -> None:
    async def run() -> None:
        async with serving("udp") as (listener, stats):
            cases = [
                (spoil(10, b"Max-Forwards: 70", b"Max-Forwards: abc"), b"400 Bad Max-Forwards"),
                (spoil(11, b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSubject: a\x00b"),
                 b"400 Bad Header Subject"),
                (spoil(12, b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSubject: a\nb"),
                 b"400 Bad Header Subject"),
                (spoil(13, b"sip:sw1@127.0.0.1 SIP", b"<sip:sw1@127.0.0.1> SIP"),
                 b"400 Bad Request-URI"),
                (spoil(14, b"OPTIONS sip", b"OPTIONS  sip"), b"400 Bad Request Line"),
            ]
            for raw, status_line in cases:
                [answer] = await _udp_roundtrip(listener, stats, [raw], 1)
                assert answer.startswith(b"SIP/2.0 " + status_line + b"\r\n"), answer[:60]
                assert parse_message(answer).headers.get("call-id") == parse_message(
                    options(int(raw.split(b"opt-")[1].split(b"@")[0]))).headers.get("call-id")
            # what cannot be answered safely is dropped: the next good message is answered
            dropped = [
                spoil(20, b"127.0.0.1:5999", b"127.0.0.1:65536"),       # bad Via port
                spoil(21, b"SIP/2.0/UDP", b"garbage"),                    # Via not a Via
                spoil(22, b"Call-ID: opt-22", b"Call-ID: opt-\x0022"),    # NUL in Call-ID
                spoil(23, b"CSeq: 1 OPTIONS", b"CSeq: 1\rOPTIONS"),       # bare CR in CSeq
            ]
            [after] = await _udp_roundtrip(listener, stats, [*dropped, options(24)], 1)
            assert parse_message(after).headers.get("call-id") == "opt-24@127.0.0.1"
            await wait_until(lambda: stats.received == len(cases) + len(dropped) + 1,
                             "every datagram")
            assert stats.malformed == Counter({"bad_max_forwards": 1, "nul_byte": 2,
                                               "bare_crlf": 2, "bad_request_uri": 1,
                                               "bad_request_line": 1, "bad_via": 2})
            assert (stats.malformed_answered, stats.malformed_dropped) == (5, 4)
            assert stats.handler_errors == 0

    run_loop(run())


def test_udp_limits_are_the_listeners(run_loop) -> None:
    async def run() -> None:
        async with serving("udp", limits=ParseLimits(max_uri_bytes=30)) as (listener, stats):
            long_uri = spoil(30, b"sip:sw1@127.0.0.1 SIP", b"sip:" + b"9" * 30 + b"@127.0.0.1 SIP")
            [answer] = await _udp_roundtrip(listener, stats, [long_uri], 1)
            assert answer.startswith(b"SIP/2.0 414 Request-URI Too Long\r\n")
            assert stats.malformed == Counter({"uri_too_long": 1})

    run_loop(run())


async def _tcp_exchange(listener: Listener, data: bytes) -> list[bytes]:
    """Write ``data`` in one go; read every answer until the switch closes the connection."""
    reader, writer = await asyncio.open_connection(*listener.address)
    try:
        writer.write(data)
        await writer.drain()
        answers = []
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            except asyncio.IncompleteReadError as eof:
                assert eof.partial == b"", "a torn answer"
                return answers
            answers.append(head)
    finally:
        writer.close()


def test_tcp_answers_what_it_framed_before_garbage_then_closes(run_loop) -> None:
    async def run() -> None:
        async with serving("tcp") as (listener, stats):
            # a valid message and garbage in one segment: the message is answered, then close
            answers = await _tcp_exchange(listener, options(40) + b"GARBAGE\r\n\r\n")
            assert [a.split(b"\r\n")[0] for a in answers] == [b"SIP/2.0 200 OK"]
            assert b"Call-ID: opt-40@127.0.0.1" in answers[0]
            # two valid messages and an answerable bad one: 200, 200, 400 naming the header
            bad = spoil(43, b"Max-Forwards: 70", b"Max-Forwards: 256")
            answers = await _tcp_exchange(listener, options(41) + options(42) + bad)
            assert [a.split(b"\r\n")[0] for a in answers] == [
                b"SIP/2.0 200 OK", b"SIP/2.0 200 OK", b"SIP/2.0 400 Bad Max-Forwards"]
            assert [parse_message(a).headers.get("call-id") for a in answers] == [
                "opt-41@127.0.0.1", "opt-42@127.0.0.1", "opt-43@127.0.0.1"]
            assert stats.malformed == Counter({"bad_request_line": 1, "bad_max_forwards": 1})
            assert (stats.malformed_answered, stats.malformed_dropped) == (1, 1)
            assert stats.received == 5

    run_loop(run())


def test_tcp_tells_on_close_which_connection_went(run_loop) -> None:
    async def run() -> None:
        closed: list[tuple[Address, Sender]] = []
        senders: dict[Address, Sender] = {}

        def keep(message: Message, source: Address, reply: Sender) -> None:
            senders[source] = reply
            answer_options(message, source, reply)

        (listener,), _ = await listen([Listen("tcp", "127.0.0.1", 0)], keep,
                                      on_close=lambda peer, reply: closed.append((peer, reply)))
        try:
            reader, writer = await asyncio.open_connection(*listener.address)
            writer.write(options(50))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"SIP/2.0 200 OK")
            ours = writer.get_extra_info("sockname")
            writer.close()
            await wait_until(lambda: bool(closed), "the listener to see the close")
            assert closed == [((ours[0], ours[1]), senders[(ours[0], ours[1])])]
        finally:
            listener.close()

    run_loop(run())


def test_the_switch_forgets_a_tcp_peer_once_its_connection_closes(tmp_path: Path,
                                                                  run_loop) -> None:
    """The switch keeps each TCP peer's connection to send it requests later; once the peer
    has hung up, the entry goes (a scanner opening connections must not grow the map)."""
    snapshot = tmp_path / "routing.json"
    snapshot.write_text(json.dumps({"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION,
                                    "rates_at": "2026-11-26T00:00:00Z",
                                    "customers": {}, "vendors": {}}))
    config = load_config_text(
        f'[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
        f'spool_dir = "{tmp_path / "spool"}"\nrouting_snapshot = "{snapshot}"\n'
        # OPTIONS from an untrusted source is the guard's to drop (test_guard_*.py)
        '[guard]\ntrusted = ["127.0.0.1"]\n')

    async def run() -> None:
        switch = Switch(config)
        await switch.start()
        try:
            [tcp] = [item for item in switch.listeners if item.listen.transport == "tcp"]
            reader, writer = await asyncio.open_connection(*tcp.address)
            writer.write(options(60))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"SIP/2.0 200 OK")
            host, port = writer.get_extra_info("sockname")[:2]
            assert (host, port) in switch._tcp
            writer.close()
            await wait_until(lambda: (host, port) not in switch._tcp, "the switch to forget it")
            assert switch._tcp == {}
        finally:
            await switch.close()

    run_loop(run())
