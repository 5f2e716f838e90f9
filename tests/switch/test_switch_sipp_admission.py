"""The real switch between real SIPp peers: customer authentication and per-customer limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.switch.live import LiveSwitch, target, vendor
from tests.switch.sipp_runner import SippUas, free_port, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")


def test_ip_port_customers_are_told_apart_by_source_port(tmp_path: Path) -> None:
    known = free_port()
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        f'[[mapping_gateway]]\nname = "portco"\nauth = "ip_port"\n'
        f'addresses = ["127.0.0.1:{known}"]\n'))
    with uas, live.process() as switch:
        admitted = run_uac("uac_basic.xml", target(switch), calls=2, rate=10, duration_ms=200,
                           local_port=known, service="447700900123",
                           workdir=tmp_path / "known", timeout=30)
        refused = run_uac("uac_expect_fail.xml", target(switch), calls=1,
                          service="447700900123", workdir=tmp_path / "other", timeout=30)
    ok(admitted, 2)
    assert refused.final_codes == {403: 1}, refused.describe()
    # the unknown source gets no CDR: it is nobody's call
    assert [r["customer"] for r in live.cdrs()] == ["portco", "portco"]


def test_digest_password_customer(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        '[[mapping_gateway]]\nname = "authco"\nauth = "password"\npassword = "s3cret"\n'
        # SIPp 3.6.1 answers only the first challenge, and only in MD5.
        '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n'))
    with uas, live.process() as switch:
        good = run_uac("uac_auth.xml", target(switch), calls=2, rate=10, duration_ms=200,
                       auth=("authco", "s3cret"), service="447700900123",
                       workdir=tmp_path / "good", timeout=30)
        bad = run_uac("uac_auth.xml", target(switch), calls=1, auth=("authco", "wrong"),
                      service="447700900123", workdir=tmp_path / "bad", timeout=30)
    ok(good, 2)
    assert bad.successful == 0 and bad.failed == 1, bad.describe()
    reasons = Counter((r["customer"], r["disconnect_reason"]) for r in live.cdrs())
    assert reasons == {("authco", "caller_bye"): 2, ("authco", "auth_failed"): 1}


def test_cps_limit_answers_503(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        '[[mapping_gateway]]\nname = "acme"\naddresses = ["127.0.0.1"]\ncps_limit = 5\n'))
    with uas, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch), calls=30, rate=30, duration_ms=100,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    reasons = Counter(r["disconnect_reason"] for r in live.cdrs())
    assert sum(reasons.values()) == 30
    assert reasons["cps_limit"] > 0 and reasons["caller_bye"] >= 5
    assert reasons["caller_bye"] == uac.successful and reasons["cps_limit"] == uac.failed
    assert all(r["sip_code"] == 503 for r in live.cdrs()
               if r["disconnect_reason"] == "cps_limit")


def test_max_concurrent_answers_503(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        '[[mapping_gateway]]\nname = "acme"\naddresses = ["127.0.0.1"]\nmax_concurrent = 3\n'))
    with uas, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch), calls=8, rate=20, duration_ms=1500,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    reasons = Counter(r["disconnect_reason"] for r in live.cdrs())
    assert reasons["concurrency_limit"] > 0 and reasons["caller_bye"] >= 3
    assert reasons["caller_bye"] == uac.successful
    assert reasons["caller_bye"] + reasons["concurrency_limit"] == 8
