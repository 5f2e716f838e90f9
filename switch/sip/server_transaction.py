"""RFC 3261 INVITE server (17.2.1) and non-INVITE server (17.2.2) transactions, sans-IO.

The deliberate deviations and simplifications are listed in :mod:`switch.sip.transaction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from switch.sip.headers import tag
from switch.sip.message import Request, Response, make_response
from switch.sip.transaction_common import (
    RFC2543,
    Deliver,
    Output,
    Send,
    ServerKey,
    State,
    TimedOut,
    Timer,
    TimerConfig,
    TransactionError,
    _FireHandler,
    _Transaction,
    server_key,
    without_to_tag,
)

__all__ = ["ServerTransaction"]


class ServerTransaction(_Transaction):
    """INVITE server (17.2.1) and non-INVITE server (17.2.2) transaction.

    >>> from switch.sip.message import parse_message
    >>> options = parse_message(
    ...     b"OPTIONS sip:b.example SIP/2.0\\r\\n"
    ...     b"Via: SIP/2.0/UDP a.example;branch=z9hG4bKs1\\r\\n"
    ...     b"From: <sip:a@a.example>;tag=1\\r\\nTo: <sip:b.example>\\r\\n"
    ...     b"Call-ID: s1\\r\\nCSeq: 1 OPTIONS\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> tx = ServerTransaction(options, reliable=False, now=0.0)
    >>> tx.start() == [Deliver(options)], str(tx.state)
    (True, 'trying')
    >>> ok = make_response(options, 200)
    >>> tx.respond(ok, 0.1) == [Send(ok)], str(tx.state), tx.next_deadline()   # timer J = 64*T1
    (True, 'completed', 32.1)
    """

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool,
        now: float,
        timers: TimerConfig | None = None,
    ) -> None:
        super().__init__(reliable=reliable, now=now, timers=timers or TimerConfig())
        method = request.method.upper()
        if method == "ACK":
            # An ACK either matches an INVITE server transaction or goes straight to the TU.
            raise ValueError("ACK never creates a server transaction")
        key = server_key(request)
        if key is None:
            raise ValueError("request needs a top Via with a sent-by and a CSeq")
        self.request = request
        self.method = method
        self.is_invite = method == "INVITE"
        self.key: ServerKey = key
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_provisional: Response | None = None
        self.last_final: Response | None = None
        self._now = now

    @property
    def last_response(self) -> Response | None:
        """The response a retransmitted request would get now."""
        return self.last_final or self.last_provisional

    def start(self) -> list[Output]:
        """Deliver the request to the TU; an INVITE also gets ``100 Trying`` at once."""
        self._check_start()
        out: list[Output] = [Deliver(self.request)]
        if self.is_invite:
            trying = make_response(self.request, 100, "Trying")
            self.last_provisional = trying
            out.append(Send(trying))
        return out

    def matches(self, request: Request) -> bool:
        """Whether ``request`` belongs to this transaction (17.2.3).

        An RFC 3261 request matches by branch, sent-by and method. An RFC 2543 one matches by
        Request-URI, To tag, From tag, Call-ID, CSeq and top Via, except that the ACK of a
        non-2xx final carries the To tag of that response rather than the INVITE's.

        >>> from switch.sip.message import parse_message
        >>> def req(method, to_tag=""):
        ...     return parse_message(
        ...         f"{method} sip:b@h SIP/2.0\\r\\nVia: SIP/2.0/UDP a.example\\r\\n"
        ...         f"From: <sip:a@h>;tag=1\\r\\nTo: <sip:b@h>{to_tag}\\r\\nCall-ID: k\\r\\n"
        ...         f"CSeq: 1 {method}\\r\\n\\r\\n".encode())
        >>> tx = ServerTransaction(req("INVITE"), reliable=False, now=0.0)
        >>> _ = tx.start(); _ = tx.respond(make_response(tx.request, 486, to_tag="s1"), 0.1)
        >>> tx.matches(req("INVITE")), tx.matches(req("ACK", ";tag=s1")), tx.matches(req("BYE"))
        (True, True, False)
        """
        key = server_key(request)
        if key is None:
            return False
        if key[0] != RFC2543 or request.method.upper() != "ACK":
            return key == self.key
        final = self.last_final
        return (self.is_invite and final is not None
                and without_to_tag(key) == without_to_tag(self.key)
                and key[2] == (tag(final.headers.get("to") or "") or ""))

    def receive_request(self, request: Request, now: float) -> list[Output]:
        """Feed a retransmitted request (or the ACK of an INVITE) matched to this transaction."""
        if not self.matches(request):
            raise ValueError(f"request {server_key(request)} does not match transaction "
                             f"{self.key}")
        method = request.method.upper()
        if method == "ACK":
            if not self.is_invite or self.state is not State.COMPLETED:
                return []  # a duplicate ACK in Confirmed is absorbed (17.2.1)
            self.state = State.CONFIRMED
            self._cancel("G", "H")
            self._arm("I", now, 0.0 if self.reliable else self.timers.t4)
            return []
        if method != self.method:
            return []
        if self.state is State.PROCEEDING and self.last_provisional is not None:
            return [Send(self.last_provisional)]
        if self.state is State.COMPLETED and self.last_final is not None:
            return [Send(self.last_final)]
        return []  # Trying (nothing to re-send yet), Confirmed, Terminated

    def respond(self, response: Response, now: float) -> list[Output]:
        """Send a response from the TU through this transaction."""
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise TransactionError(f"cannot respond in state {self.state}")
        status = response.status
        if status < 200:
            self.state = State.PROCEEDING
            self.last_provisional = response
            return [Send(response)]
        self.last_final = response
        if self.is_invite:
            if status < 300:
                # The core retransmits the 2xx until the ACK arrives (13.3.1.4), not us.
                return [Send(response), *self._terminate()]
            self.state = State.COMPLETED
            t1 = self.timers.t1
            if not self.reliable:
                self._intervals["G"] = t1
                self._arm("G", now, t1)
            self._arm("H", now, 64 * t1)
            return [Send(response)]
        self.state = State.COMPLETED
        self._arm("J", now, 0.0 if self.reliable else 64 * self.timers.t1)
        return [Send(response)]

    def _fire_g(self, now: float) -> list[Output]:
        if self.state is not State.COMPLETED or self.last_final is None:
            return []
        self._intervals["G"] = min(2 * self._intervals["G"], self.timers.t2)
        self._arm("G", now, self._intervals["G"])
        return [Send(self.last_final)]

    def _fire_h(self, now: float) -> list[Output]:
        # The ACK never came: the TU learns the final response was probably not received.
        return [TimedOut("H"), *self._terminate()]

    def _fire_i(self, now: float) -> list[Output]:
        return self._terminate()

    def _fire_j(self, now: float) -> list[Output]:
        return self._terminate()

    #: Each timer this machine arms and its handler (checked when the class is defined).
    _FIRE: ClassVar[Mapping[Timer, _FireHandler]] = {
        Timer.G: _fire_g,
        Timer.H: _fire_h,
        Timer.I: _fire_i,
        Timer.J: _fire_j,
    }
