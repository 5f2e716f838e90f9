"""Wire-level checks of the loadgen endpoints against a hand-driven UDP peer on 127.0.0.1.

The peer sends literal SIP text and reads what comes back, so each test reads like a trace:
retransmitted 200s until the ACK, the last response for a retransmitted INVITE, CANCEL -> 200 +
487, 481 for unknown dialogs, OPTIONS, re-INVITE, and on the UAC side a far-end BYE and re-ACKs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from switch.loadgen import Uac, Uas
from switch.sip import Message, Request, Response, cseq, parse_message, parse_sdp, tag


class Peer(asyncio.DatagramProtocol):
    """A bare UDP socket that queues parsed messages."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Message, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.queue.put_nowait((parse_message(data), (addr[0], addr[1])))

    def send(self, text: str, address: tuple[str, int], body: bytes = b"") -> None:
        head = text.strip("\n").replace("\n", "\r\n")
        data = f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        assert self.transport is not None
        self.transport.sendto(data, address)

    async def recv(self, timeout: float = 1.0) -> Message:
        msg, _ = await asyncio.wait_for(self.queue.get(), timeout)
        return msg

    async def quiet(self, seconds: float) -> list[Message]:
        """Everything that arrives until ``seconds`` pass without a message.

        Only for checking that nothing (more) comes: to wait for something, use ``until``.
        """
        out: list[Message] = []
        try:
            while True:
                out.append(await self.recv(seconds))
        except TimeoutError:
            return out

    async def until(self, done: Callable[[list[Message]], bool],
                    timeout: float = 5.0) -> list[Message]:
        """Collect messages until ``done(collected)`` holds; TimeoutError after ``timeout``."""
        out: list[Message] = []

        async def collect() -> list[Message]:
            while not done(out):
                out.append(await self.recv(timeout))
            return out

        return await asyncio.wait_for(collect(), timeout)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling every 10 ms) until ``condition()`` holds; TimeoutError after ``timeout``."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def _peer() -> Peer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    peer.port = peer.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    return peer


def _req(method: str, port: int, call: str, n: int, branch: str, to_tag: str = "") -> str:
    to = "<sip:4420@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (f"{method} sip:4420@127.0.0.1 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\n"
            f"From: <sip:a@127.0.0.1>;tag=ft\nTo: {to}\nCall-ID: {call}\n"
            f"CSeq: {n} {method}\nMax-Forwards: 70")


