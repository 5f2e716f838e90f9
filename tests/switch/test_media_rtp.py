"""RTP header parsing (RFC 3550, RFC 8285) and the packet index estimator (RFC 3711 App. A)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.media.rtp import IndexEstimator, RtpError, is_rtcp, parse_header, scan


def header(
    *,
    seq: int = 1,
    ssrc: int = 0x11223344,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    profile: int = 0xBEDE,
    padding: bool = False,
    marker: bool = False,
    payload_type: int = 0,
    timestamp: int = 160,
) -> bytes:
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrcs)
    out = bytes([first, (0x80 if marker else 0) | payload_type])
    out += seq.to_bytes(2) + timestamp.to_bytes(4) + ssrc.to_bytes(4)
    out += b"".join(c.to_bytes(4) for c in csrcs)
    if extension is not None:
        assert len(extension) % 4 == 0
        out += profile.to_bytes(2) + (len(extension) // 4).to_bytes(2) + extension
    return out


def test_scan_plain_header() -> None:
    assert scan(header(seq=513, ssrc=7) + b"abc") == (12, 7, 513)
    assert scan(header()) == (12, 0x11223344, 1)  # header only: an empty payload


def test_scan_counts_csrcs_and_extension() -> None:
    packet = header(csrcs=(1, 2, 3), extension=bytes(8)) + b"payload"
    assert scan(packet) == (12 + 12 + 4 + 8, 0x11223344, 1)
    assert scan(header(csrcs=tuple(range(15)))) == (72, 0x11223344, 1)
    # a two-byte-header extension (RFC 8285 0x100x) is skipped the same way
    assert scan(header(extension=b"\x01\x02ab", profile=0x1000))[0] == 20
    assert scan(header(extension=b"") + b"x")[0] == 16


@pytest.mark.parametrize(
    ("packet", "kind"),
    [
        (b"", "short"),
        (header()[:11], "short"),
        (b"\x00" + header()[1:], "version"),
        (b"\x40" + header()[1:], "version"),
        (b"\xc0" + header()[1:], "version"),
        (bytes.fromhex("80c8000612345678") + bytes(20), "rtcp"),  # sender report
        (bytes.fromhex("81c9000712345678") + bytes(24), "rtcp"),  # receiver report
        (bytes([0x82]) + header()[1:] + bytes(4), "header"),  # 2 CSRCs, room for 1
        (bytes([0x90]) + header()[1:], "header"),  # X set, no extension header
        (bytes([0x90]) + header()[1:] + bytes.fromhex("bede0002") + bytes(4), "header"),
    ],
)
def test_scan_refuses(packet: bytes, kind: str) -> None:
    with pytest.raises(RtpError) as caught:
        scan(packet)
    assert caught.value.kind == kind
    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


def test_rtp_payload_types_next_to_rtcp_are_rtp() -> None:
    # Second byte 191 (M + PT 63) and 224 (M + PT 96) are RTP; 192-223 are RTCP (RFC 5761).
    assert scan(header(marker=True, payload_type=63))[0] == 12
    assert scan(header(marker=True, payload_type=96))[0] == 12
    assert is_rtcp(header(marker=True, payload_type=72))
    assert not is_rtcp(header(marker=True, payload_type=96))
    assert not is_rtcp(b"\x80")


def test_parse_header_fields() -> None:
    packet = header(
        seq=65535, ssrc=0xFFFFFFFF, csrcs=(9, 10), extension=b"\x10\xaa\0\0", padding=True,
        marker=True, payload_type=111, timestamp=0xDEADBEEF,
    ) + b"voice\0\0\3"
    h = parse_header(packet)
    assert (h.padding, h.marker, h.payload_type) == (True, True, 111)
    assert (h.sequence, h.timestamp, h.ssrc, h.csrcs) == (65535, 0xDEADBEEF, 0xFFFFFFFF, (9, 10))
    assert (h.extension_profile, h.extension, h.length) == (0xBEDE, b"\x10\xaa\0\0", 28)
    assert h.padding_length == 3
    plain = parse_header(header() + b"x")
    assert (plain.extension_profile, plain.extension, plain.padding_length) == (None, b"", 0)


@pytest.mark.parametrize("tail", [b"", b"abc\0", b"ab\x04", b"\xff"])
def test_parse_header_refuses_bad_padding(tail: bytes) -> None:
    with pytest.raises(RtpError) as caught:
        parse_header(header(padding=True) + tail)
    assert caught.value.kind == "padding"


def test_padding_of_the_whole_payload_is_valid() -> None:
    assert parse_header(header(padding=True) + b"\0\0\3").padding_length == 3


@given(
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15),
    extension=st.none() | st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]),
    payload=st.binary(max_size=64),
    seq=st.integers(0, 65535),
    ssrc=st.integers(0, 2**32 - 1),
)
@settings(max_examples=200, deadline=None)
def test_scan_agrees_with_the_builder(
    csrcs: list[int], extension: bytes | None, payload: bytes, seq: int, ssrc: int
) -> None:
    head = header(seq=seq, ssrc=ssrc, csrcs=tuple(csrcs), extension=extension)
    assert scan(head + payload) == (len(head), ssrc, seq)
    assert parse_header(head + payload).csrcs == tuple(csrcs)
    # cut inside the header: always refused, never an index error
    for cut in range(len(head)):
        with pytest.raises(RtpError):
            scan(head[:cut])


@given(st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_scan_raises_only_rtp_error(data: bytes) -> None:
    try:
        length, _, _ = scan(data)
    except RtpError:
        return
    assert 12 <= length <= len(data)


def test_index_in_order_across_wraps() -> None:
    estimator = IndexEstimator()
    start = 65000
    for k in range(200_000):
        assert estimator.index((start + k) % 65536) == start + k
    assert estimator.roc == (start + 199_999) >> 16


def test_index_reordered_around_a_wrap() -> None:
    estimator = IndexEstimator()
    seqs = [65530, 65532, 65531, 1, 65535, 0, 2, 65533, 3]
    expected = [65530, 65532, 65531, 65537, 65535, 65536, 65538, 65533, 65539]
    assert [estimator.index(s) for s in seqs] == expected
    assert estimator.roc == 1


def test_index_late_packet_from_before_the_first_wraps_the_roc_as_libsrtp() -> None:
    estimator = IndexEstimator()
    assert estimator.index(3) == 3
    # sent before SEQ 3, in the previous period: ROC -1, i.e. 2**32 - 1
    assert estimator.index(65534) == (0xFFFFFFFF << 16) | 65534
    assert estimator.index(4) == 4  # the state did not move back
    assert estimator.roc == 0


def test_index_tolerates_loss_under_half_the_space() -> None:
    estimator = IndexEstimator()
    assert estimator.index(40000) == 40000
    assert estimator.index((40000 + 32000) % 65536) == 72000  # 32,000 packets lost


@given(
    start=st.integers(0, 65535),
    steps=st.lists(st.integers(1, 600), min_size=1, max_size=300),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=200, deadline=None)
def test_index_recovers_true_indexes_under_loss_and_reordering(
    start: int, steps: list[int], seed: int
) -> None:
    # Sent indexes with gaps (loss), delivered with reordering within 50 packets (so never
    # 32,768 indexes away from the highest one delivered before); the first
    # packet sent arrives first (the receiver takes its ROC as 0, as SRTP does).
    sent = [start]
    for step in steps:
        sent.append(sent[-1] + step)
    rng = random.Random(seed)
    rest = sent[1:]
    order = sorted(range(len(rest)), key=lambda k: k + rng.uniform(0, 50))
    delivered = [sent[0]] + [rest[k] for k in order]
    estimator = IndexEstimator()
    assert [estimator.index(i & 0xFFFF) for i in delivered] == delivered
