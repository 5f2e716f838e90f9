"""RTP payload encryption: the schemes of docs/media.md, checked against independent references.

The test vectors are read from docs/media.md (one source for the page and the tests). AES128 is
checked against pycryptodome's own counter mode over the payload (the slow way), RC4 against a
pure-Python RC4, XOR against a byte loop: the fast paths of switch/media/crypto.py are proven
equal to the spec, not only to themselves.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.media import crypto
from switch.media.crypto import Mode, PayloadCipher, check_key
from switch.media.rtp import RtpError, scan
from tests.switch.test_media_rtp import header

DOC = Path(__file__).resolve().parents[2] / "docs" / "media.md"
AES_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
KEYS = {Mode.NONE: b"", Mode.XOR: b"secret", Mode.RC4: b"ratelab rc4 key", Mode.AES128: AES_KEY}


# --- independent references: the spec of docs/media.md written the slow, obvious way ---


def rc4(key: bytes, count: int) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for _ in range(count):
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(state[(state[i] + state[j]) % 256])
    return bytes(out)


def rc4_packet_key(key: bytes, ssrc: int, index: int) -> bytes:
    return hashlib.sha256(key + ssrc.to_bytes(4) + index.to_bytes(6)).digest()


def counter_block(ssrc: int, index: int) -> bytes:
    return bytes(4) + ssrc.to_bytes(4) + index.to_bytes(6) + bytes(2)


def reference(mode: Mode, key: bytes, packet: bytes, index: int) -> bytes:
    """The packet transformed by the spec, given its packet index."""
    length, ssrc, _ = scan(packet)
    head, payload = packet[:length], packet[length:]
    if mode is Mode.NONE:
        return packet
    if mode is Mode.XOR:
        return head + bytes(b ^ key[j % len(key)] for j, b in enumerate(payload))
    if mode is Mode.RC4:
        stream = rc4(rc4_packet_key(key, ssrc, index), 1536 + len(payload))[1536:]
        return head + bytes(a ^ b for a, b in zip(payload, stream, strict=True))
    ctr = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=counter_block(ssrc, index))
    return head + ctr.encrypt(payload)


# --- the vectors of docs/media.md ---


@dataclass(frozen=True)
class Vector:
    mode: Mode
    key: bytes
    index: int
    after: int | None
    plain: bytes
    cipher: bytes
    extra: dict[str, str]


def doc_vectors() -> list[Vector]:
    blocks = re.findall(r"^```rtp-vector\n(.*?)^```", DOC.read_text(), re.M | re.S)
    vectors = []
    for block in blocks:
        fields = dict(re.findall(r"^(\w+):\s+(\S+)", block, re.M))
        key = fields.pop("key")
        vectors.append(
            Vector(
                mode=Mode[fields.pop("mode")],
                key=b"" if key == "-" else bytes.fromhex(key),
                index=int(fields.pop("index")),
                after=int(fields.pop("after")) if "after" in fields else None,
                plain=bytes.fromhex(fields.pop("plain")),
                cipher=bytes.fromhex(fields.pop("cipher")),
                extra=fields,
            )
        )
    return vectors


VECTORS = doc_vectors()


def primed(mode: Mode, key: bytes, vector: Vector) -> PayloadCipher:
    """A fresh cipher that has seen the vector's previous SEQ (from the same SSRC) if any."""
    cipher = PayloadCipher(mode, key)
    if vector.after is not None:
        fixed = bytes([0x80]) + vector.plain[1:2] + vector.after.to_bytes(2) + vector.plain[4:12]
        cipher.decrypt(fixed)
    return cipher


def test_the_doc_has_two_vectors_per_mode_or_more() -> None:
    for mode in Mode:
        assert sum(v.mode is mode for v in VECTORS) >= 2, mode


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v.mode.name}-{v.index}" for v in VECTORS])
def test_doc_vector(vector: Vector) -> None:
    length, ssrc, seq = scan(vector.plain)
    assert vector.index & 0xFFFF == seq
    assert primed(vector.mode, vector.key, vector).encrypt(vector.plain) == vector.cipher
    assert primed(vector.mode, vector.key, vector).decrypt(vector.cipher) == vector.plain
    assert reference(vector.mode, vector.key, vector.plain, vector.index) == vector.cipher
    assert vector.cipher[:length] == vector.plain[:length]
    extra = dict(vector.extra)
    if "rc4key" in extra:
        assert rc4_packet_key(vector.key, ssrc, vector.index).hex() == extra.pop("rc4key")
    if "block0" in extra:
        assert counter_block(ssrc, vector.index).hex() == extra.pop("block0")
    assert not extra, f"fields the test does not check: {extra}"


