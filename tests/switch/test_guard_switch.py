"""Real SIPVicious against the real switch's own guard layers, no kernel rules (issue 12).

The switch runs on 127.0.0.10 with ``[guard]`` at its defaults (the article's) and one trusted
network, 127.0.0.2/32, where the IP-authenticated customer acme places SIPp calls to a SIPp
vendor on 127.0.0.8. Attackers: svmap from 127.0.0.3 (it honours ``-b``), svwar and svcrack from
127.0.0.1 (they send from the kernel's choice whatever ``-b`` says; nothing trusted lives
there), a scanner User-Agent from 127.0.0.4. Well-behaved untrusted sources: 127.0.0.5 and
127.0.0.7; a password gateway registers from 127.0.0.6 and is trusted from there afterwards.

The registrar's own suspend is set out of reach (``register_retry = 1000``): whatever svcrack
does not get, the guard took. The kernel-rule version is tests/switch/test_firewall_netns.py.
SIPVicious and SIPp are required: these tests fail, never skip, without them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ratelab import SwitchProcess
from tests.switch.guard_live import (
    ATTACKER,
    BYSTANDER,
    GW6,
    NUMBER,
    PASSWORD,
    REGISTERED,
    SCANNER,
    SVTOOLS_SOURCE,
    SWITCH_IP,
    TRUSTED,
    UNREGISTERED,
    add_snapshot_customers,
    burst,
    counters,
    customers,
    guard_table,
    one,
    svcrack,
    svmap,
    svmap_found,
    svwar,
    svwar_found,
    tcp_exchange,
    tcp_request,
    vendor_table,
    vendor_uas,
)
from tests.switch.live import LiveSwitch, target, wait_until
from tests.switch.sipp_runner import SippUas, free_port, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")

CALLS = 3
TCP_SCANNER = "127.0.0.9"
BURSTER = "127.0.0.11"


def _live(root: Path, vendor_port: int, *, enabled: bool = True, guard: str = "",
          registrar: str = "") -> LiveSwitch:
    live = LiveSwitch(root, customers=customers(registrar=registrar),
                      routing=vendor_table(vendor_port),
                      host=SWITCH_IP, extra=guard_table(enabled, guard) + "[media]\nworkers = 0\n")
    add_snapshot_customers(live.snapshot)
    return live


@contextmanager
def _switch(tmp_path: Path, *, enabled: bool = True, guard: str = "",
            registrar: str = "") -> Iterator[tuple[SwitchProcess, SippUas, LiveSwitch]]:
    uas = vendor_uas(tmp_path / "uas")
    live = _live(tmp_path / "sw", uas.port, enabled=enabled, guard=guard, registrar=registrar)
    with uas, live.process() as switch:
        assert switch.udp_address[0] == SWITCH_IP
        yield switch, uas, live


def _tcp_address(switch: SwitchProcess) -> tuple[str, int]:
    host, port = target(switch, "tcp").rsplit(":", 1)
    return host, int(port)


def _calls(switch: SwitchProcess, workdir: Path) -> None:
    """CALLS SIPp calls from the trusted gateway; every one completes."""
    result = run_uac("uac_basic.xml", target(switch), calls=CALLS, rate=20, duration_ms=200,
                     service=NUMBER, local_ip=TRUSTED, local_port=free_port(TRUSTED),
                     workdir=workdir, timeout=20)
    ok(result, CALLS)


def test_svmap_finds_the_switch_when_the_guard_is_off(tmp_path: Path) -> None:
    """The control: the same switch with ``[guard] enabled = false`` answers svmap's OPTIONS,
    so svmap finding nothing below is the guard's doing."""
    with _switch(tmp_path, enabled=False) as (switch, _uas, _live):
        scan = svmap(ATTACKER, switch.udp_address)
        assert svmap_found(scan, switch.udp_address), scan.stdout + scan.stderr
    assert not any(key.startswith("screen.drop.") for key in counters(switch.log_text()))


