r"""SDP session descriptions (RFC 4566): parse, serialize and rewrite for a media relay, sans-IO.

Bytes in, objects out; standard library only. The switch is a B2BUA that relays RTP, so beyond
parsing it needs exactly two things from SDP: point every stream at its own relay ports before it
forwards an offer or answer (:func:`rewrite_for_relay`), and name the negotiated codec for the CDR
(:func:`first_common_codec`).

>>> offer = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
...                   b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
>>> codecs(offer.media[0])
[('8', 'PCMA'), ('0', 'PCMU'), ('101', 'telephone-event')]
>>> relayed = rewrite_for_relay(offer, "192.0.2.7", [30000])
>>> serialize_sdp(relayed).decode().split("\r\n")
['v=0', 'o=- 1 2 IN IP4 192.0.2.7', 's=-', 'c=IN IP4 192.0.2.7', 't=0 0',
 'm=audio 30000 RTP/AVP 8 0 101', 'a=rtpmap:101 telephone-event/8000', '']
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Media",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Timing",
    "codecs",
    "first_common_codec",
    "parse_sdp",
    "rewrite_for_relay",
    "serialize_sdp",
]

# RFC 3551 section 6: payload types with a fixed meaning, usable without an a=rtpmap line.
# 101 (telephone-event) is deliberately absent: it is a dynamic type and means DTMF only when an
# rtpmap says so.
STATIC_PAYLOAD_TYPES: dict[str, str] = {
    "0": "PCMU",
    "3": "GSM",
    "4": "G723",
    "5": "DVI4",
    "6": "DVI4",
    "7": "LPC",
    "8": "PCMA",
    "9": "G722",
    "10": "L16",
    "11": "L16",
    "12": "QCELP",
    "13": "CN",
    "14": "MPA",
    "15": "G728",
    "16": "DVI4",
    "17": "DVI4",
    "18": "G729",
    "25": "CelB",
    "26": "JPEG",
    "28": "nv",
    "31": "H261",
    "32": "MPV",
    "33": "MP2T",
    "34": "H263",
}

# Not voice codecs: a call that negotiated PCMA plus DTMF events or comfort noise "used PCMA".
_NOT_A_CODEC = frozenset({"TELEPHONE-EVENT", "CN", "RED", "ULPFEC"})

# Attributes that carry the far end's own transport addresses. Forwarded through a relay they
# would steer the other side's RTCP or ICE checks around the relay, so rewrite_for_relay drops
# them (RTCP then defaults to the relay's RTP port + 1, RFC 3550 section 11).
_ADDRESS_ATTRIBUTES = frozenset(
    {"rtcp", "candidate", "remote-candidates", "ice-ufrag", "ice-pwd", "ice-lite", "ice-options"}
)

# Where each kind of verbatim line goes on output (RFC 4566 section 5 fixes the order).
_SESSION_BEFORE_C = "iuep"
_SESSION_AFTER_C = "b"
_SESSION_AFTER_T = "zk"
_MEDIA_BEFORE_C = "i"
_MEDIA_AFTER_C = "bk"


class SdpError(ValueError):
    """A body that is not a valid SDP description; ``line`` is 1-based (None if not tied to one).

    >>> str(SdpError("missing o=", 2))
    'line 2: missing o='
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


@dataclass
class Origin:
    """The o= line. ``session_id`` stays a string (only ever compared); the version is bumped.

    >>> Origin("-", "42", 1, "IN", "IP4", "10.0.0.1").session_version
    1
    """

    username: str
    session_id: str
    session_version: int
    nettype: str
    addrtype: str
    address: str


