"""The switch leaving its carriers (issue 10), end to end: the unregister on SIGTERM within
``unregister_wait`` (and none with ``send_unregister = false``), SIGHUP dropping and adding a
carrier, and ``register_privacy`` on every REGISTER. The carrier is SIPp
(sipp/uas_upstream_registrar.xml) or the RFC 7616 registrar of tests/switch/upstream_peers.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.switch.live import target, wait_until
from tests.switch.upstream_peers import (
    Rfc7616Registrar,
    answered,
    answers,
    assert_one_dialog,
    live,
    registers,
    registrar,
    upstream,
    upstream_row,
    wait_registered,
    wire,
)

pytestmark = pytest.mark.usefixtures("sipp_installed")


@pytest.mark.parametrize(("privacy", "expected"), [
    ("ignore", (None, None)),
    ("id", ("id", "<sip:ratelab@127.0.0.1>")),
    ("none", ("none", None)),
])
def test_register_privacy_on_the_wire(tmp_path: Path, privacy: str,
                                      expected: tuple[str | None, str | None]) -> None:
    uas = registrar(tmp_path)
    sw = live(tmp_path / "sw", upstream("v1", uas.port), f'register_privacy = "{privacy}"\n')
    with uas, sw.process():
        wait_registered(uas)
    regs = registers(uas)
    assert len(regs) >= 2
    for r in regs:
        assert (r.get("Privacy"), r.get("P-Preferred-Identity")) == expected, r.describe()
        assert len(r.all("Privacy")) <= 1 and len(r.all("P-Preferred-Identity")) <= 1


def test_sigterm_unregisters_within_unregister_wait_and_exits_0(tmp_path: Path) -> None:
    """SIGTERM: REGISTER Expires: 0 (same Call-ID, next CSeq, same Contact), challenged and
    answered with valid credentials, 200; the switch then exits 0."""
    uas = registrar(tmp_path)
    sw = live(tmp_path / "sw", upstream("v1", uas.port),
              "send_unregister = true\nunregister_wait = 5\n")
    with uas, sw.process() as switch:
        wait_registered(uas)
        me = target(switch)
        before = len(registers(uas))
        switch.terminate()
        signalled = time.time()
        assert wait_until(lambda: answered(uas, 200) >= 2, timeout=5), \
            "\n\n".join(w.describe() for w in wire(uas)[2 * before:])
        # it exits by itself: no second SIGTERM (stop() would send one while it still runs)
        assert wait_until(lambda: not switch.running, timeout=5.0 + sw.grace + 5.0), \
            switch.log_text()[-3000:]
        exited = time.time()
        assert switch.stop() == 0, switch.log_text()[-3000:]
    regs = registers(uas)
    gone = regs[before:]
    assert [r.expires for r in gone] == [0, 0], [r.describe() for r in gone]
    assert gone[0].at - signalled < 5.0
    assert gone[1].get("Authorization") is not None
    auth = uas.result.logged("auth") if uas.result else []
    assert len(auth) == 2 and all(line.endswith("valid=true") for line in auth), auth
    assert_one_dialog(regs, f"<sip:ratelab@{me}>")
    assert [a.status for a in answers(uas)] == [401, 200, 401, 200]
    assert exited - signalled < 5.0 + sw.grace + 5.0


def test_no_unregister_when_send_unregister_is_false(tmp_path: Path) -> None:
    uas = registrar(tmp_path)
    sw = live(tmp_path / "sw", upstream("v1", uas.port),
              "send_unregister = false\nunregister_wait = 5\n")
    with uas, sw.process() as switch:
        wait_registered(uas)
        before = len(registers(uas))
        started = time.monotonic()
        assert switch.stop(timeout=20) == 0, switch.log_text()[-3000:]
        took = time.monotonic() - started
        time.sleep(0.5)
    assert registers(uas)[before:] == []
    assert all(r.expires != 0 for r in registers(uas))
    assert took < sw.grace + 3.0, took


def test_sighup_dropping_an_upstream_unregisters_it_and_adding_one_registers_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = registrar(tmp_path, "one"), registrar(tmp_path, "two")
    sw = live(tmp_path / "sw", upstream("v1", one.port))
    with one, two, sw.process() as switch:
        wait_registered(one)
        assert registers(two) == []
        switch.reload()                                   # the same config: nothing to do
        assert wait_until(lambda: "reloaded" in switch.log_text(), timeout=5)
        time.sleep(0.5)
        assert len(registers(one)) == 2, [r.describe() for r in registers(one)]
        reloads = switch.log_text().count("reloaded")
        sw.routing = upstream("v2", two.port)            # v1 gone, v2 new
        sw.write()
        switch.reload()
        assert wait_until(lambda: switch.log_text().count("reloaded") > reloads, timeout=5)
        wait_registered(one, 2)                           # the unregister's 200
        wait_registered(two)
        assert wait_until(lambda: "registered" in upstream_row(sw.config_path, capsys, "v2")
                          .split(), timeout=5)
        v1 = upstream_row(sw.config_path, capsys, "v1")
        assert "registered" not in v1.split(), v1
    regs = registers(one)
    assert [r.expires for r in regs] == [3600, 3600, 0, 0], [r.describe() for r in regs]
    assert len({r.get("Call-ID") for r in regs}) == 1
    assert regs[3].get("Authorization") is not None
    assert all(line.endswith("valid=true") for line in (one.result.logged("auth")
                                                        if one.result else []))
    assert [r.expires for r in registers(two)][:2] == [3600, 3600]


def test_unregister_wait_bounds_the_exit_when_the_upstream_is_gone(tmp_path: Path) -> None:
    """Registered, then the upstream goes silent: on SIGTERM the Expires: 0 goes out, nothing
    answers, and the switch still exits 0 once unregister_wait (1 s) is over."""
    with Rfc7616Registrar() as reg:
        sw = live(tmp_path / "sw", upstream("v1", reg.port),
                  "send_unregister = true\nunregister_wait = 1\n")
        with sw.process() as switch:
            assert wait_until(lambda: len(reg.verdicts) >= 1, timeout=10), reg.requests
            reg.silent = True
            before = len(reg.requests)
            started = time.monotonic()
            assert switch.stop(timeout=20) == 0, switch.log_text()[-3000:]
            took = time.monotonic() - started
    assert reg.verdicts[0][1], reg.verdicts[0][2]
    gone = reg.requests[before:]
    assert gone and all(re.search(r"\r\nExpires: 0\r\n", r) for r in gone), gone
    assert took < 1.0 + sw.grace + 3.0, took
