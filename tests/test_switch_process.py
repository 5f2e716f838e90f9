"""ratelab.SwitchProcess against the real switch: start, answer, reload, stop, crash."""

from __future__ import annotations

import signal

import pytest

from ratelab import SwitchError, SwitchProcess
from tests.switch.live import LiveSwitch, invite_status, wait_until


def test_start_answers_and_stops_gracefully(tmp_path):
    live = LiveSwitch(tmp_path)
    with live.process() as switch:
        assert switch.running
        host, port = switch.udp_address
        assert host == "127.0.0.1" and port > 0
        assert {t for t, _, _ in switch.addresses} == {"udp", "tcp"}
        # no vendor configured: a known customer gets 404 no_route, with a CDR
        assert invite_status(host, port, "447700900123", "c1") == 404
    assert switch.returncode == 0 and not switch.running
    [record] = live.cdrs()
    assert record["disconnect_reason"] == "no_route" and record["customer"] == "acme"


def test_sighup_reloads_the_snapshot_for_new_calls(tmp_path):
    live = LiveSwitch(tmp_path)
    live.snapshot["customers"]["acme"] = {"1": "0.01"}          # no rate for 44 yet
    with live.process() as switch:
        host, port = switch.udp_address
        assert invite_status(host, port, "447700900123", "r1") == 404
        live.snapshot["customers"]["acme"]["44"] = "0.03"
        live.routing = ('[[routing_gateway]]\nname = "v1"\naddress = "127.0.0.1:9"\n'
                        'prefixes = ["44"]\nhuntstop_codes = [503]\n')
        live.write()
        switch.reload()
        # the reload is asynchronous: wait for the switch to say it is done
        assert wait_until(lambda: "reloaded" in switch.log_text())
        # routed now: the vendor on port 9 (discard) never answers, so invite_timeout -> 408
        assert invite_status(host, port, "447700900123", "r2") == 408
    assert [r["disconnect_reason"] for r in live.cdrs()] == ["no_route", "invite_timeout"]


def test_a_bad_reload_keeps_the_running_configuration(tmp_path):
    live = LiveSwitch(tmp_path)
    with live.process() as switch:
        live.snapshot_path.write_text("{not json")
        switch.reload()
        host, port = switch.udp_address
        assert wait_until(lambda: "reload failed" in switch.log_text())
        assert invite_status(host, port, "447700900123", "b1") == 404  # still running


def test_a_bad_config_fails_start_with_the_log(tmp_path):
    path = tmp_path / "switch.toml"
    path.write_text('[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:0"]\n'
                    f'routing_snapshot = "{tmp_path}/missing.json"\n')
    with pytest.raises(SwitchError, match="did not report ready"):
        SwitchProcess(path, start_timeout=10).start()


def test_kill_is_a_crash(tmp_path):
    live = LiveSwitch(tmp_path)
    switch = live.process().start()
    switch.kill()
    assert switch.returncode == -signal.SIGKILL and not switch.running


def test_cdr_files_rotate_by_age(tmp_path):
    live = LiveSwitch(tmp_path, switch_extra="cdr_rotate_seconds = 1\n")

    def files():
        return sorted(live.spool.glob("cdr-sw1-*.jsonl"))

    with live.process() as switch:
        host, port = switch.udp_address
        calls = 0

        def another_call_rotated() -> bool:
            # each 404 comes once its CDR is on disk, so the files are up to date on return
            nonlocal calls
            calls += 1
            assert invite_status(host, port, "447700900123", f"t{calls}") == 404
            return len(files()) > 1

        # The file in use is replaced at the first write once it is a second old (its size
        # stays far below cdr_rotate_mb): place calls until that happens, not for a set time.
        assert wait_until(another_call_rotated, timeout=30), "no rotation within 30 s"
    assert calls >= 2
    assert [f.read_text().count("\n") for f in files()] == [calls - 1, 1]
