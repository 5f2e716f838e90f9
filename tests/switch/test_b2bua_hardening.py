"""The engine against hostile but parsable input, sans-IO: long numbers, odd headers, CANCEL codes.

Every case is driven through the harness (tests/switch/b2bua_harness.py), which serializes and
re-parses everything the engine sends, so a header the engine could not write shows up here.
"""

from __future__ import annotations

import pytest

from switch.b2bua import Transmit
from switch.sip import Headers, Request, Response, parse_message, serialize, tag
from tests.switch.b2bua_harness import BASE_CONFIG, CUSTOMER, SDP, Harness, config


def statuses(sent) -> list[int]:
    return [t.message.status for t in sent if isinstance(t.message, Response)]


def final(sent) -> Response:
    return [t.message for t in sent if isinstance(t.message, Response)][-1]


def unparsed(fields: list[tuple[str, str]]) -> Headers:
    """Header fields exactly as given, bare CR or LF included.

    The strict parser (switch.sip.message) refuses most of these messages itself; the engine
    must not depend on that, so these tests hand it messages the parser never saw.
    """
    return Headers._trusted([(name.lower(), name, value) for name, value in fields])


def raw_invite(*, uri: str = "sip:447700900123@127.0.0.1:5060",
               via: str = "SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKh1",
               from_: str = "<sip:15551234567@127.0.0.1>;tag=from-h1",
               to: str = "<sip:447700900123@127.0.0.1>", call_id: str = "h1",
               contact: str | None = "<sip:caller@127.0.0.1:5071>") -> Request:
    """An INVITE with any header as given (see :func:`unparsed`)."""
    fields = [("Via", via), ("Max-Forwards", "70"), ("From", from_), ("To", to),
              ("Call-ID", call_id), ("CSeq", "1 INVITE")]
    if contact is not None:
        fields.append(("Contact", contact))
    fields += [("Content-Type", "application/sdp"), ("Content-Length", str(len(SDP)))]
    return Request("INVITE", uri, unparsed(fields), SDP)


def no_line_breaks_in_headers(sent) -> None:
    for t in sent:
        head = serialize(t.message).split(b"\r\n\r\n", 1)[0]
        assert all(b"\r" not in line and b"\n" not in line for line in head.split(b"\r\n"))


# --- the dialled number's length -----------------------------------------------------------------


def test_a_number_longer_than_max_number_digits_is_484_no_route_before_routing(monkeypatch):
    import switch.b2bua.engine as engine

    def no_routing(*args, **kwargs):
        raise AssertionError("routing work for a number that is too long")

    h = Harness.make()
    monkeypatch.setattr(engine, "plan_route", no_routing)
    sent = h.invite("44" + "7" * 31)                       # 33 digits, the default limit is 32
    assert statuses(sent) == [100, 484]
    assert final(sent).reason == "Address Incomplete"
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (484, "no_route")
    assert record["attempts"] == [] and record["callee_e164"] == "44" + "7" * 31
    assert h.engine.stats["number_too_long"] == 1 and h.engine.stats["no_route"] == 1
    assert h.engine.active_calls == 0 and h.requests_to(5070) == []


def test_the_limit_counts_routed_digits_tech_prefix_stripped_and_is_configurable():
    extra = """
[[mapping_gateway]]
name = "zeta"
addresses = ["127.0.0.2"]
tech_prefix = "900"
"""
    cfg = config(extra, base=BASE_CONFIG.replace("call_progress_timeout = 60",
                                                 "call_progress_timeout = 60\n"
                                                 "max_number_digits = 12"))
    h = Harness.make(cfg)
    # 12 digits after the tech prefix (15 as dialled), punctuation ignored: routed
    zeta = ("udp", "127.0.0.2", 5071)
    h.invite("900+44-7700-900123", peer=zeta, call="ok", branch="ok")
    assert h.requests_to(5070), "12 routed digits are within the limit"
    h.invite("4477009001234", call="long", branch="long")      # 13 digits
    assert h.responses_to(call="long") == [100, 484]
    assert h.engine.stats["number_too_long"] == 1


# --- every abandoned vendor attempt has a code ----------------------------------------------------


def attempt_codes(record: dict) -> list[int]:
    return [a["sip_code"] for a in record["attempts"]]


@pytest.mark.parametrize("vendor_rang", [True, False])
def test_an_attempt_ended_by_the_customers_cancel_is_recorded_as_487(vendor_rang: bool):
    h = Harness.make()
    h.invite()
    invite = h.requests_to(5070)[0]
    if vendor_rang:
        h.vendor_reply(invite, 180)
    h.from_customer("CANCEL", cseq=1, branch="a1", to_tag="")
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (487, "no_answer")
    assert attempt_codes(record) == [487]
    # Before any answer the attempt cannot be cancelled yet (9.1); the CANCEL goes once it rings.
    assert len(h.requests_to(5070, "CANCEL")) == (1 if vendor_rang else 0)
    if not vendor_rang:
        h.vendor_reply(invite, 180)
        assert len(h.requests_to(5070, "CANCEL")) == 1


