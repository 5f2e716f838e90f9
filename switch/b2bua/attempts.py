"""A call's vendor attempts: the B leg from the INVITE to the answer, or to giving up on it.

:func:`next_attempt` tries the next routing candidate as a dialog of its own; what the vendor
answers comes back through :func:`vendor_answer` (18x relayed to the customer with their early
media, the 2xx ACKed and relayed, a failure failed over or made the call's final answer).
:func:`abandon` gives up on the current attempt (CANCEL once it may be cancelled, 9.1), and an
answer that arrives for an abandoned attempt goes to :func:`stale_answer`. The two attempt timers
(``invite_timeout``, ``call_progress_timeout``) and the guard on a CANCELled INVITE end here too.

These are functions taking the :class:`~switch.b2bua.engine.Engine` explicitly rather than
methods: the engine keeps the call as a whole (the customer's side, the dialogs once answered,
ending and recording calls); this module is the one part of it that talks to vendors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switch.b2bua import media
from switch.b2bua.build import (
    Leg,
    Peer,
    ack_for_2xx,
    cancel_for,
    in_dialog,
    respond,
    sdp_body,
    sip_uri,
    uri_user,
)
from switch.b2bua.call import Call, CallState, CallTimer, Owner, Role, reason_for_status
from switch.b2bua.cdr import Attempt
from switch.b2bua.tu import Action, Guard, Transmit
from switch.sip import ClientTransaction, Response, SdpError, Transaction, parse_sdp, tag
from switch.sip.sdp import codecs

if TYPE_CHECKING:  # engine.py imports this module
    from switch.b2bua.engine import Engine

__all__ = ["abandon", "cancel_unanswered", "invite_timeout", "next_attempt", "progress_timeout",
           "send_cancel", "stale_answer", "vendor_answer"]


def next_attempt(engine: Engine, call: Call, now: float, out: list[Action]) -> bool:
    """Send the INVITE to the next candidate not marked down; False when none is left."""
    while call.next_candidate < len(call.candidates):
        cand = call.candidates[call.next_candidate]
        call.next_candidate += 1
        if engine.down.get(cand.gateway.name, 0.0) > now:
            continue
        number = call.rec.callee_e164
        if cand.gateway.register_in:
            # A vendor that registers to us is reached where it registered from; without a
            # live binding it is skipped like a down vendor.
            binding = engine.registrar.binding(cand.gateway.name, now)
            if binding is None:
                engine.stats["not_registered"] += 1
                continue
            peer = Peer(binding.transport, binding.host, binding.port)
            local = engine.local.get(binding.transport, engine.local["udp"])
            hostport = f"[{binding.host}]" if ":" in binding.host else binding.host
            target = f"sip:{number}@{hostport}:{binding.port}"
        else:
            host, _, port = cand.gateway.address.rpartition(":")
            peer = Peer("udp", host.strip("[]"), int(port))
            local = engine.local["udp"]
            target = f"sip:{number}@{cand.gateway.address}"
        caller = uri_user(call.rec.caller) or "anonymous"
        leg = Leg(peer, local, engine.ids.call_id(local.host),
                  f"<sip:{caller}@{local.host}>;tag={engine.ids.tag()}", f"<{target}>", target)
        invite = in_dialog(leg, "INVITE", engine.ids, body=call.offer,
                           content_type=call.a_invite.headers.get("content-type"),
                           contact=leg.contact(engine.config.id))
        call.b, call.b_invite, call.b_vendor, call.b_ack = leg, invite, cand.gateway, None
        call.attempt = Attempt(cand.gateway.name, now)
        call.rec.attempts.append(call.attempt)
        call.b_call_ids.append(leg.call_id)
        engine._calls_b[leg.call_id] = call
        tx = ClientTransaction(invite, reliable=peer.transport == "tcp", now=now,
                               timers=engine.timer_config)
        call.b_tx = tx
        engine._arm(call, CallTimer.INVITE, now + engine.config.sip.invite_timeout)
        engine._start_tx(tx, Owner(peer, call, Role.B_INVITE, leg, invite), now, out)
        return True
    return False


def abandon(engine: Engine, call: Call, now: float, out: list[Action]) -> None:
    """Stop the current vendor attempt: CANCEL it once it may be cancelled (9.1)."""
    tx = call.b_tx
    engine._disarm(call, CallTimer.INVITE, CallTimer.PROGRESS)
    if tx is None:
        return
    if call.attempt is not None and not call.attempt.sip_code:
        # No answer recorded (the invite timer would have set 408): we cancel it, and 487
        # is what the vendor answers a CANCEL with (9.2), whether or not it gets to.
        call.attempt.sip_code = 487
    call.b_tx = None
    owner = engine._owners.get(tx)
    if owner is None:
        return
    owner.role = Role.B_STALE
    if tx.state == "proceeding":
        send_cancel(engine, tx, owner, now, out)


def send_cancel(engine: Engine, invite_tx: Transaction, owner: Owner, now: float,
                out: list[Action]) -> None:
    """CANCEL the INVITE ``invite_tx`` sent (a vendor attempt or a relayed re-INVITE), once."""
    if owner.cancelled or owner.request is None:
        return
    owner.cancelled = True
    tx = ClientTransaction(cancel_for(owner.request), reliable=False, now=now,
                           timers=engine.timer_config)
    engine._start_tx(tx, Owner(owner.peer, owner.call, Role.CANCEL), now, out)
    # A provisional stopped timer B: only this guard ends the INVITE if no final comes.
    engine._guard(invite_tx, Guard.CANCELLED, now + 64 * engine.timer_config.t1)


def vendor_answer(engine: Engine, call: Call, resp: Response, now: float,
                  out: list[Action]) -> None:
    """A response to the current attempt's INVITE: relay 18x, take a 2xx, fail over on a
    failure unless its code stops the hunt."""
    status = resp.status
    attempt = call.attempt
    leg = call.b
    assert attempt is not None and leg is not None and call.b_vendor is not None
    if status == 100:
        return
    if attempt.first_answer is None:
        attempt.first_answer = now
    if call.rec.first_answer is None and status < 300:
        call.rec.first_answer = now
    to_value = resp.headers.get("to")
    if to_value and status < 300:
        leg.remote_party = to_value
    if status < 200:
        if CallTimer.INVITE in call.timers:
            engine._disarm(call, CallTimer.INVITE)
            engine._arm(call, CallTimer.PROGRESS, now + engine.config.sip.call_progress_timeout)
        media.answer(engine, call, resp, now, out,
                     lambda r, now, out: _relay_to_a(engine, call, status, r, now, out))
        return
    engine._disarm(call, CallTimer.INVITE, CallTimer.PROGRESS)
    attempt.sip_code = status
    if status < 300:
        contact = resp.headers.get("contact")
        if contact:
            leg.remote_target = sip_uri(contact) or leg.remote_target
        call.b_ack = ack_for_2xx(leg, 1, engine.ids)
        out.append(Transmit(call.b_ack, leg.peer))
        media.answer(engine, call, resp, now, out,
                     lambda r, now, out: _answer(engine, call, r, now, out))
        return
    call.b_tx = None
    if status in call.b_vendor.huntstop_codes or not next_attempt(engine, call, now, out):
        engine._fail_call(call, status, reason_for_status(status), now, out)


def stale_answer(engine: Engine, tx: Transaction, owner: Owner, resp: Response, now: float,
                 out: list[Action]) -> None:
    """A response for an attempt we abandoned: cancel it, or take down a late answer."""
    if resp.status < 200:
        send_cancel(engine, tx, owner, now, out)
    elif resp.status < 300 and owner.leg is not None:
        leg = owner.leg
        to_value = resp.headers.get("to")
        if to_value:
            leg.remote_party = to_value
        contact = resp.headers.get("contact")
        if contact:
            leg.remote_target = sip_uri(contact) or leg.remote_target
        out.append(Transmit(ack_for_2xx(leg, 1, engine.ids), leg.peer))
        engine._send_bye(leg, owner.call, now, out)


def _relay_to_a(engine: Engine, call: Call, status: int, resp: Response, now: float,
                out: list[Action]) -> None:
    response = respond(call.a_invite, status, tag(call.a.local_party),
                       contact=call.a.contact(engine.config.id), body=sdp_body(resp),
                       reason=resp.reason)
    engine._reply(call.a_tx, response, now, out)
    if status >= 200:
        call.a_ok = response


def _answer(engine: Engine, call: Call, resp: Response, now: float, out: list[Action]) -> None:
    call.state = CallState.ANSWERED
    call.rec.answer = now
    call.rec.codec = _codec(call.offer, resp.body)
    _relay_to_a(engine, call, 200, resp, now, out)
    t1 = engine.timer_config.t1
    if call.a.peer.transport == "udp":
        call.retransmit_interval = t1
        engine._arm(call, CallTimer.RETRANSMIT, now + t1)
    engine._arm(call, CallTimer.ACK_WAIT, now + 64 * t1)
    engine._arm(call, CallTimer.MAX_DURATION, now + call.gateway.max_duration)
    media.answered_call(engine, call, now)


# --- the attempt timers and the CANCEL guard (entries of the engine's dispatch tables) ---------


def invite_timeout(engine: Engine, call: Call, now: float, out: list[Action]) -> None:
    """No ringing or final answer in time (or none at all within 64*T1): fail over."""
    if call.state is not CallState.ROUTING or call.attempt is None:
        return
    call.attempt.sip_code = 408
    if engine.config.sip.stop_gateway_after_invite_timeout and call.b_vendor is not None:
        engine.down[call.b_vendor.name] = now + engine.config.sip.stop_gateway_period
    abandon(engine, call, now, out)
    if not next_attempt(engine, call, now, out):
        engine._fail_call(call, 408, "invite_timeout", now, out)


def progress_timeout(engine: Engine, call: Call, now: float, out: list[Action]) -> None:
    """Ringing without an answer for too long: end the call (the callee was reached, so no
    failover)."""
    if call.state is not CallState.ROUTING or call.attempt is None:
        return
    call.attempt.sip_code = 487
    abandon(engine, call, now, out)
    engine._fail_call(call, 480, "no_answer", now, out)


def cancel_unanswered(engine: Engine, tx: Transaction, owner: Owner, now: float,
                      out: list[Action]) -> None:
    """9.1: no final answer 64*T1 after our CANCEL; the INVITE transaction is destroyed
    (as a transport failure: a relay's waiting request gets its 408)."""
    engine.stats["cancel_unanswered"] += 1
    engine._after_tx(tx, tx.transport_failed("no final answer after CANCEL"), now, out)


def _codec(offer: bytes, answer: bytes) -> str | None:
    """The negotiated codec: the first of the answer's audio formats (RFC 3264 6.1)."""
    try:
        sd = parse_sdp(answer or offer)
    except SdpError:
        return None
    for m in sd.media:
        if m.kind == "audio" and m.port:
            found = [name for _, name in codecs(m) if name != "telephone-event"]
            if found:
                return found[0]
    return None
