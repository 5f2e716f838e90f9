"""Strict parsing (issue 8): numbers, Via, Request-URI, addresses, NUL/CR/LF, limits, framing,
and what the parser does with each RFC 4475 torture message.

Every refusal is checked for the three things the transport acts on: can it be answered
(``err.request``), with which status and reason phrase (the phrase names the header), and under
which counter ``kind``. docs/sip-parsing.md is the prose version of these tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.sip import (
    ParseLimits,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamParser,
    UriError,
    is_request_uri,
    make_response,
    parse_message,
    parse_uri,
    serialize,
)
from switch.sip.syntax import digits_value, valid_address, valid_contact, valid_via

RFC4475 = Path(__file__).parent / "torture" / "rfc4475"


def options(*, uri: bytes = b"sip:bob@example.org", via: bytes | None = None,
            extra: bytes = b"", replace: tuple[bytes, bytes] | None = None) -> bytes:
    """A valid OPTIONS; ``replace`` swaps one header line (name: value) for another."""
    raw = (
        b"OPTIONS " + uri + b" SIP/2.0\r\n"
        b"Via: " + (via if via is not None else b"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKs")
        + b"\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.org>\r\n"
        b"Call-ID: strict-1@example.com\r\n"
        b"CSeq: 7 OPTIONS\r\n"
        b"Max-Forwards: 70\r\n" + extra +
        b"Content-Length: 0\r\n\r\n"
    )
    if replace is not None:
        assert replace[0] in raw, replace[0]
        raw = raw.replace(replace[0], replace[1])
    return raw


def refused(raw: bytes, **kwargs: object) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(raw, **kwargs)  # type: ignore[arg-type]
    return info.value


def assert_answered(err: SipParseError, status: int, phrase: str, kind: str) -> bytes:
    """The error can be answered, and the answer's status line says what is wrong."""
    assert (err.status, err.phrase, err.kind) == (status, phrase, kind), err.reason
    assert err.can_reply and isinstance(err.request, Request)
    wire = serialize(make_response(err.request, err.status, err.phrase))
    assert wire.startswith(f"SIP/2.0 {status} {phrase}\r\n".encode())
    assert b"\x00" not in wire.split(b"\r\n\r\n")[0]
    return wire


def assert_dropped(err: SipParseError, kind: str) -> None:
    assert err.kind == kind, err.reason
    assert not err.can_reply and err.request is None


def test_the_helper_message_is_valid() -> None:
    msg = parse_message(options())
    assert isinstance(msg, Request) and msg.headers.get("max-forwards") == "70"


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"0", b"70", b"255", b"0068", b"000000000000000000070"])
def test_max_forwards_accepted(value: bytes) -> None:
    msg = parse_message(options(replace=(b"Max-Forwards: 70", b"Max-Forwards: " + value)))
    assert msg.headers.get("Max-Forwards") == value.decode()


@pytest.mark.parametrize("value", [b"-1", b"abc", b"", b"256", b"99999999999999999999",
                                   b"7 0", b"+5", b"0x10", "\u0663".encode(), b"9" * 5000])
def test_max_forwards_refused_with_400_naming_it(value: bytes) -> None:
    err = refused(options(replace=(b"Max-Forwards: 70", b"Max-Forwards: " + value)))
    assert_answered(err, 400, "Bad Max-Forwards", "bad_max_forwards")


@pytest.mark.parametrize(("value", "ok"), [
    (b"2147483647 OPTIONS", True), (b"0 OPTIONS", True), (b"0009\t OPTIONS", True),
    (b"2147483648 OPTIONS", False), (b"-1 OPTIONS", False), (b"1.5 OPTIONS", False),
    (b"OPTIONS", False), (b"9" * 5000 + b" OPTIONS", False), (b"1 OPT IONS", False),
    (b"1 INVITE", False), ("1\u00a0OPTIONS".encode(), False), (b"1\x1cOPTIONS", False),
])
def test_cseq_number_is_below_2_31(value: bytes, ok: bool) -> None:
    raw = options(replace=(b"CSeq: 7 OPTIONS", b"CSeq: " + value))
    if ok:
        assert parse_message(raw).headers.get("cseq") == value.decode()
    else:
        assert_answered(refused(raw), 400, "Bad CSeq", "bad_cseq")


