"""Size limits the SIP parser enforces (config keys [sip] max_message_bytes and friends).

>>> ParseLimits().max_message_bytes, ParseLimits(max_uri_bytes=256).max_uri_bytes
(65535, 256)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParseLimits"]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one message may hold before the parser refuses it.

    - ``max_message_bytes``: a datagram, or a stream message's header section plus body
      (beyond: 513 Message Too Large, dropped; on a stream a declared body beyond it is 413).
    - ``max_headers``: header fields after unfolding (beyond: 513, dropped).
    - ``max_header_bytes``: one header field line after unfolding, name included (beyond:
      400 with the phrase "<Name> Too Long", answered unless it is Via, From, To, Call-ID or
      CSeq, which a response would have to copy).
    - ``max_uri_bytes``: the Request-URI (beyond: 414 Request-URI Too Long, answered).

    >>> ParseLimits(max_headers=0)
    Traceback (most recent call last):
    ...
    ValueError: ParseLimits.max_headers must be at least 1, not 0
    """

    max_message_bytes: int = 65535
    max_headers: int = 128
    max_header_bytes: int = 8192
    max_uri_bytes: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_headers", "max_header_bytes", "max_uri_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ParseLimits.{name} must be at least 1, not {value!r}")