def test_trusted_gateway_is_served_while_svmap_and_svwar_find_nothing(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["acme", "gw6", "gw7", "v1", "sw1"]
                               + [str(n) for n in range(100, 150)]) + "\n")
    with _switch(tmp_path) as (switch, _uas, live):
        where = switch.udp_address
        assert one("OPTIONS", TRUSTED, where) == 200
        _calls(switch, tmp_path / "calls-before")

        scan = svmap(ATTACKER, where)
        assert not svmap_found(scan, where), scan.stdout + scan.stderr
        assert "found nothing" in scan.stderr, scan.stderr

        war = svwar(where, names, "-m", "OPTIONS")
        assert svwar_found(war) == [] and "found nothing" in war.stderr, war.stderr[-3000:]
        assert war.stdout.strip() == "", war.stdout

        # the attackers got nothing, and the trusted gateway is still served in full
        assert one("OPTIONS", ATTACKER, where, wait=0.5) is None
        assert one("OPTIONS", SVTOOLS_SOURCE, where, wait=0.5) is None
        assert one("OPTIONS", TRUSTED, where) == 200
        _calls(switch, tmp_path / "calls-after")
    got = counters(switch.log_text())
    # svmap's OPTIONS (it is also a friendly-scanner: OPTIONS is the cheaper, earlier match),
    # svwar's probe and the two above: all dropped as OPTIONS
    assert got.get("screen.drop.options", 0) >= 4, got
    assert got.get("screen.trusted", 0) > 0, got
    assert [c["disconnect_reason"] for c in live.cdrs()] == ["caller_bye"] * (2 * CALLS)


def test_svwar_register_and_invite_scans_find_nothing(tmp_path: Path) -> None:
    """svwar's probes carry ``User-Agent: friendly-scanner``: its first one is dropped and bans
    its source, so svwar (REGISTER, then INVITE forced) never gets an answer and finds
    nothing."""
    names = ["gw7", "gw6", "acme"] + [str(n) for n in range(1000, 1200)]
    dictionary = tmp_path / "names.txt"
    dictionary.write_text("\n".join(names) + "\n")
    with _switch(tmp_path) as (switch, _uas, _live):
        where = switch.udp_address
        for args in (("-m", "REGISTER"), ("-m", "INVITE", "--force")):
            run = svwar(where, dictionary, *args)
            assert svwar_found(run) == [] and "found nothing" in run.stderr, run.stderr[-3000:]
            assert "timed out" in run.stderr, run.stderr[-3000:]  # not a single answer
            assert run.stdout.strip() == "", run.stdout
        # svwar's source is banned now, for everything; another untrusted source is answered
        for method in ("REGISTER", "INVITE"):
            assert one(method, SVTOOLS_SOURCE, where, wait=0.5) is None
            assert one(method, BYSTANDER, where) is not None
    got = counters(switch.log_text())
    assert got.get("screen.drop.scanner") == 1 and got.get("screen.ban.scanner") == 1, got
    assert got.get("screen.drop.banned", 0) >= 3, got  # the INVITE run's probe, and ours
    assert [key for key in got if key.startswith("screen.ban.")] == ["screen.ban.scanner"], got
    assert "register_200" not in got, got


def _crack_dictionary(tmp_path: Path) -> tuple[Path, list[str]]:
    words = [f"guess{k:03d}" for k in range(1, 300)]
    words.insert(299, PASSWORD)  # line 300
    dictionary = tmp_path / "passwords.txt"
    dictionary.write_text("\n".join(words) + "\n")
    return dictionary, words


