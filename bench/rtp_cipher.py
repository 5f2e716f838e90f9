"""RTP payload encryption: cost per packet of each mode, and of the alternatives measured.

Packets are 172 bytes (12-byte header, 160 bytes of payload: 20 ms of G.711), one SSRC, SEQ
counting up across wraps. Per mode, the time of ``encrypt`` then ``decrypt`` (two cipher
objects, as the two ends of a leg) per packet, in microseconds, best of ``--repeat`` runs, on
one core; also with 10 % of the packets arriving late (out of order), which for AES128 misses
the per-SSRC keystream window. Then the alternatives that were measured to choose the fast
paths. No assertions: the figures go to docs/performance.md.

    .venv/bin/python bench/rtp_cipher.py
    .venv/bin/python bench/rtp_cipher.py --packets 20000 --repeat 3   # quicker

Target (issue 11): AES128 relaying >= 100,000 packets/s on one core including UDP I/O (a
uvloop UDP echo costs about 3.3 us a packet), so the cipher work a packet must stay a few us.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from Crypto.Cipher import AES, ARC4
from Crypto.Util.strxor import strxor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switch.media import crypto
from switch.media.crypto import Mode, PayloadCipher

KEYS = {
    Mode.NONE: b"",
    Mode.XOR: b"an obfuscation key",
    Mode.RC4: b"an rc4 key of 22 bytes",
    Mode.AES128: bytes(range(16)),
}


def make_packets(count: int, *, late: float = 0.0, seed: int = 1) -> list[bytes]:
    """``count`` packets of one SSRC; a fraction ``late`` arrives 1-20 packets late."""
    rng = random.Random(seed)
    payload = rng.randbytes(160)
    start = rng.randrange(65536)
    order = list(range(count))
    for k in range(count):
        if rng.random() < late:
            j = min(count - 1, k + rng.randint(1, 20))
            order[k], order[j] = order[j], order[k]
    return [
        bytes.fromhex("8000") + ((start + k) & 0xFFFF).to_bytes(2) + (160 * k & 0xFFFFFFFF)
        .to_bytes(4) + bytes.fromhex("5eed5eed") + payload
        for k in order
    ]


def per_packet(run: Callable[[], None], count: int, repeat: int) -> float:
    """Best time of ``run`` over ``repeat`` runs, in microseconds per packet."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best / count * 1e6


def round_trip(mode: Mode, packets: list[bytes]) -> Callable[[], None]:
    def run() -> None:
        # Fresh ciphers per run: the SEQ numbers start over, as a new stream would.
        enc, dec = PayloadCipher(mode, KEYS[mode]), PayloadCipher(mode, KEYS[mode])
        encrypt, decrypt = enc.encrypt, dec.decrypt
        for packet in packets:
            decrypt(encrypt(packet))

    return run


def alternatives(packets: list[bytes], repeat: int) -> list[tuple[str, float]]:
    """One operation (encrypt only) per packet, the ways that were not kept and the kept one."""
    count = len(packets)
    key16 = KEYS[Mode.AES128]
    xor_key = KEYS[Mode.XOR]
    ecb = AES.new(key16, AES.MODE_ECB)
    stream = (xor_key * 20)[:160]
    stream_int = int.from_bytes(stream)
    results: list[tuple[str, float]] = []

    def aes_ctr_object() -> None:
        for packet in packets:
            iv = bytes(4) + packet[8:12] + int.from_bytes(packet[2:4]).to_bytes(6) + bytes(2)
            packet[:12] + AES.new(key16, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(
                packet[12:]
            )

    def aes_ecb_bytes_join() -> None:
        for packet in packets:
            prefix = bytes(4) + packet[8:12] + int.from_bytes(packet[2:4]).to_bytes(6)
            blocks = b"".join(prefix + b.to_bytes(2) for b in range(10))
            mask = int.from_bytes(ecb.encrypt(blocks))
            (int.from_bytes(packet) ^ mask).to_bytes(len(packet))

    def kept(mode: Mode, **tweaks: int) -> Callable[[], None]:
        def run() -> None:
            saved = {name: getattr(crypto, name) for name in tweaks}
            for name, value in tweaks.items():
                setattr(crypto, name, value)
            try:
                encrypt = PayloadCipher(mode, KEYS[mode]).encrypt
                for packet in packets:
                    encrypt(packet)
            finally:
                for name, value in saved.items():
                    setattr(crypto, name, value)

        return run

    def xor_byte_loop() -> None:
        for packet in packets:
            packet[:12] + bytes(b ^ stream[j] for j, b in enumerate(packet[12:]))

    def xor_strxor() -> None:
        for packet in packets:
            packet[:12] + strxor(packet[12:], stream)

    def xor_int_payload() -> None:
        for packet in packets:
            packet[:12] + (int.from_bytes(packet[12:]) ^ stream_int).to_bytes(160)

    def rc4_drop_parameter() -> None:
        for packet in packets:
            key = hashlib.sha256(b"k" + packet[8:12] + packet[2:4]).digest()
            packet[:12] + ARC4.new(key, drop=1536).encrypt(packet[12:])

    def rc4_one_call() -> None:
        for packet in packets:
            key = hashlib.sha256(b"k" + packet[8:12] + packet[2:4]).digest()
            packet[:12] + ARC4.new(key).encrypt(bytes(1536) + packet[12:])[1536:]

    def rc4_drop_768() -> None:
        for packet in packets:
            key = hashlib.sha256(b"k" + packet[8:12] + packet[2:4]).digest()
            packet[:12] + ARC4.new(key).encrypt(bytes(768) + packet[12:])[768:]

    for name, run in [
        ("AES128: new pycryptodome AES-CTR object per packet", aes_ctr_object),
        ("AES128: one ECB call, blocks by bytes.join", aes_ecb_bytes_join),
        ("AES128: one ECB call per packet, blocks by big int", kept(Mode.AES128, WINDOW=1)),
        ("AES128: kept (ECB over 16 packets' blocks, window)", kept(Mode.AES128)),
        ("XOR: Python byte loop", xor_byte_loop),
        ("XOR: Crypto.Util.strxor", xor_strxor),
        ("XOR: big int over the payload, slice and join", xor_int_payload),
        ("XOR: kept (big int over the whole packet)", kept(Mode.XOR)),
        ("RC4: ARC4.new(key, drop=1536) then encrypt", rc4_drop_parameter),
        ("RC4: drop 768 instead (one call)", rc4_drop_768),
        ("RC4: kept (one call over 1536 zeros + payload)", kept(Mode.RC4)),
    ]:
        results.append((name, per_packet(run, count, repeat)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores; {args.packets} packets of 172 bytes, "
          f"best of {args.repeat}")
    in_order = make_packets(args.packets)
    late = make_packets(args.packets, late=0.1)
    print(f"\n{'mode':<8} {'enc+dec us/pkt':>15} {'one op us':>10} {'ops/s (cipher only)':>20}"
          f" {'10% late: enc+dec':>18}")
    for mode in Mode:
        both = per_packet(round_trip(mode, in_order), args.packets, args.repeat)
        shuffled = per_packet(round_trip(mode, late), args.packets, args.repeat)
        print(f"{mode.name:<8} {both:>15.2f} {both / 2:>10.2f} {2e6 / both:>20,.0f}"
              f" {shuffled:>18.2f}")
    print("\nalternatives, encrypt only, us per packet (the kept ones include the header parsing "
          "and the ROC estimate, the others do not):")
    for name, cost in alternatives(in_order[: max(1, args.packets // 4)], args.repeat):
        print(f"  {cost:6.2f}  {name}")


if __name__ == "__main__":
    main()
