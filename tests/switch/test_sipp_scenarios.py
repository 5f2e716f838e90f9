"""The SIPp scenarios of tests/switch/sipp/, played SIPp against SIPp on 127.0.0.1 (no switch).

Proves each UAC/UAS pair is a correct SIP exchange before the switch sits in between. SIPp
must be installed (Debian package sip-tester): without it these tests fail, never skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.switch.sipp_runner import (
    SippResult,
    SippUas,
    digest_ok,
    proxy_authorizations,
    run_uac,
)

pytestmark = pytest.mark.usefixtures("sipp_installed")


def _ok(result: SippResult | None, calls: int) -> None:
    assert result is not None
    assert result.returncode == 0 and result.successful == calls and result.failed == 0, (
        result.describe()
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_basic_call(tmp_path: Path, transport: str) -> None:
    with SippUas("uas_answer.xml", transport=transport, workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_basic.xml", uas.address, calls=3, rate=20, duration_ms=200,
                      transport=transport, workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 3)
    _ok(uas.result, 3)


def test_caller_is_settable(tmp_path: Path) -> None:
    with SippUas("uas_answer.xml", workdir=tmp_path / "uas", trace_msg=True) as uas:
        uac = run_uac("uac_basic.xml", uas.address, calls=1, duration_ms=100,
                      variables={"caller": "4420790001"}, workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 1)
    assert uas.result is not None and uas.result.message_file is not None
    assert "From: <sip:4420790001@" in uas.result.message_file.read_text()


def test_cancel_while_ringing(tmp_path: Path) -> None:
    with SippUas("uas_ring_cancel.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_cancel.xml", uas.address, calls=2, rate=20,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    assert uac.final_codes == {487: 2}, uac.describe()
    _ok(uas.result, 2)


@pytest.mark.parametrize("code", [503, 486])
def test_reject_code_is_visible(tmp_path: Path, code: int) -> None:
    with SippUas("uas_reject.xml", variables={"code": code}, workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_expect_fail.xml", uas.address, calls=2, rate=20,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    assert uac.final_codes == {code: 2}, uac.describe()
    _ok(uas.result, 2)


def test_unexpected_answer_is_a_failure_with_its_code(tmp_path: Path) -> None:
    with SippUas("uas_answer.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_expect_fail.xml", uas.address, calls=1,
                      workdir=tmp_path / "uac", timeout=20)
    assert uac.returncode == 1 and uac.failed == 1, uac.describe()
    assert uac.final_codes == {} and uac.unexpected_codes == {200: 1}, uac.describe()


def test_no_answer_then_cancel(tmp_path: Path) -> None:
    with SippUas("uas_no_answer.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_cancel_early.xml", uas.address, calls=2, rate=20,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    assert uac.final_codes == {487: 2}, uac.describe()
    _ok(uas.result, 2)


def test_early_cancel_tolerates_ringing(tmp_path: Path) -> None:
    with SippUas("uas_ring_cancel.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_cancel_early.xml", uas.address, calls=1,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 1)
    _ok(uas.result, 1)


def test_callee_hangs_up(tmp_path: Path) -> None:
    with SippUas("uas_callee_bye.xml", duration_ms=300, workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_wait_bye.xml", uas.address, calls=2, rate=20,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    _ok(uas.result, 2)
    assert len(uac.bye_after_ms) == 2, uac.describe()
    assert all(250 <= ms < 2000 for ms in uac.bye_after_ms), uac.bye_after_ms


def test_auth_407_credentials_are_right(tmp_path: Path) -> None:
    with SippUas("uas_challenge.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_auth.xml", uas.address, calls=2, rate=20, duration_ms=100,
                      auth=("acme", "s3cret"), workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    assert uas.result is not None
    _ok(uas.result, 2)
    creds = proxy_authorizations(uas.result.logs)
    assert len(creds) == 2, uas.result.logs
    assert all('username="acme"' in c and digest_ok(c, password="s3cret") for c in creds), creds
    assert not digest_ok(creds[0], password="wrong")


@pytest.mark.parametrize(("password", "good"), [("secret", True), ("wrong", False)])
def test_auth_401_verified_by_sipp(tmp_path: Path, password: str, good: bool) -> None:
    with SippUas("uas_challenge_401.xml", variables={"user": "acme", "password": "secret"},
                 workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_auth.xml", uas.address, calls=1, duration_ms=100,
                      auth=("acme", password), workdir=tmp_path / "uac", timeout=20)
    if good:
        _ok(uac, 1)
        _ok(uas.result, 1)
    else:
        assert uac.failed == 1 and uac.unexpected_codes == {403: 1}, uac.describe()


def test_uas_answer_under_load(tmp_path: Path) -> None:
    """uas_answer.xml with -m unset serves a burst of concurrent calls (benchmark shape)."""
    with SippUas("uas_answer.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_basic.xml", uas.address, calls=200, rate=200, limit=400,
                      duration_ms=500, workdir=tmp_path / "uac", timeout=30)
    _ok(uac, 200)
    _ok(uas.result, 200)


def test_late_ack_waits_for_the_200_retransmission(tmp_path: Path) -> None:
    """uac_late_ack.xml (with -nr) ACKs only once uas_answer.xml has resent its 200."""
    with SippUas("uas_answer.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_late_ack.xml", uas.address, calls=2, rate=20, duration_ms=100,
                      extra=["-nr"], workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    _ok(uas.result, 2)
    assert len(uac.logged("retransmitted_200")) == 2, uac.describe()
    assert uas.result is not None and uas.result.count(200, "Retrans") >= 2, uas.result.counts


def test_late_ack_without_nr_never_sees_the_retransmission(tmp_path: Path) -> None:
    """Why uac_late_ack.xml needs -nr: SIPp absorbs the repeated 200 (counted as Retrans)."""
    with SippUas("uas_answer.xml", workdir=tmp_path / "uas", stop_timeout=1) as uas:
        # the global -timeout (2 s) ends the run; the scenario's own wait would be 10 s
        uac = run_uac("uac_late_ack.xml", uas.address, calls=1, duration_ms=100,
                      workdir=tmp_path / "uac", timeout=2)
    assert uac.returncode != 0 and uac.successful == 0, uac.describe()
    assert uac.logged("retransmitted_200") == [], uac.logs
    assert uac.count(200, "Retrans") >= 1, uac.counts


def test_no_ack_customer_gets_the_bye(tmp_path: Path) -> None:
    with SippUas("uas_no_ack_bye.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_no_ack.xml", uas.address, calls=2, rate=20,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    _ok(uas.result, 2)
    assert len(uac.logged("bye")) == 2, uac.describe()
    assert uac.count(200, "Retrans") == 2, uac.counts   # the one resent 200 of each call


def test_no_ack_bye_fails_a_call_that_is_acked(tmp_path: Path) -> None:
    with SippUas("uas_no_ack_bye.xml", workdir=tmp_path / "uas") as uas:
        # the customer waits for a BYE that never comes: its run ends at the global -timeout
        run_uac("uac_wait_bye.xml", uas.address, calls=1, workdir=tmp_path / "uac", timeout=2)
    assert uas.result is not None and uas.result.failed == 1, uas.result.describe()
    assert len(uas.result.logged("unexpected_ack")) == 1, uas.result.logs


def test_reinvite_and_update_within_a_call(tmp_path: Path) -> None:
    with SippUas("uas_reinvite.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_reinvite.xml", uas.address, calls=2, rate=20, duration_ms=100,
                      workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 2)
    _ok(uas.result, 2)
    assert uas.result is not None
    assert len(uas.result.logged("reinvite")) == 2 and len(uas.result.logged("update")) == 2
    assert len(uac.logged("reinvite_ok")) == 2 and len(uac.logged("update_ok")) == 2


def test_log_invite_records_the_request_uri(tmp_path: Path) -> None:
    with SippUas("uas_log_invite.xml", workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_basic.xml", uas.address, calls=1, duration_ms=100,
                      service="900447700900123", workdir=tmp_path / "uac", timeout=20)
    _ok(uac, 1)
    _ok(uas.result, 1)
    assert uas.result is not None
    [line] = uas.result.logged("invite")
    assert f" ruri=sip:900447700900123@{uas.address} " in line, line


@pytest.mark.parametrize(("password", "code"), [("secret", 200), ("wrong", 403)])
def test_register_verified_by_sipp(tmp_path: Path, password: str, code: int) -> None:
    """uac_register.xml against uas_registrar.xml: SIPp's own digest, checked by verifyauth."""
    with SippUas("uas_registrar.xml", variables={"user": "gw1", "password": "secret"},
                 workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_register.xml", uas.address, calls=1, service="gw1",
                      auth=("gw1", password), workdir=tmp_path / "uac", timeout=20)
    assert uac.final_codes == {code: 1}, uac.describe()
    assert uas.result is not None
    assert f"valid={'true' if code == 200 else 'false'}" in uas.result.logs, uas.result.logs