@dataclass
class Timing:
    """A t= line and the r= lines that follow it (kept verbatim: they may use 'd'/'h' units).

    >>> Timing()
    Timing(start=0, stop=0, repeats=[])
    """

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass
class Media:
    """One m= section.

    ``formats`` are payload types for RTP protocols (other tokens, e.g. ``t38``, otherwise);
    ``attributes`` are (name, value) in order, value None for flags such as ``sendrecv``;
    ``connection`` is the media-level c= address (None: the session-level one applies);
    ``lines`` holds the other media-level lines (i=, b=, k=) as (type, value), verbatim.

    >>> Media("audio", 0, "RTP/AVP", ["0"]).port
    0
    """

    kind: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    connection: str | None = None
    connection_addrtype: str = "IP4"
    lines: list[tuple[str, str]] = field(default_factory=list)
    port_count: int | None = None  # the "/2" of "m=video 49170/2 RTP/AVP 31", rare

    def attribute(self, name: str) -> str | None:
        """The value of the first a=``name`` (None if absent or a flag).

        >>> Media("audio", 1, "RTP/AVP", ["8"], [("ptime", "20")]).attribute("ptime")
        '20'
        """
        return _first_attribute(self.attributes, name)


@dataclass
class SessionDescription:
    """A whole SDP body.

    ``connection`` is the session-level c= address with its ``connection_addrtype`` (IP4/IP6);
    ``lines`` holds the other session-level lines (i=, u=, e=, p=, b=, z=, k=) as (type, value),
    verbatim and in their original order within each type.

    >>> sd = SessionDescription(0, Origin("-", "1", 1, "IN", "IP4", "10.0.0.1"), "-")
    >>> sd.times, sd.media
    ([Timing(start=0, stop=0, repeats=[])], [])
    """

    version: int
    origin: Origin
    session_name: str
    connection: str | None = None
    connection_addrtype: str = "IP4"
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level a=``name`` (None if absent or a flag).

        >>> sd = SessionDescription(0, Origin("-", "1", 1, "IN", "IP4", "h"), "-",
        ...                         attributes=[("tool", "x")])
        >>> sd.attribute("tool")
        'x'
        """
        return _first_attribute(self.attributes, name)


def _first_attribute(attributes: list[tuple[str, str | None]], name: str) -> str | None:
    for attr_name, value in attributes:
        if attr_name == name:
            return value
    return None


# --- parsing ---------------------------------------------------------------------------------


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts non-ASCII digits such as "²"; SDP numbers are ASCII only.
    return text.isascii() and text.isdigit()


def _parse_origin(value: str, lineno: int) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"o= needs 6 fields, got {len(parts)}: {value!r}", lineno)
    username, session_id, version, nettype, addrtype, address = parts
    if not _is_digits(session_id):
        raise SdpError(f"o= session id is not numeric: {session_id!r}", lineno)
    if not _is_digits(version):
        raise SdpError(f"o= session version is not numeric: {version!r}", lineno)
    return Origin(username, session_id, int(version), nettype, addrtype, address)


def _parse_connection(value: str, lineno: int) -> tuple[str, str]:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError(f"c= needs 3 fields (IN IP4|IP6 address), got {value!r}", lineno)
    nettype, addrtype, address = parts
    # A switch only ever speaks IP; anything else cannot be relayed, so reject it up front.
    if nettype != "IN":
        raise SdpError(f"c= network type must be IN, got {nettype!r}", lineno)
    if addrtype not in ("IP4", "IP6"):
        raise SdpError(f"c= address type must be IP4 or IP6, got {addrtype!r}", lineno)
    return addrtype, address


def _parse_timing(value: str, lineno: int) -> Timing:
    parts = value.split()
    if len(parts) != 2 or not all(_is_digits(p) for p in parts):
        raise SdpError(f"t= needs two decimal times, got {value!r}", lineno)
    return Timing(int(parts[0]), int(parts[1]))


def _parse_media(value: str, lineno: int) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"m= needs media, port, proto and formats, got {value!r}", lineno)
    kind, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    if not _is_digits(port_part) or int(port_part) > 65535:
        raise SdpError(f"m= port is not a number 0-65535: {port_text!r}", lineno)
    port_count = None
    if slash:
        if not _is_digits(count_part) or int(count_part) == 0:
            raise SdpError(f"m= port count is not a positive number: {port_text!r}", lineno)
        port_count = int(count_part)
    return Media(kind, int(port_part), proto, formats, port_count=port_count)


def _parse_attribute(value: str, lineno: int) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"a= has no attribute name: {value!r}", lineno)
    return name, rest if colon else None


def _split_lines(body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Find the line so the error points somewhere useful.
        raise SdpError("body is not UTF-8", body[: exc.start].count(b"\n") + 1) from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    # The last line ends with CRLF, and some stacks add blank lines after it; neither is content.
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_sdp(body: bytes) -> SessionDescription:
    r"""Parse an SDP body (LF or CRLF line ends); raise SdpError naming the line on bad input.

    Strict where the switch relies on the content (v=0 first, then o= and s=, at least one t=,
    well-formed o=, c=, t= and m=); lines it does not interpret are kept verbatim.

    >>> sd = parse_sdp(b"v=0\no=alice 2890844526 2890844526 IN IP4 host.example\ns=-\n"
    ...                b"c=IN IP6 2001:db8::1\nt=0 0\nm=audio 49170 RTP/AVP 0\na=sendrecv\n")
    >>> sd.connection, sd.connection_addrtype, sd.media[0].port, sd.media[0].attributes
    ('2001:db8::1', 'IP6', 49170, [('sendrecv', None)])
    >>> parse_sdp(b"v=1\n")
    Traceback (most recent call last):
    ...
    switch.sip.sdp.SdpError: line 1: unsupported SDP version '1', expected 0
    """
    lines = _split_lines(body)
    if not lines:
        raise SdpError("empty SDP body", 1)

    origin: Origin | None = None
    session_name: str | None = None
    version = 0
    connection: str | None = None
    connection_addrtype = "IP4"
    times: list[Timing] = []
    attributes: list[tuple[str, str | None]] = []
    media: list[Media] = []
    other: list[tuple[str, str]] = []
    current: Media | None = None  # the m= section being filled, None while at session level

    for index, line in enumerate(lines):
        lineno = index + 1
        kind, eq, value = line.partition("=")
        if not eq:
            raise SdpError(f"expected <type>=<value>, no '=' in {line!r}", lineno)
        if len(kind) != 1 or not ("a" <= kind <= "z"):
            raise SdpError(f"type must be one lowercase letter, got {kind!r}", lineno)

        # RFC 4566 fixes the first three lines; checking their positions also catches bodies
        # that are not SDP at all before anything else is interpreted.
        if lineno == 1:
            if kind != "v":
                raise SdpError(f"first line must be v=0, got {line!r}", lineno)
            if value != "0":
                raise SdpError(f"unsupported SDP version {value!r}, expected 0", lineno)
            continue
        if lineno == 2:
            if kind != "o":
                raise SdpError(f"second line must be o=, got {line!r}", lineno)
            origin = _parse_origin(value, lineno)
            continue
        if lineno == 3:
            if kind != "s":
                raise SdpError(f"third line must be s=, got {line!r}", lineno)
            session_name = value
            continue
        if kind in "vos":
            raise SdpError(f"duplicate {kind}= line", lineno)

        if kind == "m":
            if not times:
                raise SdpError("m= before any t= line", lineno)
            current = _parse_media(value, lineno)
            media.append(current)
        elif current is not None:
            if kind == "a":
                current.attributes.append(_parse_attribute(value, lineno))
            elif kind == "c":
                if current.connection is not None:
                    raise SdpError("duplicate c= line in m= section", lineno)
                current.connection_addrtype, current.connection = _parse_connection(value, lineno)
            elif kind in "trzuep":
                raise SdpError(f"{kind}= is a session-level line, found after m=", lineno)
            else:
                current.lines.append((kind, value))
        elif kind == "a":
            attributes.append(_parse_attribute(value, lineno))
        elif kind == "c":
            if connection is not None:
                raise SdpError("duplicate session-level c= line", lineno)
            connection_addrtype, connection = _parse_connection(value, lineno)
        elif kind == "t":
            times.append(_parse_timing(value, lineno))
        elif kind == "r":
            if not times:
                raise SdpError("r= before any t= line", lineno)
            times[-1].repeats.append(value)
        else:
            other.append((kind, value))

    if origin is None:
        raise SdpError("missing o= line", len(lines) + 1)
    if session_name is None:
        raise SdpError("missing s= line", len(lines) + 1)
    if not times:
        raise SdpError("missing t= line", len(lines) + 1)
    return SessionDescription(
        version=version,
        origin=origin,
        session_name=session_name,
        connection=connection,
        connection_addrtype=connection_addrtype,
        times=times,
        attributes=attributes,
        media=media,
        lines=other,
    )


# --- serializing -----------------------------------------------------------------------------


def _verbatim(out: list[str], lines: list[tuple[str, str]], kinds: str) -> None:
    for kind in kinds:
        out.extend(f"{k}={v}" for k, v in lines if k == kind)


def _unknown(out: list[str], lines: list[tuple[str, str]], known: str) -> None:
    # Letters RFC 4566 does not define still round-trip, just before the a= lines.
    out.extend(f"{k}={v}" for k, v in lines if k not in known)


def _attributes(out: list[str], attributes: list[tuple[str, str | None]]) -> None:
    out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes)


def serialize_sdp(sd: SessionDescription) -> bytes:
    r"""Serialize with CRLF line ends in the RFC 4566 order (v o s i u e p c b t r z k a m...).

    >>> sd = SessionDescription(0, Origin("-", "1", 1, "IN", "IP4", "10.0.0.1"), "-",
    ...                         connection="10.0.0.1",
    ...                         media=[Media("audio", 4000, "RTP/AVP", ["0"], [("ptime", "20")])])
    >>> serialize_sdp(sd).split(b"\r\n")
    [b'v=0', b'o=- 1 1 IN IP4 10.0.0.1', b's=-', b'c=IN IP4 10.0.0.1', b't=0 0',
     b'm=audio 4000 RTP/AVP 0', b'a=ptime:20', b'']
    """
    o = sd.origin
    out = [
        f"v={sd.version}",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sd.session_name}",
    ]
    _verbatim(out, sd.lines, _SESSION_BEFORE_C)
    if sd.connection is not None:
        out.append(f"c=IN {sd.connection_addrtype} {sd.connection}")
    _verbatim(out, sd.lines, _SESSION_AFTER_C)
    for timing in sd.times:
        out.append(f"t={timing.start} {timing.stop}")
        out.extend(f"r={r}" for r in timing.repeats)
    _verbatim(out, sd.lines, _SESSION_AFTER_T)
    _unknown(out, sd.lines, _SESSION_BEFORE_C + _SESSION_AFTER_C + _SESSION_AFTER_T)
    _attributes(out, sd.attributes)
    for m in sd.media:
        port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
        out.append(f"m={m.kind} {port} {m.proto} {' '.join(m.formats)}")
        _verbatim(out, m.lines, _MEDIA_BEFORE_C)
        if m.connection is not None:
            out.append(f"c=IN {m.connection_addrtype} {m.connection}")
        _verbatim(out, m.lines, _MEDIA_AFTER_C)
        _unknown(out, m.lines, _MEDIA_BEFORE_C + _MEDIA_AFTER_C)
        _attributes(out, m.attributes)
    out.append("")  # every line, the last included, ends with CRLF
    return "\r\n".join(out).encode("utf-8")


# --- codecs and relaying ---------------------------------------------------------------------


def codecs(media: Media) -> list[tuple[str, str]]:
    """(payload type, encoding name) for each format, in the m= line's (preference) order.

    Names come from a=rtpmap, else from the RFC 3551 static table; a dynamic type without an
    rtpmap means nothing and is left out. Non-RTP streams (e.g. ``udptl t38``) have no codecs.

    >>> m = Media("audio", 4000, "RTP/AVP", ["18", "0", "101", "96"],
    ...           [("rtpmap", "101 telephone-event/8000"), ("fmtp", "18 annexb=no")])
    >>> codecs(m)
    [('18', 'G729'), ('0', 'PCMU'), ('101', 'telephone-event')]
    """
    if "RTP" not in media.proto.upper():
        return []
    mapped: dict[str, str] = {}
    for name, value in media.attributes:
        if name == "rtpmap" and value:
            pt, _, encoding = value.partition(" ")
            # "PCMA/8000" or "opus/48000/2": the name is what precedes the clock rate.
            encoding_name = encoding.strip().partition("/")[0]
            if encoding_name:
                mapped.setdefault(pt, encoding_name)
    result = []
    for pt in media.formats:
        codec = mapped.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
        if codec:
            result.append((pt, codec))
    return result


def rewrite_for_relay(
    sd: SessionDescription, address: str, ports: list[int], *, bump_version: bool = True
) -> SessionDescription:
    """A copy of ``sd`` pointing every stream at a media relay; ``sd`` itself is untouched.

    Session and media c= and the o= address become ``address`` (IP4 or IP6 from its form),
    the i-th m= port becomes ``ports[i]`` except that a rejected stream (port 0) stays 0, the
    session version goes up by one (RFC 3264 section 8: a changed SDP needs a new version), and
    a=rtcp / ICE attributes, which name the far end's addresses, are dropped.

    >>> sd = parse_sdp(b"v=0\\no=- 7 3 IN IP4 10.0.0.1\\ns=-\\nt=0 0\\n"
    ...                b"m=audio 4000 RTP/AVP 0\\nc=IN IP4 10.0.0.1\\nm=video 0 RTP/AVP 31\\n")
    >>> out = rewrite_for_relay(sd, "2001:db8::5", [20000, 20002])
    >>> out.connection, out.connection_addrtype, [m.port for m in out.media], out.origin.address
    ('2001:db8::5', 'IP6', [20000, 0], '2001:db8::5')
    >>> out.media[0].connection, out.origin.session_version, sd.origin.session_version
    ('2001:db8::5', 4, 3)
    """
    try:
        addrtype = "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        raise ValueError(f"relay address is not an IP address: {address!r}") from None
    if len(ports) != len(sd.media):
        raise ValueError(f"{len(sd.media)} m= lines but {len(ports)} relay ports")
    for port in ports:
        if not 0 <= port <= 65535:
            raise ValueError(f"relay port out of range: {port}")

    out = copy.deepcopy(sd)
    out.origin.address = address
    out.origin.addrtype = addrtype
    if bump_version:
        out.origin.session_version += 1
    # Always set the session-level c=: it covers every m= section without its own, so no stream
    # can keep pointing at the far end.
    out.connection = address
    out.connection_addrtype = addrtype
    out.attributes = [a for a in out.attributes if a[0] not in _ADDRESS_ATTRIBUTES]
    for m, port in zip(out.media, ports, strict=True):
        if m.port != 0:
            m.port = port
        if m.connection is not None:
            m.connection = address
            m.connection_addrtype = addrtype
        m.attributes = [a for a in m.attributes if a[0] not in _ADDRESS_ATTRIBUTES]
    return out


def first_common_codec(offer: SessionDescription, answer: SessionDescription) -> str | None:
    """The voice codec the call uses: the answer's first codec that the offer also lists.

    Streams pair up by position (RFC 3264 section 6); only audio streams accepted on both
    sides count, and DTMF events / comfort noise are not codecs. Names compare case-blind and
    are returned as the answer spells them. None if nothing matches.

    >>> offer = parse_sdp(b"v=0\\no=- 1 1 IN IP4 h\\ns=-\\nc=IN IP4 h\\nt=0 0\\n"
    ...                   b"m=audio 4000 RTP/AVP 0 8 101\\na=rtpmap:101 telephone-event/8000\\n")
    >>> answer = parse_sdp(b"v=0\\no=- 2 1 IN IP4 h\\ns=-\\nc=IN IP4 h\\nt=0 0\\n"
    ...                    b"m=audio 5000 RTP/AVP 101 8\\na=rtpmap:101 telephone-event/8000\\n")
    >>> first_common_codec(offer, answer)
    'PCMA'
    """
    for offered, answered in zip(offer.media, answer.media, strict=False):
        if offered.kind != "audio" or answered.kind != "audio":
            continue
        if offered.port == 0 or answered.port == 0:
            continue
        offered_names = {name.upper() for _, name in codecs(offered)}
        for _, name in codecs(answered):
            upper = name.upper()
            if upper in offered_names and upper not in _NOT_A_CODEC:
                return name
    return None
