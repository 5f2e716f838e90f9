"""The admin API of a real running switch (issue 12): web access control, Prometheus metrics
that match what happened on the wire, bans shown and lifted, bearer tokens, relay ports.

The switch runs on 127.0.0.10 with ``[admin] listen`` on a free port of that address and
``allow = ["127.0.0.2/32"]``; HTTP clients bind their source address (127.0.0.2 allowed,
127.0.0.3 not). SIP traffic: SIPp calls from the IP-authenticated customer acme (127.0.0.2) to
a SIPp vendor on 127.0.0.8, a REGISTER of the password gateway gw6 from 127.0.0.6, and one
INVITE with a scanner User-Agent from 127.0.0.4. SIPp is required: these tests fail, never
skip, without it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ratelab import SwitchProcess
from tests.switch.guard_live import (
    ATTACKER,
    BYSTANDER,
    GW6,
    NUMBER,
    REGISTERED,
    SCANNER,
    SWITCH_IP,
    TRUSTED,
    Reply,
    add_snapshot_customers,
    admin_request,
    admin_table,
    counters,
    customers,
    guard_table,
    one,
    vendor_table,
    vendor_uas,
)
from tests.switch.live import LiveSwitch, target, wait_until
from tests.switch.media_live import media_table
from tests.switch.sipp_runner import SippResult, SippUas, free_port, ok, run_uac

pytestmark = pytest.mark.usefixtures("sipp_installed")

ENDPOINTS = ("/health", "/metrics", "/calls", "/registrations", "/guard")
NO_ROUTE = "3312345678"  # no vendor serves 33
Admin = tuple[str, int]


@contextmanager
def _switch(tmp_path: Path, *, admin: str = "",
            media: str = "[media]\nworkers = 0\n", registrar: str = ""
            ) -> Iterator[tuple[SwitchProcess, Admin, LiveSwitch, SippUas]]:
    port = free_port(SWITCH_IP)
    uas = vendor_uas(tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", customers=customers(registrar=registrar),
                      routing=vendor_table(uas.port),
                      host=SWITCH_IP,
                      extra=guard_table() + (admin or admin_table(port)) + media)
    add_snapshot_customers(live.snapshot)
    with uas, live.process() as switch:
        yield switch, (SWITCH_IP, port), live, uas


def _get(admin: Admin, path: str, source: str = TRUSTED, *, method: str = "GET",
         token: str | None = None) -> Reply:
    return admin_request(admin, path, source=source, method=method, token=token)


def _metrics(admin: Admin, token: str | None = None
             ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, parsed with prometheus-client's text parser:
    {(sample name, labels): value}."""
    reply = _get(admin, "/metrics", token=token)
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4"), reply.headers
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _by_label(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
              label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (sample, labels), value in samples.items()
            if sample == name}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float],
           name: str) -> float | None:
    return samples.get((name, frozenset()))


def _calls(switch: SwitchProcess, workdir: Path, count: int, *, number: str = NUMBER,
           scenario: str = "uac_basic.xml", duration_ms: int = 200) -> SippResult:
    return run_uac(scenario, target(switch), calls=count, rate=20, duration_ms=duration_ms,
                   service=number, local_ip=TRUSTED, local_port=free_port(TRUSTED),
                   workdir=workdir, timeout=30)


