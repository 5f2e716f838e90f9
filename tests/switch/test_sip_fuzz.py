"""Fuzzing the SIP parser (hypothesis): whatever arrives, only SipParseError comes out.

Properties over :func:`switch.sip.parse_message` and :class:`switch.sip.StreamParser`:

- random bytes, mutations of the torture corpus (every ``*.sip`` under tests/switch/torture/,
  RFC 4475's messages included: byte flips, inserted CR/LF/NUL/0xFF and SIP punctuation,
  deletions, truncation, duplicated ranges) and messages assembled from odd header values never
  raise anything but :class:`SipParseError`, whose ``kind`` is one of the documented keys;
- every parsed request can be answered: ``make_response(req, status)`` and ``serialize`` work
  for any status, and the answer parses back; an answerable error's request can be answered
  with the error's status and phrase;
- ``parse_message(serialize(msg))`` gives back the method, URI, status, header fields (but
  Content-Length, which serialize rewrites) and body;
- what the parser lets through, its validators agree with (Request-URI, Via, From, To);
- a byte stream fed to StreamParser in random chunks yields the same messages and the same
  error as fed whole.

CI runs a bounded, reproducible number of examples (``derandomize=True``: the same inputs every
run). Run longer to hunt, for example::

    SIP_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest tests/switch/test_sip_fuzz.py -q

(``derandomize`` stays on, so more examples explore further from the same seed; set
``SIP_FUZZ_SEED=<n>`` to explore from another one.) A failure prints the shrunk input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

from switch.sip import (
    ParseLimits,
    Request,
    Response,
    SipParseError,
    StreamParser,
    is_request_uri,
    make_response,
    parse_message,
    parse_uri,
    serialize,
)
from switch.sip.message import Message
from switch.sip.syntax import valid_address, valid_via
from switch.sip.uri import UriError

EXAMPLES = int(os.environ.get("SIP_FUZZ_EXAMPLES", "1500"))
SEED = os.environ.get("SIP_FUZZ_SEED")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,  # nothing written into the tree; derandomize makes runs reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)


def fuzz(test: Callable[..., None]) -> Callable[..., None]:
    """FUZZ settings, and SIP_FUZZ_SEED when set."""
    test = FUZZ(test)
    return seed(int(SEED))(test) if SEED is not None else test


TORTURE = Path(__file__).parent / "torture"
CORPUS: list[bytes] = [p.read_bytes() for p in sorted(TORTURE.rglob("*.sip"))]

# The counter keys the parser may give (docs/sip-parsing.md lists them with their phrases).
KINDS = {
    "empty", "too_large", "too_many_headers", "header_too_long", "uri_too_long", "nul_byte",
    "bare_crlf", "bad_request_line", "bad_request_uri", "bad_version", "bad_status_line",
    "bad_header_name", "bad_header_line", "missing_header", "bad_via", "bad_cseq", "bad_from",
    "bad_to", "bad_contact", "bad_max_forwards", "bad_content_length", "duplicate_header",
    "no_empty_line", "missing_content_length", "body_too_large",
}
# serialize() may legitimately make a message a little larger (compact names expanded, a
# Content-Length added) or add a field: parse what it wrote without those two limits.
ROOMY = ParseLimits(max_message_bytes=1 << 20, max_headers=1 << 16)
STATUSES = (100, 180, 200, 400, 404, 481, 487, 500, 503, 699)


def _fields(msg: Message) -> list[tuple[str, str]]:
    return [(n, v) for n, v in msg.headers.items() if n != "Content-Length"]


def _clean_head(wire: bytes) -> None:
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head
    assert head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n")


def check_parsed(msg: Message) -> None:
    """Answerable, round-trips, and agrees with the validators."""
    wire = serialize(msg)
    _clean_head(wire)
    again = parse_message(wire, limits=ROOMY)
    assert type(again) is type(msg)
    assert _fields(again) == _fields(msg) and again.body == msg.body
    if isinstance(msg, Response):
        assert isinstance(again, Response)
        assert (again.status, again.reason) == (msg.status, msg.reason)
        return
    assert isinstance(again, Request)
    assert (again.method, again.uri, again.version) == (msg.method, msg.uri, msg.version)
    assert is_request_uri(msg.uri)
    parse_uri(msg.uri)  # never UriError for a URI the parser let through
    for via in msg.headers.get_all("via"):
        assert valid_via(via)
    assert valid_address(msg.headers.get("from") or "")
    assert valid_address(msg.headers.get("to") or "")
    for status in STATUSES:
        response = make_response(msg, status, to_tag="fz1")
        out = serialize(response)
        _clean_head(out)
        back = parse_message(out, limits=ROOMY)
        assert isinstance(back, Response) and back.status == status


def check_error(err: SipParseError) -> None:
    assert err.kind in KINDS, (err.kind, err.reason)
    assert err.phrase and err.phrase.isascii() and err.phrase.isprintable()
    assert err.can_reply == (err.request is not None)
    if err.request is not None:
        out = serialize(make_response(err.request, err.status, err.phrase))
        _clean_head(out)
        assert out.startswith(f"SIP/2.0 {err.status} {err.phrase}\r\n".encode())
        for status in (100, 400):
            serialize(make_response(err.request, status))


def check_datagram(data: bytes) -> None:
    """Any exception but SipParseError fails the test (hypothesis reports the input)."""
    try:
        msg = parse_message(data)
    except SipParseError as err:
        check_error(err)
        return
    check_parsed(msg)


# --- mutations ---------------------------------------------------------------------------------

INSERTS = [b"\r", b"\n", b"\x00", b"\xff", b"\r\n", b"\r\n ", b"\r\n\r\n", b" ", b"\t", b":",
           b";", b",", b"<", b">", b'"', b"\\", b"%", b"@", b"[", b"]", b"/", b"=", b"?",
           b"SIP/2.0", b"9" * 12, b"-1", b"65536", b"\xc3\xa9", b"\xed\xa0\x80", b"v: ",
           b"Content-Length: 5\r\n", b"Via: SIP/2.0/UDP h\r\n", b"\x7f", b"\x0b"]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.sampled_from(INSERTS)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("duplicate"), st.integers(0, 1 << 16), st.integers(1, 200)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    """Apply each mutation at its position (taken modulo the length)."""
    buf = bytearray(data)
    for op, where, arg in mutations:
        at = where % (len(buf) + 1)
        if op == "flip" and buf:
            buf[at % len(buf)] = arg
        elif op == "insert":
            buf[at:at] = arg
        elif op == "delete":
            del buf[at : at + arg]
        elif op == "truncate":
            del buf[at:]
        elif op == "duplicate":
            buf[at:at] = buf[at : at + arg]
    return bytes(buf)


corpus_message = st.sampled_from(CORPUS)
mutated = st.builds(mutate, corpus_message, st.lists(mutation, min_size=1, max_size=4))


# --- properties ----------------------------------------------------------------------------------


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 49 + 14 + 28


@fuzz
@given(st.binary(max_size=1500))
def test_random_bytes(data: bytes) -> None:
    check_datagram(data)


@fuzz
@given(mutated)
def test_mutated_corpus(data: bytes) -> None:
    check_datagram(data)


@fuzz
@given(st.sampled_from(CORPUS))
def test_corpus_itself(data: bytes) -> None:
    check_datagram(data)


# Messages assembled from parts that are mostly valid and sometimes odd: they get past the start
# line far more often than random bytes, so the header validators are exercised.


def mostly(valid: st.SearchStrategy, *odd_ones: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` about seven times in eight, else one of ``odd_ones``."""
    odd_one = st.one_of(*odd_ones)
    return st.sampled_from(range(8)).flatmap(lambda i: odd_one if i == 0 else valid)


