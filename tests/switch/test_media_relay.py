"""The media relay (switch.media.relay) in-process, driven by NgClient over real UDP on 127.0.0.1.

Caller and callee are plain UDP sockets (tests/switch/media_peers.py). Each test starts its own
relay on a free control port and a port range of its own, so tests do not share sockets.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.media import NgClient, NgError, Relay
from switch.media.crypto import Mode, PayloadCipher
from switch.media.ng import decode_message, encode_message
from switch.sip.sdp import parse_sdp
from tests.switch.media_peers import (
    WAIT,
    Peer,
    media_address,
    offer_sdp,
    rtcp_sender_report,
    rtp,
)

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Each test gets its own 200-port slice of 21000-28999: above the relay's default range (a relay
# running on the machine) and below the kernel's ephemeral ports (32768-60999 on Linux), which
# any socket bound to port 0 may hold.
_ranges = itertools.count(21000, 200)


def _range() -> tuple[int, int]:
    start = next(_ranges)
    if start >= 29000:
        raise RuntimeError("out of test port ranges")
    return start, start + 199


@asynccontextmanager
async def running_relay(
    port_min: int | None = None, port_max: int | None = None
) -> AsyncIterator[tuple[Relay, NgClient]]:
    low, high = _range()
    relay = Relay("127.0.0.1", port_min=port_min or low, port_max=port_max or high)
    address = await relay.start("127.0.0.1", 0)
    client = NgClient(address, timeout=WAIT)
    try:
        yield relay, client
    finally:
        client.close()
        await relay.close()


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(test())


def stream_of(reply: Any, tag: str, kind: str = "RTP") -> Any:
    """The RTP (or RTCP) stream dictionary of ``tag``'s first media in a query reply."""
    for stream in reply["tags"][tag]["medias"][0]["streams"]:
        if kind in stream["flags"]:
            return stream
    raise AssertionError(f"no {kind} stream for {tag}")


async def ports_in_use(client: NgClient) -> int:
    summary: Any = await client.query()
    value = summary["ratelab-ports"]["in use"]
    assert isinstance(value, int)
    return value


class Call:
    """A caller and a callee socket with a call set up through the relay."""

    def __init__(self, caller: Peer, callee: Peer, to_callee: tuple[str, int],
                 to_caller: tuple[str, int]) -> None:
        self.caller = caller
        self.callee = callee
        self.to_callee = to_callee  # relay port the callee sends to (from the offer's SDP)
        self.to_caller = to_caller  # relay port the caller sends to (from the answer's SDP)

    def close(self) -> None:
        self.caller.close()
        self.callee.close()


async def setup_call(
    client: NgClient, call_id: str = "call-1", *, caller_host: str = "127.0.0.1",
    caller_encryption: tuple[int, bytes] | None = None,
    callee_encryption: tuple[int, bytes] | None = None,
) -> Call:
    caller = await Peer.bind(caller_host)
    callee = await Peer.bind()
    offered = await client.offer(call_id, "from-1", offer_sdp(*caller.address),
                                 encryption=caller_encryption)
    answered = await client.answer(call_id, "from-1", "to-1", offer_sdp(*callee.address),
                                   encryption=callee_encryption)
    return Call(caller, callee, media_address(offered), media_address(answered))


# --- control: ping, SDP rewriting, errors -----------------------------------------------------


def test_ping() -> None:
    async def test() -> None:
        async with running_relay() as (_, client):
            await client.ping()
            assert await client.request({"command": "ping"}) == {"result": "pong"}

    run(test)


