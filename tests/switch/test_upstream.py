"""The switch registering to upstream carriers (switch/upstream.py), sans-IO: every timer is
data, so refreshes, retries and timeouts are checked without sleeping.

The SHA-256 answer is checked with a digest written here from RFC 7616 section 3.4.1 (hashlib
only), not with switch.sip.digest."""

from __future__ import annotations

import hashlib
import re

import pytest

from switch.b2bua import Ids, Peer, Transmit
from switch.config import load_config_text
from switch.sip import (
    NonceFactory,
    Request,
    make_response,
    parse_auth_params,
    parse_message,
    serialize,
    verify,
)
from switch.upstream import (
    REFRESH_AT,
    Upstreams,
    UpstreamState,
    dump_status,
    load_status_text,
)

LOCAL = Peer("udp", "127.0.0.1", 5060)
SERVER = Peer("udp", "127.0.0.1", 5090)


def _config(vendor: str = "", sip: str = "", name: str = "carrier", password: str = "secret"):
    return load_config_text(
        '[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:5060"]\n'
        f"[sip]\n{sip}\n"
        f'[[routing_gateway]]\nname = "{name}"\naddress = "127.0.0.1:5090"\nprefixes = ["44"]\n'
        f'register_out = true\nregister_user = "ratelab"\nregister_password = "{password}"\n'
        f"{vendor}\n")


def _ua(vendor: str = "", sip: str = "") -> Upstreams:
    return Upstreams(_config(vendor, sip), local=LOCAL, ids=Ids("t"), cnonce=lambda: "c0ffee")


def _one(sent: list[Transmit]) -> Request:
    assert len(sent) == 1, sent
    assert sent[0].peer == SERVER
    request = sent[0].message
    assert isinstance(request, Request)
    # What goes on the wire parses back the same: the request is well formed.
    assert parse_message(serialize(request)).headers.items() == request.headers.items()
    return request


def _answer(ua: Upstreams, request: Request, status: int, now: float,
            headers: list[tuple[str, str]] | None = None) -> list[Transmit]:
    response = make_response(request, status, to_tag="up1", headers=headers)
    assert ua.owns(response)
    return ua.receive(response, now)


def _challenge(nonce: str = "n1", *, algorithm: str = "MD5", stale: bool = False) -> str:
    return (f'Digest realm="carrier", nonce="{nonce}", algorithm={algorithm}, qop="auth"'
            + (", stale=true" if stale else ""))


def _registered(ua: Upstreams, now: float = 0.0, granted: int = 100) -> Request:
    first = _one(ua.start(now))
    second = _one(_answer(ua, first, 401, now, [("WWW-Authenticate", _challenge())]))
    assert _answer(ua, second, 200, now, [("Contact", f"{second.headers.get('Contact')};"
                                                      f"expires={granted}")]) == []
    return second


def _cseq(request: Request) -> int:
    return int((request.headers.get("CSeq") or "").split()[0])


def test_first_register_says_who_and_where():
    request = _one(_ua().start(0.0))
    h = request.headers
    assert request.method == "REGISTER" and request.uri == "sip:127.0.0.1:5090"
    assert h.get("From").startswith("<sip:ratelab@127.0.0.1>;tag=")
    assert h.get("To") == "<sip:ratelab@127.0.0.1>"
    assert h.get("Contact") == "<sip:ratelab@127.0.0.1:5060>"
    assert h.get("Expires") == "3600" and h.get("CSeq") == "1 REGISTER"
    assert h.get("Privacy") is None and h.get("Authorization") is None
    assert h.get("User-Agent") == "ratelab-switch"


def test_md5_challenge_is_answered_on_the_same_call_id_with_the_next_cseq():
    ua = _ua()
    first = _one(ua.start(0.0))
    nonces = NonceFactory(b"k" * 32, realm="carrier")
    nonce = nonces.make(0.0)
    second = _one(_answer(ua, first, 401, 0.1,
                          [("WWW-Authenticate", _challenge(nonce))]))
    assert second.headers.get("Call-ID") == first.headers.get("Call-ID")
    assert _cseq(second) == 2
    assert second.headers.get("Contact") == first.headers.get("Contact")
    verdict = verify(second.headers.get("Authorization"), method="REGISTER",
                     password_for={"ratelab": "secret"}.get, realm="carrier", nonces=nonces,
                     now=0.2)
    assert verdict.ok, verdict


def _rfc7616_response(params: dict[str, str], password: str, method: str) -> str:
    """RFC 7616 3.4.1: response = H(H(A1):nonce:nc:cnonce:qop:H(A2)), H = SHA-256."""
    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    a1 = h(f"{params['username']}:{params['realm']}:{password}")
    a2 = h(f"{method}:{params['uri']}")
    return h(f"{a1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{a2}")


