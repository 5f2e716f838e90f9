"""RFC 7616 / RFC 8760 digest (switch.sip.digest): the section 3.9.1 vectors, SHA-256 and MD5
challenges in a chosen order, stale nonces, and nonce-count replay refusal.

The client here (``rfc_client``) is written from the RFC 7616 text (sections 3.4.1-3.4.3), not
from digest.py, so that the two implementations check each other.
"""

from __future__ import annotations

import hashlib

import pytest

from switch.sip.digest import (
    Challenge,
    NonceCounts,
    NonceFactory,
    authorization,
    challenges,
    digest_response,
    ha1,
    ha2,
    verify,
)

# --- RFC 7616 section 3.9.1 ----------------------------------------------------------------------

V_REALM = "http-auth@example.org"
V_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
V_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
V_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
V_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


@pytest.mark.parametrize("algorithm, expected", [("MD5", V_MD5), ("SHA-256", V_SHA256)])
def test_rfc7616_vectors(algorithm, expected):
    got = digest_response(
        ha1("Mufasa", V_REALM, "Circle of Life", algorithm), V_NONCE,
        ha2("GET", "/dir/index.html", algorithm), qop="auth", nc="00000001", cnonce=V_CNONCE,
        algorithm=algorithm)
    assert got == expected


@pytest.mark.parametrize("algorithm, expected", [("MD5", V_MD5), ("SHA-256", V_SHA256)])
def test_rfc7616_vectors_through_the_client(algorithm, expected):
    value = authorization(
        f'Digest realm="{V_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{V_NONCE}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        username="Mufasa", password="Circle of Life", method="GET", uri="/dir/index.html",
        cnonce=V_CNONCE)
    assert f'response="{expected}"' in value
    assert f"algorithm={algorithm}" in value


def test_rfc7616_vectors_reference_client():
    for algorithm, expected in (("MD5", V_MD5), ("SHA-256", V_SHA256)):
        fields = rfc_fields(f'Digest realm="{V_REALM}", qop="auth", algorithm={algorithm}, '
                            f'nonce="{V_NONCE}"', "Mufasa", "Circle of Life", "GET",
                            "/dir/index.html", V_CNONCE, 1)
        assert fields["response"] == expected


# --- an independent client, from the RFC 7616 text ----------------------------------------------

def _H(algorithm: str, data: str) -> str:
    # RFC 7616 3.2: "MD5" -> MD5, "SHA-256" -> SHA-256, hex lowercase.
    fn = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm.upper()]
    return fn(data.encode("utf-8")).hexdigest()


def _params(header: str) -> dict[str, str]:
    # Enough for our own challenges: comma-separated k=v, v possibly quoted without escapes.
    _, _, rest = header.partition(" ")
    out: dict[str, str] = {}
    for part in rest.split(", "):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return out


def rfc_fields(header: str, user: str, password: str, method: str, uri: str, cnonce: str,
               nc: int) -> dict[str, str]:
    p = _params(header)
    alg = p.get("algorithm", "MD5")
    a1 = f"{user}:{p['realm']}:{password}"                       # 3.4.2
    a2 = f"{method}:{uri}"                                        # 3.4.3, qop=auth
    nc_hex = f"{nc:08x}"
    response = _H(alg, ":".join([_H(alg, a1), p["nonce"], nc_hex, cnonce, "auth",
                                 _H(alg, a2)]))                   # 3.4.1
    return {"username": user, "realm": p["realm"], "nonce": p["nonce"], "uri": uri,
            "algorithm": alg, "response": response, "qop": "auth", "nc": nc_hex,
            "cnonce": cnonce}


def rfc_client(header: str, user: str, password: str, method: str, uri: str,
               cnonce: str = "0a4f113b", nc: int = 1) -> str:
    f = rfc_fields(header, user, password, method, uri, cnonce, nc)
    return (f'Digest username="{f["username"]}", realm="{f["realm"]}", nonce="{f["nonce"]}", '
            f'uri="{f["uri"]}", algorithm={f["algorithm"]}, response="{f["response"]}", '
            f'qop=auth, nc={f["nc"]}, cnonce="{f["cnonce"]}"')


SECRET = b"rfc7616-test-secret-0001"
REALM = "sw1.example"
T0 = 1_700_000_000.0
USERS = {"gw1": "pa55", "Mufasa": "Circle of Life"}
BOTH = ("SHA-256", "MD5")


@pytest.fixture
def nonces() -> NonceFactory:
    return NonceFactory(SECRET, realm=REALM, lifetime=30.0)


def check(value, nonces, *, now=T0 + 1, counts=None, algorithms=BOTH, method="REGISTER"):
    return verify(value, method=method, password_for=USERS.get, realm=REALM, nonces=nonces,
                  now=now, algorithms=algorithms, counts=counts)


@pytest.mark.parametrize("order", [("SHA-256", "MD5"), ("MD5", "SHA-256"), ("MD5",),
                                   ("SHA-256",)])
def test_challenges_follow_the_configured_order(nonces, order):
    chs = challenges(realm=REALM, nonces=nonces, now=T0, algorithms=order)
    values = [c.header_value() for c in chs]
    assert [Challenge.parse(v).algorithm for v in values] == list(order)
    assert len({Challenge.parse(v).nonce for v in values}) == 1
    assert all('qop="auth"' in v for v in values)


