"""The B2BUA engine: customers' calls to vendors, sans-IO (messages and ``now`` in, actions out).

Each ingress INVITE is authenticated (:mod:`switch.b2bua.customers`), admitted
(:mod:`switch.b2bua.limits`), routed (:func:`switch.routing.plan_route`) and tried on the vendors
in turn, each attempt an independent dialog (a new Call-ID, tags and CSeq space). Vendor 18x are
relayed with their early-media SDP; the first 2xx is ACKed towards the vendor and relayed to the
customer (and retransmitted over UDP until the customer's ACK, 13.3.1.4); BYE from either side
ends both legs; CANCEL before answer is propagated; re-INVITE, UPDATE and INFO pass through.

Failover: a vendor attempt fails over to the next candidate on a 5xx or a 4xx/6xx not in the
gateway's ``huntstop_codes``, and on ``invite_timeout`` seconds without a ringing (18x) or final
answer; once it rings, ``call_progress_timeout`` bounds the wait for the answer and ends the
call (no failover after ringing: the callee was reached). With ``stop_gateway_after_invite_timeout``
a vendor that timed out is skipped for ``stop_gateway_period`` seconds.

Outputs are :class:`Transmit` (send a message to a peer now) and :class:`Finish` (write this CDR
durably, *then* send these messages): the shell owns the disk, and the final answer of every call
(the 200 to a BYE, the failure response, the BYEs of a call the switch ends) goes out only after
its CDR is on disk. Timers are data: :meth:`Engine.next_deadline` / :meth:`Engine.handle_timers`.

Time: ``now`` is a monotonic clock (the shell's ``loop.time()``), so every SIP timer, admission
window and vendor hold-off is immune to wall-clock steps. Wall-clock time only stamps CDRs: the
engine asks ``wall_offset()`` (wall-clock minus monotonic) when it writes a record
(:meth:`switch.b2bua.cdr.CallRecord.as_dict`).

This module holds the call as a whole: the customer's side, the dialogs once answered, ending
calls and their records. The vendor side before the answer (attempts, failover, CANCEL, vendor
answers) is :mod:`switch.b2bua.attempts`; transactions and the timer heap are
:mod:`switch.b2bua.tu`.

Deliberate simplifications: the switch is the endpoint of both dialogs, so Record-Route and
Route sets are not honoured (in-dialog requests go to the address the leg uses); SDP passes
through unchanged (the RTP relay is its own piece); ACKs for relayed re-INVITEs are generated
by the switch, so an SDP in such an ACK is not passed on.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import ClassVar

from switch.b2bua import attempts, media
from switch.b2bua.build import (
    Ids,
    Leg,
    Peer,
    ack_for_2xx,
    check_request,
    in_dialog,
    respond,
    sdp_body,
    sip_uri,
    uri_of,
    user_of,
)
from switch.b2bua.call import (
    Call,
    CallState,
    CallTimer,
    Owner,
    Role,
    Side,
    normalize_number,
)
from switch.b2bua.cdr import CallRecord
from switch.b2bua.customers import CustomerDirectory
from switch.b2bua.limits import CallLimits
from switch.b2bua.media import Continuation
from switch.b2bua.tu import (
    Action,
    CallObserver,
    CallTimerHandler,
    Finish,
    Guard,
    GuardHandler,
    TransactionUser,
    Transmit,
)
from switch.config import SwitchConfig
from switch.registrar import Registrar
from switch.routing import GatewayTable, RoutingSnapshot, plan_route
from switch.sip import (
    ClientTransaction,
    Message,
    NonceCounts,
    NonceFactory,
    Request,
    Response,
    ServerTransaction,
    TimerConfig,
    Transaction,
    server_key,
    tag,
)

__all__ = ["Engine"]

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"
_RELAYED = frozenset({"INVITE", "UPDATE", "INFO"})
#: How long a finished call stays findable, to re-ACK a vendor's retransmitted 2xx and absorb
#: late messages on its dialogs (and at least until 64*T1 after its INVITE, see _finish).
REAP_AFTER = 10.0
#: How long a relayed re-INVITE may go on with provisional answers only before it is cancelled
#: (timer C of RFC 3261 16.6 step 11: more than three minutes).
RELAY_RINGING_LIMIT = 181.0


class Engine(TransactionUser):
    """Call control for one switch. See the module docstring for the behaviour.

    ``local`` maps each transport ("udp", "tcp") to the switch's own address on it (for Via and
    Contact); vendor legs use UDP. ``cdr_id`` hands out CDR ids (``CdrLog.next_id``). Peers
    and local addresses may be given as plain ``(transport, host, port)`` tuples; the engine
    keeps them as :class:`~switch.b2bua.build.Peer`.

    ``wall_offset()`` is how far wall-clock time (UTC epoch seconds) is ahead of ``now``, read
    once per CDR: the shell passes ``time.time() - loop.time()``. The default, 0, is for a
    ``now`` that is wall-clock seconds already, as tests drive it (``now = 1_800_000_000.0``
    gives CDR times in January 2027).
    """

    def __init__(self, config: SwitchConfig, snapshot: RoutingSnapshot, *,
                 local: Mapping[str, Peer], cdr_id: Callable[[], str],
                 secret: bytes | None = None, timers: TimerConfig | None = None,
                 ids: Ids | None = None,
                 wall_offset: Callable[[], float] | None = None, media: bool = False) -> None:
        if "udp" not in local:
            raise ValueError("the switch needs a UDP address for vendor legs")
        super().__init__(timers)
        self.local = {name: Peer(*address) for name, address in local.items()}
        self._cdr_id = cdr_id
        self._wall_offset = wall_offset or (lambda: 0.0)
        self.ids = ids or Ids()
        self.nonces = NonceFactory(secret or os.urandom(32), realm=config.id)
        self.nonce_counts = NonceCounts()
        self.registrar = Registrar(config, nonces=self.nonces, counts=self.nonce_counts)
        self.bindings_changed = False  # the shell persists the bindings and clears this
        self.limits = CallLimits()
        self.down: dict[str, float] = {}
        self.draining = False
        self.stats: Counter[str] = Counter()
        self._calls_a: dict[tuple[str, str], Call] = {}
        self._calls_b: dict[str, Call] = {}
        self.media = media  # calls' media goes through relays (switch.b2bua.media)
        self.media_pending: dict[int, Continuation] = {}
        self.observer: CallObserver | None = None  # the shell's guard, told of calls
        self._media_tokens = itertools.count(1)
        self.reload(config, snapshot)

    # --- outside controls ---------------------------------------------------------------------

    def reload(self, config: SwitchConfig, snapshot: RoutingSnapshot) -> None:
        """Use a new configuration and snapshot for new calls; calls in progress keep theirs."""
        self.config = config
        self.snapshot = snapshot
        self.gateways = GatewayTable(config.routing_gateways)  # prefix tables, once per config
        self.registrar.reload(config)
        self.bindings_changed = True  # bindings of gateways no longer configured are gone
        # INVITE challenges follow the registrar's offer: the gateway is not known before its
        # credentials, so the global order; its own list bounds what it may answer with.
        self.customers = CustomerDirectory(config.mapping_gateways, realm=config.id,
                                           nonces=self.nonces, counts=self.nonce_counts,
                                           algorithms=config.registrar.digest_algorithms,
                                           guard=self.registrar.guard,
                                           registered=self.registrar.registered_at)

    @property
    def active_calls(self) -> int:
        """Admitted calls that have not ended."""
        return sum(self.limits.active.values())

    def calls_in_progress(self) -> list[Call]:
        """The calls that have not finished, oldest first (the admin API's ``/calls``)."""
        return [call for call in self._calls_a.values() if not call.finished]

    def drain(self) -> None:
        """Refuse new calls with 503 (SIGTERM); calls in progress go on."""
        self.draining = True

    def hangup_all(self, now: float, reason: str = "shutdown") -> list[Action]:
        """End every call: BYE both legs of answered calls, CANCEL the unanswered ones."""
        out: list[Action] = []
        for call in list(self._calls_a.values()):
            if call.state is CallState.ROUTING:
                attempts.abandon(self, call, now, out)
                self._fail_call(call, 503, reason, now, out)
            elif call.state is CallState.ANSWERED:
                self._end_by_switch(call, reason, now, out)
        return out

    def media_token(self) -> int:
        """A new token for a :class:`~switch.b2bua.tu.MediaRequest`."""
        return next(self._media_tokens)

    def media_result(self, token: int, reply: Mapping[str, object] | None,
                     now: float) -> list[Action]:
        """The relay's reply to the media request ``token`` (None: failed or no answer)."""
        out: list[Action] = []
        then = self.media_pending.pop(token, None)
        if then is not None:
            then(reply, now, out)
        return out

    # --- input ----------------------------------------------------------------------------------

    def receive(self, message: Message, peer: Peer, now: float) -> list[Action]:
        """Handle one message from ``peer``; return what to do."""
        if type(peer) is not Peer:  # a plain tuple: the engine reads peers by field name
            peer = Peer(*peer)
        out: list[Action] = []
        if isinstance(message, Response):
            self._on_response(message, now, out)
        elif (problem := check_request(message)) is not None:
            status, phrase, counter = problem
            self.stats[counter] += 1
            if message.method != "ACK":  # answered statelessly (8.2.7); an ACK never is
                out.append(Transmit(respond(message, status, self.ids.tag(), reason=phrase),
                                    peer))
        elif message.method == "ACK":
            self._on_ack(message, peer, now, out)
        else:
            self._on_request(message, peer, now, out)
        return out

    # --- requests ---------------------------------------------------------------------------------

    def _on_request(self, req: Request, peer: Peer, now: float, out: list[Action]) -> None:
        tx = self.table.match_request(req)
        if tx is not None:  # a retransmission
            self._after_tx(tx, tx.receive_request(req, now), now, out)
            return
        if req.method == "CANCEL":
            self._on_cancel(req, peer, now, out)
            return
        headers = req.headers
        call_id = headers.get("call-id") or ""
        if tag(headers.get("to") or "") is not None:
            call = self._calls_b.get(call_id)
            side = Side.B
            if call is not None and (call.b is None or call.b.call_id != call_id):
                # The dialog of an attempt the call moved on from (a late answer we ACKed and
                # hung up): it may neither end nor re-negotiate the call that went on elsewhere.
                out.append(Transmit(respond(req, 481, None), peer))
                return
            if call is None:
                call = self._calls_a.get((call_id, tag(headers.get("from") or "") or ""))
                side = Side.A
            if call is None:
                out.append(Transmit(respond(req, 481, None), peer))
                return
            self._in_dialog(call, side, req, peer, now, out)
        elif req.method == "INVITE":
            self._new_call(req, peer, now, out)
        elif req.method == "REGISTER" and self.registrar.accounts:
            self._on_register(req, peer, now, out)
        elif req.method == "OPTIONS":
            out.append(Transmit(respond(req, 200, self.ids.tag(), extra=[("Allow", _ALLOW)]),
                                peer))
        else:
            self.stats["method_not_allowed"] += 1
            out.append(Transmit(respond(req, 405, self.ids.tag(), extra=[("Allow", _ALLOW)]),
                                peer))

    def _on_register(self, req: Request, peer: Peer, now: float, out: list[Action]) -> None:
        # A transaction, so that a retransmitted REGISTER gets the same answer again rather
        # than being verified twice (its nonce-count would look replayed).
        tx = ServerTransaction(req, reliable=peer.transport == "tcp", now=now,
                               timers=self.timer_config)
        self._start_tx(tx, Owner(peer, None, Role.REQUEST), now, out)
        reply = self.registrar.register(req, peer.transport, peer.host, peer.port, now)
        self.stats[f"register_{reply.status}"] += 1
        self.bindings_changed |= reply.changed
        self._reply(tx, respond(req, reply.status, self.ids.tag(),
                                extra=list(reply.headers) or None), now, out)

    def _on_response(self, resp: Response, now: float, out: list[Action]) -> None:
        tx = self.table.match_response(resp)
        if tx is not None:
            self._after_tx(tx, tx.receive(resp, now), now, out)
            return
        # A 2xx retransmitted after its INVITE transaction ended: our ACK was lost (13.2.2.4).
        # Only the answered leg's: call.b_ack belongs to that dialog and no other attempt's.
        call_id = resp.headers.get("call-id") or ""
        call = self._calls_b.get(call_id)
        if call is not None and 200 <= resp.status < 300 and call.b_ack is not None \
                and call.b is not None and call.b.call_id == call_id \
                and (resp.headers.get("cseq") or "").endswith("INVITE"):
            out.append(Transmit(call.b_ack, call.b.peer))

    def _on_ack(self, ack: Request, peer: Peer, now: float, out: list[Action]) -> None:
        tx = self.table.match_request(ack)
        if tx is not None:  # the ACK of a non-2xx final we sent
            self._after_tx(tx, tx.receive_request(ack, now), now, out)
            return
        headers = ack.headers
        call = self._calls_a.get((headers.get("call-id") or "", tag(headers.get("from") or "")
                                  or ""))
        if call is not None and not call.a_acked and call.a_ok is not None:
            call.a_acked = True
            self._disarm(call, CallTimer.RETRANSMIT, CallTimer.ACK_WAIT)
        # any other ACK (for a relayed re-INVITE: we ACKed the far side ourselves) is absorbed

    def _on_cancel(self, req: Request, peer: Peer, now: float, out: list[Action]) -> None:
        invite_tx = self.table.match_cancel(req)
        headers = req.headers
        call = self._calls_a.get((headers.get("call-id") or "", tag(headers.get("from") or "")
                                  or ""))
        if invite_tx is None or call is None:
            out.append(Transmit(respond(req, 481, None), peer))
            return
        out.append(Transmit(respond(req, 200, tag(call.a.local_party)), peer))
        if call.state is CallState.ROUTING:
            attempts.abandon(self, call, now, out)
            self._fail_call(call, 487, "no_answer", now, out)

    def _new_call(self, req: Request, peer: Peer, now: float, out: list[Action]) -> None:
        known = self._calls_a.get((req.headers.get("call-id") or "",
                                   tag(req.headers.get("from") or "") or ""))
        if known is not None:
            self._known_call(known, req, peer, now, out)
            return
        headers = req.headers
        a_tag = self.ids.tag()
        callee = user_of(req.uri)
        ident = self.customers.identify(req, peer.host, peer.port, callee, now)
        if ident.gateway is None:
            # Refused or challenged statelessly, as Kamailio's sl_send_reply: no transaction,
            # no 100, no retransmission of the answer. A source that is not a customer (a
            # scanner, a spoofed address) must not cost 32 s of state and a dozen answers
            # reflected to an address that never asked; a retransmitted INVITE is answered
            # again, and a real gateway's ACK finds nothing to stop, which is harmless.
            self.stats["auth_challenged" if ident.status == 407 else "auth_refused"] += 1
            extra = [("Proxy-Authenticate", c) for c in ident.challenges] or None
            out.append(Transmit(respond(req, ident.status, a_tag, extra=extra), peer))
            return
        tx = ServerTransaction(req, reliable=peer.transport == "tcp", now=now,
                               timers=self.timer_config)
        self._start_tx(tx, Owner(peer, None, Role.A_INVITE), now, out)
        gw = ident.gateway
        number = normalize_number(callee, gw.tech_prefix)
        from_value = headers.get("from") or ""
        rec = CallRecord(self._cdr_id(), self.config.id, headers.get("call-id") or "",
                         user_of(uri_of(from_value)), callee, number, gw.name, peer.host, peer.port,
                         start=now)
        # check_request passed a Contact only if it is a SIP URI; without one, the From URI or
        # the source address is where in-dialog requests go.
        target = sip_uri(headers.get("contact") or from_value) or f"sip:{peer.host}:{peer.port}"
        leg = Leg(peer, self.local[peer.transport], headers.get("call-id") or "",
                  f"{headers.get('to') or ''};tag={a_tag}", from_value, target)
        plan = None
        if ident.status:
            failure: tuple[int, str] | None = (403, "auth_failed")
        elif (headers.get("max-forwards") or "70").strip() == "0":
            failure = (483, "error")
        elif len(number) > self.config.sip.max_number_digits:
            # Before any routing work: the contract's reasons are fixed, so no_route with 484.
            self.stats["number_too_long"] += 1
            failure = (484, "no_route")
        elif self.draining:
            failure = (503, "shutdown")
        elif (limit := self.limits.admit(gw, now)) is not None:
            failure = (503, limit)
        else:
            down = {name for name, until in self.down.items() if until > now}
            plan = plan_route(number, gw.name, self.gateways, self.snapshot, down=down)
            failure = plan.failure
            if failure is not None:
                self.limits.release(gw.name)
        if failure is not None or plan is None:
            assert failure is not None
            self.stats[failure[1]] += 1
            rec.end(now, failure[0], failure[1])
            then: list[Transmit] = []
            extra = [("Retry-After", "1")] if failure[0] == 503 else None
            self._reply(tx, respond(req, failure[0], a_tag, extra=extra), now, out, then)
            out.append(Finish(rec.as_dict(self._wall_offset()), then))
            return
        call = Call(rec, gw, leg, tx, req, req.body, plan.candidates)
        self._owners[tx].call = call
        self._calls_a[(leg.call_id, tag(from_value) or "")] = call
        self.stats["calls"] += 1
        if self.observer is not None:
            self.observer.dialog_opened(leg.call_id, rec.src_ip)

        def route(now: float, out: list[Action]) -> None:
            if not attempts.next_attempt(self, call, now, out):  # every candidate went down
                self._fail_call(call, 503, "no_route", now, out)

        media.start(self, call, now, out, route)

    def _known_call(self, call: Call, req: Request, peer: Peer, now: float,
                    out: list[Action]) -> None:
        """An INVITE without To tag for a call we already have (same Call-ID and From tag).

        The call's own transaction (same branch and sent-by, or the same RFC 2543 key) is a
        retransmission whose transaction our 2xx ended (17.2.1): the 2xx is the call's to
        repeat (13.3.1.4), so it is re-sent until the ACK and nothing is started. Anything else,
        even with the same CSeq, is another transaction that would take over the call's dialog:
        482, as for a merged request (8.2.2.2).
        """
        if server_key(req) == call.a_tx.key:
            self.stats["invite_retransmission"] += 1
            if call.a_ok is not None and not call.a_acked and call.state is CallState.ANSWERED:
                out.append(Transmit(call.a_ok, peer))
            return
        self.stats["merged_request"] += 1
        # Through a transaction: its retransmissions must get this 482 again, not become a new
        # call once the old one is gone.
        tx = ServerTransaction(req, reliable=peer.transport == "tcp", now=now,
                               timers=self.timer_config)
        self._start_tx(tx, Owner(peer, None, Role.A_INVITE), now, out)
        self._reply(tx, respond(req, 482, self.ids.tag()), now, out)

    # --- what our transactions deliver --------------------------------------------------------

    def _on_tx_response(self, owner: Owner, tx: Transaction, resp: Response, now: float,
                        out: list[Action]) -> None:
        role = owner.role
        if role is Role.B_INVITE:
            assert owner.call is not None
            attempts.vendor_answer(self, owner.call, resp, now, out)
        elif role is Role.B_STALE:
            attempts.stale_answer(self, tx, owner, resp, now, out)
        elif role is Role.RELAY:
            self._relay_answer(owner, resp, now, out)
            if resp.status < 200 and isinstance(tx, ClientTransaction) and tx.is_invite \
                    and not owner.cancelled:
                self._guard(tx, Guard.RELAY, now + RELAY_RINGING_LIMIT)

    def _on_tx_failure(self, owner: Owner, tx: Transaction, now: float,
                       out: list[Action]) -> None:
        call = owner.call
        if owner.role is Role.B_INVITE and call is not None and call.b_tx is tx:
            attempts.invite_timeout(self, call, now, out)  # no answer at all within 64*T1
        elif owner.role is Role.RELAY and owner.answer_to is not None:
            self._reply(owner.answer_to, respond(owner.answer_to.request, 408, None), now, out)

    # --- dialogs ---------------------------------------------------------------------------------

    def _in_dialog(self, call: Call, side: Side, req: Request, peer: Peer, now: float,
                   out: list[Action]) -> None:
        tx = ServerTransaction(req, reliable=peer.transport == "tcp", now=now,
                               timers=self.timer_config)
        self._start_tx(tx, Owner(peer, call, Role.REQUEST), now, out)
        method = req.method
        if method == "BYE":
            if call.state is not CallState.ANSWERED:
                self._reply(tx, respond(req, 481, None), now, out)
                return
            call.state = CallState.ENDED
            self._disarm(call, CallTimer.RETRANSMIT, CallTimer.ACK_WAIT, CallTimer.MAX_DURATION)
            other = call.b if side is Side.A else call.a
            assert other is not None
            self._send_bye(other, call, now, out)
            call.rec.end(now, 200, "caller_bye" if side is Side.A else "callee_bye")
            then: list[Transmit] = []
            self._reply(tx, respond(req, 200, None), now, out, then)
            self._finish(call, now, out, then)
        elif method in _RELAYED and call.state is CallState.ANSWERED:
            other = call.b if side is Side.A else call.a
            assert other is not None

            def relay(body: bytes, now: float, out: list[Action]) -> None:
                forward = in_dialog(other, method, self.ids, body=body,
                                    content_type=req.headers.get("content-type"),
                                    contact=other.contact(self.config.id)
                                    if method != "INFO" else None)
                ctx = ClientTransaction(forward, reliable=other.peer.transport == "tcp",
                                        now=now, timers=self.timer_config)
                self._start_tx(ctx, Owner(other.peer, call, Role.RELAY, other, forward, tx),
                               now, out)

            if method == "INFO":
                relay(req.body, now, out)
            else:  # a re-offer: its SDP goes to the relay first (when media is relayed)
                media.reoffer(self, call, side, req, tx, now, out, relay)
        else:
            self._reply(tx, respond(req, 481 if method in _RELAYED else 501, None), now, out)

    def _relay_answer(self, owner: Owner, resp: Response, now: float, out: list[Action]) -> None:
        waiting = owner.answer_to
        if waiting is None or resp.status == 100:
            return
        request, leg = owner.request, owner.leg
        if 200 <= resp.status < 300 and request is not None and request.method == "INVITE" \
                and leg is not None:
            out.append(Transmit(ack_for_2xx(leg, leg.cseq, self.ids), leg.peer))
        call = owner.call
        contact = None
        if call is not None:
            this_leg = call.a if owner.leg is call.b else call.b
            contact = this_leg.contact(self.config.id) if this_leg is not None else None

        def answer(resp: Response, now: float, out: list[Action]) -> None:
            self._reply(waiting, respond(waiting.request, resp.status, None, contact=contact,
                                         body=sdp_body(resp), reason=resp.reason), now, out)

        if call is not None and resp.status < 300 and request is not None \
                and request.method != "INFO":
            media.reanswer(self, call, owner.leg is call.a, resp, now, out, answer)
        else:
            answer(resp, now, out)

    def _send_bye(self, leg: Leg, call: Call | None, now: float, out: list[Action],
                  defer: list[Transmit] | None = None) -> None:
        bye = in_dialog(leg, "BYE", self.ids)
        tx = ClientTransaction(bye, reliable=leg.peer.transport == "tcp", now=now,
                               timers=self.timer_config)
        self._start_tx(tx, Owner(leg.peer, call, Role.BYE), now, out, defer)

    def _end_by_switch(self, call: Call, reason: str, now: float, out: list[Action]) -> None:
        """The switch ends an answered call: BYE both legs, once the CDR is on disk."""
        call.state = CallState.ENDED
        call.rec.end(now, 200, reason)
        then: list[Transmit] = []
        self._send_bye(call.a, call, now, out, then)
        if call.b is not None:
            self._send_bye(call.b, call, now, out, then)
        self._finish(call, now, out, then)

    def _fail_call(self, call: Call, status: int, reason: str, now: float,
                   out: list[Action]) -> None:
        """Answer the customer with a final failure, once the CDR is on disk."""
        if call.state is not CallState.ROUTING:
            return
        call.state = CallState.ENDED
        self._disarm(call, CallTimer.INVITE, CallTimer.PROGRESS)
        call.rec.end(now, status, reason)
        then: list[Transmit] = []
        extra = [("Retry-After", "1")] if status == 503 else None
        self._reply(call.a_tx, respond(call.a_invite, status, tag(call.a.local_party),
                                       extra=extra), now, out, then)
        self._finish(call, now, out, then)

    def _finish(self, call: Call, now: float, out: list[Action], then: list[Transmit]) -> None:
        if call.finished:
            out.extend(then)
            return
        call.finished = True
        self.stats[call.rec.reason] += 1
        if self.observer is not None:
            self.observer.dialog_closed(call.a.call_id)
        self.limits.release(call.gateway.name)
        self._disarm_all(call)
        # Never before the customer's INVITE client transaction is over (timer B, 64*T1): until
        # then a retransmission of that INVITE must find this call, not start another.
        reap_at = max(now + REAP_AFTER, call.rec.start + 64 * self.timer_config.t1)
        self._arm(call, CallTimer.REAP, reap_at)
        if not media.finish(self, call, out, then):
            out.append(Finish(call.rec.as_dict(self._wall_offset()), then))

    # --- the dialogs' timers and guard, and reaping (dispatched through the tables below) -------

    def _guard_relay(self, tx: Transaction, owner: Owner, now: float, out: list[Action]) -> None:
        """A relayed re-INVITE still without a final answer: cancel it (timer C, 16.6)."""
        attempts.send_cancel(self, tx, owner, now, out)

    def _timer_retransmit(self, call: Call, now: float, out: list[Action]) -> None:
        if call.a_acked or call.a_ok is None or call.state is not CallState.ANSWERED:
            return
        out.append(Transmit(call.a_ok, call.a.peer))
        call.retransmit_interval = min(2 * call.retransmit_interval, self.timer_config.t2)
        self._arm(call, CallTimer.RETRANSMIT, now + call.retransmit_interval)

    def _timer_ack_wait(self, call: Call, now: float, out: list[Action]) -> None:
        if not call.a_acked and call.state is CallState.ANSWERED:
            self._end_by_switch(call, "error", now, out)  # 13.3.1.4: no ACK, end the dialog

    def _timer_max_duration(self, call: Call, now: float, out: list[Action]) -> None:
        if call.state is CallState.ANSWERED:
            self._end_by_switch(call, "max_duration", now, out)

    def _timer_reap(self, call: Call, now: float, out: list[Action]) -> None:
        key = (call.a.call_id, tag(call.a.remote_party) or "")
        if self._calls_a.get(key) is call:
            del self._calls_a[key]
        for call_id in call.b_call_ids:
            if self._calls_b.get(call_id) is call:
                del self._calls_b[call_id]

    #: What each timer and guard does when it fires (TransactionUser.handle_timers dispatches on
    #: these; TransactionUser.__init_subclass__ refuses the class if one is left out).
    _CALL_TIMERS: ClassVar[Mapping[CallTimer, CallTimerHandler]] = {
        CallTimer.INVITE: attempts.invite_timeout,
        CallTimer.PROGRESS: attempts.progress_timeout,
        CallTimer.RETRANSMIT: _timer_retransmit,
        CallTimer.ACK_WAIT: _timer_ack_wait,
        CallTimer.MAX_DURATION: _timer_max_duration,
        CallTimer.REAP: _timer_reap,
        CallTimer.MEDIA_CHECK: media.media_check,
    }
    _GUARDS: ClassVar[Mapping[Guard, GuardHandler]] = {
        Guard.CANCELLED: attempts.cancel_unanswered,
        Guard.RELAY: _guard_relay,
    }
