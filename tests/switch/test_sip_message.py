"""SIP message parsing and serialization (switch.sip.message), including a torture corpus.

The corpus lives in tests/switch/torture/{valid,invalid}/*.sip (raw datagrams with CRLF); what
each file must yield is in the tables below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.sip import (
    REASONS,
    Headers,
    Request,
    Response,
    SipParseError,
    StreamParser,
    cseq,
    header_param,
    make_response,
    parse_message,
    serialize,
    split_values,
    tag,
    top_via,
    via_branch,
)

TORTURE = Path(__file__).parent / "torture"

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 8 0 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)

INVITE = (
    b"INVITE sip:+15551234567@sw1.example.net SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:+15551234567@sw1.example.net>\r\n"
    b"Call-ID: 3848276298220188511@example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def request(
    method: str, *, extra: bytes = b"", body: bytes = b"", uri: bytes = b"sip:b@h"
) -> bytes:
    m = method.encode()
    return (
        m + b" " + uri + b" SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK" + m + b"\r\n"
        b"From: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.org>\r\n"
        b"Call-ID: c-" + m + b"@example.com\r\n"
        b"CSeq: 2 " + m + b"\r\n" + extra
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


RESPONSE_180 = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport=5060\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:+15551234567@sw1.example.net>;tag=8321234356\r\n"
    b"Call-ID: 3848276298220188511@example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.20>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
RESPONSE_200 = RESPONSE_180.replace(b"180 Ringing", b"200 OK").replace(
    b"Content-Length: 0\r\n\r\n",
    b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP)).encode()
    + b"\r\n\r\n" + SDP,
)

ROUND_TRIP = {
    "invite": INVITE,
    "180": RESPONSE_180,
    "200": RESPONSE_200,
    "register": request("REGISTER", extra=b"Contact: <sip:alice@192.0.2.10>\r\nExpires: 3600\r\n"),
    "bye": request("BYE"),
    "ack": request("ACK"),
    "cancel": request("CANCEL"),
    "options": request("OPTIONS", extra=b"Accept: application/sdp\r\n"),
}


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ROUND_TRIP.values(), ids=ROUND_TRIP.keys())
def test_round_trip_is_exact_and_stable(raw: bytes) -> None:
    msg = parse_message(raw)
    out = serialize(msg)
    assert out == raw  # canonical input comes back byte for byte
    again = parse_message(out)
    assert again == msg
    assert serialize(again) == out


def test_invite_fields() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri, msg.version) == (
        "INVITE", "sip:+15551234567@sw1.example.net", "SIP/2.0")
    assert msg.body == SDP
    assert [n for n, _ in msg.headers.items()] == [
        "Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Allow",
        "Content-Type", "Content-Length"]
    assert cseq(msg) == (1, "INVITE")
    assert via_branch(top_via(msg) or "") == "z9hG4bK74bf9"
    assert tag(msg.headers.get("from") or "") == "9fxced76sl"
    assert tag(msg.headers.get("to") or "") is None
    assert split_values(msg.headers.get("allow") or "") == [
        "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"]


def test_response_fields() -> None:
    msg = parse_message(RESPONSE_200)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (200, "OK")
    assert msg.body == SDP
    assert tag(msg.headers.get("To") or "") == "8321234356"
    assert header_param(top_via(msg) or "", "rport") == "5060"


def test_serialize_normalizes_compact_and_fixes_content_length() -> None:
    raw = (
        b"MESSAGE sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
        b"t: <sip:b@h>\r\ni: x\r\nCSeq: 1 MESSAGE\r\nl: 2\r\nc: text/plain\r\n\r\nhi"
    )
    msg = parse_message(raw)
    msg.body = b"hello"
    out = serialize(msg)
    assert out == (
        b"MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n"
        b"Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    )
    msg.headers.remove("Content-Length")
    assert serialize(msg).endswith(b"Content-Length: 5\r\n\r\nhello")


def test_serialize_built_message_and_utf8() -> None:
    h = Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bKu"), ("From", '"Zoë" <sip:z@h>;tag=1'),
                 ("To", "<sip:b@h>"), ("Call-ID", "u"), ("CSeq", "1 INFO")])
    out = serialize(Request("INFO", "sip:b@h", h))
    assert '"Zoë"'.encode() in out
    assert parse_message(out).headers.get("from") == '"Zoë" <sip:z@h>;tag=1'


def test_invalid_utf8_survives_round_trip() -> None:
    raw = request("OPTIONS", extra=b"Subject: caf\xe9 \xff\r\n")
    msg = parse_message(raw)
    assert serialize(msg) == raw


# --- headers ---------------------------------------------------------------------------------


def test_compact_forms_expand() -> None:
    pairs = [("v", "Via"), ("f", "From"), ("t", "To"), ("i", "Call-ID"), ("m", "Contact"),
             ("l", "Content-Length"), ("c", "Content-Type"), ("k", "Supported"),
             ("s", "Subject"), ("e", "Content-Encoding"), ("o", "Event"),
             ("u", "Allow-Events"), ("r", "Refer-To"), ("b", "Referred-By"),
             ("x", "Session-Expires"), ("y", "Identity")]
    h = Headers([(short, "1") for short, _ in pairs])
    assert [n for n, _ in h.items()] == [full for _, full in pairs]
    for short, full in pairs:
        assert h.get(full.upper()) == "1"
        assert h.get(short.upper()) == "1"


def test_case_insensitive_names_and_unknown_name_kept() -> None:
    h = Headers([("cAlL-iD", "x"), ("X-My-Header", "1")])
    assert h.items() == [("Call-ID", "x"), ("X-My-Header", "1")]
    assert h.get("x-my-header") == "1" and "X-MY-HEADER" in h
    assert h.get("nope") is None and h.get("nope", "d") == "d"
    assert 42 not in h  # type: ignore[operator]


def test_headers_mutation() -> None:
    h = Headers([("To", "t"), ("Via", "v1"), ("Via", "v2")])
    h.prepend("via", "v0")
    h.prepend("Route", "<sip:r>")  # none yet: goes on top
    assert h.items() == [("Route", "<sip:r>"), ("To", "t"), ("Via", "v0"), ("Via", "v1"),
                         ("Via", "v2")]
    h.set("Via", "only")
    assert h.get_all("v") == ["only"] and len(h) == 3
    h.remove("VIA")
    h.remove("absent")
    assert h.items() == [("Route", "<sip:r>"), ("To", "t")]
    c = h.copy()
    c.add("To", "t2")
    assert len(h) == 2 and len(c) == 3
    h.set("Max-Forwards", " 70 ")
    assert h.items()[-1] == ("Max-Forwards", "70")


def test_headers_refuse_injection_and_bad_names() -> None:
    h = Headers()
    with pytest.raises(ValueError):
        h.add("X-Evil", "a\r\nVia: injected")
    with pytest.raises(ValueError):
        h.add("Bad Name", "x")
    with pytest.raises(ValueError):
        h.add("Name:", "x")


def test_folded_lines_join_with_one_space() -> None:
    msg = parse_message(request("OPTIONS", extra=b"Subject: one\r\n  two \r\n\tthree\r\n"))
    assert msg.headers.get("Subject") == "one two three"


def test_multiple_and_comma_separated_via() -> None:
    raw = request("OPTIONS").replace(
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKOPTIONS\r\n",
        b"Via: SIP/2.0/UDP p1;branch=z9hG4bKp1 , SIP/2.0/TCP p2;branch=z9hG4bKp2\r\n"
        b"v: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKua;received=[2001:db8::2]\r\n",
    )
    msg = parse_message(raw)
    vias = msg.headers.get_all("Via")
    assert len(vias) == 2  # one entry per line, the comma-separated one stays whole
    assert top_via(msg) == "SIP/2.0/UDP p1;branch=z9hG4bKp1"
    assert [via_branch(v) for v in split_values(vias[0])] == ["z9hG4bKp1", "z9hG4bKp2"]
    assert via_branch(vias[1]) == "z9hG4bKua"
    assert header_param(vias[1], "received") == "[2001:db8::2]"
    resp = make_response(msg, 200)
    assert resp.headers.get_all("via") == vias


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('a, <sip:x,y>;p=1, "q,r" <sip:z>', ["a", "<sip:x,y>;p=1", '"q,r" <sip:z>']),
        ("INVITE,ACK ,  BYE,", ["INVITE", "ACK", "BYE"]),
        ('"a \\" , b" <sip:a>, <sip:b>', ['"a \\" , b" <sip:a>', "<sip:b>"]),
        ("<sip:p1;lr>,<sip:p2;lr>", ["<sip:p1;lr>", "<sip:p2;lr>"]),
        ('"unterminated, x', ['"unterminated', "x"]),
        ("", []),
    ],
)
def test_split_values(value: str, expected: list[str]) -> None:
    assert split_values(value) == expected


@pytest.mark.parametrize(
    ("value", "name", "expected"),
    [
        ("<sip:a@h;tag=in>;tag=out", "tag", "out"),
        ("<sip:a@h;tag=in>", "tag", None),
        ("sip:a@h;tag=plain", "tag", "plain"),
        ('"x>;tag=no" <sip:a@h>;TAG=yes', "tag", "yes"),
        ('"esc \\" <;tag=no" <sip:a@h>;tag=ok', "tag", "ok"),
        ("SIP/2.0/UDP h;rport;branch=z9hG4bKb", "RPORT", ""),
        ("SIP/2.0/UDP h;branch = z9hG4bKs ", "branch", "z9hG4bKs"),
        ("<sip:a@h>", "lr", None),
    ],
)
def test_header_param(value: str, name: str, expected: str | None) -> None:
    assert header_param(value, name) == expected


def test_cseq_helper_errors() -> None:
    with pytest.raises(SipParseError):
        cseq(Request("X", "sip:h", Headers()))
    with pytest.raises(SipParseError):
        cseq(Request("X", "sip:h", Headers([("CSeq", "x X")])))
    assert top_via(Request("X", "sip:h", Headers())) is None


# --- make_response -----------------------------------------------------------------------------


def test_make_response_copies_headers_and_adds_tag_once() -> None:
    req = parse_message(INVITE.replace(b"Max-Forwards: 70\r\n",
                                       b"Via: SIP/2.0/UDP second;branch=z9hG4bK2\r\n"
                                       b"Record-Route: <sip:p;lr>\r\nTimestamp: 54\r\n"))
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="tt1", headers=[("Contact", "<sip:sw1@h>")])
    assert (resp.status, resp.reason, resp.body) == (180, "Ringing", b"")
    assert [n for n, _ in resp.headers.items()] == [
        "Via", "Via", "From", "To", "Call-ID", "CSeq", "Contact"]
    assert resp.headers.get_all("via") == req.headers.get_all("via")
    assert resp.headers.get("to") == "<sip:+15551234567@sw1.example.net>;tag=tt1"
    # a request that already has a To tag (in-dialog) keeps it; no second tag
    req.headers.set("To", resp.headers.get("to") or "")
    again = make_response(req, 200, to_tag="other", body=b"v=0\r\n")
    assert again.headers.get("To") == "<sip:+15551234567@sw1.example.net>;tag=tt1"
    assert again.headers.get("to", "").count(";tag=") == 1
    wire = parse_message(serialize(again))
    assert isinstance(wire, Response) and wire.body == b"v=0\r\n"
    # 100 Trying copies Timestamp (RFC 3261 8.2.6.1); the request is not modified
    trying = make_response(req, 100)
    assert trying.reason == "Trying" and trying.headers.get("timestamp") == "54"
    assert req.headers.get_all("via")[1] == "SIP/2.0/UDP second;branch=z9hG4bK2"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(100, "Trying"), (180, "Ringing"), (183, "Session Progress"), (200, "OK"),
     (400, "Bad Request"), (403, "Forbidden"), (404, "Not Found"),
     (407, "Proxy Authentication Required"), (408, "Request Timeout"),
     (413, "Request Entity Too Large"), (480, "Temporarily Unavailable"),
     (481, "Call/Transaction Does Not Exist"), (486, "Busy Here"),
     (487, "Request Terminated"), (488, "Not Acceptable Here"), (500, "Server Internal Error"),
     (503, "Service Unavailable"), (513, "Message Too Large"), (499, "Request Failure")],
)
def test_default_reasons(status: int, reason: str) -> None:
    req = parse_message(request("OPTIONS"))
    assert isinstance(req, Request)
    assert make_response(req, status).reason == reason
    assert make_response(req, status, "Custom").reason == "Custom"
    assert status == 499 or REASONS[status] == reason


# --- torture corpus ------------------------------------------------------------------------------

# file -> (kind, start line field, a few header expectations, body)
VALID: dict[str, dict] = {
    "invite_sdp": {"method": "INVITE", "call-id": "3848276298220188511@example.com",
                   "cseq": (1, "INVITE"), "body_startswith": b"v=0\r\n"},
    "compact_forms": {"method": "OPTIONS", "call-id": "compact-1@example.com",
                      "cseq": (8, "OPTIONS"), "Supported": "timer, 100rel",
                      "Contact": "<sip:alice@192.0.2.10>", "body": b""},
    "case_insensitive": {"method": "BYE", "call-id": "ci-1@example.com", "From_tag": "1",
                         "To_tag": "2", "body": b""},
    "folded_lines": {"method": "REGISTER", "Subject": "first part second part third part",
                     "Expires": "3600"},
    "multiple_via": {"status": 200, "via_count": 2, "branch": "z9hG4bKp1",
                     "To_tag": "b"},
    "quoted_display_names": {"method": "MESSAGE", "From_tag": "qq", "To_tag": None,
                             "contacts": 2, "body": b"hello"},
    "ipv6_via": {"method": "OPTIONS", "uri": "sip:[2001:db8::10]:5060", "branch": "z9hG4bKv6"},
    "extra_bytes_after_body": {"method": "MESSAGE", "body": b"abc"},
    "no_content_length": {"method": "MESSAGE", "body": b"whole rest"},
    "ringing": {"status": 180, "reason": "Ringing", "To_tag": "8321234356",
                "X-Carrier-Trace": "abc;def=1"},
    "empty_reason": {"status": 699, "reason": "", "cseq": (4, "NEWMETHOD")},
    "unknown_method": {"method": "NEW-METHOD.x!", "cseq": (77, "NEW-METHOD.x!"),
                       "uri": "sip:bob@example.org;transport=udp?Subject=hi"},
    "leading_crlf_utf8": {"method": "ACK", "From": '"Zoë Ünïcode" <sip:zoe@example.com>;tag=u1'},
    "cancel_routes": {"method": "CANCEL", "routes": 3,
                      "Reason": 'Q.850;cause=16;text="Normal, call clearing"'},
}

# file -> (status, can_reply, words in the reason, parse_message keyword arguments)
INVALID: dict[str, tuple[int, bool, str]] = {
    # extra SP between the request line's elements: answerable since issue 8 ("Bad Request Line")
    "bad_start_line": (400, True, "request line"),
    "start_line_two_tokens": (400, False, "request line"),
    "unknown_version": (505, True, "version"),
    "response_bad_version": (400, False, "method"),
    "status_out_of_range": (400, False, "out of range"),
    "status_not_numeric": (400, False, "status code"),
    "missing_cseq": (400, False, "CSeq"),
    "missing_call_id": (400, False, "Call-ID"),
    "missing_from": (400, False, "From"),
    "missing_to": (400, False, "To"),
    "missing_via": (400, False, "Via"),
    "cseq_method_mismatch": (400, True, "does not match"),
    "cseq_not_numeric": (400, True, "CSeq number"),
    "cseq_too_large": (400, True, "CSeq number"),
    "content_length_negative": (400, True, "Content-Length"),
    "content_length_not_numeric": (400, True, "Content-Length"),
    "content_length_too_large": (400, True, "larger than"),
    "content_length_conflict": (400, True, "conflicting"),
    "header_without_colon": (400, False, "without colon"),
    "bad_header_name": (400, False, "header name"),
    "continuation_first": (400, False, "continuation"),
    "nul_in_start_line": (400, False, "NUL"),
    "empty_datagram": (400, False, "empty"),
    "crlf_only": (400, False, "empty"),
    "no_blank_line": (400, True, "empty line"),
    "too_many_headers": (513, False, "header fields"),
    "oversize": (513, False, "exceeds"),
    "garbage_binary": (400, False, ""),
}


def test_corpus_is_complete() -> None:
    assert {p.stem for p in (TORTURE / "valid").glob("*.sip")} == set(VALID)
    assert {p.stem for p in (TORTURE / "invalid").glob("*.sip")} == set(INVALID)
    assert len(VALID) >= 12 and len(INVALID) >= 15


@pytest.mark.parametrize("name", sorted(VALID))
def test_torture_valid(name: str) -> None:
    raw = (TORTURE / "valid" / f"{name}.sip").read_bytes()
    msg = parse_message(raw)
    h = msg.headers
    for field, want in VALID[name].items():
        if field == "method":
            assert isinstance(msg, Request) and msg.method == want
        elif field == "uri":
            assert isinstance(msg, Request) and msg.uri == want
        elif field == "status":
            assert isinstance(msg, Response) and msg.status == want
        elif field == "reason":
            assert isinstance(msg, Response) and msg.reason == want
        elif field == "cseq":
            assert cseq(msg) == want
        elif field == "body":
            assert msg.body == want
        elif field == "body_startswith":
            assert msg.body.startswith(want)
            assert len(msg.body) == int(h.get("Content-Length") or -1)
        elif field == "via_count":
            assert len(h.get_all("via")) == want
        elif field == "branch":
            assert via_branch(top_via(msg) or "") == want
        elif field == "contacts":
            assert len(split_values(h.get("Contact") or "")) == want
        elif field == "routes":
            assert sum(len(split_values(v)) for v in h.get_all("Route")) == want
        elif field.endswith("_tag"):
            assert tag(h.get(field[:-4]) or "") == want
        else:
            assert h.get(field) == want, field
    # whatever parsed serializes into something that parses to the same message (serialize
    # adds the Content-Length a datagram may lack)
    out = serialize(msg)
    assert parse_message(out).headers.get_all("via") == h.get_all("via")
    assert parse_message(out).body == msg.body
    if "Content-Length" in h:
        assert parse_message(out) == msg
    assert serialize(parse_message(out)) == out


@pytest.mark.parametrize("name", sorted(INVALID))
def test_torture_invalid(name: str) -> None:
    raw = (TORTURE / "invalid" / f"{name}.sip").read_bytes()
    status, can_reply, words = INVALID[name]
    with pytest.raises(SipParseError) as info:
        parse_message(raw)
    err = info.value
    assert (err.status, err.can_reply) == (status, can_reply), err.reason
    assert words in err.reason
    if can_reply:
        # the transport can answer from what was parsed
        assert err.request is not None
        resp = make_response(err.request, err.status)
        assert resp.headers.get("Call-ID") == err.request.headers.get("Call-ID")
        assert serialize(resp).startswith(f"SIP/2.0 {err.status} ".encode())
    else:
        assert err.request is None


def test_limits_are_configurable() -> None:
    raw = request("OPTIONS")
    with pytest.raises(SipParseError) as info:
        parse_message(raw, max_size=len(raw) - 1)
    assert info.value.status == 513
    assert parse_message(raw, max_size=len(raw)).headers.get("cseq") == "2 OPTIONS"
    with pytest.raises(SipParseError) as info:
        parse_message(raw, max_headers=5)
    assert info.value.status == 513
    assert len(parse_message(raw, max_headers=6).headers) == 6


def test_response_mandatory_headers_and_response_errors_never_reply() -> None:
    raw = RESPONSE_180.replace(b"Call-ID: 3848276298220188511@example.com\r\n", b"")
    with pytest.raises(SipParseError) as info:
        parse_message(raw)
    assert not info.value.can_reply
    with pytest.raises(SipParseError) as info:
        parse_message(RESPONSE_180.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"))
    assert not info.value.can_reply


# --- stream framing ------------------------------------------------------------------------------


def test_stream_two_messages_in_one_feed() -> None:
    p = StreamParser()
    out = p.feed(INVITE + RESPONSE_180)
    assert [type(m) for m in out] == [Request, Response]
    assert out[0].body == SDP and out[0] == parse_message(INVITE)
    assert p.feed(b"") == []


def test_stream_byte_by_byte() -> None:
    p = StreamParser()
    data = INVITE + RESPONSE_200 + request("BYE")
    got = []
    for i in range(len(data)):
        got.extend(p.feed(data[i : i + 1]))
    assert [serialize(m) for m in got] == [INVITE, RESPONSE_200, request("BYE")]


def test_stream_keepalives_between_messages() -> None:
    p = StreamParser()
    assert p.feed(b"\r\n\r\n") == []
    assert p.feed(b"\r\n") == []
    out = p.feed(b"\r\n\r\n" + request("BYE") + b"\r\n\r\n" + request("ACK") + b"\r")
    assert [m.method for m in out if isinstance(m, Request)] == ["BYE", "ACK"]
    assert p.feed(b"\n" + request("OPTIONS")[:10]) == []
    assert [m.method for m in p.feed(request("OPTIONS")[10:])] == ["OPTIONS"]  # type: ignore


def test_stream_missing_content_length_raises_and_stream_dies() -> None:
    p = StreamParser()
    raw = request("OPTIONS").replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError) as info:
        p.feed(raw)
    assert "Content-Length" in info.value.reason and info.value.can_reply
    with pytest.raises(SipParseError):
        p.feed(request("OPTIONS"))


def test_stream_oversize_raises() -> None:
    # headers that never end
    p = StreamParser(max_size=1000)
    with pytest.raises(SipParseError) as info:
        for _ in range(100):
            p.feed(b"X-Filler: " + b"a" * 50 + b"\r\n")
    assert info.value.status == 513
    # a Content-Length that would take the message over the limit: refused before the body
    p = StreamParser(max_size=1000)
    with pytest.raises(SipParseError) as info:
        p.feed(request("MESSAGE", body=b"x" * 1000)[:400])
    assert info.value.status == 413 and info.value.can_reply


def test_stream_bad_message_raises() -> None:
    p = StreamParser()
    with pytest.raises(SipParseError) as info:
        p.feed(b"GARBAGE\r\n\r\n")
    assert info.value.status == 400
