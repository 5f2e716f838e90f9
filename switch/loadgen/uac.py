"""Customer endpoints: a UAC placing paced calls at a target (the switch, or a Uas directly).

``Uac(target, calls=..., rate=...)`` places ``calls`` calls at ``rate`` calls/s on the loop
clock (stopping early at ``max_seconds``) to ``sip:{tech_prefix}{number}@host:port``. Each call
draws its number, its duration and whether it will be cancelled from ``random.Random(seed)``.

Per call: the INVITE (SDP offer PCMA/PCMU) is retransmitted on Timer A until any response and
given up after 64*T1 (outcome ``timeout``); 1xx are noted (the first 18x gives the PDD); a 2xx
is ACKed with a new transaction (retransmitted 2xx are re-ACKed); a non-2xx final is ACKed on
the INVITE's branch. 401/407 are answered once (again when ``stale``) with digest credentials,
CSeq+1 and a new branch. After the drawn duration the call is hung up with BYE (retransmitted
until a response, for at most 32 s); a BYE from the far side is answered 200. A call picked for
``cancel_after`` sends CANCEL that many seconds after the INVITE if not answered by then.

>>> async def demo():
...     from switch.loadgen.uas import Uas
...     async with Uas(mix="answer=1") as uas:
...         uac = Uac(uas.address, calls=2, rate=50, durations={0.05: 1.0})
...         summary = await uac.run()
...     return summary.by_code, summary.by_outcome
>>> asyncio.run(demo())
({200: 2}, {'completed': 2})
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from switch.loadgen import uacmsg
from switch.loadgen.common import (
    T1,
    T2,
    Address,
    Retransmitter,
    SipSocket,
    new_token,
    parse_hostport,
    sdp_body,
)
from switch.loadgen.mix import DurationMix, NumberSource
from switch.loadgen.results import CallResult, UacSummary
from switch.sip import (
    Message,
    Request,
    Response,
    cseq,
    make_response,
    serialize,
    tag,
)

__all__ = ["Uac"]

_MAX_AUTH_ATTEMPTS = 2


class Uac:
    """A customer endpoint; see the module docstring. ``target`` is (host, port) or "host:port".

    ``numbers`` are prefixes completed with ``digits`` random digits; ``durations`` a
    :class:`DurationMix`, a ``{seconds: proportion}`` mapping, a string ``"2:0.5,5:0.5"`` or a
    number; ``cancel_after`` (seconds) applies to a ``cancel_ratio`` share of the calls;
    ``local_port`` matters when the switch identifies customers by source IP and port.
    """

    def __init__(self, target: Address | str, *, calls: int = 10, rate: float = 10.0,
                 numbers: Sequence[str] = ("4477009",), digits: int = 5,
                 durations: DurationMix | Mapping[Any, object] | str | float = 1.0,
                 local_host: str = "127.0.0.1", local_port: int = 0, tech_prefix: str = "",
                 username: str | None = None, password: str | None = None,
                 cancel_after: float | None = None, cancel_ratio: float = 1.0, seed: int = 0,
                 max_seconds: float = 3600.0, answer_timeout: float = 120.0,
                 caller: str = "loadgen", name: str = "customer",
                 t1: float = T1, t2: float = T2) -> None:
        self.target = parse_hostport(target) if isinstance(target, str) else target
        if calls < 0:
            raise ValueError(f"calls={calls}; use 0 or more")
        if rate <= 0:
            raise ValueError(f"rate={rate}; use a positive number of calls per second")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds={max_seconds}; use a positive number of seconds")
        if cancel_after is not None and cancel_after < 0:
            raise ValueError(f"cancel_after={cancel_after}; use 0 or more seconds")
        if not 0.0 <= cancel_ratio <= 1.0:
            raise ValueError(f"cancel_ratio={cancel_ratio}; use a proportion between 0 and 1")
        if (username is None) != (password is None):
            raise ValueError("give both username and password for digest auth, or neither")
        if isinstance(durations, str):
            durations = DurationMix.parse(durations)
        elif not isinstance(durations, DurationMix):
            durations = DurationMix.from_mapping(durations)
        self.calls, self.rate, self.max_seconds = calls, rate, max_seconds
        self.numbers = NumberSource(list(numbers), digits)
        self.durations = durations
        self.local_host, self.local_port = local_host, local_port
        self.tech_prefix = tech_prefix
        # Both or neither (checked above); testing both tells the type checker so.
        self.credentials = ((username, password) if username is not None and password is not None
                            else None)
        self.cancel_after, self.cancel_ratio = cancel_after, cancel_ratio
        self.answer_timeout = answer_timeout
        self.caller, self.name = caller, name
        self.t1, self.t2 = t1, t2
        self.rng = random.Random(seed)
        self.results: list[CallResult] = []
        self.elapsed = 0.0
        self.placing = 0.0
        self._sock: SipSocket | None = None
        self._calls: dict[str, uacmsg.Call] = {}
        self._stop = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Uac:
        """Bind the local socket; returns self."""
        if self._sock is None:
            self._sock = await SipSocket.open(self.local_host, self.local_port, self._on_message)
        return self

    @property
    def address(self) -> Address:
        """The bound local (host, port)."""
        if self._sock is None:
            raise RuntimeError("Uac not started; await uac.start() first")
        return self._sock.address

    def stop(self) -> None:
        """Place no more calls; cancel unanswered calls and hang up answered ones now."""
        self._stop.set()

    def close(self) -> None:
        """Close the socket (call after :meth:`run`)."""
        for call in self._calls.values():
            for retx in (call.invite_retx, call.other_retx):
                if retx is not None:
                    retx.stop()
        if self._sock is not None:
            self._sock.close()

    def summary(self) -> UacSummary:
        """Counts over the calls so far."""
        return UacSummary.from_results(self.name, self.results, self.elapsed, self.placing)

    async def run(self) -> UacSummary:
        """Place the calls, wait for every one to end, return the summary."""
        await self.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + self.max_seconds
        stopper = loop.call_at(deadline, self._stop.set)
        tasks: list[asyncio.Task[None]] = []
        try:
            for i in range(self.calls):
                at = t0 + i / self.rate
                if at >= deadline or self._stop.is_set():
                    break
                if at > loop.time():
                    try:
                        await asyncio.wait_for(self._stop.wait(), at - loop.time())
                        break
                    except TimeoutError:
                        pass
                tasks.append(asyncio.create_task(self._place()))
                self.placing = loop.time() - t0
            if tasks:
                # Calls wrap up when stopped; a dead peer costs at most two 64*T1 waits.
                hard = max(deadline - loop.time(), 0.0) + 2 * 64 * self.t1 + 1.0
                _, pending = await asyncio.wait(tasks, timeout=hard)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stopper.cancel()
            self.elapsed = loop.time() - t0
        return self.summary()

    # --- one call -------------------------------------------------------------------------

    async def _place(self) -> None:
        number = self.numbers.pick(self.rng)
        duration = self.durations.pick(self.rng)
        cancel = self.rng.random() < self.cancel_ratio and self.cancel_after is not None
        host, port = self.target
        leg = uacmsg.CallLeg(new_token(10) + "@loadgen", new_token(),
                             f"sip:{self.tech_prefix}{number}@{host}:{port}", self.address,
                             caller=self.caller)
        result = CallResult(leg.call_id, number, planned_duration=duration)
        self.results.append(result)
        call = uacmsg.Call(leg, result, self.cancel_after if cancel else None)
        self._calls[leg.call_id] = call
        try:
            response = await self._setup(call)
            if response is not None and 200 <= response.status < 300:
                await self._talk(call, duration)
        finally:
            for retx in (call.invite_retx, call.other_retx):
                if retx is not None:
                    retx.stop()
            # Remember the call a while to re-ACK retransmitted finals and answer BYE again.
            asyncio.get_running_loop().call_later(64 * self.t1, self._calls.pop,
                                                  leg.call_id, None)

    def _send(self, message: Message | bytes) -> None:
        assert self._sock is not None
        self._sock.send(message, self.target)

    def _send_invite(self, call: uacmsg.Call) -> None:
        loop = asyncio.get_running_loop()
        invite = uacmsg.invite(call.leg, sdp_body(40000 + 2 * (len(self.results) % 10000)))
        call.invite = invite
        call.final = loop.create_future()
        data = serialize(invite)
        final = call.final

        def timeout() -> None:
            if not final.done():
                final.set_result(None)

        call.invite_retx = Retransmitter(lambda: self._send(data), t1=self.t1, cap=None,
                                         give_up=64 * self.t1, on_timeout=timeout)

    async def _wait(self, aw: asyncio.Future[Any] | asyncio.Event, timeout: float | None) -> bool:
        """Wait for ``aw`` (a future or event), the stop signal or ``timeout``; True if done."""
        fut = asyncio.ensure_future(aw.wait()) if isinstance(aw, asyncio.Event) else aw
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([fut, stop], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if isinstance(aw, asyncio.Event):
                fut.cancel()
        return aw.is_set() if isinstance(aw, asyncio.Event) else aw.done()

    async def _setup(self, call: uacmsg.Call) -> Response | None:
        loop = asyncio.get_running_loop()
        call.started = loop.time()
        self._send_invite(call)
        result = call.result
        while True:
            give_up = call.started + self.answer_timeout
            limit = give_up if call.cancel_at is None else min(give_up,
                                                               call.started + call.cancel_at)
            await self._wait(call.final, max(limit - loop.time(), 0.0))
            if not call.final.done():
                return await self._cancel(call)
            response = call.final.result()
            if response is None:
                result.outcome = "timeout"
                return None
            result.status = response.status
            if response.status in (401, 407) and self._retry_auth(call, response):
                continue
            if result.pdd is None:
                result.pdd = loop.time() - call.started
            if response.status >= 300:
                result.outcome = "rejected"
            return response

    def _retry_auth(self, call: uacmsg.Call, response: Response) -> bool:
        if self.credentials is None or call.result.auth_attempts >= _MAX_AUTH_ATTEMPTS:
            return False
        header = uacmsg.credentials(call.leg, response, *self.credentials,
                                    retry=call.result.auth_attempts > 0)
        if header is None:
            return False
        call.result.auth_attempts += 1
        call.result.status = None
        call.leg.auth = header
        call.leg.cseq += 1
        call.provisional.clear()
        self._send_invite(call)
        return True

    async def _cancel(self, call: uacmsg.Call) -> Response | None:
        """Stop ringing: CANCEL (once a provisional came, RFC 3261 9.1), then wait for the
        INVITE's final response for at most 64*T1."""
        result = call.result
        ringing = asyncio.ensure_future(call.provisional.wait())
        waiting: list[asyncio.Future[Any]] = [ringing, call.final]
        await asyncio.wait(waiting, timeout=64 * self.t1,
                           return_when=asyncio.FIRST_COMPLETED)
        ringing.cancel()
        if not call.final.done() and call.provisional.is_set():
            assert call.invite is not None
            data = serialize(uacmsg.cancel(call.leg, call.invite))
            call.other_retx = Retransmitter(lambda: self._send(data), t1=self.t1,
                                            cap=self.t2, give_up=64 * self.t1)
            await asyncio.wait([call.final], timeout=64 * self.t1)
        if call.invite_retx is not None:
            call.invite_retx.stop()
        response = call.final.result() if call.final.done() else None
        if response is None:
            result.outcome = "cancelled"
            return None
        result.status = response.status
        if result.pdd is None:
            result.pdd = asyncio.get_running_loop().time() - call.started
        result.outcome = "rejected" if 300 <= response.status != 487 else "cancelled"
        return response  # a 200 that crossed the CANCEL: the caller hangs up at once

    async def _talk(self, call: uacmsg.Call, duration: float) -> None:
        loop = asyncio.get_running_loop()
        result = call.result
        result.answered = True
        if call.cancel_at is not None and loop.time() >= call.started + call.cancel_at:
            duration = 0.0  # answered as the CANCEL went out: hang up at once
        await self._wait(call.remote_bye, duration)
        if call.remote_bye.is_set():
            result.duration = loop.time() - call.answered_at
            result.outcome = "remote_bye"
            return
        result.duration = loop.time() - call.answered_at
        call.bye_done = done = loop.create_future()
        data = serialize(uacmsg.bye(call.leg))

        def timeout() -> None:
            if not done.done():
                done.set_result(None)

        call.other_retx = Retransmitter(lambda: self._send(data), t1=self.t1, cap=self.t2,
                                        give_up=64 * self.t1, on_timeout=timeout)
        response = await done
        result.bye_status = response.status if response is not None else None
        ok = response is not None and 200 <= response.status < 300
        result.outcome = "completed" if ok else "bye_failed"

    # --- incoming -------------------------------------------------------------------------

    def _on_message(self, msg: Message, source: Address) -> None:
        call = self._calls.get(msg.headers.get("call-id") or "")
        if isinstance(msg, Request):
            self._on_request(msg, source, call)
            return
        if call is None:
            return
        number, method = cseq(msg)
        if method == "INVITE":
            self._on_invite_response(call, msg, number)
        elif method == "BYE" and msg.status >= 200 and call.bye_done is not None:
            if call.other_retx is not None:
                call.other_retx.stop()
            if not call.bye_done.done():
                call.bye_done.set_result(msg)
        elif method == "CANCEL" and call.other_retx is not None and call.bye_done is None:
            call.other_retx.stop()

    def _on_invite_response(self, call: uacmsg.Call, msg: Response, number: int) -> None:
        loop = asyncio.get_running_loop()
        if number in call.acks:  # a retransmitted final: ACK it again
            if msg.status >= 200:
                self._send(call.acks[number])
            return
        if number != call.leg.cseq or call.invite is None:
            return
        if call.invite_retx is not None:
            call.invite_retx.stop()  # any response stops Timer A; a 1xx also Timer B
        if msg.status < 200:
            if msg.status >= 180 and call.result.pdd is None:
                call.result.pdd = loop.time() - call.started
            call.provisional.set()
            return
        if msg.status < 300:
            uacmsg.learn_dialog(call.leg, msg)
            call.answered_at = loop.time()
            ack = uacmsg.ack_for_2xx(call.leg)
        else:
            ack = uacmsg.ack_for_failure(call.invite, msg)
        data = serialize(ack)
        call.acks[number] = data
        self._send(data)
        if not call.final.done():
            call.final.set_result(msg)

    def _on_request(self, msg: Request, source: Address, call: uacmsg.Call | None) -> None:
        assert self._sock is not None
        if msg.method == "ACK":
            return
        in_dialog = call is not None and call.leg.to_tag is not None and tag(
            msg.headers.get("from") or "") == call.leg.to_tag
        if msg.method == "OPTIONS" and not in_dialog:
            self._sock.send(make_response(msg, 200, to_tag=new_token()), source)
            return
        if call is None or not in_dialog:
            self._sock.send(make_response(msg, 481, to_tag=new_token()), source)
            return
        if msg.method == "BYE":
            call.remote_bye.set()
            self._sock.send(make_response(msg, 200), source)
        elif msg.method in ("INVITE", "UPDATE"):
            body = call.invite.body if call.invite is not None else b""
            self._sock.send(make_response(msg, 200, headers=[
                ("Contact", call.leg.contact()), ("Content-Type", "application/sdp")],
                body=body), source)
        else:
            self._sock.send(make_response(msg, 200), source)
