"""SIP digest authentication (switch.sip.digest): RFC 2617 known answers, client/server round
trips, every failure reason, and credentials written the way SIPp writes them.
"""

from __future__ import annotations

import hashlib

import pytest

from switch.sip.digest import (
    Challenge,
    DigestError,
    NonceFactory,
    Verdict,
    authorization,
    challenge,
    digest_response,
    ha1,
    ha2,
    parse_auth_params,
    verify,
)

SECRET = b"ratelab-test-secret-0001"
REALM = "sw1.example"
T0 = 1_700_000_000.0
USERS = {"1000": "s3cret", "Mufasa": "Circle Of Life"}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture
def nonces() -> NonceFactory:
    return NonceFactory(SECRET, realm=REALM)


def check(value: str, nonces: NonceFactory, *, now: float = T0 + 1, method: str = "INVITE",
          realm: str = REALM) -> Verdict:
    return verify(value, method=method, password_for=USERS.get, realm=realm, nonces=nonces,
                  now=now)


def client(nonces: NonceFactory, *, qop: str | None = "auth", password: str = "s3cret",
           username: str = "1000", realm: str = REALM, now: float = T0, opaque: str | None = None,
           nc: int = 1) -> str:
    ch = Challenge(realm=realm, nonce=nonces.make(now), qop=qop, opaque=opaque)
    return authorization(ch.header_value(), username=username, password=password,
                         method="INVITE", uri="sip:4420712345678@127.0.0.1:5060",
                         cnonce="6b8b4567", nc=nc)


# --- RFC 2617 section 3.5 known answers ---------------------------------------------------------

RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n'
    '                 realm="testrealm@host.com",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 uri="/dir/index.html",\r\n'
    "                 qop=auth,\r\n"
    "                 nc=00000001,\r\n"
    '                 cnonce="0a4f113b",\r\n'
    '                 response="6629fae49393a05397450978507c4ef1",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example_ha1_ha2_response():
    h1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    h2 = ha2("GET", "/dir/index.html")
    assert h1 == "939e7578ed9e3c518a452acee763bce9"
    assert h2 == "39aff3a2bab6126f332b942af96d3366"
    assert digest_response(h1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", h2, qop="auth",
                           nc="00000001", cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_example_header_parses_and_recomputes():
    scheme, p = parse_auth_params(RFC2617_AUTHORIZATION)
    assert scheme == "Digest"
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    got = digest_response(ha1(p["username"], p["realm"], "Circle Of Life"), p["nonce"],
                          ha2("GET", p["uri"]), qop=p["qop"], nc=p["nc"], cnonce=p["cnonce"])
    assert got == p["response"]


def test_rfc2069_form_known_answer():
    # The RFC 2069 example's inputs (its printed response is a known erratum); no qop, no cnonce.
    got = digest_response(ha1("Mufasa", "testrealm@host.com", "CircleOfLife"),
                          "dcd98b7102dd2f0e8b11d0f600bfb0c093", ha2("GET", "/dir/index.html"))
    assert got == "1949323746fe6a43ef61f9606e7febea"


def test_rfc2617_example_adapted_to_sip(nonces):
    # Same user, password and realm, but an INVITE to a SIP URI and a nonce of ours.
    f = NonceFactory(SECRET, realm="testrealm@host.com")
    nonce = f.make(T0)
    uri = "sip:4420712345678@testrealm"
    h1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    response = md5(f"{h1}:{nonce}:00000001:0a4f113b:auth:{md5('INVITE:' + uri)}")
    value = (f'Digest username="Mufasa", realm="testrealm@host.com", nonce="{nonce}", '
             f'uri="{uri}", qop=auth, nc=00000001, cnonce="0a4f113b", response="{response}", '
             'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    v = check(value, f, realm="testrealm@host.com")
    assert v == Verdict(ok=True, username="Mufasa", reason="ok", stale=False)
    assert check(value, f, realm="testrealm@host.com", method="BYE").reason == "wrong password"


# --- SIPp's own format ------------------------------------------------------------------------
# SIPp's createAuthHeader writes: Digest username="..",realm=".."[,cnonce="..",nc=..,qop=..]
# ,uri="..",nonce="..",response="..",algorithm=MD5[,opaque=".."] with no spaces. The nonce below
# is NonceFactory(SECRET, realm=REALM).make(T0), and the responses were computed with hashlib for
# user 1000 / s3cret.

SIPP_NONCE = "AAABi8_laAD0dj4_zsox-1d_Y8Sp5HZh"
SIPP_NO_QOP = (
    'Digest username="1000",realm="sw1.example",uri="sip:4420712345678@127.0.0.1:5060",'
    'nonce="AAABi8_laAD0dj4_zsox-1d_Y8Sp5HZh",response="b00a879c87cf12f4042a322249d7d65d",'
    "algorithm=MD5"
)
SIPP_QOP = (
    'Digest username="1000",realm="sw1.example",cnonce="6b8b4567",nc=00000001,qop=auth,'
    'uri="sip:4420712345678@127.0.0.1:5060",nonce="AAABi8_laAD0dj4_zsox-1d_Y8Sp5HZh",'
    'response="490faf311f4cf26d12db3abb86e01e23",algorithm=MD5,opaque="op"'
)


def test_nonce_format_is_pinned(nonces):
    assert nonces.make(T0) == SIPP_NONCE


@pytest.mark.parametrize("value", [SIPP_NO_QOP, SIPP_QOP], ids=["no-qop", "qop"])
def test_sipp_literal_authorization_verifies(nonces, value):
    assert check(value, nonces) == Verdict(ok=True, username="1000", reason="ok", stale=False)


def test_sipp_literal_with_wrong_method_fails(nonces):
    assert check(SIPP_NO_QOP, nonces, method="REGISTER").reason == "wrong password"


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("qop", ["auth", None], ids=["qop", "no-qop"])
def test_round_trip(nonces, qop):
    value = client(nonces, qop=qop, opaque="xyz")
    _, p = parse_auth_params(value)
    assert ("qop" in p) == (qop is not None)
    assert ("cnonce" in p) == (qop is not None)
    assert p["opaque"] == "xyz"
    assert check(value, nonces) == Verdict(ok=True, username="1000", reason="ok", stale=False)


def test_round_trip_odd_characters(nonces):
    users = {'we"ird\\user': 'pä"ss,word'}
    f = NonceFactory(SECRET, realm='r "1", x')
    ch = Challenge(realm='r "1", x', nonce=f.make(T0))
    value = authorization(ch.header_value(), username='we"ird\\user', password='pä"ss,word',
                          method="INVITE", uri="sip:1@h", cnonce='c"n')
    v = verify(value, method="INVITE", password_for=users.get, realm='r "1", x', nonces=f,
               now=T0)
    assert v.ok and v.username == 'we"ird\\user'


def test_client_nc_formatting_and_qop_choice(nonces):
    ch = Challenge(realm=REALM, nonce=nonces.make(T0), qop="auth-int, auth")
    value = authorization(ch.header_value(), username="1000", password="s3cret", method="INVITE",
                          uri="sip:1@h", cnonce="abc", nc=0x1F)
    _, p = parse_auth_params(value)
    assert (p["qop"], p["nc"], p["cnonce"]) == ("auth", "0000001f", "abc")
    assert check(value, nonces).ok


def test_uppercase_hex_response_accepted(nonces):
    value = SIPP_NO_QOP.replace("b00a879c87cf12f4042a322249d7d65d",
                                "B00A879C87CF12F4042A322249D7D65D")
    assert check(value, nonces).ok


def test_lowercase_scheme_and_param_names(nonces):
    value = SIPP_NO_QOP.replace("Digest", "digest").replace("username=", "UserName=")
    assert check(value, nonces).ok


# --- failures -----------------------------------------------------------------------------------


def test_wrong_password(nonces):
    v = check(client(nonces, password="guess"), nonces)
    assert v == Verdict(ok=False, username="1000", reason="wrong password", stale=False)


def test_unknown_user(nonces):
    v = check(client(nonces, username="9999"), nonces)
    assert v == Verdict(ok=False, username="9999", reason="unknown user", stale=False)


def test_wrong_realm(nonces):
    assert check(client(nonces, realm="other.example"), nonces).reason == "wrong realm"


def test_tampered_nonce_is_invalid(nonces):
    _, p = parse_auth_params(SIPP_NO_QOP)
    n = p["nonce"]
    forged = n[:-1] + ("A" if n[-1] != "A" else "B")
    assert check(SIPP_NO_QOP.replace(n, forged), nonces).reason == "invalid nonce"
    # Pushing the timestamp forward (to dodge expiry) breaks the MAC too.
    later = NonceFactory(b"another-secret-entirely", realm=REALM).make(T0)
    assert check(SIPP_NO_QOP.replace(n, later), nonces).reason == "invalid nonce"


def test_invalid_nonce_never_looks_up_the_user(nonces):
    def password_for(user: str) -> str | None:
        raise AssertionError("password looked up for a forged nonce")

    value = SIPP_NO_QOP.replace(SIPP_NONCE, "not-a-nonce")
    v = verify(value, method="INVITE", password_for=password_for, realm=REALM, nonces=nonces,
               now=T0)
    assert v.reason == "invalid nonce"


def test_expired_nonce_is_stale_and_rechallenged(nonces):
    value = client(nonces, now=T0)
    assert check(value, nonces, now=T0 + 299.9).ok
    v = check(value, nonces, now=T0 + 300.5)
    assert v == Verdict(ok=False, username="1000", reason="stale nonce", stale=True)
    nxt = challenge(realm=REALM, nonces=nonces, now=T0 + 300.5, stale=v.stale)
    assert "stale=TRUE" in nxt.header_value()
    assert Challenge.parse(nxt.header_value()).stale
    # The client answers the new challenge without asking its user again.
    retry = authorization(nxt.header_value(), username="1000", password="s3cret",
                          method="INVITE", uri="sip:1@h", cnonce="x", nc=1)
    assert check(retry, nonces, now=T0 + 301).ok


def test_expired_nonce_with_wrong_password_is_not_stale(nonces):
    v = check(client(nonces, password="guess", now=T0), nonces, now=T0 + 1000)
    assert (v.reason, v.stale) == ("wrong password", False)


@pytest.mark.parametrize("algorithm", ["SHA-512-256", "SHA-256", "MD5-sess"])
def test_unsupported_algorithm(nonces, algorithm):
    value = SIPP_NO_QOP.replace("algorithm=MD5", f"algorithm={algorithm}")
    assert check(value, nonces) == Verdict(ok=False, username="1000",
                                           reason="unsupported algorithm", stale=False)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "Digest",
        'Basic dXNlcjpwYXNz',
        'Digest username="1000" realm="sw1.example"',
        'Digest username="1000",realm="sw1.example",nonce="x",uri="sip:a"',  # no response
        'Digest username="1000,realm="sw1.example"',
        'Digest username="a",username="b",realm="r",nonce="n",uri="u",response="r"',
        'Digest username="a",realm="r",nonce="n",uri="u",response="not-hex"',
        'Digest username="a",realm="r",nonce="n",uri="u",response="' + "0" * 33 + '"',
        SIPP_QOP.replace("nc=00000001,", ""),
        SIPP_QOP.replace("nc=00000001", "nc=1"),
        SIPP_QOP.replace('cnonce="6b8b4567",', ""),
        SIPP_QOP.replace("qop=auth", "qop=auth-int"),
        SIPP_NO_QOP + ',cnonce="abc"',  # cnonce without qop
        SIPP_NO_QOP.replace("username", "usérname"),
        SIPP_NO_QOP + ",=x",
    ],
)
def test_malformed(nonces, value):
    assert check(value, nonces).reason == "malformed"
    assert not check(value, nonces).ok


