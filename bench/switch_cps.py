"""Switch throughput: SIPp uac -> switch -> SIPp uas at stepped call rates.

Prints, per step, the calls placed, answered and failed and whether every call has a CDR, then
the highest rate held for the whole step with 0 failed calls and a CDR for every call. With the
Sippy B2BUA installed (PyPI ``sippy``, its ``b2bua_simple``), the same steps run against it in
the same run and the ratio is printed.

    .venv/bin/python bench/switch_cps.py                       # 60 s per step (the issue's)
    .venv/bin/python bench/switch_cps.py --seconds 10 --rates 500,1000
    .venv/bin/python bench/switch_cps.py --sippy-python /tmp/sippy/bin/python \
        --sippy-rates 50,100,200,400

Target (issue 3): >= 1,000 CPS with 0 failures from one switch process (>= 2.5x Sippy).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from switch_common import BenchSwitch, SippUas, free_port, machine, run_uac


def step_switch(rates: list[int], seconds: int, duration_ms: int) -> int:
    bench = BenchSwitch.create()
    uas = SippUas(bench.vendor_port, bench.root)
    held = 0
    try:
        with bench.process() as switch:
            host, port = switch.udp_address
            for rate in rates:
                before = bench.cdr_count()
                result = run_uac(f"{host}:{port}", rate=rate, calls=rate * seconds,
                                 duration_ms=duration_ms, workdir=bench.root,
                                 limit=rate * 10, timeout=seconds * 3 + 30)
                time.sleep(0.5)  # the last CDRs are synced in the next group commit
                cdrs = bench.cdr_count() - before
                ok = result.failed == 0 and result.successful == rate * seconds \
                    and cdrs == rate * seconds
                print(f"  switch  {rate:5d} cps: {result.successful:7d} ok {result.failed:6d}"
                      f" failed, {cdrs:7d} CDRs, {result.seconds:5.1f} s  "
                      f"{'held' if ok else 'NOT held'}", flush=True)
                if ok:
                    held = rate
                else:
                    break
    finally:
        uas.stop()
        bench.cleanup()
    return held


def sippy_python(given: str | None) -> str | None:
    """A Python that can import sippy: ``--sippy-python``, else this one if it has sippy."""
    if given:
        return given
    return sys.executable if importlib.util.find_spec("sippy") is not None else None


def _wait_bound(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Sippy imports a lot before it binds: wait until its UDP port is taken."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                time.sleep(1.0)  # bound; give it a moment to start its loop
                return
        time.sleep(0.2)
    raise SystemExit(f"sippy did not bind 127.0.0.1:{port} within {timeout:g} s")


def step_sippy(rates: list[int], seconds: int, duration_ms: int,
               python: str | None) -> int | None:
    """The same steps through Sippy's b2bua_simple, if it is installed."""
    if python is None:
        return None
    bench = BenchSwitch.create()
    uas = SippUas(bench.vendor_port, bench.root)
    port = free_port()
    proc = subprocess.Popen(
        [python, "-m", "sippy.b2bua_simple", "-f", "-l", "127.0.0.1", "-p", str(port),
         "-n", f"127.0.0.1:{bench.vendor_port}"],
        cwd=bench.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_bound(port, proc)
    held = 0
    try:
        for rate in rates:
            result = run_uac(f"127.0.0.1:{port}", rate=rate, calls=rate * seconds,
                             duration_ms=duration_ms, workdir=bench.root, limit=rate * 10,
                             timeout=seconds * 3 + 30)
            ok = result.failed == 0 and result.successful == rate * seconds
            print(f"  sippy   {rate:5d} cps: {result.successful:7d} ok {result.failed:6d}"
                  f" failed, {result.seconds:5.1f} s  {'held' if ok else 'NOT held'}",
                  flush=True)
            if ok:
                held = rate
            else:
                break
    finally:
        proc.terminate()
        proc.wait(10)
        uas.stop()
        bench.cleanup()
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,400,600,800,1000,1200,1400",
                        help="comma-separated call rates to step through")
    parser.add_argument("--seconds", type=int, default=60, help="length of each step")
    parser.add_argument("--duration-ms", type=int, default=1000, help="each call's length")
    parser.add_argument("--sippy-rates", metavar="RATES",
                        help="rates for the Sippy baseline (default: the same as --rates)")
    parser.add_argument("--sippy-python", metavar="PYTHON",
                        help="a Python with sippy installed (python -m venv /tmp/sippy && "
                             "/tmp/sippy/bin/pip install sippy), for the baseline")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    rates = [int(r) for r in args.rates.split(",")]
    print(f"switch_cps: {args.seconds} s per step, calls of {args.duration_ms} ms, {machine()}")
    held = step_switch(rates, args.seconds, args.duration_ms)
    print(f"switch held {held} cps (0 failed, a CDR for every call)")
    sippy_rates = [int(r) for r in args.sippy_rates.split(",")] if args.sippy_rates else rates
    sippy = step_sippy(sippy_rates, args.seconds, args.duration_ms,
                       sippy_python(args.sippy_python))
    if sippy is None:
        print("sippy not found (see --sippy-python): no baseline in this run")
    else:
        ratio = f"{held / sippy:.2f}x" if sippy else "n/a (sippy held no step)"
        print(f"sippy held {sippy} cps; switch / sippy = {ratio}")


if __name__ == "__main__":
    main()
