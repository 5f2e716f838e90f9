"""Does a long dialled number stall the switch? OPTIONS round trips idle and while one is handled.

A switch (one process, UDP and TCP on 127.0.0.1, customer 'bench' = 127.0.0.1, vendor 'v1'
for "44" at a port nobody answers on) gets, per scenario, an INVITE to a "44..." number of
25,000 or 60,000 digits (in the Request-URI only, so the message stays under 64 KiB) over UDP
or over a new TCP connection, or ten 60,000-digit ones in a row over UDP. OPTIONS probes go
out over UDP one after another from that moment until the switch answers the (last) long
INVITE; the worst probe round trip is the sample: everything runs on the switch's one event
loop, so a probe waits for whatever the long INVITE costs. Each scenario is repeated and the
median and worst sample printed, after an idle baseline (single probes).

    .venv/bin/python bench/switch_hostile.py                 # 5 repetitions, 3 for ten-in-a-row
    .venv/bin/python bench/switch_hostile.py --reps 10 --idle 200

Target (issue 8): an OPTIONS is answered within a few milliseconds after a 60,000-digit INVITE.
"""

from __future__ import annotations

import argparse
import json
import select
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from switch_common import SNAPSHOT_FORMAT, SNAPSHOT_VERSION, SwitchProcess, free_port, machine

#: How long to wait for any one OPTIONS answer before calling the switch stalled for good.
PROBE_TIMEOUT = 120.0


@dataclass
class Bench:
    """A temporary switch config with a UDP and a TCP listener."""

    root: Path

    @classmethod
    def create(cls) -> Bench:
        root = Path(tempfile.mkdtemp(prefix="ratelab-bench-hostile-"))
        (root / "routing.json").write_text(json.dumps({
            "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "bench",
            "customers": {"bench": {"44": "0.0300"}}, "vendors": {"v1": {"44": "0.0100"}}}))
        (root / "switch.toml").write_text(
            '[switch]\nid = "bench"\nsip_listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
            f'spool_dir = "{root}/spool"\nrouting_snapshot = "{root}/routing.json"\n'
            "shutdown_grace = 2\n\n[sip]\ninvite_timeout = 2\n\n"
            '[[mapping_gateway]]\nname = "bench"\naddresses = ["127.0.0.1"]\n'
            "cps_limit = 100000\nmax_concurrent = 1000000\n\n"
            f'[[routing_gateway]]\nname = "v1"\naddress = "127.0.0.1:{free_port()}"\n'
            'prefixes = ["44"]\n')
        return cls(root)

    def process(self) -> SwitchProcess:
        return SwitchProcess(self.root / "switch.toml", log_level="WARNING")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def sip_request(method: str, uri_user: str, host: str, port: int, call_id: str, *,
                transport: str = "UDP", local_port: int = 5099) -> bytes:
    """A well-formed request from 127.0.0.1; the To user stays short whatever ``uri_user`` is."""
    body = b""
    headers = (f"{method} sip:{uri_user}@{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK{call_id}\r\n"
               f"From: <sip:bench@127.0.0.1>;tag=f{call_id}\r\n"
               f"To: <sip:447700900123@{host}>\r\nCall-ID: {call_id}\r\n"
               f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
               f"Contact: <sip:bench@127.0.0.1:{local_port}>\r\n"
               f"Content-Length: {len(body)}\r\n\r\n")
    return headers.encode() + body


class Prober:
    """OPTIONS over UDP from one socket; ``rtt()`` times one round trip in milliseconds."""

    def __init__(self, switch: tuple[str, int]) -> None:
        self.switch = switch
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.n = 0

    def rtt(self) -> float:
        self.n += 1
        call_id = f"probe-{self.n}-{time.monotonic_ns()}"
        data = sip_request("OPTIONS", "ping", *self.switch, call_id, local_port=self.port)
        started = time.perf_counter()
        self.sock.sendto(data, self.switch)
        deadline = time.monotonic() + PROBE_TIMEOUT
        while True:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                answer = self.sock.recv(65535)
            except TimeoutError:
                sys.exit(f"no answer to an OPTIONS within {PROBE_TIMEOUT:g} s")
            if f"Call-ID: {call_id}\r\n".encode() in answer:
                return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.sock.close()


