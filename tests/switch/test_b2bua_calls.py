"""The B2BUA engine's call paths, sans-IO: every message and timer driven by the test.

The end-to-end versions with real SIPp peers live in test_switch_sipp_*.py; these pin the
protocol details (what goes where, in which order, with which CDR) without sockets or sleeping.
"""

from __future__ import annotations

from switch.b2bua import iso
from switch.sip import Request, Response
from tests.switch.b2bua_harness import ANSWER_SDP, CUSTOMER, Harness


def test_basic_call_relays_both_legs_and_writes_the_cdr_before_the_200_to_bye():
    h = Harness.make()
    sent = h.invite()
    assert [t.message.status for t in sent if isinstance(t.message, Response)] == [100]
    invite = h.requests_to(5070)[0]
    assert invite.uri == "sip:447700900123@127.0.0.1:5070"
    assert invite.headers.get("call-id") != "c1"          # an independent dialog
    assert invite.body.startswith(b"v=0")                  # the offer travels on

    h.advance(0.4)
    ring = h.vendor_reply(invite, 180)
    assert [(t.peer, t.message.status) for t in ring] == [(CUSTOMER, 180)]
    h.advance(2.0)
    answered = h.vendor_reply(invite, 200, body=ANSWER_SDP)
    acks = [t for t in answered if isinstance(t.message, Request)]
    assert [(t.peer[2], t.message.method) for t in acks] == [(5070, "ACK")]
    ok = [t.message for t in answered if isinstance(t.message, Response)]
    assert [r.status for r in ok] == [200] and ok[0].body == ANSWER_SDP
    h.from_customer("ACK", cseq=1)

    h.advance(30.0)
    assert h.finished == []
    bye = h.from_customer("BYE")
    assert h.requests_to(5070, "BYE"), "the vendor leg gets a BYE"
    record = h.cdr()
    # the 200 to the customer's BYE is part of the Finish: sent only once the CDR is durable
    assert any(isinstance(t.message, Response) and t.message.status == 200
               for t in h.finished[-1].then)
    assert any(t.message.status == 200 for t in bye if isinstance(t.message, Response))
    assert record["disconnect_reason"] == "caller_bye" and record["sip_code"] == 200
    assert record["customer"] == "acme" and record["vendor"] == "v1"
    assert record["duration_ms"] == 30_000 and record["pdd_ms"] == 400
    assert record["codec"] == "PCMA" and record["callee_e164"] == "447700900123"
    assert [a["vendor"] for a in record["attempts"]] == ["v1"]
    assert record["attempts"][0]["sip_code"] == 200
    assert h.engine.active_calls == 0


def test_vendor_bye_ends_both_legs_as_callee_bye():
    h = Harness.make()
    h.invite()
    invite = h.answer_call()
    h.advance(5)
    sent = h.vendor_request("BYE", invite)
    byes_to_customer = [t for t in sent if t.peer == CUSTOMER and isinstance(t.message, Request)]
    assert [t.message.method for t in byes_to_customer] == ["BYE"]
    assert byes_to_customer[0].message.uri == "sip:caller@127.0.0.1:5071"  # their Contact
    assert h.cdr()["disconnect_reason"] == "callee_bye"
    assert h.cdr()["duration_ms"] == 5000


def test_failover_on_503_then_answer_on_the_next_vendor():
    h = Harness.make()
    h.invite()
    first = h.requests_to(5070)[0]
    h.advance(0.1)
    h.vendor_reply(first, 503)
    assert h.requests_to(5070, "ACK"), "the 503 is ACKed by the transaction"
    assert h.requests_to(5072), "failover to v2"
    assert 503 not in h.responses_to()
    h.answer_call(port=5072)
    h.from_customer("BYE")
    record = h.cdr()
    assert [(a["vendor"], a["sip_code"]) for a in record["attempts"]] == [("v1", 503),
                                                                          ("v2", 200)]
    assert record["vendor"] == "v2"


def test_huntstop_code_stops_failover_and_answers_the_customer():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 486)
    assert h.requests_to(5072) == []
    assert h.responses_to()[-1] == 486
    assert h.cdr()["disconnect_reason"] == "busy"


def test_all_vendors_fail_gives_the_last_code():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 503)
    h.vendor_reply(h.requests_to(5072)[0], 404, port=5072)
    assert h.responses_to()[-1] == 404
    record = h.cdr()
    assert record["disconnect_reason"] == "rejected" and record["vendor"] == "v2"
    assert [a["sip_code"] for a in record["attempts"]] == [503, 404]


def test_invite_timeout_cancels_and_fails_over():
    h = Harness.make()
    h.invite()
    first = h.requests_to(5070)[0]
    h.vendor_reply(first, 100)
    h.advance(7.9)
    assert h.requests_to(5072) == []
    h.advance(0.2)
    cancels = h.requests_to(5070, "CANCEL")
    assert len(cancels) == 1 and cancels[0].headers.get("cseq") == "1 CANCEL"
    assert h.requests_to(5072), "next vendor tried after invite_timeout"
    h.vendor_reply(h.requests_to(5072)[0], 200, port=5072, body=ANSWER_SDP)
    assert h.responses_to()[-1] == 200