# --- parse_auth_params --------------------------------------------------------------------------


def test_parse_commas_and_escaped_quotes_in_quoted_strings():
    scheme, p = parse_auth_params(
        r'Digest realm="a, b", opaque="say \"hi\", then go", nonce="x\\y",  qop="auth,auth-int"'
    )
    assert scheme == "Digest"
    assert p == {"realm": "a, b", "opaque": 'say "hi", then go', "nonce": "x\\y",
                 "qop": "auth,auth-int"}


def test_parse_lowercases_names_and_tolerates_whitespace_and_empty_elements():
    scheme, p = parse_auth_params('DIGEST  Realm = "r" ,, NC=00000001 ,\tAlgorithm=MD5,')
    assert scheme == "DIGEST"
    assert p == {"realm": "r", "nc": "00000001", "algorithm": "MD5"}


@pytest.mark.parametrize(
    "value",
    [
        "",
        '"Digest" realm="r"',
        "Digest,realm=r",
        "Digest realm",
        "Digest realm=",
        'Digest realm="r" nonce="n"',
        'Digest realm="unterminated',
        'Digest realm="dangling\\',
        'Digest realm="r", realm="s"',
        "Digest realm=a b",
        "Digest réalm=x",
    ],
)
def test_parse_rejects_garbage(value):
    with pytest.raises(DigestError):
        parse_auth_params(value)


