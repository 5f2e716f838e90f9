"""Two switches in tandem on loopback (issue 11): the hop between their relays is encrypted
(XOR, RC4, AES128) and both ends get clear audio; a key or mode mismatch gives garbage; a wrong
AES key length is refused by ``python -m switch check``. Plumbing in tests/switch/media_live.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from switch.media.crypto import Mode, PayloadCipher
from tests.switch.live import LiveSwitch, target, wait_until
from tests.switch.media_live import (
    KEY16,
    NUMBER,
    PCAP,
    PCAP_PACKETS,
    Tandem,
    background,
    customer,
    encryption,
    free_media_port,
    logged,
    original_rtp,
    receive,
    relay_range,
    routing_to,
    rtp,
    sdp_address,
    tandem,
    udp_socket,
)
from tests.switch.media_peers import (
    LoopbackCapture,
    shorten_pcap,
)
from tests.switch.sipp_runner import SippUas, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")


# --- 1. two switches in tandem: the hop between their relays is encrypted ---------------------

CLEAR_CASES = {
    "xor": ((1, "tandem-xor-key"), (1, "tandem-xor-key")),
    "rc4": ((2, "a fine rc4 key!!"), (2, "a fine rc4 key!!")),
    "aes128": ((3, KEY16), (3, KEY16)),
}
GARBLED_CASES = {
    "aes128 key mismatch": ((3, KEY16), (3, "fedcba9876543210")),
    "xor key mismatch": ((1, "key-one"), (1, "key-two")),
    "mode mismatch rc4/aes128": ((2, KEY16), (3, KEY16)),
    "encrypted to a clear leg": ((3, KEY16), (0, "")),
}


def to_caller(capture: LoopbackCapture, pair: Tandem, mport: int) -> list[bytes]:
    """What A's relay sent to the caller's media port."""
    return [d for s, sp, dst, dp, d in list(capture.datagrams)
            if s == "127.0.0.2" and sp in relay_range(pair.a_ports)
            and dst == "127.0.0.1" and dp == mport]


def run_tandem(tmp_path: Path, a_leg: tuple[int, str], b_leg: tuple[int, str]) -> dict[str, Any]:
    """One call through A and B: SIPp plays the pcap forward; the callee's socket sends
    packets back. Returns what each end and the capture saw."""
    originals = original_rtp()
    backward = [rtp(seq, bytes(range(seq, seq + 160))) for seq in range(1, 9)]
    callee = udp_socket()
    uas = SippUas("uas_media.xml", variables={"mip": "127.0.0.1",
                                               "mport": callee.getsockname()[1]},
                  workdir=tmp_path / "uas")
    pair = tandem(tmp_path, uas.port, a_leg, b_leg)
    uac_dir = tmp_path / "uac"
    uac_dir.mkdir()
    (uac_dir / "audio.pcap").write_bytes(shorten_pcap(PCAP.read_bytes(), PCAP_PACKETS))
    mport = free_media_port()
    with uas, pair.b.process() as b:
        b_host, b_port = b.udp_address
        pair.a.routing = routing_to("v1", f"{b_host}:{b_port}", encryption(*a_leg))
        with pair.a.process() as a, LoopbackCapture() as capture:
            with background(run_uac, "uac_media_pcap.xml", target(a), calls=1,
                            duration_ms=2000, service=NUMBER, extra=["-mp", str(mport)],
                            workdir=uac_dir, timeout=20) as uac:
                # quiet=1 s: the pcap is paced 30 ms apart; a loaded machine may stall longer
                forward = receive(callee, len(originals), quiet=1.0)
                logged(uac_dir, "answer")  # the 200 passed both switches: B knows the callee
                relay_b = sdp_address(logged(uas.workdir, "offer"))
                for packet in backward:
                    callee.sendto(packet, relay_b)
                result = uac.result(timeout=40)
            # The capture thread may lag a loaded machine: let it read what is queued on lo
            # (bounded; the assertions below say what was missing).
            wait_until(lambda: len(to_caller(capture, pair, mport)) >= len(backward),
                       timeout=5.0)
            time.sleep(0.2)
    callee.close()
    ok(result, 1)
    ok(uas.result, 1)
    return {
        "originals": originals, "backward": backward,
        "forward": [data for data, _ in forward],
        "hop_forward": capture.between("127.0.0.2", "127.0.0.3", relay_range(pair.a_ports),
                                       relay_range(pair.b_ports)),
        "hop_backward": capture.between("127.0.0.3", "127.0.0.2", relay_range(pair.b_ports),
                                        relay_range(pair.a_ports)),
        "to_caller": to_caller(capture, pair, mport),
        "cdr_a": pair.a.cdrs(), "cdr_b": pair.b.cdrs(),
    }


def header(packet: bytes) -> bytes:
    return packet[:12]  # g711a.pcap's and ours: no CSRC, no extension


@pytest.mark.parametrize("case", list(CLEAR_CASES))
def test_tandem_encrypted_hop_carries_clear_audio(tmp_path: Path, case: str) -> None:
    """Same mode and key on both sides of the A-B hop: each far end gets the original bytes,
    and between the relays every packet has the original header and an encrypted payload
    (the one docs/media.md specifies for that mode and key)."""
    a_leg, b_leg = CLEAR_CASES[case]
    seen = run_tandem(tmp_path, a_leg, b_leg)
    originals, backward = seen["originals"], seen["backward"]
    assert seen["forward"] == originals, "the callee did not get SIPp's RTP unchanged"
    assert seen["to_caller"] == backward, "the caller's side did not get the callee's RTP"

    mode, key = Mode(a_leg[0]), a_leg[1].encode()
    for hop, sent in (("hop_forward", originals), ("hop_backward", backward)):
        wire = seen[hop]
        assert len(wire) == len(sent), f"{hop}: {len(wire)} packets between the relays"
        assert [header(p) for p in wire] == [header(p) for p in sent]
        assert all(w[12:] != p[12:] for w, p in zip(wire, sent, strict=True)), \
            f"{hop}: a payload crossed the hop in clear"
        cipher = PayloadCipher(mode, key)
        assert wire == [cipher.encrypt(p) for p in sent], f"{hop}: not docs/media.md's {mode}"

    (cdr_a,), (cdr_b,) = seen["cdr_a"], seen["cdr_b"]
    assert cdr_a["rtp_encryption"] == a_leg[0]  # A's vendor leg is the encrypted hop
    assert cdr_b["rtp_encryption"] == 0         # B's vendor leg is clear
    # Per leg: the hop between A and B is A's vendor leg and B's customer leg.
    assert (cdr_a["rtp"]["customer"]["encryption"], cdr_a["rtp"]["vendor"]["encryption"]) == (
        0, a_leg[0])
    assert (cdr_b["rtp"]["customer"]["encryption"], cdr_b["rtp"]["vendor"]["encryption"]) == (
        b_leg[0], 0)
    for cdr in (cdr_a, cdr_b):
        assert cdr["disconnect_reason"] == "caller_bye"
        assert cdr["rtp"]["customer"]["packets_in"] == len(originals)
        assert cdr["rtp"]["vendor"]["packets_in"] == len(backward)


@pytest.mark.parametrize("case", list(GARBLED_CASES))
def test_tandem_mismatch_gives_garbage(tmp_path: Path, case: str) -> None:
    """A and B disagree on the key or the mode: the far end gets every packet, headers intact,
    but not the audio that was sent."""
    a_leg, b_leg = GARBLED_CASES[case]
    seen = run_tandem(tmp_path, a_leg, b_leg)
    originals, forward = seen["originals"], seen["forward"]
    assert len(forward) == len(originals), "packets were lost, not garbled"
    assert [header(p) for p in forward] == [header(p) for p in originals]
    assert all(f[12:] != p[12:] for f, p in zip(forward, originals, strict=True)), \
        "a payload arrived intact despite the mismatch"
    assert len(seen["to_caller"]) == len(seen["backward"])
    assert all(c[12:] != p[12:] for c, p in zip(seen["to_caller"], seen["backward"],
                                               strict=True))
    # Precisely: A's relay encrypts with its mode and key, B's decrypts with its own.
    a_mode, a_key = Mode(a_leg[0]), a_leg[1].encode()
    b_mode, b_key = Mode(b_leg[0]), b_leg[1].encode()
    a_out, b_in = PayloadCipher(a_mode, a_key), PayloadCipher(b_mode, b_key)
    assert forward == [b_in.decrypt(a_out.encrypt(p)) for p in originals]
    b_out, a_in = PayloadCipher(b_mode, b_key), PayloadCipher(a_mode, a_key)
    assert seen["to_caller"] == [a_in.decrypt(b_out.encrypt(p)) for p in seen["backward"]]


def switch_check(live: LiveSwitch) -> tuple[int, str]:
    checked = subprocess.run([sys.executable, "-m", "switch", "check", "--config",
                              str(live.write())], capture_output=True, text=True, timeout=60)
    return checked.returncode, checked.stdout + checked.stderr


# (key, its length in UTF-8 bytes, a 16-byte key of the same kind)
BAD_KEYS = {"15 bytes": ("k" * 15, 15, KEY16), "17 bytes": ("k" * 17, 17, KEY16),
            "16 characters, 17 bytes": ("\u00e9" + "k" * 15, 17, "\u00e9" * 8)}


@pytest.mark.parametrize("where", ["routing", "mapping", "media default"])
@pytest.mark.parametrize("bad", list(BAD_KEYS))
def test_check_refuses_aes_key_of_wrong_length(tmp_path: Path, bad: str, where: str) -> None:
    """``python -m switch check`` exits 2 naming the gateway whose AES128 key is not 16 UTF-8
    bytes (its own ``rtp_key``, or the ``[media]`` default it inherits); 16 bytes pass."""
    key, length, good_key = BAD_KEYS[bad]
    live = LiveSwitch(tmp_path)

    def configure(k: str) -> None:
        live.routing = routing_to("carrier", "127.0.0.1:5070",
                                  encryption(3, k) if where == "routing" else "")
        live.customers = customer("acme", "127.0.0.1",
                                  encryption(3, k) if where == "mapping" else "")
        live.extra = (f'[media]\nrtp_encryption_mode = 3\nrtp_encryption_key = "{k}"\n'
                      if where == "media default" else "")
        if where == "media default":  # the vendor opts out: only the customer inherits it
            live.routing += "rtp_encryption = 0\n"

    configure(key)
    code, out = switch_check(live)
    assert code == 2, out
    kind, name = ("routing", "carrier") if where == "routing" else ("mapping", "acme")
    assert re.search(rf"{kind}_gateway\[0\]: '{name}': AES128 needs a key of exactly 16 "
                     rf"bytes, got {length}", out), out
    configure(good_key)
    code, out = switch_check(live)
    assert code == 0, out