@pytest.mark.parametrize("value", [b"-5", b"five", b"1e3", b"9" * 400, b""])
def test_content_length_refused(value: bytes) -> None:
    raw = options(replace=(b"Content-Length: 0", b"Content-Length: " + value))
    assert_answered(refused(raw), 400, "Bad Content-Length", "bad_content_length")


def test_digits_value_bounds() -> None:
    assert digits_value("255", 255) == 255 and digits_value("256", 255) is None
    assert digits_value("0" * 50 + "7", 255) == 7
    assert digits_value("9" * 5000, 2**31 - 1) is None  # no ValueError from int()
    assert digits_value("", 255) is None and digits_value("\u0663", 255) is None


# --- Via ------------------------------------------------------------------------------------

VALID_VIAS = [
    "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport",
    "SIP/2.0/TCP host.example.com;branch=z9hG4bK1;received=192.0.2.9",
    "sip/2.0/tls h;branch=z9hG4bK1",
    "SIP/2.0/XYZ h.example.com;branch=z9hG4bK1",  # other-transport: grammatical
    "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=[2001:db8::2]",
    "SIP / 2.0 / UDP  h ; branch = z9hG4bK1",
    "SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/TCP b:5061;branch=z9hG4bK2",
    "SIP/2.0/UDP h:65535",
    "SIP/2.0/UDP h:1",
    "SIP/2.0/UDP h:05060",
    'SIP/2.0/UDP h;x="quoted, with comma"',
    "SIP/2.0/UDP iftgw.example.com",  # RFC 2543: no branch
    "SIP/2.0/UDP h.example.com.",
]
INVALID_VIAS = [
    "garbage", "SIP/2.0/UDP", "SIP/2.0/UDP ", "SIP/2.0/UDP h:-1", "SIP/2.0/UDP h:65536",
    "SIP/2.0/UDP h:0", "SIP/2.0/UDP h:", "SIP/2.0/UDP h:5a", "SIP/2.0/UDP h;;",
    "SIP/2.0/UDP h;branch=", "SIP/2.0 UDP h", "SIP/3.0/UDP h", "HTTP/2.0/UDP h",
    "SIP/2.0/UDP h,", "SIP/2.0/UDP 192.0.2.15;;,;,,", "SIP/2.0/UDP -h", "SIP/2.0/UDP h_1",
    "SIP/2.0/UDP 256.0.0.1.", "SIP/2.0/UDP [2001:db8:::1]", "SIP/2.0/UDP [1.2.3.4]",
    "SIP/2.0/UDP [::1", "SIP/2.0/U<P h", "SIP/2.0/UDP h extra",
]


@pytest.mark.parametrize("via", VALID_VIAS)
def test_valid_via_parses(via: str) -> None:
    assert valid_via(via)
    msg = parse_message(options(via=via.encode()))
    assert msg.headers.get("via") == via.strip()
    assert parse_message(serialize(make_response(msg, 200))).headers.get("via") == via.strip()


@pytest.mark.parametrize("via", INVALID_VIAS)
def test_invalid_via_is_dropped(via: str) -> None:
    # a response could not be routed back reliably: no answer (docs/sip-parsing.md)
    assert not valid_via(via)
    err = refused(options(via=via.encode()))
    assert_dropped(err, "bad_via")
    assert err.phrase == "Bad Via"


def test_a_bad_second_via_line_is_dropped_too() -> None:
    raw = options(extra=b"Via: SIP/2.0/UDP h:99999;branch=z9hG4bK2\r\n")
    assert_dropped(refused(raw), "bad_via")


# --- Request-URI ------------------------------------------------------------------------------

VALID_URIS = [
    "sip:bob@example.org", "sips:bob@example.org:5061", "SIP:Bob@EXAMPLE.org",
    "sip:+15551234567@192.0.2.1;user=phone", "sip:192.0.2.1", "sip:h:1", "sip:h:65535",
    "sip:alice:secret@h", "sip:bob@[2001:db8::1]:5060;transport=tcp",
    "sip:bob@example.org;transport=udp?Subject=hi&Priority=urgent",
    "sip:%61lice@h;n%61me=v%61lue", "sip:*67#123@h", "sip:user;par=u%40example.net@example.com",
    "sip:a@h;lr;maddr=10.0.0.1", "tel:+1-201-555-0123", "http://www.example.com/x?y=1",
    "urn:service:sos", "soap.beep://192.0.2.103:3002", "nobodyKnowsThisScheme:opaque",
]
INVALID_URIS = [
    "<sip:bob@example.org>", "sip:", "sip:@h", "sip:a@", "sip:a@h:0", "sip:a@h:65536",
    "sip:a@h:", "sip:a@h:-1", "sip:a@h:5x", "sip:a@h;", "sip:a@h;=x", "sip:a@h;x=",
    "sip:a@h?", "sip:a@h?x", "sip:a@-h", "sip:a@h_1", "sip:a%zz@h", "sip:a@b@h",
    "sip:a\x07@h", "sip:a\t@h", "sip:a@256.1.1.1", "sip:a@[2001:db8:::1]", "sip:a@[::1",
    "sip:caf\u00e9@h", "nocolon", ":nothing", "1sip:x", "tel:", "http:<x>", "sip:a@h>",
]


