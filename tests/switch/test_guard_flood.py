"""A UDP flood against the real switch while a trusted gateway places calls (issue 12's check).

In a network namespace of the test's own (:func:`tests.switch.netns.fresh_netns`: every
127.x address is the namespace's, no other test's traffic or ports), the switch listens on
127.0.0.10 (not on an attacker's address: its own host is trusted) with the guard's defaults
and ``[media] workers = 0`` (signalling only). A customer gateway at 127.0.0.2
(IP-authenticated, so trusted) places 3,000 calls of 1 s at 100 calls/s (30 s) with SIPp
(``-i 127.0.0.2``) to a SIPp UAS vendor on 127.0.0.1, while a separate process
(``tests/switch/flood.py``) floods the switch's UDP port at 25,000 datagrams/s from before the
first call to after the last: INVITEs, OPTIONS and REGISTERs from 64 source ports of
127.0.0.3, and from a pool of 65,536 spoofed-looking addresses (127.1.x.y, sent with
``IP_PKTINFO``), every datagram with its own Call-ID.

Checked: the flood really ran at >= 20,000 datagrams/s (what the sender measured); >= 99.9 % of
the legitimate calls succeeded, in SIPp's counts and in the CDRs (``caller_bye``); the switch's
counters (the ``counters:`` line it logs at stop) show the flood dropped by the guard, mostly by
the ``banned``, ``hashlimit``/``recent`` and ``flood`` rules; and afterwards the switch is alive
and answers the trusted gateway's OPTIONS.

Without the guard (``[guard] enabled = false``, measured by hand with this file's
:func:`flood_run`, not committed as a test: it is slow and loads the machine), every flood
datagram reaches the parser and the call engine: each INVITE from an unknown source is answered
403, each REGISTER challenged, each OPTIONS answered; 359 of 1,000 legitimate calls got
through (docs/performance.md, "Guard"). The first version of this test also found that the 403
to an unknown source was kept as a transaction and retransmitted 11 times over 32 s: under the
flood the switch held 64,000 of them and reflected 12 datagrams for each one in; the engine now
refuses unknown sources statelessly.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ratelab import SwitchProcess
from tests.switch.flood import Flood, FloodResult
from tests.switch.live import LiveSwitch, target, vendor
from tests.switch.netns import fresh_netns
from tests.switch.sipp_runner import SippResult, SippUas, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")

SWITCH_HOST = "127.0.0.10"
GATEWAY = "127.0.0.2"
ATTACKER = "127.0.0.3"
#: 30 s of calls, not 10: an INVITE the guard lets through (the untrusted budget) is answered
#: 403 and its server transaction lives 32 s (timer H), so the switch's state under a flood only
#: reaches its steady level after 32 s; a shorter run never sees it
CPS, SECONDS = 100, 30
CALLS = CPS * SECONDS
FLOOD_RATE = 25_000     # asked; the test holds the sender to >= 20,000/s measured
CUSTOMER = (f'[[mapping_gateway]]\nname = "acme"\naddresses = ["{GATEWAY}"]\n'
            "cps_limit = 10000\nmax_concurrent = 10000\n")
#: rules whose drops are the flood's bulk: a source over its limits (banned, after its first
#: burst), and the untrusted budget for the spoofed pool (each address is under its limits)
BULK_RULES = ("banned", "hashlimit", "recent", "flood")


@dataclass
class FloodRun:
    """What one run saw: the flood, SIPp, the CDRs, the switch's counters, the after-check."""

    flood: FloodResult
    uac: SippResult
    normal_cdrs: int
    counters: dict[str, int]
    alive: bool
    options_after: bool
    kernel_drops: int
    rss_mib: int
    seconds: float


def counters_of(log: str) -> dict[str, int]:
    """The ``counters: key=n ...`` line the switch logs when it stops."""
    found = re.findall(r"counters: (.*)$", log, re.MULTILINE)
    assert found, f"no counters line in the switch's log:\n{log[-3000:]}"
    return {key: int(n) for key, n in (item.split("=", 1) for item in found[-1].split())}


def socket_drops(host: str, port: int) -> int:
    """Datagrams the kernel dropped at the UDP socket bound to ``host:port`` (its buffer was
    full: the switch did not read fast enough), from /proc/net/udp's ``drops`` column."""
    local = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local:
            return int(fields[-1])
    raise AssertionError(f"no UDP socket bound to {host}:{port} in /proc/net/udp")


def rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def options_answered(source: str, host: str, port: int) -> bool:
    """An OPTIONS from ``source`` to the switch gets a 200 within 2 s."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        me = sock.getsockname()[1]
        sock.settimeout(2.0)
        sock.sendto((f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {source}:{me};branch=z9hG4bK{call_id}\r\n"
                     f"From: <sip:gw@{source}>;tag={call_id[:8]}\r\nTo: <sip:ping@{host}>\r\n"
                     f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), (host, port))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except OSError:
                return False
            if call_id.encode() in data:
                return data.startswith(b"SIP/2.0 200")
    return False


def flood_run(root: Path, guard: str = "", rate: float = FLOOD_RATE) -> FloodRun:
    """The whole scenario in a fresh namespace; ``guard`` is appended to ``[guard]``."""
    started = time.monotonic()
    with fresh_netns():
        uas = SippUas("uas_answer.xml", workdir=root / "uas")
        live = LiveSwitch(root / "sw", customers=CUSTOMER, host=SWITCH_HOST,
                          sip="invite_timeout = 8\ncall_progress_timeout = 30",
                          routing=vendor("v1", uas.port, '"44"'),
                          extra=f"[media]\nworkers = 0\n\n[guard]\n{guard}\n")
        config = live.write()
        with uas, SwitchProcess(config, log_level="INFO") as switch:
            host, port = switch.udp_address
            with Flood((host, port), rate, attacker=ATTACKER, seconds=120) as flood:
                time.sleep(1.0)  # the flood is at full rate (and 127.0.0.3 banned) first
                uac = run_uac("uac_basic.xml", target(switch), calls=CALLS, rate=CPS,
                              duration_ms=1000, local_ip=GATEWAY, service="447700900123",
                              workdir=root / "uac", timeout=60)
                time.sleep(0.5)  # still flooding while the last calls' BYEs settle
                flooded = flood.stop()
            alive = switch.running
            options_after = options_answered(GATEWAY, host, port)
            kernel_drops = socket_drops(host, port)
            rss = rss_mib(switch.pid)
        counters = counters_of(switch.log_text())
    normal = sum(1 for r in live.cdrs()
                 if r["customer"] == "acme" and r["disconnect_reason"] == "caller_bye"
                 and r["sip_code"] == 200)
    return FloodRun(flooded, uac, normal, counters, alive, options_after, kernel_drops, rss,
                    time.monotonic() - started)


def describe(run: FloodRun) -> str:
    screen = {k: v for k, v in run.counters.items() if k.startswith("screen.")}
    return (f"flood: {run.flood.sent:,} datagrams in {run.flood.seconds:.1f} s = "
            f"{run.flood.rate:,.0f}/s (slowest second {run.flood.min_second:,}), "
            f"{run.flood.kinds}\nsipp: {run.uac.successful} ok, {run.uac.failed} failed of "
            f"{CALLS}; normal CDRs {run.normal_cdrs}\nswitch counters (guard): {screen}\n"
            f"received {run.counters.get('received', 0):,}, screened "
            f"{run.counters.get('screened', 0):,}, sent {run.counters.get('sent', 0):,}; "
            f"dropped by the kernel at the switch's socket {run.kernel_drops:,}; switch RSS "
            f"{run.rss_mib} MiB; alive {run.alive}, OPTIONS "
            f"after {run.options_after}; {run.seconds:.1f} s")


def test_flood_from_many_sources_does_not_crowd_out_the_trusted_gateway(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (a network namespace of its own)")
    run = flood_run(tmp_path)
    print(describe(run))
    report = describe(run) + "\n" + run.uac.describe()

    # The flood was what the issue asks for, for the whole run: >= 20,000 requests/s.
    assert run.flood.rate >= 20_000, report
    assert run.flood.seconds >= SECONDS + 1, report

    # >= 99.9 % of the trusted gateway's calls succeeded, in SIPp's counts and in the CDRs.
    need = math.ceil(0.999 * CALLS)
    assert run.uac.successful + run.uac.failed == CALLS, report
    assert run.uac.successful >= need, report
    assert run.normal_cdrs >= need, report

    # The switch read the whole flood: a datagram the kernel drops because the switch's socket
    # buffer is full may as well be the trusted gateway's (the kernel cannot tell them apart).
    assert run.kernel_drops <= 0.001 * run.flood.sent, report

    # The guard dropped the flood, before the parser. What it let through is bounded by the
    # untrusted budget (untrusted_rate, 2,000/s by default, plus one second's burst), over the
    # time the switch spent reading the flood: the sender's seconds and up to one more, since
    # the switch reads what queued in its socket after the sender stops (CI once saw 1 over
    # a bound of the sender's seconds alone, 67,059 passed against 67,058).
    screen = {k.removeprefix("screen."): v for k, v in run.counters.items()
              if k.startswith("screen.")}
    drops = {k.removeprefix("drop."): v for k, v in screen.items() if k.startswith("drop.")}
    dropped = sum(drops.values())
    budget = 2_000 * (run.flood.seconds + 1 + 1)
    assert run.counters.get("screened", 0) == dropped, report
    assert screen.get("passed", 0) <= budget, report
    assert dropped >= 0.99 * (run.flood.sent - budget - run.kernel_drops), report
    assert dropped >= 0.8 * run.flood.sent, report   # the switch saw (and dropped) the flood
    assert sum(drops.get(rule, 0) for rule in BULK_RULES) >= 0.5 * dropped, report
    assert drops.get("banned", 0) > 0 and drops.get("flood", 0) > 0, report
    assert drops.get("options", 0) > 0, report

    # And the switch is still there for the trusted gateway.
    assert run.alive and run.options_after, report
