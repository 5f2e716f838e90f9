"""SIP messages (RFC 3261 section 7): parse, hold and serialize, sans-IO.

Bytes in, objects out; no sockets, no clock. The parser works on whole strings with
split/partition/find (no per-character loops, no regex per header) because the switch has to
carry at least 1,000 calls/s in one Python process and every call is a dozen messages.

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

from dataclasses import dataclass

from switch.sip.headers import (
    _CANON_BY_KEY,
    _NAME_CACHE,
    Headers,
    _is_token,
    _name_info,
    header_param,
    split_values,
    tag,
)

__all__ = [
    "REASONS",
    "Headers",
    "Message",
    "Request",
    "Response",
    "SipParseError",
    "StreamParser",
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


class SipParseError(ValueError):
    """Malformed message.

    ``reason`` says what is wrong; ``status`` is the response code to answer with (400 bad
    request, 505 unsupported SIP version, 413 body too large for the stream limit, 513 message
    too large or too many header fields); ``can_reply`` is True when enough was parsed to build
    a response (a request line plus Via, From, To, Call-ID and CSeq), and then ``request`` holds
    that partially checked request so the transport can answer with ``make_response``.

    >>> err = SipParseError("missing CSeq")
    >>> err.status, err.can_reply, str(err)
    (400, False, 'missing CSeq')
    """

    def __init__(self, reason: str, status: int = 400, request: Request | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.request = request
        self.can_reply = request is not None


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

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_CLASS_REASONS = {1: "Trying", 2: "OK", 3: "Redirect", 4: "Request Failure",
                  5: "Server Failure", 6: "Global Failure"}

_MANDATORY = ("via", "from", "to", "call-id", "cseq")
_MANDATORY_SET = frozenset(_MANDATORY)


def _check_version(version: str) -> str | None:
    # RFC 3261 7.1: the version string is case-insensitive; anything else is "not 2.0".
    if version == "SIP/2.0":
        return None
    if version.upper() == "SIP/2.0":
        return None
    return f"unsupported SIP version {version!r}"


def _parse_head(head: bytes, max_headers: int) -> tuple[Message, int | None]:
    """Start line and header fields (no body) -> (message, Content-Length or None)."""
    if b"\x00" in head:
        raise SipParseError("NUL byte in start line or header section")
    text = head.decode("utf-8", "surrogateescape")
    first, _, rest = text.partition("\r\n")
    # Errors found in the start line that still allow an answer wait until the headers are in.
    deferred: tuple[str, int] | None = None
    is_request = not first.startswith("SIP/")
    if is_request:
        parts = first.split(" ")
        if len(parts) != 3:
            raise SipParseError(f"malformed request line {first[:80]!r}")
        method, uri, version = parts
        if not _is_token(method):
            raise SipParseError(f"invalid method {method[:40]!r}")
        if not uri or "\t" in uri or not uri.isprintable():
            raise SipParseError(f"invalid Request-URI {uri[:80]!r}")
        bad = _check_version(version)
        if bad is not None:
            if not version.upper().startswith("SIP/"):
                raise SipParseError(f"malformed request line {first[:80]!r}")
            deferred = (bad, 505)
        version = "SIP/2.0"
    else:
        parts = first.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError(f"malformed status line {first[:80]!r}")
        bad = _check_version(parts[0])
        if bad is not None:
            raise SipParseError(bad)
        code = parts[1]
        if len(code) != 3 or not code.isascii() or not code.isdigit():
            raise SipParseError(f"invalid status code {code[:10]!r}")
        status = int(code)
        if not 100 <= status <= 699:
            raise SipParseError(f"status code {status} out of range 100-699")
        reason = parts[2] if len(parts) == 3 else ""
        if not reason.replace("\t", " ").isprintable():  # HTAB is allowed (RFC 3261 25.1)
            raise SipParseError("control character in reason phrase")

    lines = rest.split("\r\n") if rest else []
    if len(lines) > max_headers and not any(line[:1] in (" ", "\t") for line in lines):
        raise SipParseError(f"more than {max_headers} header fields", 513)
    if "\r\n " in text or "\r\n\t" in text:
        lines = _unfold(lines)
    if len(lines) > max_headers:
        raise SipParseError(f"more than {max_headers} header fields", 513)
    items: list[tuple[str, str, str]] = []
    append = items.append
    cache = _NAME_CACHE
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise SipParseError(f"header line without colon {line[:80]!r}")
        info = cache.get(name)
        if info is None:
            info = _name_info(name)
        append((info[0], info[1], value.strip(" \t")))
    headers = Headers._trusted(items)

    keys = {item[0] for item in items}
    if not keys.issuperset(_MANDATORY_SET):
        missing = ", ".join(_CANON_BY_KEY[k] for k in _MANDATORY if k not in keys)
        raise SipParseError(f"missing mandatory header field: {missing}")

    msg: Message
    if is_request:
        msg = Request(method, uri, headers)
        reply_to: Request | None = msg
    else:
        msg = Response(status, reason, headers)
        reply_to = None  # a response is never answered
    if deferred is not None:
        raise SipParseError(deferred[0], deferred[1], reply_to)

    cseq_value = headers.get("cseq") or ""
    number, _, cseq_method = cseq_value.partition(" ")
    cseq_method = cseq_method.strip(" \t")
    if not (number.isascii() and number.isdigit()) or int(number) >= 2**31:
        raise SipParseError(f"invalid CSeq number {cseq_value[:40]!r}", 400, reply_to)
    if not _is_token(cseq_method):
        raise SipParseError(f"invalid CSeq method {cseq_value[:40]!r}", 400, reply_to)
    if is_request and cseq_method != method:
        raise SipParseError(
            f"CSeq method {cseq_method!r} does not match request method {method!r}", 400, reply_to
        )

    length: int | None = None
    if "content-length" in keys:
        values = headers.get_all("content-length")
        first_value = values[0]
        if not (first_value.isascii() and first_value.isdigit()):
            raise SipParseError(f"invalid Content-Length {first_value[:20]!r}", 400, reply_to)
        if any(v != first_value for v in values[1:]):
            raise SipParseError("conflicting Content-Length values", 400, reply_to)
        length = int(first_value)
    return msg, length


def _unfold(lines: list[str]) -> list[str]:
    # RFC 3261 7.3.1: a line starting with SP/HT continues the previous field; the line break
    # and surrounding whitespace are equivalent to one SP.
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not out:
                raise SipParseError("continuation line before the first header field")
            out[-1] = out[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            out.append(line)
    return out


def _strip_leading_crlf(data: bytes) -> bytes:
    # RFC 3261 7.5: CRLFs before the start line are ignored (keepalives, sloppy senders).
    if data[:1] in (b"\r", b"\n"):
        return data.lstrip(b"\r\n")
    return data


def parse_message(data: bytes, *, max_size: int = 65535, max_headers: int = 128) -> Message:
    """Parse one complete datagram (UDP) into a Request or Response.

    Raises :class:`SipParseError` with a precise reason. Extra bytes after Content-Length are
    ignored; without Content-Length the rest of the datagram is the body.

    >>> m = parse_message(b"SIP/2.0 180 Ringing\\r\\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\\r\\n"
    ...                   b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>;tag=2\\r\\nCall-ID: c\\r\\n"
    ...                   b"CSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> m.status, m.reason, tag(m.headers.get("to"))
    (180, 'Ringing', '2')
    >>> parse_message(b"")
    Traceback (most recent call last):
    ...
    switch.sip.message.SipParseError: empty message
    """
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_size}", 513)
    data = _strip_leading_crlf(data)
    if not data:
        raise SipParseError("empty message")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, rest = data[:end], data[end + 4 :]
    elif data.endswith(b"\r\n"):
        # Some senders end a body-less datagram after the last header line; accept it.
        head, rest = data[:-2], b""
    else:
        head, rest = data, None
    msg, length = _parse_head(head, max_headers)
    reply_to = msg if isinstance(msg, Request) else None
    if rest is None:
        raise SipParseError("no empty line after the header section", 400, reply_to)
    if length is None:
        msg.body = rest
    elif len(rest) < length:
        raise SipParseError(
            f"Content-Length {length} larger than the {len(rest)}-byte body", 400, reply_to
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


class StreamParser:
    """TCP framing by Content-Length (RFC 3261 18.3).

    ``feed(bytes)`` returns the complete messages so far and keeps partial data; CRLF keepalives
    between messages are skipped; a message without Content-Length is an error on a stream; a
    message larger than ``max_size`` raises. After an error the parser refuses further input:
    the caller closes the connection.

    >>> p = StreamParser()
    >>> raw = (b"BYE sip:b@h SIP/2.0\\r\\nVia: SIP/2.0/TCP h;branch=z9hG4bKb\\r\\n"
    ...        b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>;tag=2\\r\\nCall-ID: c\\r\\n"
    ...        b"CSeq: 2 BYE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> p.feed(b"\\r\\n\\r\\n" + raw[:30]), [m.method for m in p.feed(raw[30:] + raw)]
    ([], ['BYE', 'BYE'])
    """

    __slots__ = ("_buf", "_error", "_head", "_max_headers", "_max_size", "_scan")

    def __init__(self, *, max_size: int = 65535, max_headers: int = 128) -> None:
        self._max_size = max_size
        self._max_headers = max_headers
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the end of the header section
        # A message whose head is parsed but whose body is incomplete: (message, head size, total).
        self._head: tuple[Message, int, int] | None = None
        self._error: SipParseError | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes from the stream; return every message completed by them.

        >>> StreamParser().feed(b"\\r\\n")
        []
        """
        if self._error is not None:
            raise SipParseError(f"stream unusable after error: {self._error.reason}",
                                self._error.status)
        self._buf += data
        try:
            return self._drain()
        except SipParseError as err:
            self._error = err
            self._buf.clear()
            raise

    def _drain(self) -> list[Message]:
        out: list[Message] = []
        buf = self._buf
        while True:
            if self._head is None:
                if buf[:1] in (b"\r", b"\n"):
                    # Keepalives (CRLF / CRLFCRLF, RFC 5626) and CRLFs before a start line.
                    stripped = len(buf) - len(buf.lstrip(b"\r\n"))
                    del buf[:stripped]
                    self._scan = 0
                if not buf:
                    return out
                end = buf.find(b"\r\n\r\n", self._scan)
                if end < 0:
                    if len(buf) > self._max_size:
                        raise SipParseError(
                            f"header section exceeds {self._max_size} bytes", 513
                        )
                    self._scan = max(0, len(buf) - 3)  # the separator may straddle feeds
                    return out
                if end + 4 > self._max_size:
                    raise SipParseError(f"header section exceeds {self._max_size} bytes", 513)
                msg, length = _parse_head(bytes(buf[:end]), self._max_headers)
                reply_to = msg if isinstance(msg, Request) else None
                if length is None:
                    raise SipParseError("missing Content-Length on a stream transport", 400,
                                        reply_to)
                total = end + 4 + length
                if total > self._max_size:
                    raise SipParseError(
                        f"message of {total} bytes exceeds {self._max_size}", 413, reply_to
                    )
                self._head = (msg, end + 4, total)
                self._scan = 0
            msg, head_len, total = self._head
            if len(buf) < total:
                return out
            msg.body = bytes(buf[head_len:total])
            del buf[:total]
            self._head = None
            out.append(msg)


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
        raise SipParseError("missing CSeq")
    number, _, method = value.partition(" ")
    method = method.strip(" \t")
    if not (number.isascii() and number.isdigit()) or not _is_token(method):
        raise SipParseError(f"malformed CSeq {value[:40]!r}")
    return int(number), method


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
        reason = REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")
    return Response(status, reason, out, body)
