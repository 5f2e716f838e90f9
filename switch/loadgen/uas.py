"""Vendor endpoints: a UAS that answers INVITEs according to a seeded behaviour mix.

Per new INVITE the UAS draws a :class:`~switch.loadgen.mix.Behaviour` with its own
``random.Random(seed)`` (the n-th INVITE always gets the n-th draw, so counts per behaviour are
reproducible) and then:

* ``answer``: 200 OK with an SDP answer (PCMA) and Contact, after ``answer_delay`` seconds;
* ``ring``: 180 Ringing (with a To tag), then 200 after ``ring_seconds``;
* ``no_answer``: 180 Ringing and never a final response; ``silent``: nothing at all;
* ``refuse``: the drawn final code (486, 503, ...).

Final responses are retransmitted over UDP (T1 doubling to T2) until the ACK arrives, for at
most 64*T1 = 32 s. A retransmitted INVITE gets the last response again; CANCEL gets 200 and the
INVITE 487 (whatever the behaviour); BYE gets 200 (481 for an unknown dialog); OPTIONS 200;
re-INVITE and UPDATE in a dialog get 200 with the same SDP. With ``require_auth=(user, pw)``
INVITEs without valid digest credentials are challenged with 407.

>>> async def demo():
...     async with Uas("127.0.0.1", 0, mix="486=1") as uas:
...         return uas.address[1] > 0, uas.stats.invites
>>> asyncio.run(demo())
(True, 0)
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from collections.abc import Mapping

from switch.loadgen.common import T1, T2, Address, Retransmitter, SipSocket, new_token, sdp_body
from switch.loadgen.mix import BehaviourMix
from switch.loadgen.results import UasStats
from switch.sip import (
    Message,
    NonceFactory,
    Request,
    Response,
    SdpError,
    cseq,
    make_response,
    parse_sdp,
    tag,
    top_via,
    verify,
    via_branch,
)
from switch.sip.digest import challenge
from switch.sip.sdp import codecs

__all__ = ["Uas", "UasStats"]

_LINGER = 64 * T1  # how long a finished call is remembered, to absorb retransmissions
_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"


class _Call:
    __slots__ = ("answered", "branch", "bye_response", "call_id", "ended", "final", "invite",
                 "last", "pending_cseq", "retx", "sdp", "source", "timer", "to_tag",
                 "update_response")

    def __init__(self, invite: Request, source: Address, branch: str | None) -> None:
        self.invite = invite
        self.source = source
        self.branch = branch
        self.call_id = invite.headers.get("call-id") or ""
        self.to_tag = new_token()
        self.final: Response | None = None
        self.last: Response | None = None
        self.answered = False
        self.ended = False
        self.retx: Retransmitter | None = None
        self.pending_cseq = -1
        self.timer: asyncio.TimerHandle | None = None
        self.sdp = b""
        self.bye_response: tuple[str | None, Response] | None = None
        self.update_response: tuple[str | None, Response] | None = None

    def stop_timers(self) -> None:
        if self.retx is not None:
            self.retx.stop()
            self.retx = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Uas:
    """A vendor endpoint on ``host:port`` (UDP; port 0 picks a free one, see ``address``).

    ``mix`` is a :class:`BehaviourMix`, a mapping (``{"answer": 0.7, "refuse": {486: 0.3}}``)
    or the string form (``"answer=0.7,486=0.3"``); the default answers every call.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 mix: BehaviourMix | Mapping[str, object] | str | None = None,
                 ring_seconds: float = 1.0, answer_delay: float = 0.0, seed: int = 0,
                 name: str = "vendor", require_auth: tuple[str, str] | None = None,
                 t1: float = T1, t2: float = T2) -> None:
        if isinstance(mix, str):
            mix = BehaviourMix.parse(mix)
        elif isinstance(mix, Mapping):
            mix = BehaviourMix.from_mapping(mix)
        if ring_seconds < 0 or answer_delay < 0:
            raise ValueError("ring_seconds and answer_delay must be 0 or more")
        self.host, self.port = host, port
        self.mix = mix or BehaviourMix()
        self.ring_seconds = ring_seconds
        self.answer_delay = answer_delay
        self.rng = random.Random(seed)
        self.stats = UasStats(name)
        self.require_auth = require_auth
        self.realm = "loadgen"
        self._nonces = NonceFactory(os.urandom(16), realm=self.realm)
        self.t1, self.t2 = t1, t2
        self._sock: SipSocket | None = None
        self._calls: dict[str, _Call] = {}
        self._ended: deque[tuple[float, _Call]] = deque()

    async def start(self) -> Uas:
        """Bind the socket; returns self."""
        self._sock = await SipSocket.open(self.host, self.port, self._on_message)
        return self

    @property
    def address(self) -> Address:
        """The bound (host, port)."""
        if self._sock is None:
            raise RuntimeError("Uas not started; await uas.start() first")
        return self._sock.address

    @property
    def active_calls(self) -> int:
        """Calls not yet ended (ringing, answered, waiting for an ACK)."""
        return sum(1 for call in self._calls.values() if not call.ended)

    @property
    def pending_acks(self) -> int:
        """Final responses still being retransmitted for want of an ACK."""
        return sum(1 for call in self._calls.values() if call.retx is not None)

    def close(self) -> None:
        """Stop every timer and close the socket."""
        for call in self._calls.values():
            call.stop_timers()
        self._calls.clear()
        if self._sock is not None:
            self._sock.close()

    async def __aenter__(self) -> Uas:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: Message, address: Address) -> None:
        assert self._sock is not None
        self._sock.send(message, address)

    def _contact(self) -> list[tuple[str, str]]:
        host, port = self.address
        return [("Contact", f"<sip:{self.stats.name}@{host}:{port}>"), ("Allow", _ALLOW)]

    def _respond(self, call: _Call, status: int, *, body: bool = False) -> Response:
        headers = self._contact()
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return make_response(call.invite, status, to_tag=call.to_tag, headers=headers,
                             body=call.sdp if body else b"")

    def _finish(self, call: _Call) -> None:
        call.ended = True
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        self._ended.append((time.monotonic(), call))

    def _prune(self) -> None:
        limit = time.monotonic() - _LINGER
        while self._ended and self._ended[0][0] < limit:
            _, call = self._ended.popleft()
            if self._calls.get(call.call_id) is call:
                call.stop_timers()
                del self._calls[call.call_id]

    def _send_final(self, call: _Call, response: Response, cseq_number: int) -> None:
        """Send a final response and retransmit it until the ACK with ``cseq_number``."""
        if call.retx is not None:
            call.retx.stop()
        call.pending_cseq = cseq_number

        def timeout() -> None:
            self.stats.ack_timeouts += 1
            call.retx = None
            self._finish(call)

        call.retx = Retransmitter(lambda: self._send(response, call.source), t1=self.t1,
                                  cap=self.t2, give_up=64 * self.t1, on_timeout=timeout)

    # --- dispatch -------------------------------------------------------------------------

    def _on_message(self, msg: Message, source: Address) -> None:
        if isinstance(msg, Response):
            return  # the UAS never sends requests
        self._prune()
        method = msg.method
        if method == "INVITE":
            self._on_invite(msg, source)
        elif method == "ACK":
            self._on_ack(msg)
        elif method == "CANCEL":
            self._on_cancel(msg, source)
        elif method == "BYE":
            self._on_bye(msg, source)
        elif method == "OPTIONS":
            self.stats.options += 1
            self._send(make_response(msg, 200, to_tag=new_token(),
                                     headers=[("Allow", _ALLOW), ("Accept", "application/sdp")]),
                       source)
        else:
            self._on_other(msg, source)

    def _dialog(self, msg: Request) -> _Call | None:
        call = self._calls.get(msg.headers.get("call-id") or "")
        if call is None or not call.answered:
            return None
        tags = {tag(msg.headers.get("to") or ""), tag(msg.headers.get("from") or "")}
        return call if call.to_tag in tags else None

    def _on_invite(self, msg: Request, source: Address) -> None:
        call_id = msg.headers.get("call-id") or ""
        branch = via_branch(top_via(msg) or "")
        if tag(msg.headers.get("to") or "") is not None:
            self._on_reinvite(msg, source)
            return
        old = self._calls.get(call_id)
        if old is not None:
            if old.branch == branch:
                self.stats.invite_retransmissions += 1
                if old.last is not None:
                    self._send(old.last, source)
                return
            if old.answered or old.final is None:
                self._send(make_response(msg, 482, to_tag=new_token()), source)
                return
            old.stop_timers()  # a new INVITE after a refusal or challenge: a new attempt
        call = _Call(msg, source, branch)
        self._calls[call_id] = call
        if self.require_auth is not None and not self._authorized(msg, call):
            return
        self.stats.invites += 1
        call.sdp = self._answer_sdp(msg)
        behaviour = self.mix.pick(self.rng)
        label = str(behaviour.code) if behaviour.kind == "refuse" else behaviour.kind
        self.stats.behaviours[label] = self.stats.behaviours.get(label, 0) + 1
        loop = asyncio.get_running_loop()
        if behaviour.kind == "refuse":
            self._final(call, behaviour.code)
        elif behaviour.kind == "answer":
            if self.answer_delay > 0:
                call.timer = loop.call_later(self.answer_delay, self._answer, call)
            else:
                self._answer(call)
        elif behaviour.kind in ("ring", "no_answer"):
            ringing = self._respond(call, 180)
            call.last = ringing
            self._send(ringing, source)
            if behaviour.kind == "ring":
                call.timer = loop.call_later(self.ring_seconds, self._answer, call)
        # silent: nothing is sent, retransmissions are absorbed

    def _authorized(self, msg: Request, call: _Call) -> bool:
        assert self.require_auth is not None
        user, password = self.require_auth
        credentials = msg.headers.get("proxy-authorization")
        stale = False
        if credentials is not None:
            verdict = verify(credentials, method="INVITE", password_for={user: password}.get,
                             realm=self.realm, nonces=self._nonces, now=time.time())
            if verdict.ok:
                return True
            stale = verdict.stale
        self.stats.challenged += 1
        ch = challenge(realm=self.realm, nonces=self._nonces, now=time.time(), stale=stale)
        response = make_response(msg, 407, to_tag=call.to_tag,
                                 headers=[("Proxy-Authenticate", ch.header_value())])
        call.final = call.last = response
        self._send_final(call, response, cseq(msg)[0])
        return False

    def _answer_sdp(self, msg: Request) -> bytes:
        payload = 8
        try:
            offer = parse_sdp(msg.body) if msg.body else None
        except SdpError:
            offer = None
        if offer is not None and offer.media:
            names = [name.upper() for _, name in codecs(offer.media[0])]
            if "PCMA" not in names and "PCMU" in names:
                payload = 0
        port = 20000 + 2 * (hash(msg.headers.get("call-id")) % 10000)
        return sdp_body(port, (payload,))

    def _answer(self, call: _Call) -> None:
        call.timer = None
        if call.final is not None:
            return
        ok = self._respond(call, 200, body=True)
        call.final = call.last = ok
        call.answered = True
        self.stats.answered += 1
        self._send_final(call, ok, cseq(call.invite)[0])

    def _final(self, call: _Call, status: int) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        response = self._respond(call, status)
        call.final = call.last = response
        if status != 487:
            self.stats.refused[status] = self.stats.refused.get(status, 0) + 1
        self._send_final(call, response, cseq(call.invite)[0])

    def _on_ack(self, msg: Request) -> None:
        call = self._calls.get(msg.headers.get("call-id") or "")
        if call is None:
            return
        if call.retx is not None and cseq(msg)[0] == call.pending_cseq:
            call.retx.stop()
            call.retx = None
            if call.final is not None and call.final.status >= 300 and not call.ended:
                self._finish(call)

    def _on_cancel(self, msg: Request, source: Address) -> None:
        call = self._calls.get(msg.headers.get("call-id") or "")
        if call is None or call.branch != via_branch(top_via(msg) or ""):
            self.stats.unknown_dialog += 1
            self._send(make_response(msg, 481, to_tag=new_token()), source)
            return
        self._send(make_response(msg, 200, to_tag=call.to_tag), source)
        if call.final is None:
            self.stats.cancelled += 1
            self._final(call, 487)

    def _on_bye(self, msg: Request, source: Address) -> None:
        call = self._dialog(msg)
        branch = via_branch(top_via(msg) or "")
        if call is None:
            self.stats.unknown_dialog += 1
            self._send(make_response(msg, 481), source)
            return
        if call.bye_response is not None and call.bye_response[0] == branch:
            self._send(call.bye_response[1], source)  # a retransmitted BYE
            return
        response = make_response(msg, 200)
        call.bye_response = (branch, response)
        self.stats.byes_received += 1
        call.stop_timers()
        if not call.ended:
            self._finish(call)
        self._send(response, source)

    def _on_reinvite(self, msg: Request, source: Address) -> None:
        call = self._dialog(msg)
        if call is None or call.ended:
            self.stats.unknown_dialog += 1
            self._send(make_response(msg, 481), source)
            return
        branch = via_branch(top_via(msg) or "")
        if call.update_response is not None and call.update_response[0] == branch:
            self._send(call.update_response[1], source)
            return
        self.stats.reinvites += 1
        ok = make_response(msg, 200, headers=[*self._contact(),
                                              ("Content-Type", "application/sdp")], body=call.sdp)
        call.update_response = (branch, ok)
        call.source = source
        self._send_final(call, ok, cseq(msg)[0])

    def _on_other(self, msg: Request, source: Address) -> None:
        if tag(msg.headers.get("to") or "") is None:
            self._send(make_response(msg, 405, to_tag=new_token(), headers=[("Allow", _ALLOW)]),
                       source)
            return
        call = self._dialog(msg)
        if call is None or call.ended:
            self.stats.unknown_dialog += 1
            self._send(make_response(msg, 481), source)
            return
        if msg.method == "UPDATE":
            self.stats.reinvites += 1
            self._send(make_response(msg, 200, headers=[*self._contact(),
                                                        ("Content-Type", "application/sdp")],
                                     body=call.sdp), source)
        else:  # INFO, NOTIFY, ... in a dialog: accept
            self._send(make_response(msg, 200), source)
