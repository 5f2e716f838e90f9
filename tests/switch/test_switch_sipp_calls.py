"""The real switch process between real SIPp peers on 127.0.0.1: call paths and failover.

SIPp plays the customer (UAC) and the vendors (UAS); the switch runs as a subprocess
(ratelab.SwitchProcess) with a config and routing snapshot written per test (tests/switch/live.py).
Every test checks what SIPp saw and the CDRs the switch wrote.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.switch.live import LiveSwitch, target, vendor
from tests.switch.sipp_runner import SippUas, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")


def answered_ms(record: dict) -> int:
    """answer_ts to end_ts of a CDR, in whole milliseconds (what duration_ms must say)."""
    answer = datetime.fromisoformat(record["answer_ts"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(record["end_ts"].replace("Z", "+00:00"))
    return (end - answer) // timedelta(milliseconds=1)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_basic_calls_with_their_cdrs(tmp_path: Path, transport: str) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch, transport), calls=3, rate=10,
                      duration_ms=300, transport=transport, service="447700900123",
                      workdir=tmp_path / "uac", timeout=30)
    ok(uac, 3)
    ok(uas.result, 3)
    cdrs = live.cdrs()
    assert len(cdrs) == 3 and len({r["cdr_id"] for r in cdrs}) == 3
    for record in cdrs:
        assert record["customer"] == "acme" and record["vendor"] == "v1"
        assert record["disconnect_reason"] == "caller_bye" and record["sip_code"] == 200
        assert record["callee_e164"] == "447700900123" and record["codec"] == "PCMA"
        assert record["duration_ms"] >= 250    # SIPp held the call 300 ms
        assert abs(record["duration_ms"] - answered_ms(record)) <= 1
        assert [a["vendor"] for a in record["attempts"]] == ["v1"]


def test_callee_hangs_up(tmp_path: Path) -> None:
    uas = SippUas("uas_callee_bye.xml", duration_ms=300, workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        uac = run_uac("uac_wait_bye.xml", target(switch), calls=2, rate=10,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)
    ok(uas.result, 2)
    assert [r["disconnect_reason"] for r in live.cdrs()] == ["callee_bye"] * 2


def test_cancel_before_answer_is_propagated(tmp_path: Path) -> None:
    uas = SippUas("uas_ring_cancel.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        uac = run_uac("uac_cancel.xml", target(switch), calls=2, rate=10,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)
    ok(uas.result, 2)   # the vendor saw the CANCEL, answered 487 and got its ACK
    for record in live.cdrs():
        assert (record["sip_code"], record["disconnect_reason"]) == (487, "no_answer")
        assert record["answer_ts"] is None and record["pdd_ms"] > 0


def test_vendor_503_fails_over_to_the_next(tmp_path: Path) -> None:
    bad = SippUas("uas_reject.xml", variables={"code": 503}, workdir=tmp_path / "bad")
    good = SippUas("uas_answer.xml", workdir=tmp_path / "good")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", bad.port, extra="priority = 1")
                      + vendor("v2", good.port, '"44"', extra="priority = 2"))
    with bad, good, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch), calls=3, rate=10, duration_ms=200,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    ok(uac, 3)
    ok(good.result, 3)
    for record in live.cdrs():
        assert [(a["vendor"], a["sip_code"]) for a in record["attempts"]] == \
            [("v1", 503), ("v2", 200)]
        assert record["vendor"] == "v2"


def test_invite_timeout_cancels_and_fails_over(tmp_path: Path) -> None:
    silent = SippUas("uas_no_answer.xml", workdir=tmp_path / "silent")
    good = SippUas("uas_answer.xml", workdir=tmp_path / "good")
    live = LiveSwitch(tmp_path / "sw", sip="invite_timeout = 1\ncall_progress_timeout = 10",
                      routing=vendor("v1", silent.port, extra="priority = 1")
                      + vendor("v2", good.port, '"44"', extra="priority = 2"))
    with silent, good, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch), calls=2, rate=10, duration_ms=200,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)
    ok(silent.result, 2)   # each timed-out INVITE was CANCELled, 487 ACKed
    for record in live.cdrs():
        assert [(a["vendor"], a["sip_code"]) for a in record["attempts"]] == \
            [("v1", 408), ("v2", 200)]
        assert record["pdd_ms"] >= 1000


def test_huntstop_code_ends_the_hunt(tmp_path: Path) -> None:
    busy = SippUas("uas_reject.xml", variables={"code": 486}, workdir=tmp_path / "busy")
    spare = SippUas("uas_answer.xml", workdir=tmp_path / "spare")
    live = LiveSwitch(tmp_path / "sw",
                      routing=vendor("v1", busy.port, extra="huntstop_codes = [486]")
                      + vendor("v2", spare.port, '"44"', extra="priority = 2"))
    with busy, spare, live.process() as switch:
        uac = run_uac("uac_expect_fail.xml", target(switch), calls=2, rate=10,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    assert uac.final_codes == {486: 2}, uac.describe()
    assert spare.result is not None and spare.result.successful == 0
    assert [r["disconnect_reason"] for r in live.cdrs()] == ["busy", "busy"]


def test_no_route_and_profit_limit(tmp_path: Path) -> None:
    dear = SippUas("uas_answer.xml", workdir=tmp_path / "dear")
    live = LiveSwitch(tmp_path / "sw", routing=vendor(
        "dear", dear.port, '"44"', extra='lowest_profit_per_second = "0.0001"'))
    with dear, live.process() as switch:
        no_route = run_uac("uac_expect_fail.xml", target(switch), calls=1,
                           service="8613800138000", workdir=tmp_path / "uac1", timeout=20)
        limited = run_uac("uac_expect_fail.xml", target(switch), calls=1,
                          service="447700900123", workdir=tmp_path / "uac2", timeout=20)
    assert no_route.final_codes == {404: 1}, no_route.describe()
    assert limited.final_codes == {503: 1}, limited.describe()
    assert [(r["sip_code"], r["disconnect_reason"], r["vendor"]) for r in live.cdrs()] == \
        [(404, "no_route", None), (503, "profit_limit", None)]


def test_max_duration_sends_bye_to_both_legs(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        '[[mapping_gateway]]\nname = "acme"\naddresses = ["127.0.0.1"]\nmax_duration = 1\n'))
    with uas, live.process() as switch:
        uac = run_uac("uac_wait_bye.xml", target(switch), calls=2, rate=10,
                      service="447700900123", workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)
    ok(uas.result, 2)  # the vendor got a BYE too
    assert all(ms >= 900 for ms in uac.bye_after_ms), uac.bye_after_ms
    for record in live.cdrs():
        assert record["disconnect_reason"] == "max_duration"
        assert record["duration_ms"] >= 1000   # max_duration = 1 s, never earlier
        assert abs(record["duration_ms"] - answered_ms(record)) <= 1
