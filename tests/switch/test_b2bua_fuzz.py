"""Fuzzing the engine's receive path: hostile but parsable SIP from customers, vendors, strangers.

Messages are made as bytes and parsed with :func:`switch.sip.parse_message`, so they are what the
transport would hand the engine; what the parser refuses is skipped here (``assume``): answering
it is the parser's and the transport's job, tested with them. Every message goes into an engine
that already has calls in progress (one answered, one ringing), so a hostile message can land in
a dialog, on a transaction or on nothing, and the calls then go on (a vendor answers, the
customer hangs up, every timer fires). Whatever comes in:

- nothing raises out of ``Engine.receive`` or ``Engine.handle_timers``;
- the switch never answers 500 (the shell's answer to a handler exception);
- everything the switch sends serializes, and parses back (a peer could read it).

Three sources of messages: requests and responses assembled from hostile field values (missing
tags and URIs, odd Via transports and branches, Max-Forwards 0, non-SIP Request-URIs, numbers of
up to 60,000 digits, broken SDP, non-UTF-8 bytes, responses matching no transaction), the torture
corpus (``tests/switch/torture``) as it is, and that corpus mutated line by line.
``B2BUA_FUZZ_EXAMPLES`` sets the number of examples of each hypothesis test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from switch.b2bua.build import Peer
from switch.sip import Request, Response, SipParseError, parse_message, serialize, tag
from tests.switch.b2bua_harness import ANSWER_SDP, SDP, Harness, response_bytes

EXAMPLES = int(os.environ.get("B2BUA_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

CORPUS = sorted((Path(__file__).parent / "torture").glob("*/*.sip"))


def _parses(path: Path) -> bool:
    try:
        parse_message(path.read_bytes())
    except SipParseError:
        return False
    return True


#: The corpus messages the parser takes: the seeds of the mutations.
PARSABLE = [path for path in CORPUS if _parses(path)]

CUSTOMER = Peer("udp", "127.0.0.1", 5071)
#: What the vendor's 200 carries once the hostile message is in: an SDP answer, or none (the
#: offer, maybe a broken one, is then what the codec is read from).
ANSWERS = [ANSWER_SDP, b""]
PEERS = [CUSTOMER, Peer("tcp", "127.0.0.1", 5071), Peer("udp", "127.0.0.1", 5070),
         Peer("udp", "127.0.0.1", 5072), Peer("udp", "10.9.9.9", 5060)]


def _text(value: str) -> bytes:
    # Lone surrogates stand for bytes that are not UTF-8, as the parser decodes them.
    return value.encode("utf-8", "surrogateescape")


# --- an engine with calls in progress ---------------------------------------------------------


def busy_switch() -> Harness:
    """Call c1 answered and ACKed (on v1), call c2 ringing (on v1)."""
    h = Harness.make()
    h.invite(call="c1", branch="a1")
    h.answer_call()
    h.invite(number="447700900999", call="c2", branch="a2")
    h.vendor_reply(h.requests_to(5070)[-1], 180)
    return h


def go_on(h: Harness, answer: bytes = ANSWER_SDP) -> None:
    """What happens next on the calls in progress, then every timer: nothing may break.

    The vendor's 200 carries ``answer`` (without one, the codec comes from the offer)."""
    h.vendor_reply(h.requests_to(5070)[-1], 200, body=answer)   # c2 (or a new call)
    h.from_customer("BYE", call="c1", cseq=9)
    h.advance(0.6)
    h.advance(40)
    h.run_timers_out()


def check_sent(h: Harness) -> None:
    """No 500; everything serializes (the harness parses each message back as it is sent);
    once go_on() has run every timer out, nothing of any call is left."""
    for t in h.sent:
        assert not (isinstance(t.message, Response) and t.message.status == 500), t.message
        assert serialize(t.message)
    engine = h.engine
    assert engine.next_deadline() is None
    assert not engine._calls_a and not engine._calls_b and not engine._owners
    assert len(engine.table) == 0 and engine.active_calls == 0


def feed(h: Harness, raw: bytes, peer: Peer) -> None:
    """Parse ``raw`` as the transport would (refused: not this test's business) and feed it."""
    try:
        msg = parse_message(raw)
    except SipParseError:
        assume(False)
        return
    h._take(h.engine.receive(msg, peer, h.now))


# --- hostile field values ---------------------------------------------------------------------

