"""Guard benchmark (issue 12): flood datagrams the switch's own layers drop per second on one core
while a trusted gateway holds 100 calls/s, and the switch's memory under 1,000,000 sources.

Everything runs in a network namespace of the benchmark's own (``tests/switch/netns.py``, so
every 127.x address is its own and no other work's ports or traffic mix in), like the flood test
(``tests/switch/test_guard_flood.py``): the switch on 127.0.0.10 (``[media] workers = 0``, the
guard's defaults unless told otherwise), pinned to core 0; a customer gateway at 127.0.0.2
(IP-authenticated, trusted) placing calls of 1 s with SIPp at ``--cps`` to a SIPp UAS vendor on
127.0.0.1; and the flood (``tests/switch/flood.py``: INVITEs, OPTIONS and REGISTERs from 64
ports of 127.0.0.3 and from 65,536 spoofed-looking 127.1.x.y addresses), SIPp and this script on
core 1. Each flood rate is a step with a fresh switch: the flood starts, a second later SIPp
places ``--cps`` x ``--seconds`` calls, and the flood stops half a second after the last call.

Per step: the flood rate offered (what the sender measured), the datagrams the switch's guard
dropped per second of flood (its ``screen.drop.*`` counters, from the ``counters:`` line it logs
at stop), what the kernel dropped at the switch's socket because the switch did not read fast
enough (``/proc/net/udp``), the legitimate calls attempted and succeeded (SIPp), and the switch's
CPU (``utime + stime`` over the flood) and RSS at the end.

Memory: a fresh switch gets INVITEs from 1,000,000 distinct addresses (127.16.0.0 upwards, each
once, at ``--distinct-rate``); its RSS before and after, with ``max_sources`` at its default
(200,000) and at ``--small-cap``. Then ``bench/guard_screen.py`` (the pure ``Screen.check``
figures, no I/O) on core 0.

    .venv/bin/python bench/guard.py                                  # about 3 minutes
    .venv/bin/python bench/guard.py --rates 20000,50000 --seconds 10 --no-memory
    .venv/bin/python bench/guard.py --untrusted-rate 1               # the budget closed

Target (issue 12): >= 100,000 drops/s on one core with 0 legitimate failures. Prints figures, no
assertions. Needs root (namespaces) and SIPp (Debian sip-tester).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ratelab import SwitchProcess  # noqa: E402
from tests.switch.flood import Flood, FloodResult  # noqa: E402
from tests.switch.live import LiveSwitch, target, vendor  # noqa: E402
from tests.switch.netns import fresh_netns  # noqa: E402
from tests.switch.sipp_runner import SippUas, run_uac  # noqa: E402

SWITCH_HOST = "127.0.0.10"
GATEWAY = "127.0.0.2"
SWITCH_CORE, LOAD_CORE = 0, 1
CUSTOMER = (f'[[mapping_gateway]]\nname = "acme"\naddresses = ["{GATEWAY}"]\n'
            "cps_limit = 10000\nmax_concurrent = 10000\n")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pin(pid: int, core: int) -> None:
    """Every thread of ``pid`` to ``core`` (sched_setaffinity is per thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {core})


def socket_drops(host: str, port: int) -> int:
    local = f"{bytes(map(int, host.split('.')))[::-1].hex().upper()}:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local:
            return int(fields[-1])
    return -1


def counters_of(log: str) -> dict[str, int]:
    found = re.findall(r"counters: (.*)$", log, re.MULTILINE)
    if not found:
        return {}
    return {key: int(n) for key, n in (item.split("=", 1) for item in found[-1].split())}


def drops_of(counters: dict[str, int]) -> dict[str, int]:
    return {k.removeprefix("screen.drop."): v for k, v in counters.items()
            if k.startswith("screen.drop.")}


def switch_files(root: Path, guard: str, vendor_port: int) -> Path:
    live = LiveSwitch(root, customers=CUSTOMER, host=SWITCH_HOST,
                      sip="invite_timeout = 8\ncall_progress_timeout = 30",
                      routing=vendor("v1", vendor_port, '"44"'),
                      extra=f"[media]\nworkers = 0\n\n[guard]\n{guard}\n")
    return live.write()


@dataclass
class Step:
    flood: FloodResult
    attempted: int
    succeeded: int
    counters: dict[str, int]
    kernel_drops: int
    cpu: float
    rss: float


def step(root: Path, rate: int, seconds: int, cps: int, guard: str) -> Step:
    uas = SippUas("uas_answer.xml", workdir=root / "uas")
    with uas, SwitchProcess(switch_files(root / "sw", guard, uas.port),
                            log_level="INFO") as switch:
        pin(switch.pid, SWITCH_CORE)
        host, port = switch.udp_address
        with Flood((host, port), rate, seconds=seconds * 4 + 60) as flood:
            cpu0, t0 = cpu_seconds(switch.pid), time.monotonic()
            time.sleep(1.0)
            uac = run_uac("uac_basic.xml", target(switch), calls=cps * seconds, rate=cps,
                          duration_ms=1000, local_ip=GATEWAY, service="447700900123",
                          workdir=root / "uac", timeout=seconds * 3 + 30)
            time.sleep(0.5)
            result = flood.stop()
            cpu = (cpu_seconds(switch.pid) - cpu0) / (time.monotonic() - t0)
        time.sleep(0.5)  # the switch drains its socket buffer
        kernel = socket_drops(host, port)
        rss = rss_mib(switch.pid)
    return Step(result, uac.successful + uac.failed, uac.successful,
                counters_of(switch.log_text()), kernel, cpu, rss)


