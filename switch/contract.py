r"""What the switch and ratelab share, defined once: the switch never imports ratelab, and
ratelab imports this module (standard library only). docs/cdr.md is the prose.

* **The CDR, v1**: :data:`CDR_VERSION`, the fields with their kinds (:data:`CDR_FIELDS`, the
  optional :data:`ESCAPED_FIELD`), the attempt and RTP sub-fields, and the disconnect reasons
  (:class:`DisconnectReason`).
* **The spool**: file names (:func:`cdr_file_name`, :data:`CDR_FILE_GLOB`,
  :func:`reject_file_name`) and the torn-last-line rule (:func:`split_complete`).
* **The routing snapshot**: :data:`SNAPSHOT_FORMAT`, :data:`SNAPSHOT_VERSION`, the
  longest-prefix lookup the switch routes with (:class:`PrefixTable`, :func:`longest_match`)
  and the order it tries vendors in (:func:`route_order`), which ratelab's rate-plan leak
  check follows.
* **Text that is not UTF-8** in a CDR (below).

**Non-UTF-8 text.** The SIP parser decodes header bytes as UTF-8 with ``surrogateescape``, so a
byte that is not valid UTF-8 (``0xff`` in a From user or a Call-ID) reaches the CDR as a lone
surrogate, U+DC80..U+DCFF. A spool line must be UTF-8, so the writer escapes such a string
losslessly and lists it in the CDR's ``escaped`` field. In an escaped string:

* ``\`` becomes ``\\``;
* a byte 0x80..0xFF that was not valid UTF-8 (U+DC80..U+DCFF) becomes ``\xHH``, ``HH`` its two
  lowercase hex digits;
* any other surrogate code point (U+D800..U+DC7F, U+DD00..U+DFFF: not from the wire) becomes
  ``\uHHHH``, four lowercase hex digits;
* everything else is kept as it is.

Only a record that needs it is escaped, and in it only the strings that need it; every other
string is written verbatim (a backslash in it is just a backslash). ``escaped`` lists the
escaped strings' paths: a top-level field by name, a nested one dotted, list items by index
(``"attempts.0.vendor"``).

>>> record = {"cdr_id": "sw1-b-7", "caller": "15\udcff5", "call_id": "a\\b\udcfe@h"}
>>> written = escape_record(record)
>>> for key, value in written.items():
...     print(key, value)
cdr_id sw1-b-7
caller 15\xff5
call_id a\\b\xfe@h
escaped ['caller', 'call_id']
>>> unescape_record(written) == record
True
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

__all__ = [
    "ATTEMPT_FIELDS",
    "CDR_FIELDS",
    "CDR_FILE_GLOB",
    "CDR_VERSION",
    "ESCAPED",
    "ESCAPED_FIELD",
    "REJECT_FILE_GLOB",
    "RTP_COUNTERS",
    "RTP_ENCRYPTION",
    "RTP_FIELDS",
    "RTP_LEGS",
    "RTP_LEG_FIELDS",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "CdrField",
    "DisconnectReason",
    "FieldKind",
    "PrefixTable",
    "all_cdr_fields",
    "cdr_file_name",
    "escape_record",
    "escape_text",
    "longest_match",
    "needs_escape",
    "reject_file_name",
    "route_order",
    "split_complete",
    "unescape_record",
    "unescape_text",
]

T = TypeVar("T")

# --- the CDR, v1 -----------------------------------------------------------------------------

#: The CDR contract's version. Changing the fields below means a bump and an ingest path for
#: the old version (DESIGN.md); an optional field may be added within a version (``escaped``).
CDR_VERSION = 1


class FieldKind(enum.StrEnum):
    """The JSON kind of a CDR field's value (a timestamp is a string: UTC RFC 3339, µs, ``Z``)."""

    STRING = "string"
    INT = "int"
    TIMESTAMP = "timestamp"
    LIST = "list"
    OBJECT = "object"


