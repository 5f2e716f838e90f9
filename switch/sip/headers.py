"""SIP header fields (RFC 3261 section 7.3): names, the Headers multi-map, value helpers.

Header names are validated and normalized once (compact forms expanded, canonical spelling) and
cached; value helpers split comma-separated values and read ;parameters outside <...>.

>>> h = Headers([("f", '"A" <sip:a@h>;tag=1'), ("k", "timer, 100rel")])
>>> h.items()[0][0], tag(h.get("from")), split_values(h.get("supported"))
('From', '1', ['timer', '100rel'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from switch.sip.errors import SipParseError

__all__ = ["Headers", "header_param", "split_values", "tag", "uri_of"]


# --- header names -----------------------------------------------------------------------------

_CANONICAL = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "From",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Min-SE", "Organization", "P-Asserted-Identity", "P-Charging-Vector",
    "P-Preferred-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Reject-Contact", "Remote-Party-ID", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate",
]

# RFC 3261 7.3.3 plus the extensions that defined one (RFC 3265, 3515, 3892, 4028, 3841, 4474).
_COMPACT = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
    "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
    "x": "session-expires", "y": "identity", "a": "accept-contact", "j": "reject-contact",
    "d": "request-disposition", "n": "identity-info",
}

_CANON_BY_KEY = {name.lower(): name for name in _CANONICAL}

# Raw name as seen on the wire (or passed to the API) -> (lower-case key, canonical name).
# Names repeat across messages, so a dict hit replaces lower()/validation on the hot path.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 4096  # bounded: a peer sending random header names must not grow memory

_TOKEN_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
_DROP_TOKEN = str.maketrans("", "", _TOKEN_CHARS)


def _is_token(text: str) -> bool:
    # translate() deletes every token character in C; anything left is not a token.
    return bool(text) and text.isascii() and not text.translate(_DROP_TOKEN)


def _name_info(name: str) -> tuple[str, str]:
    info = _NAME_CACHE.get(name)
    if info is not None:
        return info
    bare = name.rstrip(" \t")  # RFC 3261 7.3.1 allows whitespace before the colon
    if not _is_token(bare):
        raise SipParseError(f"invalid header name {bare[:80]!r}", phrase="Bad Header Name",
                            kind="bad_header_name")
    key = bare.lower()
    key = _COMPACT.get(key, key)
    info = (key, _CANON_BY_KEY.get(key, bare))
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[name] = info
    return info


for _name in _CANONICAL:
    _name_info(_name)
    _name_info(_name.lower())
for _short in _COMPACT:
    _name_info(_short)
    _name_info(_short.upper())


def _key(name: str) -> str:
    info = _NAME_CACHE.get(name)
    return info[0] if info is not None else _name_info(name)[0]


_object_new = object.__new__  # cls.__new__ is a lookup per message


class Headers:
    """Ordered multi-map of header fields with case-insensitive names.

    Compact forms are expanded to canonical names; values are str, whitespace-trimmed. A
    comma-separated header parsed from one line stays one entry (see :func:`split_values`).

    >>> h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Max-Forwards", "70")])
    >>> h.prepend("VIA", "SIP/2.0/UDP b;branch=z9hG4bK2")
    >>> h.get_all("via")
    ['SIP/2.0/UDP b;branch=z9hG4bK2', 'SIP/2.0/UDP a;branch=z9hG4bK1']
    >>> h.items()[0][0], len(h), "max-forwards" in h
    ('Via', 3, True)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | None = None) -> None:
        # (lower-case key, canonical name, value): the key makes lookups one string compare.
        self._items: list[tuple[str, str, str]] = []
        if items is not None:
            for name, value in items:
                self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str, str]]) -> Headers:
        # The parser has already validated and normalized names; skip add()'s checks.
        obj = _object_new(cls)
        obj._items = items
        return obj

    @staticmethod
    def _entry(name: str, value: str) -> tuple[str, str, str]:
        # Refuse CR/LF in values: a header value built from peer data must not inject headers.
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR or LF in value of header {name!r}")
        key, canonical = _name_info(name)
        return key, canonical, value.strip(" \t")

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of ``name``, or ``default``.

        >>> Headers([("i", "abc")]).get("Call-ID")
        'abc'
        """
        key = _key(name)
        for k, _, v in self._items:
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (one entry per header line).

        >>> Headers([("Route", "<sip:a>"), ("Route", "<sip:b>")]).get_all("route")
        ['<sip:a>', '<sip:b>']
        """
        key = _key(name)
        return [v for k, _, v in self._items if k == key]

    def add(self, name: str, value: str) -> None:
        """Append a field.

        >>> h = Headers(); h.add("x-Custom", "1"); h.items()
        [('x-Custom', '1')]
        """
        self._items.append(self._entry(name, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first field of that name, or at the top when there is none.

        >>> h = Headers([("To", "<sip:b>"), ("Via", "v1")]); h.prepend("Via", "v0")
        >>> [n for n, _ in h.items()]
        ['To', 'Via', 'Via']
        """
        entry = self._entry(name, value)
        for i, (k, _, _) in enumerate(self._items):
            if k == entry[0]:
                self._items.insert(i, entry)
                return
        self._items.insert(0, entry)

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name with one value, at the place of the first.

        >>> h = Headers([("Via", "a"), ("To", "t"), ("Via", "b")]); h.set("via", "c")
        >>> h.items()
        [('Via', 'c'), ('To', 't')]
        """
        entry = self._entry(name, value)
        out: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] == entry[0]:
                if not placed:
                    out.append(entry)
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append(entry)
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every field of that name (no error when absent).

        >>> h = Headers([("Route", "a"), ("To", "t")]); h.remove("route"); len(h)
        1
        """
        key = _key(name)
        self._items = [item for item in self._items if item[0] != key]

    def items(self) -> list[tuple[str, str]]:
        """(canonical name, value) pairs in order.

        >>> Headers([("l", "0")]).items()
        [('Content-Length', '0')]
        """
        return [(n, v) for _, n, v in self._items]

    def copy(self) -> Headers:
        """An independent copy.

        >>> h = Headers([("To", "a")]); c = h.copy(); c.set("To", "b"); h.get("to")
        'a'
        """
        return Headers._trusted(list(self._items))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(k == key for k, _, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


# A value item: quoted strings and <...> are atoms (commas inside them do not split); a stray
# '"' or '<' without its closing partner is taken as a plain character so nothing is lost.
_VALUE_ITEM = re.compile(r'(?:"(?:[^"\\]|\\.)*"|<[^>]*>|[^,"<]|["<])+')


def split_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings and <...>.

    >>> split_values('a, <sip:x,y>;p=1, "q,r" <sip:z>')
    ['a', '<sip:x,y>;p=1', '"q,r" <sip:z>']
    """
    if '"' not in value and "<" not in value:
        # Common case (Via, Allow, Supported): a plain split is exact and much cheaper.
        return [s for s in (p.strip(" \t") for p in value.split(",")) if s]
    return [s for s in (m.strip(" \t") for m in _VALUE_ITEM.findall(value)) if s]


# --- header parameters ------------------------------------------------------------------------


def _params_part(value: str) -> str:
    # Parameters of a header value live after the name-addr's '>' (or after the addr-spec /
    # Via sent-by); a display name may be a quoted string holding '<', '>' or ';'.
    start = 0
    if value[:1] == '"':
        i = 1
        while True:
            i = value.find('"', i)
            if i < 0:
                return ""
            # a quote preceded by an odd number of backslashes is escaped
            j = i - 1
            while j > 0 and value[j] == "\\":
                j -= 1
            if (i - 1 - j) % 2 == 0:
                break
            i += 1
        start = i + 1
    lt = value.find("<", start)
    if lt >= 0:
        gt = value.find(">", lt)
        return value[gt + 1 :] if gt >= 0 else ""
    return value[start:]


def header_param(value: str, name: str) -> str | None:
    """Value of parameter ``name`` (case-insensitive) outside <...>; "" for a flag parameter.

    >>> header_param('"A;b" <sip:a@h;tag=no>;Tag=yes;lr', "tag"), header_param("<sip:a>;lr", "lr")
    ('yes', '')
    >>> header_param("SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx", "rport") is None
    True
    """
    params = _params_part(value)
    semi = params.find(";")
    if semi < 0:
        return None
    wanted = name.lower()
    for param in params[semi + 1 :].split(";"):
        key, _, val = param.partition("=")
        if key.strip(" \t").lower() == wanted:
            return val.strip(" \t")
    return None


def tag(value: str) -> str | None:
    """The ;tag= of a From/To value (outside <...>).

    >>> tag("Bob <sip:bob@h;tag=uri>;tag=abc"), tag("<sip:bob@h>")
    ('abc', None)
    """
    return header_param(value, "tag")


def uri_of(value: str) -> str:
    """The URI in a From/To/Contact value (name-addr or addr-spec).

    >>> uri_of('"Bob" <sip:bob@10.0.0.2:5070;transport=tcp>;tag=9'), uri_of("sip:a@h;tag=1")
    ('sip:bob@10.0.0.2:5070;transport=tcp', 'sip:a@h')
    """
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1:end if end > 0 else len(value)].strip()
    return value.split(";", 1)[0].strip()
