"""SIP messages (RFC 3261 section 7): parse, hold and serialize, sans-IO.

Bytes in, objects out; no sockets, no clock. The parser works on whole strings with
split/partition/find and C-level scans (no per-character loops; one compiled regex each for the
few grammars it checks: request line, Via, From, To, Contact) because the switch has to carry
at least 1,000 calls/s in one Python process and every call is a dozen messages. Common shapes
take a cheap test that implies the exact one; anything else takes the exact path.

It is strict where a lax reading would route on nonsense (numbers, Via, Request-URI, addresses,
NUL/CR/LF in the header section) and says for each refusal whether it can be answered, with
which status and reason phrase, and under which counter kind: docs/sip-parsing.md.

>>> raw = (b"OPTIONS sip:sw1@127.0.0.1 SIP/2.0\\r\\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\\r\\n"
...        b"f: <sip:a@10.0.0.1>;tag=1\\r\\nt: <sip:sw1@127.0.0.1>\\r\\ni: c1\\r\\n"
...        b"CSeq: 7 OPTIONS\\r\\n\\r\\n")
>>> msg = parse_message(raw)
>>> msg.method, msg.headers.get("call-id"), cseq(msg)
('OPTIONS', 'c1', (7, 'OPTIONS'))
>>> serialize(make_response(msg, 200, to_tag="x")).split(b"\\r\\n")[0]
b'SIP/2.0 200 OK'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from switch.sip.errors import REASONS, SipParseError, default_reason
from switch.sip.fields import (
    _CSEQ_MAX,
    _check_cseq,
    _Deferred,
    _has_control,
    _label,
    _request_line,
    _status_line,
    _taint,
    _unfold,
)
from switch.sip.headers import (
    _CANON_BY_KEY,
    _NAME_CACHE,
    _NAME_CACHE_MAX,
    Headers,
    _is_token,
    _name_info,
    header_param,
    split_values,
    tag,
)
from switch.sip.limits import ParseLimits
from switch.sip.syntax import (
    digits_value,
    fullmatch_address,
    fullmatch_contact,
    fullmatch_via,
    fullmatch_via_any_version,
    valid_address,
    valid_via,
)
from switch.sip.uri import SIP_URI_PLAIN, TOKEN

__all__ = [
    "REASONS",
    "Headers",
    "Message",
    "ParseLimits",
    "Request",
    "Response",
    "SipParseError",
    "cseq",
    "header_param",
    "make_response",
    "parse_message",
    "serialize",
    "split_values",
    "tag",
    "top_via",
    "via_branch",
]


# --- messages ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """A SIP request.

    >>> Request("BYE", "sip:b@10.0.0.2", Headers()).version
    'SIP/2.0'
    """

    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"


@dataclass(slots=True)
class Response:
    """A SIP response.

    >>> Response(180, "Ringing", Headers()).status
    180
    """

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"


Message = Request | Response

_MANDATORY = ("via", "from", "to", "call-id", "cseq")
_MANDATORY_SET = frozenset(_MANDATORY)
# A response copies these (RFC 3261 8.2.6.2): when one of them is damaged the message cannot be
# answered safely, so it is dropped.
_COPIED = _MANDATORY_SET
# Header fields that may appear once (RFC 3261 7.3.1 / 20): these and Max-Forwards. A second
# one makes the message ambiguous (RFC 4475 multi01). Content-Length has its own rule
# (identical repeats are fine).
_MANDATORY_SINGLE = frozenset(("call-id", "cseq", "from", "to"))
# What the header loop does with a field besides carrying it: keep the value of a mandatory
# single field or of Max-Forwards, or collect a Via, Contact or Content-Length value (0:
# nothing).
_ROLE_MANDATORY, _ROLE_VIA, _ROLE_CONTACT, _ROLE_LENGTH, _ROLE_FORWARDS = 1, 2, 3, 4, 5
_ROLES = {"via": _ROLE_VIA, "contact": _ROLE_CONTACT, "content-length": _ROLE_LENGTH,
          "max-forwards": _ROLE_FORWARDS, **dict.fromkeys(_MANDATORY_SINGLE, _ROLE_MANDATORY)}
# Raw name -> (key, canonical name, role): the name cache of switch.sip.headers with the role
# added, so that the loop decides with one lookup. Bounded like that cache, and like it holds
# only valid names (none starts with SP or HT, which the loop relies on to find folding).
_FIELDS: dict[str, tuple[str, str, int]] = {}


def _field_info(name: str) -> tuple[str, str, int]:
    key, canonical = _name_info(name)  # SipParseError for an invalid name
    info = (key, canonical, _ROLES.get(key, 0))
    if len(_FIELDS) < _NAME_CACHE_MAX:
        _FIELDS[name] = info
    return info


for _name in list(_NAME_CACHE):
    _field_info(_name)

# Methods common enough for a set lookup to stand in for the token check (all are tokens).
_METHODS = frozenset(("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
                      "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"))
# A request line _request_line() would pass as it stands: method token, a SIP URI that needs no
# further check, SIP/2.0, single spaces. One regex instead of split and three checks.
_PLAIN_REQUEST_LINE = re.compile(rf"({TOKEN}) ({SIP_URI_PLAIN}) SIP/2\.0").fullmatch
_CONTENT_LENGTH_MAX = 2**31 - 1
_DEFAULT_LIMITS = ParseLimits()


def _limits(limits: ParseLimits | None, max_size: int | None,
            max_headers: int | None) -> ParseLimits:
    # The max_size/max_headers keywords predate ParseLimits; they override its fields.
    limits = limits if limits is not None else _DEFAULT_LIMITS
    if max_size is not None:
        limits = replace(limits, max_message_bytes=max_size)
    if max_headers is not None:
        limits = replace(limits, max_headers=max_headers)
    return limits


def _parse_head(head: bytes | bytearray, limits: ParseLimits) -> tuple[Message, int | None]:
    """Start line and header fields (no body) -> (message, Content-Length or None).

    Problems that leave a request answerable are raised with the request attached, in this
    order: the request line, a damaged (NUL, CR, LF) or too long non-copied header field, a
    repeated single header, CSeq, From, To, Contact, Max-Forwards, Content-Length.

    The common shape of each part is accepted by a cheap test that implies the exact one (a
    plain request line, one plain CSeq, ...); anything else takes the exact path, so both
    paths give the same answer and the fast one only saves time.
    """
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    # A CR or LF outside a CRLF survives the split, and so does a NUL: joined, the lines are
    # searched with memchr (two str.count() passes over the text took four times as long).
    joined = "".join(lines)
    tainted = "\x00" in joined or "\r" in joined or "\n" in joined
    first = lines[0]
    del lines[0]
    if tainted and _has_control(first):
        # A start line we cannot trust: nothing in the message can be (not even the method).
        kind = _taint(first)
        raise SipParseError(f"{'NUL byte' if kind == 'nul_byte' else 'bare CR or LF'} in the "
                            "start line", kind=kind)

    deferred: _Deferred | None = None
    is_request = not first.startswith("SIP/")
    if is_request:
        match = _PLAIN_REQUEST_LINE(first)
        if match is not None:
            method, uri = match.groups()
        if match is None or len(uri) > limits.max_uri_bytes:
            method, uri, deferred = _request_line(first, limits)
    else:
        status, reason = _status_line(first)

    max_headers = limits.max_headers
    too_long = -1
    line_limit = limits.max_header_bytes
    # Folding needs a search of the whole text for CRLF SP / CRLF HT. A message small enough
    # for the count and length limits not to matter skips it: a continuation line fails the
    # fast path of the loop below (no cached name starts with SP or HT), which looks then,
    # before it raises anything, and starts over on the unfolded lines.
    fold_checked = False
    if len(lines) > max_headers or len(head) > line_limit:
        fold_checked = True
        if len(lines) > max_headers and not any(line[:1] in (" ", "\t") for line in lines):
            raise SipParseError(f"more than {max_headers} header fields", 513,
                                phrase="Too Many Headers", kind="too_many_headers")
        if "\r\n " in text or "\r\n\t" in text:
            lines = _unfold(lines)
        if len(lines) > max_headers:
            raise SipParseError(f"more than {max_headers} header fields", 513,
                                phrase="Too Many Headers", kind="too_many_headers")
        if len(head) > line_limit and lines and max(map(len, lines)) > line_limit:
            too_long = next(i for i, line in enumerate(lines) if len(line) > line_limit)
    cache = _FIELDS
    while True:  # twice only when folding turns up in the loop
        items: list[tuple[str, str, str]] = []
        append = items.append
        # The fields checked below are picked out in the same pass; the rest are only carried.
        vias: list[str] = []
        contacts: list[str] = []
        lengths: list[str] = []
        single: dict[str, str] = {}  # the mandatory single fields
        forwards: str | None = None
        duplicate: str | None = None
        # A NUL, CR or LF in a value: in a field a response copies, the message is dropped;
        # elsewhere it is answered 400 naming the field, and the field is left out.
        damaged: tuple[str, str] | None = None  # (canonical name, kind)
        for line in lines:
            name, sep, value = line.partition(":")
            info = cache.get(name)
            if info is None or not sep or (tainted and _has_control(value)):
                if not fold_checked:
                    fold_checked = True
                    if "\r\n " in text or "\r\n\t" in text:
                        lines = _unfold(lines)
                        break
                if not sep:
                    if tainted and _has_control(line):
                        raise SipParseError("NUL, CR or LF in a header name", kind=_taint(line))
                    raise SipParseError(f"header line without colon {line[:80]!r}",
                                        kind="bad_header_line")
                if info is None:
                    if tainted and _has_control(name):
                        raise SipParseError("NUL, CR or LF in a header name", kind=_taint(name))
                    info = _field_info(name)
                if tainted and _has_control(value):
                    kind = _taint(value)
                    if info[0] in _COPIED:
                        raise SipParseError(
                            f"{'NUL byte' if kind == 'nul_byte' else 'bare CR or LF'} in "
                            f"{info[1]}", phrase=f"Bad {info[1]}", kind=kind)
                    if damaged is None:
                        damaged = (info[1], kind)
                    continue
            key, canonical, role = info
            value = value.strip(" \t")
            append((key, canonical, value))
            if role:
                if role == _ROLE_MANDATORY:
                    if key not in single:
                        single[key] = value
                    elif duplicate is None:
                        duplicate = canonical
                elif role == _ROLE_VIA:
                    vias.append(value)
                elif role == _ROLE_CONTACT:
                    contacts.append(value)
                elif role == _ROLE_LENGTH:
                    lengths.append(value)
                elif forwards is None:
                    forwards = value
                elif duplicate is None:
                    duplicate = canonical
        else:
            break
    long_item = _name_info(lines[too_long].partition(":")[0]) if too_long >= 0 else None
    if not vias or len(single) != len(_MANDATORY_SINGLE):
        missing = [_CANON_BY_KEY[k] for k in _MANDATORY
                   if (k not in single if k != "via" else not vias)]
        raise SipParseError(f"missing mandatory header field: {', '.join(missing)}",
                            phrase=f"Missing {missing[0]}", kind="missing_header")
    if long_item is not None and long_item[0] in _COPIED:
        raise SipParseError(f"{long_item[1]} longer than {limits.max_header_bytes} bytes",
                            phrase=f"{_label(long_item[1])} Too Long", kind="header_too_long")
    any_version = deferred is not None and deferred.kind == "bad_version"
    via_match = fullmatch_via_any_version if any_version else fullmatch_via
    for value in vias:
        # valid_via() adds the IPv6 check to the same regex.
        if via_match(value) is None or (
            "[" in value and not valid_via(value, any_version=any_version)
        ):
            raise SipParseError(f"invalid Via {value[:80]!r}", phrase="Bad Via", kind="bad_via")

    headers = Headers._trusted(items)
    msg: Message
    if is_request:
        msg = Request(method, uri, headers)
        reply_to: Request | None = msg
    else:
        msg = Response(status, reason, headers)
        reply_to = None  # a response is never answered

    # From here on the message can be answered (when it is a request).
    if deferred is not None:
        raise SipParseError(deferred.reason, deferred.status, reply_to,
                            phrase=deferred.phrase, kind=deferred.kind)
    if damaged is not None:
        name, kind = damaged
        raise SipParseError(f"{'NUL byte' if kind == 'nul_byte' else 'bare CR or LF'} in {name}",
                            400, reply_to, phrase=f"Bad Header {_label(name)}", kind=kind)
    if long_item is not None:
        name = long_item[1]
        raise SipParseError(f"{name} longer than {limits.max_header_bytes} bytes", 400,
                            reply_to, phrase=f"{_label(name)} Too Long", kind="header_too_long")
    if duplicate is not None:
        raise SipParseError(f"more than one {duplicate} header field", 400, reply_to,
                            phrase=f"Duplicate {duplicate}", kind="duplicate_header")

    cseq_value = single["cseq"]
    number, _, cseq_method = cseq_value.partition(" ")
    # "<1-9 digits> SP <the method>" passes the exact check without running it.
    if not (len(number) < 10 and number.isdigit() and number.isascii()
            and (cseq_method == method if is_request else cseq_method in _METHODS)):
        _check_cseq(cseq_value, method if is_request else None, reply_to)
    if fullmatch_address(single["from"]) is None or fullmatch_address(single["to"]) is None:
        for key, label in (("from", "From"), ("to", "To")):
            if not valid_address(single[key]):
                raise SipParseError(f"invalid {label} {single[key][:80]!r}", 400, reply_to,
                                    phrase=f"Bad {label}", kind=f"bad_{key}")
    for value in contacts:
        if fullmatch_contact(value) is None:
            raise SipParseError(f"invalid Contact {value[:80]!r}", 400, reply_to,
                                phrase="Bad Contact", kind="bad_contact")
    if forwards is not None and not (
        len(forwards) < 3 and forwards.isdigit() and forwards.isascii()
    ) and digits_value(forwards, 255) is None:
        raise SipParseError(f"invalid Max-Forwards {forwards[:20]!r} (0-255)", 400, reply_to,
                            phrase="Bad Max-Forwards", kind="bad_max_forwards")

    if not lengths:
        return msg, None
    first_value = lengths[0]
    if len(lengths) == 1 and len(first_value) < 10 and first_value.isdigit() and (
        first_value.isascii()
    ):
        return msg, int(first_value)
    length = digits_value(first_value, _CONTENT_LENGTH_MAX)
    if length is None:
        raise SipParseError(f"invalid Content-Length {first_value[:20]!r}", 400, reply_to,
                            phrase="Bad Content-Length", kind="bad_content_length")
    if any(v != first_value for v in lengths[1:]):
        raise SipParseError("conflicting Content-Length values", 400, reply_to,
                            phrase="Bad Content-Length", kind="bad_content_length")
    return msg, length


def parse_message(data: bytes, *, limits: ParseLimits | None = None,
                  max_size: int | None = None, max_headers: int | None = None) -> Message:
    """Parse one complete datagram (UDP) into a Request or Response.

    Raises :class:`SipParseError` with a precise reason, the status and phrase to answer with,
    and a counter ``kind``. Extra bytes after Content-Length are ignored; without
    Content-Length the rest of the datagram is the body. ``limits`` bounds sizes
    (:class:`ParseLimits`); ``max_size`` and ``max_headers`` override its
    ``max_message_bytes`` and ``max_headers``.

    Every request returned has a start line and header fields free of NUL, CR and LF, so
    ``serialize(make_response(request, status))`` cannot fail on it.

    >>> m = parse_message(b"SIP/2.0 180 Ringing\\r\\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\\r\\n"
    ...                   b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>;tag=2\\r\\nCall-ID: c\\r\\n"
    ...                   b"CSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> m.status, m.reason, tag(m.headers.get("to"))
    (180, 'Ringing', '2')
    >>> parse_message(b"")
    Traceback (most recent call last):
    ...
    switch.sip.errors.SipParseError: empty message
    >>> try:
    ...     parse_message(b"OPTIONS sip:h SIP/2.0\\r\\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\\r\\n"
    ...                   b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:h>\\r\\nCall-ID: c\\r\\n"
    ...                   b"CSeq: 1 OPTIONS\\r\\nMax-Forwards: -1\\r\\n\\r\\n")
    ... except SipParseError as err:
    ...     print(err.status, err.phrase, err.kind, err.can_reply)
    400 Bad Max-Forwards bad_max_forwards True
    """
    if limits is None and max_size is None and max_headers is None:
        limits = _DEFAULT_LIMITS
    else:
        limits = _limits(limits, max_size, max_headers)
    if len(data) > limits.max_message_bytes:
        raise SipParseError(f"message of {len(data)} bytes exceeds {limits.max_message_bytes}",
                            513, kind="too_large")
    if data[:1] in (b"\r", b"\n"):
        # RFC 3261 7.5: CRLFs before the start line are ignored (keepalives, sloppy senders).
        data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message", kind="empty")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, rest = data[:end], data[end + 4 :]
    elif data.endswith(b"\r\n"):
        # Some senders end a body-less datagram after the last header line; accept it.
        head, rest = data[:-2], b""
    else:
        head, rest = data, None
    msg, length = _parse_head(head, limits)
    if rest is None:
        raise SipParseError("no empty line after the header section", 400,
                            msg if isinstance(msg, Request) else None,
                            phrase="Missing Empty Line", kind="no_empty_line")
    if length is None:
        msg.body = rest
    elif len(rest) < length:
        raise SipParseError(
            f"Content-Length {length} larger than the {len(rest)}-byte body", 400,
            msg if isinstance(msg, Request) else None,
            phrase="Bad Content-Length", kind="bad_content_length",
        )
    else:
        msg.body = rest[:length] if len(rest) != length else rest
    return msg


def serialize(msg: Message) -> bytes:
    """Bytes for the wire: CRLF line ends, canonical names, a correct Content-Length.

    An existing Content-Length is rewritten in place (order kept); otherwise one is appended.

    >>> serialize(Request("BYE", "sip:b@h", Headers([("Call-ID", "c")]), b"x"))
    b'BYE sip:b@h SIP/2.0\\r\\nCall-ID: c\\r\\nContent-Length: 1\\r\\n\\r\\nx'
    """
    if isinstance(msg, Request):
        parts = [f"{msg.method} {msg.uri} {msg.version}"]
    else:
        parts = [f"{msg.version} {msg.status} {msg.reason}"]
    length_line = f"Content-Length: {len(msg.body)}"
    placed = False
    for key, name, value in msg.headers._items:
        if key == "content-length":
            if not placed:
                parts.append(length_line)
                placed = True
        else:
            parts.append(f"{name}: {value}")
    if not placed:
        parts.append(length_line)
    parts.append("\r\n")
    return "\r\n".join(parts).encode("utf-8", "surrogateescape") + msg.body


# --- helpers for the transaction layer and the B2BUA ----------------------------------------


def top_via(msg: Message) -> str | None:
    """The first Via value (the first item when the first line is comma-separated).

    >>> top_via(Request("X", "sip:h", Headers([("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b")])))
    'SIP/2.0/UDP a'
    """
    value = msg.headers.get("via")
    if value is None:
        return None
    if "," in value:
        items = split_values(value)
        return items[0] if items else None
    return value


def via_branch(via: str) -> str | None:
    """The ;branch= parameter of one Via value.

    >>> via_branch("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK776")
    'z9hG4bK776'
    """
    return header_param(via, "branch")


def cseq(msg: Message) -> tuple[int, str]:
    """(number, METHOD) of the CSeq header; SipParseError when missing or malformed.

    >>> cseq(Request("ACK", "sip:h", Headers([("CSeq", "31 ACK")])))
    (31, 'ACK')
    """
    value = msg.headers.get("cseq")
    if value is None:
        raise SipParseError("missing CSeq", phrase="Missing CSeq", kind="missing_header")
    parts = value.split(None, 1)
    number = digits_value(parts[0], _CSEQ_MAX) if len(parts) == 2 else None
    if number is None or not _is_token(parts[1]):
        raise SipParseError(f"malformed CSeq {value[:40]!r}", phrase="Bad CSeq", kind="bad_cseq")
    return number, parts[1]


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """A response to ``request`` per RFC 3261 8.2.6.

    Copies every Via (in order), From, To (adding ``;tag=to_tag`` when it has no tag yet),
    Call-ID, CSeq (and Timestamp for 100), then appends ``headers``.

    >>> req = parse_message(b"INVITE sip:b@h SIP/2.0\\r\\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\\r\\n"
    ...                     b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>\\r\\nCall-ID: c\\r\\n"
    ...                     b"CSeq: 1 INVITE\\r\\n\\r\\n")
    >>> r = make_response(req, 486, to_tag="t9")
    >>> r.reason, r.headers.get("to")
    ('Busy Here', '<sip:b@h>;tag=t9')
    """
    src = request.headers._items
    items: list[tuple[str, str, str]] = [item for item in src if item[0] == "via"]
    for key in ("from", "to", "call-id", "cseq"):
        for item in src:
            if item[0] == key:
                if key == "to" and to_tag is not None and tag(item[2]) is None:
                    item = (key, item[1], f"{item[2]};tag={to_tag}")
                items.append(item)
                break
    if status == 100:
        items.extend(item for item in src if item[0] == "timestamp")
    out = Headers._trusted(items)
    if headers:
        for name, value in headers:
            out.add(name, value)
    if reason is None:
        reason = default_reason(status)
    return Response(status, reason, out, body)
