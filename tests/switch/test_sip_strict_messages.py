"""Strict parsing (issue 8), whole messages: size and count limits, stream framing, and what the
parser does with each RFC 4475 torture message. Field by field: test_sip_strict.py.

Every refusal is checked for the three things the transport acts on: can it be answered
(``err.request``), with which status and reason phrase, and under which counter ``kind``.
docs/sip-parsing.md is the prose version of the RFC 4475 table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.sip import (
    ParseLimits,
    Request,
    Response,
    SipParseError,
    StreamParser,
    make_response,
    parse_message,
    parse_uri,
    serialize,
)
from tests.switch.strict_messages import assert_answered, assert_dropped, options, refused

RFC4475 = Path(__file__).parent / "torture" / "rfc4475"


# --- limits -----------------------------------------------------------------------------------


def test_long_header_fields() -> None:
    limits = ParseLimits(max_header_bytes=100)
    ok = options(extra=b"Subject: " + b"s" * 91 + b"\r\n")  # 100 bytes with the name
    assert parse_message(ok, limits=limits).headers.get("subject") == "s" * 91
    err = refused(options(extra=b"Subject: " + b"s" * 92 + b"\r\n"), limits=limits)
    assert_answered(err, 400, "Subject Too Long", "header_too_long")
    # folded: the limit applies after unfolding
    folded = options(extra=b"Subject: " + b"s" * 50 + b"\r\n " + b"t" * 50 + b"\r\n")
    assert_answered(refused(folded, limits=limits), 400, "Subject Too Long", "header_too_long")
    # a field the answer would have to copy: dropped
    long_call_id = options(replace=(b"Call-ID: strict-1@example.com",
                                    b"Call-ID: " + b"c" * 200))
    err = refused(long_call_id, limits=limits)
    assert_dropped(err, "header_too_long")
    assert err.phrase == "Call-ID Too Long"
    # the default is 8192
    assert_answered(refused(options(extra=b"X-Long: " + b"x" * 8200 + b"\r\n")), 400,
                    "X-Long Too Long", "header_too_long")


def test_message_and_header_count_limits() -> None:
    raw = options()
    assert_dropped(refused(raw, limits=ParseLimits(max_message_bytes=len(raw) - 1)), "too_large")
    assert parse_message(raw, limits=ParseLimits(max_message_bytes=len(raw)))
    err = refused(raw, limits=ParseLimits(max_headers=6))
    assert_dropped(err, "too_many_headers")
    assert err.status == 513
    assert len(parse_message(raw, limits=ParseLimits(max_headers=7)).headers) == 7
    # the older keywords override the limits object
    assert_dropped(refused(raw, limits=ParseLimits(), max_headers=6), "too_many_headers")


def test_parse_limits_validate() -> None:
    for bad in ({"max_uri_bytes": 0}, {"max_headers": -1}, {"max_message_bytes": True},
                {"max_header_bytes": 1.5}):
        with pytest.raises(ValueError, match="at least 1"):
            ParseLimits(**bad)  # type: ignore[arg-type]


# --- stream framing ---------------------------------------------------------------------------


def test_stream_hands_back_messages_framed_before_the_error() -> None:
    good = options()
    p = StreamParser()
    with pytest.raises(SipParseError) as info:
        p.feed(good + good.replace(b"strict-1", b"strict-2") + b"GARBAGE\r\n\r\n")
    err = info.value
    assert [m.headers.get("call-id") for m in err.framed] == [
        "strict-1@example.com", "strict-2@example.com"]
    assert_dropped(err, "bad_request_line")
    assert p.error is err
    with pytest.raises(SipParseError) as info:
        p.feed(good)
    assert info.value.kind == "bad_request_line" and info.value.framed == []


def test_stream_answerable_error_after_a_good_message() -> None:
    good = options()
    bad = good.replace(b"Max-Forwards: 70", b"Max-Forwards: 300")
    p = StreamParser()
    assert p.feed(good[:50]) == []
    with pytest.raises(SipParseError) as info:
        p.feed(good[50:] + bad)
    assert [m.headers.get("cseq") for m in info.value.framed] == ["7 OPTIONS"]
    assert_answered(info.value, 400, "Bad Max-Forwards", "bad_max_forwards")


def test_stream_missing_content_length_kind() -> None:
    raw = options().replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError) as info:
        StreamParser().feed(raw)
    assert_answered(info.value, 400, "Missing Content-Length", "missing_content_length")


def test_stream_body_over_the_limit_is_413() -> None:
    raw = options().replace(b"Content-Length: 0", b"Content-Length: 70000")
    with pytest.raises(SipParseError) as info:
        StreamParser().feed(raw)
    assert_answered(info.value, 413, "Request Entity Too Large", "body_too_large")


# --- RFC 4475 ---------------------------------------------------------------------------------

ACCEPT = ("accept",)


def answer(status: int, phrase: str, kind: str) -> tuple[str, int, str, str]:
    return ("answer", status, phrase, kind)


def drop(kind: str) -> tuple[str, str]:
    return ("drop", kind)


# name -> what parse_message does with it (docs/sip-parsing.md says why, case by case)
RFC4475_OUTCOMES: dict[str, tuple] = {
    # 3.1.1 valid messages
    "wsinv": ACCEPT, "intmeth": drop("nul_byte"), "esc01": ACCEPT, "escnull": ACCEPT,
    "esc02": ACCEPT, "lwsdisp": ACCEPT, "longreq": ACCEPT, "dblreq": ACCEPT,
    "semiuri": ACCEPT, "transports": ACCEPT, "mpart01": ACCEPT, "unreason": ACCEPT,
    "noreason": ACCEPT,
    # 3.1.2 invalid messages
    "badinv01": drop("bad_via"),
    "clerr": answer(400, "Bad Content-Length", "bad_content_length"),
    "ncl": answer(400, "Bad Content-Length", "bad_content_length"),
    "scalar02": answer(400, "Bad CSeq", "bad_cseq"),
    "scalarlg": drop("bad_cseq"),
    "quotbal": answer(400, "Bad To", "bad_to"),
    "ltgtruri": answer(400, "Bad Request-URI", "bad_request_uri"),
    "lwsruri": answer(400, "Bad Request-URI", "bad_request_uri"),
    "lwsstart": answer(400, "Bad Request Line", "bad_request_line"),
    "trws": answer(400, "Bad Request Line", "bad_request_line"),
    "escruri": ACCEPT,
    "baddate": ACCEPT,
    "regbadct": answer(400, "Bad Contact", "bad_contact"),
    "badaspec": answer(400, "Bad To", "bad_to"),
    "baddn": answer(400, "Bad From", "bad_from"),
    "badvers": answer(505, "Version Not Supported", "bad_version"),
    "mismatch01": answer(400, "Bad CSeq", "bad_cseq"),
    "mismatch02": answer(400, "Bad CSeq", "bad_cseq"),
    "bigcode": drop("bad_status_line"),
    # 3.2 transaction layer
    "badbranch": ACCEPT,
    # 3.3 application layer
    "insuf": drop("missing_header"), "unkscm": ACCEPT, "novelsc": ACCEPT, "unksm2": ACCEPT,
    "bext01": ACCEPT, "invut": ACCEPT, "regaut01": ACCEPT,
    "multi01": answer(400, "Duplicate CSeq", "duplicate_header"),  # the first repeat
    "mcl01": answer(400, "Bad Content-Length", "bad_content_length"),
    "bcast": ACCEPT, "zeromf": ACCEPT, "cparam01": ACCEPT, "cparam02": ACCEPT,
    "regescrt": ACCEPT, "sdp01": ACCEPT,
    # 3.4 backward compatibility
    "inv2543": ACCEPT,
}


def test_rfc4475_corpus_is_complete() -> None:
    assert {p.stem for p in RFC4475.glob("*.sip")} == set(RFC4475_OUTCOMES)
    assert len(RFC4475_OUTCOMES) == 49


@pytest.mark.parametrize("name", sorted(RFC4475_OUTCOMES))
def test_rfc4475(name: str) -> None:
    raw = (RFC4475 / f"{name}.sip").read_bytes()
    outcome = RFC4475_OUTCOMES[name]
    if outcome[0] == "accept":
        msg = parse_message(raw)
        again = parse_message(serialize(msg))

        def fields(m: Request | Response) -> list[tuple[str, str]]:
            return [(n, v) for n, v in m.headers.items() if n != "Content-Length"]

        assert fields(again) == fields(msg) and again.body == msg.body
        if isinstance(msg, Request):
            assert again.uri == msg.uri and again.method == msg.method
            for status in (100, 400, 481):
                serialize(make_response(msg, status, to_tag="t"))
    elif outcome[0] == "answer":
        assert_answered(refused(raw), *outcome[1:])
    else:
        assert_dropped(refused(raw), outcome[1])


def test_rfc4475_details() -> None:
    def load(name: str) -> bytes:
        return (RFC4475 / f"{name}.sip").read_bytes()

    wsinv = parse_message(load("wsinv"))
    assert isinstance(wsinv, Request)
    assert wsinv.headers.get("cseq") == "0009 INVITE"
    assert wsinv.headers.get("subject") == ""
    assert len(wsinv.body) == 150
    # the rest of intmeth is accepted: only the escaped NUL in To's display name drops it
    intmeth = load("intmeth").replace(b"NUL:\\\x00", b"NUL:\\0")
    msg = parse_message(intmeth)
    assert isinstance(msg, Request) and msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert parse_uri(msg.uri).user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    # semiuri's user part holds ;par=... with an escaped @
    semi = parse_message(load("semiuri"))
    assert isinstance(semi, Request)
    assert (parse_uri(semi.uri).user, parse_uri(semi.uri).host) == (
        "user;par=u%40example.net", "example.com")
    # dblreq: one datagram holds a REGISTER (Content-Length 0) then an INVITE; over UDP only the
    # REGISTER counts. On a stream both are framed, and then the 5 bytes the INVITE's body has
    # beyond its Content-Length of 150 ("C" CRLF CRLF) are garbage: both come back as framed.
    assert parse_message(load("dblreq")).method == "REGISTER"  # type: ignore[union-attr]
    with pytest.raises(SipParseError) as info:
        StreamParser().feed(load("dblreq"))
    assert [m.method for m in info.value.framed] == ["REGISTER", "INVITE"]  # type: ignore[union-attr]
    assert_dropped(info.value, "bad_request_line")
    # unknown schemes parse; the engine decides (416)
    for name, scheme in (("unkscm", "nobodyknowsthisscheme"), ("novelsc", "soap.beep")):
        req = parse_message(load(name))
        assert isinstance(req, Request) and parse_uri(req.uri).scheme == scheme
    # transports: SCTP, TLS, UNKNOWN transports are grammatical
    assert len(parse_message(load("transports")).headers.get_all("via")) == 5
    # mpart01's body holds NULs and bare CR/LF: only the header section is checked
    assert b"\x00" in parse_message(load("mpart01")).body