# --- Challenge, NonceFactory, client errors ------------------------------------------------------


def test_challenge_header_value_and_parse_round_trip():
    ch = Challenge(realm='a "q"', nonce="n1", opaque="o", stale=True)
    assert ch.header_value() == (
        'Digest realm="a \\"q\\"", nonce="n1", opaque="o", algorithm=MD5, qop="auth", stale=TRUE'
    )
    assert Challenge.parse(ch.header_value()) == ch
    plain = Challenge(realm="r", nonce="n", qop=None)
    assert plain.header_value() == 'Digest realm="r", nonce="n", algorithm=MD5'
    assert Challenge.parse(plain.header_value()) == plain


def test_challenge_refuses_line_breaks():
    with pytest.raises(DigestError):
        Challenge(realm="r\r\nX-Evil: 1", nonce="n").header_value()


def test_nonce_factory_checks():
    f = NonceFactory(SECRET, lifetime=10, realm=REALM)
    n = f.make(100.0)
    assert len(n) == 32
    assert f.make(100.0) == n  # deterministic: no hidden clock or randomness
    assert f.check(n, 100.0) == "ok"
    assert f.check(n, 110.0) == "ok"
    assert f.check(n, 110.01) == "stale"
    assert f.check(n, 50.0) == "stale"  # clock went back: ours, but not usable
    assert NonceFactory(SECRET, realm="other").check(n, 100.0) == "invalid"
    assert NonceFactory(SECRET + b"x", realm=REALM).check(n, 100.0) == "invalid"
    for junk in ["", "abc", n + "A", n[:-1] + "+", n[:-1] + "é"]:
        assert f.check(junk, 100.0) == "invalid"


def test_nonce_factory_argument_checks():
    with pytest.raises(ValueError):
        NonceFactory(b"short")
    with pytest.raises(ValueError):
        NonceFactory(SECRET, lifetime=0)
    with pytest.raises(ValueError):
        NonceFactory(SECRET).make(-1.0)


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="r"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-int"',
        "Digest realm=",
    ],
)
def test_client_rejects_unanswerable_challenges(value):
    with pytest.raises(DigestError):
        authorization(value, username="u", password="p", method="INVITE", uri="sip:x",
                      cnonce="c")


@pytest.mark.parametrize("nc, cnonce", [(0, "c"), (2**32, "c"), (1, "")])
def test_client_argument_checks(nc, cnonce):
    with pytest.raises(ValueError):
        authorization('Digest realm="r", nonce="n", qop="auth"', username="u", password="p",
                      method="INVITE", uri="sip:x", cnonce=cnonce, nc=nc)
