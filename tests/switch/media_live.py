"""Plumbing of the end-to-end media tests: configs with [media] and encryption, the relays' ng
address, UDP sockets for RTP, what SIPp logged, two switches in tandem, one call with media.

Not a test module; import as ``from tests.switch.media_live import ...``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ratelab import SwitchProcess
from switch.media import NgClient
from tests.switch.live import LiveSwitch, target, wait_until
from tests.switch.media_peers import (
    pcap_records,
    udp_payload_of_frame,
)
from tests.switch.sipp_runner import SippResult, SippUas, free_port, run_uac

NUMBER = "447700900123"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # Debian sip-tester: 236 x 240-byte PCMA
PCAP_PACKETS = 20  # played at the capture's pace (30 ms apart): 0.6 s
KEY16 = "0123456789abcdef"
RECEIVE = 5.0  # how long a socket waits for a packet that must come (a bound, not a timing check)



# --- plumbing -------------------------------------------------------------------------------


def media_table(port_min: int, **keys: object) -> str:
    """A ``[media]`` table: a private port range of 100 (RTP/RTCP pairs) plus ``keys``."""
    lines = [f"port_min = {port_min}", f"port_max = {port_min + 99}"]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
    return "[media]\n" + "\n".join(lines) + "\n"


def encryption(mode: int, key: str) -> str:
    return f'rtp_encryption = {mode}\nrtp_key = "{key}"\n' if mode else ""


def routing_to(name: str, address: str, extra: str = "") -> str:
    return (f'[[routing_gateway]]\nname = "{name}"\naddress = "{address}"\n'
            f'prefixes = ["44"]\n{extra}')


def customer(name: str, ip: str, extra: str = "") -> str:
    return (f'[[mapping_gateway]]\nname = "{name}"\naddresses = ["{ip}"]\n'
            f"cps_limit = 1000\nmax_concurrent = 1000\n{extra}")


def ng_address(switch: SwitchProcess) -> tuple[str, int]:
    """The local relay worker's ng address, from the switch's ``media: 1 relay(s) H:P`` line."""
    found = re.search(r"media: 1 relay\(s\) (\S+):(\d+)", switch.log_text())
    assert found, f"no media line in the switch log:\n{switch.log_text()[-3000:]}"
    return found.group(1), int(found.group(2))


def ng(address: tuple[str, int], call: Callable[[NgClient], Any]) -> Any:
    """Run one NgClient request (``call(client)`` returns the awaitable) and return its reply."""
    async def run() -> Any:
        async with NgClient(address, timeout=2.0) as client:
            return await call(client)
    return asyncio.run(run())


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(RECEIVE)
    return sock


def receive(sock: socket.socket, count: int, quiet: float = 0.3) -> list[tuple[bytes, Any]]:
    """``count`` datagrams (each within RECEIVE s), then whatever else comes within ``quiet`` s."""
    got = []
    sock.settimeout(RECEIVE)
    try:
        while len(got) < count:
            got.append(sock.recvfrom(65535))
    except TimeoutError:
        return got
    sock.settimeout(quiet)
    try:
        while True:
            got.append(sock.recvfrom(65535))
    except TimeoutError:
        return got


def rtp(seq: int, payload: bytes, ssrc: int = 0x5EED_0001) -> bytes:
    return struct.pack("!BBHII", 0x80, 8, seq, seq * 160, ssrc) + payload


def logged(workdir: Path, event: str, timeout: float = 10.0) -> list[str]:
    """Wait for a SIPp ``<log message="EVENT ...">`` line in ``workdir``; its words."""
    path = workdir / "logs.log"
    lines: list[str] = []

    def seen() -> bool:
        nonlocal lines
        text = path.read_text(errors="replace") if path.exists() else ""
        lines = [ln.split() for ln in text.splitlines() if ln.startswith(event + " ")]
        return bool(lines)

    assert wait_until(seen, timeout), f"SIPp logged no {event!r} in {path}"
    return lines[0]


def sdp_address(words: list[str]) -> tuple[str, int]:
    """(IP, port) from a logged ``answer IP PORT call=ID`` / ``offer IP PORT call=ID``."""
    return words[1], int(words[2])


def call_id(words: list[str]) -> str:
    return words[3].removeprefix("call=")


@contextmanager
def background(fn: Callable[..., SippResult], *args: Any, **kwargs: Any) -> Iterator[Future]:
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(fn, *args, **kwargs)


def relay_range(port_min: int) -> range:
    return range(port_min, port_min + 100)


@dataclass
class Tandem:
    """Customer SIPp -> switch A (127.0.0.2) -> switch B (127.0.0.3) -> vendor SIPp."""

    a: LiveSwitch
    b: LiveSwitch
    a_ports: int
    b_ports: int


A_PORTS, B_PORTS = 21000, 21200


def tandem(root: Path, uas_port: int, a_leg: tuple[int, str], b_leg: tuple[int, str]) -> Tandem:
    b = LiveSwitch(root / "b", host="127.0.0.3",
                   customers=customer("acme", "127.0.0.2", encryption(*b_leg)),
                   routing=routing_to("v1", f"127.0.0.1:{uas_port}"),
                   extra=media_table(B_PORTS))
    a = LiveSwitch(root / "a", host="127.0.0.2", customers=customer("acme", "127.0.0.1"),
                   extra=media_table(A_PORTS))
    return Tandem(a, b, A_PORTS, B_PORTS)


def original_rtp() -> list[bytes]:
    if not PCAP.exists():
        pytest.fail(f"{PCAP} is missing: it ships with SIPp's Debian package sip-tester "
                    "(apt-get install sip-tester)")
    return [udp_payload_of_frame(f) for f in pcap_records(PCAP.read_bytes())][:PCAP_PACKETS]


def free_media_port() -> int:
    """An even port P with P and P+2 free (SIPp's -mp binds both)."""
    for _ in range(100):
        port = free_port() & ~1
        if 1024 < port < 65000:
            try:
                for p in (port, port + 2):
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.bind(("127.0.0.1", p))
                return port
            except OSError:
                continue
    raise RuntimeError("no free media port pair")


# --- single switch helpers --------------------------------------------------------------------


@dataclass
class OneCall:
    caller: socket.socket
    callee: socket.socket
    to_relay_a: tuple[str, int]  # where the caller sends (the switch's answer SDP)
    to_relay_b: tuple[str, int]  # where the callee sends (the switch's offer SDP)
    call_id: str


@contextmanager
def one_call(tmp_path: Path, live: LiveSwitch, *, duration_ms: int = 2500,
             scenario: str = "uac_media.xml") -> Iterator[tuple[OneCall, Future, SwitchProcess]]:
    """A switch on 127.0.0.1 and a single call through it whose media ends at two sockets."""
    caller, callee = udp_socket(), udp_socket()
    uas = SippUas("uas_media.xml", variables={"mip": "127.0.0.1",
                                               "mport": callee.getsockname()[1]},
                  workdir=tmp_path / "uas")
    live.routing = routing_to("v1", f"127.0.0.1:{uas.port}")
    uac_dir = tmp_path / "uac"
    try:
        with uas, live.process() as switch, background(
                run_uac, scenario, target(switch), calls=1, duration_ms=duration_ms,
                service=NUMBER, variables={"mip": "127.0.0.1", "mport": caller.getsockname()[1]},
                workdir=uac_dir, timeout=30) as uac:
            answer = logged(uac_dir, "answer")
            offer = logged(uas.workdir, "offer")
            yield (OneCall(caller, callee, sdp_address(answer), sdp_address(offer),
                           call_id(answer)), uac, switch)
            uac.result(timeout=45)
    finally:
        caller.close()
        callee.close()
