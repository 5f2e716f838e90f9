"""RFC 3261 section 17.2 server transactions: every timer path with explicit ``now``, no sleeping.

Messages are built from literal SIP text (tests/switch/sip_traces.py) so each test reads like a
trace. Defaults: T1 = 0.5 s, T2 = 4 s, T4 = 5 s, so 64*T1 = 32 s.
"""

from __future__ import annotations

import pytest

from switch.sip.message import Response, make_response
from switch.sip.transaction import (
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    TimedOut,
    TransactionError,
    TransportError,
)
from switch.sip.transaction_common import Timer
from tests.switch.sip_traces import ack_for, fire_times, invite, non_invite, req

# --- INVITE server (17.2.1) ----------------------------------------------------------------


def test_invite_server_sends_100_trying_and_resends_last_provisional() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    assert tx.state == "proceeding"
    assert tx.key == ("z9hG4bK776asdhds", "pc33.atlanta.example.com:5060", "INVITE")
    out = tx.start()
    assert out[0] == Deliver(request)
    trying = out[1].message
    assert isinstance(out[1], Send) and isinstance(trying, Response)
    assert trying.status == 100
    assert trying.headers.get_all("Via") == request.headers.get_all("Via")
    assert trying.headers.get("CSeq") == "314159 INVITE"
    assert "tag=" not in (trying.headers.get("To") or "")
    assert tx.next_deadline() is None

    # INVITE retransmitted: the 100 again, not a second Deliver.
    assert tx.receive_request(request, 0.5) == [Send(trying)]
    ringing = make_response(request, 180, "Ringing", to_tag="srv1")
    assert tx.respond(ringing, 1.0) == [Send(ringing)]
    assert tx.state == "proceeding"
    assert tx.receive_request(request, 1.5) == [Send(ringing)]


def test_invite_server_486_timer_g_doubles_to_t2_then_h_without_ack() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    tx.start()
    busy = make_response(request, 486, "Busy Here", to_tag="srv1")
    assert tx.respond(busy, 1.0) == [Send(busy)]
    assert tx.state == "completed"
    # An INVITE retransmission in Completed gets the final again.
    assert tx.receive_request(request, 1.2) == [Send(busy)]

    fired = fire_times(tx, until=100.0)
    # G: T1, 2T1, 4T1, then T2 (capped) from 1.0; H at 1.0 + 64*T1 = 33.0.
    times = [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    assert [t for t, _ in fired[:-1]] == times
    assert all(out == [Send(busy)] for _, out in fired[:-1])
    assert fired[-1] == (33.0, [TimedOut("H"), Terminated()])
    assert tx.state == "terminated"


def test_invite_server_ack_confirms_and_timer_i_ends_it() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    tx.start()
    busy = make_response(request, 486, "Busy Here", to_tag="srv1")
    tx.respond(busy, 1.0)
    assert tx.handle_timer(1.5) == [Send(busy)]
    ack = req("""
        ACK sip:bob@biloxi.example.com SIP/2.0
        Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds
        Max-Forwards: 70
        To: Bob <sip:bob@biloxi.example.com>;tag=srv1
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com
        CSeq: 314159 ACK
    """)
    assert tx.receive_request(ack, 2.0) == []  # the ACK of a non-2xx never reaches the TU
    assert tx.state == "confirmed"
    # G and H are gone; I = T4 absorbs ACK and INVITE retransmissions.
    assert tx.next_deadline() == 7.0
    assert tx.receive_request(ack, 2.5) == []
    assert tx.receive_request(request, 3.0) == []
    assert tx.handle_timer(6.9) == []
    assert tx.handle_timer(7.0) == [Terminated()]


def test_invite_server_tcp_no_g_and_i_is_zero() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=True, now=0.0)
    tx.start()
    busy = make_response(request, 486, "Busy Here", to_tag="srv1")
    tx.respond(busy, 1.0)
    assert tx.next_deadline() == 33.0  # H only
    tx.receive_request(ack_for(request, to_tag="srv1"), 4.0)
    assert tx.state == "confirmed"
    assert tx.next_deadline() == 4.0
    assert tx.handle_timer(4.0) == [Terminated()]