# The dialogs and transactions of busy_switch(): Ids("t") makes them the same every time.
_PROBE = busy_switch()
A_TAGS = sorted({t for call in ("c1", "c2") if (t := _PROBE.a_tag(call))})
VENDOR_INVITES = _PROBE.requests_to(5070)
B_CALL_IDS = [r.headers.get("call-id") or "" for r in VENDOR_INVITES]
SWITCH_REQUESTS = list({t.message.headers.get("via"): t.message for t in _PROBE.sent
                        if isinstance(t.message, Request) and t.message.method != "ACK"}.values())

METHODS = ["INVITE", "INVITE", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO",
           "REGISTER",
           "PRACK", "invite", "FOO", "MESSAGE", "REFER"]

# Each field has usual values (which still aim at different calls, dialogs and transactions)
# and hostile ones. A message spoils at most two fields: one odd value at a time gets past the
# parser far more often than six, and the engine is what is under test here.
NUMBER = st.one_of(
    st.sampled_from(["447700900123", "15551234567", "", "44", "+44 (0)7700", "900447700",
                     "*#123", "44\udcff77", "٤٤٧٧"]),
    # Beyond about 4,000 digits the parser refuses the Request-URI (max_uri_bytes): a few such.
    st.one_of(st.integers(0, 40), st.integers(0, 4_050), st.just(60_000)).map(
        lambda n: ("4477" + "0" * n)[:n]))
URI = {"good": st.sampled_from(["sip:447700900123@127.0.0.1:5060", "sip:sw1@127.0.0.1:5060",
                                "sip:447700900999@127.0.0.1;user=phone"]),
       "bad": st.one_of(
           NUMBER.flatmap(lambda n: st.sampled_from([
               f"sip:{n}@127.0.0.1:5060", f"sips:{n}@127.0.0.1", f"tel:+{n}", f"SIP:{n}@h",
               f"sip:%34%34{n[:20]}@h"])),
           st.sampled_from(["sip:127.0.0.1", "http://example.com/", "urn:service:sos",
                            "<sip:1@h>", "*"]))}
VIA = {"good": st.sampled_from(["z9hG4bKx1", "z9hG4bKa1", "z9hG4bKa2", "z9hG4bKx2"]).map(
           lambda b: f"SIP/2.0/UDP 127.0.0.1:5071;branch={b}"),
       "bad": st.one_of(
           st.sampled_from(["x1", "", "z9hG4bK", "z9hG4bKa1"]).flatmap(lambda b: st.sampled_from([
               f"SIP/2.0/UDP 127.0.0.1:5071;branch={b}", f"SIP/2.0/XYZ 127.0.0.1:5071;branch={b}",
               f"SIP/2.0/TCP [::1]:5071;branch={b};rport;received=10.0.0.1",
               f"SIP / 2.0 / UDP 127.0.0.1 ; branch = {b}",
               f"SIP/2.0/UDP 127.0.0.1:5071;branch={b}, SIP/2.0/UDP 10.0.0.2"])),
           st.sampled_from(["SIP/2.0/UDP 127.0.0.1:5071", "SIP/2.0/UDP 127.0.0.1:5071;rport",
                            "garbage", "SIP/2.0/UDP", "SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bKp",
                            "SIP/2.0/UDP 127.0.0.1:65536;branch=z9hG4bKp",
                            "SIP/2.0/UDP h\udcff:5071;branch=z9hG4bKp"]))}
MAX_FORWARDS = {"good": st.just("70"),
                "bad": st.sampled_from([None, "0", "1", "255", "256", "-1", "abc", "", "9" * 20])}
FROM = {"good": st.sampled_from(["from-c1", "from-c2", "zz", "v-tag"]).map(
            lambda t: f"<sip:15551234567@127.0.0.1>;tag={t}"),
        "bad": st.sampled_from([
            "<sip:15551234567@127.0.0.1>", "garbage", "", "<>", "tel:+1555;tag=x",
            '"\udcff" <sip:\udcff@127.0.0.1>;tag=q', "<sip:a b@h>;tag=1", "sip:x@h;tag=from-c1",
            "<sip:15551234567@127.0.0.1;tag=in-uri>", "<sip:1@127.0.0.1:5070>;tag=v-tag"])}
TO = {"good": st.sampled_from([None, "v-tag", "bogus", *A_TAGS]).map(
          lambda t: "<sip:447700900123@127.0.0.1>" + (f";tag={t}" if t else "")),
      "bad": st.sampled_from(["garbage", "", "<sip:447700900123@127.0.0.1", "tel:+44;tag=1",
                              "<sip:15551234567@127.0.0.1>;tag=from-c1"])}
CALL_ID = {"good": st.sampled_from(["c1", "c2", "c9", *B_CALL_IDS]),
           "bad": st.sampled_from(["", "c\udcff", "x" * 300, "a b", "c1 ", "<c1>"])}