def test_access_metrics_registrations_and_bans(tmp_path: Path) -> None:
    with _switch(tmp_path, media=media_table(23400)) as (switch, admin, live, _uas):
        where = switch.udp_address
        # A long call in the background: its relay ports must show within one refresh (5 s).
        long_call: list[SippResult] = []
        runner = threading.Thread(target=lambda: long_call.append(
            _calls(switch, tmp_path / "long", 1, duration_ms=6000)))
        runner.start()

        # --- web access control ------------------------------------------------------------------
        for path in ENDPOINTS:
            reply = _get(admin, path)
            assert reply.status == 200, (path, reply.status, reply.text)
        health = _get(admin, "/health").json()
        assert isinstance(health, dict) and health["status"] == "ok", health
        for path in ("/health", "/metrics", "/no-such-path"):
            refused = _get(admin, path, source=ATTACKER)
            assert refused.status == 403 and refused.json() == {"error": "forbidden"}, \
                (path, refused.status, refused.text)
        refused = _get(admin, f"/guard/{ATTACKER}", source=ATTACKER, method="DELETE")
        assert refused.status == 403, refused.text
        samples = _metrics(admin)
        assert _value(samples, "ratelab_switch_admin_denied_total") == 4, samples

        # --- registrations -----------------------------------------------------------------------
        assert _value(samples, "ratelab_switch_registrations") == 0, samples
        assert _get(admin, "/registrations").json() == []
        reg = run_uac("uac_register.xml", target(switch), calls=1, service=GW6[0], auth=GW6,
                      local_ip=REGISTERED, local_port=free_port(REGISTERED),
                      workdir=tmp_path / "register", timeout=20)
        assert reg.final_codes == {200: 1}, reg.describe()
        samples = _metrics(admin)
        assert _value(samples, "ratelab_switch_registrations") == 1, samples
        bindings = _get(admin, "/registrations").json()
        assert isinstance(bindings, list) and len(bindings) == 1, bindings
        assert bindings[0]["gateway"] == GW6[0] and bindings[0]["host"] == REGISTERED, bindings

        # --- a scanner's ban, shown and lifted ---------------------------------------------------
        answer = one("INVITE", BYSTANDER, where)
        assert answer is not None and answer >= 400, answer
        assert one("INVITE", SCANNER, where, user_agent="friendly-scanner") is None
        assert one("INVITE", SCANNER, where, wait=0.5) is None  # banned: silence
        bans = _get(admin, "/guard").json()
        assert isinstance(bans, list) and [(b["ip"], b["rule"]) for b in bans] == \
            [(SCANNER, "scanner")], bans
        assert 590 <= bans[0]["remaining"] <= 600 and bans[0]["until"] > bans[0]["since"], bans
        samples = _metrics(admin)
        assert _by_label(samples, "ratelab_switch_guard_bans_total", "rule") == \
            {"scanner": 1}, samples
        drops = _by_label(samples, "ratelab_switch_guard_drops_total", "rule")
        assert drops.get("scanner") == 1 and drops.get("banned") == 1, drops
        assert _value(samples, "ratelab_switch_guard_banned") == 1, samples
        assert _get(admin, "/guard/not-an-ip", method="DELETE").status == 400
        lifted = _get(admin, f"/guard/{SCANNER}", method="DELETE")
        assert lifted.status == 200 and lifted.json() == {"lifted": SCANNER}, lifted.text
        assert _get(admin, "/guard").json() == []
        assert _get(admin, f"/guard/{SCANNER}", method="DELETE").status == 404
        # answered again, like any unknown source
        assert one("INVITE", SCANNER, where) == answer
        assert _value(_metrics(admin), "ratelab_switch_guard_banned") == 0

        # --- relay ports in use while the long call holds media ----------------------------------
        def relay_ports() -> float | None:
            return _value(_metrics(admin), "ratelab_switch_relay_ports_in_use")

        assert wait_until(lambda: (relay_ports() or 0) > 0, timeout=6.0), _metrics(admin)
        in_call = _get(admin, "/calls").json()
        assert isinstance(in_call, list) and len(in_call) == 1, in_call
        assert in_call[0]["customer"] == "acme" and in_call[0]["vendor"] == "v1", in_call
        assert _value(_metrics(admin), "ratelab_switch_concurrent_calls") == 1
        runner.join(timeout=30)
        assert long_call, "the long call's SIPp did not finish"
        ok(long_call[0], 1)

        # --- calls by result match the CDRs ------------------------------------------------------
        ok(_calls(switch, tmp_path / "answered", 3), 3)
        refused_calls = _calls(switch, tmp_path / "no-route", 2, number=NO_ROUTE,
                               scenario="uac_expect_fail.xml")
        assert sum(refused_calls.final_codes.values()) == 2, refused_calls.describe()
        assert wait_until(lambda: len(live.cdrs()) == 6, timeout=10), live.cdrs()
        reasons = Counter(cdr["disconnect_reason"] for cdr in live.cdrs())
        assert len(reasons) >= 2 and reasons["caller_bye"] == 4, reasons
        samples = _metrics(admin)
        by_result = _by_label(samples, "ratelab_switch_calls_total", "result")
        assert by_result == {reason: float(n) for reason, n in reasons.items()}, \
            (by_result, reasons)
        assert _value(samples, "ratelab_switch_concurrent_calls") == 0, samples
        assert _value(samples, "ratelab_switch_cdr_spool_lag_seconds") is not None, samples
        assert _get(admin, "/calls").json() == []
        # the relay ports are given back (at the next refresh)
        assert wait_until(lambda: relay_ports() == 0, timeout=7.0), _metrics(admin)
        assert _value(_metrics(admin), "ratelab_switch_admin_denied_total") == 4
    got = counters(switch.log_text())
    assert got.get("screen.ban.scanner") == 1 and got.get("screen.drop.scanner") == 1, got


