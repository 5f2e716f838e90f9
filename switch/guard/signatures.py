"""The signature layer: string matches on a datagram's raw bytes, without a SIP parse.

Like the article's ``iptables -m string`` chain (SIP_SCANNER_BLOCK), but aware of where a string
sits: only the request line's method and Request-URI scheme, and the User-Agent, From and To
header lines (compact ``f:`` / ``t:`` too; names case-insensitive) up to the blank line ending the
headers, within the first :data:`SCAN_LIMIT` bytes. A string in the body or another header does not
match. Responses (``SIP/2.0 ...``) and bare CRLF keep-alives skip the layer. Nothing here raises,
whatever the bytes.

>>> from switch.config_types import GuardSettings
>>> sig = Signatures(GuardSettings())
>>> sig.classify(b"OPTIONS sip:100@192.0.2.1 SIP/2.0\\r\\n\\r\\n")
<Rule.OPTIONS: 'options'>
>>> sig.classify(b"INVITE sip:1@h SIP/2.0\\r\\nUser-Agent: friendly-scanner\\r\\n\\r\\n")
<Rule.SCANNER: 'scanner'>
>>> sig.classify(b"SUBSCRIBE sip:1@h SIP/2.0\\r\\n\\r\\n"), sig.classify(b"SIP/2.0 200 OK\\r\\n")
(<Rule.UNSERVED: 'unserved'>, None)
"""

from __future__ import annotations

import re

from switch.config_types import GuardSettings
from switch.guard.rules import Rule

__all__ = ["SCAN_LIMIT", "SERVED_METHODS", "Signatures", "call_id", "has_to_tag", "header_block",
           "header_end"]

SCAN_LIMIT = 8192  # bytes of a datagram the header searches look at
SERVED_METHODS = frozenset({b"INVITE", b"ACK", b"CANCEL", b"BYE", b"OPTIONS", b"UPDATE", b"INFO",
                            b"REGISTER"})
_AGENT_HEADERS = frozenset({b"user-agent", b"from", b"to", b"f", b"t"})
_TO_HEADERS = frozenset({b"to", b"t"})
_CALL_ID_HEADERS = frozenset({b"call-id", b"i"})
_TAG = re.compile(rb";[ \t]*tag[ \t]*=")
_CANDIDATE_LINES = re.compile(rb"\n[uUfFtT \t][^\n]*")
_FOLD = (32, 9)  # SP, HTAB: a line starting with one continues the header above (RFC 3261 7.3.1)


def header_end(data: bytes) -> int:
    """Where the header block of ``data`` ends (the empty line), bounded to SCAN_LIMIT.

    The first line's ending decides the style: after a CRLF the block ends at CRLF CRLF, after
    a bare LF at LF LF (either, if the expected one is missing); with no empty line at all, at
    the end of the data or SCAN_LIMIT.

    >>> header_end(b"BYE x SIP/2.0\\r\\nA: 1\\r\\n\\r\\nbody"), header_end(b"BYE x\\nA: 1\\n\\nb")
    (19, 10)
    """
    nl = data.find(b"\n", 0, SCAN_LIMIT)
    if nl > 0 and data[nl - 1] == 13:
        end = data.find(b"\r\n\r\n", nl - 1, SCAN_LIMIT)
        if end >= 0:
            return end
    end = data.find(b"\n\n", 0, SCAN_LIMIT)
    if end < 0:
        end = data.find(b"\n\r\n", 0, SCAN_LIMIT)
    return end if end >= 0 else min(len(data), SCAN_LIMIT)


def header_block(data: bytes) -> bytes:
    """The header lines of ``data`` (request line included), lowered (:func:`header_end`).

    >>> header_block(b"BYE sip:a@b SIP/2.0\\r\\nTo: <sip:X@y>\\r\\n\\r\\nbody")
    b'bye sip:a@b sip/2.0\\r\\nto: <sip:x@y>'
    """
    return data[:header_end(data)].lower()


def _header_name(block: bytes, pos: int) -> bytes | None:
    """The (lowered) name of the header whose line holds ``block[pos]``; None on the first line."""
    start = block.rfind(b"\n", 0, pos) + 1
    while start > 0 and start < len(block) and block[start] in _FOLD:
        start = block.rfind(b"\n", 0, start - 1) + 1
    if start == 0:
        return None  # the request line
    colon = block.find(b":", start, pos)
    if colon < 0:
        return None  # inside the header name itself
    return block[start:colon].rstrip(b" \t")


def _values(block: bytes, names: frozenset[bytes]) -> list[bytes]:
    """The values of the header lines named in ``names`` (folded lines joined), in order."""
    out: list[bytes] = []
    lines = block.split(b"\n")
    for k in range(1, len(lines)):
        line = lines[k]
        colon = line.find(b":")
        if colon <= 0 or line[0] in _FOLD or line[:colon].rstrip(b" \t") not in names:
            continue
        value = line[colon + 1:]
        j = k + 1
        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
            value += b" " + lines[j]
            j += 1
        out.append(value.strip())
    return out