CSEQ = {"good": st.sampled_from(["1", "2", "9"]),
        "bad": st.sampled_from(["0", "2147483647", "4294967296", "-1", "1 ACK", "1 BYE"])}
CONTACT = {"good": st.sampled_from([None, "<sip:caller@127.0.0.1:5071>"]),
           "bad": st.sampled_from([
               "garbage", "*", "<sip:a b@h>", "<", "<tel:+1>", "<sip:\udcff@h>",
               "<sip:caller@127.0.0.1:5071>, <x>", '"x" <sips:caller@[::1]:5071;transport=tls>',
               "sip:c@h;expires=0", "<sip:caller@127.0.0.1:5071>;expires=abc", "<sip:@>"])}
BROKEN_SDP = [b"", b"garbage", b"v=0\r\n", b"v=0\r\nm=audio\r\n", b"\xff\xfe\x00\x01",
              b"v=0\r\nc=IN IP4\r\nm=audio 99999999 RTP/AVP\r\n",
              b"v=0\r\nm=audio 6000 RTP/AVP 8 0\r\na=rtpmap:\r\na=rtpmap:8\r\n",
              b"v=0\r\nm=audio -1 RTP/AVP abc\r\na=rtpmap:abc PCMA/x\r\n",
              b"v=1\r\no=\r\ns=\r\nc=IN IP6 ::1\r\nt=x y\r\nm=video 0 RTP/AVP 96\r\n",
              b"v=0\r\nm=audio 6000 RTP/AVP " + b" ".join(b"%d" % n for n in range(200)) + b"\r\n",
              b"v=0\r\n" + b"m=audio 6000 RTP/AVP 0\r\n" * 500, b"v=0\nm=audio 6000 RTP/AVP 8\n"]
BODY = {"good": st.sampled_from([("application/sdp", SDP), (None, b""),
                                 ("application/sdp", ANSWER_SDP)]),
        "bad": st.one_of(
            st.tuples(st.sampled_from([None, "text/plain", "multipart/mixed;boundary=x"]),
                      st.sampled_from([b"", b"hello", b"\x00\xff"])),
            st.tuples(st.sampled_from(["application/sdp", "Application/SDP ; x=1"]),
                      st.one_of(st.sampled_from(BROKEN_SDP),
                                st.integers(0, len(SDP)).map(lambda k: SDP[:k]),
                                st.binary(max_size=300))))}
EXTRA = {"good": st.just([]), "bad": st.lists(st.sampled_from([
    "Route: <sip:127.0.0.1;lr>", "Record-Route: garbage", "Require: 100rel",
    "Supported: timer", "Proxy-Authorization: garbage", "Expires: abc",
    'Proxy-Authorization: Digest username="acme", realm="sw1", nonce="x", uri="sip:1@h", '
    'response="0"', "Session-Expires: -1", "Timestamp: 1 x", "Allow:",
    "P-Asserted-Identity: <sip:\udcff@h>", "Content-Encoding: gzip", "Via: garbage",
    "To: <sip:second@h>", "Call-ID: second", "Reason: Q.850;cause=16"]), min_size=1, max_size=3)}
REASON = {"good": st.just("Whatever"), "bad": st.sampled_from(["", "x" * 1000, "\udcff", "OK"])}
STATUS = st.sampled_from([100, 101, 180, 183, 183, 199, 200, 200, 200, 202, 299, 300, 302, 400,
                          401, 407, 408, 481, 486, 487, 503, 600, 699])


def _spoiler(draw: st.DrawFn, fields: list[str]):
    """A function giving each field's value: hostile for at most two fields, usual otherwise."""
    spoiled = draw(st.sets(st.sampled_from(fields), max_size=2))

    def value(name: str, choices: dict):
        return draw(choices["bad" if name in spoiled else "good"])
    return value


def _aims() -> dict[str, tuple[str, str, str]]:
    """(From, To, Call-ID) of a request that starts a call, lands in one of busy_switch()'s
    dialogs (either side, early or confirmed), or in none."""
    number = "<sip:447700900123@127.0.0.1>"
    caller = "<sip:15551234567@127.0.0.1>"
    aims = {"new": (f"{caller};tag=new", number, "new-call"),
            "nothing": (f"{caller};tag=zz", f"{number};tag=bogus", "c9")}
    for call, a_tag in (("c1", _PROBE.a_tag("c1")), ("c2", _PROBE.a_tag("c2"))):
        aims[call] = (f"{caller};tag=from-{call}", f"{number};tag={a_tag}", call)
        aims[f"{call}-untagged"] = (f"{caller};tag=from-{call}", number, call)
    for n, invite in enumerate(VENDOR_INVITES):
        h = invite.headers
        aims[f"vendor{n}"] = (f"{h.get('to')};tag=v-tag", h.get("from") or "",
                              h.get("call-id") or "")
    return aims


