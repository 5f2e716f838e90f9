"""The real switch under signals while SIPp traffic runs: reload, drain, crash and recovery."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ratelab import connect
from tests.switch.live import LiveSwitch, target, vendor, wait_until
from tests.switch.sipp_runner import SippResult, SippUas, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")


def in_background(**kwargs) -> tuple[threading.Thread, list[SippResult]]:
    results: list[SippResult] = []
    thread = threading.Thread(target=lambda: results.append(run_uac(**kwargs)))
    thread.start()
    return thread, results


def test_sighup_reload_mid_traffic_drops_no_call(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        thread, results = in_background(
            scenario="uac_basic.xml", target=target(switch), calls=40, rate=20,
            duration_ms=500, service="447700900123", workdir=tmp_path / "uac", timeout=60)
        # mid-traffic: the first calls are done (40 at 20 cps take two seconds to place)
        assert wait_until(lambda: len(live.cdrs()) >= 5, timeout=30), live.cdrs()
        live.snapshot["customers"]["acme"]["1"] = "0.0200"   # a price change, reloaded
        live.write()
        switch.reload()
        assert wait_until(lambda: "reloaded" in switch.log_text())
        switch.reload()                                     # and once more for good measure
        thread.join(60)
    ok(results[0], 40)
    assert Counter(r["disconnect_reason"] for r in live.cdrs()) == {"caller_bye": 40}


def test_sigterm_drains_then_hangs_up_after_the_grace_period(tmp_path: Path) -> None:
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port), grace=1.0)
    with uas:
        switch = live.process().start()
        long_calls, long_results = in_background(
            scenario="uac_wait_bye.xml", target=target(switch), calls=3, rate=10,
            service="447700900123", workdir=tmp_path / "long", timeout=60)
        short_calls, short_results = in_background(
            scenario="uac_basic.xml", target=target(switch), calls=3, rate=10,
            duration_ms=600, service="447700900123", workdir=tmp_path / "short", timeout=60)
        # all six calls are up: the vendor has the switch's ACK for each of its 200s (counted
        # once per call; SIPp's counters are dumped every 200 ms). Whether the short calls end
        # before or after the SIGTERM, they end by themselves: caller_bye.
        assert wait_until(lambda: uas.snapshot().count("ACK") >= 6, timeout=30)
        host, port = switch.udp_address
        switch.terminate()              # SIGTERM: drain
        assert wait_until(lambda: "draining:" in switch.log_text())
        late = run_uac("uac_expect_fail.xml", f"{host}:{port}", calls=1,
                       service="447700900123", workdir=tmp_path / "late", timeout=20)
        assert switch.stop() == 0
        long_calls.join(60)
        short_calls.join(60)
    assert late.final_codes == {503: 1}, late.describe()
    ok(short_results[0], 3)            # finished on their own within the grace period
    ok(long_results[0], 3)             # got the switch's BYE when the grace period ended
    reasons = Counter(r["disconnect_reason"] for r in live.cdrs())
    assert reasons == {"caller_bye": 3, "shutdown": 4}  # 3 hung up + the late 503


def test_kill_9_mid_traffic_then_restart_and_ingest(tmp_path: Path) -> None:
    # calls cut off by the crash stay open at this vendor: stop it without waiting for them
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas", stop_timeout=2)
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas:
        switch = live.process().start()
        thread, results = in_background(
            scenario="uac_basic.xml", target=target(switch), calls=400, rate=100,
            duration_ms=200, service="447700900123", workdir=tmp_path / "uac", timeout=8)
        assert wait_until(lambda: len(live.cdrs()) >= 100, timeout=20)
        workers = _children(switch.pid)        # its media relay processes
        assert workers, "the switch runs a local media relay"
        switch.kill()                          # mid-traffic, mid-write perhaps
        thread.join(60)
        # kill -9 leaves no relay behind holding its ports (they die with the switch)
        assert wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=10)
        # a new process on the same spool: it repairs a torn last line, then carries calls
        with live.process() as again:
            after = run_uac("uac_basic.xml", target(again), calls=5, rate=10, duration_ms=100,
                            service="447700900123", workdir=tmp_path / "after", timeout=20)
    ok(after, 5)
    completed = results[0].successful          # calls whose BYE got its 200: acknowledged
    records = live.cdrs()                      # every line parses: nothing half-written
    ids = [r["cdr_id"] for r in records]
    assert len(ids) == len(set(ids)), "no duplicate CDR"
    assert sum(r["disconnect_reason"] == "caller_bye" for r in records) >= completed + 5
    wh = connect(tmp_path / "w.duckdb", create=True)
    summary = wh.ingest(live.spool)
    assert summary.quarantined == 0
    assert wh.sql("SELECT count(*) AS n FROM cdrs")["n"][0] == len(records)
    assert wh.ingest(live.spool).added == 0    # idempotent


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        # the fields after the command name, which may hold spaces: state, ppid, ...
        if entry.isdigit() and stat.rsplit(")", 1)[1].split()[1] == str(pid):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def test_sigterm_repeated_until_it_exits_still_exits_0(tmp_path: Path) -> None:
    """A supervisor that keeps sending SIGTERM (systemd's stop, an impatient operator) must not
    turn a clean stop into a kill: every window of the stop, the last moments of the exit
    included, takes a repeated SIGTERM."""
    live = LiveSwitch(tmp_path / "sw", grace=0.2)
    switch = live.process().start()
    for _ in range(4000):  # bounded: the stop takes well under a second
        if not switch.running:
            break
        try:
            os.kill(switch.pid, signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.001)
    assert switch.stop() == 0, switch.log_text()[-2000:]
