"""RTP payload encryption per gateway (``rtp_encryption`` 0-3 and ``rtp_key``), sans-IO.

VOS3000 calls these SS_RTPENCRYPTIONMODE (0 none, 1 XOR, 2 RC4, 3 AES128) and
SS_RTPENCRYPTIONKEY. VOS3000's own scheme is unpublished: the schemes below are this project's,
specified here and in ``docs/media.md`` (with test vectors) so that another implementation can
interoperate with this one. They are NOT wire-compatible with VOS3000.

Only the payload changes. For a packet ``P`` whose RTP header (fixed part, CSRCs and header
extension, :func:`switch.media.rtp.scan`) is ``h`` bytes long, the payload is ``P[h:]``,
padding included (as SRTP), ``n`` bytes. The output is ``P[:h] + (P[h:] XOR K)`` where ``K`` is
``n`` bytes of keystream, so the header is untouched and the length unchanged; encrypting and
decrypting are the same operation. ``K`` depends on the configured key and, except for XOR, on
the SSRC (32 bits, header bytes 8-11) and the 48-bit packet index ``i = ROC * 65536 + SEQ``
(RFC 3711 section 3.3.1; the rollover counter is estimated per SSRC from the sequence numbers
seen, :class:`switch.media.rtp.IndexEstimator`), so each packet can be decrypted alone: loss
and reordering are tolerated. Integers are big-endian; ``||`` is concatenation.

Mode 1, XOR (obfuscation, not security: the keystream is the same in every packet)
    ``K[j] = key[j mod len(key)]`` for ``j = 0 .. n-1``: the key is applied cyclically from
    payload byte 0 of every packet. The key is 1 or more bytes.

Mode 2, RC4 (RC4 is deprecated, RFC 7465; prefer AES128)
    Per packet, ``k = SHA-256(key || SSRC (4 bytes) || i (6 bytes))``, 32 bytes; ``K`` is the
    RC4 keystream under the key ``k`` after its first 1536 bytes are dropped (RC4-drop[1536],
    as RFC 4345 drops them for SSH), i.e. RC4 output bytes 1536 .. 1536+n-1. Hashing the key
    with the index gives every packet an unrelated RC4 key (not WEP's key-plus-IV). The key is
    1 or more bytes.

Mode 3, AES128 (AES in counter mode, as SRTP's AES-CM, RFC 3711 section 4.1.1)
    The key is exactly 16 bytes and is the AES-128 key as it is. Counter block ``b`` (16
    bytes) for ``b = 0, 1, ...`` is ``00000000 || SSRC (4 bytes) || i (6 bytes) || b (2
    bytes)``; ``K = AES(key, block 0) || AES(key, block 1) || ...`` cut to ``n`` bytes. This is
    SRTP's keystream with the key as session key and an all-zero session salt (no key
    derivation, no authentication tag).

Mode 0, NONE: packets pass unchanged, without being looked at; the key is ignored.

Not RTP: in modes 1-3 a datagram :func:`~switch.media.rtp.scan` refuses (too short, not
version 2, RTCP, header longer than the packet) makes :meth:`PayloadCipher.encrypt` and
:meth:`PayloadCipher.decrypt` raise :class:`~switch.media.rtp.RtpError` and is not transformed:
the relay drops it and counts it, so nothing reaches an encrypting leg in clear and
nothing undecrypted reaches a clear leg.

Limits, as for any scheme without a per-call key exchange or an authentication tag: two streams
under the same key with the same SSRC and index share a keystream, and a modified packet is
not detected (the length may not change, so there is no room for a tag).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import IntEnum

from Crypto.Cipher import AES, ARC4

from switch.media.rtp import FIXED_FIELDS, IndexEstimator, scan

__all__ = ["AES_KEY_SIZE", "RC4_DROP", "Mode", "PayloadCipher", "check_key"]

AES_KEY_SIZE = 16
RC4_DROP = 1536
"""RC4 keystream bytes discarded per packet before the payload's (RFC 4345's figure)."""

# Per-SSRC state is kept for this many SSRCs per direction, the least recently used forgotten
# first but only once idle: a peer that sprays SSRCs must not grow memory without bound, nor
# push out the stream in use (whose ROC would restart at 0). A leg changes SSRC rarely (a
# re-INVITE, music on hold).
MAX_STREAMS = 8
# A kept stream is "in use" until packets of other SSRCs have come this many times in between.
IDLE_SWITCHES = 256
# AES: one ECB call costs about 2 us of Python and ctypes overhead whatever its size (0.1 ns a
# byte after that), which is most of a packet's budget. Indexes come in order, so the keystream
# of the next packets of an SSRC is computed in the same call: up to WINDOW packets, up to
# WINDOW_BYTES of keystream (16 packets of 160 bytes, 20 ms of G.711), two windows per SSRC.
WINDOW = 16
WINDOW_BYTES = 2560
# XOR keystreams and AES counter tables are cached per size up to this many bytes (above any
# MTU); larger payloads are computed per packet. A stream uses one size or a few.
_CACHE_LIMIT = 2048
_XOR_SIZES = 16


class Mode(IntEnum):
    """``rtp_encryption`` / SS_RTPENCRYPTIONMODE.

    >>> Mode(3).name
    'AES128'
    """

    NONE = 0
    XOR = 1
    RC4 = 2
    AES128 = 3


def check_key(mode: int, key: bytes) -> None:
    """Raise :class:`ValueError` with a reason when ``key`` cannot be used with ``mode``.

    NONE ignores the key; XOR and RC4 need a non-empty key; AES128 exactly 16 bytes.

    >>> check_key(Mode.AES128, b"0123456789abcdef")
    >>> check_key(Mode.AES128, b"0123456789abcde")
    Traceback (most recent call last):
    ...
    ValueError: AES128 needs a key of exactly 16 bytes, got 15
    """
    try:
        mode = Mode(mode)
    except ValueError:
        raise ValueError(f"RTP encryption mode must be 0-3, got {mode}") from None
    if mode is Mode.AES128 and len(key) != AES_KEY_SIZE:
        raise ValueError(f"AES128 needs a key of exactly {AES_KEY_SIZE} bytes, got {len(key)}")
    if mode in (Mode.XOR, Mode.RC4) and not key:
        raise ValueError(f"{mode.name} needs a non-empty key")


def _counter_table(blocks: int, packets: int) -> tuple[int, int, int]:
    """``(ones, offsets, step)`` to build the counter blocks of ``packets`` consecutive indexes.

    Read as one big integer (block 0 most significant, as ``int.from_bytes`` reads it), the
    counter blocks of packet ``index + k``, block ``b``, are ``prefix * ones + offsets`` with
    ``prefix = (SSRC << 64) | (index << 16)``: ``ones`` has a 1 in the low bit of every 16-byte
    block, repeating the prefix in each without carries, and ``offsets`` adds ``k << 16 | b``.
    The next run of ``packets`` indexes is that integer plus ``step`` (an addition, cheaper
    than the product; the index field cannot carry into the SSRC, windows stop at 2**48).
    """
    ones = int.from_bytes((b"\0" * 15 + b"\1") * (blocks * packets))
    offsets = int.from_bytes(
        b"".join(((k << 16) | b).to_bytes(16) for k in range(packets) for b in range(blocks))
    )
    return ones, offsets, (packets << 16) * ones


_COUNTERS: dict[tuple[int, int], tuple[int, int, int]] = {}
# Module globals: looking a member up on the enum class costs about 0.07 us, a lot at this scale.
_NONE, _XOR, _AES128 = Mode.NONE, Mode.XOR, Mode.AES128
_FIXED = FIXED_FIELDS.unpack_from


class _Window:
    """AES keystream for ``packets`` consecutive indexes from ``base``, ``width`` bytes each,
    and the per-packet masks (keystream cut to ``length`` bytes, as integers) for the payload
    length it was made for: the fast path XORs a packet of that length with one of them."""

    __slots__ = ("base", "counters", "keystream", "length", "masks", "packets", "width")

    def __init__(self, base: int, packets: int, width: int, keystream: bytes,
                 length: int, counters: int = -1) -> None:
        self.base = base
        self.counters = counters  # the counter blocks as one integer (see _counter_table)
        self.packets = packets
        self.width = width
        self.keystream = keystream
        self.length = length
        self.masks = [int.from_bytes(keystream[k * width: k * width + length])
                      for k in range(packets)]


_EMPTY = _Window(0, 0, 0, b"", 0)


class _Stream:
    """What a cipher keeps per SSRC: the packet index estimator and, for AES, the current
    keystream window and the one before it (where packets that arrive late still find theirs).
    """

    __slots__ = ("estimator", "previous", "used", "window")

    def __init__(self) -> None:
        self.estimator = IndexEstimator()
        self.used = 0
        self.window = _EMPTY
        self.previous = _EMPTY


class PayloadCipher:
    """Encrypts or decrypts the payload of RTP packets under one mode and key.

    One object per direction of a leg: it keeps the rollover counter of each SSRC it sees
    (:class:`~switch.media.rtp.IndexEstimator`), for at most 8 SSRCs, forgetting the least
    recently used one once idle (not while its packets keep coming between a peer's others).
    The key must pass :func:`check_key`. :meth:`encrypt` and :meth:`decrypt` are the same
    operation (the payload XOR the keystream); in modes 1-3 they raise
    :class:`~switch.media.rtp.RtpError` for a datagram that is not RTP, which the relay drops
    and counts; mode 0 returns every datagram as it is, unparsed.

    >>> enc = PayloadCipher(Mode.AES128, b"0123456789abcdef")
    >>> dec = PayloadCipher(Mode.AES128, b"0123456789abcdef")
    >>> packet = bytes.fromhex("8000 0001 00000000 12345678") + b"hello"
    >>> wire = enc.encrypt(packet)
    >>> wire[:12] == packet[:12], len(wire) == len(packet), wire != packet
    (True, True, True)
    >>> dec.decrypt(wire) == packet
    True
    """

    __slots__ = (
        "_ecb", "_key", "_last_ssrc", "_last_stream", "_mode", "_streams", "_switches", "_xor",
        "apply",
    )

    def __init__(self, mode: int, key: bytes) -> None:
        check_key(mode, key)
        self._mode = Mode(mode)
        self._key = bytes(key)
        self._streams: dict[int, _Stream] = {}
        self._last_ssrc = -1
        self._switches = 0
        self._last_stream = _Stream()
        self._xor: dict[int, int] = {}
        self._ecb = AES.new(self._key, AES.MODE_ECB) if self._mode is Mode.AES128 else None
        #: The transform itself, chosen once for the mode: what :meth:`encrypt` and
        #: :meth:`decrypt` call, and what the relay calls per packet (one call less).
        self.apply: Callable[[bytes], bytes] = (
            self._apply_aes if self._mode is Mode.AES128 else self._apply)

    @property
    def mode(self) -> Mode:
        """The encryption mode."""
        return self._mode

    def encrypt(self, packet: bytes) -> bytes:
        """The packet with its payload encrypted; raises ``RtpError`` if it is not RTP.

        >>> PayloadCipher(Mode.XOR, b"\\x01").encrypt(bytes(14))
        Traceback (most recent call last):
        ...
        switch.media.rtp.RtpError: RTP version 0, not 2
        """
        return self.apply(packet)

    def decrypt(self, packet: bytes) -> bytes:
        """The packet with its payload decrypted; raises ``RtpError`` if it is not RTP.

        >>> cipher = PayloadCipher(Mode.XOR, b"\\x01")
        >>> cipher.decrypt(bytes.fromhex("8000 0001 00000000 00000001 0003")).hex(" ")
        '80 00 00 01 00 00 00 00 00 00 00 01 01 02'
        """
        return self.apply(packet)

    def keystream(self, ssrc: int, index: int, length: int) -> bytes:
        """The ``length`` keystream bytes of packet ``index`` of ``ssrc`` (the spec, slowly).

        >>> PayloadCipher(Mode.XOR, b"ab").keystream(1, 2, 5)
        b'ababa'
        """
        mode = self._mode
        if mode is Mode.NONE:
            return bytes(length)
        if mode is Mode.XOR:
            return (self._key * (length // len(self._key) + 1))[:length]
        if mode is Mode.RC4:
            return _rc4_keystream(self._key, ssrc, index, length)
        count = (length + 15) // 16
        blocks = b"".join(
            bytes(4) + ssrc.to_bytes(4) + index.to_bytes(6) + b.to_bytes(2) for b in range(count)
        )
        assert self._ecb is not None
        return self._ecb.encrypt(blocks)[:length]

    def _stream(self, ssrc: int) -> _Stream:
        if ssrc == self._last_ssrc:
            return self._last_stream
        self._switches = switches = self._switches + 1
        streams = self._streams
        # Re-inserted at each switch to it, so the dict runs from least to most recently used.
        stream = streams.pop(ssrc, None)
        if stream is not None:
            streams[ssrc] = stream
        else:
            stream = _Stream()
            if len(streams) >= MAX_STREAMS:
                oldest = next(iter(streams))
                if switches - streams[oldest].used >= IDLE_SWITCHES:
                    del streams[oldest]
            if len(streams) < MAX_STREAMS:
                streams[ssrc] = stream
            # Else every kept stream is in use and this one is not kept: it has its state only
            # while its packets come in a row (as the last SSRC), enough for a new stream that
            # replaced the others, and a sprayed SSRC pushes out nothing.
        stream.used = switches
        self._last_ssrc = ssrc
        self._last_stream = stream
        return stream

    def _aes(self, stream: _Stream, ssrc: int, index: int, length: int) -> bytes:
        """The keystream of one packet: from the SSRC's windows, or computed."""
        window = stream.window
        slot = index - window.base
        if 0 <= slot < window.packets and length <= window.width:
            offset = slot * window.width
            return window.keystream[offset : offset + length]
        previous = stream.previous
        slot = index - previous.base
        if 0 <= slot < previous.packets and length <= previous.width:
            offset = slot * previous.width
            return previous.keystream[offset : offset + length]
        blocks = (length + 15) >> 4
        width = blocks << 4
        start = index
        end = window.base + window.packets
        if index < window.base and length <= window.width:
            # Late, and older than both windows: computed alone, the windows stay put.
            packets = 1
        else:
            if end <= index < end + WINDOW:
                # Just ahead (an early packet, or the next run in order): the new window
                # follows the current one, so the packets in between still find theirs.
                start = end
            packets = max(1, min(WINDOW, WINDOW_BYTES // width, (1 << 48) - start))
            if index - start >= packets:
                start = index
                packets = max(1, min(packets, (1 << 48) - start))
        table = _COUNTERS.get((blocks, packets))
        if table is None:
            table = _counter_table(blocks, packets)
            if width <= _CACHE_LIMIT:
                _COUNTERS[(blocks, packets)] = table
        ones, offsets, step = table
        if (start == end and packets == window.packets and width == window.width
                and window.counters >= 0):
            counters = window.counters + step  # the run after the current window, in order
        else:
            counters = (((ssrc << 48) | start) << 16) * ones + offsets
        assert self._ecb is not None
        keystream = self._ecb.encrypt(counters.to_bytes(width * packets))
        if packets > 1 or not window.packets:
            stream.previous = window
            stream.window = _Window(start, packets, width, keystream, length, counters)
        offset = (index - start) * width
        return keystream[offset : offset + length]

    def _apply_aes(self, packet: bytes) -> bytes:
        # The AES128 path of _apply, inlined for the usual packet: a 12-byte header (version 2,
        # no padding, extension or CSRC), the SSRC seen last, the payload length and index of
        # the current window. Anything else takes the general steps; the output is the same.
        if len(packet) < 12:
            scan(packet)  # raises RtpError("short")
        first, second, seq, ssrc = _FIXED(packet)
        if first == 0x80 and not 192 <= second <= 223:
            header = 12
        else:
            header, ssrc, seq = scan(packet)
        size = len(packet)
        length = size - header
        stream = self._last_stream if ssrc == self._last_ssrc else self._stream(ssrc)
        index = stream.estimator.index(seq)
        if not length:
            return packet
        window = stream.window
        slot = index - window.base
        if 0 <= slot < window.packets and length == window.length:
            mask = window.masks[slot]
        else:
            mask = int.from_bytes(self._aes(stream, ssrc, index, length))
        # Read as one integer, the packet has the keystream (cut to the payload) below its
        # header bytes: one XOR transforms the payload and leaves the header as it is.
        return (int.from_bytes(packet) ^ mask).to_bytes(size)

    def _apply(self, packet: bytes) -> bytes:
        mode = self._mode
        if mode is _NONE:
            return packet
        header, ssrc, seq = scan(packet)
        size = len(packet)
        length = size - header
        if mode is _AES128:
            stream = self._stream(ssrc)
            index = stream.estimator.index(seq)
            if not length:
                return packet
            # Read as one integer, the packet has the keystream (cut to the payload) below its
            # header bytes: one XOR transforms the payload and leaves the header as it is.
            mask = int.from_bytes(self._aes(stream, ssrc, index, length))
            return (int.from_bytes(packet) ^ mask).to_bytes(size)
        if mode is _XOR:
            mask = self._xor.get(length, -1)
            if mask < 0:
                mask = int.from_bytes(self.keystream(0, 0, length))
                if length <= _CACHE_LIMIT:
                    if len(self._xor) >= _XOR_SIZES:
                        self._xor.clear()  # a peer varying its sizes: start over
                    self._xor[length] = mask
            return (int.from_bytes(packet) ^ mask).to_bytes(size)
        index = self._stream(ssrc).estimator.index(seq)
        if not length:
            return packet
        key = hashlib.sha256(self._key + ssrc.to_bytes(4) + index.to_bytes(6)).digest()
        # One call for the dropped bytes and the payload: RC4 of zeros is the keystream itself.
        return packet[:header] + ARC4.new(key).encrypt(bytes(RC4_DROP) + packet[header:])[
            RC4_DROP:
        ]


def _rc4_keystream(key: bytes, ssrc: int, index: int, length: int) -> bytes:
    digest = hashlib.sha256(key + ssrc.to_bytes(4) + index.to_bytes(6)).digest()
    return ARC4.new(digest, drop=RC4_DROP).encrypt(bytes(length))
