"""Real calls for the demo: the switch as a subprocess, the load generator as its peers.

The demo's customers and vendors become a switch configuration (customers told apart by their
source port, ``auth = "ip_port"``) and a load plan for ``python -m switch.loadgen``: customers
placing calls at a steady rate, vendors answering, ringing, refusing or staying silent in fixed
proportions. What the traffic shows, on purpose:

* **failover**: tollgate refuses 30% of its calls with 503 and meridian ignores 5% (its
  ``invite_timeout`` expires); those calls go on to the next vendor;
* **a CPS limit**: bluewave_voip offers 12 calls/s against a limit of 8; the rest get 503;
* **the profit limit**: every vendor wants at least 0.00004 per second (0.0024 per minute) of
  margin, which the standard price list does not leave on New York (1212), London (4420) and
  Madrid (3491): those calls of atlas_telecom and bluewave_voip get 503 ``profit_limit``.

The switch and the load generator run as subprocesses and talk through files and SIP; ratelab
imports only the switch's contract and its config writer (DESIGN.md, dependency direction).

>>> [c.name for c in TRAFFIC], sum(c.share for c in TRAFFIC)
(['atlas_telecom', 'bluewave_voip', 'cobalt_mobile'], 1.0)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ratelab.progress import progress
from ratelab.switch_process import SwitchProcess
from switch.config import (
    Listen,
    MappingGateway,
    RoutingGateway,
    SipSettings,
    SwitchConfig,
)
from switch.config_toml import dump_config
from switch.contract import CDR_FILE_GLOB

__all__ = ["TRAFFIC", "VENDOR_BEHAVIOUR", "CallsRun", "carry_calls"]

#: Every vendor's lowest profit per second (the VOS3000 lowest profit rate limit).
PROFIT_LIMIT = "0.00004"


@dataclass(frozen=True)
class CustomerTraffic:
    """One demo customer's calls: its share of the total, rate, CPS limit and numbers."""

    name: str
    share: float
    rate: float
    cps_limit: int
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class VendorBehaviour:
    """One demo vendor's answers (a load-generator mix) and its place in routing."""

    name: str
    mix: str
    priority: int


_EUROPE_AND_AMERICAS = ("447700", "4420", "336", "3491", "4915", "1212", "5255")
_LONG_HAUL = ("9198", "639", "2348")

TRAFFIC: tuple[CustomerTraffic, ...] = (
    CustomerTraffic("atlas_telecom", 0.40, 15, 30, _EUROPE_AND_AMERICAS + _LONG_HAUL),
    CustomerTraffic("bluewave_voip", 0.33, 12, 8, _EUROPE_AND_AMERICAS + _LONG_HAUL),
    CustomerTraffic("cobalt_mobile", 0.27, 10, 30, ("447700", "336", "4915", "1212", "9198",
                                                    "639")),
)

VENDOR_BEHAVIOUR: tuple[VendorBehaviour, ...] = (
    VendorBehaviour("northstar", "answer=0.85,ring=0.08,486=0.04,480=0.03", 1),
    VendorBehaviour("tollgate", "answer=0.62,ring=0.05,503=0.30,486=0.03", 1),
    VendorBehaviour("meridian", "answer=0.85,ring=0.05,silent=0.05,486=0.05", 2),
)

#: Call lengths in seconds and their shares (short, so the demo's calls finish quickly).
DURATIONS = "1:0.35,3:0.4,6:0.25"
COUNTRY_CODES = ("44", "33", "34", "49", "1", "52", "91", "63", "234")


@dataclass(frozen=True)
class CallsRun:
    """What the demo's traffic did."""

    placed: int
    cdrs: int
    seconds: float
    loadgen_summary: str
    switch_exit: int


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def switch_config(spool: Path, snapshot: Path, customer_ports: dict[str, int],
                  vendor_ports: dict[str, int]) -> SwitchConfig:
    """The demo switch's configuration: the demo's customers and vendors on 127.0.0.1.

    >>> config = switch_config(Path("spool"), Path("routing.json"),
    ...                        {t.name: 5000 + k for k, t in enumerate(TRAFFIC)},
    ...                        {v.name: 6000 + k for k, v in enumerate(VENDOR_BEHAVIOUR)})
    >>> [g.addresses for g in config.mapping_gateways][0], config.routing_gateways[1].address
    (('127.0.0.1:5000',), '127.0.0.1:6001')
    """
    return SwitchConfig(
        id="demo", sip_listen=(Listen("udp", "127.0.0.1", 0),), spool_dir=spool,
        routing_snapshot=snapshot, shutdown_grace=10,
        sip=SipSettings(invite_timeout=2, call_progress_timeout=20),
        mapping_gateways=tuple(
            MappingGateway(traffic.name, (f"127.0.0.1:{customer_ports[traffic.name]}",),
                           auth="ip_port", cps_limit=traffic.cps_limit, max_concurrent=500,
                           max_duration=600)
            for traffic in TRAFFIC),
        routing_gateways=tuple(
            RoutingGateway(vendor.name, f"127.0.0.1:{vendor_ports[vendor.name]}",
                           COUNTRY_CODES, priority=vendor.priority,
                           lowest_profit_per_second=PROFIT_LIMIT, huntstop_codes=(486,))
            for vendor in VENDOR_BEHAVIOUR),
    )