URI_CHARS = "abcAB09+-.@:;=?&%[]<>/ _\t\x07#*!~'()$,\"\\\u00e9"
TEXT_CHARS = "abz09 \t<>\"\\;,:=@.%/[]*-_+!~'()?#\x00\r\n\x07\u00e9\udcff"
odd = st.text(alphabet=TEXT_CHARS, max_size=40)

method = mostly(st.sampled_from(["INVITE", "OPTIONS", "BYE", "NEW.METHOD", "X!%"]),
                st.sampled_from(["IN VITE", "", "A\x00"]))
request_uri = mostly(
    st.sampled_from(["sip:bob@example.org", "sip:+15551234567@192.0.2.1:5060;user=phone",
                     "sips:[2001:db8::1]", "tel:+1555", "urn:x:y", "sip:a@h;lr?x=%41"]),
    st.sampled_from(["<sip:a@h>", "sip:a@h:0", "sip:a@h:65536"]),
    st.text(alphabet=URI_CHARS, max_size=40),
    st.builds(lambda u, h, p: f"sip:{u}@{h}{p}", st.text(alphabet=URI_CHARS, max_size=12),
              st.sampled_from(["h", "192.0.2.1", "[::1]", "a-b.example", "-x", "1.2.3.999"]),
              st.sampled_from(["", ":5060", ":0", ":65536", ":", ";lr", "?x=y", ";"])),
)
via = mostly(
    st.sampled_from(["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1", "SIP/2.0/TCP h;rport",
                     "SIP / 2.0 / TLS h.example ; branch = z9hG4bKx , SIP/2.0/UDP [::1]:9"]),
    st.builds(lambda t, h, p, b: f"SIP/2.0/{t} {h}{p};branch=z9hG4bK{b}",
              st.sampled_from(["UDP", "TCP", "XYZ", "U/DP", ""]),
              st.sampled_from(["h", "192.0.2.1", "[2001:db8::1]", "[::g]", "h_1", "h.", ""]),
              st.sampled_from(["", ":5060", ":-1", ":65536", ":", ":0x1"]),
              st.text(alphabet="az09-.;=,", max_size=8)),
    odd,
)
address = mostly(
    st.sampled_from(['"A" <sip:a@h>;tag=1', "<sip:b@h>", "sip:c@h;tag=2", "B <tel:+1>",
                     '"\\"q\\"" <sip:x@h> ; tag = 9']),
    st.builds(lambda d, u, p: f"{d}<{u}>{p}", odd, st.text(alphabet=URI_CHARS, max_size=20),
              st.sampled_from(["", ";tag=x", ";;", " ; tag = y", ",<sip:z@h>"])),
    odd,
)
number = mostly(st.integers(0, 300).map(str), st.integers(-3, 2**33).map(str), odd,
                st.just("9" * 5000), st.just("0" * 30 + "7"))