@dataclass(frozen=True)
class CdrField:
    """One field of the CDR: its name, its kind, whether ingest refuses a CDR without it, and
    for a list what its items are (a kind, or the fields of an object); for an object, its
    fields (a reader ignores keys not listed, as v1 allows).

    >>> CDR_FIELDS[0]
    CdrField(name='cdr_id', kind=<FieldKind.STRING: 'string'>, required=True, items=None)
    """

    name: str
    kind: FieldKind
    required: bool = False
    items: FieldKind | tuple[CdrField, ...] | None = None


#: One vendor attempt, as listed in ``attempts`` in the order tried.
ATTEMPT_FIELDS: tuple[CdrField, ...] = (
    CdrField("vendor", FieldKind.STRING),
    CdrField("start_ts", FieldKind.TIMESTAMP),
    CdrField("sip_code", FieldKind.INT),
    CdrField("pdd_ms", FieldKind.INT),
)

#: ``rtp`` holds, per leg, these counters (all integers) and the leg's ``encryption``.
RTP_LEGS = ("customer", "vendor")
RTP_COUNTERS = ("packets_in", "packets_out", "bytes_in", "bytes_out")
#: Key of each ``rtp`` leg holding that leg's payload encryption, 0-3 like ``rtp_encryption``
#: (which is the vendor leg's). Added within v1 like ``escaped``: a reader that ignores unknown
#: keys reads the CDR as before, and a CDR without it means 0 on both legs.
RTP_ENCRYPTION = "encryption"

_S, _I, _T = FieldKind.STRING, FieldKind.INT, FieldKind.TIMESTAMP
#: One ``rtp`` leg: the counters, then the leg's encryption mode.
RTP_LEG_FIELDS: tuple[CdrField, ...] = tuple(
    CdrField(name, _I) for name in (*RTP_COUNTERS, RTP_ENCRYPTION))
#: ``rtp``'s keys: one object per leg (either may be absent, or null).
RTP_FIELDS: tuple[CdrField, ...] = tuple(
    CdrField(leg, FieldKind.OBJECT, items=RTP_LEG_FIELDS) for leg in RTP_LEGS)
#: Every field a v1 CDR has, in contract order (a value may be null where docs/cdr.md says so).
CDR_FIELDS: tuple[CdrField, ...] = (
    CdrField("cdr_id", _S, required=True),
    CdrField("switch_id", _S),
    CdrField("call_id", _S),
    CdrField("caller", _S),
    CdrField("callee", _S),
    CdrField("callee_e164", _S),
    CdrField("customer", _S, required=True),
    CdrField("vendor", _S),
    CdrField("src_ip", _S),
    CdrField("src_port", _I),
    CdrField("start_ts", _T, required=True),
    CdrField("answer_ts", _T),
    CdrField("end_ts", _T),
    CdrField("duration_ms", _I, required=True),
    CdrField("pdd_ms", _I),
    CdrField("sip_code", _I, required=True),
    CdrField("disconnect_reason", _S),
    CdrField("attempts", FieldKind.LIST, items=ATTEMPT_FIELDS),
    CdrField("codec", _S),
    CdrField("rtp_encryption", _I),
    CdrField("rtp", FieldKind.OBJECT, items=RTP_FIELDS),
)

#: The CDR field listing the paths of the strings that were escaped (absent when none was).
ESCAPED_FIELD = "escaped"
#: ``escaped`` as a field: optional, only in a record that needed escaping (see below).
ESCAPED = CdrField(ESCAPED_FIELD, FieldKind.LIST, items=FieldKind.STRING)


def all_cdr_fields() -> tuple[CdrField, ...]:
    """Every field a v1 CDR may hold: :data:`CDR_FIELDS`, then the optional ``escaped``.

    >>> [f.name for f in all_cdr_fields()][-3:]
    ['rtp_encryption', 'rtp', 'escaped']
    >>> [f.name for f in CDR_FIELDS if f.required]
    ['cdr_id', 'customer', 'start_ts', 'duration_ms', 'sip_code']
    """
    return (*CDR_FIELDS, ESCAPED)


