"""The engine's media requests carried out by a real relay process: every ng command the engine
builds (offer, answer, re-offers in both directions and their answers, query, delete) is one our
relay accepts, and what comes back is what the engine sends on.

The SIP side is the sans-IO harness (no SIP sockets); the relay is `python -m switch.media run`
started by `switch.media.start_workers`, asked over UDP with `NgClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from switch.b2bua.tu import MediaRequest
from switch.media import NgClient, NgError, start_workers
from switch.media.workers import Workers
from switch.sip import Request, Response, parse_sdp
from tests.switch.b2bua_harness import ANSWER_SDP, SDP, Harness, config

PORTS = (32700, 32767)  # no other test's, below the kernel's ephemeral ports


@pytest.fixture
def relay() -> Iterator[tuple[asyncio.AbstractEventLoop, tuple[str, int]]]:
    """The relay process and the one loop that started it (its stop must run there too)."""
    loop = asyncio.new_event_loop()
    workers: Workers = loop.run_until_complete(
        start_workers(1, address="127.0.0.1", port_min=PORTS[0], port_max=PORTS[1]))
    try:
        yield loop, workers.addresses[0]
    finally:
        loop.run_until_complete(workers.stop())
        loop.close()


def _asker(relay: tuple[asyncio.AbstractEventLoop, tuple[str, int]],
           log: list[tuple[str, dict | None]]):
    loop, address = relay

    def ask(request: MediaRequest) -> dict | None:
        async def one() -> dict | None:
            async with NgClient(address, timeout=2.0) as client:
                try:
                    return dict(await client.request(request.command))
                except NgError as err:
                    log.append(("error", {"reason": str(err)}))
                    return None
        reply = loop.run_until_complete(one())
        log.append((str(request.command["command"]), reply))
        return reply
    return ask


def _points_at_relay(body: bytes) -> bool:
    sd = parse_sdp(body)
    address = sd.media[0].connection or sd.connection
    return address == "127.0.0.1" and PORTS[0] <= sd.media[0].port <= PORTS[1]


def test_a_whole_call_with_re_offers_both_ways_against_the_real_relay(relay):
    log: list[tuple[str, dict | None]] = []
    ask = _asker(relay, log)
    h = Harness.make(config(), media=True)
    h.invite()
    h.relay_answers(ask)
    invite = h.requests_to(5070)[0]
    assert _points_at_relay(invite.body)
    h.advance(0.5)
    h.vendor_reply(invite, 200, body=ANSWER_SDP)
    h.relay_answers(ask)
    h.from_customer("ACK", cseq=1)
    ok = [t.message for t in h.sent if isinstance(t.message, Response) and t.peer[2] == 5071
          and t.message.status == 200][-1]
    assert _points_at_relay(ok.body)
    # The customer re-INVITEs (hold: a new port), the vendor answers.
    h.from_customer("INVITE", cseq=2, body=SDP.replace(b"m=audio 6000", b"m=audio 6100"))
    h.relay_answers(ask)
    reinvite = h.requests_to(5070)[-1]
    assert reinvite.headers.get("cseq") == "2 INVITE" and _points_at_relay(reinvite.body)
    h.vendor_reply(reinvite, 200, body=ANSWER_SDP)
    h.relay_answers(ask)
    # The vendor sends an UPDATE with SDP; the customer answers it.
    sent = h.vendor_request("UPDATE", invite, cseq=5, body=ANSWER_SDP)
    sent += h.relay_answers(ask)
    [update] = [t.message for t in sent if isinstance(t.message, Request)]
    assert _points_at_relay(update.body)
    h.feed(f"SIP/2.0 200 OK\nVia: {update.headers.get('via')}\nFrom: {update.headers.get('from')}"
           f"\nTo: {update.headers.get('to')}\nCall-ID: {update.headers.get('call-id')}\n"
           f"CSeq: {update.headers.get('cseq')}\nContent-Type: application/sdp\n"
           # feed() turns every "\n" into CRLF, the SDP's own line ends included
           f"Content-Length: {len(SDP)}\n\n" + SDP.decode().replace("\r\n", "\n"))
    h.relay_answers(ask)
    h.from_customer("BYE", cseq=3)
    h.relay_answers(ask)
    assert [name for name, _ in log] == ["offer", "answer", "offer", "answer", "offer", "answer",
                                         "delete"]
    assert all(reply is not None for _, reply in log), log
    assert h.engine.stats["media_error"] == 0
    assert h.cdr()["disconnect_reason"] == "caller_bye"
    assert set(h.cdr()["rtp"]) == {"customer", "vendor"}
