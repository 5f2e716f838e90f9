"""The registrar, sans-IO through the engine: who may register, challenges in the configured
order, replay, suspension, replace, 423, Expires 0 and ``Contact: *``. Time is a number."""

from __future__ import annotations

import itertools
import json

import pytest

from switch.b2bua import Peer
from switch.config import load_config_text
from switch.registrar import (
    USER_AGENT_CHARS,
    Binding,
    Registrar,
    dump_bindings,
    parse_bindings,
)
from switch.sip import NonceFactory, Response, authorization
from tests.switch.b2bua_harness import Harness, config

GW = Peer("udp", "10.0.0.7", 5080)
OTHER = Peer("udp", "10.0.0.8", 5080)
ACCOUNTS = """
[[mapping_gateway]]
name = "zeta"
auth = "password"
password = "s3cret"

[[routing_gateway]]
name = "vreg"
address = "127.0.0.1:5090"
prefixes = ["44"]
register_in = true
password = "vpass"
digest_algorithms = ["MD5"]
"""


def harness(registrar: str = "") -> Harness:
    return Harness.make(config(ACCOUNTS + registrar))


_seq = itertools.count(1)


def register(h: Harness, *, user: str = "zeta", password: str | None = "s3cret",
             peer: Peer = GW, contact: str | None = "<sip:zeta@10.0.0.7:5080>",
             expires: int | None = None, call: str = "reg1", creds: str | None = None,
             nc: int = 1, index: int = 0, headers: str = "") -> tuple[Response, str | None]:
    """A REGISTER; with ``password``, answer the 401 first. Returns (final answer, creds)."""
    def send(extra: str) -> Response:
        cseq = next(_seq)
        head = (f"REGISTER sip:127.0.0.1:5060 SIP/2.0\n"
                f"Via: SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bKr{cseq}\n"
                f"Max-Forwards: 70\nFrom: <sip:{user}@127.0.0.1>;tag=f{call}\n"
                f"To: <sip:{user}@127.0.0.1>\nCall-ID: {call}\nCSeq: {cseq} REGISTER\n"
                + (f"Contact: {contact}\n" if contact is not None else "")
                + (f"Expires: {expires}\n" if expires is not None else "")
                + headers + extra + "Content-Length: 0\n\n")
        sent = h.feed(head, peer)
        return [t.message for t in sent if isinstance(t.message, Response)][-1]
    if creds is not None:
        return send(f"Authorization: {creds}\n"), creds
    first = send("")
    if password is None:
        return first, None
    assert first.status == 401, first.status
    header = first.headers.get_all("www-authenticate")[index]
    creds = authorization(header, username=user, password=password, method="REGISTER",
                          uri="sip:127.0.0.1:5060", cnonce="abc", nc=nc)
    return send(f"Authorization: {creds}\n"), creds


def test_no_accounts_keeps_405():
    h = Harness.make()
    sent = h.from_customer("REGISTER", call="r1", to_tag="", cseq=1)
    assert [t.message.status for t in sent if isinstance(t.message, Response)] == [405]


def test_challenge_offers_sha256_then_md5_by_default_and_either_works():
    h = harness()
    first, _ = register(h, password=None)
    algs = [v.split("algorithm=")[1].split(",")[0] for v in
            first.headers.get_all("www-authenticate")]
    assert first.status == 401 and algs == ["SHA-256", "MD5"]
    for index in (0, 1):
        ok, _ = register(h, index=index, call=f"r{index}")
        assert ok.status == 200
    b = h.engine.registrar.binding("zeta", h.now)
    assert b is not None and (b.contact, b.host, b.port) == ("sip:zeta@10.0.0.7:5080",
                                                            "10.0.0.7", 5080)


def test_configured_order_and_per_gateway_algorithms():
    h = harness('[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n')
    first, _ = register(h, password=None)
    assert ["MD5" in v for v in first.headers.get_all("www-authenticate")] == [True, False]
    # vreg allows MD5 only: a SHA-256 answer is refused
    h2 = harness()
    first, _ = register(h2, user="vreg", password=None)
    header = first.headers.get_all("www-authenticate")[0].replace("algorithm=SHA-256",
                                                                   "algorithm=MD5")
    assert "SHA-256" in first.headers.get_all("www-authenticate")[0]
    sha = authorization(first.headers.get_all("www-authenticate")[0], username="vreg",
                        password="vpass", method="REGISTER", uri="sip:127.0.0.1:5060",
                        cnonce="c")
    assert register(h2, user="vreg", creds=sha)[0].status == 403
    md5 = authorization(header, username="vreg", password="vpass", method="REGISTER",
                        uri="sip:127.0.0.1:5060", cnonce="c")
    assert register(h2, user="vreg", creds=md5)[0].status == 200