def has_to_tag(data: bytes) -> bool:
    """True when the To header carries a tag (a request inside a dialog, not a new one).

    >>> has_to_tag(b"INVITE sip:a@b SIP/2.0\\r\\nt: <sip:a@b>;Tag=9\\r\\n\\r\\n")
    True
    >>> has_to_tag(b"INVITE sip:a@b SIP/2.0\\r\\nTo: <sip:a@b>\\r\\n\\r\\n;tag=1")
    False
    """
    values = _values(header_block(data), _TO_HEADERS)
    return bool(values) and _TAG.search(values[0]) is not None


def call_id(data: bytes) -> str | None:
    """The Call-ID (``Call-ID`` or compact ``i``) as written, or None.

    >>> call_id(b"INVITE sip:a@b SIP/2.0\\r\\ni: Abc@h\\r\\n\\r\\n")
    'Abc@h'
    """
    block = header_block(data)
    for k, line in enumerate(block.split(b"\n")):
        colon = line.find(b":")
        if k == 0 or colon <= 0 or line[:colon].rstrip(b" \t") not in _CALL_ID_HEADERS:
            continue
        start = data.lower().find(line)  # same offsets in the original, not lowered, bytes
        raw = data[start + colon + 1:start + len(line)] if start >= 0 else line[colon + 1:]
        return raw.strip().decode("utf-8", "replace")
    return None


class Signatures:
    """The signature layer for one :class:`GuardSettings`: :meth:`classify` drops or passes.

    Order, as in the article's chain: the method (OPTIONS, REGISTER, methods the switch never
    serves), then the Request-URI scheme (``sip:``/``sips:`` only), then the scanner names. A
    scanner's OPTIONS is therefore dropped as OPTIONS (cheapest, no header search) and does not
    ban; its INVITE or REGISTER is dropped as SCANNER.
    """

    __slots__ = ("_agents", "_any_agent", "_options", "_register", "_unserved")

    def __init__(self, settings: GuardSettings) -> None:
        self._options = settings.drop_options_from_untrusted
        self._register = settings.drop_register_from_untrusted
        self._unserved = settings.drop_unserved
        agents = {a.strip().encode("utf-8").lower() for a in settings.scanner_agents}
        self._agents = tuple(sorted(a for a in agents if a))
        # One C-level pass finds any of them (ten `in` tests cost about twice as much).
        self._any_agent = re.compile(b"|".join(re.escape(a) for a in self._agents))

    def classify(self, data: bytes) -> Rule | None:
        """The signature rule ``data`` breaks, or None; never raises.

        >>> from switch.config_types import GuardSettings
        >>> Signatures(GuardSettings()).classify(b"INVITE tel:+123 SIP/2.0\\r\\n\\r\\n")
        <Rule.UNSERVED: 'unserved'>
        """
        if data.startswith(b"SIP/2.0 "):
            return None  # a response
        sp = data.find(b" ", 0, 17)
        if sp > 0:
            method = data[:sp]
            if method in SERVED_METHODS:
                if method == b"OPTIONS" and self._options:
                    return Rule.OPTIONS
                if method == b"REGISTER" and self._register:
                    return Rule.REGISTER
                if self._unserved:
                    scheme = data[sp + 1:sp + 6].lower()
                    if not scheme.startswith(b"sip:") and scheme != b"sips:":
                        return Rule.UNSERVED
            elif self._unserved:
                return Rule.UNSERVED
        elif data and not data.strip(b"\r\n"):
            return None  # CRLF keep-alive (RFC 5626)
        elif self._unserved:
            return Rule.UNSERVED  # no method at all: empty, garbage, binary
        return self._scan(data) if self._agents else None

    def _scan(self, data: bytes) -> Rule | None:
        # Cheap pass over lines that may be User-Agent, From, To (or continue a header): one
        # regex for the lines, one for the names. Body lines may come along; the exact pass
        # (only on a hit) looks at the header block alone.
        lines = b"".join(_CANDIDATE_LINES.findall(data, 0, SCAN_LIMIT)).lower()
        if self._any_agent.search(lines) is None:
            return None
        return self._verify(header_block(data))

    def _verify(self, block: bytes) -> Rule | None:
        """Exact pass: an agent inside a User-Agent, From or To header's line."""
        for agent in self._agents:
            pos = block.find(agent)
            while pos >= 0:
                if _header_name(block, pos) in _AGENT_HEADERS:
                    return Rule.SCANNER
                pos = block.find(agent, pos + 1)
        return None
