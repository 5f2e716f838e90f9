"""RFC 3261 INVITE client (17.1.1) and non-INVITE client (17.1.2) transactions, sans-IO.

The deliberate deviations and simplifications are listed in :mod:`switch.sip.transaction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from switch.sip.message import Headers, Request, Response, cseq, top_via
from switch.sip.transaction_common import (
    Deliver,
    Output,
    Send,
    State,
    TimedOut,
    Timer,
    TimerConfig,
    _FireHandler,
    _rfc3261_branch,
    _Transaction,
    client_key,
)

__all__ = ["ClientTransaction"]


class ClientTransaction(_Transaction):
    """INVITE client (17.1.1) and non-INVITE client (17.1.2) transaction.

    >>> from switch.sip.message import parse_message
    >>> invite = parse_message(
    ...     b"INVITE sip:bob@b.example SIP/2.0\\r\\n"
    ...     b"Via: SIP/2.0/UDP a.example;branch=z9hG4bKc1\\r\\n"
    ...     b"From: <sip:alice@a.example>;tag=1\\r\\nTo: <sip:bob@b.example>\\r\\n"
    ...     b"Call-ID: c1\\r\\nCSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    >>> tx = ClientTransaction(invite, reliable=False, now=0.0)
    >>> tx.start() == [Send(invite)], str(tx.state), tx.next_deadline()
    (True, 'calling', 0.5)
    >>> tx.handle_timer(0.5) == [Send(invite)], tx.next_deadline()   # timer A doubled
    (True, 1.5)
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
            # ACK is never sent in a client transaction of its own (17.1).
            raise ValueError("ACK has no client transaction")
        found = _rfc3261_branch(request)
        if found is None:
            raise ValueError("request needs a top Via with a z9hG4bK branch")
        # Checked now, not when a 486 arrives and the ACK needs the number (SipParseError).
        _, cseq_method = cseq(request)
        if cseq_method.upper() != method:
            raise ValueError(f"CSeq method {cseq_method} does not match {method}")
        self.request = request
        self.method = method
        self.is_invite = method == "INVITE"
        self.key: tuple[str, str] = (found[1], method)
        self.state = State.CALLING if self.is_invite else State.TRYING
        self.ack: Request | None = None  # the ACK built for a non-2xx final (INVITE only)
        self._now = now

    def start(self) -> list[Output]:
        """Send the request and arm A/B (INVITE) or E/F (non-INVITE)."""
        self._check_start()
        t1 = self.timers.t1
        if self.is_invite:
            if not self.reliable:
                self._intervals["A"] = t1
                self._arm("A", self._now, t1)
            self._arm("B", self._now, 64 * t1)
        else:
            if not self.reliable:
                self._intervals["E"] = t1
                self._arm("E", self._now, t1)
            self._arm("F", self._now, 64 * t1)
        return [Send(self.request)]

    def receive(self, response: Response, now: float) -> list[Output]:
        """Feed a response matched to this transaction (:meth:`TransactionTable.match_response`)."""
        key = client_key(response)
        if key != self.key:
            raise ValueError(f"response {key} does not match transaction {self.key}")
        if self.is_invite:
            return self._receive_invite(response, now)
        return self._receive_non_invite(response, now)

    def _receive_invite(self, response: Response, now: float) -> list[Output]:
        status = response.status
        if self.state in (State.CALLING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                # No more retransmissions; B only guards the Calling state (17.1.1.2).
                self._cancel("A", "B")
                return [Deliver(response)]
            if status < 300:
                # The TU sends the ACK for a 2xx and absorbs its retransmissions (RFC 3261).
                return [Deliver(response), *self._terminate()]
            self.ack = self._build_ack(response)
            self.state = State.COMPLETED
            self._cancel("A", "B")
            self._arm("D", now, 0.0 if self.reliable else 32.0)
            return [Send(self.ack), Deliver(response)]
        if self.state is State.COMPLETED and status >= 300 and self.ack is not None:
            # Our ACK was lost: answer the retransmitted final, but the TU already has it.
            return [Send(self.ack)]
        return []

    def _receive_non_invite(self, response: Response, now: float) -> list[Output]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []  # Completed absorbs retransmitted finals (17.1.2.2)
        if response.status < 200:
            self.state = State.PROCEEDING
            return [Deliver(response)]
        self.state = State.COMPLETED
        self._cancel("E", "F")
        self._arm("K", now, 0.0 if self.reliable else self.timers.t4)
        return [Deliver(response)]

    def _build_ack(self, response: Response) -> Request:
        """The ACK for a non-2xx final response, per 17.1.1.3."""
        orig = self.request.headers
        headers = Headers()
        # Only the top Via: the ACK must reach exactly the hop the INVITE reached.
        headers.add("Via", top_via(self.request) or "")
        for name in ("Max-Forwards", "From"):
            value = orig.get(name)
            if value is not None:
                headers.add(name, value)
        # To comes from the response: it carries the tag the far end chose. A CR or LF in it
        # (the peer's bytes) must not end the header early, nor make building the ACK fail.
        to = response.headers.get("To") or orig.get("To")
        if to is not None:
            headers.add("To", to.replace("\r", " ").replace("\n", " "))
        call_id = orig.get("Call-ID")
        if call_id is not None:
            headers.add("Call-ID", call_id)
        number, _ = cseq(self.request)
        headers.add("CSeq", f"{number} ACK")
        for route in orig.get_all("Route"):
            headers.add("Route", route)
        headers.add("Content-Length", "0")
        return Request("ACK", self.request.uri, headers)

    def _fire_a(self, now: float) -> list[Output]:
        if self.state is not State.CALLING:
            return []
        # No cap for A: it doubles until B ends the transaction (17.1.1.2).
        self._intervals["A"] *= 2
        self._arm("A", now, self._intervals["A"])
        return [Send(self.request)]

    def _fire_e(self, now: float) -> list[Output]:
        if self.state is State.TRYING:
            self._intervals["E"] = min(2 * self._intervals["E"], self.timers.t2)
        elif self.state is State.PROCEEDING:
            # A provisional arrived: the server is alive, so retransmit at the slow rate.
            self._intervals["E"] = self.timers.t2
        else:
            return []
        self._arm("E", now, self._intervals["E"])
        return [Send(self.request)]

    def _fire_b(self, now: float) -> list[Output]:
        return [TimedOut("B"), *self._terminate()]

    def _fire_f(self, now: float) -> list[Output]:
        return [TimedOut("F"), *self._terminate()]

    def _fire_d(self, now: float) -> list[Output]:
        return self._terminate()

    def _fire_k(self, now: float) -> list[Output]:
        return self._terminate()

    #: Each timer this machine arms and its handler (checked when the class is defined).
    _FIRE: ClassVar[Mapping[Timer, _FireHandler]] = {
        Timer.A: _fire_a,
        Timer.B: _fire_b,
        Timer.D: _fire_d,
        Timer.E: _fire_e,
        Timer.F: _fire_f,
        Timer.K: _fire_k,
    }
