"""Shared pieces of the switch benchmarks: a switch with one customer and one vendor, and SIPp.

SIPp (Debian package sip-tester) plays both the customer (built-in ``uac`` scenario) and the
vendor (built-in ``uas``); the switch runs as a subprocess via ``ratelab.SwitchProcess``.
Everything is on 127.0.0.1. Not a benchmark itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ratelab import SwitchProcess  # noqa: E402
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION  # noqa: E402


def free_port() -> int:
    """A port free for both UDP and TCP a moment ago."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def need_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    return path


@dataclass
class BenchSwitch:
    """A temporary switch config: customer 'bench' on 127.0.0.1, vendor 'v1' at vendor_port."""

    root: Path
    vendor_port: int

    @classmethod
    def create(cls) -> BenchSwitch:
        root = Path(tempfile.mkdtemp(prefix="ratelab-bench-switch-"))
        bench = cls(root, free_port())
        (root / "routing.json").write_text(json.dumps({
            "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "bench",
            "customers": {"bench": {"44": "0.0300"}}, "vendors": {"v1": {"44": "0.0100"}}}))
        (root / "switch.toml").write_text(
            f'[switch]\nid = "bench"\nsip_listen = ["udp:127.0.0.1:0"]\n'
            f'spool_dir = "{root}/spool"\nrouting_snapshot = "{root}/routing.json"\n'
            "shutdown_grace = 5\n\n[sip]\ninvite_timeout = 8\n\n"
            '[[mapping_gateway]]\nname = "bench"\naddresses = ["127.0.0.1"]\n'
            "cps_limit = 100000\nmax_concurrent = 1000000\nmax_duration = 86400\n\n"
            f'[[routing_gateway]]\nname = "v1"\naddress = "127.0.0.1:{bench.vendor_port}"\n'
            'prefixes = ["44"]\n')
        return bench

    def process(self) -> SwitchProcess:
        return SwitchProcess(self.root / "switch.toml", log_level="WARNING")

    def cdr_count(self) -> int:
        return sum(p.read_bytes().count(b"\n") for p in (self.root / "spool").glob("*.jsonl"))

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class SippUas:
    """SIPp's built-in UAS answering every call, in the background.

    The scenario is SIPp's own ``uas`` (``sipp -sd uas``) with one change: its Contact carries
    no ``;transport=UDP`` parameter, which Sippy 2.5 cannot route in-dialog requests to
    ("unsupported transport: UDP"), so the baseline would fail for a reason that is not speed.
    """

    def __init__(self, port: int, workdir: Path) -> None:
        scenario = workdir / "uas.xml"
        # sipp -sd prints the scenario and exits 99 ("no calls processed"): judge the output
        builtin = subprocess.run([need_sipp(), "-sd", "uas"], capture_output=True,
                                 text=True).stdout
        if "<scenario" not in builtin:
            sys.exit("sipp -sd uas printed no scenario")
        scenario.write_text(builtin.replace(";transport=[transport]", ""))
        self.proc = subprocess.Popen(
            [need_sipp(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
             "-max_socket", "65000"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)  # SIPp: quit gracefully
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class UacResult:
    successful: int
    failed: int
    seconds: float


def run_uac(target: str, *, rate: int, calls: int, duration_ms: int, workdir: Path,
            limit: int, timeout: float) -> UacResult:
    """SIPp's built-in UAC: ``calls`` calls at ``rate`` per second, each ``duration_ms`` long."""
    started = time.monotonic()
    proc = subprocess.run(
        [need_sipp(), target, "-sn", "uac", "-s", "447700900123", "-i", "127.0.0.1",
         "-p", str(free_port()), "-r", str(rate), "-m", str(calls), "-l", str(limit),
         "-d", str(duration_ms), "-nostdin", "-timeout", f"{int(timeout)}s",
         "-max_socket", "65000"],
        cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
    text = proc.stdout
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return UacResult(int(ok[-1]) if ok else 0, int(bad[-1]) if bad else calls,
                     time.monotonic() - started)


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
