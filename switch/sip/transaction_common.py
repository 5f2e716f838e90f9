"""Shared pieces of the RFC 3261 section 17 transaction layer, sans-IO.

Timer configuration, the outputs a transaction returns, its states, the matching keys of 17.1.3
and 17.2.3, and the timer bookkeeping both machines share. The machines themselves live in
:mod:`switch.sip.client_transaction` and :mod:`switch.sip.server_transaction`, the routing table
in :mod:`switch.sip.transaction_table`; :mod:`switch.sip.transaction` re-exports all of it and
lists the deliberate deviations and simplifications.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from switch.sip.headers import tag
from switch.sip.message import Request, Response, cseq, top_via, via_branch

__all__ = [
    "MAGIC_COOKIE",
    "RFC2543",
    "Deliver",
    "Output",
    "Send",
    "ServerKey",
    "State",
    "Terminated",
    "TimedOut",
    "Timer",
    "TimerConfig",
    "TransactionError",
    "TransportError",
    "client_key",
    "sent_by",
    "server_key",
    "without_to_tag",
]

#: Every RFC 3261 branch starts with this; without it we cannot match by branch (17.2.3).
MAGIC_COOKIE = "z9hG4bK"
#: First item of a server key built by the RFC 2543 rules of 17.2.3 (no RFC 3261 branch starts
#: like this, and the two kinds of key differ in length anyway).
RFC2543 = "rfc2543"

#: A server transaction's matching key: ``(branch, sent-by, method)`` for an RFC 3261 request;
#: ``(RFC2543, Request-URI, To tag, From tag, Call-ID, CSeq number, top Via, method)`` for an
#: RFC 2543 one. The method of an ACK is INVITE in both.
ServerKey = tuple[str, ...]


@dataclass(frozen=True)
class TimerConfig:
    """The RFC 3261 base timers in seconds (table 4): T1 RTT estimate, T2 cap, T4 network lifetime.

    >>> TimerConfig().t1, TimerConfig().t2, TimerConfig().t4
    (0.5, 4.0, 5.0)
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        # A zero T1 would make timer A/E spin; catch it at config time, not at 3 a.m.
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 > 0):
            raise ValueError(f"need t1 > 0, t2 >= t1, t4 > 0, got {self}")


@dataclass(frozen=True)
class Send:
    """Hand this message to the transport (the shell serializes it and sends it)."""

    message: Request | Response


@dataclass(frozen=True)
class Deliver:
    """Pass this message up to the transaction user."""

    message: Request | Response


@dataclass(frozen=True)
class TimedOut:
    """A transaction timeout fired: ``which`` is the RFC timer letter ("B", "F" or "H")."""

    which: str


@dataclass(frozen=True)
class TransportError:
    """The transport failed to send for this transaction (17.1.4, 17.2.4)."""

    reason: str = ""


@dataclass(frozen=True)
class Terminated:
    """The transaction is over; the shell drops it from its table."""


Output = Send | Deliver | TimedOut | TransportError | Terminated


