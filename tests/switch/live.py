"""A real switch process for end-to-end tests: config and snapshot files, free ports, spool.

Not a test module; import as ``from tests.switch.live import ...``. Every address is on
127.0.0.1 unless ``host`` says otherwise (tests of two switches give each its own 127.x).
Vendors are given free UDP ports chosen up front (the peers, SIPp or the load generator, bind
them); the switch itself binds port 0 and reports its ports when ready.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ratelab import SwitchProcess
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION

SNAPSHOT = {
    "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "2026-11-26T00:00:00Z",
    "customers": {"acme": {"44": "0.0300", "1": "0.0100"},
                  "tcpco": {"44": "0.0300"}, "portco": {"44": "0.0300"},
                  "authco": {"44": "0.0300"}},
    "vendors": {"v1": {"44": "0.0100", "1": "0.0050"}, "v2": {"44": "0.0150"},
                "dear": {"44": "0.0295"}},
}


@dataclass
class LiveSwitch:
    """Files for one switch under ``root``; ``start()`` gives a running SwitchProcess."""

    root: Path
    vendors: dict[str, int] = field(default_factory=dict)     # name -> UDP port
    customers: str = ""                                       # extra [[mapping_gateway]] TOML
    sip: str = "invite_timeout = 2\ncall_progress_timeout = 10"
    routing: str = ""                                         # [[routing_gateway]] TOML
    snapshot: dict = field(default_factory=lambda: json.loads(json.dumps(SNAPSHOT)))
    grace: float = 2.0
    switch_extra: str = ""                                    # more [switch] keys
    host: str = "127.0.0.1"                                   # the listeners' IP
    extra: str = ""                                           # more tables, e.g. [media]

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def config_path(self) -> Path:
        return self.root / "switch.toml"

    @property
    def snapshot_path(self) -> Path:
        return self.root / "routing.json"

    def write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshot_path.write_text(json.dumps(self.snapshot))
        customers = self.customers or (
            '[[mapping_gateway]]\nname = "acme"\naddresses = ["127.0.0.1"]\n'
            'cps_limit = 1000\nmax_concurrent = 1000\n')
        self.config_path.write_text(
            f'[switch]\nid = "sw1"\nsip_listen = ["udp:{self.host}:0", "tcp:{self.host}:0"]\n'
            f'spool_dir = "{self.spool}"\nrouting_snapshot = "{self.snapshot_path}"\n'
            f"shutdown_grace = {self.grace}\n{self.switch_extra}\n"
            f"[sip]\n{self.sip}\n\n{customers}\n"
            f"{self.routing}\n{self.extra}\n")
        return self.config_path

    def process(self) -> SwitchProcess:
        self.write()
        return SwitchProcess(self.config_path, log_level="DEBUG")

    def cdrs(self) -> list[dict]:
        """Every CDR line in the spool, in file order."""
        records = []
        for path in sorted(self.spool.glob("cdr-*.jsonl")):
            records += [json.loads(line) for line in path.read_text().splitlines() if line]
        return records


def vendor(name: str, port: int, prefixes: str = '"44", "1"', extra: str = "") -> str:
    """A [[routing_gateway]] table."""
    return (f'[[routing_gateway]]\nname = "{name}"\naddress = "127.0.0.1:{port}"\n'
            f"prefixes = [{prefixes}]\n{extra}\n")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` every 50 ms; True once it holds, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def invite_status(host: str, port: int, number: str, call_id: str) -> int:
    """Send one INVITE over UDP from a fresh port; return the first final status that comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        me = sock.getsockname()[1]
        sock.settimeout(5)
        sock.sendto((f"INVITE sip:{number}@{host}:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{call_id}\r\n"
                     f"From: <sip:1555@127.0.0.1>;tag=f{call_id}\r\n"
                     f"To: <sip:{number}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                     f"Contact: <sip:c@127.0.0.1:{me}>\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), (host, port))
        while True:
            status = int(sock.recv(65535).split(b" ", 2)[1])
            if status >= 200:
                return status


def target(switch: SwitchProcess, transport: str = "udp") -> str:
    """``host:port`` of the running switch's listener for ``transport`` (what SIPp dials)."""
    host, port = next((h, p) for t, h, p in switch.addresses if t == transport)
    return f"{host}:{port}"
