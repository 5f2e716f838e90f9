"""Plumbing of the end-to-end guard and admin API tests (issue 12): addresses, configs,
SIPVicious runners, raw SIP probes from a chosen 127.x source, the switch's counters, and HTTP
requests to the admin API from a bound source address.

Not a test module; import as ``from tests.switch.guard_live import ...``.

The switch listens on 127.0.0.10, never on an attacker's address: it trusts its own listening
addresses. SIPVicious' svwar and svcrack 0.3.x bind "any" whatever ``-b`` says, so their
datagrams leave from the kernel's choice for 127.0.0.10, 127.0.0.1: an untrusted attacker
here (no gateway, vendor or SIPp peer uses 127.0.0.1). svmap honours ``-b``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ratelab import SwitchProcess
from tests.switch.sipp_runner import SippUas, free_port

SWITCH_IP = "127.0.0.10"
TRUSTED = "127.0.0.2"      # [guard] trusted, and the IP-authenticated customer "acme"
ATTACKER = "127.0.0.3"     # svmap's source (it honours -b)
SCANNER = "127.0.0.4"      # sends one INVITE with a scanner User-Agent
BYSTANDER = "127.0.0.5"    # untrusted, well behaved
REGISTERED = "127.0.0.6"   # the password gateway gw6 registers from here
UNREGISTERED = "127.0.0.7"
VENDOR = "127.0.0.8"       # the SIPp UAS the calls are routed to
SVTOOLS_SOURCE = "127.0.0.1"  # where svwar / svcrack really send from (they ignore -b)

PASSWORD = "s3cr3t-7"      # gw7's: at line 300 of the svcrack dictionary
GW6 = ("gw6", "pw6-registered")
NUMBER = "447700900123"

INSTALL_HINT = ("SIPVicious is not installed (no {name} next to {python} or on PATH). It is in "
                "the dev extra: `.venv/bin/pip install -e '.[dev]'` (or `pip install sipvicious`)")


def tool(name: str) -> str:
    """A SIPVicious console script; the test fails (never skips) without it."""
    here = str(Path(sys.executable).parent)
    found = shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(INSTALL_HINT.format(name=name, python=sys.executable))
    return found


# --- configuration -------------------------------------------------------------------------------

def customers(register_retry: int = 1000, registrar: str = "") -> str:
    """acme (IP-authenticated at TRUSTED), gw6 and gw7 (password gateways) and the registrar.

    ``register_retry`` at its maximum by default: the registrar's own suspend must not be what
    stops svcrack, the guard must."""
    return (f'[[mapping_gateway]]\nname = "acme"\naddresses = ["{TRUSTED}"]\n'
            "cps_limit = 1000\nmax_concurrent = 1000\n\n"
            f'[[mapping_gateway]]\nname = "{GW6[0]}"\nauth = "password"\n'
            f'password = "{GW6[1]}"\n\n'
            f'[[mapping_gateway]]\nname = "gw7"\nauth = "password"\npassword = "{PASSWORD}"\n\n'
            # svcrack and SIPp answer the first challenge only, and only in MD5
            '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n'
            f"register_retry = {register_retry}\n{registrar}")


def vendor_table(port: int) -> str:
    return (f'[[routing_gateway]]\nname = "v1"\naddress = "{VENDOR}:{port}"\n'
            'prefixes = ["44", "1"]\n')


def guard_table(enabled: bool = True, extra: str = "") -> str:
    return (f'[guard]\nenabled = {"true" if enabled else "false"}\n'
            f'trusted = ["{TRUSTED}/32"]\n{extra}')


def vendor_uas(workdir: Path, scenario: str = "uas_answer.xml") -> SippUas:
    """A SIPp UAS on VENDOR (not 127.0.0.1, which is the svwar/svcrack attacker)."""
    uas = SippUas(scenario, port=free_port(VENDOR), workdir=workdir)
    uas.host = VENDOR
    return uas


def add_snapshot_customers(snapshot: dict[str, Any]) -> None:
    for name in ("gw6", "gw7"):
        snapshot["customers"][name] = {"44": "0.0300", "1": "0.0100"}


# --- the switch's counters -----------------------------------------------------------------------

def counters(log: str) -> dict[str, int]:
    """The switch's ``counters:`` log line (written when it stops), as a dict."""
    lines = [line for line in log.splitlines() if " counters: " in line]
    assert lines, log[-2000:]
    pairs = (item.split("=", 1) for item in lines[-1].split(" counters: ", 1)[1].split())
    return {key: int(value) for key, value in pairs}


