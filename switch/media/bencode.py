"""Bencode (the BitTorrent encoding rtpengine's ng control protocol carries), strict and bounded.

Integers, byte strings, lists and dictionaries; nothing else. The relay decodes datagrams from the
network with it, so decoding is strict (no leading zeros, no ``-0``, no duplicate keys, nothing
after the value) and bounded (input length, nesting depth, integer digits), and every failure is a
:class:`BencodeError`, never another exception. Dictionary keys decode to ``str``; values stay
``bytes`` unless ``text=True`` asks for UTF-8 strings (all ng values are text).

>>> encode({"command": "ping"})
b'd7:command4:pinge'
>>> decode(b'd6:result4:ponge', text=True)
{'result': 'pong'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "BValue",
    "BencodeError",
    "decode",
    "encode",
]

BValue: TypeAlias = "int | bytes | str | list[BValue] | dict[str, BValue]"
"""A decoded value: ``str`` for strings only when decoding with ``text=True``."""

# One UDP datagram at most: an ng message never spans more, so anything longer is not ours.
MAX_LENGTH = 65535
# Real ng dictionaries nest four or five levels (query: tags -> medias -> streams -> stats);
# the bound keeps hostile input from recursing deep.
MAX_DEPTH = 32
# int64, which rtpengine uses for every integer, has at most 19 digits plus a sign. Python would
# parse more, but the other side could not, and huge digit strings are slow to convert.
_MAX_INT_CHARS = 20


class BencodeError(ValueError):
    """Input that is not (bounded, strict) bencode, or a value that cannot be encoded.

    ``offset`` is where decoding stopped (None for encoding errors).

    >>> str(BencodeError("bad", 3))
    'offset 3: bad'
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"offset {offset}: {reason}" if offset is not None else reason)


# --- encoding --------------------------------------------------------------------------------


def _encode_string(raw: bytes, out: list[bytes]) -> None:
    out.append(b"%d:" % len(raw))
    out.append(raw)


def _encode(value: object, out: list[bytes], depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise BencodeError(f"nesting deeper than {max_depth}")
    # bool is an int subclass; encoding True as i1e would silently change its type on the way back.
    if isinstance(value, bool):
        raise BencodeError("cannot encode bool (use an int or a string)")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes | bytearray | memoryview):
        _encode_string(bytes(value), out)
    elif isinstance(value, str):
        _encode_string(value.encode("utf-8"), out)
    elif isinstance(value, Mapping):
        items: list[tuple[bytes, object]] = []
        for key, item in value.items():
            if isinstance(key, str):
                raw_key = key.encode("utf-8")
            elif isinstance(key, bytes):
                raw_key = key
            else:
                raise BencodeError(f"dictionary key must be str or bytes, got {type(key).__name__}")
            items.append((raw_key, item))
        # The bencode spec wants keys sorted as raw bytes; sorting also makes output deterministic.
        items.sort(key=lambda pair: pair[0])
        out.append(b"d")
        for raw_key, item in items:
            _encode_string(raw_key, out)
            _encode(item, out, depth + 1, max_depth)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1, max_depth)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot encode {type(value).__name__}")


def encode(value: object, *, max_depth: int = MAX_DEPTH) -> bytes:
    """Bencode ``value``: int, bytes, str (as UTF-8), list/tuple, dict (keys sorted).

    >>> encode({"b": [1, -2], "a": b"x"})
    b'd1:a1:x1:bli1ei-2eee'
    >>> encode(1.5)
    Traceback (most recent call last):
    ...
    switch.media.bencode.BencodeError: cannot encode float
    """
    out: list[bytes] = []
    _encode(value, out, 0, max_depth)
    return b"".join(out)


# --- decoding --------------------------------------------------------------------------------


