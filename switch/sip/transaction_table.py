"""The table the shell uses to route messages and timers to RFC 3261 transactions, sans-IO.

The deliberate deviations and simplifications are listed in :mod:`switch.sip.transaction`.
"""

from __future__ import annotations

from collections.abc import Iterator

from switch.sip.client_transaction import ClientTransaction
from switch.sip.message import Request, Response
from switch.sip.server_transaction import ServerTransaction
from switch.sip.transaction_common import (
    RFC2543,
    Output,
    ServerKey,
    client_key,
    server_key,
    without_to_tag,
)

__all__ = ["Transaction", "TransactionTable"]

Transaction = ClientTransaction | ServerTransaction


class TransactionTable:
    """The shell's bookkeeping: find the transaction a message belongs to, drive all timers.

    Terminated transactions are never returned by the ``match_*`` methods (a 2xx retransmission
    after the INVITE client terminated must reach the core, not a dead transaction), and
    :meth:`handle_timers` drops the ones its timers terminated.

    >>> table = TransactionTable()
    >>> len(table), table.next_deadline()
    (0, None)
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def __iter__(self) -> Iterator[Transaction]:
        yield from list(self._clients.values())
        yield from list(self._servers.values())

    def add(self, tx: Transaction) -> None:
        """Register a transaction; a live transaction with the same key is an error."""
        if isinstance(tx, ClientTransaction):
            old = self._clients.get(tx.key)
            if old is not None and not old.terminated:
                raise ValueError(f"client transaction {tx.key} already exists")
            self._clients[tx.key] = tx
        else:
            old_s = self._servers.get(tx.key)
            if old_s is not None and not old_s.terminated:
                raise ValueError(f"server transaction {tx.key} already exists")
            self._servers[tx.key] = tx

    def match_response(self, response: Response) -> ClientTransaction | None:
        """The client transaction a response belongs to (17.1.3), or None."""
        key = client_key(response)
        tx = self._clients.get(key) if key is not None else None
        return tx if tx is not None and not tx.terminated else None

    def match_request(self, request: Request) -> ServerTransaction | None:
        """The server transaction a request belongs to (17.2.3), or None for a new request.

        An ACK matches the INVITE transaction it acknowledges (non-2xx final); a CANCEL never
        matches its INVITE (use :meth:`match_cancel` for that). Requests without an RFC 3261
        branch are matched by the RFC 2543 rules (see :data:`ServerKey`).
        """
        key = server_key(request)
        if key is None:
            return None
        if key[0] == RFC2543 and request.method.upper() == "ACK":
            # The ACK carries the tag of our response: its INVITE had no To tag (a new call)
            # or this same one (a re-INVITE).
            for candidate in (without_to_tag(key), key):
                tx = self._servers.get(candidate)
                if tx is not None and not tx.terminated and tx.matches(request):
                    return tx
            return None
        tx = self._servers.get(key)
        return tx if tx is not None and not tx.terminated else None

    def match_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL targets (9.2: same key, method INVITE)."""
        key = server_key(cancel)
        if key is None:
            return None
        tx = self._servers.get((*key[:-1], "INVITE"))
        return tx if tx is not None and not tx.terminated else None

    def remove(self, tx: Transaction) -> None:
        """Forget a transaction (no error if it is not there)."""
        if isinstance(tx, ClientTransaction):
            if self._clients.get(tx.key) is tx:
                del self._clients[tx.key]
        elif self._servers.get(tx.key) is tx:
            del self._servers[tx.key]

    def remove_terminated(self) -> list[Transaction]:
        """Drop and return every terminated transaction."""
        dead: list[Transaction] = [tx for tx in self if tx.terminated]
        for tx in dead:
            self.remove(tx)
        return dead

    def next_deadline(self) -> float | None:
        """The earliest deadline over all transactions (O(n); a heap can come when it matters)."""
        deadlines = [d for tx in self if (d := tx.next_deadline()) is not None]
        return min(deadlines, default=None)

    def handle_timers(self, now: float) -> list[tuple[Transaction, list[Output]]]:
        """Fire due timers everywhere; (transaction, outputs) for each one that did something."""
        results: list[tuple[Transaction, list[Output]]] = []
        for tx in self:
            deadline = tx.next_deadline()
            if deadline is None or deadline > now:
                continue
            outputs = tx.handle_timer(now)
            if outputs:
                results.append((tx, outputs))
            if tx.terminated:
                self.remove(tx)
        return results
