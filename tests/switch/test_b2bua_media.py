"""The engine's side of media relaying (switch/b2bua/media.py), sans-IO: what it asks the relay,
what waits for the answers, what a relay failure does, the CDR's counters and media_timeout.

The relay is a function here: the ng replies are rtpengine-shaped dictionaries (docs/media-ng.md);
the relay process itself is tested in test_media_relay.py and end to end elsewhere."""

from __future__ import annotations

import pytest

from switch.b2bua.media import counters, last_packet
from switch.b2bua.tu import MediaRequest, MediaStep
from switch.sip import Request, Response
from tests.switch.b2bua_harness import ANSWER_SDP, BASE_CONFIG, SDP, Harness, config

RELAY_OFFER = ("v=0\r\no=- 1 2 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n"
               "m=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
RELAY_ANSWER = ("v=0\r\no=- 2 2 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n"
                "m=audio 20002 RTP/AVP 8\r\n")
KEY = "0123456789abcdef"


def _stream(packets: int, size: int, sent: int | None, last: int) -> dict:
    stream = {"flags": ["RTP"], "stats": {"packets": packets, "bytes": packets * size,
                                          "errors": 0}, "last packet": last}
    if sent is not None:
        stream["ratelab-sent"] = {"packets": sent, "bytes": sent * size}
    return stream


class Relay:
    """Answers media requests like a relay; ``down`` lists the commands that fail."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.commands: list[dict] = []
        self.down: set[str] = set()
        self.last = int(harness.now)  # "last packet", UNIX seconds

    def __call__(self, request: MediaRequest) -> dict | None:
        command = request.command
        self.commands.append(command)
        name = command["command"]
        assert request.step == MediaStep(name) and request.call_id == command["call-id"]
        if name in self.down:
            return None
        if name == "offer":
            return {"result": "ok", "sdp": RELAY_OFFER}
        if name == "answer":
            return {"result": "ok", "sdp": RELAY_ANSWER}
        tags = {command["from-tag"]: {"medias": [{"streams": [
                    _stream(50, 172, 48, self.last),
                    {"flags": ["RTCP"], "stats": {"packets": 3, "bytes": 300}}]}]},
                "v-tag": {"medias": [{"streams": [_stream(48, 172, 50, self.last)]}]}}
        return {"result": "ok", "tags": tags}

    def names(self) -> list[str]:
        return [c["command"] for c in self.commands]


def _harness(extra: str = "", base: str = BASE_CONFIG) -> tuple[Harness, Relay]:
    h = Harness.make(config(extra, base=base), media=True)
    return h, Relay(h)


def _to_customer(h: Harness, status: int) -> Response:
    return [t.message for t in h.sent if isinstance(t.message, Response)
            and t.message.status == status and t.peer[2] == 5071][-1]


def test_the_offer_goes_to_the_relay_before_any_vendor_gets_an_invite():
    h, relay = _harness()
    h.invite()
    assert h.requests_to(5070) == [] and len(h.media_requests) == 1
    h.relay_answers(relay)
    [offer] = relay.commands
    assert offer["command"] == "offer" and offer["call-id"] == "c1"
    assert offer["from-tag"] == "from-c1" and offer["sdp"] == SDP.decode()
    assert offer["flags"] == ["strict source"] and "ratelab-encryption" not in offer
    [invite] = h.requests_to(5070)
    assert invite.body == RELAY_OFFER.encode()  # the vendor is sent to the relay


def test_a_vendor_answer_reaches_the_customer_only_with_the_relays_sdp():
    h, relay = _harness()
    h.invite()
    h.relay_answers(relay)
    invite = h.requests_to(5070)[0]
    h.vendor_reply(invite, 183, body=ANSWER_SDP)
    assert 183 not in h.responses_to()  # waits for the relay
    h.relay_answers(relay)
    assert _to_customer(h, 183).body == RELAY_ANSWER.encode()
    h.vendor_reply(invite, 200, body=ANSWER_SDP)
    assert 200 not in h.responses_to() and h.requests_to(5070, "ACK")  # vendor ACKed at once
    h.relay_answers(relay)
    assert _to_customer(h, 200).body == RELAY_ANSWER.encode()
    answers = [c for c in relay.commands if c["command"] == "answer"]
    assert [c["to-tag"] for c in answers] == ["v-tag", "v-tag"]
    assert all(c["sdp"] == ANSWER_SDP.decode() for c in answers)


def test_the_cdr_waits_for_the_delete_and_carries_the_relays_counters():
    h, relay = _harness()
    h.invite()
    h.relay_answers(relay)
    h.answer_call()
    h.relay_answers(relay)
    h.from_customer("BYE", cseq=2)
    assert h.finished == [] and relay.names()[-1] != "delete"
    assert 200 not in [t.message.status for t in h.sent[-1:] if isinstance(t.message, Response)]
    h.relay_answers(relay)
    assert relay.names()[-1] == "delete" and relay.commands[-1]["from-tag"] == "from-c1"
    record = h.cdr()
    assert record["disconnect_reason"] == "caller_bye"
    assert record["rtp"] == {
        "customer": {"packets_in": 50, "packets_out": 48, "bytes_in": 8600, "bytes_out": 8256,
                     "encryption": 0},
        "vendor": {"packets_in": 48, "packets_out": 50, "bytes_in": 8256, "bytes_out": 8600,
                   "encryption": 0}}
    assert record["rtp_encryption"] == 0
    assert h.responses_to().count(200) >= 2  # the INVITE's and now the BYE's


def test_encryption_per_leg_travels_in_offer_and_answer():
    base = BASE_CONFIG.replace('max_duration = 3600\n',
                               f'max_duration = 3600\nrtp_encryption = 3\nrtp_key = "{KEY}"\n')
    h, relay = _harness("\n[media]\nrtp_encryption_mode = 1\nrtp_encryption_key = \"xk\"\n",
                        base=base)
    h.invite()
    h.relay_answers(relay)
    h.answer_call()
    h.relay_answers(relay)
    offer, answer = relay.commands[0], relay.commands[1]
    assert offer["ratelab-encryption"] == {"mode": 3, "key": KEY.encode().hex()}
    assert answer["ratelab-encryption"] == {"mode": 1, "key": b"xk".hex()}  # [media] default
    h.from_customer("BYE", cseq=2)
    h.relay_answers(relay)
    cdr = h.cdr()
    assert cdr["rtp_encryption"] == 1  # the vendor leg's, as docs/cdr.md says
    assert {leg: cdr["rtp"][leg]["encryption"] for leg in ("customer", "vendor")} == {
        "customer": 3, "vendor": 1}


def test_a_failed_offer_fails_the_call_with_503_and_no_vendor_is_tried():
    h, relay = _harness()
    relay.down.add("offer")
    h.invite()
    h.relay_answers(relay)
    assert h.requests_to(5070) == [] and h.requests_to(5072) == []
    assert 503 in h.responses_to()
    assert (h.cdr()["disconnect_reason"], h.cdr()["sip_code"]) == ("error", 503)
    assert h.engine.stats["media_error"] == 1
    assert "delete" in relay.names()  # whatever the relay made of it is cleaned up


def test_a_failed_answer_to_a_200_hangs_up_the_vendor_and_fails_the_call():
    h, relay = _harness()
    h.invite()
    h.relay_answers(relay)
    invite = h.requests_to(5070)[0]
    relay.down.add("answer")
    h.vendor_reply(invite, 200, body=ANSWER_SDP)
    h.relay_answers(relay)
    assert h.requests_to(5070, "BYE"), "the answered vendor leg is hung up"
    assert 503 in h.responses_to() and 200 not in h.responses_to()
    assert h.cdr()["disconnect_reason"] == "error"


def test_a_customer_cancel_while_the_offer_is_out_ends_the_call_and_no_invite_follows():
    h, relay = _harness()
    h.invite()
    h.from_customer("CANCEL", cseq=1, branch="a1", to_tag="")
    h.relay_answers(relay)
    assert h.requests_to(5070) == []
    assert 487 in h.responses_to()
    assert relay.names() == ["offer", "delete"]
    assert h.cdr()["disconnect_reason"] == "no_answer"


def test_media_timeout_ends_a_silent_call_but_not_a_live_one():
    h, relay = _harness("\n[media]\nmedia_timeout = 8\n")
    h.invite()
    h.relay_answers(relay)
    h.answer_call()
    h.relay_answers(relay)
    for _ in range(6):  # 12 s with media flowing: checks every 2 s find fresh packets
        relay.last = int(h.now)
        h.advance(2.0)
        h.relay_answers(relay)
    assert relay.names().count("query") >= 5 and h.finished == []
    relay.down.add("query")  # a relay that does not answer does not end the call
    h.advance(2.0)
    h.relay_answers(relay)
    assert h.finished == [] and h.engine.stats["media_check_failed"] == 1
    relay.down.clear()
    silent_since = relay.last
    for _ in range(10):
        h.advance(2.0)
        h.relay_answers(relay)
        if h.finished:
            break
    assert h.cdr()["disconnect_reason"] == "media_timeout"
    assert h.now - silent_since >= 8
    assert h.requests_to(5070, "BYE") and any(
        isinstance(t.message, Request) and t.message.method == "BYE" and t.peer[2] == 5071
        for t in h.sent)
    assert relay.names()[-1] == "delete"


def test_without_relays_sdp_passes_through_and_nothing_is_asked():
    h = Harness.make(config())
    h.invite()
    assert h.media_requests == [] and h.requests_to(5070)[0].body == SDP


@pytest.mark.parametrize("with_sent", [True, False])
def test_counters_read_ours_and_rtpengines_shape(with_sent):
    a = {"medias": [{"streams": [_stream(10, 100, 9 if with_sent else None, 5)]}]}
    b = {"medias": [{"streams": [_stream(9, 100, 10 if with_sent else None, 7)]}]}
    reply = {"tags": {"A": a, "B": b}}
    got = counters(reply, "A", "B")
    assert got["customer"] == {"packets_in": 10, "packets_out": 9, "bytes_in": 1000,
                               "bytes_out": 900}
    assert got["vendor"]["packets_in"] == 9 and got["vendor"]["packets_out"] == 10
    assert last_packet(reply) == 7
    assert counters({"result": "ok"}, "A", "B")["vendor"]["packets_in"] == 0
    assert last_packet({"tags": "junk"}) is None



def _answered(h: Harness, relay: Relay) -> Request:
    h.invite()
    h.relay_answers(relay)
    invite = h.answer_call()
    h.relay_answers(relay)
    return invite


def test_a_customer_reinvite_is_re_offered_and_its_answer_re_answered():
    h, relay = _harness()
    _answered(h, relay)
    hold = SDP.replace(b"m=audio 6000", b"m=audio 6100")
    h.from_customer("INVITE", cseq=2, body=hold)
    assert len(h.requests_to(5070)) == 1  # waits for the relay
    h.relay_answers(relay)
    offer = relay.commands[-1]
    assert (offer["command"], offer["from-tag"], offer["to-tag"]) == ("offer", "from-c1", "v-tag")
    assert offer["sdp"] == hold.decode() and "ratelab-encryption" not in offer
    reinvite = h.requests_to(5070)[-1]
    assert reinvite.body == RELAY_OFFER.encode()
    h.vendor_reply(reinvite, 200, body=ANSWER_SDP)
    assert [s for s in h.responses_to() if s == 200] == [200]  # only the first call's so far
    h.relay_answers(relay)
    answer = relay.commands[-1]
    assert (answer["command"], answer["from-tag"], answer["to-tag"]) == \
        ("answer", "from-c1", "v-tag")
    assert _to_customer(h, 200).body == RELAY_ANSWER.encode()


def test_a_vendor_update_is_re_offered_from_the_vendors_tag():
    h, relay = _harness()
    invite = _answered(h, relay)
    sent = h.vendor_request("UPDATE", invite, cseq=5, body=ANSWER_SDP)
    assert not any(isinstance(t.message, Request) and t.peer[2] == 5071 for t in sent)
    sent = h.relay_answers(relay)
    assert relay.commands[-1]["from-tag"] == "v-tag" and relay.commands[-1]["to-tag"] == "from-c1"
    [update] = [t.message for t in sent if isinstance(t.message, Request)]
    assert update.method == "UPDATE" and update.body == RELAY_OFFER.encode()


def test_a_failed_re_offer_answers_488_and_the_call_goes_on():
    h, relay = _harness()
    _answered(h, relay)
    relay.down.add("offer")
    h.from_customer("INVITE", cseq=2, body=SDP)
    h.relay_answers(relay)
    assert 488 in h.responses_to() and len(h.requests_to(5070)) == 1
    assert h.finished == [] and h.engine.stats["media_error"] == 1