def test_vectors_of_the_doc_match_the_first_aes_counter_block_by_hand() -> None:
    # FIPS-197-style sanity: the keystream's first block is AES-ECB of the documented block 0.
    vector = next(v for v in VECTORS if v.mode is Mode.AES128 and v.after is None)
    block = AES.new(AES_KEY, AES.MODE_ECB).encrypt(counter_block(0x11223344, 1))
    payload = vector.plain[12:28]
    assert bytes(a ^ b for a, b in zip(payload, block, strict=True)) == vector.cipher[12:28]


# --- keys ---


def test_check_key_messages() -> None:
    check_key(Mode.NONE, b"")
    check_key(0, b"whatever")
    check_key(Mode.XOR, b"x")
    check_key(Mode.RC4, b"x")
    check_key(3, bytes(16))
    with pytest.raises(ValueError, match=r"^AES128 needs a key of exactly 16 bytes, got 15$"):
        check_key(Mode.AES128, bytes(15))
    with pytest.raises(ValueError, match="got 17"):
        check_key(Mode.AES128, bytes(17))
    with pytest.raises(ValueError, match="got 19"):
        check_key(Mode.AES128, b"YourSecureKey128Bit")  # the VOS3000 article's example key
    with pytest.raises(ValueError, match="got 0"):
        check_key(Mode.AES128, b"")
    with pytest.raises(ValueError, match=r"^XOR needs a non-empty key$"):
        check_key(Mode.XOR, b"")
    with pytest.raises(ValueError, match=r"^RC4 needs a non-empty key$"):
        check_key(Mode.RC4, b"")
    with pytest.raises(ValueError, match=r"mode must be 0-3, got 4"):
        check_key(4, b"key")


def test_cipher_refuses_a_bad_key() -> None:
    with pytest.raises(ValueError, match="exactly 16 bytes"):
        PayloadCipher(Mode.AES128, b"short")
    assert PayloadCipher(0, b"").mode is Mode.NONE


# --- packets ---