class DisconnectReason(enum.StrEnum):
    """The CDR's ``disconnect_reason``: why the call ended (docs/cdr.md). A ``StrEnum``, so a
    member is the string the CDR holds.

    >>> DisconnectReason("no_route") is DisconnectReason.NO_ROUTE, f"{DisconnectReason.BUSY}"
    (True, 'busy')
    """

    NORMAL_CLEARING = "normal_clearing"
    CALLER_BYE = "caller_bye"
    CALLEE_BYE = "callee_bye"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    NO_ROUTE = "no_route"
    CPS_LIMIT = "cps_limit"
    CONCURRENCY_LIMIT = "concurrency_limit"
    MAX_DURATION = "max_duration"
    PROFIT_LIMIT = "profit_limit"
    AUTH_FAILED = "auth_failed"
    INVITE_TIMEOUT = "invite_timeout"
    MEDIA_TIMEOUT = "media_timeout"
    SHUTDOWN = "shutdown"
    ERROR = "error"


# --- the spool -------------------------------------------------------------------------------

#: The spool's CDR files (see :func:`cdr_file_name`).
CDR_FILE_GLOB = "cdr-*.jsonl"
#: Spool files holding what the writer could not write as a CDR (see :func:`reject_file_name`).
REJECT_FILE_GLOB = "rejects-*.jsonl"


def cdr_file_name(switch_id: str, boot: str, n: int) -> str:
    """The ``n``-th CDR file of a switch's boot (numbered from 1, rotating by age and size).

    The active file has its final name from the start: a reader takes its complete lines.

    >>> cdr_file_name("sw1", "b1", 7)
    'cdr-sw1-b1-000007.jsonl'
    """
    return f"cdr-{switch_id}-{boot}-{n:06d}.jsonl"


def reject_file_name(switch_id: str, boot: str) -> str:
    """The spool file where a switch's boot puts the records it could not write as CDRs.

    One JSON object per line: ``cdr_id`` (when known), ``reason`` and ``record`` (a ``repr``).
    Ingest quarantines each line (docs/cdr.md).

    >>> reject_file_name("sw1", "b1")
    'rejects-sw1-b1.jsonl'
    """
    return f"rejects-{switch_id}-{boot}.jsonl"

def split_complete(data: bytes) -> tuple[bytes, bytes]:
    r"""``data`` as (its complete lines, the torn tail): the torn-last-line rule.

    A line is complete once its ``\n`` is written. What follows the last newline is a line the
    writer is still writing, or was writing when it stopped: a reader holds it back until it is
    complete (ingest quarantines it as ``truncated`` meanwhile), and the switch's crash
    recovery cuts it off a file of an earlier boot. The first part is empty or ends in ``\n``.

    >>> split_complete(b'{"a": 1}\n{"b"')
    (b'{"a": 1}\n', b'{"b"')
    >>> split_complete(b"x\n"), split_complete(b"")
    ((b'x\n', b''), (b'', b''))
    """
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


# --- the routing snapshot --------------------------------------------------------------------

#: The snapshot file's ``format`` and ``version`` (``ratelab routing export`` writes it, the
#: switch loads it; docs/switch.md).
SNAPSHOT_FORMAT = "ratelab-routing"
SNAPSHOT_VERSION = 1


class PrefixTable(Mapping[str, T], Generic[T]):
    """A read-only prefix -> value map whose longest-prefix lookup probes at most
    ``max_len`` keys, however long the number.

    Built once per snapshot and per configuration: a lookup costs at most "longest key" dict
    probes whatever the length of the number (a 60,000-digit INVITE used to cost 60,000 probes
    of up to 60,000 characters each, per table).

    A ``dict`` passed in is adopted, not copied (a snapshot holds many prefixes, and the
    snapshot parser builds each dict for its table alone); do not change it afterwards.

    >>> table = PrefixTable({"34": 1, "346": 2, "3463": 3})
    >>> table.max_len, table.longest("34621234"), table["34"], len(table)
    (4, ('346', 2), 1, 3)
    >>> table.longest("9" * 60_000) is None
    True
    """

    __slots__ = ("_entries", "max_len")

    def __init__(self, entries: Mapping[str, T] | None = None) -> None:
        self._entries: dict[str, T] = entries if isinstance(entries, dict) \
            else dict(entries or {})
        self.max_len = max(map(len, self._entries), default=0)

    def __getitem__(self, key: str) -> T:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PrefixTable({self._entries!r})"

    def longest(self, number: str) -> tuple[str, T] | None:
        """The entry whose key is the longest prefix of ``number`` (see :func:`longest_match`).

        >>> PrefixTable({"44": "uk"}).longest("447700"), PrefixTable().longest("44")
        (('44', 'uk'), None)
        """
        return _longest(number, self._entries, self.max_len)