def test_an_attempt_failed_over_then_cancelled_keeps_each_code():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 503)
    h.vendor_reply(h.requests_to(5072)[0], 183, port=5072)
    h.from_customer("CANCEL", cseq=1, branch="a1", to_tag="")
    assert attempt_codes(h.cdr()) == [503, 487]


@pytest.mark.parametrize("vendor_rang", [True, False])
def test_hangup_all_records_its_cancelled_attempts_as_487(vendor_rang: bool):
    h = Harness.make()
    h.invite()
    if vendor_rang:
        h.vendor_reply(h.requests_to(5070)[0], 180)
    h._take(h.engine.hangup_all(h.now))
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (503, "shutdown")
    assert attempt_codes(record) == [487]


def test_no_path_that_ends_a_call_leaves_an_attempt_without_a_code():
    """Timeouts (408), progress timeout (487), failures, answers, CANCEL, shutdown."""
    h = Harness.make()
    h.invite(call="t")
    h.advance(8.1)                                            # v1: invite timeout
    h.vendor_reply(h.requests_to(5072)[0], 180, port=5072)
    h.advance(60.1)                                           # v2: progress timeout
    h.invite(call="c", branch="c")
    h.from_customer("CANCEL", call="c", cseq=1, branch="c", to_tag="")
    h.invite(call="f", branch="f")
    h.vendor_reply(h.requests_to(5070)[-1], 486)
    h.invite(call="s", branch="s")
    h._take(h.engine.hangup_all(h.now))
    records = {f.record["call_id"]: f.record for f in h.finished}
    assert attempt_codes(records["t"]) == [408, 487]
    assert attempt_codes(records["c"]) == [487]
    assert attempt_codes(records["f"]) == [486]
    assert attempt_codes(records["s"]) == [487]


# --- no 500 from what parses: answers, not exceptions ---------------------------------------------


@pytest.mark.parametrize("peer", [CUSTOMER, ("tcp", "127.0.0.1", 40001)])
def test_a_via_transport_the_switch_does_not_speak_is_answered_where_it_came_from(peer):
    h = Harness.make()
    via = f"SIP/2.0/XYZ {peer[1]}:{peer[2]};branch=z9hG4bKx1"
    sent = h.feed(raw_invite(via=via), peer)
    assert statuses(sent) == [100]
    assert {t.peer for t in sent if isinstance(t.message, Response)} == {peer}
    h.vendor_reply(h.requests_to(5070)[0], 486)
    assert h.responses_to(peer, call="h1") == [100, 486]


@pytest.mark.parametrize(("change", "status", "phrase", "counter"), [
    ({"via": "garbage"}, 400, "Bad Via", "bad_via"),
    ({"from_": "garbage;tag=1"}, 400, "Bad From", "bad_from"),
    ({"from_": "<sip:1555@h>;tag=a\rb"}, 400, "Bad From", "bad_from"),
    ({"to": "<>"}, 400, "Bad To", "bad_to"),
    ({"to": "<sip:4477@h>\nX-Injected: 1"}, 400, "Bad To", "bad_to"),
    ({"call_id": "h\r1"}, 400, "Bad Call-ID", "bad_call_id"),
    ({"contact": "*"}, 400, "Bad Contact", "bad_contact"),
    ({"contact": "<tel:+15551234567>"}, 400, "Bad Contact", "bad_contact"),
    ({"uri": "tel:+447700900123"}, 416, "Unsupported URI Scheme", "unsupported_uri_scheme"),
    ({"uri": "urn:service:sos"}, 416, "Unsupported URI Scheme", "unsupported_uri_scheme"),
])
def test_a_header_the_engine_cannot_use_gets_a_reason_naming_it(change, status, phrase, counter):
    h = Harness.make()
    # Straight to the engine: the answer copies the peer's bad header, so the strict parser of
    # the harness would refuse to read it back.
    sent = h.engine.receive(raw_invite(**change), CUSTOMER, h.now)
    assert all(isinstance(t, Transmit) for t in sent)
    assert [(t.peer, t.message.status, t.message.reason) for t in sent] == \
        [(CUSTOMER, status, phrase)]
    assert h.engine.stats[counter] == 1
    assert h.finished == [] and h.requests_to(5070) == [] and h.engine.active_calls == 0
    no_line_breaks_in_headers(sent)


def test_a_line_break_in_any_other_header_is_refused_too():
    h = Harness.make()
    invite = raw_invite()
    invite.headers._items.append(("timestamp", "Timestamp", "1\r\nX-Injected: 1"))
    sent = h.engine.receive(invite, CUSTOMER, h.now)
    assert [(t.message.status, t.message.reason) for t in sent] == [(400, "Bad Header Timestamp")]
    assert h.engine.stats["bad_header"] == 1
    no_line_breaks_in_headers(sent)


