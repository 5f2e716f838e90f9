"""The real switch registering itself to upstream carriers (issue 10), end to end.

SIPp plays the carrier's registrar (sipp/uas_upstream_registrar.xml): every REGISTER of the
switch for one upstream shares one Call-ID, so SIPp sees the whole lifecycle (challenge,
answer, refreshes, the unregister) as ONE call, and the scenario loops over it. What went over
the wire is read back from SIPp's -trace_msg message log. SIPp 3.6.1's verifyauth checks only an
``Authorization`` header in MD5, so the 407 case (``Proxy-Authorization``) is checked here from
the message log, and SHA-256 against a small registrar written here from RFC 7616 (hashlib only).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.switch.live import target, wait_until
from tests.switch.sipp_runner import SippUas, digest_ok, free_port
from tests.switch.upstream_peers import (
    PASSWORD,
    USER,
    PyUac,
    Rfc7616Registrar,
    Wire,
    answered,
    answers,
    assert_one_dialog,
    auth_params,
    live,
    registers,
    registrar,
    table,
    upstream,
    upstream_row,
    wait_registered,
)

pytestmark = pytest.mark.usefixtures("sipp_installed")


def test_the_registrar_scenario_itself(tmp_path: Path) -> None:
    """uas_upstream_registrar.xml's branches, driven by a Python UAC: 401/407, verifyauth
    (403 on a wrong password), the grant in Contact or Expires, forbid, 423, Expires 0."""
    def play(name: str, **variables: str | int) -> tuple[SippUas, PyUac, list[Wire]]:
        uas = registrar(tmp_path, name, **variables)
        uas.start()
        uac = PyUac(uas.port)
        return uas, uac, []

    uas, uac, seen = play("plain")
    try:
        seen += [uac.register(3600), uac.register(3600, password=PASSWORD),
                 uac.register(3600, password="wrong"), uac.register(0, password=PASSWORD)]
    finally:
        uac.close()
        uas.stop()
    assert [w.status for w in seen] == [401, 200, 403, 200]
    assert seen[1].get("Contact") == f"<sip:ratelab@127.0.0.1:{uac.me}>;expires=3600"
    assert seen[3].get("Contact") is None
    assert uas.result is not None
    assert [line.split()[-1] for line in uas.result.logged("auth")] == \
        ["valid=true", "valid=false", "valid=true"]

    uas, uac, seen = play("proxy", challenge=407, grant=5, grant_in="header", forbid=1)
    try:
        seen += [uac.register(3600), uac.register(3600, password=PASSWORD),
                 uac.register(3600, password=PASSWORD)]
    finally:
        uac.close()
        uas.stop()
    assert [w.status for w in seen] == [407, 403, 200]
    assert seen[0].get("Proxy-Authenticate") is not None and seen[2].get("Expires") == "5"
    assert seen[2].get("Contact") == f"<sip:ratelab@127.0.0.1:{uac.me}>"

    uas, uac, seen = play("brief", min_expires=60, grant_in="none")
    try:
        seen += [uac.register(20), uac.register(20, password=PASSWORD),
                 uac.register(60, password=PASSWORD)]
    finally:
        uac.close()
        uas.stop()
    assert [w.status for w in seen] == [401, 423, 200]
    assert seen[1].get("Min-Expires") == "60"
    assert seen[2].get("Contact") == f"<sip:ratelab@127.0.0.1:{uac.me}>"
    assert seen[2].get("Expires") is None


# --- tests ---------------------------------------------------------------------------------------

def test_401_challenge_answered_and_the_register_on_the_wire(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """REGISTER -> 401 -> REGISTER with Authorization (verifyauth: valid) -> 200; every header
    the contract names is on the wire; the table says registered / 200 OK."""
    uas = registrar(tmp_path)
    sw = live(tmp_path / "sw", upstream("v1", uas.port))
    with uas, sw.process() as switch:
        wait_registered(uas)
        me = target(switch)
        row = upstream_row(sw.config_path, capsys, "v1")
        regs = registers(uas)
    first, second = regs[:2]
    assert first.start == f"REGISTER sip:127.0.0.1:{uas.port} SIP/2.0"
    assert first.get("Authorization") is None and first.get("Proxy-Authorization") is None
    assert [a.status for a in answers(uas)[:2]] == [401, 200]
    assert second.start == first.start
    assert uas.snapshot().logged("auth")[0].endswith("valid=true"), uas.snapshot().logs
    for r in (first, second):
        assert re.fullmatch(r"<sip:ratelab@127\.0\.0\.1>;tag=\S+", r.get("From") or ""), \
            r.describe()
        assert r.get("To") == "<sip:ratelab@127.0.0.1>", r.describe()
        assert r.expires == 3600
        assert r.get("Max-Forwards") == "70"
        assert r.get("User-Agent") == "ratelab-switch"
        # sent from the switch's UDP listener
        assert (r.get("Via") or "").startswith(f"SIP/2.0/UDP {me};"), r.describe()
        # register_privacy = "ignore" (the default): no privacy headers at all
        assert r.get("Privacy") is None and r.get("P-Preferred-Identity") is None
    assert_one_dialog(regs[:2], f"<sip:ratelab@{me}>")
    challenge = auth_params(answers(uas)[0].get("WWW-Authenticate") or "")
    creds = auth_params(second.get("Authorization") or "")
    assert creds["username"] == USER and creds["realm"] == "upstream"
    assert creds["nonce"] == challenge["nonce"]
    assert creds["uri"] == f"sip:127.0.0.1:{uas.port}"
    assert creds.get("qop") == "auth" and creds.get("nc") and creds.get("cnonce")
    assert digest_ok(second.get("Authorization") or "", password=PASSWORD, method="REGISTER")
    assert "registered" in row.split() and "200 OK" in row, row
    assert "127.0.0.1:" + str(uas.port) in row and USER in row.split(), row


def test_407_challenge_answered_with_proxy_authorization(tmp_path: Path) -> None:
    """A 407 is answered with Proxy-Authorization (checked here: verifyauth cannot)."""
    uas = registrar(tmp_path, challenge=407)
    sw = live(tmp_path / "sw", upstream("v1", uas.port))
    with uas, sw.process() as switch:
        wait_registered(uas)
        me = target(switch)
        regs = registers(uas)
    assert [a.status for a in answers(uas)[:2]] == [407, 200]
    second = regs[1]
    assert second.get("Authorization") is None, second.describe()
    value = second.get("Proxy-Authorization") or ""
    creds = auth_params(value)
    challenge = auth_params(answers(uas)[0].get("Proxy-Authenticate") or "")
    assert creds.get("username") == USER and creds.get("realm") == "upstream", value
    assert creds.get("nonce") == challenge["nonce"], value
    assert creds.get("uri") == f"sip:127.0.0.1:{uas.port}", value
    assert digest_ok(value, password=PASSWORD, method="REGISTER"), value
    assert_one_dialog(regs[:2], f"<sip:ratelab@{me}>")


@pytest.mark.parametrize("grant_in", ["contact", "header"])
def test_auto_expire_refreshes_at_80_percent_of_the_grant(tmp_path: Path, grant_in: str) -> None:
    """register_expire = "auto" asks 3600; the registrar grants 5 s (Contact ;expires=5, or
    else an Expires header): the refresh (same Call-ID, next CSeq) comes ~4 s later."""
    uas = registrar(tmp_path, grant=5, grant_in=grant_in)
    sw = live(tmp_path / "sw", upstream("v1", uas.port))
    with uas, sw.process() as switch:
        wait_registered(uas, 2, timeout=15)
        me = target(switch)
    regs, sent = registers(uas), answers(uas)
    ok_at = next(a.at for a in sent if a.status == 200)
    refresh = next(r for r in regs if r.at > ok_at)
    assert 3.0 <= refresh.at - ok_at <= 6.5, (refresh.at - ok_at, refresh.describe())
    assert refresh.expires == 3600, refresh.describe()
    assert_one_dialog(regs[:4], f"<sip:ratelab@{me}>")
    assert [a.status for a in sent[:4]] == [401, 200, 401, 200]
    assert all(line.endswith("valid=true") for line in uas.snapshot().logged("auth"))


def test_fixed_expire_is_what_the_switch_asks(tmp_path: Path) -> None:
    uas = registrar(tmp_path)
    sw = live(tmp_path / "sw", upstream("v1", uas.port, "register_expire = 20\n"))
    with uas, sw.process():
        wait_registered(uas)
    assert [r.expires for r in registers(uas)[:2]] == [20, 20]


def test_register_server_is_where_the_register_goes(tmp_path: Path) -> None:
    """register_server set: the REGISTERs go there (and name it), not to the vendor address."""
    uas = registrar(tmp_path)
    elsewhere = f'register_server = "127.0.0.1:{uas.port}"\n'
    sw = live(tmp_path / "sw", upstream("v1", free_port(), elsewhere))
    with uas, sw.process():
        wait_registered(uas)
        regs = registers(uas)
    assert regs[0].start == f"REGISTER sip:127.0.0.1:{uas.port} SIP/2.0"
    assert regs[0].get("To") == "<sip:ratelab@127.0.0.1>"


def test_423_is_answered_with_the_min_expires(tmp_path: Path) -> None:
    """Asking 20 s from a registrar wanting 60: 423 (Min-Expires: 60), then Expires: 60."""
    uas = registrar(tmp_path, min_expires=60)
    sw = live(tmp_path / "sw", upstream("v1", uas.port, "register_expire = 20\n"))
    with uas, sw.process() as switch:
        wait_registered(uas)
        me = target(switch)
        regs, sent = registers(uas), answers(uas)        # before the unregister on stop
    brief = next(a for a in sent if a.status == 423)
    assert brief.get("Min-Expires") == "60"
    after = [r for r in regs if r.cseq > brief.cseq]
    assert after and all(r.expires == 60 for r in after), [r.describe() for r in after]
    ok = next(a for a in sent if a.status == 200)
    assert next(r for r in regs if r.cseq == ok.cseq).expires == 60
    assert_one_dialog(regs, f"<sip:ratelab@{me}>")


def test_403_fails_then_retries_after_the_retry_delay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first authenticated REGISTER gets 403: the table says failing / 403; nothing is
    sent again before register_retry_delay (30 s); the retry then registers."""
    uas = registrar(tmp_path, forbid=1)
    sw = live(tmp_path / "sw", upstream("v1", uas.port, "register_retry_delay = 30\n"))
    with uas, sw.process():
        assert wait_until(lambda: answered(uas, 403) >= 1, timeout=10), uas.describe()
        assert wait_until(lambda: "failing" in upstream_row(sw.config_path, capsys, "v1"),
                          timeout=5)
        row = upstream_row(sw.config_path, capsys, "v1")
        assert "403" in row, row
        count = len(registers(uas))
        time.sleep(20)                                   # well inside the retry delay
        assert len(registers(uas)) == count, [r.describe() for r in registers(uas)[count:]]
        wait_registered(uas, timeout=25)
        assert wait_until(lambda: "registered" in upstream_row(sw.config_path, capsys, "v1")
                          .split(), timeout=5)
    regs, sent = registers(uas), answers(uas)
    refused = next(a for a in sent if a.status == 403)
    retry = next(r for r in regs if r.at > refused.at)
    assert retry.at - refused.at >= 29.5, (retry.at - refused.at, retry.describe())
    assert len({r.get("Call-ID") for r in regs}) == 1
    assert [r.cseq for r in regs] == list(range(regs[0].cseq, regs[0].cseq + len(regs)))