def _longest(number: str, entries: Mapping[str, T], max_len: int) -> tuple[str, T] | None:
    # Only lengths a key can have are probed, each slice at most max_len long: the cost does
    # not grow with the number.
    get = entries.get
    for end in range(min(len(number), max_len), 0, -1):
        key = number[:end]
        hit = get(key)
        if hit is not None:
            return key, hit
    return None


def longest_match(number: str, table: Mapping[str, T]) -> tuple[str, T] | None:
    """The entry of ``table`` whose key is the longest prefix of ``number``.

    A :class:`PrefixTable` answers from its own bound; any other mapping is measured first
    (one pass over its keys), so either way at most "longest key" lengths are probed.

    >>> longest_match("34621234", {"34": 1, "346": 2, "3463": 3})
    ('346', 2)
    >>> longest_match("44", {"440": 1}) is None
    True
    """
    if isinstance(table, PrefixTable):
        return table.longest(number)
    return _longest(number, table, max(map(len, table), default=0))


def route_order(gateway_prefix: str, priority: int, vendor_rate: Decimal,
                vendor: str) -> tuple[int, int, Decimal, str]:
    """The sort key of a vendor the switch may try for a number: the gateway whose matching
    ``prefixes`` entry is longest first, then the lower ``priority``, then the cheaper vendor
    rate, then the name (so the order never depends on the configuration's order).

    ``gateway_prefix`` is the gateway's longest prefix matching the number ("" when the
    gateways are not known: then every vendor is equal on it, as with default priorities).

    >>> vendors = [("4", 1, Decimal("0.010"), "cheap"), ("44", 2, Decimal("0.020"), "uk"),
    ...            ("4", 1, Decimal("0.015"), "dear")]
    >>> [v[3] for v in sorted(vendors, key=lambda v: route_order(*v))]
    ['uk', 'cheap', 'dear']
    """
    return -len(gateway_prefix), priority, vendor_rate, vendor


# --- text that is not UTF-8 ------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_TO_ESCAPE = re.compile("[\\\\\ud800-\udfff]")
# Exactly what escape_text writes, so every escaped string has one reading; the empty last
# alternative catches any other backslash, which unescape_text refuses.
_ESCAPED = re.compile(r"\\(?:(\\)|x([89a-f][0-9a-f])|u(d[89ab][0-9a-f]{2}|dc[0-7][0-9a-f]"
                      r"|d[d-f][0-9a-f]{2})|)")


def needs_escape(s: str) -> bool:
    r"""Whether ``s`` cannot be written as UTF-8 as it is (it holds a surrogate code point).

    >>> needs_escape("155"), needs_escape("1\udcff5"), needs_escape("a\\b")
    (False, True, False)
    """
    return _SURROGATE.search(s) is not None


def _escape_char(match: re.Match[str]) -> str:
    point = ord(match.group())
    if point == 0x5C:
        return "\\\\"
    if 0xDC80 <= point <= 0xDCFF:
        return f"\\x{point - 0xDC00:02x}"
    return f"\\u{point:04x}"


def escape_text(s: str) -> str:
    r"""``s`` with backslashes doubled and surrogates escaped (``\xHH``, ``\uHHHH``).

    The result is always valid UTF-8, and :func:`unescape_text` gives ``s`` back.

    >>> raw = b"call\xff\\1@h".decode("utf-8", "surrogateescape")
    >>> print(escape_text(raw))
    call\xff\\1@h
    >>> print(escape_text("\ud800"))
    \ud800
    """
    return _TO_ESCAPE.sub(_escape_char, s)