def test_register_replay_sends_the_given_authorization(tmp_path: Path) -> None:
    """uac_register_replay.xml puts -set authz in its Authorization header, verbatim."""
    authz = 'Digest username="gw1", realm="r", nonce="n1", uri="sip:x", response="abc"'
    with SippUas("uas_register_once.xml", calls=1, workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_register_replay.xml", uas.address, calls=1, service="gw1",
                      variables={"authz": authz}, workdir=tmp_path / "uac", timeout=20)
    assert uac.final_codes == {403: 1}, uac.describe()
    assert uas.result is not None
    assert f"authz={authz}" in uas.result.logs, uas.result.logs


def test_register_star_sends_contact_star(tmp_path: Path) -> None:
    """uac_register.xml with -set star 1: the answered REGISTER says Contact: *."""
    with SippUas("uas_registrar.xml", variables={"user": "gw1", "password": "secret"},
                 trace_msg=True, workdir=tmp_path / "uas") as uas:
        uac = run_uac("uac_register.xml", uas.address, calls=1, service="gw1",
                      auth=("gw1", "secret"), variables={"star": 1, "expires": 0},
                      workdir=tmp_path / "uac", timeout=20)
    assert uac.final_codes == {200: 1}, uac.describe()
    assert uas.result is not None and uas.result.message_file is not None
    text = uas.result.message_file.read_text()
    assert "Contact: *" in text and "Expires: 0" in text
