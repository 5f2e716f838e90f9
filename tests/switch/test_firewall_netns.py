"""The exported kernel rules against the real switch and real SIPVicious, in a namespace of the
test's own (issue 12).

Each test moves into a fresh network namespace (:func:`tests.switch.netns.fresh_netns`: the
kernel frees it, rules included, when the test's processes are gone), starts the switch there on
127.0.0.10:5060, and loads what ``python -m switch firewall`` prints with ``iptables-restore``,
or in the second run ``nft -f``. A trusted gateway sends from 127.0.0.2 (``[guard] trusted``),
the attacker from 127.0.0.3. The switch trusts its own host (its listening address), so it is
not on 127.0.0.1: svwar 0.3.8 binds "any" whatever ``-b`` says, so its datagrams leave from
the kernel's choice for 127.0.0.10, 127.0.0.1, which is an untrusted attacker here too.

The switch runs with its own guard layers off (``[guard] enabled = false``; the rules are exported
from the same config with them on): it answers OPTIONS from anyone (the control shows svmap
finding it), so every missing answer below is the kernel rules' doing. Rate rules other than
``recent`` are set out of reach so that the burst is ``recent``'s to stop.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ratelab import SwitchProcess
from tests.switch.guard_live import PASSWORD, customers, svcrack
from tests.switch.live import LiveSwitch
from tests.switch.netns import fresh_netns, run_in

ROOT = Path(__file__).resolve().parents[2]
SWITCH = ("127.0.0.10", 5060)
TRUSTED = "127.0.0.2"
ATTACKER = "127.0.0.3"
BYSTANDER = "127.0.0.4"
HITS = 20  # [guard] recent_hits, the article's
GUARD = (f'[guard]\ntrusted = ["{TRUSTED}/32"]\ntrust_gateways = false\n'
         f"recent_hits = {HITS}\nrecent_seconds = 60\n"
         # hashlimit and connlimit out of the burst's reach: this test is about recent
         "rate = 100000\nburst = 100000\ndialogs_per_ip = 1000\ndialogs_per_24 = 1000\n"
         "ban_time = 600\n")
CUSTOMER = (f'[[mapping_gateway]]\nname = "acme"\naddresses = ["{TRUSTED}"]\n'
            "cps_limit = 1000\nmax_concurrent = 1000\n")


def _tool(name: str) -> str:
    here = str(Path(sys.executable).parent)
    found = shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(f"{name} is not installed (SIPVicious is in the dev extra; iptables and "
                    "nftables are Debian packages .ci/run installs)")
    return found


@pytest.fixture(autouse=True)
def _root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests need root (network namespaces, iptables, nft)")
    for name in ("ip", "iptables-restore", "nft", "sipvicious_svmap", "sipvicious_svwar"):
        _tool(name)


def _live(root: Path, guard: str = "") -> tuple[LiveSwitch, Path]:
    """The switch on 127.0.0.10:5060 (its own namespace: the port is free) with its own guard
    layers off, and beside it the config the rules are exported from: the same with [guard]
    on (plus ``guard`` keys). So whatever the attacker does not get, the kernel took."""
    live = LiveSwitch(root, customers=CUSTOMER, extra=GUARD + guard)  # [guard] is last
    path = live.write()
    text = path.read_text()
    for transport in ("udp", "tcp"):
        text = text.replace(f'"{transport}:127.0.0.1:0"', f'"{transport}:{SWITCH[0]}:5060"')
    export = root / "export.toml"
    export.write_text(text)
    path.write_text(text + "enabled = false\n")
    return live, export


def _rules(config: Path, fmt: str) -> str:
    cli = subprocess.run([sys.executable, "-m", "switch", "firewall", "--config", str(config),
                          "--format", fmt], capture_output=True, text=True, timeout=30,
                         cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    return cli.stdout


def _svmap(source: str) -> subprocess.CompletedProcess[str]:
    """svmap from ``source`` at the switch; what it found is in stdout."""
    cmd = [_tool("sipvicious_svmap"), "-b", source, "-x", source, "-p", str(SWITCH[1]),
           "-t", "0.1", "-v", SWITCH[0]]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=30)


def _svwar(source: str, dictionary: Path) -> subprocess.CompletedProcess[str]:
    """svwar's OPTIONS scan from ``source`` with the names in ``dictionary``."""
    cmd = [_tool("sipvicious_svwar"), "-d", str(dictionary), "-b", source, "-x", source,
           "-m", "OPTIONS", "--maximumtime", "5", "-vv", f"udp://{SWITCH[0]}:{SWITCH[1]}"]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=30)