def _unescape_one(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\"
    if match.group(2):
        return chr(0xDC00 + int(match.group(2), 16))
    if match.group(3):
        return chr(int(match.group(3), 16))
    raise ValueError(f"not an escaped CDR string: bad escape at {match.start()}")


def unescape_text(s: str) -> str:
    r"""The string :func:`escape_text` made ``s`` from; ValueError if it could not have.

    Bytes that were not UTF-8 come back as surrogates, so
    ``unescape_text(s).encode("utf-8", "surrogateescape")`` gives the bytes from the wire.

    >>> unescape_text(r"call\xff\\1@h").encode("utf-8", "surrogateescape")
    b'call\xff\\1@h'
    >>> unescape_text(r"\q")
    Traceback (most recent call last):
    ...
    ValueError: not an escaped CDR string: bad escape at 0
    """
    if needs_escape(s):
        raise ValueError("not an escaped CDR string: it holds a surrogate")
    return _ESCAPED.sub(_unescape_one, s)


def escape_record(record: dict[str, Any]) -> dict[str, Any]:
    r"""A copy of ``record`` with each string that needs it escaped and listed in ``escaped``.

    A record with nothing to escape comes back equal, without ``escaped``. ValueError when the
    record cannot be made writable this way: a key that needs escaping or holds a dot (a path
    could not name it), or an ``escaped`` field already there.

    >>> out = escape_record({"caller": "1\udcff", "attempts": [{"vendor": "v\udc80"}], "n": 5})
    >>> out["caller"], out["attempts"][0]["vendor"], out["escaped"]
    ('1\\xff', 'v\\x80', ['caller', 'attempts.0.vendor'])
    >>> escape_record({"caller": "155"})
    {'caller': '155'}
    """
    paths: list[str] = []
    copy: dict[str, Any] = _escape_value(record, "", paths)  # a dict in gives a dict out
    if paths:
        if ESCAPED_FIELD in record:
            raise ValueError(f"the record already has an {ESCAPED_FIELD!r} field")
        copy[ESCAPED_FIELD] = paths
    return copy


def _escape_value(value: Any, path: str, paths: list[str]) -> Any:
    if isinstance(value, str):
        if needs_escape(value):
            paths.append(path)
            return escape_text(value)
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = str(key)
            if needs_escape(name):
                raise ValueError(f"a CDR key that is not UTF-8: {key!r}")
            before = len(paths)
            out[key] = _escape_value(item, f"{path}.{name}" if path else name, paths)
            if "." in name and len(paths) > before:
                raise ValueError(f"a CDR key that a dotted path cannot name: {key!r}")
        return out
    if isinstance(value, list | tuple):
        return [_escape_value(item, f"{path}.{i}" if path else str(i), paths)
                for i, item in enumerate(value)]
    return value


def unescape_record(record: dict[str, Any]) -> dict[str, Any]:
    r"""A copy of ``record`` with the strings its ``escaped`` field lists unescaped, no flag.

    >>> unescape_record({"caller": r"1\xff", "escaped": ["caller"]}) == {"caller": "1\udcff"}
    True
    >>> unescape_record({"caller": r"1\xff"})   # not listed: verbatim
    {'caller': '1\\xff'}
    """
    out = {k: v for k, v in record.items() if k != ESCAPED_FIELD}
    for path in record.get(ESCAPED_FIELD) or []:
        *parents, last = path.split(".")
        holder: Any = out
        for part in parents:
            # copied on the way down, so the caller's nested values are never changed
            index: Any = int(part) if isinstance(holder, list) else part
            child = holder[index]
            holder[index] = child = list(child) if isinstance(child, list) else dict(child)
            holder = child
        key: Any = int(last) if isinstance(holder, list) else last
        holder[key] = unescape_text(holder[key])
    return out

