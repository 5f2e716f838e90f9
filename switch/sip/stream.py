"""TCP framing of SIP messages by Content-Length (RFC 3261 18.3), sans-IO.

Bytes from a stream in, complete messages out; each message's head is parsed by
:mod:`switch.sip.message`, so a stream accepts exactly what a datagram would.
"""

from __future__ import annotations

from collections.abc import Callable

from switch.sip.limits import ParseLimits
from switch.sip.message import Message, Request, SipParseError, _limits, _parse_head

__all__ = ["StreamParser"]


class StreamParser:
    """TCP framing by Content-Length (RFC 3261 18.3).

    ``feed(bytes)`` returns the complete messages so far and keeps partial data; CRLF keepalives
    between messages are skipped; a message without Content-Length is an error on a stream; a
    message larger than ``limits.max_message_bytes`` raises.

    On an error ``feed`` raises :class:`SipParseError` whose ``framed`` lists the messages that
    the same call completed before the bad one (handle them, then answer the error); the
    parser then refuses further input: the caller closes the connection.

    >>> p = StreamParser()
    >>> raw = (b"BYE sip:b@h SIP/2.0\\r\\nVia: SIP/2.0/TCP h;branch=z9hG4bKb\\r\\n"
    ...        b"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>;tag=2\\r\\nCall-ID: c\\r\\n"
    ...        b"CSeq: 2 BYE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> p.feed(b"\\r\\n\\r\\n" + raw[:30]), [m.method for m in p.feed(raw[30:] + raw)]
    ([], ['BYE', 'BYE'])
    >>> try:
    ...     p.feed(raw + b"GARBAGE\\r\\n\\r\\n")
    ... except SipParseError as err:
    ...     print([m.method for m in err.framed], err.kind, err.can_reply)
    ['BYE'] bad_request_line False
    """

    __slots__ = ("_buf", "_error", "_head", "_limits", "_scan", "_screen")

    def __init__(self, *, limits: ParseLimits | None = None, max_size: int | None = None,
                 max_headers: int | None = None,
                 screen: Callable[[bytes], bool] | None = None) -> None:
        self._limits = _limits(limits, max_size, max_headers)
        # Asked with each message's header section before it is parsed; False ends the stream
        # with a SipParseError of kind "screened" (the guard refused the message).
        self._screen = screen
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the end of the header section
        # A message whose head is parsed but whose body is incomplete: (message, head size, total).
        self._head: tuple[Message, int, int] | None = None
        self._error: SipParseError | None = None

    @property
    def error(self) -> SipParseError | None:
        """The error that ended the stream, or None while it is usable.

        >>> StreamParser().error is None
        True
        """
        return self._error

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes from the stream; return every message completed by them.

        >>> StreamParser().feed(b"\\r\\n")
        []
        """
        if self._error is not None:
            raise SipParseError(f"stream unusable after error: {self._error.reason}",
                                self._error.status, phrase=self._error.phrase,
                                kind=self._error.kind)
        self._buf += data
        out: list[Message] = []
        try:
            self._drain(out)
        except SipParseError as err:
            err.framed = out
            self._error = err
            self._buf.clear()
            self._head = None
            raise
        return out

    def _drain(self, out: list[Message]) -> None:
        buf = self._buf
        max_size = self._limits.max_message_bytes
        while True:
            if self._head is None:
                if buf.startswith((b"\r", b"\n")):
                    # Keepalives (CRLF / CRLFCRLF, RFC 5626) and CRLFs before a start line.
                    stripped = len(buf) - len(buf.lstrip(b"\r\n"))
                    del buf[:stripped]
                    self._scan = 0
                if not buf:
                    return
                end = buf.find(b"\r\n\r\n", self._scan)
                if end < 0:
                    if len(buf) > max_size:
                        raise SipParseError(f"header section exceeds {max_size} bytes", 513,
                                            kind="too_large")
                    self._scan = max(0, len(buf) - 3)  # the separator may straddle feeds
                    return
                if end + 4 > max_size:
                    raise SipParseError(f"header section exceeds {max_size} bytes", 513,
                                        kind="too_large")
                if self._screen is not None and not self._screen(bytes(buf[:end + 4])):
                    raise SipParseError("refused by the guard", 403, kind="screened")
                msg, length = _parse_head(buf[:end], self._limits)
                reply_to = msg if isinstance(msg, Request) else None
                if length is None:
                    raise SipParseError("missing Content-Length on a stream transport", 400,
                                        reply_to, phrase="Missing Content-Length",
                                        kind="missing_content_length")
                total = end + 4 + length
                if total > max_size:
                    raise SipParseError(f"message of {total} bytes exceeds {max_size}", 413,
                                        reply_to, kind="body_too_large")
                self._head = (msg, end + 4, total)
                self._scan = 0
            msg, head_len, total = self._head
            if len(buf) < total:
                return
            msg.body = bytes(buf[head_len:total])
            del buf[:total]
            self._head = None
            out.append(msg)