def test_bearer_token(tmp_path: Path) -> None:
    token = "tok-" + "7" * 30
    token_file = tmp_path / "admin.token"
    token_file.write_text(f"  {token}  \nsecond line is ignored\n")
    port = free_port(SWITCH_IP)
    with _switch(tmp_path, admin=admin_table(port, token_file=token_file)) as (
            _switch_process, _admin, _live, _uas):
        admin = (SWITCH_IP, port)
        for path in ("/health", "/metrics", "/guard"):
            bare = _get(admin, path)
            assert bare.status == 401 and bare.headers.get("www-authenticate") == "Bearer", \
                (path, bare.status, bare.headers)
            assert bare.json() == {"error": "unauthorized"}
            wrong = _get(admin, path, token=token + "x")
            assert wrong.status == 401, (path, wrong.status)
            right = _get(admin, path, token=token)
            assert right.status == 200, (path, right.status, right.text)
        # errors are short JSON objects: unknown path 404, wrong method 405 with Allow
        missing = _get(admin, "/no-such-path", token=token)
        assert missing.status == 404 and "error" in missing.json(), missing.text  # type: ignore[operator]
        wrong_method = _get(admin, "/health", method="DELETE", token=token)
        assert wrong_method.status == 405 and "GET" in wrong_method.headers.get("allow", ""), \
            (wrong_method.status, wrong_method.headers)
        # the right token from outside [admin] allow: still 403, and counted
        outside = _get(admin, "/health", source=ATTACKER, token=token)
        assert outside.status == 403, outside.text
        samples = _metrics(admin, token)
        assert _value(samples, "ratelab_switch_admin_denied_total") == 1, samples
        # no relay configured here: no relay ports metric
        assert _value(samples, "ratelab_switch_relay_ports_in_use") is None, samples



def test_registrations_gauge_follows_expiry(tmp_path: Path) -> None:
    """A binding of 2 s: /registrations lists it, then (expired) not; the
    ``ratelab_switch_registrations`` gauge ("live registrar bindings") must agree with it."""
    with _switch(tmp_path, registrar="min_expires = 1\n") as (switch, admin, _live, _uas):
        reg = run_uac("uac_register.xml", target(switch), calls=1, service=GW6[0], auth=GW6,
                      variables={"expires": 2}, local_ip=REGISTERED,
                      local_port=free_port(REGISTERED), workdir=tmp_path / "register",
                      timeout=20)
        assert reg.final_codes == {200: 1}, reg.describe()
        bindings = _get(admin, "/registrations").json()
        assert isinstance(bindings, list) and [b["gateway"] for b in bindings] == [GW6[0]]
        assert _value(_metrics(admin), "ratelab_switch_registrations") == 1
        assert wait_until(lambda: _get(admin, "/registrations").json() == [], timeout=5.0)
        assert wait_until(
            lambda: _value(_metrics(admin), "ratelab_switch_registrations") == 0,
            timeout=2.0), _metrics(admin)
