"""Registrations wired into calls (sans-IO), the state file, and ``python -m switch
registrations``."""

from __future__ import annotations

import json
from pathlib import Path

from switch.__main__ import main
from switch.b2bua import Peer
from switch.config import load_config_text
from switch.registrar import Binding, load_bindings, save_bindings, state_path
from switch.sip import Response
from tests.switch.b2bua_harness import SNAPSHOT, Harness, config
from tests.switch.test_registrar import ACCOUNTS, GW, register

VREG = Peer("udp", "10.0.0.9", 5099)


def harness() -> Harness:
    snapshot = json.loads(json.dumps(SNAPSHOT))
    snapshot["vendors"]["vreg"] = {"44": "0.0050"}  # cheapest: tried first
    return Harness.make(config(ACCOUNTS), snapshot)


def _statuses(sent) -> list[int]:
    return [t.message.status for t in sent if isinstance(t.message, Response)]


def test_registered_customer_is_admitted_from_its_contact_without_a_challenge():
    h = harness()
    assert 407 in _statuses(h.invite(peer=GW, call="before"))
    assert register(h)[0].status == 200
    sent = h.invite(peer=GW, call="after", branch="b2")
    assert 407 not in _statuses(sent)
    invites = [t for t in h.sent if getattr(t.message, "method", "") == "INVITE"
               and t.peer.port != GW.port]
    assert invites, "the call went on to a vendor"
    # from another port of the same host: not the registered contact, challenged
    assert 407 in _statuses(h.invite(peer=Peer("udp", "10.0.0.7", 5081), call="other",
                                         branch="b3"))


def test_expired_registration_no_longer_admits():
    h = harness()
    register(h, expires=60)
    h.now += 61
    assert 407 in _statuses(h.invite(peer=GW, call="late"))


def test_register_in_vendor_without_binding_is_skipped_like_a_down_vendor():
    h = harness()
    h.invite(call="c1")  # acme by IP
    sent_to = {(t.peer.host, t.peer.port) for t in h.sent
               if getattr(t.message, "method", "") == "INVITE"}
    assert ("10.0.0.9", 5099) not in sent_to and ("127.0.0.1", 5090) not in sent_to
    assert h.requests_to(5070), "the next vendor took the call"
    assert h.engine.stats["not_registered"] == 1


def test_register_in_vendor_gets_calls_at_its_registered_contact():
    h = harness()
    ok, _ = register(h, user="vreg", password="vpass", index=1, peer=VREG,
                     contact="<sip:vreg@10.0.0.9:5099>")
    assert ok.status == 200
    h.invite(call="c1")
    invites = [t for t in h.sent if getattr(t.message, "method", "") == "INVITE"
               and t.peer.host == "10.0.0.9"]
    assert len(invites) == 1 and invites[0].peer.port == 5099
    assert invites[0].message.uri == "sip:447700900123@10.0.0.9:5099"
    assert h.engine.stats["not_registered"] == 0


def test_state_file_round_trip_drops_expired(tmp_path: Path):
    path = tmp_path / "sw1.registrations.json"
    live = Binding("zeta", "sip:zeta@1.2.3.4", "udp", "1.2.3.4", 5060, 500.0)
    old = Binding("vreg", "sip:vreg@1.2.3.5", "udp", "1.2.3.5", 5060, 90.0)
    save_bindings(path, [live, old], wall_offset=1_000.0)
    assert not (tmp_path / "sw1.registrations.json.tmp").exists()
    # restarted: a new monotonic clock, 2,000 s behind the wall clock; wall now is 1,100
    assert load_bindings(path, wall_offset=2_000.0, now=-900.0) == [
        Binding("zeta", "sip:zeta@1.2.3.4", "udp", "1.2.3.4", 5060, -500.0)]
    assert load_bindings(tmp_path / "missing.json", 0.0, 0.0) == []


def test_registrations_command_prints_the_table(tmp_path: Path, capsys):
    cfg_path = tmp_path / "switch.toml"
    cfg_path.write_text(f'[switch]\nid = "sw9"\nsip_listen = ["udp:127.0.0.1:5060"]\n'
                        f'spool_dir = "{tmp_path / "spool"}"\n' + ACCOUNTS)
    cfg = load_config_text(cfg_path.read_text())
    import time
    save_bindings(state_path(cfg), [Binding("zeta", "sip:zeta@1.2.3.4", "udp", "1.2.3.4", 5060,
                                            time.time() + 3_000)], wall_offset=0.0)
    assert main(["registrations", "--config", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "zeta" in out and "udp:1.2.3.4:5060" in out and "1 registration(s)" in out
