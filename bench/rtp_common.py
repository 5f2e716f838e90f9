"""The load side of bench/rtp.py: RTP streams, their generator and receiver (pinned to core 1).

A step's streams (:class:`Stream`, :func:`make_streams`, :func:`direct_streams`) are sent by
:func:`generate` and drained, decrypted and timed by :func:`receive`, two forked processes that
report through a queue; :class:`Result` holds a step's figures and whether it was held. The
packet format, the timing and the statistics are described in bench/rtp.py's docstring. Not a
benchmark itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.media.crypto import PayloadCipher  # noqa: E402

PAYLOAD = 160
PACKET = 12 + PAYLOAD
RATE = 50  # packets/s per stream (20 ms)
STAMP = struct.Struct("!qI")  # send time (ns, CLOCK_REALTIME) and stream number, payload start
FILLER = bytes(range(PAYLOAD - STAMP.size))
KEYS = {1: b"an obfuscation key", 2: b"an rc4 key of 22 bytes", 3: bytes(range(16))}
RELAY_CPU, LOAD_CPU = 0, 1
P99_LIMIT_US = 1000.0  # issue 11's latency bound for a step to count as held
MAX_LAG_NS = 2_000_000  # the generator skips packets more than 2 ms overdue
GRACE = 0.5  # s the receiver keeps draining after the generator's last packet
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


@dataclass
class Stream:
    """One direction of one call: sent from socket ``from_b`` (callee) or A (caller) to ``to``."""

    number: int
    to: tuple[str, int]
    from_b: bool
    encrypt_on_send: bool  # the generator sends to an encrypting leg
    decrypt_on_receive: bool  # the receiver gets it from an encrypting leg


@dataclass
class Result:
    target: str
    streams: int
    offered: float = 0.0
    delivered: float = 0.0
    sent: int = 0
    received: int = 0
    corrupt: int = 0
    p50: float = 0.0
    p99: float = 0.0
    p99s: float = 0.0  # median of the per-second p99s
    cpu: float | None = None  # fraction of one core
    lag_ms: float = 0.0

    @property
    def loss(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0

    @property
    def generator_short(self) -> bool:
        """The generator sent under 99 % of the nominal rate (core 1 ran out, not the relay)."""
        return self.offered < 0.99 * RATE * self.streams

    @property
    def held(self) -> bool:
        """Offered in full, relayed with 0 loss, intact, and p99 < 1 ms."""
        return self.held_per_second and self.p99 < P99_LIMIT_US

    @property
    def held_per_second(self) -> bool:
        """As ``held``, but with the median of the per-second p99s < 1 ms."""
        return (not self.generator_short and self.sent > 0 and self.received == self.sent
                and self.corrupt == 0 and self.p99s < P99_LIMIT_US)


# --- the processes on core 1 ---------------------------------------------------------------------


# Nice values, from --nice and --load-nice before any process starts: the relay gets priority
# over other work on its core. The generator and receiver stay at 0 by default: on loopback the
# kernel may hand packet delivery to ksoftirqd (nice 0), which they must not starve. (An early
# version with them at -10 saw p99s of ~100 ms; ksoftirqd's CPU time did not grow, so that was
# not shown to be the cause. docs/performance.md's runs used -5.)
NICE = {RELAY_CPU: -10, LOAD_CPU: 0}


def pin(cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})
    with contextlib.suppress(OSError):  # negative only as root; otherwise left as it is
        os.setpriority(os.PRIO_PROCESS, 0, NICE[cpu])


def _timer_slack(ns: int) -> None:
    """Make short sleeps short (the default 50 us slack would make every pause 50 us late)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, ns, 0, 0, 0)  # PR_SET_TIMERSLACK


def generate(socks: tuple[socket.socket, socket.socket], streams: list[Stream], mode: int,
             ssrc_base: int, start_ns: int, window: tuple[int, int], end_ns: int,
             out: Any) -> None:
    """Send packet k of the step at start + k / (50 N) s, stream k mod N, until ``end_ns``."""
    pin(LOAD_CPU)
    _timer_slack(1000)
    n = len(streams)
    interval = 1e9 / (RATE * n)
    total = int((end_ns - start_ns) / interval)
    plan = []
    for stream in streams:
        cipher = PayloadCipher(mode, KEYS[mode]) if stream.encrypt_on_send else None
        plan.append((socks[1] if stream.from_b else socks[0], stream.to, ssrc_base + stream.number,
                     stream.number, None if cipher is None else cipher.encrypt))
    buf = bytearray(PACKET)
    buf[12 + STAMP.size:] = FILLER
    pack_header = struct.Struct("!BBHII").pack_into
    pack_stamp = STAMP.pack_into
    now_ns = time.time_ns
    sleep = time.sleep
    sent_in_window = 0
    worst_lag = 0.0
    begin, finish = window
    k = 0
    while now_ns() < start_ns:
        sleep(0.0005)
    while k < total:
        now = now_ns()
        due = min(total, int((now - start_ns) / interval) + 1)
        if due <= k:
            sleep(max(0.0, (start_ns + k * interval - now) / 1e9))
            continue
        lag = now - (start_ns + k * interval)
        if lag > worst_lag and begin <= now < finish:
            worst_lag = lag
        if lag > MAX_LAG_NS:
            # Descheduled: skip what is overdue rather than send it in one burst (phones do not
            # catch up either); the step then shows "generator short".
            k = due - 1
        while k < due:
            sock, to, ssrc, number, encrypt = plan[k % n]
            seq = k // n
            pack_header(buf, 0, 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc)
            stamp = now_ns()
            pack_stamp(buf, 12, stamp, number)
            try:
                if encrypt is None:
                    sock.sendto(buf, to)
                else:
                    sock.sendto(encrypt(bytes(buf)), to)
            except BlockingIOError:
                pass  # counted as sent (and so lost): the generator's own socket was full
            if begin <= stamp < finish:
                sent_in_window += 1
            k += 1
    out.put({"sent": sent_in_window, "lag_ms": worst_lag / 1e6, "total": k})


