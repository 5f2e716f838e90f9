"""Real SIPVicious against the real switch's registrar (issue 10): the attacker's view.

``sipvicious_svcrack`` guesses a password gateway's password online; the registrar's guard
(``[registrar] register_retry`` failures per username and per source IP, then 403 for
``register_suspend`` seconds without the password being looked at) stops it long before the right
password, and the attacker's source and the attacked username stay suspended. A control run with
the guard out of the way shows that svcrack does crack this switch when it is allowed to.

``sipvicious_svwar`` enumerates extensions: the switch challenges every REGISTER and every
unauthenticated INVITE alike, answers every OPTIONS alike, so svwar finds none of the configured
gateway names (with REGISTER and INVITE it refuses to scan at all: an unknown name is challenged
too). A raw-socket check covers what svwar cannot: every name of the dictionary gets the same
answer to REGISTER and to INVITE.

SIPVicious is a dev dependency (``pip install -e '.[dev]'``); the tests fail, never skip, without
it. All traffic is on 127.x.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from switch.__main__ import main
from tests.switch.guard_live import Crack, tool
from tests.switch.live import LiveSwitch, target, vendor
from tests.switch.sipp_runner import SippResult, free_port, run_uac

PASSWORD = "s3cr3t-7"  # gw7's, at line 300 of the svcrack dictionary
INNOCENT = ("gw8", "pw8-innocent")
RETRY = 6  # [registrar] register_retry, left at its default
GATEWAYS = (
    f'[[mapping_gateway]]\nname = "gw7"\nauth = "password"\npassword = "{PASSWORD}"\n\n'
    f'[[mapping_gateway]]\nname = "{INNOCENT[0]}"\nauth = "password"\n'
    f'password = "{INNOCENT[1]}"\n\n'
    # svcrack answers the first challenge only, and only in MD5
    '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n')
REAL_NAMES = ("gw7", "gw8", "carrier9")
ATTACKER = "127.0.0.1"
OTHER = "127.0.0.5"
_script = tool  # the SIPVicious console script; the test fails (not skips) without it


@pytest.fixture
def sipvicious() -> dict[str, str]:
    return {tool: _script(f"sipvicious_{tool}") for tool in ("svcrack", "svwar")}


def _live(root: Path, registrar: str = "") -> LiveSwitch:
    return LiveSwitch(root, customers=GATEWAYS + registrar, routing=vendor(
        "carrier9", free_port(), extra='register_in = true\npassword = "c9-secret"'))


def _dictionary_of_names() -> list[str]:
    """200 extension names: numbers, near misses (gw0..gw96) and the real gateway names."""
    names = [str(n) for n in range(1000, 1100)] + [f"gw{k}" for k in range(97)]
    names += ["carrier9", "admin", "sw1"]
    assert len(names) == len(set(names)) == 200 and set(REAL_NAMES) <= set(names)
    return names


def _counters(log: str) -> dict[str, int]:
    """The switch's ``counters:`` log line (written when it stops), as a dict."""
    lines = [line for line in log.splitlines() if " counters: " in line]
    assert lines, log[-2000:]
    pairs = (item.split("=", 1) for item in lines[-1].split(" counters: ", 1)[1].split())
    return {key: int(value) for key, value in pairs}


# --- svcrack --------------------------------------------------------------------------------------