extra = st.lists(st.tuples(st.sampled_from(["Subject", "Contact", "Timestamp", "X-A", "l",
                                            "Max-Forwards", "Call-ID", "Bad Name", "m"]),
                           mostly(st.text(alphabet="az09 <>:@;=.", max_size=20), odd)),
                 max_size=3)


@fuzz
@given(method, request_uri, via, address, address, number, number, extra,
       st.binary(max_size=30), st.booleans())
def test_assembled_requests(method: str, uri: str, via: str, frm: str, to: str, cseq: str,
                            forwards: str, extra: list[tuple[str, str]], body: bytes,
                            with_length: bool) -> None:
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}", f"From: {frm}", f"To: {to}",
             "Call-ID: fuzz@h", f"CSeq: {cseq} {method}", f"Max-Forwards: {forwards}"]
    lines += [f"{name}: {value}" for name, value in extra]
    if with_length:
        lines.append(f"Content-Length: {len(body)}")
    check_datagram("\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body)


@fuzz
@given(st.one_of(st.text(alphabet=URI_CHARS, max_size=60), request_uri))
def test_uri_parser_agrees_with_the_fast_check(text: str) -> None:
    try:
        uri = parse_uri(text)
    except UriError:
        assert not is_request_uri(text)
        return
    assert is_request_uri(text)
    assert uri.scheme == text.split(":", 1)[0].lower()
    if uri.port is not None:
        assert 1 <= uri.port <= 65535


# --- stream framing ------------------------------------------------------------------------------

STREAMABLE: list[bytes] = []
for _raw in CORPUS:
    with contextlib.suppress(SipParseError):
        STREAMABLE.append(serialize(parse_message(_raw)))  # with a Content-Length


def run_stream(data: bytes, cuts: list[int]) -> tuple[list[bytes], tuple | None]:
    """Feed ``data`` split at ``cuts``; the messages framed and the error (or None)."""
    parser = StreamParser()
    got: list[bytes] = []
    start = 0
    for end in [*sorted(cuts), len(data)]:
        try:
            got += [serialize(m) for m in parser.feed(data[start:end])]
        except SipParseError as err:
            got += [serialize(m) for m in err.framed]
            check_error(err)
            return got, (err.kind, err.status, err.can_reply)
        start = end
    return got, None


stream_piece = st.one_of(st.sampled_from(STREAMABLE), mutated,
                         st.sampled_from([b"\r\n", b"\r\n\r\n", b"garbage\r\n\r\n"]))


@fuzz
@given(st.lists(stream_piece, min_size=1, max_size=4), st.lists(st.integers(0, 1 << 14),
                                                                    max_size=12))
def test_stream_chunks_give_the_same_result_as_whole(pieces: list[bytes],
                                                     cuts: list[int]) -> None:
    data = b"".join(pieces)
    assume(data)
    whole = run_stream(data, [])
    chunked = run_stream(data, [c % (len(data) + 1) for c in cuts])
    assert chunked == whole
    for wire in whole[0]:  # every framed message is a sound message
        check_parsed(parse_message(wire, limits=ROOMY))