def sample_packets(seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [
        header(seq=1) + rng.randbytes(160),
        header(seq=2, csrcs=(5, 6, 7), extension=rng.randbytes(12), padding=True)
        + rng.randbytes(37) + b"\0\0\0\4",
        header(seq=3, marker=True, payload_type=96) + rng.randbytes(1),
        header(seq=4, extension=b"") + rng.randbytes(17),
    ]


@pytest.mark.parametrize("mode", list(Mode))
def test_round_trip_keeps_header_and_length(mode: Mode) -> None:
    enc, dec = PayloadCipher(mode, KEYS[mode]), PayloadCipher(mode, KEYS[mode])
    for packet in sample_packets():
        length, _, _ = scan(packet)
        wire = enc.encrypt(packet)
        assert len(wire) == len(packet)
        assert wire[:length] == packet[:length]
        assert (wire[length:] == packet[length:]) is (mode is Mode.NONE)
        assert dec.decrypt(wire) == packet


@pytest.mark.parametrize("mode", list(Mode))
def test_header_only_packet_is_unchanged(mode: Mode) -> None:
    packet = header(csrcs=(1,), extension=bytes(4))
    assert PayloadCipher(mode, KEYS[mode]).encrypt(packet) == packet


@pytest.mark.parametrize("mode", [Mode.XOR, Mode.RC4, Mode.AES128])
def test_not_rtp_raises_and_none_passes_it(mode: Mode) -> None:
    for datagram, kind in [
        (b"\x80\x00", "short"),
        (b"\x00" * 20, "version"),
        (bytes.fromhex("80c8000612345678") + bytes(20), "rtcp"),
        (bytes([0x8F]) + bytes(30), "header"),
    ]:
        with pytest.raises(RtpError) as caught:
            PayloadCipher(mode, KEYS[mode]).encrypt(datagram)
        assert caught.value.kind == kind
        with pytest.raises(RtpError):
            PayloadCipher(mode, KEYS[mode]).decrypt(datagram)
        assert PayloadCipher(Mode.NONE, b"").decrypt(datagram) == datagram


def stream(count: int, *, start: int = 1, ssrc: int = 0x11223344, size: int = 160) -> list[bytes]:
    rng = random.Random(start)
    return [
        header(seq=(start + k) % 65536, ssrc=ssrc) + rng.randbytes(size) for k in range(count)
    ]


@pytest.mark.parametrize("mode", [Mode.RC4, Mode.AES128])
def test_each_packet_decrypts_alone(mode: Mode) -> None:
    plain = stream(5)
    enc = PayloadCipher(mode, KEYS[mode])
    wire = [enc.encrypt(p) for p in plain]
    # packet 3 without 1 and 2
    assert PayloadCipher(mode, KEYS[mode]).decrypt(wire[2]) == plain[2]
    # reordered, and with loss
    dec = PayloadCipher(mode, KEYS[mode])
    for k in (0, 3, 1, 4):
        assert dec.decrypt(wire[k]) == plain[k]


@pytest.mark.parametrize("mode", [Mode.RC4, Mode.AES128])
def test_sequence_wrap_moves_to_the_next_roc(mode: Mode) -> None:
    plain = stream(40, start=65520)  # SEQ 65520 .. 65535, then 0 .. 23 with ROC 1
    enc = PayloadCipher(mode, KEYS[mode])
    wire = [enc.encrypt(p) for p in plain]
    for k, (p, w) in enumerate(zip(plain, wire, strict=True)):
        assert w == reference(mode, KEYS[mode], p, 65520 + k)
    # a receiver that starts mid-stream, sees the wrap reordered and loses packets
    dec = PayloadCipher(mode, KEYS[mode])
    order = [5, 6, 8, 7, 17, 15, 16, 20, 14, 30, 39, 31]
    assert [dec.decrypt(wire[k]) for k in order] == [plain[k] for k in order]
    # the same SEQ with ROC 0 and ROC 1 has different keystreams
    first = PayloadCipher(mode, KEYS[mode]).encrypt(plain[0])
    assert first == wire[0]
    again = header(seq=65520) + plain[0][12:]
    late = PayloadCipher(mode, KEYS[mode])
    late.encrypt(header(seq=65535))
    late.encrypt(header(seq=10))  # ROC 1 now; SEQ 65520 is still ROC 0 (before the wrap)
    assert late.encrypt(again) == wire[0]
    late.encrypt(header(seq=20000))
    late.encrypt(header(seq=40000))
    assert late.encrypt(again) != wire[0]  # now ROC 1: the stream has moved past half way
    assert late.encrypt(again) == reference(mode, KEYS[mode], again, 65536 + 65520)


def test_xor_ignores_ssrc_and_index() -> None:
    cipher = PayloadCipher(Mode.XOR, b"k3y")
    payload = bytes(range(10))
    outs = {cipher.encrypt(header(seq=s, ssrc=r) + payload)[12:] for s in (1, 9) for r in (2, 3)}
    assert outs == {bytes(b ^ b"k3y"[j % 3] for j, b in enumerate(payload))}


@pytest.mark.parametrize("key", [b"\x01", b"ab", b"0123456789", bytes(range(1, 200))])
@pytest.mark.parametrize("size", [0, 1, 3, 10, 160, 199, 500])
def test_xor_is_cyclic_from_payload_byte_zero(key: bytes, size: int) -> None:
    payload = random.Random(size).randbytes(size)
    for head in (header(), header(csrcs=(1, 2), extension=bytes(8))):
        wire = PayloadCipher(Mode.XOR, key).encrypt(head + payload)
        assert wire == reference(Mode.XOR, key, head + payload, 0)
        assert wire[len(head) :] == bytes(b ^ key[j % len(key)] for j, b in enumerate(payload))


@pytest.mark.parametrize("mode", [Mode.XOR, Mode.RC4, Mode.AES128])
def test_wrong_key_or_mode_gives_different_bytes(mode: Mode) -> None:
    packet = header(seq=7) + bytes(range(160))
    wire = PayloadCipher(mode, KEYS[mode]).encrypt(packet)
    other_key = bytes([KEYS[mode][0] ^ 1]) + KEYS[mode][1:]
    assert PayloadCipher(mode, other_key).decrypt(wire) != packet
    for other in Mode:
        if other is not mode and other is not Mode.NONE:
            assert PayloadCipher(other, KEYS[other]).decrypt(wire) != packet
    assert PayloadCipher(Mode.NONE, b"").decrypt(wire) != packet


@pytest.mark.parametrize("mode", [Mode.RC4, Mode.AES128])
def test_ssrc_changes_the_keystream(mode: Mode) -> None:
    cipher = PayloadCipher(mode, KEYS[mode])
    payload = bytes(48)
    assert cipher.encrypt(header(ssrc=1) + payload)[12:] != cipher.encrypt(
        header(ssrc=2) + payload
    )[12:]


@pytest.mark.parametrize("mode", list(Mode))
def test_keystream_is_the_spec(mode: Mode) -> None:
    cipher = PayloadCipher(mode, KEYS[mode])
    packet = header(seq=9, ssrc=77) + bytes(70)
    assert cipher.keystream(77, 9, 70) == reference(mode, KEYS[mode], packet, 9)[12:]


def test_aes_window_matches_pycryptodome_ctr() -> None:
    # In order (served from the per-SSRC window), late, growing and shrinking payloads, many
    # SSRCs interleaved, a wrap: every packet equals the slow reference.
    rng = random.Random(7)
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    first = {ssrc: rng.randrange(65536) for ssrc in (1, 2, 0xFFFFFFFF)}
    true_index = dict(first)
    for _ in range(3000):
        ssrc = rng.choice(list(true_index))
        true_index[ssrc] += rng.choice([1, 1, 1, 2, 17])
        late = rng.randrange(40) if rng.random() < 0.1 else 0
        index = max(first[ssrc], true_index[ssrc] - late)
        size = rng.choice([160, 160, 160, 20, 161, 320, 1400, 2100, 5000])
        packet = header(seq=index & 0xFFFF, ssrc=ssrc) + rng.randbytes(size)
        assert enc.encrypt(packet) == reference(Mode.AES128, AES_KEY, packet, index)


def test_aes_windows_in_order_follow_each_other() -> None:
    # The usual stream: 20 ms packets in order, so each window's counter blocks are the last
    # window's plus a step (not recomputed); a wrap of SEQ in the middle. Every packet equals
    # the reference, and the 25 windows follow one another.
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    made = []
    for k in range(400):
        index = 65400 + k
        packet = header(seq=index & 0xFFFF, ssrc=0xCAFE) + bytes([k & 0xFF]) * 160
        assert enc.encrypt(packet) == reference(Mode.AES128, AES_KEY, packet, index)
        window = enc._stream(0xCAFE).window
        if not made or made[-1] is not window:
            made.append(window)
    assert len(made) == 400 // 16
    assert all(b.base == a.base + a.packets and b.counters > a.counters
               for a, b in pairwise(made))


def test_aes_window_near_the_last_index() -> None:
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    # Drive the ROC to 2**32 - 1 (as a late packet from before ROC 0 would): the window must
    # stop at index 2**48 - 1 rather than carry into the SSRC.
    stream_state = enc._stream(0x11223344)
    stream_state.estimator._roc = 0xFFFFFFFF
    stream_state.estimator._highest = 65529
    for seq in range(65530, 65536):
        packet = header(seq=seq) + bytes(160)
        index = (0xFFFFFFFF << 16) | seq
        assert enc.encrypt(packet) == reference(Mode.AES128, AES_KEY, packet, index)


def test_ssrc_state_is_bounded() -> None:
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    dec = PayloadCipher(Mode.AES128, AES_KEY)
    for ssrc in range(1000):
        packet = header(ssrc=ssrc, seq=ssrc) + bytes(32)
        assert dec.decrypt(enc.encrypt(packet)) == packet
    assert len(enc._streams) == crypto.MAX_STREAMS


packets_st = st.builds(
    lambda csrcs, extension, padding, payload, seq, ssrc: header(
        seq=seq, ssrc=ssrc, csrcs=tuple(csrcs), extension=extension, padding=padding
    )
    + payload,
    st.lists(st.integers(0, 2**32 - 1), max_size=15),
    st.none() | st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4]),
    st.booleans(),
    st.binary(max_size=300),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
)


