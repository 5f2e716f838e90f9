"""SIP and other URIs (RFC 3261 sections 19.1 and 25.1): validate and take apart, sans-IO.

One place answers "is this a Request-URI" and "what are the user, host and port of this URI".
:func:`is_request_uri` is the parser's hot-path check (one compiled regex, no objects);
:func:`parse_uri` returns a :class:`SipUri` for code that needs the parts.

A ``sip:``/``sips:`` URI must follow the SIP-URI grammar: optional userinfo, a host that is a
hostname, an IPv4 address (octets 0-255) or a bracketed IPv6 reference, a port in 1-65535,
``;name[=value]`` parameters and ``?name=value&...`` headers, each made of the characters the
grammar allows (anything else %-escaped). Any other scheme is an RFC 2396 absoluteURI
(``scheme ":"`` then URI characters): the parser lets it through, and the caller decides (a
proxy or B2BUA answers 416 Unsupported URI Scheme).

>>> u = parse_uri("sip:+15551234567@sw1.example.net:5060;user=phone")
>>> u.scheme, u.user, u.host, u.port, u.param("user")
('sip', '+15551234567', 'sw1.example.net', 5060, 'phone')
>>> is_request_uri("<sip:a@h>"), is_request_uri("tel:+15551234567")
(False, True)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["SipUri", "UriError", "is_request_uri", "parse_uri"]


class UriError(ValueError):
    """Text that is not a valid URI (the message says why).

    >>> str(UriError("no scheme"))
    'no scheme'
    """


# --- grammar pieces (shared with switch.sip.syntax) --------------------------------------------
# Possessive quantifiers (Python 3.11+) where the next character can never continue the run:
# they keep the regex engine from backtracking through long hostile input.

_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
ESCAPED = r"%[0-9A-Fa-f]{2}"
# Most octets are below 200, so that alternative goes first.
OCTET = r"(?:[01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])"
IPV4 = rf"{OCTET}\.{OCTET}\.{OCTET}\.{OCTET}"
_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
_TOPLABEL = r"[A-Za-z][A-Za-z0-9]*+(?:-++[A-Za-z0-9]++)*+"
# Possessive, so a long run of labels is never backtracked through; the lookahead keeps the
# loop off the trailing dot of an FQDN ("example.com.").
HOSTNAME = rf"(?:{_LABEL}\.(?=[A-Za-z0-9]))*+{_TOPLABEL}\.?"
IPV6_REF = r"\[[0-9A-Fa-f:.]++\]"
HOST = rf"(?:{IPV4}|{HOSTNAME}|{IPV6_REF})"
# 1-65535, leading zeros allowed (port = 1*DIGIT); 0 and anything above 65535 do not match.
PORT = (r"0*+(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
        r"|6553[0-5])")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]++"
SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*+"


def _many(chars: str, *, empty: bool = False) -> str:
    # 1*(chars / escaped), unrolled: runs of plain characters are one C-level repeat, and the
    # regex engine loops only once per %XX escape (a group per character is 2-3 times slower).
    tail = rf"[{chars}]*+(?:{ESCAPED}[{chars}]*+)*+"
    return tail if empty else rf"(?:[{chars}]|{ESCAPED}){tail}"


# user: unreserved / escaped / user-unreserved; '#' from RFC 2806's telephone-subscriber.
_USER = _many(rf"{_UNRESERVED}&=+$,;?/#")
_PASSWORD = _many(rf"{_UNRESERVED}&=+$,", empty=True)
_PARAMCHAR = _many(rf"{_UNRESERVED}\[\]/:&+$")
_HNAME = _many(rf"{_UNRESERVED}\[\]/?:+$")
_HVALUE = _many(rf"{_UNRESERVED}\[\]/?:+$", empty=True)
_URIC = _many(rf"{_UNRESERVED};/?:@&=+$,\[\]")


def _sip_uri(group: str, *, ipv6: bool = True) -> str:
    # The SIP-URI grammar; ``group`` is "?P<{}>" for named groups or "?:" for none (captures
    # cost a sixth of a match, and checks need none); ``ipv6=False`` leaves out the IPv6
    # reference, the one host form the regex cannot decide alone.
    def g(name: str) -> str:
        return group.format(name)

    v6 = rf"|\[({g('v6')}[0-9A-Fa-f:.]++)\]" if ipv6 else ""
    return (
        rf"({g('scheme')}[Ss][Ii][Pp][Ss]?):"
        rf"(?:({g('user')}{_USER})(?::({g('password')}{_PASSWORD}))?@)?"
        rf"({g('host')}{IPV4}|{HOSTNAME}{v6})"
        rf"(?::({g('port')}{PORT}))?"
        rf"({g('params')}(?:;{_PARAMCHAR}(?:={_PARAMCHAR})?)*+)"
        rf"(?:\?({g('headers')}{_HNAME}={_HVALUE}(?:&{_HNAME}={_HVALUE})*+))?"
    )


_SIP_URI = re.compile(_sip_uri("?P<{}>"))
# A SIP/SIPS URI with any host but an IPv6 reference, no captures: what it matches is valid as
# it stands (the parser's request-line regex embeds it).
SIP_URI_PLAIN = _sip_uri("?:", ipv6=False)
_SIP_URI_PLAIN = re.compile(SIP_URI_PLAIN)
_ABSOLUTE_URI = re.compile(rf"(?P<scheme>{SCHEME}):(?P<rest>{_URIC})")


def valid_ipv6(text: str) -> bool:
    """True when ``text`` (without brackets) is an IPv6 address.

    >>> valid_ipv6("2001:db8::1"), valid_ipv6("1:2:3"), valid_ipv6("::ffff:192.0.2.1")
    (True, False, True)
    """
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_SIP_PREFIXES = ("sip:", "sips:")


def _scheme_is_sip(text: str) -> bool:
    if text.startswith(_SIP_PREFIXES):
        return True
    return text[:1] in ("s", "S") and text[:5].lower().startswith(_SIP_PREFIXES)


def is_request_uri(text: str) -> bool:
    """True when ``text`` is a valid Request-URI: a SIP/SIPS URI or another absoluteURI.

    >>> is_request_uri("sip:bob@[2001:db8::1]:5060;transport=tcp?Subject=hi")
    True
    >>> [is_request_uri(t) for t in ("sip:a@h:0", "sip:a@h:", "sip:a b@h", "sip:a@256.1.1.1")]
    [False, False, False, False]
    """
    if _scheme_is_sip(text):
        if "[" not in text:
            return _SIP_URI_PLAIN.fullmatch(text) is not None
        # The regex only checks an IPv6 reference's characters; "[" elsewhere is rare too.
        match = _SIP_URI.fullmatch(text)
        return match is not None and (match.group("v6") is None or valid_ipv6(match.group("v6")))
    return _ABSOLUTE_URI.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class SipUri:
    """The parts of a URI; for SIP/SIPS all of them, for other schemes what can be told.

    ``scheme`` and ``host`` are lower-case; ``user``, ``password``, parameter values and headers
    are as written (%-escapes kept). Parameter names are lower-case; a flag parameter (``;lr``)
    has the value None. For ``tel:`` the number is ``user`` and its parameters are ``params``;
    for other schemes everything after the colon is ``opaque``.

    >>> u = parse_uri("sips:alice:pw@[2001:DB8::1];LR;maddr=10.0.0.1?Subject=x")
    >>> u.host, u.port, u.params, u.headers, u.password
    ('[2001:db8::1]', None, (('lr', None), ('maddr', '10.0.0.1')), (('Subject', 'x'),), 'pw')
    """

    scheme: str
    user: str | None
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    password: str | None = None
    opaque: str = ""

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs.

        >>> parse_uri("tel:+1555").is_sip, parse_uri("SIP:h").is_sip
        (False, True)
        """
        return self.scheme in ("sip", "sips")

    def param(self, name: str, default: str | None = None) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive); ``""`` for a flag parameter.

        >>> u = parse_uri("sip:h;lr;transport=TCP")
        >>> u.param("Transport"), u.param("lr"), u.param("maddr")
        ('TCP', '', None)
        """
        wanted = name.lower()
        for key, value in self.params:
            if key == wanted:
                return "" if value is None else value
        return default


def _split_params(text: str) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        if item:
            key, eq, value = item.partition("=")
            out.append((key.lower(), value if eq else None))
    return tuple(out)


def parse_uri(text: str) -> SipUri:
    """Parse a URI (a Request-URI, or the URI inside a From/To/Contact value).

    Raises :class:`UriError` when ``text`` is not a valid SIP/SIPS URI (for those schemes) or
    not an absoluteURI (for any other).

    >>> u = parse_uri("sip:user;par=u%40example.net@example.com")
    >>> u.user, u.host
    ('user;par=u%40example.net', 'example.com')
    >>> parse_uri("tel:+1-201-555-0123;phone-context=example.com").user
    '+1-201-555-0123'
    >>> parse_uri("<sip:a@h>")
    Traceback (most recent call last):
    ...
    switch.sip.uri.UriError: not a valid URI: '<sip:a@h>'
    """
    if _scheme_is_sip(text):
        match = _SIP_URI.fullmatch(text)
        if match is None or (match.group("v6") is not None and not valid_ipv6(match["v6"])):
            raise UriError(f"not a valid SIP URI: {text[:80]!r}")
        port = match.group("port")
        headers = match.group("headers")
        return SipUri(
            scheme=match.group("scheme").lower(),
            user=match.group("user"),
            host=match.group("host").lower(),
            port=int(port) if port is not None else None,
            params=_split_params(match.group("params")),
            headers=tuple(
                (name, value) for name, _, value in (h.partition("=") for h in headers.split("&"))
            ) if headers else (),
            password=match.group("password"),
        )
    match = _ABSOLUTE_URI.fullmatch(text)
    if match is None:
        raise UriError(f"not a valid URI: {text[:80]!r}")
    scheme, rest = match.group("scheme").lower(), match.group("rest")
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return SipUri(scheme, number, "", None, _split_params(params), opaque=rest)
    return SipUri(scheme, None, "", None, opaque=rest)