def test_wrong_password_fails_with_403_and_waits_the_retry_delay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verifyauth refuses the answer (403): failing / 403, and no new attempt at once."""
    uas = registrar(tmp_path, password="other")
    sw = live(tmp_path / "sw", upstream("v1", uas.port, "register_retry_delay = 30\n"))
    with uas, sw.process():
        assert wait_until(lambda: answered(uas, 403) >= 1, timeout=10), uas.describe()
        assert wait_until(lambda: "failing" in upstream_row(sw.config_path, capsys, "v1"),
                          timeout=5)
        row = upstream_row(sw.config_path, capsys, "v1")
        time.sleep(3)
        regs = registers(uas)
    assert "403" in row, row
    assert uas.snapshot().logged("auth")[0].endswith("valid=false")
    assert len(regs) == 2, [r.describe() for r in regs]


def test_sha256_qop_auth_challenge_verified_by_an_rfc7616_registrar(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Rfc7616Registrar() as reg:
        sw = live(tmp_path / "sw", upstream("v1", reg.port))
        with sw.process() as switch:
            assert wait_until(lambda: len(reg.verdicts) >= 1, timeout=10), reg.requests
            assert wait_until(lambda: "registered" in upstream_row(sw.config_path, capsys, "v1")
                              .split(), timeout=5), table(sw.config_path, capsys)
            udp = switch.udp_address
    assert reg.verdicts[0][1], reg.verdicts[0][2]
    # every REGISTER (the unregister on stop too) left from the switch's UDP listener
    assert set(reg.peers) == {udp}, (reg.peers, udp)
    assert all(valid for _, valid, _ in reg.verdicts), reg.verdicts


def test_no_answer_is_a_timeout_failure(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A registrar that never answers: the REGISTER is retransmitted (one transaction: same
    CSeq and branch) until timer F (64*T1: 6.4 s with ``[sip] t1 = 0.1``; 32 s by default),
    then the table says failing / timeout; never registered, so nothing is unregistered on
    stop."""
    with Rfc7616Registrar() as reg:
        reg.silent = True
        sw = live(tmp_path / "sw", upstream("v1", reg.port, "register_retry_delay = 30\n"),
                  sip="t1 = 0.1\n")
        with sw.process() as switch:
            started = time.monotonic()
            assert wait_until(lambda: "failing" in upstream_row(sw.config_path, capsys, "v1")
                              .split(), timeout=20), table(sw.config_path, capsys)
            failed_after = time.monotonic() - started
            row = upstream_row(sw.config_path, capsys, "v1")
            sent = list(reg.requests)
            assert switch.stop(timeout=20) == 0, switch.log_text()[-3000:]
    assert "timeout" in row, row
    assert 6.3 <= failed_after < 20, failed_after  # timer F = 64 * T1, not sooner
    assert len(sent) >= 5, sent
    transactions = {(*re.findall(r"\r\nCSeq: (\d+)", r), *re.findall(r"branch=([^;\s]+)", r))
                    for r in sent}
    assert len(transactions) == 1, transactions
    assert not any(re.search(r"\r\nExpires: 0\r\n", r) for r in reg.requests[len(sent):])