def test_invite_timeout_on_every_vendor_answers_408():
    h = Harness.make()
    h.invite()
    h.advance(8.1)
    h.advance(8.1)
    assert h.responses_to()[-1] == 408
    record = h.cdr()
    assert record["disconnect_reason"] == "invite_timeout"
    assert [a["sip_code"] for a in record["attempts"]] == [408, 408]


def test_a_late_answer_from_an_abandoned_vendor_is_acked_and_hung_up():
    h = Harness.make()
    h.invite()
    first = h.requests_to(5070)[0]
    h.advance(8.1)                     # no response at all: nothing to CANCEL yet
    assert h.requests_to(5070, "CANCEL") == []
    h.vendor_reply(first, 180)         # now it may be cancelled
    assert len(h.requests_to(5070, "CANCEL")) == 1
    h.vendor_reply(first, 200, body=ANSWER_SDP)
    assert h.requests_to(5070, "ACK") and h.requests_to(5070, "BYE")
    assert 200 not in h.responses_to()


def test_stop_gateway_after_invite_timeout_skips_the_vendor_for_a_while(tmp_path):
    from tests.switch.b2bua_harness import BASE_CONFIG, config

    cfg = config(base=BASE_CONFIG.replace(
        "call_progress_timeout = 60",
        "call_progress_timeout = 60\nstop_gateway_after_invite_timeout = true\n"
        "stop_gateway_period = 60"))
    h = Harness.make(cfg)
    h.invite()
    h.advance(8.1)                                   # v1 times out and is marked down
    h.vendor_reply(h.requests_to(5072)[0], 486, port=5072)
    h.advance(1)
    h.invite(call="c2", branch="b2")
    assert len(h.requests_to(5070)) == 1, "v1 is skipped while down"
    assert len(h.requests_to(5072)) == 2
    h.advance(61)
    h.invite(call="c3", branch="b3")
    assert len(h.requests_to(5070)) == 2, "v1 is tried again after stop_gateway_period"


def test_customer_cancel_before_answer_is_propagated():
    h = Harness.make()
    h.invite()
    invite = h.requests_to(5070)[0]
    h.vendor_reply(invite, 180)
    sent = h.from_customer("CANCEL", cseq=1, branch="a1", to_tag="")
    assert [t.message.status for t in sent if isinstance(t.message, Response)
            and t.peer == CUSTOMER] == [200, 487]
    assert len(h.requests_to(5070, "CANCEL")) == 1
    record = h.cdr()
    assert record["sip_code"] == 487 and record["disconnect_reason"] == "no_answer"
    h.vendor_reply(invite, 487)
    assert h.requests_to(5070, "ACK")
    assert h.engine.active_calls == 0


def test_ringing_past_call_progress_timeout_ends_the_call_without_failover():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 180)
    h.advance(60.1)
    assert h.requests_to(5070, "CANCEL") and h.requests_to(5072) == []
    assert h.responses_to()[-1] == 480
    assert h.cdr()["disconnect_reason"] == "no_answer"


def test_early_media_sdp_is_relayed_with_the_183():
    h = Harness.make()
    h.invite()
    sent = h.vendor_reply(h.requests_to(5070)[0], 183, body=ANSWER_SDP)
    assert [(t.message.status, t.message.body) for t in sent] == [(183, ANSWER_SDP)]


def test_200_is_retransmitted_to_the_customer_until_its_ack():
    h = Harness.make()
    h.invite()
    invite = h.requests_to(5070)[0]
    h.vendor_reply(invite, 200, body=ANSWER_SDP)
    assert h.responses_to().count(200) == 1
    h.advance(0.51)
    h.advance(1.01)
    assert h.responses_to().count(200) == 3
    h.from_customer("ACK", cseq=1)
    h.advance(10)
    assert h.responses_to().count(200) == 3


def test_a_customer_that_never_acks_the_200_is_hung_up_as_error_after_64_t1():
    h = Harness.make()
    h.invite()
    h.vendor_reply(h.requests_to(5070)[0], 200, body=ANSWER_SDP)
    t1 = h.engine.timer_config.t1
    for _ in range(63):                      # up to 63*T1: retransmissions only
        h.advance(t1)
    assert h.finished == [] and h.requests_to(5070, "BYE") == []
    assert h.responses_to().count(200) > 5   # 13.3.1.4: retransmitted, T1 doubling up to T2
    h.advance(t1 + 0.01)                     # just past 64*T1 without an ACK
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (200, "error")
    assert record["answer_ts"] is not None
    then = sorted((t.peer[2], t.message.method) for t in h.finished[-1].then)
    assert then == [(5070, "BYE"), (5071, "BYE")]   # both legs, once the CDR is durable
    assert h.engine.stats["error"] == 1 and h.engine.active_calls == 0