def _svcrack(script: str, switch_target: str, user: str, dictionary: Path, *, source: str,
             stop_after_refusals: int = 20, timeout: float = 20.0) -> Crack:
    """Run svcrack from ``source`` until it ends by itself or has had ``stop_after_refusals``
    403s in a row with no guess in between (against a suspending registrar it otherwise goes
    on forever, re-sending its unauthenticated REGISTER to every 403); then SIGINT, on which it
    prints its result like at the end of a scan. Killed after ``timeout`` s whatever happens."""
    host, port = switch_target.rsplit(":", 1)
    cmd = [script, "-u", user, "-d", str(dictionary), "-b", source, "-x", source,
           "-P", str(free_port(source)), "-t", "0.05", "--maximumtime", "5", "-vv",
           f"udp://{host}:{port}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    log: list[str] = []
    in_a_row = 0
    try:
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:  # ends when svcrack exits (or is killed)
            log.append(line.rstrip("\n"))
            if "Received response: SIP/2.0 403" in line:
                in_a_row += 1
                if in_a_row == stop_after_refusals and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            elif ":trying " in line or "Received response:" in line:
                in_a_row = 0
        stdout = proc.stdout.read()
        returncode = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Crack(returncode, stdout, log)


def _register(switch_target: str, workdir: Path, user: str, password: str,
              source: str) -> SippResult:
    return run_uac("uac_register.xml", switch_target, calls=1, service=user,
                   auth=(user, password), local_ip=source, local_port=free_port(source),
                   workdir=workdir, timeout=20)


def _registrations(live: LiveSwitch, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["registrations", "--config", str(live.config_path)]) == 0
    return capsys.readouterr().out


def _passwords(tmp_path: Path, position: int, total: int = 300) -> tuple[Path, list[str]]:
    words = [f"guess{k:03d}" for k in range(1, total)]
    words.insert(position - 1, PASSWORD)
    path = tmp_path / "passwords.txt"
    path.write_text("\n".join(words) + "\n")
    return path, words


def test_svcrack_cracks_this_switch_when_the_guard_allows(tmp_path: Path,
                                                          sipvicious: dict[str, str]) -> None:
    """The control: with register_retry at its maximum, svcrack finds the password at line 10,
    so the tool, its MD5 digest and this switch work together."""
    dictionary, words = _passwords(tmp_path, position=10)
    live = _live(tmp_path / "sw", "register_retry = 1000\n")
    with live.process() as switch:
        crack = _svcrack(sipvicious["svcrack"], target(switch), "gw7", dictionary,
                         source=ATTACKER)
    assert crack.tried == words[:10], crack.text()
    assert f"The password for gw7 is {PASSWORD}" in "\n".join(crack.log), crack.text()
    assert re.search(rf"\|\s*gw7\s*\|\s*{re.escape(PASSWORD)}\s*\|", crack.stdout), crack.text()
    assert crack.answers[-1] == 200, crack.text()


@pytest.mark.usefixtures("sipp_installed")
def test_svcrack_finds_nothing_and_its_source_and_username_stay_suspended(
        tmp_path: Path, sipvicious: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    dictionary, words = _passwords(tmp_path, position=300)
    live = _live(tmp_path / "sw")  # register_retry 6 and register_suspend 180 s: the defaults
    with live.process() as switch:
        where = target(switch)
        crack = _svcrack(sipvicious["svcrack"], where, "gw7", dictionary, source=ATTACKER)
        # svcrack got RETRY guesses (a slow answer may let one or two more out before it saw
        # the suspension; those were refused unread), never the right one, and then only 403s.
        tried = crack.tried
        assert tried == words[:len(tried)] and RETRY <= len(tried) <= RETRY + 2, \
            f"svcrack made {len(tried)} guesses, not about {RETRY}\n{crack.text()}"
        assert PASSWORD not in tried
        assert crack.answers[:2] == [401, 403], crack.text()
        assert 200 not in crack.answers and crack.answers[-20:] == [403] * 20, crack.text()
        assert "WARNING:root:found nothing" in crack.log, crack.text()
        assert "The password for" not in "\n".join(crack.log), crack.text()
        assert PASSWORD not in crack.stdout and "Password" not in crack.stdout, crack.text()

        # An innocent gateway from another address registers...
        innocent = _register(where, tmp_path / "innocent", *INNOCENT, source=OTHER)
        assert innocent.final_codes == {200: 1}, innocent.describe()
        # ...but the right password is refused for the suspended username from anywhere...
        for k, source in enumerate((ATTACKER, OTHER)):
            right = _register(where, tmp_path / f"right{k}", "gw7", PASSWORD, source=source)
            assert right.final_codes == {403: 1}, (source, right.describe())
        # ...and anything from the suspended source, even the innocent gateway's right password.
        same_ip = _register(where, tmp_path / "same-ip", *INNOCENT, source=ATTACKER)
        assert same_ip.final_codes == {403: 1}, same_ip.describe()
        bound = _registrations(live, capsys)
        assert "gw8" in bound and "gw7" not in bound, bound
    counters = _counters(switch.log_text())
    # Every challenge the switch sent went to svcrack except two: gw8's, and gw7's from OTHER
    # (a first REGISTER carries no username, so only its address can be found suspended); one
    # binding was made; the refusals include svcrack's 403s and the three SIPp runs above.
    assert counters.get("register_401") == crack.answers.count(401) + 2, counters
    assert counters.get("register_200") == 1, counters
    assert counters.get("register_403", 0) >= crack.answers.count(403) + 3, counters
    # The guard's own counters: one suspension per key (the username and the attacker's
    # address); every 403 except the RETRY answers to wrong guesses (the three SIPp refusals
    # included) was given without the password being looked at.
    assert counters.get("guard.suspensions") == 2, counters
    assert counters.get("guard.auth_failed") == RETRY, counters
    assert counters.get("guard.suspended_refused") == \
        crack.answers.count(403) - RETRY + 3, counters


# --- svwar ----------------------------------------------------------------------------------------

def _svwar(script: str, switch_target: str, dictionary: Path, *args: str
           ) -> subprocess.CompletedProcess[str]:
    host, port = switch_target.rsplit(":", 1)
    cmd = [script, "-d", str(dictionary), "-b", ATTACKER, "-x", ATTACKER,
           "-P", str(free_port()), "--maximumtime", "5", "-vv", *args, f"udp://{host}:{port}"]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=60)


def _found(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The extensions svwar reports (its log says "extension 'X' exists" or "probably exists");
    its result table is printed only when it found something."""
    return re.findall(r"extension '([^']*)' (?:exists|probably exists)", run.stderr)


def test_svwar_options_scan_finds_no_gateway(tmp_path: Path,
                                             sipvicious: dict[str, str]) -> None:
    names = _dictionary_of_names()
    dictionary = tmp_path / "names.txt"
    dictionary.write_text("\n".join(names) + "\n")
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        run = _svwar(sipvicious["svwar"], target(switch), dictionary, "-m", "OPTIONS")
    sent = re.findall(r"sending request for (\S+)", run.stderr)
    assert sent == names, run.stderr[-3000:]  # the whole dictionary was scanned
    assert _found(run) == [] and "found nothing" in run.stderr, run.stderr[-3000:]
    assert run.stdout.strip() == "", run.stdout
    # the switch answered every probe: svwar's own first one, the 200 names, SwitchProcess's ping
    assert _counters(switch.log_text())["received"] >= len(names) + 1


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_svwar_register_and_invite_scans_find_no_gateway(
        tmp_path: Path, sipvicious: dict[str, str], method: str) -> None:
    """svwar first asks for a random number and takes that answer as "no such user". Here an
    unknown name is challenged like a real one, so svwar refuses to scan; forced, it compares
    the first name of the dictionary (a real gateway name here) with that answer, finds it the
    same, and gives up on a switch it cannot read."""
    names = _dictionary_of_names()
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        where = target(switch)
        dictionary = tmp_path / "names.txt"
        dictionary.write_text("\n".join(names) + "\n")
        plain = _svwar(sipvicious["svwar"], where, dictionary, "-m", method)
        assert "authentication request for an unknown extension" in plain.stderr, plain.stderr
        assert _found(plain) == [] and "found nothing" in plain.stderr, plain.stderr
        for name in REAL_NAMES:
            first = tmp_path / f"{name}-first.txt"
            first.write_text("\n".join([name] + [n for n in names if n != name]) + "\n")
            forced = _svwar(sipvicious["svwar"], where, first, "-m", method, "--force")
            log = forced.stderr
            assert f"sending request for {name}\n" in log, log[-3000:]
            # the real name's answer was read and judged the same as the unknown number's
            assert "We got an unknown response" in log and f'"{name}"<sip:{name}@' in log, log
            assert _found(forced) == [] and "found nothing" in log, log[-3000:]
            assert forced.stdout.strip() == "", forced.stdout
    assert "register_200" not in _counters(switch.log_text())


# --- what svwar cannot do here: every name's answer, compared on the wire ------------------------

def _normalized(data: bytes) -> list[str]:
    """A response's status line and headers; what echoes the request (Via, From, To, Call-ID,
    CSeq) is kept by name only, and nonces are blanked."""
    out = []
    for line in data.decode().split("\r\n"):
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "to", "call-id", "cseq"):
            out.append(name)
        elif line:
            out.append(re.sub(r'nonce="[^"]*"', 'nonce=""', line))
    return out


def _ask(sock: socket.socket, where: tuple[str, int], method: str, name: str) -> list[str]:
    """Send ``method`` for ``name`` without credentials; the final answer, normalized (a non-2xx
    answer to INVITE is ACKed)."""
    host, port = where
    me = sock.getsockname()[1]
    call_id, branch = uuid.uuid4().hex, "z9hG4bK" + uuid.uuid4().hex[:16]
    uri = f"sip:{host}:{port}" if method == "REGISTER" else f"sip:{name}@{host}:{port}"
    via = f"Via: SIP/2.0/UDP {ATTACKER}:{me};branch={branch}\r\n"
    head = (f"From: <sip:{name}@{host}>;tag=t{call_id[:8]}\r\n"
            f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\n")
    sock.sendto((f"{method} {uri} SIP/2.0\r\n{via}{head}To: <sip:{name}@{host}>\r\n"
                 f"CSeq: 1 {method}\r\nContact: <sip:{name}@{ATTACKER}:{me}>\r\n"
                 "Content-Length: 0\r\n\r\n").encode(), where)
    for _ in range(50):  # skip retransmissions of earlier answers
        data = sock.recv(65535)
        text = data.decode()
        if f"Call-ID: {call_id}\r\n" not in text or int(text.split(" ", 2)[1]) < 200:
            continue
        if method == "INVITE":
            to = next(line for line in text.split("\r\n") if line.lower().startswith("to:"))
            sock.sendto((f"ACK {uri} SIP/2.0\r\n{via}{head}{to}\r\nCSeq: 1 ACK\r\n"
                         "Content-Length: 0\r\n\r\n").encode(), where)
        return _normalized(data)
    raise AssertionError(f"no final answer to the {method} for {name}")


def test_every_name_gets_the_same_unauthenticated_answer(tmp_path: Path) -> None:
    names = _dictionary_of_names()
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        host, port = target(switch).rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((ATTACKER, 0))
            sock.settimeout(5)
            for method, status in (("REGISTER", "401"), ("INVITE", "407")):
                answers = {name: _ask(sock, (host, int(port)), method, name) for name in names}
                distinct = {tuple(a) for a in answers.values()}
                assert len(distinct) == 1, {name: answers[name] for name in REAL_NAMES}
                assert answers["gw7"][0].startswith(f"SIP/2.0 {status} "), answers["gw7"]