@pytest.mark.parametrize("index", [0, 1])
def test_reference_client_answers_either_challenge(nonces, index):
    header = challenges(realm=REALM, nonces=nonces, now=T0)[index].header_value()
    value = rfc_client(header, "gw1", "pa55", "REGISTER", "sip:sw1.example")
    v = check(value, nonces)
    assert (v.ok, v.username, v.reason) == (True, "gw1", "ok")


@pytest.mark.parametrize("algorithm", BOTH)
def test_library_client_is_accepted_and_matches_reference(nonces, algorithm):
    (ch,) = challenges(realm=REALM, nonces=nonces, now=T0, algorithms=(algorithm,))
    ours = authorization(ch.header_value(), username="gw1", password="pa55", method="REGISTER",
                         uri="sip:sw1.example", cnonce="abc")
    ref = rfc_client(ch.header_value(), "gw1", "pa55", "REGISTER", "sip:sw1.example",
                     cnonce="abc")
    assert _params(ours)["response"] == _params(ref)["response"]
    assert check(ours, nonces).ok


def test_algorithm_not_offered_is_refused(nonces):
    header = challenges(realm=REALM, nonces=nonces, now=T0, algorithms=("MD5",))[0]
    value = rfc_client(header.header_value().replace("MD5", "SHA-256"), "gw1", "pa55",
                       "REGISTER", "sip:sw1.example")
    assert check(value, nonces, algorithms=("MD5",)).reason == "unsupported algorithm"


def test_wrong_password_and_unknown_user(nonces):
    header = challenges(realm=REALM, nonces=nonces, now=T0)[0].header_value()
    wrong = check(rfc_client(header, "gw1", "nope", "REGISTER", "sip:x"), nonces)
    unknown = check(rfc_client(header, "ghost", "nope", "REGISTER", "sip:x"), nonces)
    assert (wrong.ok, wrong.reason, wrong.stale) == (False, "wrong password", False)
    assert (unknown.ok, unknown.reason, unknown.stale) == (False, "unknown user", False)


def test_unknown_user_costs_the_same_hashing(nonces, monkeypatch):
    import switch.sip.digest as d

    calls: list[str] = []
    real = d._h

    def counting(text: str, algorithm: str = "MD5") -> str:
        calls.append(algorithm)
        return real(text, algorithm)

    monkeypatch.setattr(d, "_h", counting)
    header = challenges(realm=REALM, nonces=nonces, now=T0)[0].header_value()
    check(rfc_client(header, "gw1", "nope", "REGISTER", "sip:x"), nonces)
    known = list(calls)
    calls.clear()
    check(rfc_client(header, "ghost", "nope", "REGISTER", "sip:x"), nonces)
    assert calls == known and known


@pytest.mark.parametrize("algorithm", BOTH)
def test_stale_only_when_just_the_nonce_expired(nonces, algorithm):
    (ch,) = challenges(realm=REALM, nonces=nonces, now=T0, algorithms=(algorithm,))
    right = rfc_client(ch.header_value(), "gw1", "pa55", "REGISTER", "sip:x")
    wrong = rfc_client(ch.header_value(), "gw1", "bad", "REGISTER", "sip:x")
    assert check(right, nonces, now=T0 + 29).ok
    late = check(right, nonces, now=T0 + 31)
    assert (late.ok, late.stale, late.reason) == (False, True, "stale nonce")
    late_wrong = check(wrong, nonces, now=T0 + 31)
    assert (late_wrong.ok, late_wrong.stale) == (False, False)
    again = challenges(realm=REALM, nonces=nonces, now=T0 + 31, stale=late.stale)
    assert all("stale=TRUE" in c.header_value() for c in again)


def test_replayed_response_is_refused(nonces):
    counts = NonceCounts()
    header = challenges(realm=REALM, nonces=nonces, now=T0)[0].header_value()
    first = rfc_client(header, "gw1", "pa55", "REGISTER", "sip:x", nc=1)
    assert check(first, nonces, counts=counts).ok
    replay = check(first, nonces, now=T0 + 2, counts=counts)
    assert (replay.ok, replay.reason) == (False, "replayed")
    second = rfc_client(header, "gw1", "pa55", "REGISTER", "sip:x", nc=2)
    assert check(second, nonces, now=T0 + 3, counts=counts).ok
    assert check(first, nonces, now=T0 + 4, counts=counts).reason == "replayed"


def test_wrong_guess_does_not_burn_a_count(nonces):
    counts = NonceCounts()
    header = challenges(realm=REALM, nonces=nonces, now=T0)[0].header_value()
    assert not check(rfc_client(header, "gw1", "bad", "REGISTER", "sip:x", nc=5), nonces,
                     counts=counts).ok
    assert check(rfc_client(header, "gw1", "pa55", "REGISTER", "sip:x", nc=1), nonces,
                 counts=counts).ok


def test_no_qop_response_is_single_use(nonces):
    counts = NonceCounts()
    ch = Challenge(realm=REALM, nonce=nonces.make(T0), qop=None)
    value = authorization(ch.header_value(), username="gw1", password="pa55",
                          method="REGISTER", uri="sip:x", cnonce="")
    assert check(value, nonces, counts=counts).ok
    assert check(value, nonces, counts=counts).reason == "replayed"


def test_nonce_counts_are_bounded_and_expire():
    counts = NonceCounts(max_entries=3)
    for i in range(10):
        assert counts.accept(f"n{i}", 1, now=float(i), lifetime=100.0)
    assert len(counts) <= 3
    assert counts.accept("n9", 2, now=9.0, lifetime=100.0)
    counts.accept("z", 1, now=500.0, lifetime=100.0)
    assert len(counts) == 1