def test_routing_gateway_with_register_in_may_register():
    h = harness()
    ok, _ = register(h, user="vreg", password="vpass", index=1,
                     contact="<sip:vreg@10.0.0.7:5080>")
    assert ok.status == 200
    assert h.engine.registrar.binding("vreg", h.now) is not None


def test_ok_answer_lists_the_binding_with_its_expiry():
    h = harness()
    ok, _ = register(h, expires=600)
    assert ok.status == 200
    assert ok.headers.get("contact") == "<sip:zeta@10.0.0.7:5080>;expires=600"
    assert h.engine.bindings_changed


def test_the_binding_keeps_the_user_agent_printable_and_short_across_a_restart():
    h = harness()
    agent = "Grandstream GXW4216 1.0.3.1 " + "x" * 100
    ok, _ = register(h, headers=f"User-Agent: {agent}\tv2\n")
    assert ok.status == 200
    binding = h.engine.registrar.binding("zeta", h.now)
    assert binding is not None and binding.user_agent == agent[:USER_AGENT_CHARS]
    h2 = harness()
    register(h2, headers="User-Agent: a\tb\n")
    tabbed = h2.engine.registrar.binding("zeta", h2.now)
    assert tabbed is not None and tabbed.user_agent == "a?b"
    # The state file keeps it; a file written before the field existed loads with none.
    assert parse_bindings(dump_bindings([binding], 0.0), 0.0, h.now) == [binding]
    old = json.loads(dump_bindings([binding], 0.0))
    del old["bindings"][0]["user_agent"]
    assert parse_bindings(json.dumps(old), 0.0, h.now)[0].user_agent == ""


def test_wrong_password_and_unknown_user_get_the_same_answer():
    a, b = harness(), harness()
    wrong, _ = register(a, password="nope")
    unknown, _ = register(b, user="ghost", password="nope")
    assert wrong.status == unknown.status == 403
    assert [h for h in wrong.headers.items() if h[0].lower() not in ("call-id", "from", "to",
                                                                        "via", "cseq")] == \
        [h for h in unknown.headers.items() if h[0].lower() not in ("call-id", "from", "to",
                                                                       "via", "cseq")]
    assert a.engine.registrar.bindings == b.engine.registrar.bindings == {}


def test_replayed_authorization_is_refused():
    h = harness()
    ok, creds = register(h)
    assert ok.status == 200
    again, _ = register(h, creds=creds, call="r2")
    assert again.status == 403


def test_retransmitted_register_gets_the_same_answer():
    h = harness()
    first, _ = register(h, password=None)
    header = first.headers.get_all("www-authenticate")[0]
    creds = authorization(header, username="zeta", password="s3cret", method="REGISTER",
                          uri="sip:127.0.0.1:5060", cnonce="abc")
    text = ("REGISTER sip:127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.7:5080;branch=z9hG4bKrt\n"
            "Max-Forwards: 70\nFrom: <sip:zeta@127.0.0.1>;tag=x\nTo: <sip:zeta@127.0.0.1>\n"
            "Call-ID: rt\nCSeq: 9 REGISTER\nContact: <sip:zeta@10.0.0.7:5080>\n"
            f"Authorization: {creds}\nContent-Length: 0\n\n")
    answers = [[t.message.status for t in h.feed(text, GW) if isinstance(t.message, Response)]
               for _ in range(2)]
    assert answers == [[200], [200]]


def test_stale_nonce_rechallenges_with_stale_true():
    h = harness()
    first, _ = register(h, password=None)
    header = first.headers.get_all("www-authenticate")[1]
    h.now += 10_000
    creds = authorization(header, username="zeta", password="s3cret", method="REGISTER",
                          uri="sip:127.0.0.1:5060", cnonce="abc")
    again, _ = register(h, creds=creds)
    assert again.status == 401
    assert all("stale=TRUE" in v for v in again.headers.get_all("www-authenticate"))


@pytest.mark.parametrize("user", ["zeta", "ghost"])
def test_suspension_after_register_retry_failures_and_its_end(user):
    h = harness("[registrar]\nregister_retry = 3\nregister_suspend = 30\n")
    for k in range(3):
        assert register(h, user=user, password="bad", call=f"b{k}")[0].status == 403
    # now even the right password is refused, without a challenge, from any address
    assert register(h, user=user, password=None, call="s1")[0].status == 403
    # from another address: challenged (no name yet), then refused by name if it is suspended
    right = register(h, user="zeta", peer=OTHER, call="s2", contact="<sip:zeta@10.0.0.8>")[0]
    assert right.status == (403 if user == "zeta" else 200)
    assert h.engine.registrar.guard.stats["suspended_refused"] >= 1
    h.now += 31
    assert register(h, user="zeta", call="s3")[0].status == 200


