"""RFC 3261 section 17 transactions: every timer path with explicit ``now``, no sleeping.

Messages are built from literal SIP text so each test reads like a trace. Defaults: T1 = 0.5 s,
T2 = 4 s, T4 = 5 s, so 64*T1 = 32 s.
"""

from __future__ import annotations

import textwrap

import pytest

from switch.sip.message import Request, Response, make_response, parse_message
from switch.sip.transaction import (
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransactionTable,
    TransportError,
    client_key,
    sent_by,
    server_key,
)


def sip(text: str) -> Request | Response:
    """Parse a SIP trace written with plain newlines and indentation; adds Content-Length: 0."""
    lines = textwrap.dedent(text).strip("\n").split("\n")
    if not any(line.lower().startswith("content-length:") for line in lines):
        lines.append("Content-Length: 0")
    return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())


def req(text: str) -> Request:
    msg = sip(text)
    assert isinstance(msg, Request)
    return msg


def resp(text: str) -> Response:
    msg = sip(text)
    assert isinstance(msg, Response)
    return msg


# A B2BUA-style INVITE that came through a proxy: two Vias, two Routes.
INVITE = """
    INVITE sip:bob@biloxi.example.com SIP/2.0
    Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds
    Via: SIP/2.0/UDP client.atlanta.example.com;branch=z9hG4bKold
    Max-Forwards: 70
    Route: <sip:p1.example.com;lr>
    Route: <sip:p2.example.com;lr>
    To: Bob <sip:bob@biloxi.example.com>
    From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
    Call-ID: a84b4c76e66710@pc33.atlanta.example.com
    CSeq: 314159 INVITE
    Contact: <sip:alice@pc33.atlanta.example.com>
    Content-Type: application/sdp
"""


def invite(
    branch: str = "z9hG4bK776asdhds", host: str = "pc33.atlanta.example.com:5060"
) -> Request:
    text = INVITE.replace("z9hG4bK776asdhds", branch).replace("pc33.atlanta.example.com:5060", host)
    return req(text)


def response_to(
    request: Request, status: int, reason: str, to_tag: str | None = "a6c85cf"
) -> Response:
    """A response as the far end would write it (a wire trace, not make_response)."""
    via = request.headers.get_all("Via")
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in via]
    to = request.headers.get("To")
    lines.append(f"To: {to};tag={to_tag}" if to_tag else f"To: {to}")
    for name in ("From", "Call-ID", "CSeq"):
        lines.append(f"{name}: {request.headers.get(name)}")
    return resp("\n".join(lines))


def non_invite(method: str = "OPTIONS", branch: str = "z9hG4bKopt1") -> Request:
    return req(f"""
        {method} sip:carrier.example.com SIP/2.0
        Via: SIP/2.0/UDP sw1.example.com:5060;branch={branch}
        Max-Forwards: 70
        To: <sip:carrier.example.com>
        From: <sip:sw1.example.com>;tag=99
        Call-ID: opt-1@sw1.example.com
        CSeq: 7 {method}
    """)


def ack_for(request: Request, to_tag: str, branch: str | None = None) -> Request:
    """The ACK a UAC sends: same branch for a non-2xx final, a new one (``branch``) for a 2xx."""
    via = request.headers.get_all("Via")[0]
    if branch is not None:
        via = via.replace("z9hG4bK776asdhds", branch)
    return req(f"""
        ACK {request.uri} SIP/2.0
        Via: {via}
        Max-Forwards: 70
        To: {request.headers.get("To")};tag={to_tag}
        From: {request.headers.get("From")}
        Call-ID: {request.headers.get("Call-ID")}
        CSeq: {request.headers.get("CSeq").split()[0]} ACK
    """)


def fire_times(tx: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, list]]:
    """Drive the timers exactly at each deadline until ``until``; returns (time, outputs)."""
    seen = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        seen.append((deadline, tx.handle_timer(deadline)))
    return seen


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


def test_server_transaction_rejects_ack_and_rfc2543_requests() -> None:
    ack = ack_for(invite(), to_tag="x")
    with pytest.raises(ValueError):
        ServerTransaction(ack, reliable=False, now=0.0)
    with pytest.raises(ValueError):
        ServerTransaction(invite(branch="1234"), reliable=False, now=0.0)


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


# --- keys (17.1.3, 17.2.3) -----------------------------------------------------------------


def test_keys() -> None:
    request = invite(host="PC33.Atlanta.Example.com:5060")
    assert server_key(request) == ("z9hG4bK776asdhds", "pc33.atlanta.example.com:5060", "INVITE")
    assert server_key(invite(branch="nocookie")) is None
    assert client_key(response_to(request, 180, "Ringing")) == ("z9hG4bK776asdhds", "INVITE")
    assert client_key(response_to(invite(branch="nocookie"), 180, "Ringing")) is None
    assert sent_by("SIP/2.0/TLS h.example.com ;branch=z9hG4bK1") == "h.example.com"
    assert sent_by("SIP/2.0/UDP 10.0.0.1 : 5062;branch=z9hG4bK1") == "10.0.0.1:5062"


# --- TransactionTable ----------------------------------------------------------------------