def receive(socks: tuple[socket.socket, socket.socket], streams: list[Stream], mode: int,
            ssrc_base: int, window: tuple[int, int], end_ns: int, out: Any) -> None:
    """Drain both sockets until ``end_ns``; count, decrypt where needed, take latencies."""
    pin(LOAD_CPU)
    # One cipher per stream (a PayloadCipher keeps the state of 8 SSRCs), keyed by SSRC.
    ciphers = {ssrc_base + s.number: PayloadCipher(mode, KEYS[mode]).decrypt
               for s in streams if s.decrypt_on_receive}
    unpack_ssrc = struct.Struct("!I").unpack_from
    begin, finish = window
    # Latencies by the second of the measured window they were sent in.
    seconds_of: list[list[int]] = [[] for _ in range(-(-(finish - begin) // 1_000_000_000))]
    received = corrupt = 0
    unpack_stamp = STAMP.unpack_from
    unpack_ts = struct.Struct("qq").unpack
    ancsize = socket.CMSG_SPACE(16)
    filler_at = 12 + STAMP.size
    recvmsgs = [sock.recvmsg for sock in socks]
    while time.time_ns() < end_ns:
        # Drain, then sleep: a wake-up per packet would cost core 1 more than the packets do.
        # The latency is the kernel's arrival time, so waiting here does not add to it.
        time.sleep(0.001)
        for recvmsg in recvmsgs:
            while True:
                try:
                    data, anc, _, _ = recvmsg(2048, ancsize)
                except BlockingIOError:
                    break
                if len(data) != PACKET:
                    corrupt += 1
                    continue
                if ciphers:
                    decrypt = ciphers.get(unpack_ssrc(data, 8)[0])
                    if decrypt is not None:
                        data = decrypt(data)
                stamp = unpack_stamp(data, 12)[0]
                if not begin <= stamp < finish:
                    continue
                received += 1
                if data[filler_at:] != FILLER:
                    corrupt += 1
                if anc:
                    seconds, nanos = unpack_ts(anc[0][2][:16])
                    seconds_of[(stamp - begin) // 1_000_000_000].append(
                        seconds * 1_000_000_000 + nanos - stamp)
    latencies = sorted(x for part in seconds_of for x in part)
    count = len(latencies)
    p50 = latencies[count // 2] / 1e3 if count else 0.0
    p99 = latencies[min(count - 1, int(count * 0.99))] / 1e3 if count else 0.0
    # The median over the seconds of each second's p99: other work on this shared machine
    # stalls a core for tens of ms now and then, which the overall p99 shows and this does not.
    per_second = sorted(sorted(part)[int(len(part) * 0.99)] for part in seconds_of if part)
    p99s = per_second[len(per_second) // 2] / 1e3 if per_second else 0.0
    out.put({"received": received, "corrupt": corrupt, "p50": p50, "p99": p99, "p99s": p99s})


def make_streams(routes: list[tuple[tuple[str, int], tuple[str, int]]], count: int,
                 mode: int) -> list[Stream]:
    """Stream 2c: call c's caller to its callee; stream 2c+1 the other way."""
    streams = []
    for number in range(count):
        to_relay_from_caller, to_relay_from_callee = routes[number // 2]
        if number % 2 == 0:
            streams.append(Stream(number, to_relay_from_caller, False, False, mode != 0))
        else:
            streams.append(Stream(number, to_relay_from_callee, True, mode != 0, False))
    return streams


def direct_streams(socks: tuple[socket.socket, socket.socket], count: int) -> list[Stream]:
    a, b = socks[0].getsockname(), socks[1].getsockname()
    return [Stream(n, b if n % 2 == 0 else a, n % 2 == 1, False, False) for n in range(count)]
