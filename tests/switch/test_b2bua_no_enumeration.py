"""No account enumeration on the INVITE digest path: an unknown username and a known gateway
with a wrong password get byte-identical answers and cost the same digest work; only the right
password is told apart, by success. Also: a replayed Proxy-Authorization is refused.
"""

from __future__ import annotations

import pytest

import switch.sip.digest as digest
from switch.sip import Response, authorization, serialize
from tests.switch.b2bua_harness import BASE_CONFIG, Harness, config

GATEWAYS = """
[[mapping_gateway]]
name = "zeta"
auth = "password"
password = "s3cret"
addresses = []

[[mapping_gateway]]
name = "fenced"
auth = "password"
password = "s3cret"
addresses = ["10.1.1.1"]
"""
URI = "sip:447700900123@127.0.0.1:5060"


def _harness() -> Harness:
    return Harness.make(config(GATEWAYS, base=BASE_CONFIG.replace(
        'addresses = ["127.0.0.1"]\n', 'addresses = ["10.9.9.9"]\n')))


def _responses(sent) -> list[Response]:
    return [t.message for t in sent if isinstance(t.message, Response)]


def _attempt(username: str, password: str) -> tuple[bytes, bytes]:
    """The challenge and the answer to credentials, as bytes on the wire."""
    h = _harness()
    first = _responses(h.invite())[-1]
    creds = authorization(first.headers.get("proxy-authenticate"), username=username,
                          password=password, method="INVITE", uri=URI, cnonce="abc")
    h.from_customer("ACK", cseq=1, branch="a1", to_tag=None)
    second = _responses(h.invite(branch="a2", cseq=2,
                                 extra=f"Proxy-Authorization: {creds}\n"))[-1]
    return serialize(first), serialize(second)


@pytest.mark.parametrize("known", ["zeta", "fenced"])
def test_unknown_user_and_wrong_password_look_the_same(known):
    wrong = _attempt(known, "wrong")
    unknown = _attempt("ghost", "wrong")
    assert wrong == unknown
    assert wrong[1].startswith(b"SIP/2.0 403 ")


def test_right_password_is_told_apart_only_by_success():
    h = _harness()
    first = _responses(h.invite())[-1]
    creds = authorization(first.headers.get("proxy-authenticate"), username="zeta",
                          password="s3cret", method="INVITE", uri=URI, cnonce="abc")
    h.from_customer("ACK", cseq=1, branch="a1", to_tag=None)
    h.invite(branch="a2", cseq=2, extra=f"Proxy-Authorization: {creds}\n")
    assert h.requests_to(5070)


@pytest.mark.parametrize("known", ["zeta", "fenced"])
def test_unknown_user_costs_the_same_digest_work(monkeypatch, known):
    calls: list[str] = []
    real = digest._h

    def counting(text: str, algorithm: str = "MD5") -> str:
        calls.append(algorithm)
        return real(text, algorithm)

    monkeypatch.setattr(digest, "_h", counting)
    _attempt(known, "wrong")
    known_work = list(calls)
    calls.clear()
    _attempt("ghost", "wrong")
    assert calls == known_work and known_work


def test_replayed_proxy_authorization_is_refused():
    h = _harness()
    first = _responses(h.invite())[-1]
    creds = authorization(first.headers.get("proxy-authenticate"), username="zeta",
                          password="s3cret", method="INVITE", uri=URI, cnonce="abc")
    h.from_customer("ACK", cseq=1, branch="a1", to_tag=None)
    h.invite(branch="a2", cseq=2, extra=f"Proxy-Authorization: {creds}\n")
    assert len(h.requests_to(5070)) == 1
    replay = _responses(h.invite(call="c2", branch="b1", cseq=1,
                                 extra=f"Proxy-Authorization: {creds}\n"))[-1]
    assert replay.status == 403
    assert len(h.requests_to(5070)) == 1
