"""What a malformed SIP message is, and the standard reason phrases (RFC 3261 21).

Its own module so that every part of the parser (header names in :mod:`switch.sip.headers`,
start lines and fields in :mod:`switch.sip.fields`, whole messages in :mod:`switch.sip.message`)
can raise it without importing the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switch.sip.message import Message, Request

__all__ = ["REASONS", "SipParseError", "default_reason"]


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


def default_reason(status: int, fallback: str = "Unknown") -> str:
    """The standard reason phrase of ``status``, or its class's, or ``fallback``.

    >>> default_reason(484), default_reason(499), default_reason(999)
    ('Address Incomplete', 'Request Failure', 'Unknown')
    """
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, fallback)


class SipParseError(ValueError):
    """Malformed message.

    ``reason`` says what is wrong (for logs); ``status`` is the response code to answer with
    (400 bad request, 414 Request-URI too long, 505 unsupported SIP version, 413 body too
    large for the stream limit, 513 message too large or too many header fields); ``phrase``
    is the reason phrase for that answer's status line, naming the header at fault ("Bad
    Max-Forwards", "Bad Header Subject"); ``kind`` is a short stable key for counters
    ("bad_max_forwards", "nul_byte", ...; see docs/sip-parsing.md).

    ``can_reply`` is True when the message can be answered: a request whose request line
    names a method and version, with Via, From, To, Call-ID and CSeq intact (a response copies
    them). Then ``request`` holds that partially checked request (its Request-URI may be the
    invalid one; header fields with NUL, CR or LF in their value are left out) so the
    transport can answer with ``make_response(err.request, err.status, err.phrase)``.

    ``framed`` holds, for :class:`StreamParser`, the messages completed in the same ``feed``
    before the error: the caller handles them first, then answers the error.

    >>> err = SipParseError("missing CSeq")
    >>> err.status, err.can_reply, str(err), err.phrase, err.kind, err.framed
    (400, False, 'missing CSeq', 'Bad Request', 'malformed', [])
    """

    def __init__(self, reason: str, status: int = 400, request: Request | None = None, *,
                 phrase: str | None = None, kind: str = "malformed",
                 framed: list[Message] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.request = request
        self.can_reply = request is not None
        default = default_reason(status, "Bad Request")
        # The phrase goes on a status line: printable ASCII only, whatever a caller passed.
        if phrase is None or not (phrase.isascii() and phrase.isprintable()) or not phrase:
            phrase = default
        self.phrase = phrase
        self.kind = kind
        self.framed: list[Message] = framed if framed is not None else []