class State(StrEnum):
    """Transaction states; members compare equal to their lowercase RFC names."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Timer(StrEnum):
    """The transaction timers of RFC 3261 (table 4; timer C belongs to proxies) by their letter.

    A str enum, so the machines can keep arming them by letter (``self._arm("A", ...)``) and a
    member hashes as fast as the letter.
    """

    A = "A"  # INVITE client: retransmit (UDP)
    B = "B"  # INVITE client: give up
    D = "D"  # INVITE client: absorb response retransmissions
    E = "E"  # non-INVITE client: retransmit (UDP)
    F = "F"  # non-INVITE client: give up
    G = "G"  # INVITE server: retransmit the final response (UDP)
    H = "H"  # INVITE server: give up waiting for the ACK
    I = "I"  # INVITE server: absorb ACK retransmissions  # noqa: E741 (the RFC's letter)
    J = "J"  # non-INVITE server: absorb request retransmissions
    K = "K"  # non-INVITE client: absorb response retransmissions


class TransactionError(RuntimeError):
    """The TU asked a transaction to do something its state does not allow."""


# "SIP/2.0/UDP host:port;params" with LWS allowed around the slashes and the colon (25.1).
_VIA_RE = re.compile(
    r"""^\s*(?P<proto>SIP\s*/\s*[^/\s]+\s*/\s*[^\s;]+)\s+   # sent-protocol
        (?P<host>\[[^\]]+\]|[^\s:;,]+)                      # host or [IPv6]
        (?:\s*:\s*(?P<port>\d+))?                           # optional port
    """,
    re.VERBOSE,
)


def sent_by(via: str) -> str | None:
    """The sent-by (``host[:port]``) of one Via value, host lowercased, LWS removed.

    >>> sent_by("SIP/2.0/UDP PBX.example.com:5060;branch=z9hG4bK1")
    'pbx.example.com:5060'
    >>> sent_by("SIP / 2.0 / TCP [::1] ; branch=z9hG4bK1")
    '[::1]'
    >>> sent_by("garbage") is None
    True
    """
    m = _VIA_RE.match(via)
    if m is None:
        return None
    host = m.group("host").lower()
    return f"{host}:{m.group('port')}" if m.group("port") else host


def _rfc3261_branch(msg: Request | Response) -> tuple[str, str] | None:
    """(top Via, branch) if the top Via carries an RFC 3261 branch, else None."""
    via = top_via(msg)
    if via is None:
        return None
    branch = via_branch(via)
    if not branch or not branch.startswith(MAGIC_COOKIE):
        return None
    return via, branch


def _via_identity(via: str) -> str | None:
    """One Via value in a canonical spelling, for the RFC 2543 "top Via matches" test.

    LWS is dropped, the protocol and host are case-folded and the parameters sorted by name,
    so two spellings of the same Via (20.42, 7.3.1) compare equal.

    >>> _via_identity("SIP / 2.0 / udp PBX.example:5060 ; Received=10.0.0.1;ttl=1")
    'SIP/2.0/UDP pbx.example:5060;received=10.0.0.1;ttl=1'
    """
    m = _VIA_RE.match(via)
    if m is None:
        return None
    proto = "".join(m.group("proto").split()).upper()
    host = m.group("host").lower()
    where = f"{host}:{m.group('port')}" if m.group("port") else host
    params = []
    for param in via[m.end():].split(";"):
        name, eq, value = param.partition("=")
        name = name.strip(" \t").lower()
        value = value.strip(" \t")
        if name:
            params.append(f"{name}={value}" if eq else name)
    return ";".join([f"{proto} {where}", *sorted(params)])


def _rfc2543_key(request: Request) -> ServerKey | None:
    """17.2.3 for a request without an RFC 3261 branch: Request-URI, To tag, From tag,
    Call-ID, CSeq number, top Via and method identify the transaction."""
    via = top_via(request)
    identity = _via_identity(via) if via is not None else None
    if identity is None:
        return None
    try:
        number, _ = cseq(request)
    except ValueError:  # SipParseError
        return None
    headers = request.headers
    method = request.method.upper()
    return (RFC2543, request.uri, tag(headers.get("to") or "") or "",
            tag(headers.get("from") or "") or "", headers.get("call-id") or "", str(number),
            identity, "INVITE" if method == "ACK" else method)


def without_to_tag(key: ServerKey) -> ServerKey:
    """An RFC 2543 key with its To tag left out (an ACK carries the tag of the response, not the
    one its INVITE had); an RFC 3261 key unchanged.

    >>> without_to_tag(("rfc2543", "sip:b@h", "t1", "f1", "c1", "1", "SIP/2.0/UDP h", "INVITE"))
    ('rfc2543', 'sip:b@h', '', 'f1', 'c1', '1', 'SIP/2.0/UDP h', 'INVITE')
    """
    if key[0] != RFC2543:
        return key
    return (*key[:2], "", *key[3:])


def server_key(request: Request) -> ServerKey | None:
    """The 17.2.3 matching key of a request; the method of an ACK is INVITE.

    ``(branch, sent-by, method)`` when the top Via carries an RFC 3261 branch (the magic
    cookie); otherwise the RFC 2543 key (see :data:`ServerKey`). None when the top Via has no
    sent-by (or the request no usable CSeq): nothing can be matched to such a request.

    >>> from switch.sip.message import parse_message
    >>> ack = parse_message(
    ...     b"ACK sip:bob@b.example SIP/2.0\\r\\n"
    ...     b"Via: SIP/2.0/UDP a.example:5060;branch=z9hG4bKx1\\r\\n"
    ...     b"From: <sip:a@a.example>;tag=1\\r\\nTo: <sip:bob@b.example>;tag=2\\r\\n"
    ...     b"Call-ID: k1\\r\\nCSeq: 1 ACK\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> server_key(ack)
    ('z9hG4bKx1', 'a.example:5060', 'INVITE')
    >>> server_key(parse_message(
    ...     b"BYE sip:bob@b.example SIP/2.0\\r\\nVia: SIP/2.0/UDP a.example\\r\\n"
    ...     b"From: <sip:a@a.example>;tag=1\\r\\nTo: <sip:bob@b.example>;tag=2\\r\\n"
    ...     b"Call-ID: k1\\r\\nCSeq: 2 BYE\\r\\n\\r\\n"))
    ('rfc2543', 'sip:bob@b.example', '2', '1', 'k1', '2', 'SIP/2.0/UDP a.example', 'BYE')
    """
    found = _rfc3261_branch(request)
    if found is None:
        return _rfc2543_key(request)
    via, branch = found
    host = sent_by(via)
    if host is None:
        return None
    method = request.method.upper()
    # The ACK for a non-2xx final response is part of the INVITE transaction (17.1.1.3).
    return branch, host, "INVITE" if method == "ACK" else method


def client_key(response: Response) -> tuple[str, str] | None:
    """The 17.1.3 matching key ``(branch, CSeq method)`` of a response, or None.

    >>> from switch.sip.message import parse_message
    >>> resp = parse_message(
    ...     b"SIP/2.0 487 Request Terminated\\r\\n"
    ...     b"Via: SIP/2.0/UDP a.example;branch=z9hG4bKx1\\r\\n"
    ...     b"From: <sip:a@a.example>;tag=1\\r\\nTo: <sip:bob@b.example>;tag=2\\r\\n"
    ...     b"Call-ID: k1\\r\\nCSeq: 7 CANCEL\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> client_key(resp)
    ('z9hG4bKx1', 'CANCEL')
    """
    found = _rfc3261_branch(response)
    if found is None:
        return None
    try:
        _, method = cseq(response)
    except ValueError:  # SipParseError: a response without a usable CSeq matches nothing
        return None
    return found[1], method.upper()


#: What a timer does when it fires: ``handler(transaction, now)``, the transaction typed Any
#: because each machine's handlers take that machine.
_FireHandler = Callable[[Any, float], list[Output]]


class _Transaction:
    """Timer bookkeeping shared by all four machines.

    Timers live in a dict :class:`Timer` -> absolute deadline; firing one removes it and calls
    that timer's handler in the machine's ``_FIRE`` table, which may re-arm it.

    Each machine writes its ``_FIRE`` table out (``{Timer.A: _fire_a, ...}``), and
    :meth:`__init_subclass__` checks it when the class is defined: a key that is no RFC timer
    fails at import, and so does a ``_fire_...`` handler the table leaves out (one that would
    fire for no timer, such as an override the table does not point at). Arming a timer the
    table has no handler for fails when it is armed, not at its deadline.

    >>> class Misspelt(_Transaction):
    ...     def _fire_l(self, now: float) -> list[Output]:
    ...         return []
    ...     _FIRE = {"L": _fire_l}
    Traceback (most recent call last):
    TypeError: Misspelt._FIRE: key 'L' is no Timer (RFC 3261 has no timer L)
    >>> class Forgetful(_Transaction):
    ...     def _fire_a(self, now: float) -> list[Output]:
    ...         return []
    ...     def _fire_b(self, now: float) -> list[Output]:
    ...         return []
    ...     _FIRE = {Timer.A: _fire_a}
    Traceback (most recent call last):
    TypeError: Forgetful._fire_b is in no entry of Forgetful._FIRE
    """

    state: State
    _FIRE: ClassVar[Mapping[Timer, _FireHandler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for timer, handler in cls._FIRE.items():
            if not isinstance(timer, Timer):
                why = (f"write Timer.{timer}" if timer in Timer.__members__
                       else f"RFC 3261 has no timer {timer}")
                raise TypeError(f"{cls.__name__}._FIRE: key {timer!r} is no Timer ({why})")
            if not callable(handler):
                raise TypeError(f"{cls.__name__}._FIRE[{timer}] is not callable")
        handlers = set(cls._FIRE.values())
        for attr in dir(cls):
            if attr.startswith("_fire_") and getattr(cls, attr) not in handlers:
                raise TypeError(f"{cls.__name__}.{attr} is in no entry of {cls.__name__}._FIRE")

    def __init__(self, *, reliable: bool, now: float, timers: TimerConfig) -> None:
        self.reliable = reliable
        self.timers = timers
        self.created = now
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[str, float] = {}
        self._started = False

    @property
    def terminated(self) -> bool:
        """True once the transaction has reached the Terminated state."""
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest armed timer (absolute seconds), or None when nothing is armed."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> list[Output]:
        """Fire every timer due at ``now`` (earliest first); early or spurious calls return []."""
        out: list[Output] = []
        while self.state is not State.TERMINATED:
            due = [(d, name) for name, d in self._deadlines.items() if d <= now]
            if not due:
                break
            _, name = min(due)
            del self._deadlines[name]
            out.extend(self._FIRE[name](self, now))
        return out

    def transport_failed(self, reason: str = "") -> list[Output]:
        """The shell could not send for this transaction: inform the TU and end (17.1.4, 17.2.4)."""
        if self.state is State.TERMINATED:
            return []
        return [TransportError(reason), *self._terminate()]

    def _arm(self, name: Timer | str, now: float, after: float) -> None:
        timer = Timer(name)  # ValueError for a letter that is no timer
        if timer not in self._FIRE:
            raise TransactionError(f"{type(self).__name__} has no handler for timer {timer}")
        self._deadlines[timer] = now + after

    def _cancel(self, *names: Timer | str) -> None:
        for name in names:
            # Timer is a StrEnum, so a plain letter finds the same key.
            self._deadlines.pop(Timer(name), None)

    def _terminate(self) -> list[Output]:
        self.state = State.TERMINATED
        self._deadlines.clear()
        return [Terminated()]

    def _check_start(self) -> None:
        if self._started:
            raise TransactionError("start() called twice")
        self._started = True