def test_uas_answer_retransmits_200_until_ack_and_handles_dialog_requests() -> None:
    async def scenario() -> None:
        peer = await _peer()
        async with Uas(mix="answer=1", t1=0.05, t2=0.2) as uas:
            dst = uas.address
            peer.send(_req("INVITE", peer.port, "c1", 1, "i1"), dst)
            ok = await peer.recv()
            assert isinstance(ok, Response) and ok.status == 200
            to_tag = tag(ok.headers.get("to") or "")
            assert to_tag and ok.headers.get("contact")
            sdp = parse_sdp(ok.body)
            assert sdp.connection == "127.0.0.1" and sdp.media[0].formats[0] == "8"
            again = [await peer.recv(), await peer.recv()]  # no ACK yet: Timer G-style
            assert all(getattr(m, "status", 0) == 200 for m in again)  # retransmissions
            peer.send(_req("INVITE", peer.port, "c1", 1, "i1"), dst)  # retransmitted INVITE
            assert (await peer.recv()).status == 200  # type: ignore[union-attr]
            peer.send(_req("ACK", peer.port, "c1", 1, "a1", to_tag), dst)
            await _until(lambda: uas.pending_acks == 0)  # the ACK stopped them
            await peer.quiet(0.1)  # copies sent before the ACK landed
            assert await peer.quiet(0.3) == []  # and none after: T2 is 0.2 s

            peer.send(_req("OPTIONS", peer.port, "o1", 1, "o1"), dst)
            assert (await peer.recv()).status == 200  # type: ignore[union-attr]
            peer.send(_req("INVITE", peer.port, "c1", 2, "r1", to_tag), dst, ok.body)
            reinvite = await peer.recv()
            assert reinvite.status == 200 and reinvite.body == ok.body  # type: ignore[union-attr]
            peer.send(_req("ACK", peer.port, "c1", 2, "r2", to_tag), dst)
            peer.send(_req("BYE", peer.port, "zz", 3, "b0", "nosuch"), dst)
            assert (await peer.recv()).status == 481  # type: ignore[union-attr]
            peer.send(_req("BYE", peer.port, "c1", 3, "b1", to_tag), dst)
            bye = await peer.recv()
            assert bye.status == 200 and cseq(bye) == (3, "BYE")  # type: ignore[union-attr]
            assert (uas.stats.byes_received, uas.stats.reinvites, uas.stats.options) == (1, 1, 1)
        peer.transport.close()  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_uas_cancel_gets_200_and_the_invite_487_even_when_silent() -> None:
    async def scenario() -> None:
        peer = await _peer()
        async with Uas(mix="no_answer=0.5,silent=0.5", seed=5) as uas:
            dst = uas.address
            for i in range(4):
                peer.send(_req("INVITE", peer.port, f"n{i}", 1, f"i{i}"), dst)
            await _until(lambda: uas.stats.invites == 4)  # all four calls exist
            for i in range(4):
                peer.send(_req("CANCEL", peer.port, f"n{i}", 1, f"i{i}"), dst)
            wanted = {(f"n{i}", method, status) for i in range(4)
                      for method, status in (("CANCEL", 200), ("INVITE", 487))}

            def seen(got: list[Message]) -> set[tuple[str | None, str, int]]:
                return {(m.headers.get("call-id"), cseq(m)[1], m.status) for m in got
                        if isinstance(m, Response)}

            got = await peer.until(lambda got: wanted <= seen(got))
            assert wanted <= seen(got)
            for i in range(4):
                peer.send(_req("ACK", peer.port, f"n{i}", 1, f"i{i}"), dst)
            await _until(lambda: uas.pending_acks == 0)  # the ACKs stopped the 487s
            assert uas.stats.cancelled == 4
            peer.send(_req("CANCEL", peer.port, "unknown", 1, "x"), dst)
            assert (await peer.recv()).status == 481  # type: ignore[union-attr]
        peer.transport.close()  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_uac_reacks_retransmitted_200_and_accepts_a_bye_from_the_far_side() -> None:
    async def scenario() -> None:
        peer = await _peer()
        uac = Uac(("127.0.0.1", peer.port), calls=1, durations=30, max_seconds=10)
        run = asyncio.create_task(uac.run())
        invite = await peer.recv()
        assert isinstance(invite, Request) and invite.method == "INVITE"
        assert parse_sdp(invite.body).media[0].formats[:2] == ["8", "0"]
        h = invite.headers
        src = uac.address
        ok = (f"SIP/2.0 200 OK\nVia: {h.get('via')}\nFrom: {h.get('from')}\n"
              f"To: {h.get('to')};tag=vt\nCall-ID: {h.get('call-id')}\nCSeq: 1 INVITE\n"
              f"Contact: <sip:v@127.0.0.1:{peer.port}>")
        peer.send(ok, src)
        ack = await peer.recv()
        assert isinstance(ack, Request) and ack.method == "ACK"
        assert ack.headers.get("via") != h.get("via")  # a 2xx ACK is its own transaction
        assert ack.uri == f"sip:v@127.0.0.1:{peer.port}"  # sent to the Contact
        peer.send(ok, src)  # the 200 again: the same ACK again
        assert (await peer.recv()).headers.get("via") == ack.headers.get("via")
        bye = (f"BYE sip:loadgen@127.0.0.1:{src[1]} SIP/2.0\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKbye\n"
               f"From: {h.get('to')};tag=vt\nTo: {h.get('from')}\nCall-ID: {h.get('call-id')}\n"
               "CSeq: 1 BYE")
        peer.send(bye, src)
        answer = await peer.recv()
        assert isinstance(answer, Response) and answer.status == 200
        summary = await asyncio.wait_for(run, 2)
        assert summary.by_outcome == {"remote_bye": 1}
        uac.close()
        peer.transport.close()  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_uac_acks_a_failure_on_the_invite_branch() -> None:
    async def scenario() -> None:
        peer = await _peer()
        uac = Uac(("127.0.0.1", peer.port), calls=1)
        run = asyncio.create_task(uac.run())
        invite = await peer.recv()
        h = invite.headers
        busy = (f"SIP/2.0 486 Busy Here\nVia: {h.get('via')}\nFrom: {h.get('from')}\n"
                f"To: {h.get('to')};tag=vt\nCall-ID: {h.get('call-id')}\nCSeq: 1 INVITE")
        peer.send(busy, uac.address)
        ack = await peer.recv()
        assert isinstance(ack, Request) and ack.method == "ACK"
        assert ack.headers.get("via") == h.get("via")  # RFC 3261 17.1.1.3
        assert ack.headers.get("to") == f"{h.get('to')};tag=vt"
        assert ack.uri == invite.uri and cseq(ack) == (1, "ACK")  # type: ignore[union-attr]
        summary = await asyncio.wait_for(run, 2)
        assert summary.by_code == {486: 1} and summary.by_outcome == {"rejected": 1}
        uac.close()
        peer.transport.close()  # type: ignore[union-attr]

    asyncio.run(scenario())