def test_offer_and_answer_rewrite_both_sdps_to_relay_ports() -> None:
    async def test() -> None:
        async with running_relay() as (relay, client):
            low = relay.ports.port_min
            offered = await client.offer("c1", "ft", offer_sdp("127.0.0.1", 4000, session=7))
            answered = await client.answer("c1", "ft", "tt", offer_sdp("127.0.0.1", 5000))
            for body in (offered, answered):
                sd = parse_sdp(body.encode())
                assert sd.connection == "127.0.0.1" and sd.origin.address == "127.0.0.1"
                assert low <= sd.media[0].port <= relay.ports.port_max
                assert sd.media[0].port % 2 == 0
                assert sd.media[0].formats == ["0", "8", "101"]  # codecs untouched
            offer_port = parse_sdp(offered.encode()).media[0].port
            answer_port = parse_sdp(answered.encode()).media[0].port
            assert offer_port != answer_port and offer_port not in (4000, 5000)
            assert parse_sdp(offered.encode()).origin.session_version == 2  # bumped
            assert await ports_in_use(client) == 4
            reply: Any = await client.query("c1")
            assert stream_of(reply, "ft")["local port"] == answer_port  # where the caller sends
            assert stream_of(reply, "tt")["local port"] == offer_port
            assert stream_of(reply, "ft")["advertised endpoint"] == {
                "family": "IPv4", "address": "127.0.0.1", "port": 4000}
            assert stream_of(reply, "ft", "RTCP")["local port"] == answer_port + 1
            assert stream_of(reply, "ft", "RTCP")["advertised endpoint"]["port"] == 4001
            tags: Any = reply["tags"]
            assert isinstance(tags, dict)
            assert tags["ft"]["in dialogue with"] == "tt"

    run(test)


def test_errors_are_replies_never_crashes() -> None:
    async def test() -> None:
        async with running_relay() as (relay, client):
            cases: list[tuple[dict[str, object], str]] = [
                ({"command": "query", "call-id": "nope"}, "Unknown call-id"),
                ({"command": "answer", "call-id": "nope", "from-tag": "a", "to-tag": "b",
                  "sdp": offer_sdp("127.0.0.1", 4000)}, "Unknown call-id"),
                ({"command": "offer", "from-tag": "a", "sdp": "v=0"}, "No call-id in message"),
                ({"command": "offer", "call-id": "x", "from-tag": "a", "sdp": "garbage"},
                 "Failed to parse SDP"),
                ({"command": "offer", "call-id": "x", "from-tag": "a",
                  "sdp": offer_sdp("::1", 4000).replace("IP4", "IP6")}, "address family"),
                ({"command": "offer", "call-id": "x", "from-tag": "a", "sdp": offer_sdp(
                    "127.0.0.1", 4000), "ratelab-encryption": {"mode": 3, "key": "00"}},
                 "exactly 16 bytes"),
                ({"command": "offer", "call-id": "x", "from-tag": "a", "sdp": offer_sdp(
                    "127.0.0.1", 4000), "ratelab-encryption": {"mode": 9, "key": ""}},
                 "mode must be 0-3"),
                ({"command": "teleport"}, "Unrecognized command"),
                ({"call-id": "x"}, "No command in message"),
                ({"command": "delete", "call-id": "nope", "flags": ["fatal"]},
                 "Call-ID not found"),
            ]
            for message, reason in cases:
                with pytest.raises(NgError, match=reason):
                    await client.request(message)
            # rtpengine's delete of an unknown call is a warning, not an error
            reply: Any = await client.delete("nope")
            assert reply["result"] == "ok" and "not found" in str(reply["warning"])
            assert relay.calls == {} and await ports_in_use(client) == 0

            # Junk datagrams: answered with an error when they carry a cookie, else ignored.
            peer = await Peer.bind()
            ng = relay.ng_address
            assert ng is not None
            junk = (b"", b"nocookie", b"\xff\xfe", b"x" * 60000, b"c1 d3:key", b"c2 i1e",
                    b"c3 " + b"l" * 500, b"c4 {bad json", b"c5 [1]", b"c6 d1:ai1e1:ai2ee")
            for datagram in junk:
                peer.send(datagram, ng)
            replies = {}
            for _ in range(6):
                data, _ = await peer.receive()
                answer = decode_message(data)
                replies[answer.cookie] = answer.body
            assert set(replies) == {"c1", "c2", "c3", "c4", "c5", "c6"}
            assert all(body["result"] == "error" for body in replies.values())
            assert "duplicate" in str(replies["c6"]["error-reason"])
            await client.ping()  # still serving
            peer.close()

    run(test)


