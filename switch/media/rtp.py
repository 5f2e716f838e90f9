"""RTP packet headers (RFC 3550) and the SRTP packet index (RFC 3711), sans-IO.

What the media relay needs from an RTP packet is where its header ends, its SSRC and its
sequence number; the payload encryption of :mod:`switch.media.crypto` leaves everything before
that point untouched. :func:`scan` finds those three on the hot path; :func:`parse_header`
returns every field of the header for tests, logs and tools.

The header (RFC 3550 section 5.1) is 12 bytes, then ``CC`` CSRC identifiers of 4 bytes each,
then, when the X bit is set, a header extension: a 16-bit profile (``0xBEDE`` and ``0x100x`` are
RFC 8285's one- and two-byte forms) and a 16-bit length in 32-bit words, then that many words.
The extension is part of the header: encryption never touches it (as in SRTP). A datagram that
is too short, is not version 2, declares a header longer than itself or is RTCP (second byte
192-223, RFC 5761 section 4) raises :class:`RtpError`, whose ``kind`` names the reason.

:class:`IndexEstimator` keeps the rollover counter (ROC) of one SSRC as RFC 3711 section 3.3.1
and Appendix A do, so that a 16-bit sequence number becomes a 48-bit packet index
``ROC * 65536 + SEQ`` even across wraps, reordering and loss.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FIXED_FIELDS",
    "HEADER_SIZE",
    "IndexEstimator",
    "RtpError",
    "RtpErrorKind",
    "RtpHeader",
    "is_rtcp",
    "parse_header",
    "scan",
]

HEADER_SIZE = 12
"""Size of the fixed RTP header, before CSRCs and the header extension."""

FIXED_FIELDS = struct.Struct("!BBH4xI")
"""The fixed header's fields the hot paths need, in one C call: first byte, second byte,
sequence number, SSRC (the timestamp is skipped)."""
_FIXED = FIXED_FIELDS.unpack_from

RtpErrorKind = Literal["short", "version", "rtcp", "header", "padding"]


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet.

    ``kind`` is one of ``"short"`` (under 12 bytes), ``"version"`` (not version 2), ``"rtcp"``
    (an RTCP packet, RFC 5761 demultiplexing), ``"header"`` (CSRCs or header extension run past
    the end) or ``"padding"`` (:func:`parse_header` only: a padding count that does not fit).

    >>> try:
    ...     scan(b"\\x80")
    ... except RtpError as exc:
    ...     print(exc.kind, exc)
    short RTP packet of 1 bytes is shorter than the 12-byte header
    """

    def __init__(self, kind: RtpErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: RtpErrorKind = kind


def scan(packet: bytes) -> tuple[int, int, int]:
    """``(header_length, ssrc, sequence)`` of an RTP packet, or :class:`RtpError`.

    ``header_length`` counts the fixed header, the CSRCs and the header extension: the payload
    (padding included) is ``packet[header_length:]``.

    >>> scan(bytes.fromhex("80 00 0001 00000000 12345678") + b"payload")
    (12, 305419896, 1)
    >>> scan(bytes.fromhex("91 00 0002 00000000 12345678 00000001 bede0001 10aa0000"))
    (24, 305419896, 2)
    """
    size = len(packet)
    if size < HEADER_SIZE:
        raise RtpError(
            "short", f"RTP packet of {size} bytes is shorter than the {HEADER_SIZE}-byte header"
        )
    first, second, sequence, ssrc = _FIXED(packet)
    if first >> 6 != 2:
        raise RtpError("version", f"RTP version {first >> 6}, not 2")
    if 192 <= second <= 223:
        raise RtpError("rtcp", f"RTCP packet type {second}, not RTP")
    length = HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if size < length + 4:
            raise RtpError(
                "header", f"header extension starts past the end of a {size}-byte packet"
            )
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4])
    if length > size:
        raise RtpError("header", f"RTP header of {length} bytes in a {size}-byte packet")
    return length, ssrc, sequence