def test_invite_server_tcp_timer_h() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=True, now=0.0)
    tx.start()
    tx.respond(make_response(request, 480, "Temporarily Unavailable", to_tag="x"), 0.0)
    assert tx.handle_timer(31.9) == []
    assert tx.handle_timer(32.0) == [TimedOut("H"), Terminated()]


def test_invite_server_2xx_terminates_and_further_responses_are_errors() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    tx.start()
    ok = make_response(request, 200, "OK", to_tag="srv1")
    assert tx.respond(ok, 1.0) == [Send(ok), Terminated()]
    assert tx.state == "terminated"
    assert tx.next_deadline() is None
    with pytest.raises(TransactionError):
        tx.respond(ok, 1.5)


def test_server_transaction_rejects_ack_and_a_via_without_sent_by() -> None:
    ack = ack_for(invite(), to_tag="x")
    with pytest.raises(ValueError):
        ServerTransaction(ack, reliable=False, now=0.0)
    no_sent_by = invite()
    no_sent_by.headers.set("Via", "garbage")
    with pytest.raises(ValueError):
        ServerTransaction(no_sent_by, reliable=False, now=0.0)
    # An RFC 2543 request (no magic cookie) is matched by its other fields (17.2.3).
    assert ServerTransaction(invite(branch="1234"), reliable=False, now=0.0).key[0] == "rfc2543"


# --- non-INVITE server (17.2.2) ------------------------------------------------------------


def test_non_invite_server_trying_proceeding_completed_and_timer_j() -> None:
    request = non_invite("BYE")
    tx = ServerTransaction(request, reliable=False, now=0.0)
    assert tx.start() == [Deliver(request)]
    assert tx.state == "trying"
    assert tx.receive_request(request, 0.5) == []  # nothing to re-send yet
    trying = make_response(request, 100, "Trying")
    assert tx.respond(trying, 0.6) == [Send(trying)]
    assert tx.state == "proceeding"
    assert tx.receive_request(request, 1.0) == [Send(trying)]
    ok = make_response(request, 200, "OK", to_tag="t")
    assert tx.respond(ok, 2.0) == [Send(ok)]
    assert tx.state == "completed"
    assert tx.receive_request(request, 3.0) == [Send(ok)]
    assert tx.next_deadline() == 34.0  # J = 64*T1
    with pytest.raises(TransactionError):
        tx.respond(ok, 3.5)
    assert tx.handle_timer(33.9) == []
    assert tx.handle_timer(34.0) == [Terminated()]
    assert tx.receive_request(request, 35.0) == []


def test_non_invite_server_tcp_timer_j_is_zero() -> None:
    request = non_invite()
    tx = ServerTransaction(request, reliable=True, now=0.0)
    tx.start()
    tx.respond(make_response(request, 200, "OK", to_tag="t"), 1.0)
    assert tx.next_deadline() == 1.0
    assert tx.handle_timer(1.0) == [Terminated()]


# --- transport errors ----------------------------------------------------------------------


def test_server_transport_failed_cancels_timer_g() -> None:
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    tx.start()
    tx.respond(make_response(request, 486, "Busy Here", to_tag="t"), 1.0)
    assert tx.transport_failed("ICMP unreachable") == [
        TransportError("ICMP unreachable"),
        Terminated(),
    ]
    assert tx.next_deadline() is None
    assert tx.handle_timer(100.0) == []


# --- the dispatch table --------------------------------------------------------------------


def test_server_fire_table_has_a_handler_for_each_server_timer() -> None:
    fire = ServerTransaction._FIRE
    assert set(fire) == {Timer.G, Timer.H, Timer.I, Timer.J}
    assert fire[Timer.G] is ServerTransaction._fire_g
    assert fire[Timer.J] is ServerTransaction._fire_j