def cancel_for(request: Request) -> Request:
    return req(f"""
        CANCEL {request.uri} SIP/2.0
        Via: {request.headers.get_all("Via")[0]}
        Max-Forwards: 70
        To: {request.headers.get("To")}
        From: {request.headers.get("From")}
        Call-ID: {request.headers.get("Call-ID")}
        CSeq: 314159 CANCEL
    """)


def test_table_server_matching_by_branch_sent_by_and_method() -> None:
    table = TransactionTable()
    a = invite(branch="z9hG4bKsame", host="a.example.com:5060")
    b = invite(branch="z9hG4bKsame", host="b.example.com:5060")  # same branch, other host
    tx_a = ServerTransaction(a, reliable=False, now=0.0)
    tx_b = ServerTransaction(b, reliable=False, now=0.0)
    table.add(tx_a)
    table.add(tx_b)
    assert len(table) == 2
    assert table.match_request(a) is tx_a
    assert table.match_request(b) is tx_b
    assert table.match_request(invite(branch="z9hG4bKnew", host="a.example.com:5060")) is None
    assert table.match_request(invite(branch="old-2543-branch")) is None
    with pytest.raises(ValueError):
        table.add(ServerTransaction(a, reliable=False, now=1.0))


def test_table_cancel_does_not_match_invite_but_match_cancel_finds_it() -> None:
    table = TransactionTable()
    request = invite()
    inv_tx = ServerTransaction(request, reliable=False, now=0.0)
    table.add(inv_tx)
    cancel = cancel_for(request)
    assert table.match_request(cancel) is None  # CANCEL is its own transaction
    assert table.match_cancel(cancel) is inv_tx
    cancel_tx = ServerTransaction(cancel, reliable=False, now=0.1)
    table.add(cancel_tx)
    assert table.match_request(cancel) is cancel_tx
    assert table.match_request(request) is inv_tx


def test_table_ack_for_non_2xx_matches_invite_and_ack_for_2xx_does_not() -> None:
    table = TransactionTable()
    request = invite()
    tx = ServerTransaction(request, reliable=False, now=0.0)
    table.add(tx)
    tx.start()
    tx.respond(make_response(request, 486, "Busy Here", to_tag="srv1"), 1.0)
    ack_non2xx = ack_for(request, to_tag="srv1")
    ack_2xx = ack_for(request, to_tag="srv1", branch="z9hG4bKnewbranch")
    assert table.match_request(ack_non2xx) is tx
    assert table.match_request(ack_2xx) is None  # goes straight to the TU
    tx.receive_request(ack_non2xx, 2.0)
    assert tx.state == "confirmed"


def test_table_client_matching_by_branch_and_cseq_method() -> None:
    table = TransactionTable()
    request = invite()
    inv_tx = ClientTransaction(request, reliable=False, now=0.0)
    table.add(inv_tx)
    cancel = cancel_for(request)
    assert table.match_response(response_to(request, 180, "Ringing")) is inv_tx
    ok_cancel = response_to(cancel, 200, "OK")
    assert table.match_response(ok_cancel) is None  # same branch, CSeq method CANCEL
    cancel_tx = ClientTransaction(cancel, reliable=False, now=0.5)
    table.add(cancel_tx)
    assert table.match_response(ok_cancel) is cancel_tx
    assert table.match_response(response_to(invite(branch="z9hG4bKx"), 180, "Ringing")) is None


def test_table_next_deadline_is_min_and_handle_timers_drops_terminated() -> None:
    table = TransactionTable()
    assert table.next_deadline() is None
    inv = invite()
    udp_client = ClientTransaction(inv, reliable=False, now=0.0)  # A at 0.5
    tcp_client = ClientTransaction(non_invite(), reliable=True, now=0.2)  # F at 32.2
    srv_req = non_invite("BYE", branch="z9hG4bKbye")
    server = ServerTransaction(srv_req, reliable=True, now=0.0)  # nothing armed yet
    for tx in (udp_client, tcp_client, server):
        table.add(tx)
        tx.start()
    assert table.next_deadline() == 0.5
    assert table.handle_timers(0.4) == []

    server.respond(make_response(srv_req, 200, "OK", to_tag="t"), 0.3)  # J = 0 -> 0.3
    assert table.next_deadline() == 0.3
    results = table.handle_timers(0.5)
    assert (server, [Terminated()]) in results
    assert (udp_client, [Send(inv)]) in results
    assert len(results) == 2
    assert len(table) == 2  # the terminated server transaction is gone
    assert table.match_request(srv_req) is None
    assert table.next_deadline() == 1.5

    # A client terminated by a 2xx stays in the table until removed, but never matches again.
    udp_client.receive(response_to(inv, 200, "OK"), 0.6)
    assert table.match_response(response_to(inv, 200, "OK")) is None
    assert table.remove_terminated() == [udp_client]
    assert table.next_deadline() == 32.2
    results = table.handle_timers(32.2)
    assert results == [(tcp_client, [TimedOut("F"), Terminated()])]
    assert len(table) == 0


def test_client_transaction_rejects_cseq_method_mismatch() -> None:
    # The parser already refuses this on the wire; a TU could still build it by hand.
    good = invite()
    headers = good.headers.copy()
    headers.set("CSeq", "314159 OPTIONS")
    bad = Request("INVITE", good.uri, headers)
    with pytest.raises(ValueError):
        ClientTransaction(bad, reliable=False, now=0.0)


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
