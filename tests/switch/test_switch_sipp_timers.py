"""The switch's timer and in-dialog paths against the running process, between SIPp peers.

Each path here is also driven in-process (tests/switch/test_b2bua_*.py, with a clock number);
these tests check that the real process, its sockets and its clock do the same: call-progress
timeout, stop-gateway after an INVITE timeout, 2xx retransmission until the ACK (and the
missing-ACK end after 64*T1), re-INVITE and UPDATE relay, tech-prefix stripping. Each one
checks what the SIPp peers saw (their counters, logged events, messages) and the CDRs.

The missing-ACK test waits out the switch's 64*T1 = 32 s (T1 is not configurable), so this
file takes about 45 s, 32 of them in that test.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.switch.live import LiveSwitch, target, vendor
from tests.switch.sipp_runner import SippUas, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")

NUMBER = "447700900123"


def attempts(record: dict) -> list[tuple[str, int]]:
    return [(a["vendor"], a["sip_code"]) for a in record["attempts"]]


def test_ringing_past_call_progress_timeout_ends_the_call_with_480(tmp_path: Path) -> None:
    """Rings (180) and never answers: after call_progress_timeout the switch CANCELs the
    vendor and answers the customer 480; no failover once a vendor rang."""
    ringing = SippUas("uas_ring_cancel.xml", workdir=tmp_path / "ringing")
    spare = SippUas("uas_answer.xml", workdir=tmp_path / "spare")
    live = LiveSwitch(tmp_path / "sw", sip="invite_timeout = 2\ncall_progress_timeout = 2",
                      routing=vendor("v1", ringing.port, extra="priority = 1")
                      + vendor("v2", spare.port, '"44"', extra="priority = 2"))
    with ringing, spare, live.process() as switch:
        uac = run_uac("uac_expect_fail.xml", target(switch), calls=2, rate=10,
                      service=NUMBER, workdir=tmp_path / "uac", timeout=30)
    assert uac.final_codes == {480: 2}, uac.describe()
    assert uac.count(180) == 2, uac.counts                 # the ringing was relayed
    ok(ringing.result, 2)      # each got the CANCEL, answered 487 and got the ACK for it
    assert ringing.result is not None and ringing.result.count("CANCEL") == 2
    assert spare.result is not None and spare.result.count("INVITE") == 0, spare.result.counts
    records = live.cdrs()
    assert len(records) == 2
    for record in records:
        assert (record["sip_code"], record["disconnect_reason"]) == (480, "no_answer")
        assert attempts(record) == [("v1", 487)]
        assert record["vendor"] == "v1" and record["answer_ts"] is None


def test_stop_gateway_after_invite_timeout_skips_the_silent_vendor(tmp_path: Path) -> None:
    """The first call times out on the silent vendor and fails over; the next call, within
    stop_gateway_period, goes straight to the second vendor (the silent one gets 1 INVITE).
    Without the option both calls try it first: test_switch_sipp_calls.py,
    test_invite_timeout_cancels_and_fails_over."""
    silent = SippUas("uas_no_answer.xml", workdir=tmp_path / "silent")
    good = SippUas("uas_answer.xml", workdir=tmp_path / "good")
    live = LiveSwitch(tmp_path / "sw",
                      sip="invite_timeout = 1\ncall_progress_timeout = 10\n"
                          "stop_gateway_after_invite_timeout = true\nstop_gateway_period = 600",
                      routing=vendor("v1", silent.port, extra="priority = 1")
                      + vendor("v2", good.port, '"44"', extra="priority = 2"))
    with silent, good, live.process() as switch:
        first = run_uac("uac_basic.xml", target(switch), calls=1, duration_ms=100,
                        service=NUMBER, workdir=tmp_path / "first", timeout=30)
        second = run_uac("uac_basic.xml", target(switch), calls=1, duration_ms=100,
                         service=NUMBER, workdir=tmp_path / "second", timeout=30)
    ok(first, 1)
    ok(second, 1)
    ok(silent.result, 1)       # one INVITE, CANCELled at invite_timeout, its 487 ACKed
    assert silent.result is not None and silent.result.count("INVITE") == 1
    ok(good.result, 2)
    one, two = live.cdrs()
    assert attempts(one) == [("v1", 408), ("v2", 200)]
    assert attempts(two) == [("v2", 200)]
    assert [r["disconnect_reason"] for r in (one, two)] == ["caller_bye", "caller_bye"]


def test_200_is_retransmitted_until_a_late_ack(tmp_path: Path) -> None:
    """The customer ACKs only after it has received the 200 a second time."""
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        uac = run_uac("uac_late_ack.xml", target(switch), calls=2, rate=10, duration_ms=200,
                      service=NUMBER, extra=["-nr"], workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)       # each call waited for the retransmitted 200, then ACKed and hung up
    ok(uas.result, 2)
    assert len(uac.logged("retransmitted_200")) == 2, uac.logs
    records = live.cdrs()
    assert len(records) == 2
    for record in records:
        assert (record["sip_code"], record["disconnect_reason"]) == (200, "caller_bye")
        assert record["answer_ts"] is not None and attempts(record) == [("v1", 200)]


def test_no_ack_for_the_200_ends_the_call_with_bye_on_both_legs(tmp_path: Path) -> None:
    """No ACK at all: the switch resends its 200 (T1 doubling to T2) and after 64*T1 sends BYE
    to both legs; the CDR says error. ``[sip] t1 = 0.1`` makes that 6.4 s instead of 32."""
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port),
                      sip="invite_timeout = 2\ncall_progress_timeout = 10\nt1 = 0.1")
    with uas, live.process() as switch:
        uac = run_uac("uac_no_ack.xml", target(switch), calls=1, service=NUMBER,
                      workdir=tmp_path / "uac", timeout=90)
    ok(uac, 1)                 # the customer got the switch's BYE and answered it
    ok(uas.result, 1)          # so did the vendor
    assert len(uac.logged("bye")) == 1, uac.logs
    # 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s: a few copies prove the schedule goes on
    assert uac.count(200, "Retrans") >= 3, uac.counts
    [record] = live.cdrs()
    assert (record["sip_code"], record["disconnect_reason"]) == (200, "error")
    # hung up after 64*T1 = 6.4 s of the 200 waiting for its ACK (not the default's 32 s)
    held = (_ts(record["end_ts"]) - _ts(record["answer_ts"])).total_seconds()
    assert 6.3 <= held < 12, held
    assert record["answer_ts"] is not None and attempts(record) == [("v1", 200)]


def test_reinvite_and_update_are_relayed_both_ways(tmp_path: Path) -> None:
    """In an answered call the customer's re-INVITE (hold) and UPDATE (resume) reach the vendor
    with their SDP, on the vendor's own dialog, and the vendor's 200s come back with theirs."""
    uas = SippUas("uas_reinvite.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        uac = run_uac("uac_reinvite.xml", target(switch), calls=2, rate=10, duration_ms=200,
                      service=NUMBER, workdir=tmp_path / "uac", timeout=30)
    ok(uac, 2)
    ok(uas.result, 2)
    assert uas.result is not None
    # the scenarios check each body (a=sendonly / a=recvonly, a=sendrecv / s=resumed)
    assert len(uas.result.logged("reinvite")) == 2 and len(uas.result.logged("update")) == 2
    assert len(uac.logged("reinvite_ok")) == 2 and len(uac.logged("update_ok")) == 2
    assert uas.result.count("INVITE") == 4      # 2 calls + 2 re-INVITEs (not retransmissions)
    assert uas.result.count("UPDATE") == 2
    # the vendor's dialogs are the switch's, not the customer's (a B2BUA, not a proxy)
    customer_call_ids = {r["call_id"] for r in live.cdrs()}
    vendor_call_ids = {line.split("call=", 1)[1].split(" ", 1)[0]
                       for line in uas.result.logged("reinvite")}
    assert len(vendor_call_ids) == 2 and not vendor_call_ids & customer_call_ids
    records = live.cdrs()
    assert len(records) == 2
    for record in records:
        assert (record["sip_code"], record["disconnect_reason"]) == (200, "caller_bye")
        assert attempts(record) == [("v1", 200)]


def test_tech_prefix_is_stripped_towards_the_vendor(tmp_path: Path) -> None:
    """A customer with tech_prefix "900" dials 900447700900123: the vendor is asked for
    447700900123; the CDR keeps the number as dialled and the stripped one."""
    uas = SippUas("uas_log_invite.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), customers=(
        '[[mapping_gateway]]\nname = "acme"\naddresses = ["127.0.0.1"]\ntech_prefix = "900"\n'))
    with uas, live.process() as switch:
        uac = run_uac("uac_basic.xml", target(switch), calls=1, duration_ms=100,
                      service="900" + NUMBER, workdir=tmp_path / "uac", timeout=30)
    ok(uac, 1)
    ok(uas.result, 1)
    assert uas.result is not None
    [line] = uas.result.logged("invite")
    assert f" ruri=sip:{NUMBER}@{uas.address} " in line, line
    assert f"<sip:{NUMBER}@{uas.address}>" in line.split(" to=", 1)[1], line
    [record] = live.cdrs()
    assert record["customer"] == "acme" and record["vendor"] == "v1"
    assert record["callee"] == "900" + NUMBER and record["callee_e164"] == NUMBER
    assert record["disconnect_reason"] == "caller_bye"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
