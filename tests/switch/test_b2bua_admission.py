"""Who gets in: customer authentication, limits, routing failures and draining, sans-IO."""

from __future__ import annotations

import pytest

from switch.sip import Response, authorization, parse_auth_params
from tests.switch.b2bua_harness import BASE_CONFIG, CUSTOMER, SNAPSHOT, Harness, config

PASSWORD_GATEWAYS = """
[[mapping_gateway]]
name = "zeta"
auth = "password"
password = "s3cret"
addresses = []
"""


def _statuses(sent) -> list[int]:
    return [t.message.status for t in sent if isinstance(t.message, Response)]


def test_unknown_source_gets_403_and_no_cdr():
    h = Harness.make()
    sent = h.invite(peer=("udp", "10.1.2.3", 5060))
    assert _statuses(sent) == [403]  # stateless: no 100 Trying
    assert h.finished == [] and h.engine.stats["auth_refused"] == 1


def test_an_unknown_source_costs_no_state_and_its_403_is_not_retransmitted():
    # A spoofed or scanning source: nothing is kept and nothing is sent again (a stateful 403
    # was retransmitted 11 times over 32 s, to an address that may never have asked). Its
    # retransmitted INVITE is simply answered again.
    h = Harness.make()
    first = h.invite(peer=("udp", "10.1.2.3", 5060), call="spoofed-1")
    assert _statuses(first) == [403]
    assert len(h.engine.table) == 0 and h.engine.next_deadline() is None
    assert h.advance(40.0) == []
    again = h.invite(peer=("udp", "10.1.2.3", 5060), call="spoofed-1")
    assert _statuses(again) == [403] and h.engine.stats["auth_refused"] == 2


def test_ip_port_gateway_is_preferred_and_tech_prefix_tells_shared_addresses_apart():
    extra = """
[[mapping_gateway]]
name = "zeta"
auth = "ip_port"
addresses = ["127.0.0.1:5099"]

[[mapping_gateway]]
name = "prefixed"
addresses = ["127.0.0.1"]
tech_prefix = "900"
"""
    snapshot = dict(SNAPSHOT, customers={**SNAPSHOT["customers"], "prefixed": {"44": "0.03"}})
    h = Harness.make(config(extra), snapshot)
    h.invite(peer=("udp", "127.0.0.1", 5099), call="p1")
    h.vendor_reply(h.requests_to(5070)[-1], 404)
    h.vendor_reply(h.requests_to(5072)[-1], 404, port=5072)
    assert h.cdr()["customer"] == "zeta"
    h.invite("900447700900123", call="p2", branch="p2")
    invite = h.requests_to(5070)[-1]
    assert invite.uri.startswith("sip:447700900123@"), "tech prefix stripped"
    h.vendor_reply(invite, 486)
    assert h.cdr()["customer"] == "prefixed" and h.cdr()["callee"] == "900447700900123"
    assert h.cdr()["callee_e164"] == "447700900123"


def test_digest_password_customer_is_challenged_then_admitted():
    cfg = config(PASSWORD_GATEWAYS, base=BASE_CONFIG.replace('addresses = ["127.0.0.1"]\n',
                                                             'addresses = ["10.9.9.9"]\n'))
    h = Harness.make(cfg)
    first = h.invite()
    challenge = [t.message for t in first if isinstance(t.message, Response)][-1]
    assert challenge.status == 407 and h.finished == []
    header = challenge.headers.get("proxy-authenticate")
    creds = authorization(header, username="zeta", password="s3cret", method="INVITE",
                          uri="sip:447700900123@127.0.0.1:5060", cnonce="abc")
    h.from_customer("ACK", cseq=1, branch="a1", to_tag=None)
    h.invite(branch="a2", cseq=2, extra=f"Proxy-Authorization: {creds}\n")
    assert h.requests_to(5070), "admitted after the challenge"
    h.vendor_reply(h.requests_to(5070)[0], 486)
    assert h.cdr()["customer"] == "zeta"


@pytest.mark.parametrize("order", [("SHA-256", "MD5"), ("MD5", "SHA-256"), ("MD5",)])
def test_invite_challenges_follow_the_registrars_algorithm_order(order):
    names = ", ".join(f'"{a}"' for a in order)
    cfg = config(f"{PASSWORD_GATEWAYS}\n[registrar]\ndigest_algorithms = [{names}]\n",
                 base=BASE_CONFIG.replace('addresses = ["127.0.0.1"]\n',
                                          'addresses = ["10.9.9.9"]\n'))
    h = Harness.make(cfg)
    challenge = [t.message for t in h.invite() if isinstance(t.message, Response)][-1]
    headers = challenge.headers.get_all("proxy-authenticate")
    assert [parse_auth_params(v)[1]["algorithm"] for v in headers] == list(order)
    assert len({parse_auth_params(v)[1]["nonce"] for v in headers}) == 1
    # Credentials answering the last-offered algorithm are as good as the first.
    creds = authorization(headers[-1], username="zeta", password="s3cret", method="INVITE",
                          uri="sip:447700900123@127.0.0.1:5060", cnonce="abc")
    h.from_customer("ACK", cseq=1, branch="a1", to_tag=None)
    h.invite(branch="a2", cseq=2, extra=f"Proxy-Authorization: {creds}\n")
    assert h.requests_to(5070), "admitted after the challenge"


