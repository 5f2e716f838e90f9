"""Switch concurrency: many established calls at once on one switch process.

SIPp's built-in uac places ``--calls`` long calls (default 10,000) at ``--rate`` per second, so
they are all up at the same time for a while; SIPp's uas answers them. Prints the switch's
resident memory before and with every call up, the memory per call, and whether every call
ended cleanly (SIPp: 0 failed; the spool: one CDR per call, all ``caller_bye``).

    .venv/bin/python bench/switch_concurrency.py
    .venv/bin/python bench/switch_concurrency.py --calls 2000 --rate 400
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from switch_common import BenchSwitch, SippUas, machine, rss_kib, run_uac


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500, help="calls placed per second")
    parser.add_argument("--hold", type=float, default=15.0,
                        help="seconds every call stays up after the last one is placed")
    args = parser.parse_args()
    ramp = args.calls / args.rate
    duration_ms = int((ramp + args.hold) * 1000)
    print(f"switch_concurrency: {args.calls} calls at {args.rate}/s, each {duration_ms} ms, "
          f"{machine()}")
    bench = BenchSwitch.create()
    uas = SippUas(bench.vendor_port, bench.root)
    try:
        with bench.process() as switch:
            host, port = switch.udp_address
            base = rss_kib(switch.pid)
            peak = [base]
            result: list = []
            uac = threading.Thread(target=lambda: result.append(run_uac(
                f"{host}:{port}", rate=args.rate, calls=args.calls, duration_ms=duration_ms,
                workdir=bench.root, limit=args.calls + 100,
                timeout=ramp + args.hold + 120)))
            uac.start()
            # sample memory while all calls are up (between the ramp's end and the hangups)
            time.sleep(ramp + args.hold / 2)
            peak.append(rss_kib(switch.pid))
            uac.join()
            after = rss_kib(switch.pid)
        time.sleep(0.2)
        cdrs = [json.loads(line) for p in sorted((bench.root / "spool").glob("*.jsonl"))
                for line in p.read_text().splitlines()]
    finally:
        uas.stop()
    uac_result = result[0]
    clean = sum(1 for r in cdrs if r["disconnect_reason"] == "caller_bye")
    per_call = (max(peak) - base) * 1024 / args.calls
    print(f"  switch RSS: {base / 1024:.0f} MiB idle, {max(peak) / 1024:.0f} MiB with "
          f"{args.calls} calls up, {after / 1024:.0f} MiB after they ended")
    print(f"  memory per established call: {per_call / 1024:.1f} KiB")
    print(f"  SIPp: {uac_result.successful} ok, {uac_result.failed} failed; CDRs: {len(cdrs)}, "
          f"{clean} caller_bye")
    ok = uac_result.failed == 0 and len(cdrs) == args.calls == clean
    print(f"all {args.calls} calls ended cleanly: {'yes' if ok else 'NO'}")
    bench.cleanup()


if __name__ == "__main__":
    main()