@pytest.mark.parametrize("uri", VALID_URIS)
def test_valid_request_uri(uri: str) -> None:
    assert is_request_uri(uri)
    msg = parse_message(options(uri=uri.encode()))
    assert isinstance(msg, Request) and msg.uri == uri
    assert isinstance(parse_uri(uri), SipUri)


@pytest.mark.parametrize("uri", INVALID_URIS)
def test_invalid_request_uri_is_answered_400(uri: str) -> None:
    assert not is_request_uri(uri)
    with pytest.raises(UriError):
        parse_uri(uri)
    err = refused(options(uri=uri.encode()))
    wire = assert_answered(err, 400, "Bad Request-URI", "bad_request_uri")
    assert b"Call-ID: strict-1@example.com" in wire


def test_request_uri_with_spaces_is_answered_400() -> None:
    err = refused(options(uri=b"sip:user@example.com; lr"))
    assert_answered(err, 400, "Bad Request-URI", "bad_request_uri")


def test_too_long_request_uri_is_414() -> None:
    uri = b"sip:" + b"1" * 5000 + b"@h"
    assert_answered(refused(options(uri=uri)), 414, "Request-URI Too Long", "uri_too_long")
    limits = ParseLimits(max_uri_bytes=30)
    assert parse_message(options(uri=b"sip:" + b"1" * 24 + b"@h"), limits=limits)
    err = refused(options(uri=b"sip:" + b"1" * 25 + b"@h"), limits=limits)
    assert_answered(err, 414, "Request-URI Too Long", "uri_too_long")


@pytest.mark.parametrize(("first", "phrase", "kind"), [
    (b"OPTIONS  sip:bob@example.org SIP/2.0", "Bad Request Line", "bad_request_line"),
    (b"OPTIONS sip:bob@example.org SIP/2.0  ", "Bad Request Line", "bad_request_line"),
    (b"OPTIONS\tsip:bob@example.org\tSIP/2.0", "Bad Request Line", "bad_request_line"),
])
def test_extra_whitespace_in_the_request_line_is_answered(first: bytes, phrase: str,
                                                          kind: str) -> None:
    raw = options().replace(b"OPTIONS sip:bob@example.org SIP/2.0", first)
    assert_answered(refused(raw), 400, phrase, kind)


@pytest.mark.parametrize("first", [b"OPTIONS sip:bob@example.org", b"OPTIONS", b"sip:x SIP/2.0",
                                   b"OPT(IONS sip:x SIP/2.0", b"OPTIONS sip:x HTTP/1.1",
                                   b"OPTIONS a b c HTTP/1.1"])
def test_request_line_without_method_or_version_is_dropped(first: bytes) -> None:
    raw = options().replace(b"OPTIONS sip:bob@example.org SIP/2.0", first)
    assert_dropped(refused(raw), "bad_request_line")


def test_parse_uri_parts() -> None:
    u = parse_uri("SIPS:Alice:pw@Example.COM:05061;Transport=TCP;lr?Subject=a%20b&X=")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips", "Alice", "pw", "example.com", 5061)
    assert u.params == (("transport", "TCP"), ("lr", None))
    assert u.param("TRANSPORT") == "TCP" and u.param("lr") == "" and u.param("x") is None
    assert u.headers == (("Subject", "a%20b"), ("X", "")) and u.is_sip
    host_only = parse_uri("sip:192.0.2.1")
    assert (host_only.user, host_only.host, host_only.port) == (None, "192.0.2.1", None)
    tel = parse_uri("tel:+15551234567;phone-context=example.com")
    assert (tel.scheme, tel.user, tel.host, tel.is_sip) == ("tel", "+15551234567", "", False)
    assert tel.param("phone-context") == "example.com"
    other = parse_uri("urn:service:sos")
    assert (other.scheme, other.user, other.opaque) == ("urn", None, "service:sos")


