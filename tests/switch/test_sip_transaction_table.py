"""RFC 3261 sections 17.1.3 and 17.2.3: transaction keys and matching in TransactionTable.

Messages are built from literal SIP text (tests/switch/sip_traces.py) so each test reads like a
trace. Defaults: T1 = 0.5 s, T2 = 4 s, T4 = 5 s, so 64*T1 = 32 s.
"""

from __future__ import annotations

import pytest

from switch.sip.message import Request, make_response
from switch.sip.transaction import (
    ClientTransaction,
    Send,
    ServerTransaction,
    Terminated,
    TimedOut,
    TransactionTable,
    client_key,
    sent_by,
    server_key,
)
from tests.switch.sip_traces import ack_for, invite, non_invite, req, response_to

# --- keys (17.1.3, 17.2.3) -----------------------------------------------------------------


def test_keys() -> None:
    request = invite(host="PC33.Atlanta.Example.com:5060")
    assert server_key(request) == ("z9hG4bK776asdhds", "pc33.atlanta.example.com:5060", "INVITE")
    # No magic cookie: the RFC 2543 key (17.2.3), not None
    assert server_key(invite(branch="nocookie"))[0] == "rfc2543"
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