def memory(root: Path, sources: int, rate: int, cap: int | None, guard: str) -> str:
    uas_port = 5999  # no calls in this part: nothing is sent to the vendor
    cap_line = f"max_sources = {cap}\n" if cap is not None else ""
    with SwitchProcess(switch_files(root, guard + cap_line, uas_port),
                       log_level="INFO") as switch:
        pin(switch.pid, SWITCH_CORE)
        time.sleep(0.5)
        before = rss_mib(switch.pid)
        host, port = switch.udp_address
        with Flood((host, port), rate, distinct=sources, seconds=sources / rate * 3 + 30) as fl:
            result = fl.wait(timeout=sources / rate * 3 + 60)
        time.sleep(1.0)
        after = rss_mib(switch.pid)
        kernel = socket_drops(host, port)
    counters = counters_of(switch.log_text())
    label = f"{cap:,}" if cap is not None else "200,000 (default)"
    return (f"  max_sources {label:>18}: RSS {before:6.1f} MiB before, {after:6.1f} MiB after "
            f"{result.sent:,} sources at {result.rate:,.0f}/s (+{after - before:.1f} MiB); "
            f"evicted {counters.get('screen.evicted', 0):,}, passed to the parser "
            f"{counters.get('screen.passed', 0):,}, dropped {sum(drops_of(counters).values()):,}"
            f" {drops_of(counters)}, kernel drops {kernel:,}")


def machine() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
            f"{' '.join(load)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20000,50000,100000,150000",
                        help="flood rates to step through (datagrams/s)")
    parser.add_argument("--seconds", type=int, default=10, help="legitimate calls per step (s)")
    parser.add_argument("--cps", type=int, default=100, help="legitimate calls per second")
    parser.add_argument("--untrusted-rate", type=float,
                        help="[guard] untrusted_rate (default: the switch's, 2,000/s)")
    parser.add_argument("--sources", type=int, default=1_000_000,
                        help="distinct source addresses for the memory part")
    parser.add_argument("--distinct-rate", type=int, default=100_000,
                        help="datagrams/s of the distinct-source flood")
    parser.add_argument("--small-cap", type=int, default=20_000,
                        help="the smaller max_sources of the memory part")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory part")
    parser.add_argument("--no-screen", action="store_true", help="skip bench/guard_screen.py")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/guard.py needs root (a network namespace of its own)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench/guard.py needs 2 cores (the switch on one, the load on the other)")
    os.sched_setaffinity(0, {LOAD_CORE})  # SIPp and the flood inherit it; the switch is moved
    guard = f"untrusted_rate = {args.untrusted_rate:g}\n" if args.untrusted_rate is not None \
        else ""
    print(f"guard bench: {machine()}; switch on core {SWITCH_CORE}, flood + SIPp on core "
          f"{LOAD_CORE}; [guard] {guard.strip() or 'defaults'}; {args.cps} calls/s for "
          f"{args.seconds} s per step", flush=True)
    print(f"{'offered/s':>10} {'dropped/s':>10} {'kernel/s':>9} {'passed/s':>9} "
          f"{'calls':>6} {'ok':>6} {'CPU %':>6} {'RSS MiB':>8}  drops by rule", flush=True)
    with tempfile.TemporaryDirectory(prefix="ratelab-bench-guard-") as tmp, fresh_netns():
        for rate in (int(r) for r in args.rates.split(",")):
            s = step(Path(tmp) / f"step-{rate}", rate, args.seconds, args.cps, guard)
            secs = s.flood.seconds
            drops = drops_of(s.counters)
            print(f"{s.flood.rate:10,.0f} {sum(drops.values()) / secs:10,.0f} "
                  f"{s.kernel_drops / secs:9,.0f} {s.counters.get('screen.passed', 0) / secs:9,.0f}"
                  f" {s.attempted:6,} {s.succeeded:6,} {100 * s.cpu:6.1f} {s.rss:8.1f}  "
                  f"{drops} (flood slowest second {s.flood.min_second:,}/s; switch sent "
                  f"{s.counters.get('sent', 0) / secs:,.0f}/s)", flush=True)
        if not args.no_memory:
            print(f"memory: INVITEs from {args.sources:,} distinct addresses at "
                  f"{args.distinct_rate:,}/s; {machine()}", flush=True)
            for cap in (None, args.small_cap):
                print(memory(Path(tmp) / f"mem-{cap}", args.sources, args.distinct_rate, cap,
                             guard), flush=True)
    if not args.no_screen:
        print(f"bench/guard_screen.py -n 50000 on core {SWITCH_CORE}:", flush=True)
        subprocess.run(["taskset", "-c", str(SWITCH_CORE), sys.executable,
                        str(ROOT / "bench" / "guard_screen.py"), "-n", "50000"], check=False)


if __name__ == "__main__":
    main()