def test_wrong_password_is_refused_with_an_auth_failed_cdr():
    cfg = config(PASSWORD_GATEWAYS, base=BASE_CONFIG.replace('addresses = ["127.0.0.1"]\n',
                                                             'addresses = ["10.9.9.9"]\n'))
    h = Harness.make(cfg)
    header = [t.message for t in h.invite() if isinstance(t.message, Response)][-1] \
        .headers.get("proxy-authenticate")
    creds = authorization(header, username="zeta", password="wrong", method="INVITE",
                          uri="sip:447700900123@127.0.0.1:5060", cnonce="abc")
    sent = h.invite(branch="a2", cseq=2, extra=f"Proxy-Authorization: {creds}\n")
    assert _statuses(sent)[-1] == 403
    record = h.cdr()
    assert (record["customer"], record["disconnect_reason"], record["sip_code"]) == \
        ("zeta", "auth_failed", 403)
    assert record["vendor"] is None and record["attempts"] == []


def test_cps_limit_answers_503_with_retry_after_and_a_cdr():
    h = Harness.make(config(base=BASE_CONFIG.replace("cps_limit = 100", "cps_limit = 2")))
    for n in range(3):
        h.invite(call=f"c{n}", branch=f"b{n}")
    refused = [t.message for t in h.sent if isinstance(t.message, Response)
               and t.message.status == 503]
    assert len(refused) == 1 and refused[0].headers.get("retry-after") == "1"
    assert h.cdr()["disconnect_reason"] == "cps_limit"
    h.advance(1.01)
    h.invite(call="c9", branch="b9")
    assert len(h.requests_to(5070)) == 3, "a new second admits again"


def test_max_concurrent_answers_503():
    h = Harness.make(config(base=BASE_CONFIG.replace("max_concurrent = 50",
                                                     "max_concurrent = 2")))
    for n in range(3):
        h.invite(call=f"c{n}", branch=f"b{n}")
    assert h.cdr()["disconnect_reason"] == "concurrency_limit"
    assert h.cdr()["sip_code"] == 503
    assert h.engine.active_calls == 2
    h.vendor_reply(h.requests_to(5070)[0], 486)   # one call ends: room again
    h.invite(call="c8", branch="b8")
    assert len(h.requests_to(5070)) == 3


def test_no_route_is_404_and_profit_limit_is_503():
    h = Harness.make()
    h.invite("8613800138000")
    assert h.responses_to()[-1] == 404 and h.cdr()["disconnect_reason"] == "no_route"
    cfg = config(base=BASE_CONFIG.replace('priority = 1\n',
                                          'priority = 1\nlowest_profit_per_second = 0.001\n')
                 .replace('priority = 2\n', 'priority = 2\nlowest_profit_per_second = 0.001\n'))
    h = Harness.make(cfg)
    h.invite()
    assert h.responses_to()[-1] == 503 and h.cdr()["disconnect_reason"] == "profit_limit"
    assert h.requests_to(5070) == []


def test_draining_refuses_new_calls_and_hangup_all_ends_the_rest():
    h = Harness.make()
    h.invite(call="up")
    h.answer_call()
    h.invite(call="ringing", branch="r1")
    h.vendor_reply(h.requests_to(5070)[-1], 180)
    h.engine.drain()
    h.invite(call="late", branch="l1")
    assert h.responses_to(call="late")[-1] == 503
    assert h.cdr()["disconnect_reason"] == "shutdown"
    h._take(h.engine.hangup_all(h.now))
    reasons = {r.record["call_id"]: (r.record["disconnect_reason"], r.record["sip_code"])
               for r in h.finished}
    assert reasons["up"] == ("shutdown", 200) and reasons["ringing"] == ("shutdown", 503)
    assert h.engine.active_calls == 0


def test_options_register_and_strays():
    h = Harness.make()
    options = h.from_customer("OPTIONS", call="o1", to_tag="", cseq=1)
    assert _statuses(options) == [200]
    register = h.from_customer("REGISTER", call="r1", to_tag="", cseq=1)
    assert _statuses(register) == [405]
    stray = h.from_customer("BYE", call="nobody", to_tag="x", cseq=2)
    assert _statuses(stray) == [481]
    assert h.from_customer("ACK", call="nobody", to_tag="x", cseq=1) == []


def test_max_forwards_zero_is_483_with_an_error_cdr():
    h = Harness.make()
    sent = h.invite(max_forwards=0)
    assert _statuses(sent) == [100, 483]
    record = h.cdr()
    assert (record["sip_code"], record["disconnect_reason"]) == (483, "error")
    assert record["customer"] == "acme" and record["attempts"] == []
    assert h.requests_to(5070) == [] and h.engine.active_calls == 0
    assert h.engine.stats["error"] == 1
    # the 483 goes out only once its CDR is durable
    assert [t.message.status for t in h.finished[-1].then] == [483]


def test_tcp_customer_gets_answers_on_tcp_and_a_tcp_contact():
    h = Harness.make()
    peer = ("tcp", "127.0.0.1", 40000)
    h.invite(peer=peer)
    h.vendor_reply(h.requests_to(5070)[0], 200, body=b"")
    ok = next(t for t in h.sent if t.peer == peer and isinstance(t.message, Response)
          and t.message.status == 200)
    assert ok.message.headers.get("contact").endswith(";transport=tcp>")
    h.advance(5)
    assert [t for t in h.sent if t.peer == peer and isinstance(t.message, Response)
            and t.message.status == 200] == [ok], "no 2xx retransmission over TCP"
    assert CUSTOMER not in {t.peer for t in h.sent}
