r"""What the switch and ratelab share: the CDR contract's rules, defined once (docs/cdr.md).

The switch never imports ratelab; ratelab imports this module. For now it holds how text that
is not UTF-8 appears in a CDR, and the name of the spool's reject files.

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

import re
from typing import Any

__all__ = [
    "ESCAPED_FIELD",
    "REJECT_FILE_GLOB",
    "escape_record",
    "escape_text",
    "needs_escape",
    "reject_file_name",
    "unescape_record",
    "unescape_text",
]

#: The CDR field listing the paths of the strings that were escaped (absent when none was).
ESCAPED_FIELD = "escaped"

#: Spool files holding what the writer could not write as a CDR (see :func:`reject_file_name`).
REJECT_FILE_GLOB = "rejects-*.jsonl"

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
    copy = _escape_value(record, "", paths)
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


def reject_file_name(switch_id: str, boot: str) -> str:
    """The spool file where a switch's boot puts the records it could not write as CDRs.

    One JSON object per line: ``cdr_id`` (when known), ``reason`` and ``record`` (a ``repr``).
    Ingest quarantines each line (docs/cdr.md).

    >>> reject_file_name("sw1", "b1")
    'rejects-sw1-b1.jsonl'
    """
    return f"rejects-{switch_id}-{boot}.jsonl"