_ng_values = st.recursive(
    st.integers(-5, 70000) | st.text(max_size=12) | st.sampled_from(
        ["127.0.0.1", "ft", "tt", "c1", offer_sdp("127.0.0.1", 4000), "fatal", "fast"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)
_ng_messages = st.fixed_dictionaries(
    {"command": st.sampled_from(["ping", "offer", "answer", "delete", "query", "statistics",
                                 "list", "x"])},
    optional={key: _ng_values for key in ("call-id", "from-tag", "to-tag", "sdp", "flags",
                                          "limit", "ratelab-encryption")},
)


@given(st.lists(_ng_messages, min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_any_command_dictionary_gets_a_reply(messages: list[dict[str, Any]]) -> None:
    async def test() -> None:
        relay = Relay("127.0.0.1", port_min=29200, port_max=29219)
        for message in messages:
            reply = await relay.execute(message)
            assert reply["result"] in ("ok", "pong", "error"), reply
            if reply["result"] == "error":
                assert isinstance(reply["error-reason"], str)
        await relay.close()
        assert relay.ports.in_use == 0

    run(test)


def test_retransmitted_request_is_answered_from_cache_not_run_twice() -> None:
    async def test() -> None:
        async with running_relay() as (relay, _client):
            peer = await Peer.bind()
            ng = relay.ng_address
            assert ng is not None
            datagram = encode_message("same-cookie", {
                "command": "offer", "call-id": "rt", "from-tag": "a",
                "sdp": offer_sdp("127.0.0.1", 4000)})
            peer.send(datagram, ng)
            first, _ = await peer.receive()
            peer.send(datagram, ng)
            second, _ = await peer.receive()
            assert first == second  # same SDP, same ports: the offer did not run again
            assert relay.ports.in_use == 2
            peer.close()

    run(test)


def test_json_requests_get_json_replies() -> None:
    async def test() -> None:
        async with running_relay() as (relay, _client):
            peer = await Peer.bind()
            assert relay.ng_address is not None
            peer.send(b'j1 {"command": "ping"}', relay.ng_address)
            data, _ = await peer.receive()
            assert data == b'j1 {"result": "pong"}'
            peer.close()

    run(test)


# --- media ---------------------------------------------------------------------------------------


def test_rtp_flows_both_ways_with_counters() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            call = await setup_call(client)
            for seq in range(5):
                call.caller.send(rtp(seq, b"caller-%d" % seq), call.to_caller)
                data, source = await call.callee.receive()
                assert data == rtp(seq, b"caller-%d" % seq)
                assert source == call.to_callee  # sent from the relay port the callee uses
            for seq in range(3):
                call.callee.send(rtp(seq, b"callee", ssrc=7), call.to_callee)
                data, source = await call.caller.receive()
                assert data == rtp(seq, b"callee", ssrc=7) and source == call.to_caller
            reply: Any = await client.query("call-1")
            caller_stream = stream_of(reply, "from-1")
            callee_stream = stream_of(reply, "to-1")
            assert caller_stream["stats"] == {"packets": 5, "bytes": 5 * 20, "errors": 0}
            assert caller_stream["ratelab-sent"] == {"packets": 3, "bytes": 3 * 18}
            assert callee_stream["stats"] == {"packets": 3, "bytes": 3 * 18, "errors": 0}
            assert callee_stream["endpoint"]["port"] == call.callee.address[1]
            assert "confirmed" in caller_stream["flags"]
            assert isinstance(caller_stream["last packet"], int)
            assert caller_stream["last packet"] >= reply["created"]
            assert reply["totals"] == {
                "RTP": {"packets": 8, "bytes": 154, "errors": 0},
                "RTCP": {"packets": 0, "bytes": 0, "errors": 0}}
            deleted: Any = await client.delete("call-1", "from-1")
            assert deleted["result"] == "ok" and deleted["totals"] == reply["totals"]
            stats: Any = await client.statistics()
            assert stats["statistics"]["totalstatistics"]["relayedpackets"] == 8  # ended calls too
            call.close()

    run(test)


def test_strict_source_drops_other_ips() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            call = await setup_call(client)
            stranger = await Peer.bind("127.0.0.9")  # same host, but not the SDP's address
            stranger.send(rtp(1, b"injected"), call.to_caller)
            stranger.send(rtp(2, b"injected"), call.to_callee)
            call.caller.send(rtp(3, b"genuine"), call.to_caller)
            data, _ = await call.callee.receive()
            assert data == rtp(3, b"genuine")  # the injected packet did not get through first
            call.callee.send(rtp(4, b"genuine"), call.to_callee)
            data, _ = await call.caller.receive()
            assert data == rtp(4, b"genuine")
            assert call.callee.queue.empty() and call.caller.queue.empty()
            reply: Any = await client.query("call-1")
            assert stream_of(reply, "from-1")["stats"]["errors"] == 1
            assert stream_of(reply, "to-1")["stats"]["errors"] == 1
            assert stream_of(reply, "from-1")["stats"]["packets"] == 1
            stranger.close()
            call.close()

    run(test)


def test_port_latching_accepts_the_first_source_port_and_answers_there() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            call = await setup_call(client)
            # A NAT'd caller: the SDP said one port, the packets come from another.
            natted = await Peer.bind("127.0.0.1")
            natted.send(rtp(1, b"from-nat"), call.to_caller)
            data, _ = await call.callee.receive()
            assert data == rtp(1, b"from-nat")
            call.callee.send(rtp(1, b"reply"), call.to_callee)
            data, source = await natted.receive()  # the answer goes to the learned port
            assert data == rtp(1, b"reply") and source == call.to_caller
            # Once latched, the SDP's own port is a different source: dropped.
            call.caller.send(rtp(2, b"late"), call.to_caller)
            natted.send(rtp(3, b"still-nat"), call.to_caller)
            data, _ = await call.callee.receive()
            assert data == rtp(3, b"still-nat")
            stream = stream_of(await client.query("call-1"), "from-1")
            assert stream["endpoint"]["port"] == natted.address[1]
            assert stream["advertised endpoint"]["port"] == call.caller.address[1]
            assert stream["stats"]["errors"] == 1
            natted.close()
            call.close()

    run(test)


def test_media_address_overrides_the_sdp_address() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            caller = await Peer.bind("127.0.0.5")  # its SDP says 10.0.0.5 (private, behind NAT)
            callee = await Peer.bind()
            port = caller.address[1]
            offered = await client.offer("nat", "a", offer_sdp("10.0.0.5", port),
                                         options={"media address": "127.0.0.5"})
            answered = await client.answer("nat", "a", "b", offer_sdp(*callee.address))
            caller.send(rtp(1, b"from behind nat"), media_address(answered))
            data, _ = await callee.receive()
            assert data == rtp(1, b"from behind nat")
            callee.send(rtp(1, b"back"), media_address(offered))
            data, _ = await caller.receive()
            assert data == rtp(1, b"back")
            stream = stream_of(await client.query("nat"), "a")
            assert stream["advertised endpoint"]["address"] == "127.0.0.5"
            caller.close()
            callee.close()

    run(test)


def test_rtcp_is_relayed_on_port_plus_one() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            caller_rtcp = await Peer.bind()
            callee_rtcp = await Peer.bind()
            # The SDPs advertise RTP on (RTCP port - 1); RTCP defaults to RTP port + 1.
            offered = await client.offer("r", "a", offer_sdp("127.0.0.1",
                                                            caller_rtcp.address[1] - 1))
            answered = await client.answer("r", "a", "b", offer_sdp("127.0.0.1",
                                                                   callee_rtcp.address[1] - 1))
            to_callee = media_address(offered)
            to_caller = media_address(answered)
            report = rtcp_sender_report()
            caller_rtcp.send(report, ("127.0.0.1", to_caller[1] + 1))
            data, source = await callee_rtcp.receive()
            assert data == report and source == ("127.0.0.1", to_callee[1] + 1)
            callee_rtcp.send(report, ("127.0.0.1", to_callee[1] + 1))
            data, source = await caller_rtcp.receive()
            assert data == report and source == ("127.0.0.1", to_caller[1] + 1)
            reply: Any = await client.query("r")
            assert stream_of(reply, "a", "RTCP")["stats"]["packets"] == 1
            assert reply["totals"]["RTCP"]["packets"] == 2
            caller_rtcp.close()
            callee_rtcp.close()

    run(test)


def test_encryption_between_relay_and_callee() -> None:
    async def test() -> None:
        key = bytes(range(16))
        async with running_relay() as (_relay, client):
            call = await setup_call(client, callee_encryption=(Mode.AES128, key))
            decrypt = PayloadCipher(Mode.AES128, key)
            encrypt = PayloadCipher(Mode.AES128, key)
            for seq in range(3):
                packet = rtp(seq, b"clear payload %d" % seq)
                call.caller.send(packet, call.to_caller)
                wire, _ = await call.callee.receive()
                assert wire[:12] == packet[:12] and wire[12:] != packet[12:]
                assert decrypt.decrypt(wire) == packet
            # And back: the callee encrypts, the caller (mode 0) gets clear text.
            packet = rtp(9, b"from the callee", ssrc=5)
            call.callee.send(encrypt.encrypt(packet), call.to_callee)
            data, _ = await call.caller.receive()
            assert data == packet
            reply: Any = await client.query("call-1")
            tags: Any = reply["tags"]
            assert isinstance(tags, dict)
            assert tags["to-1"]["ratelab-encryption"] == {"mode": 3}
            assert tags["from-1"]["ratelab-encryption"] == {"mode": 0}
            # Not RTP cannot be encrypted: dropped and counted, never sent in clear.
            call.caller.send(b"\x00junk", call.to_caller)
            call.caller.send(rtp(10, b"after"), call.to_caller)
            wire, _ = await call.callee.receive()
            assert decrypt.decrypt(wire) == rtp(10, b"after")
            assert stream_of(await client.query("call-1"), "from-1")["stats"]["errors"] == 1
            call.close()

    run(test)


def test_reoffer_keeps_ports_and_moves_media() -> None:
    async def test() -> None:
        async with running_relay() as (_relay, client):
            call = await setup_call(client)
            moved = await Peer.bind()
            # The callee re-INVITEs (it is now the offerer) with a new media address.
            reoffer = await client.offer("call-1", "to-1", offer_sdp(*moved.address, session=2))
            assert media_address(reoffer) == call.to_caller  # same relay ports as before
            reanswer = await client.answer("call-1", "to-1", "from-1",
                                           offer_sdp(*call.caller.address))
            assert media_address(reanswer) == call.to_callee
            call.caller.send(rtp(1, b"to the new place"), call.to_caller)
            data, _ = await moved.receive()
            assert data == rtp(1, b"to the new place")
            assert await ports_in_use(client) == 4
            moved.close()
            call.close()

    run(test)


# --- ports ----------------------------------------------------------------------------------------


def test_delete_frees_ports_over_many_calls() -> None:
    async def test() -> None:
        async with running_relay(port_min=29000, port_max=29019) as (relay, client):
            caller = offer_sdp("127.0.0.1", 4000)
            callee = offer_sdp("127.0.0.1", 5000)
            for n in range(2000):  # 2,000 calls through 5 pairs: any leak exhausts the range
                call_id = f"loop-{n}"
                await client.offer(call_id, "a", caller)
                await client.answer(call_id, "a", "b", callee)
                if n % 500 == 0:
                    assert await ports_in_use(client) == 4
                await client.delete(call_id, "a", options={"flags": ["fast"]})
            assert await ports_in_use(client) == 0
            stats: Any = await client.statistics()
            current = stats["statistics"]["currentstatistics"]
            assert current["sessionstotal"] == 0
            assert stats["statistics"]["totalstatistics"]["managedsessions"] == 2000
            assert relay.calls == {}
            assert len(relay._media_ports) == 0

    run(test)


def test_exhausted_range_is_an_error_and_leaves_nothing_behind() -> None:
    async def test() -> None:
        async with running_relay(port_min=29100, port_max=29103) as (relay, client):
            sdp = offer_sdp("127.0.0.1", 4000)
            await client.offer("one", "a", sdp)
            await client.answer("one", "a", "b", sdp)  # both pairs used
            with pytest.raises(NgError, match="no free media ports"):
                await client.offer("two", "a", sdp)
            assert "two" not in relay.calls
            await client.delete("one")
            await client.offer("two", "a", sdp)  # freed ports are usable again

    run(test)


# --- the process ---------------------------------------------------------------------------------


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_relay_process_serves_and_stops_on_sigterm() -> None:
    port = _free_udp_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "switch.media", "run", "--listen-ng", f"127.0.0.1:{port}",
         "--address", "127.0.0.1", "--port-min", "29300", "--port-max", "29399",
         "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"relay ready: ng 127.0.0.1:{port} media 127.0.0.1 ports 29300-29399"

        async def talk() -> None:
            async with NgClient(("127.0.0.1", port), timeout=WAIT) as client:
                await client.ping()
                call = await setup_call(client, "proc")
                call.caller.send(rtp(1, b"through the process"), call.to_caller)
                data, _ = await call.callee.receive()
                assert data == rtp(1, b"through the process")
                call.close()

        asyncio.run(talk())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_relay_cli_help_and_bad_arguments() -> None:
    command = [sys.executable, "-m", "switch.media"]
    shown = subprocess.run([*command, "run", "--help"], cwd=ROOT, capture_output=True, text=True,
                           check=False)
    assert shown.returncode == 0 and "--listen-ng" in shown.stdout and "--port-min" in shown.stdout
    for bad in (["run"], ["run", "--address", "not-an-ip"],
                ["run", "--address", "127.0.0.1", "--port-min", "0"],
                ["run", "--address", "127.0.0.1", "--listen-ng", "localhost"],
                ["run", "--address", "127.0.0.1", "--port-min", "20001", "--port-max", "20001"],
                # TEST-NET address: not this machine's, so no media port could ever be bound
                ["run", "--address", "192.0.2.1", "--listen-ng", f"127.0.0.1:{_free_udp_port()}"]):
        result = subprocess.run([*command, *bad], cwd=ROOT, capture_output=True, text=True,
                                check=False)
        assert result.returncode == 2, (bad, result.stderr)
        assert "error" in result.stderr


def test_a_source_port_0_is_dropped_and_never_latched() -> None:
    """Nothing can be sent back to port 0 (SIPp plays pcap audio from it): such a packet is
    dropped, and the first packet from a real port of the signalled IP still latches."""
    from switch.media.session import MediaPort, StreamKind

    port = MediaPort(20000, next(iter(StreamKind)))
    port.expected_ip = "127.0.0.1"
    port.datagram_received(b"x" * 20, ("127.0.0.1", 0))
    assert (port.source, port.errors, port.packets) == (None, 1, 0)
    port.datagram_received(b"x" * 20, ("127.0.0.1", 4000))
    assert port.source == ("127.0.0.1", 4000) and port.packets == 1
