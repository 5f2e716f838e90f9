"""End-to-end media through the real switch processes (issue 11): relays, encryption, timeouts.

The switch runs as a subprocess (ratelab.SwitchProcess) with its own local relay worker (or a
real rtpengine); SIPp does the signalling (tests/switch/sipp/uac_media*.xml, uas_media.xml)
and either plays real RTP (sip-tester's g711a.pcap, cut short) or points the SDPs at plain
UDP sockets of the test, which send and receive the RTP. What crosses the loopback between
two switches' relays is read with an AF_PACKET raw socket (the tests run as root).

Each switch gets its own 127.x address (A 127.0.0.2, B 127.0.0.3): B tells A's calls apart by
source IP, and the capture tells the hops apart by address.

SIPp, rtpengine and sip-tester's pcap must be installed: these tests fail, never skip.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from switch.contract import RTP_COUNTERS
from tests.switch.conftest import RTPENGINE_PORTS
from tests.switch.live import LiveSwitch, target, wait_until
from tests.switch.media_live import (
    NUMBER,
    logged,
    media_table,
    ng,
    ng_address,
    one_call,
    receive,
    relay_range,
    routing_to,
    rtp,
    sdp_address,
    udp_socket,
)
from tests.switch.sipp_runner import SippUas, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")


# --- 6. CDR counters --------------------------------------------------------------------------


def test_cdr_rtp_counters_match_what_was_sent(tmp_path: Path) -> None:
    live = LiveSwitch(tmp_path / "sw", extra=media_table(21400))
    forward = [rtp(seq, bytes([seq]) * 160) for seq in range(1, 6)]  # 5 x 172 bytes
    backward = [rtp(seq, b"back" * 5, ssrc=77) for seq in range(1, 4)]  # 3 x 32 bytes
    with one_call(tmp_path, live) as (call, uac, _switch):
        for packet in forward:
            call.caller.sendto(packet, call.to_relay_a)
        got_forward = receive(call.callee, len(forward))
        for packet in backward:
            call.callee.sendto(packet, call.to_relay_b)
        got_backward = receive(call.caller, len(backward))
    ok(uac.result(), 1)
    assert [d for d, _ in got_forward] == forward
    assert [d for d, _ in got_backward] == backward
    (cdr,) = live.cdrs()
    assert cdr["disconnect_reason"] == "caller_bye" and cdr["rtp_encryption"] == 0
    assert cdr["rtp"] == {
        "customer": {"packets_in": 5, "packets_out": 3, "bytes_in": 5 * 172,
                     "bytes_out": 3 * 32, "encryption": 0},
        "vendor": {"packets_in": 3, "packets_out": 5, "bytes_in": 3 * 32,
                   "bytes_out": 5 * 172, "encryption": 0},
    }


# --- 4. strict source -------------------------------------------------------------------------


def test_packets_from_another_source_are_dropped(tmp_path: Path) -> None:
    live = LiveSwitch(tmp_path / "sw", extra=media_table(21600))
    spoofer = udp_socket("127.0.0.9")
    other_port = udp_socket("127.0.0.1")  # the signalled IP, but not the latched port
    try:
        with one_call(tmp_path, live, duration_ms=3000) as (call, uac, switch):
            for seq in range(1, 6):  # before any genuine packet: the IP is not the SDP's
                spoofer.sendto(rtp(seq, b"spoofed!" * 20, ssrc=9), call.to_relay_a)
            for seq in range(1, 5):
                call.caller.sendto(rtp(seq, b"genuine!" * 20), call.to_relay_a)
            got = receive(call.callee, 4, quiet=0.5)
            for seq in range(5, 8):  # after the latch: right IP, wrong port
                other_port.sendto(rtp(seq, b"hijack!!" * 20, ssrc=10), call.to_relay_a)
            for seq in range(6, 9):
                spoofer.sendto(rtp(seq, b"spoofed!" * 20, ssrc=9), call.to_relay_a)
            late = receive(call.callee, 0, quiet=0.5)
            reply = ng(ng_address(switch), lambda c: c.query(call.call_id))
            caller_port = call.caller.getsockname()[1]
    finally:
        spoofer.close()
        other_port.close()
    ok(uac.result(), 1)
    assert [d for d, _ in got] == [rtp(seq, b"genuine!" * 20) for seq in range(1, 5)]
    assert late == [], f"spoofed packets reached the callee: {late}"
    caller_party = next(p for p in reply["tags"].values() if p["medias"][0]["streams"][0]
                        ["advertised endpoint"].get("port") == caller_port)
    stream = next(s for s in caller_party["medias"][0]["streams"] if "RTCP" not in s["flags"])
    assert stream["stats"] == {"packets": 4, "bytes": 4 * 172, "errors": 5 + 3 + 3}
    (cdr,) = live.cdrs()
    assert cdr["rtp"]["customer"]["packets_in"] == 4
    assert cdr["rtp"]["vendor"]["packets_out"] == 4


# --- 3. media timeout -------------------------------------------------------------------------


def check_media_timeout(tmp_path: Path, media: str, talker: str) -> None:
    """Two calls on a switch with media_timeout = 2: a silent one must be ended by the switch
    (BYE to both legs, ``media_timeout``); one where ``talker`` ("caller" or "callee") keeps
    sending RTP lives on for three timeouts, until the caller hangs up."""
    silent_sink, caller, callee = udp_socket(), udp_socket(), udp_socket()
    uas = SippUas("uas_media.xml", variables={"mip": "127.0.0.1",
                                               "mport": callee.getsockname()[1]},
                  workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", extra=media)
    live.routing = routing_to("v1", f"127.0.0.1:{uas.port}")
    talk_ms = 6000  # three media timeouts
    try:
        with uas, live.process() as switch, ThreadPoolExecutor(2) as pool:
            talking = pool.submit(run_uac, "uac_media.xml", target(switch), calls=1,
                                  duration_ms=talk_ms, service=NUMBER,
                                  workdir=tmp_path / "talking", timeout=30,
                                  variables={"mip": "127.0.0.1",
                                             "mport": caller.getsockname()[1]})
            to_relay_a = sdp_address(logged(tmp_path / "talking", "answer"))
            to_relay_b = sdp_address(logged(uas.workdir, "offer"))  # the first call's
            silent = pool.submit(run_uac, "uac_media_wait_bye.xml", target(switch), calls=1,
                                 service=NUMBER, workdir=tmp_path / "silent", timeout=30,
                                 variables={"mip": "127.0.0.1",
                                            "mport": silent_sink.getsockname()[1]})
            sock, relay = (caller, to_relay_a) if talker == "caller" else (callee, to_relay_b)
            sent, seq = 0, 1
            deadline = time.monotonic() + talk_ms / 1000 + 10  # bound, not an assertion
            while not talking.done() and time.monotonic() < deadline:
                sock.sendto(rtp(seq, b"\xd5" * 160), relay)
                sent, seq = sent + 1, seq + 1
                time.sleep(0.1)
            silent_result, talking_result = silent.result(timeout=45), talking.result(timeout=45)
    finally:
        for s in (silent_sink, caller, callee):
            s.close()
    ok(silent_result, 1)  # it got the switch's BYE
    assert silent_result.logged("bye"), silent_result.describe()
    ok(talking_result, 1)  # it hung up itself: no BYE from the switch came first
    ok(uas.result, 2)      # the vendor got a BYE for both
    cdrs = {r["disconnect_reason"]: r for r in live.cdrs()}
    assert set(cdrs) == {"media_timeout", "caller_bye"}, live.cdrs()
    assert cdrs["media_timeout"]["duration_ms"] >= 2000  # not ended before its timeout
    assert cdrs["media_timeout"]["rtp"]["customer"]["packets_in"] == 0
    assert cdrs["caller_bye"]["duration_ms"] >= talk_ms - 500
    leg = "customer" if talker == "caller" else "vendor"
    assert cdrs["caller_bye"]["rtp"][leg]["packets_in"] >= sent - 2


@pytest.mark.parametrize("talker", ["caller", "callee"])
def test_media_timeout_ends_a_silent_call_only(tmp_path: Path, talker: str) -> None:
    check_media_timeout(tmp_path, media_table(21800, media_timeout=2), talker)


# --- 5. ports freed ---------------------------------------------------------------------------


def test_relay_ports_are_freed_after_many_calls(tmp_path: Path) -> None:
    calls = 50
    sink = udp_socket()
    uas = SippUas("uas_media.xml", variables={"mip": "127.0.0.1",
                                               "mport": sink.getsockname()[1]},
                  workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", extra=media_table(22000))
    live.routing = routing_to("v1", f"127.0.0.1:{uas.port}")
    try:
        with uas, live.process() as switch:
            relay = ng_address(switch)
            before = ng(relay, lambda c: c.query())
            result = run_uac("uac_media.xml", target(switch), calls=calls, rate=50, limit=20,
                             duration_ms=200, service=NUMBER, workdir=tmp_path / "uac",
                             timeout=60, variables={"mip": "127.0.0.1",
                                                    "mport": sink.getsockname()[1]})
            assert wait_until(lambda: len(live.cdrs()) == calls, 10)
            after = ng(relay, lambda c: c.query())
    finally:
        sink.close()
    ok(result, calls)
    offers = [line.split() for line in (uas.workdir / "logs.log").read_text().splitlines()
              if line.startswith("offer ")]
    assert len(offers) == calls  # every call's media went through the relay
    assert all(o[1] == "127.0.0.1" and int(o[2]) in relay_range(22000) for o in offers)
    assert before["ratelab-ports"]["in use"] == 0
    assert after["calls"] == 0, after
    assert after["ratelab-ports"]["in use"] == 0, after
    assert after["ratelab-ports"]["free pairs"] == before["ratelab-ports"]["free pairs"]


# --- 2. a real rtpengine ----------------------------------------------------------------------

def test_switch_drives_a_real_rtpengine(tmp_path: Path, rtpengine: tuple[str, int]) -> None:
    host, port = rtpengine
    live = LiveSwitch(tmp_path / "sw", extra=f'[media]\nrelays = ["{host}:{port}"]\n')
    forward = [rtp(seq, bytes([seq]) * 160) for seq in range(1, 7)]
    backward = [rtp(seq, b"back" * 40, ssrc=77) for seq in range(1, 5)]
    ports = range(RTPENGINE_PORTS[0], RTPENGINE_PORTS[1] + 1)
    with one_call(tmp_path, live) as (call, uac, switch):
        assert f"media: 1 relay(s) {host}:{port}" in switch.log_text()
        for address in (call.to_relay_a, call.to_relay_b):
            assert address[0] == "127.0.0.1" and address[1] in ports, address
        assert call.to_relay_a != call.to_relay_b
        for packet in forward:
            call.caller.sendto(packet, call.to_relay_a)
        got_forward = receive(call.callee, len(forward))
        for packet in backward:
            call.callee.sendto(packet, call.to_relay_b)
        got_backward = receive(call.caller, len(backward))
    ok(uac.result(), 1)
    # rtpengine's userspace threads may reorder a burst (seen: seq 2 3 4 5 6 1): compare as sets
    assert sorted(d for d, _ in got_forward) == forward
    assert {a for _, a in got_forward} == {call.to_relay_b}  # sent from rtpengine's port
    assert sorted(d for d, _ in got_backward) == backward
    (cdr,) = live.cdrs()
    assert cdr["disconnect_reason"] == "caller_bye"
    assert cdr["rtp"]["customer"]["packets_in"] == len(forward)
    assert cdr["rtp"]["vendor"]["packets_in"] == len(backward)
    assert cdr["rtp"]["customer"]["bytes_in"] == len(forward) * 172
    assert all(leg[n] > 0 for leg in cdr["rtp"].values() for n in RTP_COUNTERS), cdr["rtp"]



def test_media_timeout_with_a_real_rtpengine(tmp_path: Path,
                                             rtpengine: tuple[str, int]) -> None:
    """The same media-timeout check reading rtpengine's ``last packet``."""
    host, port = rtpengine
    check_media_timeout(tmp_path, f'[media]\nrelays = ["{host}:{port}"]\nmedia_timeout = 2\n',
                        "caller")
