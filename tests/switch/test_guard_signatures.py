"""The guard's signature layer (switch.guard.signatures): string matches on raw datagrams.

Scanner names count only in User-Agent, From and To header lines (compact f/t too, names
case-insensitive, values matched case-insensitively), never in the request line, another
header or the body; OPTIONS / REGISTER / unserved methods and URI schemes follow their toggles;
responses and CRLF keep-alives skip the layer; nothing raises on any input (hypothesis,
derandomized and bounded: ``GUARD_FUZZ_EXAMPLES=100000`` to hunt longer, ``GUARD_FUZZ_SEED=<n>``
to explore from another seed).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from switch.config_types import SCANNER_AGENTS, GuardSettings
from switch.guard import SCAN_LIMIT, Rule, Signatures
from switch.guard.signatures import call_id, has_to_tag, header_block

EXAMPLES = int(os.environ.get("GUARD_FUZZ_EXAMPLES", "1500"))
SEED = os.environ.get("GUARD_FUZZ_SEED")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(test: Callable[..., None]) -> Callable[..., None]:
    test = FUZZ(test)
    return seed(int(SEED))(test) if SEED is not None else test


DEFAULT = Signatures(GuardSettings())


def request(method: str = "INVITE", uri: str = "sip:+15551234567@sw.example.net",
            headers: tuple[str, ...] = (), body: str = "", eol: str = "\r\n") -> bytes:
    lines = [f"{method} {uri} SIP/2.0",
             "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1",
             "Max-Forwards: 70",
             "From: <sip:1000@198.51.100.7>;tag=a1",
             "To: <sip:+15551234567@sw.example.net>",
             "Call-ID: c1@198.51.100.7",
             f"CSeq: 1 {method}",
             *headers,
             f"Content-Length: {len(body.encode())}"]
    return (eol.join(lines) + eol + eol + body).encode()


def with_header(name_value: str) -> bytes:
    """An INVITE whose From/To line is replaced by (or a line added as) ``name_value``."""
    data = request()
    name = name_value.split(":", 1)[0].strip().lower()
    lines = data.split(b"\r\n")
    if name in ("from", "f"):
        lines = [ln for ln in lines if not ln.startswith(b"From:")]
    elif name in ("to", "t"):
        lines = [ln for ln in lines if not ln.startswith(b"To:")]
    lines.insert(2, name_value.encode())
    return b"\r\n".join(lines)


HEADER_FORMS = [
    "User-Agent: {}",
    "user-agent:{}",
    "USER-AGENT :  v1.2 {} (linux)",
    'From: "{}" <sip:100@198.51.100.7>;tag=x',
    "from:<sip:{}@198.51.100.7>;tag=x",
    "f: <sip:100@198.51.100.7>;tag={}",
    "To: <sip:{}@203.0.113.5>",
    "TO:\t\"x {} y\" <sip:100@203.0.113.5>",
    "t: <sip:100@203.0.113.5;user={}>",
]


@pytest.mark.parametrize("agent", SCANNER_AGENTS)
@pytest.mark.parametrize("form", HEADER_FORMS)
@pytest.mark.parametrize("case", [str, str.lower, str.upper, str.swapcase])
def test_default_scanner_agents_match_in_agent_headers(agent: str, form: str,
                                                       case: Callable[[str], str]) -> None:
    assert DEFAULT.classify(with_header(form.format(case(agent)))) is Rule.SCANNER


@pytest.mark.parametrize("agent", SCANNER_AGENTS)
@pytest.mark.parametrize("where", ["body", "contact", "subject", "call-id", "via", "x-header",
                                   "request-uri", "header-name"])
def test_scanner_agents_elsewhere_do_not_match(agent: str, where: str) -> None:
    headers: tuple[str, ...] = ("User-Agent: Carrier SBC 4.2",)
    body = ""
    uri = "sip:100@sw.example.net"
    if where == "body":
        body = f"v=0\r\ns={agent}\r\nUser-Agent: {agent}\r\nFrom: {agent}\r\n"
    elif where == "contact":
        headers += (f"Contact: <sip:{agent}@198.51.100.7>",)
    elif where == "subject":
        headers += (f"Subject: {agent}",)
    elif where == "call-id":
        headers += (f"X-Call: {agent}",)
    elif where == "via":
        headers += (f"Via: SIP/2.0/UDP {agent}.example:5060;branch=z9hG4bK-2",)
    elif where == "x-header":
        headers += (f"X-User-Agent: {agent}", f"X-From: {agent}")
    elif where == "request-uri":
        uri = f"sip:{agent}@sw.example.net"
    else:
        headers += (f"{agent}: 1",)
    assert DEFAULT.classify(request(uri=uri, headers=headers, body=body)) is None


def test_body_after_bare_lf_blank_line_is_not_searched() -> None:
    lf = request(headers=("User-Agent: ok",), body="From: sipvicious\n", eol="\n")
    assert DEFAULT.classify(lf) is None
    assert DEFAULT.classify(lf.replace(b"User-Agent: ok", b"User-Agent: sipvicious")) \
        is Rule.SCANNER


def test_folded_user_agent_continuation_matches() -> None:
    data = request(headers=("User-Agent: Something", "  friendly-scanner 1.0"))
    assert DEFAULT.classify(data) is Rule.SCANNER
    # a continuation of another header does not
    assert DEFAULT.classify(request(headers=("Subject: Something", "\tfriendly-scanner"))) is None


def test_scanner_beyond_the_scan_limit_is_not_searched() -> None:
    pad = tuple(f"X-Pad-{k}: {'a' * 90}" for k in range(SCAN_LIMIT // 90 + 5))
    late = request(headers=(*pad, "User-Agent: sipvicious"))
    early = request(headers=("User-Agent: sipvicious", *pad))
    assert DEFAULT.classify(late) is None
    assert DEFAULT.classify(early) is Rule.SCANNER


def test_configured_agents_replace_the_defaults() -> None:
    sig = Signatures(GuardSettings(scanner_agents=("EvilDialer", " ")))
    assert sig.classify(with_header("User-Agent: evildialer/2")) is Rule.SCANNER
    assert sig.classify(with_header("User-Agent: friendly-scanner")) is None
    assert Signatures(GuardSettings(scanner_agents=())).classify(
        with_header("User-Agent: friendly-scanner")) is None


def test_options_toggle() -> None:
    options = request("OPTIONS", "sip:100@203.0.113.5")
    assert DEFAULT.classify(options) is Rule.OPTIONS
    # OPTIONS is cheapest: a scanner's OPTIONS is an OPTIONS drop (no ban), not SCANNER
    assert DEFAULT.classify(request("OPTIONS", headers=("User-Agent: friendly-scanner",))) \
        is Rule.OPTIONS
    allow = Signatures(GuardSettings(drop_options_from_untrusted=False))
    assert allow.classify(options) is None
    assert allow.classify(request("OPTIONS", headers=("User-Agent: sipcli/v1",))) is Rule.SCANNER


def test_register_toggle() -> None:
    register = request("REGISTER", "sip:sw.example.net")
    assert DEFAULT.classify(register) is None  # default: registering gateways have no fixed IP
    assert Signatures(GuardSettings(drop_register_from_untrusted=True)).classify(register) \
        is Rule.REGISTER
    assert DEFAULT.classify(request("REGISTER", headers=("User-Agent: friendly-scanner",))) \
        is Rule.SCANNER


@pytest.mark.parametrize("method", ["SUBSCRIBE", "MESSAGE", "NOTIFY", "PUBLISH", "REFER",
                                    "PRACK", "invite", "FOO", "X" * 30])
def test_unserved_methods(method: str) -> None:
    assert DEFAULT.classify(request(method)) is Rule.UNSERVED
    assert Signatures(GuardSettings(drop_unserved=False)).classify(request(method)) is None


@pytest.mark.parametrize("method", ["INVITE", "ACK", "CANCEL", "BYE", "UPDATE", "INFO",
                                    "REGISTER"])
@pytest.mark.parametrize("uri", ["sip:1@h", "SIP:1@h", "sips:1@h", "Sips:1@h;transport=tls"])
def test_served_methods_and_schemes_pass(method: str, uri: str) -> None:
    assert DEFAULT.classify(request(method, uri)) is None


@pytest.mark.parametrize("uri", ["tel:+15551234567", "http://x", "urn:service:sos", "sipx:1@h",
                                 "<sip:1@h>", "", "s"])
def test_unserved_uri_schemes(uri: str) -> None:
    assert DEFAULT.classify(request("INVITE", uri)) is Rule.UNSERVED
    assert Signatures(GuardSettings(drop_unserved=False)).classify(request("INVITE", uri)) is None


@pytest.mark.parametrize("status", ["100 Trying", "200 OK", "404 Not Found", "503 Busy"])
def test_responses_skip_the_signature_layer(status: str) -> None:
    data = (f"SIP/2.0 {status}\r\nUser-Agent: friendly-scanner\r\nFrom: sipvicious\r\n"
            "CSeq: 1 OPTIONS\r\n\r\n").encode()
    assert DEFAULT.classify(data) is None


def test_garbage_empty_and_keepalive() -> None:
    assert DEFAULT.classify(b"") is Rule.UNSERVED
    assert DEFAULT.classify(b"\x00\xff\x10binary") is Rule.UNSERVED
    assert DEFAULT.classify(b"\r\n\r\n") is None  # RFC 5626 keep-alive
    assert DEFAULT.classify(b"\n") is None
    lenient = Signatures(GuardSettings(drop_unserved=False))
    assert lenient.classify(b"") is None
    assert lenient.classify(b"garbage\r\nUser-Agent: SIPScan\r\n\r\n") is Rule.SCANNER


def test_huge_datagram_is_bounded_and_classified() -> None:
    huge = request(headers=("User-Agent: x",), body="a" * 2_000_000)
    assert DEFAULT.classify(huge) is None
    assert DEFAULT.classify(b"INVITE " + b"\n" * 1_000_000) is Rule.UNSERVED


def test_helpers_to_tag_and_call_id() -> None:
    assert not has_to_tag(request())
    assert has_to_tag(with_header("To: <sip:1@h>;tag=77"))
    assert has_to_tag(with_header("t: <sip:1@h> ; TAG = 77"))
    assert not has_to_tag(request(body="To: <sip:1@h>;tag=9\r\n"))
    assert call_id(request()) == "c1@198.51.100.7"
    assert call_id(request().replace(b"Call-ID: c1", b"i:  XyZ")) == "XyZ@198.51.100.7"
    assert call_id(b"INVITE sip:1@h SIP/2.0\r\n\r\n") is None
    assert header_block(b"A\nB: C\n\nD") == b"a\nb: c"


TOKENS = st.sampled_from([b"INVITE ", b"OPTIONS ", b"REGISTER ", b"SIP/2.0 ", b"sip:", b"tel:",
                          b"\r\n", b"\n", b"\r\n\r\n", b"User-Agent:", b"f:", b"t :", b"To:",
                          b"From:", b" ", b"\t", b"friendly-scanner", b"SIPVICIOUS", b";tag=",
                          b"Call-ID:", b"i:", b"\x00", b"\xff", b":"])
MESSAGES = st.one_of(st.binary(max_size=2000),
                     st.lists(st.one_of(TOKENS, st.binary(max_size=20)), max_size=60)
                     .map(b"".join))


@fuzz
@given(data=MESSAGES, options=st.booleans(), unserved=st.booleans(), register=st.booleans())
def test_never_raises(data: bytes, options: bool, unserved: bool, register: bool) -> None:
    sig = Signatures(GuardSettings(drop_options_from_untrusted=options, drop_unserved=unserved,
                                   drop_register_from_untrusted=register))
    rule = sig.classify(data)
    assert rule is None or isinstance(rule, Rule)
    assert rule not in (Rule.BANNED, Rule.RECENT, Rule.HASHLIMIT, Rule.DIALOGS_PER_IP,
                        Rule.DIALOGS_PER_24)
    if data.startswith(b"SIP/2.0 "):
        assert rule is None
    has_to_tag(data)
    call_id(data)


@fuzz
@given(agent=st.sampled_from(SCANNER_AGENTS), prefix=st.text(max_size=20).filter(
    lambda s: "\n" not in s and "\r" not in s), form=st.sampled_from(HEADER_FORMS))
def test_any_value_around_an_agent_still_matches(agent: str, prefix: str, form: str) -> None:
    value = prefix + agent
    assert DEFAULT.classify(with_header(form.format(value))) is Rule.SCANNER