def _found(run: subprocess.CompletedProcess[str]) -> bool:
    return f"{SWITCH[0]}:{SWITCH[1]}" in run.stdout


def _request(method: str, source: str, call_id: str, port: int) -> bytes:
    host, sport = SWITCH
    uri = f"sip:{host}:{sport}" if method == "REGISTER" else f"sip:ping@{host}:{sport}"
    return (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:probe@{host}>;tag={call_id[:8]}\r\nTo: <sip:probe@{host}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:probe@{source}:{port}>\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def _answered(method: str, source: str, count: int, wait: float = 0.5) -> list[bool]:
    """Send ``count`` requests from one socket at ``source`` as fast as they go, then collect
    answers for ``wait`` s; which of them got any answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        port = sock.getsockname()[1]
        ids = [uuid.uuid4().hex for _ in range(count)]
        for call_id in ids:
            sock.sendto(_request(method, source, call_id, port), SWITCH)
        seen: set[str] = set()
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535).decode(errors="replace")
            except OSError:
                break
            if m := re.search(r"^Call-ID: (\S+)\r$", data, re.M | re.I):
                seen.add(m.group(1))
    return [call_id in seen for call_id in ids]


def _options_ok(source: str) -> bool:
    return _answered("OPTIONS", source, 1)[0]


def _counter(listing: str, needle: str) -> int:
    """Packets counted by the first rule whose text holds ``needle`` in ``iptables -L -v -x``
    or ``nft list`` output."""
    for line in listing.splitlines():
        if needle in line:
            nft = re.search(r"counter packets (\d+)", line)
            return int(nft.group(1)) if nft else int(line.split()[0])
    raise AssertionError(f"no rule with {needle!r} in:\n{listing}")


@pytest.mark.parametrize("fmt", ["iptables", "nftables"])
def test_exported_rules_stop_svmap_and_a_burst_but_not_the_trusted_gateway(
        tmp_path: Path, fmt: str) -> None:
    live, export = _live(tmp_path / "sw")
    rules = _rules(export, fmt)
    with fresh_netns() as ns, SwitchProcess(live.config_path, log_level="DEBUG") as switch:
        assert switch.udp_address == SWITCH
        # The control: without rules the switch answers the attacker, so svmap finds it.
        control = _svmap(ATTACKER)
        assert _found(control), control.stdout + control.stderr
        assert _options_ok(TRUSTED)

        load = (["iptables-restore", "--noflush"] if fmt == "iptables" else ["nft", "-f", "-"])
        applied = run_in(ns, load, rules)
        assert applied.returncode == 0, applied.stderr

        # svmap from the attacker: its OPTIONS (and, for iptables, its User-Agent) dropped.
        scan = _svmap(ATTACKER)
        assert not _found(scan), scan.stdout + scan.stderr
        assert "found nothing" in scan.stderr, scan.stderr
        # svwar gets no answer to its first probe, so it finds no extension.
        names = tmp_path / "names.txt"
        names.write_text("100\n101\nacme\nsw1\n")
        war = _svwar(ATTACKER, names)
        assert "timed out" in war.stderr and "found nothing" in war.stderr, war.stderr
        assert "exists" not in war.stderr and war.stdout.strip() == "", war.stdout
        # The trusted gateway's OPTIONS still gets its 200.
        assert _options_ok(TRUSTED)

        # A burst of REGISTERs from the attacker: the first HITS answered, then recent bans.
        burst = _answered("REGISTER", ATTACKER, 2 * HITS)
        answered = burst.count(True)
        assert burst[:HITS] == [True] * HITS, burst
        # iptables' recent counts exactly; the nftables token bucket may refill one token
        assert answered == HITS if fmt == "iptables" else HITS <= answered <= HITS + 1, burst
        assert not any(_answered("REGISTER", ATTACKER, 3)), "the ban did not hold"
        # Others are untouched: the trusted gateway, and another untrusted source.
        assert _options_ok(TRUSTED)
        assert all(_answered("REGISTER", BYSTANDER, 3))

        if fmt == "iptables":
            listing = run_in(ns, ["iptables", "-L", "-v", "-n", "-x"]).stdout
            assert _counter(listing, '"OPTIONS sip:"') >= 1, listing
            assert _counter(listing, "recent: UPDATE") >= 1, listing
            banned = Path("/proc/thread-self/net/xt_recent/sip_ban").read_text()
        else:
            listing = run_in(ns, ["nft", "list", "table", "inet", "ratelab_guard"]).stdout
            assert _counter(listing, "OPTIONS sip:") >= 1, listing
            assert _counter(listing, "update @sip_recent4") >= 1, listing
            banned = run_in(ns, ["nft", "list", "set", "inet", "ratelab_guard",
                                 "sip_ban4"]).stdout
        assert ATTACKER in banned and TRUSTED not in banned, banned


def test_user_agent_match_and_rollback(tmp_path: Path) -> None:
    """With OPTIONS allowed from anyone, only the scanner names are left to stop svmap: iptables'
    string match does, nftables cannot express it (so svmap finds the switch; the switch's own
    layer is what covers it there). Each ``--rollback`` output removes its rules again."""
    live, export = _live(tmp_path / "sw", "drop_options_from_untrusted = false\n")
    rules = {fmt: _rules(export, fmt) for fmt in ("iptables", "nftables")}
    rollback = {}
    for fmt in ("iptables", "nftables"):
        cli = subprocess.run([sys.executable, "-m", "switch", "firewall", "--format", fmt,
                              "--rollback"], capture_output=True, text=True, timeout=30,
                             cwd=ROOT)
        assert cli.returncode == 0, cli.stderr
        rollback[fmt] = cli.stdout
    assert "OPTIONS sip:" not in rules["iptables"] and "friendly-scanner" in rules["iptables"]
    with fresh_netns() as ns, SwitchProcess(live.config_path, log_level="DEBUG"):
        assert run_in(ns, ["nft", "-f", "-"], rules["nftables"]).returncode == 0
        scan = _svmap(ATTACKER)
        assert _found(scan), scan.stdout + scan.stderr  # the documented gap
        assert run_in(ns, ["nft", "-f", "-"], rollback["nftables"]).returncode == 0
        assert "ratelab_guard" not in run_in(ns, ["nft", "list", "tables"]).stdout

        assert run_in(ns, ["iptables-restore", "--noflush"], rules["iptables"]).returncode == 0
        scan = _svmap(ATTACKER)
        assert not _found(scan) and "found nothing" in scan.stderr, scan.stdout + scan.stderr
        listing = run_in(ns, ["iptables", "-L", "SIP_SCANNER_BLOCK", "-v", "-n", "-x"]).stdout
        assert _counter(listing, '"friendly-scanner"') >= 1, listing
        assert run_in(ns, ["sh"], rollback["iptables"]).returncode == 0
        assert "RATELAB_GUARD" not in run_in(ns, ["iptables", "-S"]).stdout
        scan = _svmap(ATTACKER)
        assert _found(scan), scan.stdout + scan.stderr


@pytest.mark.parametrize("fmt", ["iptables", "nftables"])
def test_kernel_rules_and_the_switch_layers_together(tmp_path: Path, fmt: str) -> None:
    """The deployment the issue describes: the exported rules in the kernel AND the switch's
    own layers on (here the switch is started from the exported config itself). svmap from the
    attacker, svwar and svcrack (gw7's password at line 300 of its dictionary; svwar and svcrack
    send from 127.0.0.1, untrusted here) find nothing, and the trusted gateway is still served.
    """
    live = LiveSwitch(tmp_path / "sw", customers=customers(), extra=GUARD)
    path = live.write()
    text = path.read_text()
    for transport in ("udp", "tcp"):
        text = text.replace(f'"{transport}:127.0.0.1:0"', f'"{transport}:{SWITCH[0]}:5060"')
    path.write_text(text)  # [guard] on: the same file the rules come from
    rules = _rules(path, fmt)
    words = [f"guess{k:03d}" for k in range(1, 300)]
    words.insert(299, PASSWORD)
    dictionary = tmp_path / "passwords.txt"
    dictionary.write_text("\n".join(words) + "\n")
    names = tmp_path / "names.txt"
    names.write_text("100\n101\nacme\ngw7\nsw1\n")
    with fresh_netns() as ns, SwitchProcess(live.config_path, log_level="DEBUG") as switch:
        load = (["iptables-restore", "--noflush"] if fmt == "iptables" else ["nft", "-f", "-"])
        assert run_in(ns, load, rules).returncode == 0
        scan = _svmap(ATTACKER)
        assert not _found(scan) and "found nothing" in scan.stderr, scan.stdout + scan.stderr
        war = _svwar(ATTACKER, names)
        assert "exists" not in war.stderr and war.stdout.strip() == "", war.stdout + war.stderr
        crack = svcrack(switch.udp_address, "gw7", dictionary, timeout=6.0)
        assert PASSWORD not in crack.tried and PASSWORD not in crack.stdout, crack.text()
        assert "The password for" not in "\n".join(crack.log), crack.text()
        assert crack.answers == [], crack.text()  # nothing got an answer through
        assert _options_ok(TRUSTED)