def test_source_ip_is_suspended_separately():
    h = harness("[registrar]\nregister_retry = 2\nregister_suspend = 30\n")
    register(h, user="a1", password="x", call="i1")
    register(h, user="a2", password="x", call="i2")
    # two different usernames from one IP: the IP is suspended, zeta from it is refused
    assert register(h, user="zeta", password=None, call="i3")[0].status == 403
    assert register(h, user="zeta", peer=OTHER, call="i4",
                    contact="<sip:zeta@10.0.0.8:5080>")[0].status == 200


def test_suspended_source_invites_are_refused_without_a_challenge():
    h = harness("[registrar]\nregister_retry = 2\nregister_suspend = 30\n")
    register(h, user="a1", password="x", call="i1")
    register(h, user="a2", password="x", call="i2")
    sent = h.invite(peer=GW)
    assert [t.message.status for t in sent if isinstance(t.message, Response)][-1] == 403


def test_register_replace_on_and_off():
    h = harness()
    assert register(h)[0].status == 200
    assert register(h, peer=OTHER, contact="<sip:zeta@10.0.0.8:5080>", call="r2")[0].status \
        == 200
    assert h.engine.registrar.binding("zeta", h.now).host == "10.0.0.8"
    h = harness("[registrar]\nregister_replace = false\n")
    assert register(h)[0].status == 200
    assert register(h, peer=OTHER, contact="<sip:zeta@10.0.0.8:5080>", call="r2")[0].status \
        == 403
    assert register(h, call="r3")[0].status == 200  # a refresh of the same contact
    assert h.engine.registrar.binding("zeta", h.now).host == "10.0.0.7"
    h.now += 3601  # the old binding expired: a new contact is welcome
    assert register(h, peer=OTHER, contact="<sip:zeta@10.0.0.8:5080>", call="r4")[0].status \
        == 200


def test_too_brief_is_423_with_min_expires_and_long_is_cut():
    h = harness("[registrar]\nmin_expires = 60\nmax_expires = 900\n")
    brief, _ = register(h, expires=30)
    assert brief.status == 423 and brief.headers.get("min-expires") == "60"
    assert h.engine.registrar.bindings == {}
    brief, _ = register(h, contact="<sip:zeta@10.0.0.7:5080>;expires=59", call="r2")
    assert brief.status == 423
    ok, _ = register(h, expires=100_000, call="r3")
    assert ok.status == 200 and ok.headers.get("contact").endswith(";expires=900")
    ok, _ = register(h, contact="<sip:zeta@10.0.0.7:5080>;expires=120", expires=3000,
                     call="r4")
    assert ok.headers.get("contact").endswith(";expires=120")


def test_expiry_ends_the_binding():
    h = harness()
    register(h, expires=100)
    assert h.engine.registrar.binding("zeta", h.now + 99) is not None
    assert h.engine.registrar.binding("zeta", h.now + 100) is None


def test_expires_zero_and_wildcard_remove_bindings():
    h = harness()
    register(h)
    gone, _ = register(h, expires=0, call="r2")
    assert gone.status == 200 and h.engine.registrar.bindings == {}
    register(h, call="r3")
    other, _ = register(h, contact="<sip:zeta@9.9.9.9>;expires=0", call="r4")
    assert other.status == 200 and "zeta" in h.engine.registrar.bindings  # not that contact
    star, _ = register(h, contact="*", expires=0, call="r5")
    assert star.status == 200 and h.engine.registrar.bindings == {}
    bad, _ = register(h, contact="*", expires=60, call="r6")
    assert bad.status == 400


def test_query_without_contact_lists_the_binding():
    h = harness()
    register(h, expires=300)
    q, _ = register(h, contact=None, call="q")
    assert q.status == 200 and q.headers.get("contact").startswith("<sip:zeta@10.0.0.7:5080>")


def test_registrar_keeps_only_bindings_of_accounts_and_drops_on_reload():
    cfg = load_config_text(
        '[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:5060"]\n'
        '[[mapping_gateway]]\nname = "gw1"\nauth = "password"\npassword = "pw"\n')
    keep = Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0)
    r = Registrar(cfg, nonces=NonceFactory(b"0123456789abcdef"),
                  bindings=[keep, Binding("nope", "sip:x@h", "udp", "h", 1, 100.0)])
    assert list(r.bindings) == ["gw1"]
    assert r.table(50.0) == [keep] and r.table(100.0) == []
    assert r.expire(100.0) and r.bindings == {}
    assert Binding.from_dict(keep.as_dict()) == keep
