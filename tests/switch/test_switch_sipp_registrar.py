"""The real switch's registrar against real SIPp (MD5 first: SIPp 3.6.1 answers only the first
challenge and only in MD5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from switch.__main__ import main
from tests.switch.live import LiveSwitch, target, vendor, wait_until
from tests.switch.sipp_runner import SippResult, SippUas, free_port, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")

GATEWAY = '[[mapping_gateway]]\nname = "gw1"\nauth = "password"\npassword = "secret"\n'


def _live(root: Path, registrar: str = "", routing: str = "") -> LiveSwitch:
    return LiveSwitch(root, routing=routing, customers=(
        GATEWAY + '\n[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n' + registrar))


def _register(switch, workdir: Path, *, user: str = "gw1", password: str = "secret",
              expires: int | None = None, port: int | None = None) -> SippResult:
    variables = {"expires": expires} if expires is not None else None
    return run_uac("uac_register.xml", target(switch), calls=1, service=user,
                   auth=(user, password), variables=variables, local_port=port,
                   trace_msg=True, workdir=workdir, timeout=20)


def _received(result: SippResult) -> list[list[str]]:
    """The answers SIPp received, as status line and header lines; what echoes the request
    (Via, From, To, Call-ID, CSeq) is kept by name only, and nonces are blanked."""
    assert result.message_file is not None
    out: list[list[str]] = []
    lines = result.message_file.read_text().splitlines()
    for k, line in enumerate(lines):
        if "message received" not in line:
            continue
        msg: list[str] = []
        for text in lines[k + 1:]:
            if "message sent" in text or "message received" in text or text.startswith("---"):
                break
            if not text.strip():
                continue
            name = text.split(":", 1)[0]
            if name.lower() in ("via", "from", "to", "call-id", "cseq"):
                msg.append(name)
            else:
                msg.append(re.sub(r'nonce="[^"]*"', 'nonce=""', text))
        out.append(msg)
    return out


def _registrations(live: LiveSwitch, capsys) -> str:
    capsys.readouterr()
    assert main(["registrations", "--config", str(live.config_path)]) == 0
    return capsys.readouterr().out


def test_right_wrong_unknown_expires_zero_and_restart(tmp_path: Path, capsys) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = _live(tmp_path / "sw", routing=vendor("v1", uas.port))
    live.snapshot["customers"]["gw1"] = {"44": "0.0300"}
    port = free_port()
    with uas:
        with live.process() as switch:
            right = _register(switch, tmp_path / "right", port=port)
            assert right.final_codes == {200: 1}, right.describe()
            assert "gw1" in _registrations(live, capsys)
            wrong = _register(switch, tmp_path / "wrong", password="nope")
            unknown = _register(switch, tmp_path / "unknown", user="ghost", password="nope")
            # unknown user and wrong password: the same answers on the wire
            assert wrong.final_codes == unknown.final_codes == {403: 1}
            assert _received(wrong) == _received(unknown)
            assert [m[0] for m in _received(wrong)] == ["SIP/2.0 401 Unauthorized",
                                                        "SIP/2.0 403 Forbidden"]
            gone = _register(switch, tmp_path / "zero", expires=0, port=free_port())
            assert gone.final_codes == {200: 1}, gone.describe()
            again = _register(switch, tmp_path / "again", port=port)
            assert again.final_codes == {200: 1}, again.describe()
        # restarted: the binding is read back, and calls from it need no challenge
        assert "gw1" in _registrations(live, capsys)
        with live.process() as switch:
            call = run_uac("uac_basic.xml", target(switch), calls=1, duration_ms=100,
                           local_port=port, service="447700900123",
                           workdir=tmp_path / "call", timeout=30)
            ok(call, 1)
    assert [r["customer"] for r in live.cdrs()] == ["gw1"]


def test_expires_zero_removes_the_binding(tmp_path: Path, capsys) -> None:
    live = _live(tmp_path / "sw")
    port = free_port()
    with live.process() as switch:
        assert _register(switch, tmp_path / "r", port=port).final_codes == {200: 1}
        assert "gw1" in _registrations(live, capsys)
        assert _register(switch, tmp_path / "z", port=port, expires=0).final_codes == {200: 1}
        assert "0 registration(s)" in _registrations(live, capsys)


def test_too_brief_is_423(tmp_path: Path) -> None:
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        brief = _register(switch, tmp_path / "r", expires=30)
    assert brief.final_codes == {423: 1}, brief.describe()


def test_suspension_after_register_retry_and_its_end(tmp_path: Path) -> None:
    live = _live(tmp_path / "sw", "register_retry = 2\nregister_suspend = 2\n")
    runs = iter(range(1000))
    with live.process() as switch:
        for k in range(2):
            assert _register(switch, tmp_path / f"bad{k}", password="nope").final_codes == \
                {403: 1}
        # suspended: even the right password is refused
        assert _register(switch, tmp_path / "during").final_codes == {403: 1}
        assert wait_until(lambda: _register(switch, tmp_path / f"after{next(runs)}")
                          .final_codes == {200: 1}, timeout=20)


@pytest.mark.parametrize(("replace", "second"), [("true", 200), ("false", 403)])
def test_register_replace(tmp_path: Path, replace: str, second: int) -> None:
    live = _live(tmp_path / "sw", f"register_replace = {replace}\n")
    with live.process() as switch:
        assert _register(switch, tmp_path / "one", port=free_port()).final_codes == {200: 1}
        other = _register(switch, tmp_path / "two", port=free_port())
    assert other.final_codes == {second: 1}, other.describe()


def test_replayed_authorization_is_refused(tmp_path: Path) -> None:
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        first = run_uac("uac_register.xml", target(switch), calls=1, service="gw1",
                        auth=("gw1", "secret"), trace_msg=True, workdir=tmp_path / "first",
                        timeout=20)
        assert first.final_codes == {200: 1}, first.describe()
        assert first.message_file is not None
        sent = [line.split(":", 1)[1].strip()
                for line in first.message_file.read_text().splitlines()
                if line.startswith("Authorization:")]
        assert len(sent) == 1, sent
        replay = run_uac("uac_register_replay.xml", target(switch), calls=1, service="gw1",
                         variables={"authz": sent[0]}, workdir=tmp_path / "replay",
                         timeout=20)
    assert replay.final_codes == {403: 1}, replay.describe()


def test_contact_star_removes_the_binding(tmp_path: Path, capsys) -> None:
    live = _live(tmp_path / "sw")
    with live.process() as switch:
        assert _register(switch, tmp_path / "r", port=free_port()).final_codes == {200: 1}
        assert "1 registration(s)" in _registrations(live, capsys)
        star = run_uac("uac_register.xml", target(switch), calls=1, service="gw1",
                       auth=("gw1", "secret"), variables={"star": 1, "expires": 0},
                       workdir=tmp_path / "star", timeout=20)
        assert star.final_codes == {200: 1}, star.describe()
        assert "0 registration(s)" in _registrations(live, capsys)