# --- From, To, Contact ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "ok"), [
    ('"Alice" <sip:alice@example.com>;tag=1', True),
    ("<sip:alice@example.com>", True),
    ("sip:alice@example.com;tag=1", True),
    ("Alice Smith <sip:alice@example.com>", True),
    ("caller<sip:caller@example.com>;tag=323", True),
    ('"J \\"R\\"" <sip:j@h> ; tag = 98asjd8', True),
    ("<tel:+15551234567>;tag=x", True),
    ("Zo\u00eb <sip:zoe@h>", True),
    ("<sip:caf\udce9@h>;tag=1", True),  # a non-UTF-8 byte: kept, the CDR escapes it
    ('"Mr. J. User <sip:j.user@example.com>', False),
    ('"W" < sip:t@h >', False),
    ("Bell, Alexander <sip:a@h>", False),
    ("sip:a@h?Route=x", False),
    ("<sip:a@h>, <sip:b@h>", False),
    ("<sip:a@h", False),
    ("alice", False),
    ("<sip:a@h>;tag", True),
    ("<sip:a@h>;;tag=1", False),
    ("", False),
])
def test_from_and_to_shape(value: str, ok: bool) -> None:
    assert valid_address(value) is ok
    raw = options().replace(b"<sip:alice@example.com>;tag=a1",
                            value.encode("utf-8", "surrogateescape"))
    if ok:
        assert parse_message(raw).headers.get("from") == value.strip()
    else:
        assert_answered(refused(raw), 400, "Bad From", "bad_from")
    raw = options().replace(b"To: <sip:bob@example.org>",
                            b"To: " + value.encode("utf-8", "surrogateescape"))
    if ok:
        assert parse_message(raw).headers.get("to") == value.strip()
    else:
        assert_answered(refused(raw), 400, "Bad To", "bad_to")


@pytest.mark.parametrize(("value", "ok"), [
    ("*", True), ("<sip:a@h>;expires=60, sip:b@h;q=0.5", True),
    ('"A, B" <sip:a@h>, <sip:c@h>', True),
    ("sip:user@example.com?Route=%3Csip:sip.example.com%3E", False),
    ("<sip:a@h>,", False), ("*, <sip:a@h>", False),
])
def test_contact_shape(value: str, ok: bool) -> None:
    assert valid_contact(value) is ok
    raw = options(extra=b"Contact: " + value.encode() + b"\r\n")
    if ok:
        assert parse_message(raw).headers.get("contact") == value
    else:
        assert_answered(refused(raw), 400, "Bad Contact", "bad_contact")


@pytest.mark.parametrize("name", [b"Call-ID", b"CSeq", b"From", b"To", b"Max-Forwards"])
def test_a_repeated_single_header_is_answered_400(name: bytes) -> None:
    line = {b"Call-ID": b"Call-ID: other@h", b"CSeq": b"CSeq: 8 OPTIONS",
            b"From": b"From: <sip:x@h>;tag=2", b"To": b"To: <sip:y@h>",
            b"Max-Forwards": b"Max-Forwards: 5"}[name]
    err = refused(options(extra=line + b"\r\n"))
    assert_answered(err, 400, f"Duplicate {name.decode()}", "duplicate_header")


def test_identical_content_lengths_are_fine_and_conflicting_ones_not() -> None:
    assert parse_message(options(extra=b"l: 0\r\n")).body == b""
    err = refused(options(extra=b"l: 3\r\n"))
    assert_answered(err, 400, "Bad Content-Length", "bad_content_length")


# --- NUL, bare CR, bare LF ------------------------------------------------------------------

COPIED_LINES = {
    "Via": b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKs",
    "From": b"From: <sip:alice@example.com>;tag=a1",
    "To": b"To: <sip:bob@example.org>",
    "Call-ID": b"Call-ID: strict-1@example.com",
    "CSeq": b"CSeq: 7 OPTIONS",
}
BAD_BYTES = {b"\x00": "nul_byte", b"\r": "bare_crlf", b"\n": "bare_crlf"}


@pytest.mark.parametrize("header", sorted(COPIED_LINES))
@pytest.mark.parametrize("byte", sorted(BAD_BYTES))
def test_nul_cr_lf_in_a_copied_header_is_dropped(header: str, byte: bytes) -> None:
    line = COPIED_LINES[header]
    for spot in (len(line) - 1, len(header) + 3, len(line)):  # inside, start, end of the value
        bad = line[:spot] + byte + line[spot:]
        err = refused(options(replace=(line, bad)))
        assert_dropped(err, BAD_BYTES[byte])