@given(mode=st.sampled_from(list(Mode)), key=st.binary(min_size=1, max_size=40), packet=packets_st)
@settings(max_examples=300, deadline=None)
def test_property_round_trip_and_spec(mode: Mode, key: bytes, packet: bytes) -> None:
    if mode is Mode.AES128:
        key = (key * 16)[:16]
    length, _, seq = scan(packet)
    wire = PayloadCipher(mode, key).encrypt(packet)
    assert len(wire) == len(packet) and wire[:length] == packet[:length]
    assert PayloadCipher(mode, key).decrypt(wire) == packet
    if mode is not Mode.RC4:  # the pure-Python RC4 is slow; the vectors and tests above cover it
        assert wire == reference(mode, key, packet, seq)


@pytest.mark.parametrize("mode", [Mode.RC4, Mode.AES128])
def test_sprayed_ssrcs_do_not_push_out_the_stream_in_use(mode: Mode) -> None:
    # The stream in use has wrapped (ROC 1); a peer interleaves packets of many other SSRCs.
    plain = stream(40, start=65530)
    enc = PayloadCipher(mode, KEYS[mode])
    wire = [enc.encrypt(p) for p in plain]
    dec = PayloadCipher(mode, KEYS[mode])
    for k, packet in enumerate(wire):
        assert dec.decrypt(packet) == plain[k]
        for junk in range(crypto.MAX_STREAMS * 2):
            dec.decrypt(header(ssrc=1000 * k + junk, seq=junk) + bytes(8))
    assert len(dec._streams) == crypto.MAX_STREAMS