AIMS = _aims()


@st.composite
def hostile_request(draw: st.DrawFn) -> bytes:
    """A request with one or two hostile fields, aimed at a new call, a dialog or nothing."""
    value = _spoiler(draw, ["uri", "via", "max_forwards", "from", "to", "call_id", "cseq",
                            "contact", "body", "extra"])
    method = draw(st.sampled_from(METHODS))
    frm, to, call_id = AIMS[draw(st.sampled_from(["new", "new", "new", *AIMS]))]
    lines = [f"{method} {value('uri', URI)} SIP/2.0", f"Via: {value('via', VIA)}"]
    if (max_forwards := value("max_forwards", MAX_FORWARDS)) is not None:
        lines.append(f"Max-Forwards: {max_forwards}")
    cseq = value("cseq", CSEQ)
    lines += [f"From: {value('from', {**FROM, 'good': st.just(frm)})}",
              f"To: {value('to', {**TO, 'good': st.just(to)})}",
              f"Call-ID: {value('call_id', {**CALL_ID, 'good': st.just(call_id)})}",
              f"CSeq: {cseq}" if " " in cseq else f"CSeq: {cseq} {method}"]
    if (contact := value("contact", CONTACT)) is not None:
        lines.append(f"Contact: {contact}")
    lines += value("extra", EXTRA)
    content_type, body = value("body", BODY)
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return _text("\r\n".join(lines) + "\r\n\r\n") + body


@st.composite
def hostile_response(draw: st.DrawFn) -> bytes:
    """A response to something the switch sent (or to nothing), with hostile parts."""
    value = _spoiler(draw, ["to", "contact", "body", "body", "body", "reason"])
    status = draw(STATUS)
    contact = value("contact", CONTACT)
    content_type, body = value("body", BODY)
    if draw(st.integers(0, 3)):  # mostly an answer to a request the switch sent
        request = draw(st.sampled_from(SWITCH_REQUESTS))
        raw = response_bytes(request, status, contact=contact, reason=value("reason", REASON),
                             to_tag=draw(st.sampled_from(["v-tag", "other", None])))
        head, _, _ = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")
        lines = [line for line in lines if not line.startswith("Content-Length:")]
        if draw(st.booleans()):  # a CSeq method or Call-ID that does not fit
            field = draw(st.sampled_from(["CSeq: 1 BYE", "CSeq: 1 CANCEL", "CSeq: 2 INVITE",
                                          "Call-ID: c1", "Call-ID: nothing"]))
            lines = [line for line in lines if not line.startswith(field.split(":")[0] + ":")]
            lines.append(field)
    else:
        lines = [f"SIP/2.0 {status} {value('reason', REASON)}", f"Via: {value('via', VIA)}",
                 f"From: {value('from', FROM)}", f"To: {value('to', TO)}",
                 f"Call-ID: {value('call_id', CALL_ID)}",
                 f"CSeq: 1 {draw(st.sampled_from(['INVITE', 'BYE', 'CANCEL', 'FOO']))}"]
        if contact is not None:
            lines.append(f"Contact: {contact}")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return _text("\r\n".join(lines) + "\r\n\r\n") + body


# --- the corpus, mutated ----------------------------------------------------------------------


_MANDATORY = (b"via", b"v:", b"from", b"f:", b"to", b"t:", b"call-id", b"i:", b"cseq")
HOSTILE_VALUES = ["", "garbage", "0", "-1", "<", "\udcff", "sip:", "9" * 40,
                  "SIP/2.0/XYZ 127.0.0.1", "<sip:a b@h>;tag=", "1 INVITE", "z9hG4bK"]


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    """A torture message with a line or two of its head deleted, doubled or given odd values,
    or another method (in the CSeq too), and its body maybe cut short."""
    raw = draw(st.sampled_from(PARSABLE)).read_bytes()
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(1, max(1, len(lines) - 1))) if len(lines) > 1 else 0
        action = draw(st.sampled_from(["delete", "double", "value", "method"]))
        if i >= len(lines):
            continue
        if action == "delete" and i > 0 and not lines[i].lower().startswith(_MANDATORY):
            del lines[i]
        elif action == "double":
            lines.insert(i, lines[i])
        elif action == "value" and b":" in lines[i]:
            name = lines[i].split(b":", 1)[0]
            lines[i] = name + b": " + _text(draw(st.sampled_from(HOSTILE_VALUES)))
        elif action == "method" and lines and b" " in lines[0] \
                and not lines[0].startswith(b"SIP/"):
            method = _text(draw(st.sampled_from(METHODS)))
            old = lines[0].split(b" ", 1)[0]
            lines[0] = method + lines[0][lines[0].index(b" "):]
            lines = [line.replace(b" " + old, b" " + method)
                     if line.lower().startswith(b"cseq") else line for line in lines]
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return b"\r\n".join(lines) + sep + body