@pytest.mark.parametrize("byte", sorted(BAD_BYTES))
@pytest.mark.parametrize("where", [b"OPTIONS sip:bob@exa", b"OPTIONS sip:bob@example.org SIP/2.0"])
def test_nul_cr_lf_in_the_start_line_is_dropped(byte: bytes, where: bytes) -> None:
    raw = options().replace(where, where + byte, 1)
    assert_dropped(refused(raw), BAD_BYTES[byte])


@pytest.mark.parametrize("byte", sorted(BAD_BYTES))
@pytest.mark.parametrize("name", [b"Subject", b"User-Agent", b"Timestamp", b"X-Custom"])
def test_nul_cr_lf_elsewhere_is_answered_400_naming_the_header(byte: bytes, name: bytes) -> None:
    raw = options(extra=name + b": one" + byte + b"two\r\nSupported: timer\r\n")
    err = refused(raw)
    assert_answered(err, 400, f"Bad Header {name.decode()}", BAD_BYTES[byte])
    assert err.request is not None
    assert name.decode() not in err.request.headers  # left out, so no answer can copy it
    assert err.request.headers.get("supported") == "timer"
    for status in (100, 200, 400, 487):  # 100 copies Timestamp: not this one
        serialize(make_response(err.request, status))


def test_a_bare_lf_cannot_smuggle_a_header() -> None:
    raw = options(extra=b"Subject: hi\nVia: SIP/2.0/UDP evil.example.com;branch=z9hG4bKe\r\n")
    err = refused(raw)
    assert_answered(err, 400, "Bad Header Subject", "bare_crlf")
    assert err.request is not None
    assert err.request.headers.get_all("via") == ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKs"]


def test_nul_in_a_header_name_or_a_continuation_line() -> None:
    assert_dropped(refused(options(extra=b"Sub\x00ject: x\r\n")), "nul_byte")
    err = refused(options(extra=b"Subject: a\r\n b\x00c\r\n"))
    assert_answered(err, 400, "Bad Header Subject", "nul_byte")


def test_a_nul_in_the_body_is_fine() -> None:
    raw = options(replace=(b"Content-Length: 0\r\n\r\n", b"Content-Length: 3\r\n\r\na\x00\n"))
    assert parse_message(raw).body == b"a\x00\n"


# --- responses, reason phrases, SipParseError ---------------------------------------------------

RESPONSE = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKr\r\n"
            b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: r@h\r\n"
            b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(("old", "new", "kind"), [
    (b"CSeq: 1 INVITE", b"CSeq: 99999999999 INVITE", "bad_cseq"),
    (b"Via: SIP/2.0/UDP 192.0.2.10;", b"Via: SIP/2.0/UDP 192.0.2.10:0;", "bad_via"),
    (b"To: <sip:b@h>", b"To: <sip:b@h", "bad_to"),
    (b"Call-ID: r@h", b"Call-ID: r\x00@h", "nul_byte"),
    (b"200 OK", b"200 O\x07K", "bad_status_line"),
])
def test_a_bad_response_is_never_answered(old: bytes, new: bytes, kind: str) -> None:
    assert_dropped(refused(RESPONSE.replace(old, new)), kind)


def test_reason_phrase_may_hold_any_printable_text() -> None:
    msg = parse_message(RESPONSE.replace(b"200 OK", "200 Très\u00a0bien\tok".encode()))
    assert isinstance(msg, Response) and msg.reason == "Très\u00a0bien\tok"


def test_parse_error_phrase_is_always_printable_ascii() -> None:
    assert SipParseError("x", 400, phrase="Bad\r\nInjected: 1").phrase == "Bad Request"
    assert SipParseError("x", 414).phrase == "Request-URI Too Long"
    assert SipParseError("x", 499, phrase="").phrase == "Request Failure"
    assert SipParseError("x", 400, phrase="Caf\u00e9").phrase == "Bad Request"


def test_a_long_header_name_is_cut_in_the_phrase() -> None:
    name = b"X-" + b"a" * 200
    err = refused(options(extra=name + b": \x00\r\n"))
    assert err.phrase == "Bad Header " + ("X-" + "a" * 38) and len(err.phrase) < 60


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