def write_switch_config(folder: Path, spool: Path, snapshot: Path,
                        customer_ports: dict[str, int], vendor_ports: dict[str, int]) -> Path:
    """The demo switch's TOML, written by :func:`switch.config_toml.dump_config` (the one writer;
    every key documented in docs/config.md).

    >>> import tempfile
    >>> from switch.config import load_config
    >>> ports = {t.name: 5000 for t in TRAFFIC}, {v.name: 6000 for v in VENDOR_BEHAVIOUR}
    >>> path = write_switch_config(Path(tempfile.mkdtemp()), Path("s"), Path("r.json"), *ports)
    >>> load_config(path) == switch_config(Path("s"), Path("r.json"), *ports)
    True
    """
    path = folder / "switch.toml"
    config = switch_config(spool, snapshot, customer_ports, vendor_ports)
    path.write_text(dump_config(config, comment="Written by the ratelab demo: the demo's "
                                               "customers and vendors on 127.0.0.1."),
                    encoding="utf-8")
    return path


def write_plan(folder: Path, target: tuple[str, int], calls: int,
               customer_ports: dict[str, int], vendor_ports: dict[str, int]) -> Path:
    """The load generator's plan: the vendors answering, the customers calling."""
    lines = ["# Written by the ratelab demo (python -m switch.loadgen plan FILE).",
             "drain_seconds = 1.0", ""]
    for seed, vendor in enumerate(VENDOR_BEHAVIOUR, start=1):
        lines += ["[[vendors]]", f'name = "{vendor.name}"',
                  f"port = {vendor_ports[vendor.name]}", f'mix = "{vendor.mix}"',
                  "ring_seconds = 1.0", f"seed = {seed}", ""]
    for seed, traffic in enumerate(TRAFFIC, start=11):
        numbers = ", ".join(f'"{n}"' for n in traffic.numbers)
        lines += ["[[customers]]", f'name = "{traffic.name}"',
                  f'target = "{target[0]}:{target[1]}"', f"rate = {traffic.rate}",
                  f"calls = {max(1, round(calls * traffic.share))}", f"numbers = [{numbers}]",
                  f'durations = "{DURATIONS}"', f"local_port = {customer_ports[traffic.name]}",
                  f"seed = {seed}", ""]
    path = folder / "plan.toml"
    path.write_text("\n".join(lines))
    return path


def _spool_lines(spool: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in spool.glob(CDR_FILE_GLOB))


def carry_calls(folder: str | Path, spool: str | Path, snapshot: str | Path, calls: int,
                say: Callable[[str], None] = print) -> CallsRun:
    """Start the switch, run the demo traffic through it, stop it; the CDRs land in ``spool``."""
    folder, spool = Path(folder), Path(spool)
    folder.mkdir(parents=True, exist_ok=True)
    spool.mkdir(parents=True, exist_ok=True)
    ports = _free_ports(len(TRAFFIC) + len(VENDOR_BEHAVIOUR))
    customer_ports = {t.name: ports.pop() for t in TRAFFIC}
    vendor_ports = {v.name: ports.pop() for v in VENDOR_BEHAVIOUR}
    config = write_switch_config(folder, spool.resolve(), Path(snapshot).resolve(),
                                 customer_ports, vendor_ports)
    before = _spool_lines(spool)
    began = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with SwitchProcess(config, log_level="WARNING") as switch:
        say(f"    switch running (pid {switch.pid}) on udp:{switch.udp_address[0]}:"
            f"{switch.udp_address[1]}; its log: {switch.log_path}")
        plan = write_plan(folder, switch.udp_address, calls, customer_ports, vendor_ports)
        placed = sum(max(1, round(calls * t.share)) for t in TRAFFIC)
        loadgen = subprocess.Popen([sys.executable, "-m", "switch.loadgen", "plan", str(plan)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=env)
        with progress("Calls", total=placed, unit="CDRs", transient=True) as update:
            while loadgen.poll() is None:
                update(min(placed, _spool_lines(spool) - before), placed)
                time.sleep(0.3)
        output = loadgen.stdout.read() if loadgen.stdout else ""
        if loadgen.returncode != 0:
            raise RuntimeError(f"the load generator failed (exit {loadgen.returncode}):\n"
                               f"{output[-3000:]}")
    return CallsRun(placed, _spool_lines(spool) - before, time.monotonic() - began,
                    output, switch.returncode or 0)