# --- the tests --------------------------------------------------------------------------------


@FUZZ
@given(raw=hostile_request(), peer=st.sampled_from(PEERS), answer=st.sampled_from(ANSWERS))
def test_hostile_requests_never_break_the_engine(raw: bytes, peer: Peer, answer: bytes) -> None:
    h = busy_switch()
    feed(h, raw, peer)
    go_on(h, answer)
    check_sent(h)


@FUZZ
@given(raw=hostile_response(), peer=st.sampled_from(PEERS))
def test_hostile_responses_never_break_the_engine(raw: bytes, peer: Peer) -> None:
    h = busy_switch()
    feed(h, raw, peer)
    go_on(h)
    check_sent(h)


@FUZZ
@given(raw=mutated_corpus(), peer=st.sampled_from(PEERS), answer=st.sampled_from(ANSWERS))
def test_mutated_torture_messages_never_break_the_engine(raw: bytes, peer: Peer,
                                                         answer: bytes) -> None:
    h = busy_switch()
    feed(h, raw, peer)
    go_on(h, answer)
    check_sent(h)


@pytest.mark.parametrize("path", PARSABLE,
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_parsable_torture_message_is_handled(path: Path) -> None:
    raw = path.read_bytes()
    msg = parse_message(raw)
    for peer in PEERS:
        h = busy_switch()
        h._take(h.engine.receive(parse_message(raw), peer, h.now))
        go_on(h)
        check_sent(h)
        if isinstance(msg, Request) and msg.method not in ("ACK",) and peer[1] == "127.0.0.1" \
                and peer[2] == 5071:
            # A request from the customer gets a final answer, one way or another.
            assert [t for t in h.sent if t.peer == peer and isinstance(t.message, Response)
                    and t.message.headers.get("call-id") == msg.headers.get("call-id")
                    and t.message.status >= 200], path.name


def test_a_4000_digit_number_is_refused_with_484_and_a_cdr():
    """As long as the parser lets a Request-URI be (4,096 bytes by default): the number limit
    answers before any routing work."""
    h = busy_switch()
    number = "4" * 4_000
    h.deliver(_text(
        f"INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKlong\r\nMax-Forwards: 70\r\n"
        "From: <sip:15551234567@127.0.0.1>;tag=l\r\nTo: <sip:44@127.0.0.1>\r\n"
        "Call-ID: long\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
    assert h.responses_to(call="long") == [100, 484]
    assert h.cdr()["call_id"] == "long" and h.cdr()["disconnect_reason"] == "no_route"
    assert h.cdr()["callee_e164"] == number


def test_responses_matching_no_transaction():
    """A final answer on no transaction is dropped; a 2xx on no transaction but in the dialog
    of an answered leg is that leg's 2xx again, and gets its ACK again (13.2.2.4)."""
    h = busy_switch()
    answered_leg = VENDOR_INVITES[0]
    vendor = ("udp", "127.0.0.1", 5070)
    before = len(h.sent)
    h.deliver(response_bytes(answered_leg, 486, to_tag="v-tag").replace(
        b"branch=z9hG4bK", b"branch=z9hG4bKnothing"), vendor)
    assert h.sent[before:] == []
    h.deliver(response_bytes(answered_leg, 200, to_tag="v-tag").replace(
        b"branch=z9hG4bK", b"branch=z9hG4bKnothing"), vendor)
    (ack,) = [t.message for t in h.sent[before:]]
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.headers.get("call-id") == answered_leg.headers.get("call-id")
    assert tag(ack.headers.get("to") or "") == "v-tag"


@pytest.mark.parametrize("uri", ["tel:+447700900123", "http://example.com/", "urn:service:sos"])
def test_an_invite_to_a_non_sip_uri_is_answered_416(uri: str) -> None:
    h = busy_switch()
    before = len(h.finished)
    h.deliver(_text(
        f"INVITE {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKtel\r\nMax-Forwards: 70\r\n"
        "From: <sip:15551234567@127.0.0.1>;tag=t\r\nTo: <sip:44@127.0.0.1>\r\n"
        "Call-ID: tel\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
    assert h.responses_to(call="tel") == [416]
    assert len(h.finished) == before
