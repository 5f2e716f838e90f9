"""SDP parsing, serialization and relay rewriting (switch.sip.sdp).

The bodies are shaped like what carrier gear actually sends: Asterisk/FreeSWITCH style offers with
PCMA/PCMU/G729 and telephone-event, a softphone with IPv6, an answer that rejects video.
"""

from __future__ import annotations

import copy

import pytest

from switch.sip.sdp import (
    Media,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    codecs,
    first_common_codec,
    parse_sdp,
    rewrite_for_relay,
    serialize_sdp,
)


def crlf(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# A customer's offer: session-level c=, four codecs plus DTMF, fmtp/ptime/sendrecv.
OFFER = crlf(
    "v=0",
    "o=FreeSWITCH 1712345678 1712345679 IN IP4 203.0.113.10",
    "s=FreeSWITCH",
    "c=IN IP4 203.0.113.10",
    "t=0 0",
    "m=audio 24580 RTP/AVP 8 0 18 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=sendrecv",
)

# A vendor's answer: media-level c= only, picks G729, keeps DTMF.
ANSWER = crlf(
    "v=0",
    "o=- 3894561 3894561 IN IP4 198.51.100.20",
    "s=session",
    "t=0 0",
    "m=audio 31000 RTP/AVP 18 101",
    "c=IN IP4 198.51.100.21",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendrecv",
)

# Audio plus video over IPv6, with every kind of verbatim line we keep, in RFC 4566 order.
RICH = crlf(
    "v=0",
    "o=alice 2890844526 2890844527 IN IP6 2001:db8::10",
    "s=Call with video",
    "i=A two-stream call",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=alice@example.com (Alice)",
    "p=+1 617 555-6011",
    "c=IN IP6 2001:db8::10",
    "b=AS:256",
    "t=2873397496 2873404696",
    "r=7d 1h 0 25h",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "a=tool:softphone 1.2",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0 8 101",
    "i=voice",
    "c=IN IP6 2001:db8::11",
    "b=AS:64",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtcp:49171",
    "m=video 51372 RTP/AVP 31 34",
    "b=AS:192",
    "a=rtpmap:31 H261/90000",
)

# An answer to RICH that accepts audio and rejects video with port 0.
REJECTING_ANSWER = crlf(
    "v=0",
    "o=bob 2808844564 2808844564 IN IP4 192.0.2.50",
    "s=-",
    "c=IN IP4 192.0.2.50",
    "t=0 0",
    "m=audio 7000 RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "m=video 0 RTP/AVP 31",
)


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


# --- codecs ----------------------------------------------------------------------------------


def test_codecs_from_rtpmap_in_m_line_order() -> None:
    assert codecs(parse_sdp(OFFER).media[0]) == [
        ("8", "PCMA"),
        ("0", "PCMU"),
        ("18", "G729"),
        ("101", "telephone-event"),
    ]


def test_codecs_static_payload_types_without_rtpmap() -> None:
    m = Media("audio", 4000, "RTP/AVP", ["0", "8", "18", "9", "3", "101", "13"])
    # 101 is dynamic: without an rtpmap it names nothing and is left out.
    assert codecs(m) == [
        ("0", "PCMU"),
        ("8", "PCMA"),
        ("18", "G729"),
        ("9", "G722"),
        ("3", "GSM"),
        ("13", "CN"),
    ]


def test_codecs_rtpmap_overrides_and_channels() -> None:
    m = Media(
        "audio",
        4000,
        "RTP/SAVP",
        ["111", "96", "0"],
        [("rtpmap", "111 opus/48000/2"), ("rtpmap", "96 AMR-WB/16000"), ("rtpmap", "0 PCMU/8000")],
    )
    assert codecs(m) == [("111", "opus"), ("96", "AMR-WB"), ("0", "PCMU")]


def test_codecs_non_rtp_stream_has_none() -> None:
    assert codecs(Media("image", 4002, "udptl", ["t38"])) == []


# --- first_common_codec ----------------------------------------------------------------------


def test_first_common_codec_offer_answer() -> None:
    assert first_common_codec(parse_sdp(OFFER), parse_sdp(ANSWER)) == "G729"


def test_first_common_codec_skips_telephone_event_and_rejected_streams() -> None:
    offer = parse_sdp(RICH)
    assert first_common_codec(offer, parse_sdp(REJECTING_ANSWER)) == "PCMA"
    # Only DTMF in common: telephone-event is not a codec, so nothing was negotiated.
    offer.media[0].formats = ["0", "101"]
    assert first_common_codec(offer, parse_sdp(REJECTING_ANSWER)) is None
    # Video (rejected with port 0 in the answer) never counts, even with a common H261.
    assert (
        first_common_codec(
            parse_sdp(RICH),
            parse_sdp(
                crlf(
                    "v=0",
                    "o=- 1 1 IN IP4 h",
                    "s=-",
                    "c=IN IP4 h",
                    "t=0 0",
                    "m=audio 0 RTP/AVP 0",
                    "m=video 0 RTP/AVP 31",
                )
            ),
        )
        is None
    )


def test_first_common_codec_case_blind_and_none() -> None:
    answer = parse_sdp(ANSWER)
    answer.media[0].attributes[0] = ("rtpmap", "18 g729/8000")
    assert first_common_codec(parse_sdp(OFFER), answer) == "g729"
    answer.media[0].port = 0
    assert first_common_codec(parse_sdp(OFFER), answer) is None


# --- rewrite_for_relay -----------------------------------------------------------------------


def test_rewrite_for_relay_session_level_connection() -> None:
    offer = parse_sdp(OFFER)
    before = copy.deepcopy(offer)
    out = rewrite_for_relay(offer, "192.0.2.1", [40000])
    assert offer == before  # the original is untouched
    assert out is not offer
    assert (out.connection, out.connection_addrtype) == ("192.0.2.1", "IP4")
    assert (out.origin.address, out.origin.addrtype) == ("192.0.2.1", "IP4")
    assert out.origin.session_version == 1712345680
    assert out.origin.session_id == "1712345678"
    assert out.media[0].port == 40000
    assert out.media[0].attributes == offer.media[0].attributes  # codecs pass through
    body = serialize_sdp(out)
    assert b"c=IN IP4 192.0.2.1\r\n" in body
    assert b"203.0.113.10" not in body


def test_rewrite_for_relay_ipv6_to_ipv4_media_level_and_rejected_stream() -> None:
    rich = parse_sdp(RICH)
    out = rewrite_for_relay(rich, "192.0.2.1", [40000, 40002])
    assert (out.connection, out.connection_addrtype) == ("192.0.2.1", "IP4")
    audio, video = out.media
    assert (audio.connection, audio.connection_addrtype) == ("192.0.2.1", "IP4")
    assert video.connection is None
    assert [audio.port, video.port] == [40000, 40002]
    # a=rtcp named the far end's port; it must not leak through the relay.
    assert audio.attribute("rtcp") is None
    assert ("rtcp", "49171") in rich.media[0].attributes
    assert b"2001:db8" not in serialize_sdp(out)

    answer = parse_sdp(REJECTING_ANSWER)
    relayed = rewrite_for_relay(answer, "2001:db8::99", [41000, 41002])
    assert [m.port for m in relayed.media] == [41000, 0]  # rejected stays rejected
    assert (relayed.connection, relayed.connection_addrtype) == ("2001:db8::99", "IP6")
    assert relayed.origin.addrtype == "IP6"


def test_rewrite_for_relay_adds_session_connection_when_only_media_level() -> None:
    out = rewrite_for_relay(parse_sdp(ANSWER), "192.0.2.1", [40000])
    assert out.connection == "192.0.2.1"
    assert out.media[0].connection == "192.0.2.1"
    assert b"198.51.100" not in serialize_sdp(out)


def test_rewrite_for_relay_without_version_bump() -> None:
    out = rewrite_for_relay(parse_sdp(OFFER), "192.0.2.1", [40000], bump_version=False)
    assert out.origin.session_version == 1712345679


@pytest.mark.parametrize(
    ("address", "ports", "message"),
    [
        ("relay.example", [40000], "not an IP address"),
        ("192.0.2.1", [], "1 m= lines but 0 relay ports"),
        ("192.0.2.1", [40000, 40002], "1 m= lines but 2 relay ports"),
        ("192.0.2.1", [70000], "out of range"),
    ],
)
def test_rewrite_for_relay_rejects_bad_arguments(
    address: str, ports: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rewrite_for_relay(parse_sdp(OFFER), address, ports)


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
