"""RFC 2543-style requests: no ``z9hG4bK`` branch, matched by RFC 3261 17.2.3's fallback rules.

The transaction is identified by Request-URI, To tag, From tag, Call-ID, CSeq and top Via; the
ACK of a non-2xx final carries the To tag of our response; a CANCEL matches everything but the
CSeq method (9.2). First the transaction table on its own, then the engine end to end.
"""

from __future__ import annotations

import pytest

from switch.sip import Request, Response, make_response, parse_message
from switch.sip.transaction import ServerTransaction, TransactionTable, server_key
from tests.switch.b2bua_harness import CUSTOMER, SDP, Harness

VIA = "SIP/2.0/UDP 127.0.0.1:5071"


def request(method: str = "INVITE", *, via: str = VIA, uri: str = "sip:447700900123@127.0.0.1",
            call: str = "r1", from_tag: str = "f1", to_tag: str | None = None, cseq: int = 1,
            cseq_method: str | None = None, body: bytes = b"") -> Request:
    to = "<sip:447700900123@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:15551234567@127.0.0.1>;tag={from_tag}\r\nTo: {to}\r\n"
            f"Call-ID: {call}\r\nCSeq: {cseq} {cseq_method or method}\r\n"
            f"Contact: <sip:caller@127.0.0.1:5071>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n")
    message = parse_message(head.encode() + body)
    assert isinstance(message, Request)
    return message


# --- the transaction table ------------------------------------------------------------------------


def started(table: TransactionTable, req: Request) -> ServerTransaction:
    tx = ServerTransaction(req, reliable=False, now=0.0)
    table.add(tx)
    tx.start()
    return tx


@pytest.mark.parametrize("via", [VIA, f"{VIA};branch=1234", f"{VIA};branch=z9hG4bk-lowercase"])
def test_a_retransmission_matches_and_every_other_field_tells_requests_apart(via: str) -> None:
    table = TransactionTable()
    tx = started(table, request(via=via))
    assert tx.key[0] == "rfc2543"
    assert table.match_request(request(via=via)) is tx
    # the same Via spelt differently (LWS, case) is the same Via
    respelt = via.replace("SIP/2.0/UDP 127.0.0.1:5071", "SIP / 2.0 / udp 127.0.0.1 : 5071")
    assert table.match_request(request(via=respelt)) is tx
    for other in (request(via=via, cseq=2), request(via=via, from_tag="f2"),
                  request(via=via, call="r2"), request(via=via, uri="sip:4477@127.0.0.1"),
                  request(via=via, to_tag="t9"), request("BYE", via=via, cseq=2, to_tag="t9"),
                  request("OPTIONS", via=via), request(via="SIP/2.0/UDP 127.0.0.1:5072")):
        assert table.match_request(other) is None


def test_a_cancel_matches_its_invite_but_not_as_a_retransmission() -> None:
    table = TransactionTable()
    tx = started(table, request())
    cancel = request("CANCEL")
    assert table.match_request(cancel) is None          # a CANCEL is its own transaction
    assert table.match_cancel(cancel) is tx             # ... that targets this INVITE
    assert table.match_cancel(request("CANCEL", cseq=2)) is None
    assert table.match_cancel(request("CANCEL", from_tag="f2")) is None
    cancel_tx = started(table, cancel)
    assert table.match_request(cancel) is cancel_tx and table.match_request(request()) is tx


def test_the_ack_of_a_non_2xx_matches_by_the_to_tag_of_our_response() -> None:
    table = TransactionTable()
    invite = request()
    tx = started(table, invite)
    ack = request("ACK", to_tag="srv1")
    assert table.match_request(ack) is None             # no final answer yet: nothing to ACK
    tx.respond(make_response(invite, 486, to_tag="srv1"), 1.0)
    assert table.match_request(request("ACK", to_tag="other")) is None
    assert table.match_request(request("ACK", to_tag="srv1", cseq=2)) is None
    assert table.match_request(ack) is tx
    assert tx.receive_request(ack, 1.5) == [] and tx.state == "confirmed"
    assert table.match_request(ack) is tx               # a repeated ACK is absorbed there too
    with pytest.raises(ValueError):
        tx.receive_request(request("ACK", to_tag="other"), 2.0)