class LongSender:
    """Long INVITEs over UDP (one socket) or TCP (a new connection each, kept open).

    ``answered()`` says, without blocking, whether the switch has sent anything back for the
    last INVITE sent: it has then finished handling it (its 100 Trying goes out only after
    routing, like any answer).
    """

    def __init__(self, udp: tuple[str, int], tcp: tuple[str, int]) -> None:
        self.udp, self.tcp = udp, tcp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.conns: list[socket.socket] = []
        self.n = 0
        self._last: tuple[str, socket.socket | None] = ("", None)
        self._seen: set[str] = set()

    def send(self, digits: int, transport: str) -> None:
        self.n += 1
        number = "44" + "0" * (digits - 2)
        call_id = f"long-{self.n}"
        if transport == "udp":
            self.sock.sendto(sip_request("INVITE", number, *self.udp, call_id,
                                         local_port=self.sock.getsockname()[1]), self.udp)
            self._last = (call_id, None)
            return
        conn = socket.create_connection(self.tcp, timeout=10)
        conn.sendall(sip_request("INVITE", number, *self.tcp, call_id, transport="TCP",
                                 local_port=conn.getsockname()[1]))
        self.conns.append(conn)
        self._last = (call_id, conn)

    def answered(self) -> bool:
        call_id, conn = self._last
        if conn is not None:   # any byte back, or the switch closing the connection
            return bool(select.select([conn], [], [], 0)[0])
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                break
            for line in data.split(b"\r\n"):
                if line.startswith(b"Call-ID: "):
                    self._seen.add(line[9:].decode(errors="replace"))
        return call_id in self._seen

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


def worst_rtt_while_handled(prober: Prober, sender: LongSender,
                            limit: float = 10.0) -> tuple[float, bool]:
    """The worst OPTIONS round trip from the moment the long INVITE(s) went out until the
    switch answered the last one, and whether it did (probing stops after ``limit`` seconds
    once the probes come back: a switch that drops the INVITE silently never answers it)."""
    worst = 0.0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        worst = max(worst, prober.rtt())
        if sender.answered():
            return worst, True
    return worst, False


def measure(reps: int, reps_burst: int, idle: int) -> list[tuple[str, list[float]]]:
    bench = Bench.create()
    rows: list[tuple[str, list[float]]] = []
    try:
        with bench.process() as switch:
            udp = next((h, p) for t, h, p in switch.addresses if t == "udp")
            tcp = next((h, p) for t, h, p in switch.addresses if t == "tcp")
            prober, sender = Prober(udp), LongSender(udp, tcp)
            try:
                rows.append(("nothing (idle; single probes)", [prober.rtt() for _ in range(idle)]))
                scenarios = [(f"one {d:,}-digit INVITE over {t.upper()}", [(d, t)], reps)
                             for t in ("udp", "tcp") for d in (25_000, 60_000)]
                scenarios.append(("ten 60,000-digit INVITEs in a row over UDP",
                                  [(60_000, "udp")] * 10, reps_burst))
                for label, invites, times in scenarios:
                    samples, silent = [], 0
                    for _ in range(times):
                        for digits, transport in invites:
                            sender.send(digits, transport)
                        worst, answered = worst_rtt_while_handled(prober, sender)
                        samples.append(worst)
                        silent += not answered
                    rows.append((label, samples))
                    note = f" ({silent} never answered within 10 s)" if silent else ""
                    print(f"  {label}: {', '.join(f'{s:.1f}' for s in samples)} ms{note}",
                          flush=True)
            finally:
                prober.close()
                sender.close()
    finally:
        bench.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each scenario")
    parser.add_argument("--reps-burst", type=int, default=3,
                        help="repetitions of the ten-in-a-row scenario")
    parser.add_argument("--idle", type=int, default=50, help="idle probes for the baseline")
    args = parser.parse_args()
    print(f"switch_hostile: OPTIONS round trips over UDP, {machine()}")
    rows = measure(args.reps, args.reps_burst, args.idle)
    print(f"\n| {'worst OPTIONS round trip while the switch handles':52s} | reps |"
          " median ms |   max ms |")
    print(f"|{'-' * 54}|------|-----------|----------|")
    for label, samples in rows:
        print(f"| {label:52s} | {len(samples):4d} | {statistics.median(samples):9.2f} |"
              f" {max(samples):8.2f} |")


if __name__ == "__main__":
    main()