def test_an_ack_the_engine_cannot_use_is_dropped_and_counted():
    h = Harness.make()
    ack = Request("ACK", "sip:sw1@127.0.0.1", unparsed([
        ("Via", "garbage"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>;tag=2"),
        ("Call-ID", "x"), ("CSeq", "1 ACK")]))
    assert h.engine.receive(ack, CUSTOMER, h.now) == []
    assert h.engine.stats["bad_via"] == 1


def test_a_sip_uri_without_contact_and_a_plain_from_still_make_a_call():
    h = Harness.make()
    sent = h.feed(raw_invite(contact=None, from_="sip:15551234567@127.0.0.1;tag=p1"))
    assert statuses(sent) == [100]
    invite = h.answer_call()
    h.advance(1)
    h.vendor_request("BYE", invite)
    bye = [t.message for t in h.sent if t.peer == CUSTOMER and isinstance(t.message, Request)
           and t.message.method == "BYE"]
    assert [b.uri for b in bye] == ["sip:15551234567@127.0.0.1"]   # the From URI, no Contact


def flatten(actions) -> list[Transmit]:
    """What the shell would send: Transmits now, and each Finish's messages after its CDR."""
    out: list[Transmit] = []
    for action in actions:
        out.extend([action] if isinstance(action, Transmit) else action.then)
    return out


def test_line_breaks_and_odd_bytes_from_the_vendor_reach_no_header():
    h = Harness.make()
    h.invite()
    invite = h.requests_to(5070)[0]
    hv = invite.headers
    ok = Response(200, "OK", unparsed([
        ("Via", hv.get("via")), ("From", hv.get("from")),
        ("To", f"{hv.get('to')};tag=v\nX-Injected: 1"), ("Call-ID", hv.get("call-id")),
        ("CSeq", hv.get("cseq")), ("Contact", "<sip:vendor@127.0.0.1:5070 \udcff>"),
        ("Content-Length", "0")]))
    sent = flatten(h.engine.receive(ok, ("udp", "127.0.0.1", 5070), h.now))
    assert [(t.peer[2], getattr(t.message, "method", None)) for t in sent] == \
        [(5070, "ACK"), (5071, None)]
    h.from_customer("ACK", cseq=1)
    h.advance(1)
    a_tag = tag(sent[1].message.headers.get("to"))
    bye = parse_message(
        b"BYE sip:sw1@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKb9"
        b"\r\nFrom: <sip:15551234567@127.0.0.1>;tag=from-c1\r\nTo: <sip:447700900123@127.0.0.1>"
        b";tag=" + a_tag.encode() + b"\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n"
        b"Content-Length: 0\r\n\r\n")
    actions = h.engine.receive(bye, CUSTOMER, h.now)
    sent += flatten(actions)
    to_vendor = [t.message for t in sent if t.peer[2] == 5070 and isinstance(t.message, Request)]
    assert [m.method for m in to_vendor] == ["ACK", "BYE"]
    assert to_vendor[1].uri == invite.uri       # an unusable Contact keeps the old target
    assert tag(to_vendor[1].headers.get("to")) == "v X-Injected: 1"   # one line, as one tag
    no_line_breaks_in_headers(sent)
    assert [a.record["disconnect_reason"] for a in actions if not isinstance(a, Transmit)] == \
        ["caller_bye"]


def test_a_caller_that_is_not_a_clean_uri_user_is_escaped_towards_the_vendor():
    h = Harness.make()
    h.feed(raw_invite(from_='"x" <sip:+1(555)#\xe9@127.0.0.1>;tag=e1'))
    vendor_from = h.requests_to(5070)[0].headers.get("from")
    assert vendor_from.startswith("<sip:+1(555)%23%C3%A9@127.0.0.1>;tag=")
    h.vendor_reply(h.requests_to(5070)[0], 486)   # a huntstop code: the call ends here
    assert h.cdr()["caller"] == "+1(555)#\xe9"        # the CDR keeps it as received


# --- a retransmitted INVITE after our 2xx, and a merged request ----------------------------------


def test_an_invite_retransmitted_after_the_2xx_repeats_the_2xx_and_starts_nothing():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 200, body=b"")
    again = h.invite()                   # the customer missed our 100 and 200
    assert statuses(again) == [200]
    assert len(h.requests_to(5070)) == 1, "no second vendor attempt"
    assert h.engine.stats["invite_retransmission"] == 1 and h.engine.active_calls == 1
    h.from_customer("ACK", cseq=1)
    assert statuses(h.invite()) == []    # after the ACK: absorbed


@pytest.mark.parametrize("cseq", [1, 2])
def test_another_invite_reusing_a_calls_call_id_and_from_tag_is_482(cseq: int):
    h = Harness.make()
    h.invite()
    sent = h.invite(cseq=cseq, branch="other")        # same CSeq on another branch: merged
    assert statuses(sent)[-1] == 482
    assert h.engine.stats["merged_request"] == 1 and len(h.requests_to(5070)) == 1
