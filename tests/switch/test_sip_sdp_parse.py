"""SDP parsing, serialization and malformed bodies (switch.sip.sdp).

The bodies (tests/switch/sip_traces.py) are shaped like what carrier gear actually sends:
Asterisk/FreeSWITCH style offers with PCMA/PCMU/G729 and telephone-event, a softphone with IPv6,
an answer that rejects video.
"""

from __future__ import annotations

import pytest

from switch.sip.sdp import (
    Media,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    parse_sdp,
    serialize_sdp,
)
from tests.switch.sip_traces import ANSWER, OFFER, REJECTING_ANSWER, RICH, crlf

# --- parsing ---------------------------------------------------------------------------------


def test_parse_offer_session_level_connection() -> None:
    sd = parse_sdp(OFFER)
    assert sd.version == 0
    assert sd.origin == Origin("FreeSWITCH", "1712345678", 1712345679, "IN", "IP4", "203.0.113.10")
    assert sd.session_name == "FreeSWITCH"
    assert (sd.connection, sd.connection_addrtype) == ("203.0.113.10", "IP4")
    assert sd.times == [Timing(0, 0)]
    assert sd.attributes == []
    assert len(sd.media) == 1
    m = sd.media[0]
    assert (m.kind, m.port, m.proto, m.formats) == (
        "audio",
        24580,
        "RTP/AVP",
        ["8", "0", "18", "101"],
    )
    assert m.connection is None  # the session-level c= applies
    assert m.attributes == [
        ("rtpmap", "8 PCMA/8000"),
        ("rtpmap", "0 PCMU/8000"),
        ("rtpmap", "18 G729/8000"),
        ("fmtp", "18 annexb=no"),
        ("rtpmap", "101 telephone-event/8000"),
        ("fmtp", "101 0-16"),
        ("ptime", "20"),
        ("sendrecv", None),
    ]
    assert m.attribute("ptime") == "20"
    assert m.attribute("sendrecv") is None
    assert m.attribute("absent") is None


def test_parse_answer_media_level_connection() -> None:
    sd = parse_sdp(ANSWER)
    assert sd.connection is None
    assert sd.media[0].connection == "198.51.100.21"
    assert sd.media[0].connection_addrtype == "IP4"


def test_parse_rich_ipv6_multiple_media_and_verbatim_lines() -> None:
    sd = parse_sdp(RICH)
    assert (sd.connection, sd.connection_addrtype) == ("2001:db8::10", "IP6")
    assert sd.origin.addrtype == "IP6"
    assert sd.times == [Timing(2873397496, 2873404696, ["7d 1h 0 25h"])]
    assert sd.lines == [
        ("i", "A two-stream call"),
        ("u", "http://www.example.com/seminars/sdp.pdf"),
        ("e", "alice@example.com (Alice)"),
        ("p", "+1 617 555-6011"),
        ("b", "AS:256"),
        ("z", "2882844526 -1h 2898848070 0"),
        ("k", "prompt"),
    ]
    assert sd.attributes == [("tool", "softphone 1.2"), ("recvonly", None)]
    assert sd.attribute("tool") == "softphone 1.2"
    audio, video = sd.media
    assert (audio.connection, audio.connection_addrtype) == ("2001:db8::11", "IP6")
    assert audio.lines == [("i", "voice"), ("b", "AS:64")]
    assert (video.kind, video.port, video.formats, video.connection) == (
        "video",
        51372,
        ["31", "34"],
        None,
    )
    assert video.lines == [("b", "AS:192")]


def test_parse_rejected_stream_port_zero() -> None:
    sd = parse_sdp(REJECTING_ANSWER)
    assert [m.port for m in sd.media] == [7000, 0]


def test_parse_accepts_lf_and_trailing_blank_lines() -> None:
    lf = OFFER.replace(b"\r\n", b"\n")
    assert parse_sdp(lf) == parse_sdp(OFFER)
    assert parse_sdp(OFFER + b"\r\n\r\n") == parse_sdp(OFFER)
    assert parse_sdp(OFFER.rstrip(b"\r\n")) == parse_sdp(OFFER)  # no final line end


def test_parse_keeps_attribute_with_empty_value_and_colons() -> None:
    sd = parse_sdp(crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "a=x-empty:", "a=x-url:a:b:c"))
    assert sd.attributes == [("x-empty", ""), ("x-url", "a:b:c")]


def test_parse_port_count_and_non_rtp_stream() -> None:
    sd = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
            "m=video 49170/2 RTP/AVP 31",
            "m=image 4002 udptl t38",
            "a=T38FaxVersion:0",
        )
    )
    video, image = sd.media
    assert (video.port, video.port_count) == (49170, 2)
    assert (image.proto, image.formats) == ("udptl", ["t38"])
    assert serialize_sdp(sd).count(b"m=video 49170/2 RTP/AVP 31\r\n") == 1


# --- serializing and round trips --------------------------------------------------------------


@pytest.mark.parametrize("body", [OFFER, ANSWER, RICH, REJECTING_ANSWER], ids=lambda b: b[:40])
def test_round_trip_is_byte_exact_for_well_ordered_bodies(body: bytes) -> None:
    assert serialize_sdp(parse_sdp(body)) == body


def test_round_trip_lf_input_becomes_crlf() -> None:
    assert serialize_sdp(parse_sdp(RICH.replace(b"\r\n", b"\n"))) == RICH


