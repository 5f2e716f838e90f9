"""SDP codec negotiation and relay rewriting (switch.sip.sdp).

The bodies (tests/switch/sip_traces.py) are shaped like what carrier gear actually sends:
Asterisk/FreeSWITCH style offers with PCMA/PCMU/G729 and telephone-event, a softphone with IPv6,
an answer that rejects video.
"""

from __future__ import annotations

import copy

import pytest

from switch.sip.sdp import (
    Media,
    codecs,
    first_common_codec,
    parse_sdp,
    rewrite_for_relay,
    serialize_sdp,
)
from tests.switch.sip_traces import ANSWER, OFFER, REJECTING_ANSWER, RICH, crlf

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