# --- raw SIP from a chosen source ----------------------------------------------------------------

def request(method: str, source: str, port: int, where: tuple[str, int], call_id: str, *,
            user_agent: str = "ratelab-test", number: str = NUMBER) -> bytes:
    host, sport = where
    uri = f"sip:{host}:{sport}" if method == "REGISTER" else f"sip:{number}@{host}:{sport}"
    return (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:1555@{source}>;tag=f{call_id[:8]}\r\nTo: <sip:{number}@{host}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:c@{source}:{port}>\r\nMax-Forwards: 70\r\n"
            f"User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n").encode()


def burst(method: str, source: str, where: tuple[str, int], count: int, *,
          wait: float = 1.0, user_agent: str = "ratelab-test") -> dict[str, int]:
    """Send ``count`` requests from one socket bound to ``source`` as fast as they go, then
    collect answers until every request has a final one or ``wait`` s pass with none coming.

    Returns {Call-ID: final status} for the requests that got a final answer (a non-2xx final
    answer to an INVITE is ACKed, so the switch stops retransmitting it)."""
    finals: dict[str, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        port = sock.getsockname()[1]
        ids = [uuid.uuid4().hex for _ in range(count)]
        for call_id in ids:
            sock.sendto(request(method, source, port, where, call_id, user_agent=user_agent),
                        where)
        deadline = time.monotonic() + wait
        while len(finals) < count and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535).decode(errors="replace")
            except OSError:
                break
            found = re.search(r"^Call-ID: (\S+)\r$", data, re.M | re.I)
            status = int(data.split(" ", 2)[1]) if data.startswith("SIP/2.0 ") else 0
            if found is None or status < 200:
                continue
            call_id = found.group(1)
            if call_id in finals:
                continue
            finals[call_id] = status
            deadline = time.monotonic() + wait
            if method == "INVITE":
                to = next(line for line in data.split("\r\n") if line.lower().startswith("to:"))
                head = request("INVITE", source, port, where, call_id).decode().split("\r\n")
                ack = [head[0].replace("INVITE", "ACK", 1), head[1], head[2], to,
                       f"Call-ID: {call_id}", "CSeq: 1 ACK", "Max-Forwards: 70",
                       "Content-Length: 0", "", ""]
                sock.sendto("\r\n".join(ack).encode(), where)
    return finals


def one(method: str, source: str, where: tuple[str, int], *, wait: float = 1.0,
        user_agent: str = "ratelab-test") -> int | None:
    """The final status of one request from ``source``; None when nothing came back."""
    got = burst(method, source, where, 1, wait=wait, user_agent=user_agent)
    return next(iter(got.values()), None)


