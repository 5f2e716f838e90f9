"""What a UDP relay pays per packet for the I/O alone: one socket, or one socket per stream.

Issue 11 sized the AES128 relay target (100,000 packets/s on one core) from "a uvloop UDP echo
costs 3.3 us a packet". That figure is an echo on ONE socket, where packets queue up and each
wake-up of the loop reads many. A media relay has a socket per stream (a port pair per call leg,
50 packets/s each), so each packet costs its own wake-up share, its own ``recvmsg`` (and, in
libuv, a second ``recvmsg`` that finds the socket empty) and its own ``sendto``. This bench
measures both in the same run, at the same packet rate, with no cipher and no relay logic: a
uvloop process whose N sockets send every datagram straight on to a sink (what mode 0 does), its
CPU (user + system, from /proc) divided by the packets it forwarded.

    .venv/bin/python bench/udp_floor.py                      # 1 and 2,000 sockets, 50,000 pps
    .venv/bin/python bench/udp_floor.py --sockets 1,500,2000 --rate 80000

The forwarder is pinned to core 0, the generator and the sink to core 1. No assertions: the
figures go to docs/performance.md ("Media relay").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import socket
import sys
import time

PACKET = bytes(172)  # 12-byte RTP header + 160 bytes of G.711: 20 ms
BASE_PORT = 47000  # the forwarder's sockets: BASE_PORT .. BASE_PORT + N - 1
SINK_PORT = 46990


def _ticks(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _forwarder(sockets: int, ready: mp.synchronize.Event) -> None:
    os.sched_setaffinity(0, {0})
    import asyncio

    import uvloop

    class Forward(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, ("127.0.0.1", SINK_PORT))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for k in range(sockets):
            transport, _ = await loop.create_datagram_endpoint(
                Forward, local_addr=("127.0.0.1", BASE_PORT + k))
            # One socket takes every stream's packets: give it room for a burst, as the relay
            # gives each of its sockets room for seconds of its one stream.
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        ready.set()
        await asyncio.sleep(3600)

    uvloop.run(main())


def _generator(sockets: int, rate: int, seconds: float, sent: mp.sharedctypes.Synchronized,
               go: mp.synchronize.Event) -> None:
    os.sched_setaffinity(0, {1})
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    targets = [("127.0.0.1", BASE_PORT + k) for k in range(sockets)]
    go.wait()
    start = time.perf_counter()
    n = 0
    # Paced in 1 ms slices: rate/1000 packets each, spread over the sockets in turn (so with N
    # sockets each gets rate/N packets/s, like N streams).
    per_slice = max(1, rate // 1000)
    end = start + seconds
    while (now := time.perf_counter()) < end:
        due = int((now - start) * rate)
        for _ in range(min(due - n, per_slice * 4)):
            out.sendto(PACKET, targets[n % sockets])
            n += 1
        if n >= due:
            time.sleep(0.0005)
    sent.value = n


def measure(sockets: int, rate: int, seconds: float) -> dict[str, float]:
    """Forward ``rate`` packets/s over ``sockets`` sockets for ``seconds``; CPU per packet."""
    ready, go = mp.Event(), mp.Event()
    sent = mp.Value("q", 0)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    sink.bind(("127.0.0.1", SINK_PORT))
    sink.settimeout(0.5)
    fwd = mp.Process(target=_forwarder, args=(sockets, ready), daemon=True)
    fwd.start()
    if not ready.wait(60):
        raise RuntimeError("forwarder did not start")
    gen = mp.Process(target=_generator, args=(sockets, rate, seconds, sent, go), daemon=True)
    gen.start()
    os.sched_setaffinity(0, {1})
    before = _ticks(fwd.pid or 0)
    go.set()
    received = 0
    t0 = time.perf_counter()
    try:
        while True:
            sink.recv(2048)
            received += 1
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - t0 - 0.5
    cpu = _ticks(fwd.pid or 0) - before
    gen.join(10)
    fwd.kill()
    fwd.join(5)
    sink.close()
    return {"sockets": sockets, "sent": sent.value, "received": received,
            "rate": received / seconds, "cpu": cpu / max(elapsed, seconds),
            "us_per_packet": cpu / max(1, received) * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", default="1,2000", help="comma-separated socket counts")
    parser.add_argument("--rate", type=int, default=50_000, help="packets/s offered")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"{args.rate:,} packets/s of {len(PACKET)} bytes for {args.seconds:g} s")
    print(f"{'sockets':>8} {'sent':>9} {'forwarded':>10} {'loss %':>7} {'CPU %':>6} "
          f"{'us/packet':>10}")
    for count in (int(x) for x in args.sockets.split(",")):
        r = measure(count, args.rate, args.seconds)
        loss = 100 * (1 - r["received"] / max(1, r["sent"]))
        print(f"{count:>8,} {int(r['sent']):>9,} {int(r['received']):>10,} {loss:>7.2f} "
              f"{100 * r['cpu']:>6.1f} {r['us_per_packet']:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