def is_rtcp(packet: bytes) -> bool:
    """Whether a datagram is RTCP by RFC 5761's test (version 2, second byte 192-223).

    >>> is_rtcp(bytes.fromhex("80c8 0006 12345678"))
    True
    >>> is_rtcp(bytes.fromhex("8000 0001 00000000 12345678"))
    False
    """
    return len(packet) >= 2 and packet[0] >> 6 == 2 and 192 <= packet[1] <= 223


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """Every field of an RTP header (RFC 3550 section 5.1, RFC 8285)."""

    padding: bool
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    extension_profile: int | None
    """The 16-bit profile of the header extension, ``None`` without one."""
    extension: bytes
    """The header extension's data words (without the profile and length), ``b""`` without one."""
    length: int
    """Bytes of header: fixed part, CSRCs and header extension. The payload starts here."""
    padding_length: int
    """Padding bytes at the end of the payload (the last byte when P is set), else 0."""


def parse_header(packet: bytes) -> RtpHeader:
    """All the header fields of a clear RTP packet, or :class:`RtpError`.

    Unlike :func:`scan` this also checks the padding count (the last byte when P is set), which
    on an encrypted packet is ciphertext.

    >>> h = parse_header(bytes.fromhex("b1e0 0007 00000064 0000abcd 00000001 bede0001 10aa0000")
    ...                  + b"voice" + bytes([0, 0, 3]))
    >>> h.marker, h.payload_type, h.sequence, h.timestamp, h.ssrc, h.csrcs
    (True, 96, 7, 100, 43981, (1,))
    >>> hex(h.extension_profile or 0), h.extension.hex(), h.length, h.padding_length
    ('0xbede', '10aa0000', 24, 3)
    """
    length, ssrc, sequence = scan(packet)
    first, second = packet[0], packet[1]
    count = first & 0x0F
    end = HEADER_SIZE + 4 * count
    csrcs = tuple(
        int.from_bytes(packet[offset : offset + 4]) for offset in range(HEADER_SIZE, end, 4)
    )
    profile: int | None = None
    extension = b""
    if first & 0x10:
        profile = int.from_bytes(packet[end : end + 2])
        extension = packet[end + 4 : length]
    padding_length = 0
    if first & 0x20:
        padding_length = packet[-1] if len(packet) > length else 0
        if not 1 <= padding_length <= len(packet) - length:
            raise RtpError(
                "padding",
                f"padding count {padding_length} with {len(packet) - length} bytes of payload",
            )
    return RtpHeader(
        padding=bool(first & 0x20),
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=int.from_bytes(packet[4:8]),
        ssrc=ssrc,
        csrcs=csrcs,
        extension_profile=profile,
        extension=bytes(extension),
        length=length,
        padding_length=padding_length,
    )


class IndexEstimator:
    """The 48-bit packet index ``ROC * 65536 + SEQ`` of one SSRC (RFC 3711 Appendix A).

    The first sequence number seen starts the stream with ROC 0. Each later one is placed in
    the rollover period that puts it nearest the highest sequence number seen so far (``s_l``),
    so reordering and loss of up to half the sequence space are tolerated and a packet that
    arrives late from before a wrap keeps the ROC it was sent with. The state moves forward
    only (a new highest ``s_l``, or the next ROC): a late packet does not disturb it. The ROC
    is 32-bit and wraps as libsrtp's does, so the index always fits 48 bits.

    >>> e = IndexEstimator()
    >>> [e.index(seq) for seq in (65534, 65535, 0, 65533, 1)]
    [65534, 65535, 65536, 65533, 65537]
    """

    __slots__ = ("_highest", "_roc")

    def __init__(self) -> None:
        self._highest = -1
        self._roc = 0

    @property
    def roc(self) -> int:
        """The current rollover counter."""
        return self._roc

    def index(self, seq: int) -> int:
        """The packet index of sequence number ``seq`` (0-65535); updates the state.

        >>> IndexEstimator().index(17)
        17
        """
        highest = self._highest
        roc = self._roc
        if highest < 0:
            self._highest = seq
            return seq
        if highest < 32768:
            if seq - highest > 32768:
                # Sent before the last wrap: the previous period (never moves the state back).
                return (((roc - 1) & 0xFFFFFFFF) << 16) | seq
            if seq > highest:
                self._highest = seq
            return (roc << 16) | seq
        if highest - 32768 > seq:
            roc = (roc + 1) & 0xFFFFFFFF
            self._roc = roc
            self._highest = seq
            return (roc << 16) | seq
        if seq > highest:
            self._highest = seq
        return (roc << 16) | seq
