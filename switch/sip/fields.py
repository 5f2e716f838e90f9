"""Checks of a SIP message's start line and of single fields (CSeq, folded lines).

The parts of :mod:`switch.sip.message`'s head parser that look at one line at a time; kept apart
so the parser itself stays one readable pass over the header section.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from switch.sip.errors import SipParseError
from switch.sip.headers import _is_token
from switch.sip.limits import ParseLimits
from switch.sip.syntax import digits_value
from switch.sip.uri import is_request_uri

if TYPE_CHECKING:
    from switch.sip.message import Request

_CSEQ_MAX = 2**31 - 1  # RFC 3261 8.1.1.5: the sequence number is less than 2**31
# Controls a reason phrase may not hold (HTAB is allowed, RFC 3261 25.1).
_REASON_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_version(version: str) -> str | None:
    # RFC 3261 7.1: the version string is case-insensitive; anything else is "not 2.0".
    if version == "SIP/2.0":
        return None
    if version.upper() == "SIP/2.0":
        return None
    return f"unsupported SIP version {version!r}"


def _taint(text: str) -> str:
    return "nul_byte" if "\x00" in text else "bare_crlf"


def _has_control(value: str) -> bool:
    return "\x00" in value or "\r" in value or "\n" in value


def _label(name: str) -> str:
    # A header name as it goes into a reason phrase: canonical, token characters, bounded.
    return name[:40]


class _Deferred:
    """A problem found before the request can be built; raised once we know it can be answered."""

    __slots__ = ("kind", "phrase", "reason", "status")

    def __init__(self, reason: str, status: int, phrase: str, kind: str) -> None:
        self.reason, self.status, self.phrase, self.kind = reason, status, phrase, kind


def _request_line(first: str, limits: ParseLimits) -> tuple[str, str, _Deferred | None]:
    """(method, Request-URI, answerable problem or None); SipParseError when unanswerable."""
    deferred: _Deferred | None = None
    parts = first.split(" ")
    if len(parts) == 3 and parts[1]:
        method, uri, version = parts
    else:
        # Extra spaces (RFC 4475 lwsstart, trws) or a Request-URI with spaces in it (lwsruri):
        # answerable when a method and a SIP version frame the rest.
        words = first.split()
        if (len(words) < 3 or not _is_token(words[0])
                or not words[-1].upper().startswith("SIP/")):
            raise SipParseError(f"malformed request line {first[:80]!r}",
                                phrase="Bad Request Line", kind="bad_request_line")
        method, uri, version = words[0], " ".join(words[1:-1]), words[-1]
        if len(words) == 3:
            deferred = _Deferred(f"extra whitespace in request line {first[:80]!r}", 400,
                                 "Bad Request Line", "bad_request_line")
        else:
            deferred = _Deferred(f"whitespace in Request-URI {uri[:80]!r}", 400,
                                 "Bad Request-URI", "bad_request_uri")
    if not _is_token(method):
        raise SipParseError(f"invalid method {method[:40]!r}", phrase="Bad Request Line",
                            kind="bad_request_line")
    bad = _check_version(version)
    if bad is not None:
        if not version.upper().startswith("SIP/"):
            raise SipParseError(f"malformed request line {first[:80]!r}",
                                phrase="Bad Request Line", kind="bad_request_line")
        return method, uri, _Deferred(bad, 505, "Version Not Supported", "bad_version")
    if deferred is None:
        if len(uri) > limits.max_uri_bytes:
            deferred = _Deferred(f"Request-URI of {len(uri)} bytes exceeds "
                                 f"{limits.max_uri_bytes}", 414, "Request-URI Too Long",
                                 "uri_too_long")
        elif not is_request_uri(uri):
            deferred = _Deferred(f"invalid Request-URI {uri[:80]!r}", 400, "Bad Request-URI",
                                 "bad_request_uri")
    return method, uri, deferred


def _status_line(first: str) -> tuple[int, str]:
    parts = first.split(" ", 2)
    if len(parts) < 2:
        raise SipParseError(f"malformed status line {first[:80]!r}", kind="bad_status_line")
    bad = _check_version(parts[0])
    if bad is not None:
        raise SipParseError(bad, 505, kind="bad_version")
    code = parts[1]
    if len(code) != 3 or not code.isascii() or not code.isdigit():
        raise SipParseError(f"invalid status code {code[:10]!r}", kind="bad_status_line")
    status = int(code)
    if not 100 <= status <= 699:
        raise SipParseError(f"status code {status} out of range 100-699",
                            kind="bad_status_line")
    reason = parts[2] if len(parts) == 3 else ""
    if _REASON_CONTROL.search(reason) is not None:
        raise SipParseError("control character in reason phrase", kind="bad_status_line")
    return status, reason


def _check_cseq(value: str, method: str | None, reply_to: Request | None) -> None:
    # The exact CSeq check (``method`` is the request's; None for a response): raises.
    parts = value.split(None, 1)
    number = parts[0] if len(parts) == 2 else ""
    if not (len(number) < 10 and number.isdigit() and number.isascii()) and (
        not number or digits_value(number, _CSEQ_MAX) is None
    ):
        raise SipParseError(f"invalid CSeq number {value[:40]!r}", 400, reply_to,
                            phrase="Bad CSeq", kind="bad_cseq")
    cseq_method = parts[1]
    # LWS between number and method is SP/HTAB only (str.split() takes any Unicode space).
    gap = value[len(number) : len(value) - len(cseq_method)]
    if not _is_token(cseq_method) or gap.strip(" \t"):
        raise SipParseError(f"invalid CSeq method {value[:40]!r}", 400, reply_to,
                            phrase="Bad CSeq", kind="bad_cseq")
    if method is not None and cseq_method != method:
        raise SipParseError(f"CSeq method {cseq_method[:40]!r} does not match request method "
                            f"{method[:40]!r}", 400, reply_to, phrase="Bad CSeq",
                            kind="bad_cseq")


def _unfold(lines: list[str]) -> list[str]:
    # RFC 3261 7.3.1: a line starting with SP/HT continues the previous field; the line break
    # and surrounding whitespace are equivalent to one SP.
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not out:
                raise SipParseError("continuation line before the first header field",
                                    kind="bad_header_line")
            out[-1] = out[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            out.append(line)
    return out
