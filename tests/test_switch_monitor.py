"""spool_stats on hand-written spool files, the monitor on the admin API's /metrics, and the
monitor against a real running switch."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

import pytest

from ratelab.widgets import SpoolTail, SwitchMonitor, spool_dir_of, spool_stats
from tests.switch.live import LiveSwitch, invite_status, wait_until

T0 = "2026-11-02T10:00:{:02d}.000000Z"


def cdr(cdr_id: str, start: int, end: int, answered: bool = True) -> dict:
    return {"cdr_id": cdr_id, "switch_id": "sw1", "customer": "acme",
            "start_ts": T0.format(start), "end_ts": T0.format(end),
            "answer_ts": T0.format(start) if answered else None,
            "duration_ms": (end - start) * 1000 if answered else 0,
            "sip_code": 200 if answered else 486}


def line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def at(second: int) -> datetime:
    return datetime(2026, 11, 2, 10, 0, second)


@pytest.fixture
def spool(tmp_path):
    path = tmp_path / "spool"
    path.mkdir()
    return path


def test_stats_per_second_asr_and_concurrency(spool):
    # A 0-30 s answered, B 10-20 s answered, C 15-15 s rejected (no duration: not concurrent)
    text = "".join(line(r) for r in (cdr("A", 0, 30), cdr("B", 10, 20),
                                     cdr("C", 15, 15, answered=False)))
    (spool / "cdr-sw1-b1-000001.jsonl").write_text(text)
    stats = spool_stats(spool, now=at(40), window_s=40, tail=SpoolTail(spool))
    assert (stats.calls, stats.answered, stats.asr) == (3, 2, pytest.approx(2 / 3))
    assert stats.cps == pytest.approx(3 / 40) and stats.now == at(40)
    per = {row["second"].second: row for row in stats.per_second.iter_rows(named=True)}
    assert stats.per_second.height == 40
    assert (per[15]["completed"], per[15]["answered"]) == (1, 0)
    assert (per[20]["completed"], per[30]["completed"], per[29]["completed"]) == (1, 1, 0)
    assert [per[s]["concurrent"] for s in (0, 9, 10, 15, 19, 20, 29, 30)] == \
        [1, 1, 2, 2, 2, 1, 1, 0]
    assert (stats.concurrent, stats.concurrent_peak) == (0, 2)
    # a shorter window (seconds 14-20) sees C and B only
    late = spool_stats(spool, now=at(21), window_s=7, tail=SpoolTail(spool))
    assert (late.calls, late.answered, late.asr) == (2, 1, 0.5)


def test_torn_last_line_is_held_back_until_complete(spool):
    path = spool / "cdr-sw1-b1-000001.jsonl"
    whole, torn = line(cdr("A", 0, 5)), line(cdr("B", 1, 6))
    path.write_text(whole + torn[:25])
    tail = SpoolTail(spool)
    stats = spool_stats(spool, now=at(10), window_s=10, tail=tail)
    assert (stats.calls, stats.pending_bytes, stats.bad_lines) == (1, 25, 0)
    with path.open("a") as fh:
        fh.write(torn[25:])
    stats = spool_stats(spool, now=at(10), window_s=10, tail=tail)
    assert (stats.calls, stats.pending_bytes, stats.lines) == (2, 0, 2)


def test_reads_are_incremental_across_files_and_polls(spool):
    tail = SpoolTail(spool)
    first = spool / "cdr-sw1-b1-000001.jsonl"
    first.write_text(line(cdr("A", 0, 1)) + "not json\n")
    assert tail.poll() == 1 and tail.offsets[first] == first.stat().st_size
    assert tail.bad_lines == 1
    assert tail.poll() == 0 and tail.lines == 2               # nothing new: nothing read
    with first.open("a") as fh:
        fh.write(line(cdr("B", 1, 2)))
    (spool / "cdr-sw1-b1-000002.jsonl").write_text(line(cdr("C", 2, 3)))
    (spool / "notes.txt").write_text("ignored\n")
    assert tail.poll() == 2 and tail.lines == 4
    # crash recovery rewrites a file shorter: it is read again, the ids are not counted twice
    first.write_text(line(cdr("A", 0, 1)))
    assert tail.poll() == 0
    assert tail.stats(at(10), 10).calls == 3


def test_old_calls_are_pruned(spool):
    tail = SpoolTail(spool, retain_s=10)
    (spool / "cdr-sw1-b1-000001.jsonl").write_text(
        line(cdr("A", 0, 50)) + line(cdr("B", 1, 2)) + line(cdr("C", 40, 45)))
    tail.poll()
    stats = tail.stats(at(50), 10)    # B (ended at 2) is gone; A runs on, C over 40-44
    assert stats.per_second["concurrent"].to_list() == [2] * 5 + [1] * 5
    assert (stats.concurrent, stats.concurrent_peak) == (1, 2)
    assert len(tail._ends) == 2 and len(tail._starts) == 2


def test_monitor_on_a_spool_directory(spool):
    (spool / "cdr-sw1-b1-000001.jsonl").write_text(line(cdr("A", 0, 5)))
    monitor = SwitchMonitor(spool, interval=0.05, window_s=10)
    stats = monitor.refresh(now=at(8))
    assert stats.calls == 1 and "Last 10 s" in monitor.figure.layout.title.text
    assert '<td class="n">1</td>' in monitor.table.value and monitor.chart.outputs
    monitor.start()
    assert monitor.running and monitor.toggle.value
    count = monitor.refreshes
    assert wait_until(lambda: monitor.refreshes > count + 2, timeout=5)
    monitor.stop()
    assert not monitor.running and monitor.status.value.startswith("stopped")


def test_spool_dir_of_a_relative_config(tmp_path):
    config = tmp_path / "switch.toml"
    config.write_text('[switch]\nid = "sw1"\nspool_dir = "cdrs"\n')
    from ratelab import SwitchProcess
    assert spool_dir_of(SwitchProcess(config, cwd=tmp_path)) == tmp_path / "cdrs"
    assert spool_dir_of(tmp_path) == tmp_path


def test_monitor_sees_the_calls_of_a_running_switch(tmp_path):
    live = LiveSwitch(tmp_path)
    with live.process() as switch:
        monitor = SwitchMonitor(switch, interval=0.1)
        assert monitor.spool_dir == live.spool
        monitor.start()
        host, port = switch.udp_address
        # no vendors: every INVITE gets 404 no_route, and a CDR
        assert [invite_status(host, port, "447700900123", f"m{i}") for i in range(3)] == \
            [404] * 3
        assert wait_until(lambda: monitor.stats.calls == 3, timeout=10), monitor.stats
        assert (monitor.stats.answered, monitor.stats.asr) == (0, 0.0)
        assert monitor.stats.files == 1 and monitor.running
    # the switch has exited: the monitor stops by itself after a last round
    assert wait_until(lambda: not monitor.running, timeout=10)
    assert not monitor.toggle.value and "stopped" in monitor.status.value
    assert len(live.cdrs()) == 3


@contextmanager
def admin_in_thread(source, **settings):
    """The admin API on loopback, served from its own event loop in a thread (the monitor's
    reads are blocking); yields the server."""
    from switch.admin import start_admin
    from switch.config_types import AdminSettings

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    config = AdminSettings(**{"listen": "127.0.0.1:0", **settings})
    server = asyncio.run_coroutine_threadsafe(start_admin(config, source), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_monitor_reads_the_admin_metrics(spool):
    from tests.switch.test_admin import SNAPSHOT, Source

    (spool / "cdr-sw1-b1-000001.jsonl").write_text(line(cdr("A", 0, 5)))
    source = Source()
    with admin_in_thread(source) as server:
        monitor = SwitchMonitor(spool, interval=0.05, admin_url=server.url)
        metrics = monitor.metrics
        assert metrics is not None and monitor.metrics_error is None
        assert metrics.calls_by_result == SNAPSHOT.calls_by_result
        assert (metrics.cps, metrics.concurrent_calls, metrics.registrations) == (2.5, 4, 7)
        assert metrics.guard_drops == SNAPSHOT.guard_drops
        assert metrics.guard_bans == SNAPSHOT.guard_bans
        assert (metrics.banned, metrics.relay_ports_in_use, metrics.spool_lag_seconds) == \
            (2, 8, 0.25)
        assert metrics.counters == SNAPSHOT.counters and metrics.calls == 16
        assert monitor.stats.files == 1  # the spool is still read
        assert "/metrics" in monitor.figure.layout.title.text
        assert "16 calls since start" in monitor.figure.layout.title.text
        assert "<th>registrations</th>" in monitor.table.value
        assert "no_route" in monitor.table.value and monitor.chart.outputs
        # the numbers are the switch's at each refresh
        source.snap = replace(SNAPSHOT, concurrent_calls=9)
        monitor.start()
        assert wait_until(lambda: monitor.metrics is not None
                          and monitor.metrics.concurrent_calls == 9, timeout=5)
        assert wait_until(lambda: "/metrics, every" in monitor.status.value, timeout=5)
        monitor.stop()
        assert len(monitor.history) >= 2
    # the admin API has gone: the monitor falls back to the spool and says why
    monitor.refresh(now=at(8))
    assert monitor.metrics is None and monitor.metrics_error
    assert "Last 60 s" in monitor.figure.layout.title.text
    assert "/metrics unavailable" in monitor.where


def test_monitor_metrics_with_a_token_from_the_config(tmp_path):
    from tests.switch.test_admin import Source

    token = tmp_path / "admin.token"
    token.write_text("s3cret\n")
    with admin_in_thread(Source(), token_file=str(token)) as server:
        host, port = server.address
        config = tmp_path / "switch.toml"
        config.write_text(f'[switch]\nid = "sw1"\nspool_dir = "cdrs"\n'
                          f'[admin]\nlisten = "{host}:{port}"\ntoken_file = "admin.token"\n')
        from ratelab import SwitchProcess
        monitor = SwitchMonitor(SwitchProcess(config, cwd=tmp_path), interval=0.1)
        assert (monitor.admin_url, monitor.token) == (server.url, "s3cret")
        assert monitor.metrics is not None and monitor.metrics.registrations == 7
        # a wrong token: 401, the spool is shown instead
        wrong = SwitchMonitor(config, interval=0.1, admin_url=server.url, token="nope")
        assert wrong.metrics is None and "401" in (wrong.metrics_error or "")
        # admin_url="" turns /metrics off
        assert SwitchMonitor(config, interval=0.1, admin_url="").admin_url is None


def test_monitor_shows_the_watch_findings_of_a_warehouse(spool, tmp_path):
    import ratelab
    from ratelab.watch import run_watch
    from tests.test_watch_cli import build_warehouse

    (spool / "cdr-sw1-b1-000001.jsonl").write_text(line(cdr("A", 0, 5)))
    warehouse = build_warehouse(tmp_path / "wh")
    monitor = SwitchMonitor(spool, interval=0.05, warehouse=warehouse, findings_every=3600)
    # no watch run yet: the table says so; the switch's figures are there as before
    assert monitor.findings is not None and monitor.findings.height == 0
    assert "no findings in the last 24 h" in monitor.findings_table.value
    assert monitor.findings_table in monitor.widget.children
    result = run_watch(ratelab.connect(warehouse), now=datetime(2026, 11, 2, 4, 5))
    assert result.findings
    monitor.refresh(now=at(8))   # read an hour ago at most: not yet again
    assert monitor.findings.height == 0
    monitor.findings_every = 0
    monitor.refresh(now=at(8))
    shown = monitor.findings
    assert shown is not None and shown.height == len(result.findings)
    # most severe first, and each one in the table
    ranks = {"critical": 0, "warning": 1, "info": 2}
    assert shown["severity"].to_list() == sorted(shown["severity"].to_list(), key=ranks.get)
    for finding in result.findings:
        assert finding.summary.split(":")[0] in monitor.findings_table.value
    assert "night_burst" in monitor.findings_table.value
    assert monitor.stats.calls == 1 and '<td class="n">1</td>' in monitor.table.value
    # the warehouse held by a writer (another process): the last findings stay, with the
    # reason, and the switch's figures are refreshed all the same
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        count = monitor.refreshes
        monitor.refresh(now=at(8))
        assert monitor.refreshes == count + 1
        assert monitor.findings_error and "locked" in monitor.findings_error
        assert "not refreshed" in monitor.findings_table.value
        assert monitor.findings.height == len(result.findings)
    finally:
        holder.communicate("", timeout=30)
    # without a warehouse there is no findings table at all
    assert SwitchMonitor(spool, interval=0.05).findings_table not in \
        SwitchMonitor(spool, interval=0.05).widget.children