class _Decoder:
    """A cursor over one input; each method consumes one value and returns it."""

    __slots__ = ("data", "max_depth", "pos", "text")

    def __init__(self, data: bytes, text: bool, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.text = text
        self.max_depth = max_depth

    def fail(self, reason: str) -> BencodeError:
        return BencodeError(reason, self.pos)

    def value(self, depth: int) -> BValue:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of input")
        lead = self.data[self.pos]
        if lead == 0x69:  # i
            return self.integer()
        if lead == 0x6C or lead == 0x64:  # l, d
            if depth >= self.max_depth:
                raise self.fail(f"nesting deeper than {self.max_depth}")
            return self.list(depth + 1) if lead == 0x6C else self.dict(depth + 1)
        if 0x30 <= lead <= 0x39:
            raw = self.string()
            return self.as_text(raw) if self.text else raw
        raise self.fail(f"unexpected byte {bytes([lead])!r}")

    def integer(self) -> int:
        start = self.pos + 1
        end = self.data.find(b"e", start, start + _MAX_INT_CHARS + 1)
        if end < 0:
            raise self.fail("integer without 'e' (or longer than 20 characters)")
        digits = self.data[start:end]
        negative = digits.startswith(b"-")
        body = digits[1:] if negative else digits
        if not body or not body.isdigit():
            raise self.fail(f"bad integer {digits!r}")
        if body.startswith(b"0") and (len(body) > 1 or negative):
            raise self.fail(f"integer with leading zero or -0: {digits!r}")
        self.pos = end + 1
        return -int(body) if negative else int(body)

    def string(self) -> bytes:
        colon = self.data.find(b":", self.pos, self.pos + 11)  # 10 digits cover MAX_LENGTH
        if colon < 0:
            raise self.fail("string length without ':'")
        length_text = self.data[self.pos : colon]
        if not length_text.isdigit() or (length_text.startswith(b"0") and len(length_text) > 1):
            raise self.fail(f"bad string length {length_text!r}")
        length = int(length_text)
        start = colon + 1
        if start + length > len(self.data):
            raise self.fail(f"string of {length} bytes runs past the end of input")
        self.pos = start + length
        return self.data[start : self.pos]

    def as_text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not UTF-8") from None

    def list(self, depth: int) -> list[BValue]:
        self.pos += 1
        items: list[BValue] = []
        # Each item consumes at least one byte, so the input length bounds this loop.
        while True:
            if self.pos >= len(self.data):
                raise self.fail("list without 'e'")
            if self.data[self.pos] == 0x65:  # e
                self.pos += 1
                return items
            items.append(self.value(depth))

    def dict(self, depth: int) -> dict[str, BValue]:
        self.pos += 1
        items: dict[str, BValue] = {}
        # rtpengine does not sort its keys, so order is not checked; duplicates are refused since
        # either reading of them would be a guess.
        while True:
            if self.pos >= len(self.data):
                raise self.fail("dictionary without 'e'")
            lead = self.data[self.pos]
            if lead == 0x65:  # e
                self.pos += 1
                return items
            if not 0x30 <= lead <= 0x39:
                raise self.fail("dictionary key is not a string")
            key = self.as_text(self.string())
            if key in items:
                raise self.fail(f"duplicate dictionary key {key!r}")
            items[key] = self.value(depth)


def decode(
    data: bytes, *, text: bool = False, max_length: int = MAX_LENGTH, max_depth: int = MAX_DEPTH
) -> BValue:
    """Decode exactly one bencoded value filling ``data``; raise BencodeError on anything else.

    >>> decode(b"d3:keyli7e2:hiee")
    {'key': [7, b'hi']}
    >>> decode(b"i03e")
    Traceback (most recent call last):
    ...
    switch.media.bencode.BencodeError: offset 0: integer with leading zero or -0: b'03'
    >>> decode(b"i1ejunk")
    Traceback (most recent call last):
    ...
    switch.media.bencode.BencodeError: offset 3: trailing data after the value
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BencodeError(f"input must be bytes, got {type(data).__name__}")
    if len(data) > max_length:
        raise BencodeError(f"input of {len(data)} bytes exceeds the limit of {max_length}")
    decoder = _Decoder(bytes(data), text, max_depth)
    value = decoder.value(0)
    if decoder.pos != len(decoder.data):
        raise decoder.fail("trailing data after the value")
    return value
