"""Media relay speed (issue 11): G.711 streams through one relay process per mode, and rtpengine.

N one-way streams of 20 ms G.711 (172-byte RTP: 12-byte header, 160 bytes of payload, 50
packets/s each, so N streams offer 50 N packets/s) are relayed by one ``python -m switch.media
run`` process per encryption mode 0-3 and, for mode 0, by rtpengine in userspace
(``--table=-1``, one worker thread). N streams are N/2 calls with a stream each way. In modes
1-3 the caller's leg is clear and the callee's leg encrypted (``ratelab-encryption``), so the
relay encrypts every caller-to-callee packet once and decrypts every callee-to-caller one once.

Machine use (2 cores): the relay (or rtpengine, all its threads) is pinned to core 0; the load
generator and the receiver are two processes pinned to core 1. All callers are one UDP socket
and all callees another (the relay still has its own ports per call and leg: only the peers are
shared); both processes use the two sockets (forked), the generator only to send, the receiver
only to receive. Per stream the RTP sequence number counts up, the timestamp by 160, and the
payload starts with the send time (CLOCK_REALTIME, ns) and the stream number. Towards an
encrypting leg the generator encrypts with :class:`switch.media.crypto.PayloadCipher` (one per
stream); the receiver decrypts what arrives from one and checks the payload's filler bytes.

Per step: ``--warmup`` seconds (not counted: latching, first keystream windows), then
``--duration`` seconds measured. A packet counts when its send time falls in the measured
window; lost = sent - received (the receiver waits 0.5 s after the generator stops). Latency is
the kernel's receive timestamp (``SO_TIMESTAMPNS``, taken when the relay's ``sendto`` hands the
packet to loopback) minus the send time written in the payload; the same is measured on the
direct path (generator socket to receiver socket, no relay) at the same rate, and the "+p99"
column subtracts the direct path's p99. Relay CPU is ``utime + stime`` from
``/proc/PID/stat`` over the measured window (all threads); packets per second per core is
delivered packets/s divided by that CPU fraction. A step is *held* when the generator offered
its full rate, every packet arrived intact and p99 < 1 ms; *held/s* when the median over the
step's seconds of each second's p99 is < 1 ms (other work on a shared machine stalls a core for
tens of ms now and then: that shows in the overall p99, not in the per-second median). Steps
ramp N; a target stops after a step with loss or a per-second p99 of 1 ms or more (a step that
the generator could not offer in full goes on: that is core 1's limit, not the relay's).
``--repeat`` tries a step again until held and shows the best try. The relay runs at nice -10
(root; ``--fifo`` puts it under SCHED_FIFO instead), the generator and the receiver at 0
(``--load-nice``). ``--churn`` then runs offer/answer/delete cycles on a fresh relay and prints the
ports still in use (issue 11: none after 100,000 calls); this replaces bench/media_relay.py.
No assertions: the figures go to docs/performance.md.

    .venv/bin/python bench/rtp.py --repeat 2 --fifo 10 --load-nice -5 --churn 100000  # make bench
    .venv/bin/python bench/rtp.py --streams 1000,2000 --modes 0,3 --no-rtpengine --duration 5

Targets (issue 11): mode 3 >= 100,000 packets/s on one core with 0 loss and p99 < 1 ms; mode 0
at least as fast as rtpengine userspace on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rtp_common import (  # noqa: E402
    GRACE,
    KEYS,
    LOAD_CPU,
    NICE,
    P99_LIMIT_US,
    RATE,
    RELAY_CPU,
    SO_TIMESTAMPNS,
    Result,
    Stream,
    direct_streams,
    generate,
    make_streams,
    pin,
    receive,
)
from switch.media import NgClient  # noqa: E402
from tests.switch.media_peers import (  # noqa: E402
    media_address,
    offer_sdp,
    rtpengine_command,
)

TICKS = os.sysconf("SC_CLK_TCK")


# --- the relays on core 0 ------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


FIFO = [0]  # SCHED_FIFO priority of the relay from --fifo (0: normal scheduling)


def _on_relay_core() -> None:
    pin(RELAY_CPU)
    if FIFO[0]:
        with contextlib.suppress(OSError):  # not root: normal scheduling
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO[0]))


def start_ours(ng: tuple[str, int], port_min: int, port_max: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "switch.media", "run", "--listen-ng", f"{ng[0]}:{ng[1]}",
         "--address", "127.0.0.1", "--port-min", str(port_min), "--port-max", str(port_max),
         "--log-level", "WARNING"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
        preexec_fn=_on_relay_core)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "relay ready" not in line:
        raise RuntimeError(f"relay did not start: {line!r}")
    return process


def start_rtpengine(binary: str, ng: tuple[str, int], port_min: int, port_max: int,
                    workdir: str) -> subprocess.Popen[str]:
    log = open(Path(workdir) / "rtpengine.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        rtpengine_command(binary, ng, (port_min, port_max), workdir, "--log-level=4",
                          "--num-threads=1", "--media-num-threads=1", "--http-threads=1"),
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir, text=True, preexec_fn=_on_relay_core)
    log.close()

    async def ping() -> bool:
        async with NgClient(ng, timeout=0.5, attempts=1) as client:
            for _ in range(40):
                if process.poll() is not None:
                    return False
                with contextlib.suppress(Exception):
                    await client.ping()
                    return True
        return False

    if not asyncio.run(ping()):
        process.kill()
        raise RuntimeError(f"rtpengine did not answer ping; see {workdir}/rtpengine.log")
    return process


async def set_up(ng: tuple[str, int], calls: int, mode: int, a: tuple[str, int],
                 b: tuple[str, int]) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """``calls`` calls, caller at ``a``, callee at ``b``; per call (caller sends to, callee
    sends to)."""
    sdp_a, sdp_b = offer_sdp(*a), offer_sdp(*b)
    encryption = (mode, KEYS[mode]) if mode else None

    async def one(client: NgClient, n: int) -> tuple[tuple[str, int], tuple[str, int]]:
        call_id = f"bench-rtp-{mode}-{n}"
        offered = await client.offer(call_id, "caller", sdp_a)
        answered = await client.answer(call_id, "caller", "callee", sdp_b,
                                       encryption=encryption)
        return media_address(answered), media_address(offered)

    result = []
    async with NgClient(ng, timeout=10.0) as client:
        for first in range(0, calls, 100):
            result += await asyncio.gather(*(one(client, n)
                                             for n in range(first, min(calls, first + 100))))
    return result


async def churn(ng: tuple[str, int], calls: int) -> tuple[float, int]:
    """``calls`` offer/answer/delete cycles; (seconds, ports in use after) (issue 11: no leak)."""
    sdp_a, sdp_b = offer_sdp("127.0.0.1", 4000), offer_sdp("127.0.0.1", 5000)
    async with NgClient(ng) as client:
        began = time.perf_counter()
        for n in range(calls):
            await client.offer(f"churn-{n}", "a", sdp_a)
            await client.answer(f"churn-{n}", "a", "b", sdp_b, encryption=(3, KEYS[3]))
            await client.delete(f"churn-{n}", "a", options={"flags": ["fast"]})
        elapsed = time.perf_counter() - began
        summary = await client.query()
    ports = summary["ratelab-ports"]
    assert isinstance(ports, dict) and isinstance(ports["in use"], int)
    return elapsed, ports["in use"]


# --- one step ------------------------------------------------------------------------------------


def run_step(target: str, socks: tuple[socket.socket, socket.socket], streams: list[Stream],
             mode: int, ssrc_base: int, pid: int | None, warmup: float,
             duration: float) -> Result:
    for sock in socks:  # leftovers of the previous step
        while True:
            try:
                sock.recv(2048)
            except BlockingIOError:
                break
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.time_ns() + 300_000_000
    window = (start + int(warmup * 1e9), start + int((warmup + duration) * 1e9))
    end = window[1]
    receiver = context.Process(target=receive,
                               args=(socks, streams, mode, ssrc_base, window,
                                     end + int(GRACE * 1e9), queue))
    generator = context.Process(target=generate,
                                args=(socks, streams, mode, ssrc_base, start, window, end, queue))
    receiver.start()
    generator.start()
    cpu_begin = cpu_end = 0.0
    if pid is not None:
        time.sleep(max(0.0, (window[0] - time.time_ns()) / 1e9))
        cpu_begin, wall_begin = cpu_seconds(pid), time.time_ns()
        time.sleep(max(0.0, (window[1] - time.time_ns()) / 1e9))
        cpu_end, wall_end = cpu_seconds(pid), time.time_ns()
    reports = [queue.get(timeout=warmup + duration + 60) for _ in range(2)]
    generator.join()
    receiver.join()
    merged: dict[str, Any] = {}
    for report in reports:
        merged.update(report)
    result = Result(target, len(streams), sent=merged["sent"], received=merged["received"],
                    corrupt=merged["corrupt"], p50=merged["p50"], p99=merged["p99"],
                    p99s=merged["p99s"], lag_ms=merged["lag_ms"])
    result.offered = result.sent / duration
    result.delivered = result.received / duration
    if pid is not None:
        result.cpu = (cpu_end - cpu_begin) / ((wall_end - wall_begin) / 1e9)
    return result


def _rank(r: Result) -> tuple[bool, bool, bool, float]:
    """Best try of a step first: held, then held per second, then offered in full, lowest p99."""
    return (not r.held, not r.held_per_second, r.generator_short, r.p99s)


def print_row(r: Result, baseline: Result | None) -> None:
    added = f"{r.p99 - baseline.p99:>9.0f}" if baseline is not None else f"{'':>9}"
    cpu = f"{100 * r.cpu:>6.1f}" if r.cpu is not None else f"{'-':>6}"
    per_core = f"{r.delivered / r.cpu:>10,.0f}" if r.cpu else f"{'-':>10}"
    note = " held" if r.held else " held/s" if r.held_per_second else ""
    if r.corrupt:
        note += f" corrupt {r.corrupt}"
    if r.generator_short:
        note += f" generator short of {RATE * r.streams:,} pps"
    print(f"{r.target:<14} {r.streams:>7,} {r.offered:>9,.0f} {r.delivered:>9,.0f} "
          f"{r.loss:>7.3f} {r.p50:>8.0f} {r.p99:>8.0f} {r.p99s:>8.0f} {added} {cpu} "
          f"{per_core}{note}", flush=True)


HEADER = (f"{'target':<14} {'streams':>7} {'offered':>9} {'delivered':>9} {'loss %':>7} "
          f"{'p50 us':>8} {'p99 us':>8} {'p99/s us':>8} {'+p99 us':>9} {'CPU %':>6} "
          f"{'pps/core':>10}")
LEGEND = ("offered/delivered: packets/s in the measured window; p99/s: median over its seconds "
          "of each second's p99; +p99: p99 minus the direct path's at the same rate; CPU: the "
          "relay's, % of one core; pps/core: delivered / CPU. held: offered in full, 0 loss, "
          "p99 < 1 ms; held/s: the same with p99/s < 1 ms.")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Targets (issue 11): mode 3 >= 100,000 packets/s on one core, 0 loss, p99 < 1 ms; "
               "mode 0 at least as fast as rtpengine userspace on one core.")
    parser.add_argument("--streams", default="500,1000,1500,2000,2500",
                        help="comma-separated stream counts to ramp through (even; 50 packets/s "
                             "each; default 500,1000,1500,2000,2500)")
    parser.add_argument("--modes", default="0,1,2,3", help="our relay's modes (default 0,1,2,3)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds measured per step (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds sent before measuring (default 1)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="tries per step until one is held; the best is shown (default 1; "
                             "on a shared machine other work stalls a core now and then)")
    parser.add_argument("--churn", type=int, default=0, metavar="CALLS",
                        help="then CALLS offer/answer/delete cycles on a fresh relay, and the "
                             "ports still in use after them (issue 11: 0 after 100,000)")
    parser.add_argument("--no-rtpengine", action="store_true", help="skip rtpengine")
    parser.add_argument("--rtpengine", default=shutil.which("rtpengine") or "rtpengine",
                        help="rtpengine binary (default: on PATH)")
    parser.add_argument("--no-direct", action="store_true",
                        help="skip the direct-path baseline (no added-latency columns)")
    parser.add_argument("--keep-going", action="store_true",
                        help="ramp every step even after one with loss or p99/s >= 1 ms")
    parser.add_argument("--nice", type=int, default=-10,
                        help="nice value of the relay (default -10, so other work on the "
                             "machine disturbs it less; negative needs root)")
    parser.add_argument("--load-nice", type=int, default=0,
                        help="nice value of the generator and receiver (default 0; "
                             "docs/performance.md used -5)")
    parser.add_argument("--fifo", type=int, default=0, metavar="PRIORITY",
                        help="run the relay (ours and rtpengine alike, all threads) under "
                             "SCHED_FIFO at this priority (root): a busy machine then cannot "
                             "delay it by a time slice; default 0, normal scheduling")
    parser.add_argument("--port-min", type=int, default=40000,
                        help="relay media ports (default 40000-55999: clear of the ranges the "
                             "tests use, so it can run beside them)")
    parser.add_argument("--port-max", type=int, default=55999)
    args = parser.parse_args()
    steps = sorted({int(s) // 2 * 2 for s in args.streams.split(",") if s.strip()})
    modes = [int(m) for m in args.modes.split(",") if m.strip()]
    if not steps or steps[0] < 2 or any(m not in (0, 1, 2, 3) for m in modes):
        parser.error("--streams needs even counts >= 2, --modes values 0-3")
    calls = steps[-1] // 2
    if calls * 4 > args.port_max - args.port_min + 1:
        parser.error(f"{steps[-1]} streams need {calls * 4} relay ports; widen --port-min/max")
    NICE[RELAY_CPU], NICE[LOAD_CPU] = args.nice, args.load_nice
    FIFO[0] = args.fifo
    pin(LOAD_CPU)

    socks = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for option, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
            try:  # SO_RCVBUFFORCE / SO_SNDBUFFORCE: past rmem_max, as root
                sock.setsockopt(socket.SOL_SOCKET, force, 32 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, option, 32 << 20)
        sock.setblocking(False)
        socks.append(sock)
    pair = (socks[0], socks[1])
    a, b = pair[0].getsockname(), pair[1].getsockname()

    print(f"{os.cpu_count()} cores; relay pinned to core {RELAY_CPU}, generator and receiver to "
          f"core {LOAD_CPU}; load average {os.getloadavg()[0]:.2f}; steps {steps} streams, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured each", flush=True)
    print(LEGEND)
    print(HEADER, flush=True)
    baselines: dict[int, Result] = {}
    results: list[Result] = []
    ssrc_base = 0x1000_0000
    if not args.no_direct:
        for count in steps:
            ssrc_base += 0x10_0000
            result = run_step("direct", pair, direct_streams(pair, count), 0, ssrc_base, None,
                              args.warmup, args.duration)
            baselines[count] = result
            print_row(result, None)

    targets: list[tuple[str, int]] = [(f"ours mode {m}", m) for m in modes]
    if not args.no_rtpengine and shutil.which(args.rtpengine) is None:
        print(f"# rtpengine not found ({args.rtpengine}): skipped", flush=True)
    elif not args.no_rtpengine:
        targets.insert(1 if 0 in modes else 0, ("rtpengine m0", 0))
    for name, mode in targets:
        ng = ("127.0.0.1", free_udp_port())
        with tempfile.TemporaryDirectory(prefix="bench-rtp-") as workdir:
            if name.startswith("rtpengine"):
                process = start_rtpengine(args.rtpengine, ng, args.port_min, args.port_max,
                                          workdir)
            else:
                process = start_ours(ng, args.port_min, args.port_max)
            try:
                began = time.perf_counter()
                routes = asyncio.run(set_up(ng, calls, mode, a, b))
                setup = time.perf_counter() - began
                print(f"# {name}: {calls:,} calls set up in {setup:.1f} s", flush=True)
                for count in steps:
                    tries = []
                    for _ in range(args.repeat):
                        ssrc_base += 0x10_0000
                        tries.append(run_step(name, pair, make_streams(routes, count, mode),
                                              mode, ssrc_base, process.pid, args.warmup,
                                              args.duration))
                        if tries[-1].held:
                            break
                    result = min(tries, key=_rank)
                    results.append(result)
                    print_row(result, baselines.get(count))
                    if process.poll() is not None:
                        print(f"# {name} exited with status {process.returncode} during the "
                              f"step; log: {workdir}", flush=True)
                        break
                    relay_failed = result.received < result.sent or result.p99s >= P99_LIMIT_US
                    if relay_failed and not args.keep_going:
                        break
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    if args.churn:
        ng = ("127.0.0.1", free_udp_port())
        process = start_ours(ng, args.port_min, args.port_max)
        try:
            elapsed, in_use = asyncio.run(churn(ng, args.churn))
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(f"\nchurn: {args.churn:,} calls (offer, answer with AES128, delete) in "
              f"{elapsed:.1f} s ({args.churn / elapsed:,.0f} calls/s); relay ports in use "
              f"after: {in_use}", flush=True)

    print("\nhighest step held (offered in full, 0 loss, p99 < 1 ms; in brackets with the "
          "per-second median p99 < 1 ms), packets/s per core there (delivered / relay CPU):")
    for name, _ in targets:
        line = []
        for strict in (True, False):
            passed = [r for r in results if r.target == name
                      and (r.held if strict else r.held_per_second)]
            if not passed:
                line.append("none")
                continue
            found = max(passed, key=lambda r: r.streams)
            per_core = found.delivered / found.cpu if found.cpu else 0.0
            line.append(f"{found.delivered:,.0f} packets/s ({found.streams:,} streams, p99 "
                        f"{found.p99:,.0f} us, CPU {100 * (found.cpu or 0):.0f} %, "
                        f"{per_core:,.0f} per core)")
        print(f"  {name:<14} {line[0]}\n  {'':<14} [{line[1]}]")
    ours = {r.streams: r for r in results if r.target == "ours mode 0" and r.cpu}
    theirs = {r.streams: r for r in results if r.target == "rtpengine m0" and r.cpu}
    for count in sorted(set(ours) & set(theirs)):
        a_cpu, b_cpu = ours[count].cpu or 1.0, theirs[count].cpu or 1.0
        print(f"{count:,} streams: ours mode 0 / rtpengine packets/s per core "
              f"{(ours[count].delivered / a_cpu) / (theirs[count].delivered / b_cpu):.2f} "
              f"(CPU {100 * a_cpu:.0f} % vs {100 * b_cpu:.0f} %)")
    for sock in socks:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
