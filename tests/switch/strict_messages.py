"""Shared by the strict-parsing tests (test_sip_strict.py, test_sip_strict_messages.py): a valid
OPTIONS to spoil, and the checks of a refusal the transport acts on (answered or dropped).
"""

from __future__ import annotations

import pytest

from switch.sip import Request, SipParseError, make_response, parse_message, serialize


def options(*, uri: bytes = b"sip:bob@example.org", via: bytes | None = None,
            extra: bytes = b"", replace: tuple[bytes, bytes] | None = None) -> bytes:
    """A valid OPTIONS; ``replace`` swaps one header line (name: value) for another."""
    raw = (
        b"OPTIONS " + uri + b" SIP/2.0\r\n"
        b"Via: " + (via if via is not None else b"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKs")
        + b"\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
        b"To: <sip:bob@example.org>\r\n"
        b"Call-ID: strict-1@example.com\r\n"
        b"CSeq: 7 OPTIONS\r\n"
        b"Max-Forwards: 70\r\n" + extra +
        b"Content-Length: 0\r\n\r\n"
    )
    if replace is not None:
        assert replace[0] in raw, replace[0]
        raw = raw.replace(replace[0], replace[1])
    return raw


def refused(raw: bytes, **kwargs: object) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(raw, **kwargs)  # type: ignore[arg-type]
    return info.value


def assert_answered(err: SipParseError, status: int, phrase: str, kind: str) -> bytes:
    """The error can be answered, and the answer's status line says what is wrong."""
    assert (err.status, err.phrase, err.kind) == (status, phrase, kind), err.reason
    assert err.can_reply and isinstance(err.request, Request)
    wire = serialize(make_response(err.request, err.status, err.phrase))
    assert wire.startswith(f"SIP/2.0 {status} {phrase}\r\n".encode())
    assert b"\x00" not in wire.split(b"\r\n\r\n")[0]
    return wire


def assert_dropped(err: SipParseError, kind: str) -> None:
    assert err.kind == kind, err.reason
    assert not err.can_reply and err.request is None
