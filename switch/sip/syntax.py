"""Grammar checks of the header values the parser validates (RFC 3261 section 25.1).

Each check is one compiled regex over the whole value (no per-character Python loop): the
parser runs them on every message. They say valid or not; the parser names the header.

- Via: ``sent-protocol LWS sent-by *(;via-params)``, comma lists allowed, LWS around ``/``,
  ``:``, ``;`` and ``=`` allowed (RFC 4475's wsinv folds a Via across three lines).
- From, To, Contact: a name-addr (display name as quoted string or tokens, then ``<URI>``) or
  an addr-spec, then ``;params``; Contact may be ``*`` or a comma list. The URI itself is only
  checked for shape (a scheme, no whitespace, quotes or angle brackets; an addr-spec also
  without ``;``, ``,`` or ``?``): bytes that are not UTF-8 stay allowed there, since the engine
  keeps them and the CDR escapes them.
- Max-Forwards, CSeq number, Content-Length: digits only, bounded before ``int()`` (which
  refuses very long digit strings with a ValueError of its own).

>>> valid_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"), valid_via("garbage")
(True, False)
>>> valid_address('"A" <sip:a@h>;tag=1'), valid_address("A, B <sip:a@h>")
(True, False)
"""

from __future__ import annotations

import re

from switch.sip.uri import HOST, IPV6_REF, PORT, SCHEME, TOKEN, valid_ipv6

__all__ = ["digits_value", "valid_address", "valid_contact", "valid_via"]

_SP = r"[ \t]"
QUOTED = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_GEN_VALUE = rf"(?:{TOKEN}|{IPV6_REF}|{QUOTED})"
_PARAMS = rf"(?:{_SP}*+;{_SP}*+{TOKEN}(?:{_SP}*+={_SP}*+{_GEN_VALUE})?)*+"

_SENT_BY = rf"{HOST}(?:{_SP}*+:{_SP}*+{PORT})?"
_VIA_PARM_20 = rf"[Ss][Ii][Pp]{_SP}*+/{_SP}*+2\.0{_SP}*+/{_SP}*+{TOKEN}{_SP}++{_SENT_BY}{_PARAMS}"
_VIA_PARM_ANY = (rf"[Ss][Ii][Pp]{_SP}*+/{_SP}*+{TOKEN}{_SP}*+/{_SP}*+{TOKEN}{_SP}++{_SENT_BY}"
                 rf"{_PARAMS}")
_VIA_20 = re.compile(rf"{_VIA_PARM_20}(?:{_SP}*+,{_SP}*+{_VIA_PARM_20})*+")
_VIA_ANY = re.compile(rf"{_VIA_PARM_ANY}(?:{_SP}*+,{_SP}*+{_VIA_PARM_ANY})*+")
_BRACKETED_V6 = re.compile(r"\[([^\]]*)\]")

# Display-name tokens may hold non-ASCII characters (liberal: nothing routes on them).
_DISPLAY_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~\x80-\U0010ffff]++"
_URI_IN_BRACKETS = rf"<{SCHEME}:[^\x00-\x20\x7f<>\"]++>"
_ADDR_SPEC = rf"{SCHEME}:[^\x00-\x20\x7f<>\";,?]++"
_ADDR = (rf"(?:(?:{QUOTED}|{_DISPLAY_TOKEN}(?:{_SP}++{_DISPLAY_TOKEN})*+)?+{_SP}*+"
         rf"{_URI_IN_BRACKETS}|{_ADDR_SPEC}){_PARAMS}")
_ADDRESS = re.compile(_ADDR)
_CONTACT = re.compile(rf"\*|{_ADDR}(?:{_SP}*+,{_SP}*+{_ADDR})*+")

# The parser calls these bound methods directly (a Python wrapper per value costs a sixth of a
# match): the same checks as valid_via(), valid_address() and valid_contact(), but that a Via
# with "[" still needs valid_via() for its IPv6 reference.
fullmatch_via = _VIA_20.fullmatch
fullmatch_via_any_version = _VIA_ANY.fullmatch
fullmatch_address = _ADDRESS.fullmatch
fullmatch_contact = _CONTACT.fullmatch


def valid_via(value: str, *, any_version: bool = False) -> bool:
    """True when one Via header value (possibly a comma list) is grammatical.

    Protocol name ``SIP`` and version ``2.0`` (case-insensitive; ``any_version`` accepts any
    version token, for a request that gets 505 anyway), any transport token (``XYZ`` is
    RFC 3261's other-transport), a host, an optional port 1-65535, well-formed parameters.

    >>> valid_via("SIP / 2.0 / UDP  h.example.com ; branch = z9hG4bK1 , sip/2.0/XYZ [::1]:5")
    True
    >>> [valid_via(f"SIP/2.0/UDP h{p}") for p in (":-1", ":65536", ":", ":5a", ";;", ":65535")]
    [False, False, False, False, False, True]
    >>> valid_via("SIP/7.0/UDP h"), valid_via("SIP/7.0/UDP h", any_version=True)
    (False, True)
    """
    pattern = _VIA_ANY if any_version else _VIA_20
    if pattern.fullmatch(value) is None:
        return False
    if "[" in value:  # the regex only checks the characters of an IPv6 reference
        return all(valid_ipv6(v6) for v6 in _BRACKETED_V6.findall(value))
    return True


def valid_address(value: str) -> bool:
    """True when a From or To value is one name-addr or addr-spec with parameters.

    >>> valid_address('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com> ; tag = 98asjd8')
    True
    >>> [valid_address(v) for v in ('"Mr. J. User <sip:j@h>', '"W" < sip:t@h >', "sip:a@h?x=1")]
    [False, False, False]
    """
    return _ADDRESS.fullmatch(value) is not None


def valid_contact(value: str) -> bool:
    """True when a Contact value is ``*`` or a comma list of addresses.

    >>> valid_contact("*"), valid_contact("<sip:a@h>;expires=60, sip:b@h;q=0.5")
    (True, True)
    >>> valid_contact("sip:user@example.com?Route=%3Csip:sip.example.com%3E")
    False
    """
    return _CONTACT.fullmatch(value) is not None


def digits_value(text: str, maximum: int) -> int | None:
    """The value of ``1*DIGIT`` when it is at most ``maximum``; None otherwise.

    Leading zeros are allowed (``0068`` is 68); the length is checked before ``int()``.

    >>> digits_value("0068", 255), digits_value("-1", 255), digits_value("9" * 20, 2**31 - 1)
    (68, None, None)
    """
    if len(text) < 10 and text.isdigit() and text.isascii():  # the common case: one int()
        value = int(text)
        return value if value <= maximum else None
    if not (text.isdigit() and text.isascii()):
        return None
    significant = text.lstrip("0")
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant) if significant else 0
    return value if value <= maximum else None