def test_407_sha256_challenge_is_answered_with_proxy_authorization():
    ua = _ua()
    first = _one(ua.start(0.0))
    second = _one(_answer(ua, first, 407, 0.1, [
        ("Proxy-Authenticate", _challenge("abc", algorithm="SHA-256"))]))
    assert second.headers.get("Authorization") is None
    scheme, params = parse_auth_params(second.headers.get("Proxy-Authorization"))
    assert scheme == "Digest" and params["algorithm"] == "SHA-256"
    assert params["uri"] == "sip:127.0.0.1:5090" and params["qop"] == "auth"
    assert params["response"] == _rfc7616_response(params, "secret", "REGISTER")
    assert params["response"] != _rfc7616_response(params, "wrong", "REGISTER")


def test_the_first_challenge_it_can_answer_is_used():
    ua = _ua()
    first = _one(ua.start(0.0))
    second = _one(_answer(ua, first, 401, 0.1, [
        ("WWW-Authenticate", 'Digest realm="r", nonce="x", algorithm=SHA-512-256, qop="auth"'),
        ("WWW-Authenticate", _challenge("y", algorithm="MD5"))]))
    assert parse_auth_params(second.headers.get("Authorization"))[1]["algorithm"] == "MD5"


def test_granted_time_sets_the_refresh_at_80_percent_and_the_refresh_reuses_the_dialog():
    ua = _ua()
    auth = _registered(ua, now=10.0, granted=100)
    [row] = ua.status()
    assert row.state is UpstreamState.REGISTERED and row.registered_until == 110.0
    assert row.last_answer == "200 OK"
    assert ua.next_deadline() == pytest.approx(10.0 + REFRESH_AT * 100)
    assert ua.handle_timers(89.9) == []
    refresh = _one(ua.handle_timers(90.0))
    assert refresh.headers.get("Call-ID") == auth.headers.get("Call-ID")
    assert _cseq(refresh) == 3 and refresh.headers.get("Expires") == "3600"
    assert refresh.headers.get("From") == auth.headers.get("From")


def test_expires_header_is_used_when_the_contact_has_no_parameter():
    ua = _ua()
    first = _one(ua.start(0.0))
    _answer(ua, first, 200, 0.0, [("Expires", "50")])
    assert ua.status()[0].registered_until == 50.0 and ua.next_deadline() == 40.0


def test_contact_expires_of_another_contact_is_not_ours():
    ua = _ua()
    first = _one(ua.start(0.0))
    _answer(ua, first, 200, 0.0, [("Contact", "<sip:other@10.0.0.9:5060>;expires=10, "
                                              "<sip:ratelab@127.0.0.1:5060>;expires=30")])
    assert ua.status()[0].registered_until == 30.0


def test_a_fixed_register_expire_is_asked():
    request = _one(_ua("register_expire = 20").start(0.0))
    assert request.headers.get("Expires") == "20"


def test_403_waits_the_retry_delay_then_tries_again():
    ua = _ua("register_retry_delay = 45")
    first = _one(ua.start(0.0))
    assert _answer(ua, first, 403, 1.0) == []
    [row] = ua.status()
    assert row.state is UpstreamState.FAILING and row.failing_since == 1.0
    assert row.last_answer == "403 Forbidden"
    assert ua.next_deadline() == 46.0 and ua.handle_timers(45.9) == []
    retry = _one(ua.handle_timers(46.0))
    assert _cseq(retry) == 2 and retry.headers.get("Authorization") is None


def test_no_answer_retransmits_then_times_out_and_retries_after_the_delay():
    ua = _ua()
    first = _one(ua.start(0.0))
    sent = []
    now = 0.0
    for _ in range(200):  # bounded: timer F fires at 64*T1 = 32 s
        deadline = ua.next_deadline()
        assert deadline is not None
        now = deadline
        out = ua.handle_timers(now)
        if ua.status()[0].state is UpstreamState.FAILING:
            break
        sent += out
    assert now == pytest.approx(32.0)
    assert len(sent) >= 5 and all(t.message == first for t in sent)  # retransmissions (E)
    assert ua.status()[0].last_answer == "timeout"
    assert ua.next_deadline() == pytest.approx(32.0 + 60.0)


def test_refused_credentials_are_a_failure_but_a_stale_nonce_is_answered_again():
    ua = _ua()
    first = _one(ua.start(0.0))
    second = _one(_answer(ua, first, 401, 0.0, [("WWW-Authenticate", _challenge("a"))]))
    third = _one(_answer(ua, second, 401, 0.0,
                         [("WWW-Authenticate", _challenge("b", stale=True))]))
    assert 'nonce="b"' in third.headers.get("Authorization")
    assert _answer(ua, third, 401, 0.0, [("WWW-Authenticate", _challenge("c"))]) == []
    assert ua.status()[0].state is UpstreamState.FAILING
    assert ua.status()[0].last_answer == "401 Unauthorized"


