"""Media relay (``python -m switch.media run``): packets per second through it, and no port leak.

Starts the relay as a process, sets up one call over the ng protocol, and blasts RTP (160-byte
payloads, like 20 ms of G.711) from a caller socket while a callee socket drains, keeping at
most ``--window`` packets in flight so the relay, not socket buffers, sets the pace. Once per
encryption mode of the callee's leg (0 clear, 3 AES128). Then ``--calls`` offer/answer/delete
cycles, after which the relay's ``query`` must show zero ports in use (issue 11: no leak over
100,000 calls).

    .venv/bin/python bench/media_relay.py                   # 300,000 packets, 100,000 calls
    .venv/bin/python bench/media_relay.py --packets 50000 --calls 2000

Target (issue 11): 100,000 packets/s per core with AES. The sender runs on the same machine, so
on two cores the figure is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.media import NgClient  # noqa: E402
from tests.switch.media_peers import media_address, offer_sdp, rtp  # noqa: E402


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def set_up(ng: tuple[str, int], call_id: str, caller: socket.socket,
                 callee: socket.socket, mode: int) -> tuple[tuple[str, int], tuple[str, int]]:
    async with NgClient(ng) as client:
        encryption = (mode, bytes(range(16))) if mode else None
        offered = await client.offer(call_id, "a", offer_sdp(*caller.getsockname()))
        answered = await client.answer(call_id, "a", "b", offer_sdp(*callee.getsockname()),
                                       encryption=encryption)
        return media_address(offered), media_address(answered)


def blast(ng: tuple[str, int], mode: int, packets: int, window: int) -> float:
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    callee.bind(("127.0.0.1", 0))
    callee.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    _, to_caller = asyncio.run(set_up(ng, f"blast-{mode}", caller, callee, mode))
    callee.setblocking(False)
    burst = [rtp(seq, bytes(160)) for seq in range(1024)]
    sent = received = lost = 0
    started = time.perf_counter()
    deadline = started + 120
    while sent < packets and time.perf_counter() < deadline:
        count = min(64, packets - sent)
        for packet in burst[:count]:
            caller.sendto(packet, to_caller)
        sent += count
        # Drain; wait while too much is in flight. Nothing for 20 ms means what is still in
        # flight was dropped (a socket buffer overflowed): count it lost and carry on.
        quiet_since = time.perf_counter()
        while True:
            try:
                callee.recv(2048)
                received += 1
                quiet_since = time.perf_counter()
            except BlockingIOError:
                now = time.perf_counter()
                if sent - received - lost <= window or now >= deadline:
                    break
                if now - quiet_since > 0.02:
                    lost = sent - received
                    break
                time.sleep(0.0001)
    elapsed = time.perf_counter() - started
    caller.close()
    callee.close()
    asyncio.run(_delete(ng, f"blast-{mode}"))
    print(f"mode {mode}: {received:,} of {sent:,} packets in {elapsed:.2f} s: "
          f"{received / elapsed:,.0f} packets/s")
    return received / elapsed


async def _delete(ng: tuple[str, int], call_id: str) -> None:
    async with NgClient(ng) as client:
        await client.delete(call_id)


async def churn(ng: tuple[str, int], calls: int) -> int:
    sdp_a, sdp_b = offer_sdp("127.0.0.1", 4000), offer_sdp("127.0.0.1", 5000)
    async with NgClient(ng) as client:
        started = time.perf_counter()
        for n in range(calls):
            await client.offer(f"churn-{n}", "a", sdp_a)
            await client.answer(f"churn-{n}", "a", "b", sdp_b)
            await client.delete(f"churn-{n}", "a", options={"flags": ["fast"]})
        elapsed = time.perf_counter() - started
        summary = await client.query()
    ports = summary["ratelab-ports"]
    assert isinstance(ports, dict)
    in_use = ports["in use"]
    assert isinstance(in_use, int)
    print(f"{calls:,} calls (offer, answer, delete) in {elapsed:.1f} s "
          f"({calls / elapsed:,.0f} calls/s); ports in use after: {in_use}")
    return in_use


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=300_000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    ng = ("127.0.0.1", free_udp_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "switch.media", "run", "--listen-ng", f"{ng[0]}:{ng[1]}",
         "--address", "127.0.0.1", "--port-min", "30400", "--port-max", "31399",
         "--log-level", "WARNING"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        print(process.stdout.readline().strip(), f"(cpus: {os.cpu_count()})")
        for mode in (0, 3):
            blast(ng, mode, args.packets, args.window)
        leaked = asyncio.run(churn(ng, args.calls))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
