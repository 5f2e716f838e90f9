"""RFC 3261 section 17.1 client transactions: every timer path with explicit ``now``, no sleeping.

Messages are built from literal SIP text (tests/switch/sip_traces.py) so each test reads like a
trace. Defaults: T1 = 0.5 s, T2 = 4 s, T4 = 5 s, so 64*T1 = 32 s.
"""

from __future__ import annotations

import pytest

from switch.sip.message import Request
from switch.sip.transaction import (
    ClientTransaction,
    Deliver,
    Send,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransportError,
)
from switch.sip.transaction_common import Output, Timer
from tests.switch.sip_traces import ack_for, fire_times, invite, non_invite, response_to

# --- INVITE client (17.1.1) ----------------------------------------------------------------


def test_invite_client_udp_timer_a_doubles_until_b_times_out() -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    assert tx.state == "calling"
    assert tx.key == ("z9hG4bK776asdhds", "INVITE")
    assert tx.start() == [Send(request)]

    fired = fire_times(tx, until=100.0)
    # A at T1, then 2T1, 4T1, ...: retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5.
    assert [t for t, _ in fired[:-1]] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(out == [Send(request)] for _, out in fired[:-1])
    # B at 64*T1 = 32 s.
    assert fired[-1] == (32.0, [TimedOut("B"), Terminated()])
    assert tx.state == "terminated"
    assert tx.next_deadline() is None


def test_invite_client_timer_not_due_does_nothing() -> None:
    tx = ClientTransaction(invite(), reliable=False, now=10.0)
    tx.start()
    assert tx.handle_timer(10.4) == []
    assert tx.next_deadline() == 10.5


def test_invite_client_late_shell_retransmits_once_not_a_burst() -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    tx.start()
    # The shell slept through A at 0.5 and 1.5: one retransmission, re-armed from now.
    assert tx.handle_timer(2.0) == [Send(request)]
    assert tx.next_deadline() == 3.0


def test_invite_client_tcp_has_no_timer_a() -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=True, now=0.0)
    assert tx.start() == [Send(request)]
    assert tx.next_deadline() == 32.0
    assert tx.handle_timer(31.9) == []
    assert tx.handle_timer(32.0) == [TimedOut("B"), Terminated()]


def test_invite_client_custom_t1_scales_a_and_b() -> None:
    tx = ClientTransaction(invite(), reliable=False, now=0.0, timers=TimerConfig(t1=1.0, t2=4.0))
    tx.start()
    fired = fire_times(tx, until=100.0)
    assert [t for t, _ in fired] == [1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 64.0]
    assert fired[-1][1] == [TimedOut("B"), Terminated()]


def test_invite_client_1xx_then_486_acks_with_the_right_headers() -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    tx.start()

    ringing = response_to(request, 180, "Ringing")
    assert tx.receive(ringing, 0.2) == [Deliver(ringing)]
    assert tx.state == "proceeding"
    # Proceeding: no more retransmissions, and B no longer applies (the TU owns that timeout).
    assert tx.next_deadline() is None
    assert tx.handle_timer(40.0) == []

    busy = response_to(request, 486, "Busy Here")
    out = tx.receive(busy, 1.0)
    assert len(out) == 2
    send, deliver = out
    assert isinstance(send, Send) and deliver == Deliver(busy)
    ack = send.message
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri == "sip:bob@biloxi.example.com"
    assert ack.headers.get_all("Via") == [
        "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds"
    ]
    assert ack.headers.get("Call-ID") == "a84b4c76e66710@pc33.atlanta.example.com"
    assert ack.headers.get("From") == "Alice <sip:alice@atlanta.example.com>;tag=1928301774"
    assert ack.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"
    assert ack.headers.get("CSeq") == "314159 ACK"
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.headers.get("Contact") is None
    assert ack.body == b""
    assert tx.ack == ack
    assert tx.state == "completed"
    # Timer D = 32 s over UDP.
    assert tx.next_deadline() == 33.0

    # Our ACK was lost: the retransmitted 486 gets the same ACK again, the TU hears nothing.
    assert tx.receive(busy, 2.0) == [Send(ack)]
    # A provisional straggler in Completed is ignored.
    assert tx.receive(ringing, 2.5) == []

    assert tx.handle_timer(32.9) == []
    assert tx.handle_timer(33.0) == [Terminated()]
    assert tx.state == "terminated"
    assert tx.receive(busy, 34.0) == []


def test_invite_client_final_in_calling_over_tcp_timer_d_is_zero() -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=True, now=0.0)
    tx.start()
    out = tx.receive(response_to(request, 603, "Decline"), 3.0)
    assert [type(o) for o in out] == [Send, Deliver]
    assert tx.state == "completed"
    assert tx.next_deadline() == 3.0
    assert tx.handle_timer(3.0) == [Terminated()]


@pytest.mark.parametrize("after_ringing", [False, True])
def test_invite_client_2xx_terminates(after_ringing: bool) -> None:
    request = invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    tx.start()
    if after_ringing:
        tx.receive(response_to(request, 180, "Ringing"), 0.1)
    ok = response_to(request, 200, "OK")
    # No ACK from the transaction: the TU acknowledges a 2xx itself.
    assert tx.receive(ok, 0.3) == [Deliver(ok), Terminated()]
    assert tx.state == "terminated"
    assert tx.next_deadline() is None
    assert tx.receive(ok, 0.8) == []


