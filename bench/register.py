"""Registrar throughput: SIPp registering many password gateways with digest against one switch.

N mapping gateways with ``auth = "password"`` in the config, ``[registrar] digest_algorithms =
["MD5", "SHA-256"]`` (MD5 first: SIPp 3.6.1 answers only the first challenge, and only MD5).
SIPp (``bench/register.xml``) takes gateway names and passwords from an injection file, one
gateway per call, round robin: REGISTER, 401, REGISTER with Authorization, 200. Every 200 is a
binding the switch has written to its state file (fsync) before answering. The state file holds
all N gateways from the start (the switch loads it), so every save writes the whole table.

Steps through the given rates, each a fixed batch of ``rate * seconds`` registrations, and
prints per step the registrations placed, 200s and failures, the achieved rate (200s over the
step's wall time), SIPp's retransmissions and the CPU of the switch and of SIPp (100 % = one
core; they share the machine). The figure: the highest step rate held for a whole step with 0
failed registrations and the batch done in time (achieved rate at least 95 % of the offered
rate), not the total rate of one batch. Then, in this process, the cost of the switch's digest
``verify`` per request with MD5 and with SHA-256, and of the whole ``Registrar.register`` of an
authenticated REGISTER.

    .venv/bin/python bench/register.py                            # 2,000 gateways, 20 s steps
    .venv/bin/python bench/register.py --seconds 5 --rates 1000,2000
    .venv/bin/python bench/register.py --verify-only

Target (issue 10): >= 2,000 registrations/s with 0 failures, MD5 first.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from switch_common import ROOT, free_port, machine, need_sipp

from ratelab import SwitchProcess
from switch.config import load_config_text
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION
from switch.registrar import Binding, Registrar, save_bindings
from switch.sip import NonceCounts, NonceFactory, parse_message, verify
from switch.sip.digest import authorization, challenges

SCENARIO = ROOT / "bench" / "register.xml"


def gateways_toml(count: int) -> str:
    return "".join(f'[[mapping_gateway]]\nname = "gw{k:05d}"\nauth = "password"\n'
                   f'password = "pw-{k:05d}"\n\n' for k in range(count))


@dataclass
class BenchRegistrar:
    """A temporary switch config with ``count`` password gateways, and SIPp's injection file."""

    root: Path
    count: int

    @classmethod
    def create(cls, count: int) -> BenchRegistrar:
        root = Path(tempfile.mkdtemp(prefix="ratelab-bench-register-"))
        (root / "routing.json").write_text(json.dumps({
            "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "bench",
            "customers": {}, "vendors": {}}))
        (root / "switch.toml").write_text(
            f'[switch]\nid = "bench"\nsip_listen = ["udp:127.0.0.1:0"]\n'
            f'spool_dir = "{root}/spool"\nrouting_snapshot = "{root}/routing.json"\n'
            "shutdown_grace = 5\n\n"
            '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n\n' + gateways_toml(count))
        (root / "users.csv").write_text(
            "SEQUENTIAL\n" + "".join(f"gw{k:05d};pw-{k:05d}\n" for k in range(count)))
        bench = cls(root, count)
        # Every gateway registered already (the switch loads the state file at start), so that
        # each step's saves write the whole table from its first REGISTER on.
        save_bindings(bench.state_file, [
            Binding(f"gw{k:05d}", f"sip:gw{k:05d}@127.0.0.1:9", "udp", "127.0.0.1", 9, 3600.0)
            for k in range(count)], wall_offset=time.time())
        return bench

    @property
    def state_file(self) -> Path:
        return self.root / "bench.registrations.json"  # registrar.state_path: next to the spool

    def bindings(self) -> int:
        try:
            return len(json.loads(self.state_file.read_text())["bindings"])
        except FileNotFoundError:
            return 0

    def process(self) -> SwitchProcess:
        return SwitchProcess(self.root / "switch.toml", log_level="WARNING")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Step:
    successful: int
    failed: int
    retransmissions: int
    seconds: float
    sipp_cpu: float  # seconds