def test_the_ack_of_a_non_2xx_to_a_reinvite_keeps_the_dialog_tag() -> None:
    table = TransactionTable()
    reinvite = request(to_tag="dlg", cseq=5)
    tx = started(table, reinvite)
    tx.respond(make_response(reinvite, 488, to_tag="ignored"), 1.0)   # the To tag is kept
    assert table.match_request(request("ACK", to_tag="dlg", cseq=5)) is tx


def test_rfc_2543_and_rfc_3261_keys_never_meet() -> None:
    table = TransactionTable()
    rfc3261 = started(table, request(via=f"{VIA};branch=z9hG4bK1"))
    rfc2543 = started(table, request())
    assert table.match_request(request(via=f"{VIA};branch=z9hG4bK1")) is rfc3261
    assert table.match_request(request()) is rfc2543
    no_sent_by = request()
    no_sent_by.headers.set("Via", "garbage")             # the strict parser refuses this one
    assert server_key(no_sent_by) is None               # no sent-by: nothing to match on


# --- the engine -----------------------------------------------------------------------------------


def statuses(sent) -> list[int]:
    return [t.message.status for t in sent if isinstance(t.message, Response)]


def test_an_rfc2543_invite_gets_its_100_and_its_final_answer_and_the_ack_ends_it() -> None:
    h = Harness.make()
    invite = request(body=SDP)
    assert statuses(h.feed(invite)) == [100]
    vendor_invite = h.requests_to(5070)[0]
    assert statuses(h.feed(invite)) == [100], "a retransmission gets the 100 again"
    assert len(h.requests_to(5070)) == 1, "... and starts no second call"
    h.vendor_reply(vendor_invite, 486)
    assert h.responses_to(call="r1") == [100, 100, 486]
    to_tag = h.a_tag("r1")
    assert statuses(h.feed(invite)) == [486], "the transaction repeats its final answer"
    assert h.feed(request("ACK", to_tag=to_tag)) == []
    h.advance(5.1)            # timer I (T4) after the ACK, not timer H (64*T1) without it
    assert not [tx for tx in h.engine.table if isinstance(tx, ServerTransaction)]
    assert h.cdr()["disconnect_reason"] == "busy"
    assert len(h.requests_to(5070)) == 1


def test_an_rfc2543_cancel_matches_and_its_attempt_is_487() -> None:
    h = Harness.make()
    h.feed(request(body=SDP))
    h.vendor_reply(h.requests_to(5070)[0], 180)
    sent = h.feed(request("CANCEL"))
    assert [(t.peer, t.message.status) for t in sent if isinstance(t.message, Response)] == \
        [(CUSTOMER, 200), (CUSTOMER, 487)]
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (487, "no_answer")
    assert [a["sip_code"] for a in record["attempts"]] == [487]


def test_an_rfc2543_call_runs_to_its_bye() -> None:
    h = Harness.make()
    h.feed(request(body=SDP))
    invite = h.requests_to(5070)[0]
    h.vendor_reply(invite, 200, body=SDP)
    to_tag = h.a_tag("r1")
    assert h.feed(request("ACK", to_tag=to_tag)) == []  # the 2xx's ACK goes to the call
    h.advance(3)
    assert h.responses_to(call="r1").count(200) == 1, "ACKed: no 2xx retransmission"
    sent = h.feed(request("BYE", to_tag=to_tag, cseq=2))
    assert 200 in statuses(sent) and h.requests_to(5070, "BYE")
    assert h.cdr()["disconnect_reason"] == "caller_bye"


def test_another_request_with_the_same_call_id_is_not_taken_for_the_invite() -> None:
    h = Harness.make()
    h.feed(request(body=SDP))
    options = h.feed(request("OPTIONS", cseq=2))
    assert statuses(options) == [200]
    info = h.feed(request("INFO", cseq=3, to_tag="nobody"))
    assert statuses(info) == [481]                      # not the INVITE's transaction
    h.vendor_reply(h.requests_to(5070)[0], 486)
    assert h.responses_to(call="r1") == [100, 200, 481, 486]
