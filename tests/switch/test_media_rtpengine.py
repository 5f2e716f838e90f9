"""NgClient against a REAL rtpengine (Debian package rtpengine-daemon), and the same plain call
against our relay: the client and the reply shapes it relies on work with both.

rtpengine runs userspace only (``--table=-1``: no kernel forwarding module), with no config file,
as a subprocess owned by the test and killed at the end. A missing rtpengine fails the test with
the install hint; it is never skipped (``.ci/run`` installs the package).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switch.media import ENCRYPTION_OPTION, NgClient, NgError, Relay
from tests.switch.conftest import RTPENGINE_PORTS
from tests.switch.media_peers import WAIT, Peer, media_address, offer_sdp, rtcp_sender_report, rtp

INSTALL_HINT = (
    "rtpengine is not installed: this test drives a real rtpengine. On Debian/Ubuntu: "
    "apt-get install rtpengine-daemon (.ci/run installs it)"
)
PORT_MIN, PORT_MAX = RTPENGINE_PORTS


def _stream(reply: dict[str, Any], tag: str, kind: str = "RTP") -> dict[str, Any]:
    for leg in reply["tags"].values():
        if leg["tag"] == tag:
            for stream in leg["medias"][0]["streams"]:
                if kind in stream["flags"]:
                    return dict(stream)
    raise AssertionError(f"no {kind} stream for tag {tag!r} in {reply}")


async def plain_call(client: NgClient, call_id: str) -> Any:
    """ping, offer, answer, RTP and RTCP both ways, query, delete; returns the query reply."""
    await client.ping()
    caller, callee = await Peer.bind(), await Peer.bind()
    try:
        # Our encryption option rides along; rtpengine must ignore it (and then relays clear).
        # rtpengine's own "strict source" (ours always is) and "replace origin" (ours always
        # rewrites o=) are options ours ignores: the switch can send the same dictionaries.
        options = {"flags": ["strict source"], "replace": ["origin"]}
        offered = await client.offer(
            call_id, "caller-tag", offer_sdp(*caller.address),
            options={**options, ENCRYPTION_OPTION: {"mode": 0, "key": ""}})
        answered = await client.answer(call_id, "caller-tag", "callee-tag",
                                       offer_sdp(*callee.address), options=options)
        to_callee, to_caller = media_address(offered), media_address(answered)
        assert to_callee[0] == to_caller[0] == "127.0.0.1"
        for seq in range(4):
            caller.send(rtp(seq, b"hello callee"), to_caller)
            data, source = await callee.receive()
            assert data == rtp(seq, b"hello callee") and source == to_callee
        for seq in range(2):
            callee.send(rtp(seq, b"hi", ssrc=99), to_callee)
            data, source = await caller.receive()
            assert data == rtp(seq, b"hi", ssrc=99) and source == to_caller
        # RTCP goes to the relay's RTP port + 1 (the SDPs leave it implicit); only its receipt is
        # checked here, relaying RTCP is tests/switch/test_media_relay.py's.
        caller.send(rtcp_sender_report(), (to_caller[0], to_caller[1] + 1))

        reply: Any = await client.query(call_id)
        assert reply["result"] == "ok"
        sent_by_caller = _stream(reply, "caller-tag")
        assert sent_by_caller["local port"] == to_caller[1]
        assert sent_by_caller["stats"] == {"packets": 4, "bytes": 4 * 24, "errors": 0}
        assert sent_by_caller["endpoint"]["port"] == caller.address[1]
        assert isinstance(sent_by_caller["last packet"], int)
        sent_by_callee = _stream(reply, "callee-tag")
        assert sent_by_callee["local port"] == to_callee[1]
        assert sent_by_callee["stats"]["packets"] == 2
        assert _stream(reply, "caller-tag", "RTCP")["stats"]["packets"] == 1
        assert reply["totals"]["RTP"] == {"packets": 6, "bytes": 4 * 24 + 2 * 14, "errors": 0}
        assert reply["totals"]["RTCP"]["packets"] == 1
        assert isinstance(reply["created"], int) and isinstance(reply["last signal"], int)

        deleted: Any = await client.delete(call_id, "caller-tag")
        assert deleted["result"] == "ok"
        assert deleted["totals"]["RTP"]["packets"] == 6
        with pytest.raises(NgError, match="Unknown call-id"):
            await client.query(call_id)
        gone: Any = await client.delete(call_id)
        assert gone["result"] == "ok" and "warning" in gone
        stats: Any = await client.statistics()
        assert stats["statistics"]["currentstatistics"]["sessionstotal"] == 0
        return reply
    finally:
        caller.close()
        callee.close()


def test_plain_call_through_real_rtpengine(rtpengine: tuple[str, int]) -> None:
    async def test() -> None:
        async with NgClient(rtpengine, timeout=WAIT) as client:
            reply: Any = await plain_call(client, "rtpengine-call-1")
            ports = [_stream(reply, t)["local port"] for t in ("caller-tag", "callee-tag")]
            assert all(PORT_MIN <= p <= PORT_MAX for p in ports)
            # rtpengine requires call-id for query, which is why our port summary is ours only.
            with pytest.raises(NgError):
                await client.query()
            # A real encryption option is ignored too (rtpengine then relays in clear, so the
            # switch must only ask for encryption from relays of ours).
            sdp = await client.offer("rtpengine-call-2", "a", offer_sdp("127.0.0.1", 4000),
                                     encryption=(3, bytes(16)))
            assert media_address(sdp)[0] == "127.0.0.1"
            await client.delete("rtpengine-call-2")

    asyncio.run(test())


def test_same_plain_call_through_our_relay() -> None:
    async def test() -> None:
        relay = Relay("127.0.0.1", port_min=30200, port_max=30299)
        address = await relay.start("127.0.0.1", 0)
        try:
            async with NgClient(address, timeout=WAIT) as client:
                await plain_call(client, "our-call-1")
                summary: Any = await client.query()
                assert summary["ratelab-ports"]["in use"] == 0
        finally:
            await relay.close()

    asyncio.run(test())