def tcp_exchange(source: str, where: tuple[str, int], data: bytes, *,
                 wait: float = 1.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new TCP connection from ``source``; what came back within ``wait`` s
    (up to the first complete answer) and whether the switch closed the connection."""
    received = b""
    with socket.create_connection(where, timeout=wait, source_address=(source, 0)) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
            if b"\r\n\r\n" in received:
                return received, False
    return received, False


def tcp_request(method: str, source: str, where: tuple[str, int], *,
                user_agent: str = "ratelab-test") -> bytes:
    text = request(method, source, 5060, where, uuid.uuid4().hex,
                   user_agent=user_agent).decode()
    return text.replace("SIP/2.0/UDP", "SIP/2.0/TCP", 1).encode()


# --- SIPVicious ----------------------------------------------------------------------------------

def svmap(source: str, where: tuple[str, int]) -> subprocess.CompletedProcess[str]:
    """svmap (OPTIONS, User-Agent friendly-scanner) from ``source``; finds go to stdout."""
    host, port = where
    cmd = [tool("sipvicious_svmap"), "-b", source, "-x", source, "-P", str(free_port(source)),
           "-p", str(port), "-t", "0.1", "-v", host]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=30)


def svmap_found(run: subprocess.CompletedProcess[str], where: tuple[str, int]) -> bool:
    return f"{where[0]}:{where[1]}" in run.stdout


def svwar(where: tuple[str, int], dictionary: Path, *args: str
          ) -> subprocess.CompletedProcess[str]:
    host, port = where
    cmd = [tool("sipvicious_svwar"), "-d", str(dictionary), "-b", SVTOOLS_SOURCE,
           "-x", SVTOOLS_SOURCE, "-P", str(free_port()), "--maximumtime", "2", "-vv", *args,
           f"udp://{host}:{port}"]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=60)


def svwar_found(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The extensions svwar reports ("extension 'X' exists" / "probably exists")."""
    return re.findall(r"extension '([^']*)' (?:exists|probably exists)", run.stderr)


@dataclass
class Crack:
    """One svcrack run: its exit status, stdout (the result table) and stderr log lines."""

    returncode: int | None
    stdout: str
    log: list[str]

    @property
    def tried(self) -> list[str]:
        return [line.split(":trying ", 1)[1] for line in self.log if ":trying " in line]

    @property
    def answers(self) -> list[int]:
        return [int(m.group(1)) for line in self.log
                if (m := re.search(r"Received response: SIP/2\.0 (\d{3})", line))]

    def text(self) -> str:
        return (f"exit {self.returncode}\nstdout:\n{self.stdout}\nlog (tail):\n"
                + "\n".join(self.log[-40:]))


def svcrack(where: tuple[str, int], user: str, dictionary: Path, *,
            timeout: float = 25.0) -> Crack:
    """svcrack against ``user`` with ``dictionary``; it stops by itself once the switch goes
    silent (``--maximumtime``); killed after ``timeout`` s whatever happens (SIGINT first, on
    which it prints its result like at the end of a scan)."""
    host, port = where
    cmd = [tool("sipvicious_svcrack"), "-u", user, "-d", str(dictionary),
           "-b", SVTOOLS_SOURCE, "-x", SVTOOLS_SOURCE, "-P", str(free_port()), "-t", "0.02",
           "--maximumtime", "3", "-vv", f"udp://{host}:{port}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")

    def interrupt() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            kill = threading.Timer(3.0, proc.kill)
            kill.daemon = True
            kill.start()

    watchdog = threading.Timer(timeout, interrupt)
    watchdog.start()
    try:
        assert proc.stderr is not None and proc.stdout is not None
        log = [line.rstrip("\n") for line in proc.stderr]
        stdout = proc.stdout.read()
        returncode = proc.wait(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Crack(returncode, stdout, log)


# --- the admin API -------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def admin_request(admin: tuple[str, int], path: str, *, source: str, method: str = "GET",
         token: str | None = None, timeout: float = 5.0) -> Reply:
    """One HTTP request to the admin API from a client socket bound to ``source``."""
    conn = http.client.HTTPConnection(admin[0], admin[1], timeout=timeout,
                                      source_address=(source, 0))
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


def admin_table(port: int, allow: tuple[str, ...] = (f"{TRUSTED}/32",),
                token_file: Path | None = None) -> str:
    allowed = ", ".join(f'"{cidr}"' for cidr in allow)
    token = f'token_file = "{token_file}"\n' if token_file is not None else ""
    return f'[admin]\nlisten = "{SWITCH_IP}:{port}"\nallow = [{allowed}]\n{token}'


def udp_target(switch: SwitchProcess) -> tuple[str, int]:
    return switch.udp_address