def test_a_vendor_2xx_retransmission_is_acked_again():
    h = Harness.make()
    h.invite()
    invite = h.answer_call()
    again = h.vendor_reply(invite, 200, body=ANSWER_SDP)
    assert [(t.peer[2], t.message.method) for t in again] == [(5070, "ACK")]
    assert again[0].message.headers.get("via") == h.requests_to(5070, "ACK")[0].headers.get("via")


def test_max_duration_sends_bye_to_both_legs_after_the_cdr():
    from tests.switch.b2bua_harness import BASE_CONFIG, config

    h = Harness.make(config(base=BASE_CONFIG.replace("max_duration = 3600",
                                                     "max_duration = 60")))
    h.invite()
    h.answer_call()
    h.advance(59)
    assert h.finished == []
    h.advance(1.5)
    record = h.cdr()
    assert record["disconnect_reason"] == "max_duration"
    assert 60_000 <= record["duration_ms"] <= 61_500
    then = [(t.peer[2], t.message.method) for t in h.finished[-1].then]
    assert sorted(then) == [(5070, "BYE"), (5071, "BYE")]


def test_reinvite_from_the_customer_passes_through_and_is_answered():
    h = Harness.make()
    h.invite()
    h.answer_call()
    sent = h.from_customer("INVITE", cseq=2, body=ANSWER_SDP)
    forwarded = [t.message for t in sent if t.peer[2] == 5070]
    assert [m.method for m in forwarded] == ["INVITE"]
    assert forwarded[0].headers.get("call-id") == h.requests_to(5070)[0].headers.get("call-id")
    assert forwarded[0].headers.get("cseq") == "2 INVITE"
    back = h.vendor_reply(forwarded[0], 200, body=ANSWER_SDP)
    assert [(t.peer[2], getattr(t.message, "method", None) or t.message.status)
            for t in back] == [(5070, "ACK"), (5071, 200)]


def test_update_from_the_vendor_passes_through():
    h = Harness.make()
    h.invite()
    invite = h.answer_call()
    sent = h.vendor_request("UPDATE", invite, cseq=5)
    assert [(t.peer, t.message.method) for t in sent if isinstance(t.message, Request)] == \
        [(CUSTOMER, "UPDATE")]
    update = next(t.message for t in sent if isinstance(t.message, Request))
    back = h.feed(f"""SIP/2.0 200 OK
Via: {update.headers.get('via')}
From: {update.headers.get('from')}
To: {update.headers.get('to')}
Call-ID: {update.headers.get('call-id')}
CSeq: {update.headers.get('cseq')}
Content-Length: 0

""")
    assert [(t.peer[2], t.message.status) for t in back] == [(5070, 200)]


def test_finished_calls_leave_no_timers_behind(monkeypatch):
    """A cancelled max-duration timer must not keep its call alive for an hour."""
    import switch.b2bua.tu as tu

    monkeypatch.setattr(tu, "COMPACT_AFTER", 50)
    h = Harness.make()
    for n in range(300):
        h.advance(0.02)    # 50 calls/s: under the customer's cps_limit
        h.invite(call=f"m{n}", branch=f"m{n}")
        h.vendor_reply(h.requests_to(5070)[-1], 200, body=ANSWER_SDP)
        h.from_customer("ACK", call=f"m{n}", cseq=1)
        h.from_customer("BYE", call=f"m{n}")
    assert [r.record["disconnect_reason"] for r in h.finished] == ["caller_bye"] * 300
    h.advance(40)          # past reaping and every transaction timer
    h.invite(call="last", branch="last")
    # 300 max-duration timers were cancelled; without compaction they would all still be here
    assert h.engine.pending_timers < 60


def test_cdr_times_are_wall_clock_while_timers_run_on_the_monotonic_now():
    """``now`` is monotonic (small numbers here); the wall clock steps back an hour mid-call.
    The max-duration timer still fires on the monotonic clock, the duration is what the call
    lasted, and the CDR's times are wall-clock as of when the record is written."""
    offset = [1_800_000_000.0]
    h = Harness.make(wall_offset=lambda: offset[0])
    h.now = 50.0
    h.invite()
    h.answer_call()                      # rings at 50.5, answered at 52.0
    offset[0] -= 3600.0                  # an operator or NTP steps the wall clock back
    h.advance(3599.0)
    assert h.finished == [], "a wall-clock step moves no timer"
    h.advance(1.0)                       # max_duration = 3600 after the answer
    record = h.cdr()
    assert record["disconnect_reason"] == "max_duration"
    assert record["duration_ms"] == 3_600_000 and record["pdd_ms"] == 500
    wall = offset[0]
    assert (record["start_ts"], record["answer_ts"], record["end_ts"]) == (
        iso(wall + 50.0), iso(wall + 52.0), iso(wall + 3652.0))
    assert record["attempts"][0]["start_ts"] == iso(wall + 50.0)