def test_client_transaction_rejects_ack_and_rfc2543_requests() -> None:
    ack = ack_for(invite(), to_tag="x")
    with pytest.raises(ValueError):
        ClientTransaction(ack, reliable=False, now=0.0)
    with pytest.raises(ValueError):
        ClientTransaction(invite(branch="oldstyle1"), reliable=False, now=0.0)


def test_client_transaction_start_twice_and_foreign_response() -> None:
    tx = ClientTransaction(invite(), reliable=False, now=0.0)
    tx.start()
    with pytest.raises(TransactionError):
        tx.start()
    other = response_to(invite(branch="z9hG4bKother"), 180, "Ringing")
    with pytest.raises(ValueError):
        tx.receive(other, 0.1)


# --- non-INVITE client (17.1.2) ------------------------------------------------------------


def test_non_invite_client_timer_e_doubles_capped_at_t2_then_f() -> None:
    request = non_invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    assert tx.state == "trying"
    assert tx.start() == [Send(request)]
    fired = fire_times(tx, until=100.0)
    # E: 0.5, 1, 2, then capped at T2 = 4.
    assert [t for t, _ in fired[:-1]] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(out == [Send(request)] for _, out in fired[:-1])
    assert fired[-1] == (32.0, [TimedOut("F"), Terminated()])
    assert tx.state == "terminated"


def test_non_invite_client_proceeding_retransmits_every_t2_until_f() -> None:
    request = non_invite("REGISTER")
    tx = ClientTransaction(request, reliable=False, now=0.0)
    tx.start()
    assert tx.handle_timer(0.5) == [Send(request)]  # E -> next at 1.5
    trying = response_to(request, 100, "Trying", to_tag=None)
    assert tx.receive(trying, 0.7) == [Deliver(trying)]
    assert tx.state == "proceeding"
    fired = fire_times(tx, until=100.0)
    # The pending E at 1.5 fires, then every T2 = 4 s; F still ends it at 32.
    assert [t for t, _ in fired[:-1]] == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert fired[-1] == (32.0, [TimedOut("F"), Terminated()])


def test_non_invite_client_final_completes_and_timer_k_absorbs_retransmissions() -> None:
    request = non_invite()
    tx = ClientTransaction(request, reliable=False, now=0.0)
    tx.start()
    ok = response_to(request, 200, "OK")
    assert tx.receive(ok, 2.0) == [Deliver(ok)]
    assert tx.state == "completed"
    assert tx.next_deadline() == 7.0  # K = T4
    assert tx.receive(ok, 3.0) == []
    assert tx.handle_timer(6.9) == []
    assert tx.handle_timer(7.0) == [Terminated()]


def test_non_invite_client_tcp_no_e_and_k_is_zero() -> None:
    request = non_invite("BYE")
    tx = ClientTransaction(request, reliable=True, now=0.0)
    tx.start()
    assert tx.next_deadline() == 32.0  # F only
    not_found = response_to(request, 481, "Call/Transaction Does Not Exist")
    assert tx.receive(not_found, 1.0) == [Deliver(not_found)]
    assert tx.next_deadline() == 1.0
    assert tx.handle_timer(1.0) == [Terminated()]


def test_non_invite_client_tcp_timer_f() -> None:
    tx = ClientTransaction(non_invite(), reliable=True, now=5.0)
    tx.start()
    assert tx.handle_timer(36.9) == []
    assert tx.handle_timer(37.0) == [TimedOut("F"), Terminated()]


# --- transport errors, config ---------------------------------------------------------------


def test_transport_failed_informs_tu_and_terminates() -> None:
    tx = ClientTransaction(non_invite(), reliable=True, now=0.0)
    tx.start()
    assert tx.transport_failed("connection refused") == [
        TransportError("connection refused"),
        Terminated(),
    ]
    assert tx.next_deadline() is None
    assert tx.transport_failed("again") == []


def test_timer_config_validation() -> None:
    with pytest.raises(ValueError):
        TimerConfig(t1=0.0)
    with pytest.raises(ValueError):
        TimerConfig(t1=5.0, t2=4.0)


# --- request validation --------------------------------------------------------------------


def test_client_transaction_rejects_cseq_method_mismatch() -> None:
    # The parser already refuses this on the wire; a TU could still build it by hand.
    good = invite()
    headers = good.headers.copy()
    headers.set("CSeq", "314159 OPTIONS")
    bad = Request("INVITE", good.uri, headers)
    with pytest.raises(ValueError):
        ClientTransaction(bad, reliable=False, now=0.0)


# --- the dispatch table --------------------------------------------------------------------


def test_client_fire_table_has_a_handler_for_each_client_timer() -> None:
    fire = ClientTransaction._FIRE
    assert set(fire) == {Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.K}
    assert fire[Timer.A] is ClientTransaction._fire_a
    assert fire[Timer.K] is ClientTransaction._fire_k


def test_overriding_a_handler_without_restating_the_table_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"Louder\._fire_a is in no entry of Louder\._FIRE"):
        class Louder(ClientTransaction):
            def _fire_a(self, now: float) -> list[Output]:
                return []