@pytest.mark.parametrize("agents", ["default", "none"])
def test_svcrack_finds_nothing_and_ends_up_banned(tmp_path: Path, agents: str) -> None:
    """svcrack with gw7's password at line 300. With the default scanner names its first
    REGISTER (``User-Agent: friendly-scanner``) bans it; with ``scanner_agents = []`` the rate
    rules do: each guess costs two requests (REGISTER, challenged; REGISTER with the guess), and
    recent (more than 20 in 60 s) or hashlimit (burst 20) ban it after about ten guesses."""
    dictionary, words = _crack_dictionary(tmp_path)
    guard = "scanner_agents = []\n" if agents == "none" else ""
    with _switch(tmp_path, guard=guard) as (switch, _uas, _live):
        where = switch.udp_address
        # svcrack gives up by itself only after 10 s without an answer (to its first request,
        # or banned midway, still sending): interrupted sooner, when it has long been banned
        crack = svcrack(where, "gw7", dictionary, timeout=4.0 if agents == "default" else 6.0)
        tried = crack.tried
        assert tried == words[:len(tried)], crack.text()
        if agents == "default":
            assert tried == [] and crack.answers == [], crack.text()
        else:
            assert 5 <= len(tried) <= 15 and set(crack.answers) <= {401, 403}, crack.text()
        assert PASSWORD not in tried, crack.text()
        assert "The password for" not in "\n".join(crack.log), crack.text()
        assert PASSWORD not in crack.stdout, crack.text()
        # banned: a REGISTER from svcrack's source gets nothing, one from elsewhere a 401;
        # gw7's right password still works from another address (only the guard stopped
        # svcrack, not a suspension of the username)
        assert one("REGISTER", SVTOOLS_SOURCE, where, wait=0.5) is None
        assert one("REGISTER", BYSTANDER, where) == 401
        right = run_uac("uac_register.xml", target(switch), calls=1, service="gw7",
                        auth=("gw7", PASSWORD), local_ip=BYSTANDER,
                        local_port=free_port(BYSTANDER), workdir=tmp_path / "right", timeout=20)
        assert right.final_codes == {200: 1}, right.describe()
    got = counters(switch.log_text())
    bans = [key for key in got if key.startswith("screen.ban.")]
    if agents == "default":
        assert bans == ["screen.ban.scanner"] and got["screen.ban.scanner"] == 1, got
    else:
        assert bans in (["screen.ban.recent"], ["screen.ban.hashlimit"]), got
        assert got[bans[0]] == 1, got
    assert got.get("screen.drop.banned", 0) >= 1, got
    assert got.get("guard.suspensions", 0) == 0, got  # the registrar never had to step in


def test_scanner_user_agent_bans_its_source_only(tmp_path: Path) -> None:
    with _switch(tmp_path) as (switch, _uas, _live):
        where = switch.udp_address
        # a normal unauthenticated INVITE from an unknown source: the engine answers
        before = one("INVITE", SCANNER, where)
        assert before is not None and before >= 400, before
        assert one("INVITE", SCANNER, where, user_agent="friendly-scanner", wait=1.0) is None
        # banned: its ordinary requests get nothing now; the bystander's are answered
        assert one("INVITE", SCANNER, where, wait=0.5) is None
        assert one("REGISTER", SCANNER, where, wait=0.5) is None
        assert one("INVITE", BYSTANDER, where) == before
        assert one("REGISTER", BYSTANDER, where) == 401
        # a burst of REGISTERs from another untrusted source: 20 answered (recent: more than
        # 20 in 60 s; hashlimit: burst 20), then that source is banned
        answered = burst("REGISTER", BURSTER, where, 40, wait=1.0)
        assert len(answered) == 20 and set(answered.values()) == {401}, answered
        assert one("REGISTER", BURSTER, where, wait=0.5) is None
        # over TCP the same: a scanner's message is dropped unanswered, the connection closed
        # and the source banned; the trusted gateway's OPTIONS over TCP gets its 200
        tcp = _tcp_address(switch)
        answer, closed = tcp_exchange(TRUSTED, tcp, tcp_request("OPTIONS", TRUSTED, tcp))
        assert answer.startswith(b"SIP/2.0 200 "), answer
        answer, closed = tcp_exchange(TCP_SCANNER, tcp, tcp_request(
            "INVITE", TCP_SCANNER, tcp, user_agent="sipcli/v1.8"))
        assert answer == b"" and closed, (answer, closed)
        assert one("INVITE", TCP_SCANNER, where, wait=0.5) is None  # banned on UDP too
        answer, closed = tcp_exchange(BYSTANDER, tcp, tcp_request("REGISTER", BYSTANDER, tcp))
        assert answer.startswith(b"SIP/2.0 401 "), answer
    got = counters(switch.log_text())
    assert got.get("screen.drop.scanner") == 2, got
    assert got.get("screen.ban.scanner") == 2, got
    # scanner: 2 UDP + 1 after the TCP ban; burster: the last 19 of the 40, and 1 after
    assert got.get("screen.drop.banned") == 3 + 19 + 1, got
    assert got.get("screen.ban.recent", 0) + got.get("screen.ban.hashlimit", 0) == 1, got
    assert got.get("screen.drop.recent", 0) + got.get("screen.drop.hashlimit", 0) == 1, got


