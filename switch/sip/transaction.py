"""RFC 3261 section 17 transactions, sans-IO.

Four state machines (INVITE client 17.1.1, non-INVITE client 17.1.2, INVITE server 17.2.1,
non-INVITE server 17.2.2) plus the matching rules (17.1.3, 17.2.3) and a table the shell uses to
route messages and timers. Nothing here touches a socket or a clock: every input carries ``now``
(seconds, any monotonic origin), every call returns a list of outputs (:class:`Send` for the
transport, :class:`Deliver` / :class:`TimedOut` / :class:`TransportError` / :class:`Terminated`
for the TU), and timers are data: the shell asks :meth:`next_deadline` and calls
``handle_timer(now)`` when that time has come.

Typical shell loop::

    table = TransactionTable()
    tx = ClientTransaction(invite, reliable=False, now=now)
    table.add(tx)
    outputs = tx.start()                    # [Send(invite)]
    ...
    tx = table.match_response(response)     # None: stray response, hand it to the core
    outputs = tx.receive(response, now)
    ...
    for tx, outputs in table.handle_timers(now): ...

Deviations from the brief and simplifications (all deliberate):

* A timer of zero duration (D, K, I, J over a reliable transport) is armed at ``now`` instead of
  terminating inline, so the Completed / Confirmed state is observable and every path goes through
  the same timer code. The shell must call ``handle_timer`` whenever ``next_deadline() <= now``
  (it does that anyway); it then gets ``[Terminated()]``.
* INVITE client: timer B is cancelled together with timer A when a provisional response arrives.
  That is what RFC 3261 says (B only matters "if the client transaction is still in the Calling
  state"), but it means a ringing INVITE never times out here: the TU owns that timeout
  (``invite_timeout`` / ``call_progress_timeout`` in the switch config).
* INVITE client and server follow RFC 3261 proper, not RFC 6026: a 2xx terminates the
  transaction at once. Retransmitted 2xx responses therefore match no client transaction (the
  core hands them to the dialog, which re-sends its ACK), and the ACK for a 2xx matches no server
  transaction (it has its own branch and goes straight to the TU).
* INVITE server: ``start()`` sends ``100 Trying`` immediately instead of after 200 ms (17.2.1
  allows either; immediately is simpler and suppresses retransmissions sooner).
* Retransmission timers are re-armed relative to the ``now`` at which they fire, not to the
  deadline they had: a shell that wakes late sends one retransmission, not a burst.
* :func:`server_key` matches a request whose top Via has no RFC 3261 branch (``z9hG4bK`` magic
  cookie missing) by the RFC 2543 rules of 17.2.3 (Request-URI, To tag, From tag, Call-ID, CSeq,
  top Via; the ACK of a non-2xx by the To tag of our response); it returns ``None`` only when the
  top Via has no sent-by. The Request-URI is compared as a string, not by the URI equality rules
  of 19.1.4 (a retransmission repeats it byte for byte). :func:`client_key` still needs a branch
  with the cookie: the switch's own requests always carry one.
* Events the RFC calls a TU error (responding in the wrong state, ``start()`` twice) raise
  :class:`TransactionError`; a message whose key is not the transaction's, an ACK given to a
  constructor, or a client request whose CSeq method differs from its method raise
  ``ValueError``; inputs that arrive in a state where the RFC says to absorb them
  (retransmissions after Completed, late responses) return ``[]``. ``respond`` trusts the TU to
  pass a response built for this request (``make_response``) and does not re-check it.
* Signatures: ``timers: TimerConfig | None = None`` (a dataclass instance as a default argument
  is shared state, ruff B008); ``state`` is a :class:`State` (a ``StrEnum``, so it compares equal
  to "calling", "proceeding", ...); the ACK of 17.1.1.3 also carries the INVITE's Max-Forwards
  and ``Content-Length: 0``.
* :meth:`TransactionTable.handle_timers` removes the transactions its timers terminated; after
  ``receive`` / ``respond`` the shell calls :meth:`TransactionTable.remove_terminated` (or
  ``remove``). Until then a terminated transaction is never returned by a ``match_*`` method.
* Extra: ``transport_failed(reason)`` on both sides (17.1.4 / 17.2.4) returns
  ``[TransportError(reason), Terminated()]``; :meth:`TransactionTable.match_cancel` finds the
  INVITE server transaction a CANCEL targets (9.2).
* ``ServerTransaction.key`` for an INVITE is ``(branch, sent_by, "INVITE")``, and
  :func:`server_key` maps an ACK to the same method, which is how the ACK for a non-2xx final
  response finds its INVITE transaction.
"""

from __future__ import annotations

from switch.sip.client_transaction import ClientTransaction
from switch.sip.server_transaction import ServerTransaction
from switch.sip.transaction_common import (
    MAGIC_COOKIE,
    Deliver,
    Output,
    Send,
    State,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransportError,
    client_key,
    sent_by,
    server_key,
)
from switch.sip.transaction_table import Transaction, TransactionTable

__all__ = [
    "MAGIC_COOKIE",
    "ClientTransaction",
    "Deliver",
    "Output",
    "Send",
    "ServerTransaction",
    "State",
    "Terminated",
    "TimedOut",
    "TimerConfig",
    "Transaction",
    "TransactionError",
    "TransactionTable",
    "TransportError",
    "client_key",
    "sent_by",
    "server_key",
]
