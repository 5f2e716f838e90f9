"""One call through the B2BUA: its two legs, its vendor attempts and its timers, as data.

The engine (:mod:`switch.b2bua.engine`) drives it; this module holds the state and the small
rules that read it: how a called number is normalised, which CDR reason a vendor's final answer
means, the call's state (:class:`CallState`), why a transaction was started (:class:`Role`),
which leg a request came in on (:class:`Side`), and the names of the timers a call can have
armed (:class:`CallTimer`).

The enums are ``StrEnum``s: they compare equal to (and log as) the plain strings they replaced,
and hash as fast as them.

>>> CallState.ROUTING == "routing", Role.B_STALE, str(Side.A)
(True, <Role.B_STALE: 'b_stale'>, 'a')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from switch.b2bua.build import Leg, Peer
from switch.b2bua.cdr import Attempt, CallRecord
from switch.config import MappingGateway, RoutingGateway
from switch.routing import Candidate
from switch.sip import ClientTransaction, Request, Response, ServerTransaction

__all__ = ["Call", "CallState", "CallTimer", "MediaState", "Owner", "Role", "Side",
           "normalize_number", "reason_for_status"]

_BUSY = frozenset({486, 600})
_NO_ANSWER = frozenset({408, 480, 487})


_NOT_DIGITS = re.compile(r"[^0-9]+")


def normalize_number(callee: str, tech_prefix: str) -> str:
    """The number that is routed and rated: ASCII digits only, the customer's tech prefix
    stripped (``str.isdigit`` would let through digits such as "²" or "٤" that no prefix or
    rate table can match).

    >>> normalize_number("900+44 7700-900123", "900"), normalize_number("anonymous", "")
    ('447700900123', '')
    >>> normalize_number("44²٤7", "")
    '447'
    """
    if tech_prefix and callee.startswith(tech_prefix):
        callee = callee[len(tech_prefix):]
    return _NOT_DIGITS.sub("", callee)


def reason_for_status(status: int) -> str:
    """The CDR ``disconnect_reason`` for a call that ended on a vendor's final ``status``.

    >>> reason_for_status(486), reason_for_status(480), reason_for_status(503)
    ('busy', 'no_answer', 'rejected')
    """
    if status in _BUSY:
        return "busy"
    if status in _NO_ANSWER:
        return "no_answer"
    return "rejected"


class CallState(StrEnum):
    """Where a call is: ``ROUTING`` (vendor attempts, no answer yet) -> ``ANSWERED`` -> ``ENDED``
    (a call may also end straight from ``ROUTING``). Never goes back."""

    ROUTING = "routing"
    ANSWERED = "answered"
    ENDED = "ended"


class Role(StrEnum):
    """Why the engine started a transaction (:attr:`Owner.role`): what its answers mean."""

    A_INVITE = "a_invite"  # the customer's INVITE (or one refused as a merged request)
    B_INVITE = "b_invite"  # the current vendor attempt's INVITE
    B_STALE = "b_stale"    # an attempt given up on: its answers are cancelled or hung up
    RELAY = "relay"        # a request passed to the other leg; Owner.answer_to waits for it
    CANCEL = "cancel"      # our CANCEL of an INVITE we sent
    BYE = "bye"            # our BYE
    REQUEST = "request"    # an in-dialog request from a peer, answered by the engine


class Side(StrEnum):
    """Which leg of a call a message belongs to: the customer's (A) or the vendor's (B)."""

    A = "a"
    B = "b"


class MediaState(StrEnum):
    """The call's media session on a relay (switch.b2bua.media)."""

    NONE = "none"          # media not relayed (no relays, or no SDP offer)
    OFFERING = "offering"  # the offer is out: the vendor attempts wait for its SDP
    ACTIVE = "active"      # the relay has the session
    DELETED = "deleted"    # deleted (or being deleted) at the end of the call


class CallTimer(StrEnum):
    """The timers a call can have armed (at most one of each), keyed in :attr:`Call.timers`.

    Each maps to one handler in the engine's dispatch table (``Engine._CALL_TIMERS``), checked
    complete when that class is defined. A str enum because it hashes as fast as the plain
    names it replaced (a plain Enum's hash is a Python-level call, on every arm and fire).
    """

    INVITE = "invite"              # no ringing or final answer from the vendor in invite_timeout
    PROGRESS = "progress"          # ringing, no final answer in call_progress_timeout
    RETRANSMIT = "retransmit"      # re-send our 2xx to the customer until its ACK (13.3.1.4)
    ACK_WAIT = "ack_wait"          # no ACK for that 2xx within 64*T1: end the call
    MAX_DURATION = "max_duration"  # the customer's max_duration is reached
    REAP = "reap"                  # forget a finished call (it stays findable for a while)
    MEDIA_CHECK = "media_check"    # ask the relay when media last flowed (media_timeout)


@dataclass(slots=True, eq=False)
class Call:
    """An ingress call: the customer leg (A), the current vendor leg (B), and the record."""

    rec: CallRecord
    gateway: MappingGateway
    a: Leg
    a_tx: ServerTransaction
    a_invite: Request
    offer: bytes
    candidates: list[Candidate]
    next_candidate: int = 0
    state: CallState = CallState.ROUTING
    b: Leg | None = None
    b_tx: ClientTransaction | None = None
    b_invite: Request | None = None
    b_vendor: RoutingGateway | None = None
    b_ack: Request | None = None
    attempt: Attempt | None = None
    a_ok: Response | None = None    # the 200 we retransmit to the customer until its ACK
    a_acked: bool = False
    retransmit_interval: float = 0.0
    finished: bool = False
    b_call_ids: list[str] = field(default_factory=list)
    timers: dict[CallTimer, int] = field(default_factory=dict)  # armed timer -> heap seq
    media: MediaState = MediaState.NONE


@dataclass(slots=True, eq=False)
class Owner:
    """Why the engine started a transaction, and where its messages go.

    ``role`` is a :class:`Role`: for a vendor attempt ``B_INVITE``, which becomes ``B_STALE``
    when abandoned; for ``RELAY`` (a request passed to the other leg) ``answer_to`` is the server
    transaction waiting for its response.
    """

    peer: Peer
    call: Call | None
    role: Role
    leg: Leg | None = None
    request: Request | None = None
    answer_to: ServerTransaction | None = None
    cancelled: bool = False