def test_serialize_puts_out_of_order_lines_in_rfc_order_and_is_then_stable() -> None:
    messy = crlf(
        "v=0",
        "o=- 5 5 IN IP4 10.0.0.1",
        "s=-",
        "b=CT:128",  # before c=: allowed through, moved after c=
        "c=IN IP4 10.0.0.1",
        "i=info after c",
        "a=sendrecv",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "a=ptime:20",
        "b=AS:80",
        "c=IN IP4 10.0.0.2",
    )
    once = serialize_sdp(parse_sdp(messy))
    assert once == crlf(
        "v=0",
        "o=- 5 5 IN IP4 10.0.0.1",
        "s=-",
        "i=info after c",
        "c=IN IP4 10.0.0.1",
        "b=CT:128",
        "t=0 0",
        "a=sendrecv",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 10.0.0.2",
        "b=AS:80",
        "a=ptime:20",
    )
    assert serialize_sdp(parse_sdp(once)) == once


def test_serialize_built_from_objects() -> None:
    sd = SessionDescription(
        version=0,
        origin=Origin("switch", "99", 1, "IN", "IP6", "2001:db8::1"),
        session_name="ratelab",
        connection="2001:db8::1",
        connection_addrtype="IP6",
        media=[
            Media(
                "audio",
                20000,
                "RTP/AVP",
                ["8", "101"],
                [
                    ("rtpmap", "8 PCMA/8000"),
                    ("rtpmap", "101 telephone-event/8000"),
                    ("sendrecv", None),
                ],
            )
        ],
    )
    body = serialize_sdp(sd)
    assert body == crlf(
        "v=0",
        "o=switch 99 1 IN IP6 2001:db8::1",
        "s=ratelab",
        "c=IN IP6 2001:db8::1",
        "t=0 0",
        "m=audio 20000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    )
    assert parse_sdp(body) == sd


# --- malformed bodies ------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", 1, "empty SDP body", id="empty"),
    pytest.param(b"\r\n\r\n", 1, "empty SDP body", id="only-blank-lines"),
    pytest.param(crlf("o=- 1 1 IN IP4 h", "s=-", "t=0 0"), 1, "first line must be v=0", id="no-v"),
    pytest.param(
        crlf("v=1", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"), 1, "unsupported SDP version '1'", id="v=1"
    ),
    pytest.param(crlf("v=0", "s=-", "t=0 0"), 2, "second line must be o=", id="no-o"),
    pytest.param(
        crlf("v=0", "o=- 1 x1 IN IP4 h", "s=-", "t=0 0"),
        2,
        "o= session version is not numeric: 'x1'",
        id="o-version",
    ),
    pytest.param(
        crlf("v=0", "o=- abc 1 IN IP4 h", "s=-", "t=0 0"),
        2,
        "o= session id is not numeric",
        id="o-id",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4", "s=-", "t=0 0"), 2, "o= needs 6 fields, got 5", id="o-short"
    ),
    pytest.param(crlf("v=0", "o=- 1 1 IN IP4 h", "t=0 0"), 3, "third line must be s=", id="no-s"),
    pytest.param(crlf("v=0", "o=- 1 1 IN IP4 h", "s=-"), 4, "missing t= line", id="no-t"),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "m=audio 4000 RTP/AVP 0"),
        4,
        "m= before any t= line",
        id="m-before-t",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=now 0"),
        4,
        "t= needs two decimal times",
        id="t-bad",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio abc RTP/AVP 0"),
        5,
        "m= port is not a number 0-65535: 'abc'",
        id="m-port-text",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 65536 RTP/AVP 0"),
        5,
        "m= port is not a number",
        id="m-port-range",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio -1 RTP/AVP 0"),
        5,
        "m= port is not a number",
        id="m-port-negative",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 4000 RTP/AVP"),
        5,
        "m= needs media, port, proto and formats",
        id="m-no-formats",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 4000/0 RTP/AVP 0"),
        5,
        "m= port count",
        id="m-port-count",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "this line has no equals", "t=0 0"),
        4,
        "no '=' in 'this line has no equals'",
        id="no-equals",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "", "t=0 0"), 4, "no '='", id="blank-line-inside"
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "ab=c", "t=0 0"),
        4,
        "type must be one lowercase letter, got 'ab'",
        id="long-type",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "C=IN IP4 h", "t=0 0"),
        4,
        "type must be one lowercase letter",
        id="upper-type",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4", "t=0 0"),
        4,
        "c= needs 3 fields",
        id="c-short",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IPX h", "t=0 0"),
        4,
        "c= address type must be IP4 or IP6",
        id="c-addrtype",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=ATM NSAP h", "t=0 0"),
        4,
        "c= network type must be IN",
        id="c-nettype",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 a", "c=IN IP4 b", "t=0 0"),
        5,
        "duplicate session-level c=",
        id="c-twice",
    ),
    pytest.param(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 h",
            "s=-",
            "t=0 0",
            "m=audio 1 RTP/AVP 0",
            "c=IN IP4 a",
            "c=IN IP4 b",
        ),
        7,
        "duplicate c= line in m= section",
        id="media-c-twice",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "o=- 1 1 IN IP4 h", "t=0 0"),
        4,
        "duplicate o= line",
        id="o-twice",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 1 RTP/AVP 0", "t=0 0"),
        6,
        "t= is a session-level line, found after m=",
        id="t-in-media",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "r=7d 1h 0", "t=0 0"),
        4,
        "r= before any t= line",
        id="r-before-t",
    ),
    pytest.param(
        crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "a=:x"),
        5,
        "a= has no attribute name",
        id="a-no-name",
    ),
    pytest.param(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xff\r\nt=0 0\r\n", 3, "not UTF-8", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "line", "reason"), MALFORMED)
def test_malformed_bodies_name_the_line(body: bytes, line: int, reason: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(body)
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"line {line}: ")
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_lf_only_malformed_body_counts_lines_the_same() -> None:
    body = b"v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 99999 RTP/AVP 0\n"
    with pytest.raises(SdpError, match=r"^line 5: m= port"):
        parse_sdp(body)