def test_a_registered_gateway_is_trusted_from_where_it_registered(tmp_path: Path) -> None:
    """Before it registers, gw6's address is an untrusted one like any (OPTIONS dropped); after
    a REGISTER with the right password, 100 OPTIONS in a burst from there are all answered,
    while the same burst from an unregistered address gets nothing."""
    with _switch(tmp_path) as (switch, _uas, _live):
        where = switch.udp_address
        assert one("OPTIONS", REGISTERED, where, wait=0.5) is None
        port = free_port(REGISTERED)  # the contact: Expires 0 must name the same one
        reg = run_uac("uac_register.xml", target(switch), calls=1, service=GW6[0], auth=GW6,
                      local_ip=REGISTERED, local_port=port,
                      workdir=tmp_path / "register", timeout=20)
        assert reg.final_codes == {200: 1}, reg.describe()
        trusted = burst("OPTIONS", REGISTERED, where, 100, wait=2.0)
        assert len(trusted) == 100 and set(trusted.values()) == {200}, trusted
        # more than recent's 20 and hashlimit's burst: an untrusted source would be banned
        more = burst("INVITE", REGISTERED, where, 30, wait=2.0)
        assert len(more) == 30, more
        stranger = burst("OPTIONS", UNREGISTERED, where, 100, wait=0.5)
        assert stranger == {}, stranger
        # once its binding is gone (REGISTER with Expires: 0), so is the trust
        gone = run_uac("uac_register.xml", target(switch), calls=1, service=GW6[0], auth=GW6,
                       variables={"expires": 0}, local_ip=REGISTERED, local_port=port,
                       workdir=tmp_path / "unregister",
                       timeout=20)
        assert gone.final_codes == {200: 1}, gone.describe()
        assert one("OPTIONS", REGISTERED, where, wait=0.5) is None
    got = counters(switch.log_text())
    assert got.get("register_200") == 2 and got.get("registrar.register_removed") == 1, got
    assert got.get("screen.drop.options", 0) >= 102, got
    assert not any(key.startswith("screen.ban.") for key in got), got


def test_trust_ends_when_the_registration_expires(tmp_path: Path) -> None:
    """docs/guard.md: "while a password gateway's registration binding lives, the address it
    registered from is trusted". A binding of 2 s: trusted during, untrusted again once it has
    expired (OPTIONS dropped), without any REGISTER removing it."""
    with _switch(tmp_path, registrar="min_expires = 1\n") as (switch, _uas, _live):
        where = switch.udp_address
        reg = run_uac("uac_register.xml", target(switch), calls=1, service=GW6[0], auth=GW6,
                      variables={"expires": 2}, local_ip=REGISTERED,
                      local_port=free_port(REGISTERED), workdir=tmp_path / "register",
                      timeout=20)
        assert reg.final_codes == {200: 1}, reg.describe()
        registered_at = time.monotonic()
        assert one("OPTIONS", REGISTERED, where) == 200
        time.sleep(max(0.0, registered_at + 2.5 - time.monotonic()))
        # expired: a few seconds' grace for a periodic sweep, then it must be untrusted
        assert wait_until(lambda: one("OPTIONS", REGISTERED, where, wait=0.3) is None,
                          timeout=3.0), "the address is still trusted after its binding expired"


def test_sighup_applies_guard_enabled_both_ways(tmp_path: Path) -> None:
    """docs/config.md: "SIGHUP applies changed keys". A switch started with the guard off
    answers the attacker's OPTIONS; after ``enabled = true`` and a SIGHUP it must drop them,
    and after ``enabled = false`` answer again."""
    with _switch(tmp_path, enabled=False) as (switch, _uas, live):
        where = switch.udp_address
        assert one("OPTIONS", ATTACKER, where) == 200
        for turn, (enabled, expected) in enumerate(((True, None), (False, 200), (True, None))):
            text = live.config_path.read_text()
            live.config_path.write_text(text.replace(
                f"enabled = {'false' if enabled else 'true'}",
                f"enabled = {'true' if enabled else 'false'}", 1))
            switch.reload()

            def reloaded(n: int = turn) -> bool:
                return switch.log_text().count("reloaded:") > n

            assert wait_until(reloaded, timeout=5), switch.log_text()[-2000:]
            assert one("OPTIONS", ATTACKER, where, wait=0.5) == expected, \
                (f"[guard] enabled = {enabled} after SIGHUP", switch.log_text()[-1500:])
            assert one("OPTIONS", TRUSTED, where) == 200