def test_423_asks_the_registrars_minimum_once():
    ua = _ua("register_expire = 20")
    first = _one(ua.start(0.0))
    second = _one(_answer(ua, first, 423, 0.0, [("Min-Expires", "600")]))
    assert second.headers.get("Expires") == "600"
    # A registrar that asks for no more than what was asked again would loop: a failure.
    assert _answer(ua, second, 423, 0.0, [("Min-Expires", "600")]) == []
    assert ua.status()[0].state is UpstreamState.FAILING


@pytest.mark.parametrize(("privacy", "expected"), [
    ("ignore", {}),
    ("id", {"Privacy": "id", "P-Preferred-Identity": "<sip:ratelab@127.0.0.1>"}),
    ("none", {"Privacy": "none"}),
])
def test_register_privacy_on_the_wire(privacy, expected):
    request = _one(_ua(sip=f'register_privacy = "{privacy}"').start(0.0))
    found = {name: request.headers.get(name) for name in ("Privacy", "P-Preferred-Identity")}
    assert {k: v for k, v in found.items() if v is not None} == expected


def test_unregister_sends_expires_0_on_the_same_dialog_and_answers_its_challenge():
    ua = _ua()
    auth = _registered(ua, granted=100)
    bye = _one(ua.unregister_all(5.0))
    assert bye.headers.get("Expires") == "0" and _cseq(bye) == 3
    for name in ("Call-ID", "Contact", "From", "To"):
        assert bye.headers.get(name) == auth.headers.get(name)
    assert ua.pending == 1
    again = _one(_answer(ua, bye, 401, 5.1, [("WWW-Authenticate", _challenge("u"))]))
    assert again.headers.get("Expires") == "0" and again.headers.get("Authorization")
    _answer(ua, again, 200, 5.2)
    assert ua.pending == 0 and ua.next_deadline() is None
    assert [(r.state, r.last_answer) for r in ua.status()] == [
        (UpstreamState.UNREGISTERED, "200 OK")]


def test_send_unregister_false_sends_nothing():
    ua = _ua(sip="send_unregister = false")
    _registered(ua)
    assert ua.unregister_all(5.0) == [] and ua.pending == 0


def test_nothing_to_unregister_when_never_registered():
    ua = _ua()
    first = _one(ua.start(0.0))
    _answer(ua, first, 403, 0.0)
    assert ua.unregister_all(1.0) == [] and ua.pending == 0


def test_an_unanswered_unregister_gives_up_at_timer_f():
    ua = _ua()
    _registered(ua)
    _one(ua.unregister_all(1.0))
    for _ in range(200):
        deadline = ua.next_deadline()
        if deadline is None:
            break
        ua.handle_timers(deadline)
    assert ua.pending == 0 and ua.next_deadline() is None


def test_reload_unregisters_the_removed_registers_the_added_and_keeps_the_same():
    ua = Upstreams(_config(), local=LOCAL, ids=Ids("t"), cnonce=lambda: "c")
    _registered(ua)
    assert ua.reload(_config(), 1.0) == []  # nothing changed: nothing sent
    sent = ua.reload(_config(name="other"), 2.0)
    assert len(sent) == 2
    by_expires = {t.message.headers.get("Expires"): t.message for t in sent}
    assert set(by_expires) == {"0", "3600"}
    assert by_expires["0"].headers.get("Call-ID") != by_expires["3600"].headers.get("Call-ID")
    assert {(r.gateway, r.state) for r in ua.status()} == {
        ("carrier", UpstreamState.UNREGISTERING), ("other", UpstreamState.REGISTERING)}


def test_a_changed_password_re_registers():
    ua = Upstreams(_config(), local=LOCAL, ids=Ids("t"), cnonce=lambda: "c")
    _registered(ua)
    sent = ua.reload(_config(password="new"), 1.0)
    assert sorted(t.message.headers.get("Expires") for t in sent) == ["0", "3600"]


def test_stray_and_retransmitted_answers_change_nothing():
    ua = _ua()
    auth = _registered(ua, granted=100)
    before = ua.status()
    # The 200 again (a retransmission), and a 403 for an older attempt of the same dialog.
    stale = make_response(auth, 403, to_tag="up1")
    stale.headers.set("Via", re.sub(r"branch=[^;]+", "branch=z9hG4bKold",
                                    auth.headers.get("Via")))
    assert ua.receive(make_response(auth, 200, to_tag="up1"), 1.0) == []
    assert ua.receive(stale, 1.0) == []
    assert ua.status() == before
    other = make_response(auth, 200, to_tag="up1")
    other.headers.set("Call-ID", "someone-else")
    assert not ua.owns(other)


def test_status_rows_round_trip_through_the_file_text():
    ua = _ua()
    _registered(ua, now=0.0, granted=100)
    rows = ua.status(clock_offset=1_800_000_000.0)
    assert rows[0].registered_until == 1_800_000_100.0
    assert load_status_text(dump_status(rows)) == rows
    with pytest.raises(ValueError):
        load_status_text('{"format": "something-else"}')