@given(
    steps=st.lists(
        st.tuples(st.integers(-40, 40), st.sampled_from([0, 1, 16, 17, 160, 161, 480, 2600])),
        min_size=1,
        max_size=60,
    ),
    start=st.integers(0, 65535),
)
@settings(max_examples=200, deadline=None)
def test_property_aes_windows_match_the_reference(
    steps: list[tuple[int, int]], start: int
) -> None:
    # Any walk of indexes (ahead, late, repeated) and payload sizes: the keystream windows
    # never give a packet another packet's keystream.
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    index = highest = start  # the first packet has ROC 0
    enc.encrypt(header(seq=index))
    for step, size in steps:
        index = max(start, index + step)
        highest = max(highest, index)
        index = max(index, highest - 30000)  # stay within the estimator's reach
        packet = header(seq=index & 0xFFFF) + bytes(range(256)) * (size // 256) + bytes(
            size % 256
        )
        assert enc.encrypt(packet) == reference(Mode.AES128, AES_KEY, packet, index)


def test_new_stream_works_when_every_kept_stream_is_in_use() -> None:
    # Eight SSRCs in use fill the table; a ninth is not kept, but while its packets come in a
    # row it keeps its state, across a wrap too.
    enc = PayloadCipher(Mode.AES128, AES_KEY)
    for ssrc in range(crypto.MAX_STREAMS):
        enc.encrypt(header(ssrc=ssrc))
    plain = stream(30, start=65520, ssrc=0xABCDEF)
    for k, packet in enumerate(plain):
        assert enc.encrypt(packet) == reference(Mode.AES128, AES_KEY, packet, 65520 + k)
    assert 0xABCDEF not in enc._streams


def test_xor_cache_stays_small() -> None:
    cipher = PayloadCipher(Mode.XOR, b"key")
    for size in range(1000):
        packet = header() + bytes(size)
        assert cipher.encrypt(packet) == reference(Mode.XOR, b"key", packet, 0)
    assert len(cipher._xor) <= crypto._XOR_SIZES
