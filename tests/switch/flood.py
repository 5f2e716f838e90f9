"""A raw UDP SIP flood for the guard's acceptance test and benchmark (issue 12). Not a test module.

The flood runs in a process of its own (``python -m tests.switch.flood``), paced to ``--rate``
datagrams per second, until ``--seconds`` have passed, ``--distinct`` sources are used up, or it
gets SIGTERM / SIGINT; then it prints one JSON line: datagrams sent, seconds, the average rate, the
lowest rate of a whole second, and the count per kind. :class:`Flood` starts and stops it from
Python and reads that line back (:class:`FloodResult`).

Two shapes:

- **mixed** (the default), a cycle of 20 datagrams: 9 INVITEs from ``--ports`` sockets bound to
  ``--attacker`` (many source ports of one address), 7 INVITEs from a pool of ``--pool``
  spoofed-looking addresses (127.1.0.0 upwards, one after the other, so each address sends now
  and then), then an OPTIONS and a REGISTER from each of the two. Every datagram has its own
  Call-ID and branch.
- **distinct** (``--distinct N``): INVITEs, each from a new address (127.16.0.0 upwards), N in
  all: a flood of sources, for the guard's memory bound.

Spoofed sources need no socket each: one socket sends with ``IP_PKTINFO`` ancillary data
naming the source address (``sendmsg``), which Linux accepts for any address it holds locally,
and it holds all of 127.0.0.0/8 on ``lo``. So run it in a network namespace of the test's own
(every 127.x address is then the namespace's) or against a switch on a loopback address.

``--cpu N`` pins the flood to that core (``os.sched_setaffinity``). One Python process sends
about 200,000-250,000 datagrams/s on a core of this project's machine; the rate it reached is
what it reports, never the rate asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

ROOT = Path(__file__).resolve().parents[2]
SOL_IP = 0
IP_PKTINFO = 8
POOL_BASE = (127 << 24) | (1 << 16)   # 127.1.0.0: the mixed flood's spoofed pool
DISTINCT_BASE = (127 << 24) | (16 << 16)   # 127.16.0.0: one address per datagram
#: the mixed flood's cycle of 20 datagrams: (method, from the pool?)
MIX: tuple[tuple[str, bool], ...] = (
    *(("INVITE", False),) * 9, *(("INVITE", True),) * 7,
    ("OPTIONS", False), ("OPTIONS", True), ("REGISTER", False), ("REGISTER", True))


def template(method: str, target: tuple[str, int]) -> bytes:
    """A plausible request the way a flooding bot sends it (no scanner name), as a bytes
    template that :func:`_fill` completes with the source, its port and the sequence number."""
    host, sport = target
    uri = f"sip:{host}:{sport}" if method == "REGISTER" else f"sip:4477009%05d@{host}"
    return (f"{method} {uri} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%012x\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:100@{host}>;tag=%012x\r\n"
            f"To: <sip:4477009%05d@{host}>\r\nCall-ID: %012x@%s\r\n"
            f"CSeq: 1 {method}\r\nContact: <sip:100@%s:%d>\r\n"
            "User-Agent: Asterisk PBX 16.2\r\nContent-Length: 0\r\n\r\n").encode()


def request(method: str, target: tuple[str, int], source: str, port: int, seq: int) -> bytes:
    """One datagram of the flood: ``method`` from ``source``:``port``, its ids from ``seq``."""
    return _fill(template(method, target), source, port, seq)


def _fill(tmpl: bytes, source: str, port: int, seq: int) -> bytes:
    text = source.encode()
    if tmpl.startswith(b"REGISTER"):
        return tmpl % (text, port, seq, seq, seq % 100000, seq, text, text, port)
    return tmpl % (seq % 100000, text, port, seq, seq, seq % 100000, seq, text, text, port)


def _pktinfo(address: int) -> list[tuple[int, int, bytes]]:
    return [(SOL_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, address.to_bytes(4, "big"), bytes(4)))]


def _dotted(address: int) -> str:
    return socket.inet_ntoa(address.to_bytes(4, "big"))


class _Stop:
    def __init__(self) -> None:
        self.now = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.now = True


def flood(target: tuple[str, int], rate: float, seconds: float, *, attacker: str = "127.0.0.3",
          ports: int = 64, pool: int = 65536, distinct: int = 0) -> dict[str, object]:
    """Send until ``seconds`` pass, ``distinct`` sources are used, or SIGTERM; the figures."""
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = []
    for _ in range(ports):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((attacker, 0))
        bound.append(sock)
    spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoof.bind(("0.0.0.0", 0))
    spoof_port = spoof.getsockname()[1]
    ports_of = [sock.getsockname()[1] for sock in bound]
    templates = {method: template(method, target) for method, _ in MIX}
    kinds: dict[str, int] = {}
    per_second: list[int] = []
    sent = errors = 0
    step = 64  # datagrams between clock readings
    print("flooding", flush=True)
    start = time.monotonic()
    end = start + seconds
    second_end, in_second = start + 1.0, 0
    while not stop.now:
        now = time.monotonic()
        if now >= end or (distinct and sent >= distinct):
            break
        if now >= second_end:
            per_second.append(in_second)
            second_end += 1.0
            in_second = 0
        due = int((now - start) * rate) - sent
        if due <= 0:
            time.sleep(min(0.001, (sent + 1) / rate - (now - start)))
            continue
        batch = min(due, step, distinct - sent) if distinct else min(due, step)
        for _ in range(batch):
            seq = sent
            try:
                if distinct:
                    address = DISTINCT_BASE + seq
                    spoof.sendmsg([_fill(templates["INVITE"], _dotted(address), spoof_port,
                                         seq)], _pktinfo(address), 0, target)
                    kind = "INVITE distinct"
                else:
                    method, pooled = MIX[seq % len(MIX)]
                    if pooled:
                        address = POOL_BASE + seq % pool
                        spoof.sendmsg(
                            [_fill(templates[method], _dotted(address), spoof_port, seq)],
                            _pktinfo(address), 0, target)
                    else:
                        k = seq % ports
                        bound[k].sendto(_fill(templates[method], attacker, ports_of[k], seq),
                                        target)
                    kind = f"{method} {'pool' if pooled else 'ports'}"
            except OSError:
                errors += 1
                kind = "error"
            kinds[kind] = kinds.get(kind, 0) + 1
            sent += 1
        in_second += batch
    elapsed = time.monotonic() - start
    for sock in [*bound, spoof]:
        sock.close()
    sent_ok = sent - errors
    return {"sent": sent_ok, "errors": errors, "seconds": round(elapsed, 3),
            "rate": round(sent_ok / elapsed, 1) if elapsed > 0 else 0.0,
            "min_second": min(per_second) if per_second else 0, "per_second": per_second,
            "kinds": kinds, "sources": (min(sent, distinct) if distinct
                                        else 1 + min(pool, sent * 8 // 20))}


@dataclass
class FloodResult:
    """What a flood process reported."""

    sent: int
    errors: int
    seconds: float
    rate: float
    min_second: int
    per_second: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    sources: int = 0


class Flood:
    """``python -m tests.switch.flood`` in the background, for a ``with`` block.

    ``start()`` returns once the flood is sending; ``stop()`` (or the block's end) sends SIGTERM
    and returns its :class:`FloodResult` (also kept in ``result``). ``seconds`` caps its length;
    a flood with ``distinct`` ends by itself (``wait()``).
    """

    def __init__(self, target: tuple[str, int], rate: float, *, seconds: float = 600.0,
                 attacker: str = "127.0.0.3", ports: int = 64, pool: int = 65536,
                 distinct: int = 0, cpu: int | None = None) -> None:
        self.command = [sys.executable, "-m", "tests.switch.flood", "--target",
                        f"{target[0]}:{target[1]}", "--rate", f"{rate:g}", "--seconds",
                        f"{seconds:g}", "--attacker", attacker, "--ports", str(ports),
                        "--pool", str(pool), "--distinct", str(distinct)]
        if cpu is not None:
            self.command += ["--cpu", str(cpu)]
        self.proc: subprocess.Popen[str] | None = None
        self.result: FloodResult | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Flood:
        self.proc = subprocess.Popen(self.command, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if first.strip() != "flooding":
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError(f"the flood did not start: {first!r} {err[-2000:]}")
        return self

    def wait(self, timeout: float) -> FloodResult:
        """Wait for a flood that ends by itself (``distinct``, ``seconds``)."""
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=timeout)
        return self._finish(out, err)

    def stop(self) -> FloodResult:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self._finish(out, err)

    def _finish(self, out: str, err: str) -> FloodResult:
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            code = self.proc.returncode if self.proc is not None else None
            raise RuntimeError(f"the flood reported nothing (exit {code}): {err[-2000:]}")
        self.result = FloodResult(**json.loads(lines[-1]))
        return self.result

    def __enter__(self) -> Flood:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None and self.result is None:
            self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="the switch's UDP address, IP:PORT")
    parser.add_argument("--rate", type=float, default=20000.0, help="datagrams per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="at most this long")
    parser.add_argument("--attacker", default="127.0.0.3", help="the address with many ports")
    parser.add_argument("--ports", type=int, default=64, help="source ports of --attacker")
    parser.add_argument("--pool", type=int, default=65536, help="spoofed addresses (mixed)")
    parser.add_argument("--distinct", type=int, default=0,
                        help="INVITEs each from a new address, this many in all")
    parser.add_argument("--cpu", type=int, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    host, _, port = args.target.rpartition(":")
    figures = flood((host, int(port)), args.rate, args.seconds, attacker=args.attacker,
                    ports=args.ports, pool=args.pool, distinct=args.distinct)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