def _last(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def run_sipp(target: str, *, rate: int, calls: int, workdir: Path, timeout: float) -> Step:
    """``calls`` registrations at ``rate`` per second; SIPp's counts from its final screen."""
    started = time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [need_sipp(), target, "-sf", str(SCENARIO), "-inf", str(workdir / "users.csv"),
         "-au", "[field0]", "-ap", "[field1]",  # per call, from the injection file
         "-i", "127.0.0.1", "-p", str(free_port()), "-r", str(rate), "-m", str(calls),
         "-l", str(max(rate * 5, 100)), "-nostdin", "-timeout", f"{int(timeout)}s",
         "-max_socket", "65000"],
        cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    text = proc.stdout
    ok = _last(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    bad = _last(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    # The screen's message table: "REGISTER ---------->  <messages> <retrans> <timeouts>"
    retrans = sum(int(m) for m in re.findall(r"REGISTER\s+-+>\s+\d+\s+(\d+)", text))
    return Step(ok or 0, calls if bad is None else bad, retrans, seconds, sipp_cpu)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (100 Hz)


def step_rates(count: int, rates: list[int], seconds: int) -> int:
    bench = BenchRegistrar.create(count)
    held = 0
    try:
        with bench.process() as switch:
            host, port = switch.udp_address
            for rate in rates:
                calls = rate * seconds
                cpu = cpu_seconds(switch.pid)
                step = run_sipp(f"{host}:{port}", rate=rate, calls=calls, workdir=bench.root,
                                timeout=seconds * 3 + 30)
                cpu = cpu_seconds(switch.pid) - cpu
                achieved = step.successful / step.seconds if step.seconds else 0.0
                ok = (step.failed == 0 and step.successful == calls
                      and achieved >= 0.95 * rate)
                print(f"  {rate:5d}/s: {step.successful:7d} ok {step.failed:6d} failed, "
                      f"{achieved:6.0f}/s achieved in {step.seconds:5.1f} s, "
                      f"{step.retransmissions:5d} retransmissions, CPU switch "
                      f"{100 * cpu / step.seconds:3.0f} % SIPp "
                      f"{100 * step.sipp_cpu / step.seconds:3.0f} %, "
                      f"{bench.bindings()} bindings on disk  {'held' if ok else 'NOT held'}",
                      flush=True)
                if ok:
                    held = rate
                else:
                    break
    finally:
        bench.cleanup()
    return held


# --- in-process: the digest cost per request ----------------------------------------------------

REPEATS = 5  # the in-process figures are the best of this many rounds (others share the CPU)


def _per_call_us(fn, iterations: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / iterations * 1e6


def _costs(algorithm: str, iterations: int) -> tuple[float, float]:
    nonces = NonceFactory(b"0123456789abcdef0123456789abcdef", realm="bench")
    ch = challenges(realm="bench", nonces=nonces, now=0.0, algorithms=(algorithm,))[0]
    uri = "sip:127.0.0.1:5060"
    # One credentials header per request: nonce-count replay tracking refuses a repeated nc.
    headers = [authorization(ch.header_value(), username="gw00000", password="pw-00000",
                             method="REGISTER", uri=uri, cnonce="6b8b4567", nc=n)
               for n in range(1, REPEATS * iterations + 1)]
    counts = NonceCounts()
    values = iter(headers)

    def one_verify() -> None:
        v = verify(next(values), method="REGISTER", realm="bench", nonces=nonces, now=1.0,
                   password_for=lambda u: "pw-00000", algorithms=("MD5", "SHA-256"),
                   counts=counts)
        assert v.ok, v

    t_verify = _per_call_us(one_verify, iterations)
    cfg = load_config_text('[switch]\nid = "bench"\nsip_listen = ["udp:127.0.0.1:5060"]\n'
                           '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n'
                           + gateways_toml(1))
    registrar = Registrar(cfg, nonces=nonces)
    requests = iter([parse_message(
        (f"REGISTER {uri} SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-b\r\n"
         "From: <sip:gw00000@127.0.0.1>;tag=1\r\nTo: <sip:gw00000@127.0.0.1>\r\n"
         f"Call-ID: c\r\nCSeq: {n} REGISTER\r\nContact: <sip:gw00000@127.0.0.1:5061>\r\n"
         f"Expires: 3600\r\nAuthorization: {h}\r\nContent-Length: 0\r\n\r\n").encode())
        for n, h in enumerate(headers, 1)])

    def one_register() -> None:
        reply = registrar.register(next(requests), "udp", "127.0.0.1", 5061, 1.0)
        assert reply.status == 200, reply

    return t_verify, _per_call_us(one_register, iterations)


def verify_costs(iterations: int) -> dict[str, tuple[float, float]]:
    """Microseconds per request, per algorithm: (``verify``, ``Registrar.register`` of an
    authenticated REGISTER), both with nonce-count replay tracking as in the switch."""
    return {algorithm: _costs(algorithm, iterations) for algorithm in ("MD5", "SHA-256")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=2000,
                        help="password gateways in the config (SIPp registers them round robin)")
    parser.add_argument("--rates", default="500,1000,1500,2000,2500,3000,3500,4000",
                        help="comma-separated registration rates to step through")
    parser.add_argument("--seconds", type=int, default=20, help="length of each step")
    parser.add_argument("--iterations", type=int, default=10000,
                        help="requests timed per algorithm in the in-process verify figure")
    parser.add_argument("--verify-only", action="store_true",
                        help="only the in-process verify figures (no SIPp, no switch process)")
    args = parser.parse_args()
    print(f"register: {args.gateways} password gateways, MD5-first digest, "
          f"{args.seconds} s per step, {machine()}", flush=True)
    held = None
    if not args.verify_only:
        need_sipp()
        held = step_rates(args.gateways, [int(r) for r in args.rates.split(",")], args.seconds)
    costs = verify_costs(args.iterations)
    md5, sha = costs["MD5"], costs["SHA-256"]
    verify_line = (f"digest verify per request: MD5 {md5[0]:.1f} us, SHA-256 {sha[0]:.1f} us; "
                   f"whole Registrar.register: MD5 {md5[1]:.1f} us, SHA-256 {sha[1]:.1f} us")
    if held is not None:
        print(f"switch held {held} registrations/s (highest step with 0 failed; every 200 a "
              f"binding on disk) | {verify_line}")
    else:
        print(verify_line)


if __name__ == "__main__":
    main()
