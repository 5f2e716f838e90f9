"""The transaction-user plumbing under the B2BUA: transactions, timers and the actions out.

:class:`TransactionUser` owns the transaction table, remembers why each transaction was started
(an :class:`~switch.b2bua.call.Owner`), and keeps every timer, transaction timers and call timers
alike, in one heap ordered by deadline, so the shell has one ``next_deadline`` to sleep until and
one ``handle_timers`` to call. The call logic lives in :class:`switch.b2bua.engine.Engine`.

Besides the transactions' own timers and the call timers, the TU can put one *guard* on a
transaction (:meth:`TransactionUser._guard`): a deadline of its own that runs the subclass's
handler for that :class:`Guard` unless the transaction ended first. An INVITE client
transaction that has had a provisional answer has no timer left (17.1.1.2: timer B only guards
Calling), so without a guard a peer that goes silent would keep it, and its call, forever.

Call timers (:class:`~switch.b2bua.call.CallTimer`) and guards are enum members, dispatched
through two tables the subclass fills in (``_CALL_TIMERS``, ``_GUARDS``) and that are checked
complete when the subclass is defined: a handler missing or misspelt fails at import, not when
its deadline comes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, Protocol

from switch.b2bua.build import Peer
from switch.b2bua.call import Call, CallTimer, Owner
from switch.sip import (
    Deliver,
    Message,
    Output,
    Response,
    Send,
    ServerTransaction,
    TimedOut,
    TimerConfig,
    Transaction,
    TransactionTable,
    TransportError,
)

__all__ = ["Action", "CallObserver", "CallTimerHandler", "Finish", "Guard", "GuardHandler",
           "MediaRequest", "MediaStep", "TimerEntry", "TransactionUser", "Transmit"]

#: Compact the timer heap only past this many dead entries (small heaps are cheap to keep).
COMPACT_AFTER = 4096


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` to ``peer`` now."""

    message: Message
    peer: Peer


@dataclass(frozen=True, slots=True)
class Finish:
    """Write ``record`` (a CDR) durably, then send ``then``."""

    record: dict[str, Any]
    then: list[Transmit]


class MediaStep(StrEnum):
    """What a media request is for (:mod:`switch.b2bua.media`)."""

    OFFER = "offer"
    ANSWER = "answer"
    DELETE = "delete"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class MediaRequest:
    """Ask the relay of call ``call_id`` the ng ``command``; the shell answers with
    ``Engine.media_result(token, reply, now)`` (reply None: the relay failed or was silent)."""

    token: int
    call_id: str
    step: MediaStep
    command: dict[str, object]


Action = Transmit | Finish | MediaRequest


class CallObserver(Protocol):
    """Told when a call is admitted and when it finishes, by the customer's Call-ID: the
    guard counts dialogs per source with it (``connlimit``; :class:`switch.guard.Screen`)."""

    def dialog_opened(self, key: str, ip: str) -> None: ...

    def dialog_closed(self, key: str) -> None: ...


class Guard(StrEnum):
    """Why a transaction has a deadline of its own (:meth:`TransactionUser._guard`)."""

    CANCELLED = "cancelled"  # we CANCELled this INVITE: its final answer is due within 64*T1 (9.1)
    RELAY = "relay"          # a relayed re-INVITE ringing for too long: cancel it (timer C, 16.6)


#: What a call timer does when it fires: ``handler(tu, call, now, out)``. The TU is typed Any
#: because each subclass's handlers take that subclass (its methods, or functions of another
#: module taking it explicitly).
CallTimerHandler = Callable[[Any, Call, float, list[Action]], None]
#: What a guard does when it fires: ``handler(tu, tx, owner, now, out)``.
GuardHandler = Callable[[Any, Transaction, Owner, float, list[Action]], None]

class TimerEntry(NamedTuple):
    """One entry of the timer heap.

    A transaction's own timers have ``target`` the transaction and ``name`` None; a call timer
    has the :class:`~switch.b2bua.call.Call` and its :class:`~switch.b2bua.call.CallTimer`; a
    guard the transaction and its :class:`Guard`. Entries compare as tuples, by deadline then
    ``seq``; every entry gets a fresh ``seq``, so a comparison never reaches ``target`` (which
    need not be comparable) or ``name``:

    >>> TimerEntry(1.0, 7, object(), None) < TimerEntry(1.0, 8, object(), Guard.RELAY)
    True
    """

    deadline: float
    seq: int
    target: Any  # Transaction or Call, as ``name`` says
    name: CallTimer | Guard | None


class TransactionUser:
    """Transactions and timers for the engine; subclasses handle what they deliver.

    A subclass sets ``_CALL_TIMERS`` and ``_GUARDS``, one handler for every member of
    :class:`~switch.b2bua.call.CallTimer` and of :class:`Guard`; :meth:`__init_subclass__`
    refuses the class if one is missing:

    >>> class Forgetful(TransactionUser):
    ...     _CALL_TIMERS = {CallTimer.REAP: lambda tu, call, now, out: None}
    Traceback (most recent call last):
    TypeError: Forgetful._CALL_TIMERS has no handler for INVITE, PROGRESS, RETRANSMIT, ...
    """

    _CALL_TIMERS: ClassVar[Mapping[CallTimer, CallTimerHandler]] = {}
    _GUARDS: ClassVar[Mapping[Guard, GuardHandler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_complete(f"{cls.__name__}._CALL_TIMERS", CallTimer, cls._CALL_TIMERS)
        _check_complete(f"{cls.__name__}._GUARDS", Guard, cls._GUARDS)

    def __init__(self, timers: TimerConfig | None = None) -> None:
        self.timer_config = timers or TimerConfig()
        self.table = TransactionTable()
        self._owners: dict[Transaction, Owner] = {}
        self._heap: list[TimerEntry] = []
        self._seq = itertools.count()
        self._dead = 0  # heap entries known to be cancelled (see _compact)
        self._guards: dict[Transaction, tuple[Guard, int]] = {}  # tx -> (guard, seq)

    def _on_tx_response(self, owner: Owner, tx: Transaction, resp: Response, now: float,
                        out: list[Action]) -> None:
        raise NotImplementedError

    def _on_tx_failure(self, owner: Owner, tx: Transaction, now: float,
                       out: list[Action]) -> None:
        raise NotImplementedError

    @property
    def pending_timers(self) -> int:
        """Entries in the timer heap, cancelled ones not yet compacted away included."""
        return len(self._heap)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` should be called next (None: no timer is armed)."""
        return self._heap[0].deadline if self._heap else None

    def handle_timers(self, now: float) -> list[Action]:
        """Fire every timer due at ``now``."""
        out: list[Action] = []
        heap = self._heap
        while heap and heap[0].deadline <= now:
            entry = heapq.heappop(heap)
            name, seq, target = entry.name, entry.seq, entry.target
            if name is None:
                tx: Transaction = target
                deadline = tx.next_deadline()
                if tx.terminated or deadline is None or deadline > now:
                    continue
                self._after_tx(tx, tx.handle_timer(now), now, out)
            elif isinstance(name, CallTimer):
                call: Call = target
                if call.timers.get(name) != seq:
                    continue  # cancelled or re-armed
                del call.timers[name]
                self._CALL_TIMERS[name](self, call, now, out)
            else:
                if self._guards.get(target) != (name, seq):
                    continue  # replaced, or its transaction ended
                del self._guards[target]
                owner = self._owners.get(target)
                if owner is not None and not target.terminated:
                    self._GUARDS[name](self, target, owner, now, out)
        return out

    def _start_tx(self, tx: Transaction, owner: Owner, now: float, out: list[Action],
                  defer: list[Transmit] | None = None) -> None:
        self.table.add(tx)
        self._owners[tx] = owner
        self._after_tx(tx, tx.start(), now, out, defer)

    def _after_tx(self, tx: Transaction, outputs: list[Output], now: float,
                  out: list[Action], defer: list[Transmit] | None = None) -> None:
        owner = self._owners.get(tx)
        if owner is None:
            return
        for output in outputs:
            if isinstance(output, Send):
                (defer if defer is not None else out).append(Transmit(output.message, owner.peer))
            elif isinstance(output, Deliver):
                if isinstance(output.message, Response):
                    self._on_tx_response(owner, tx, output.message, now, out)
            elif isinstance(output, TimedOut | TransportError):
                self._on_tx_failure(owner, tx, now, out)
        if tx.terminated:
            self._dead += 1  # its pending timer entries
            if self._guards.pop(tx, None) is not None:
                self._dead += 1
            self.table.remove(tx)
            self._owners.pop(tx, None)
            return
        deadline = tx.next_deadline()
        if deadline is not None:
            heapq.heappush(self._heap, TimerEntry(deadline, next(self._seq), tx, None))

    def _arm(self, call: Call, name: CallTimer, at: float) -> None:
        seq = next(self._seq)
        if call.timers.get(name) is not None:
            self._dead += 1
        call.timers[name] = seq
        heapq.heappush(self._heap, TimerEntry(at, seq, call, name))
        if self._dead > COMPACT_AFTER and 2 * self._dead > len(self._heap):
            self._compact()

    def _guard(self, tx: Transaction, name: Guard, at: float) -> None:
        """Run the handler of guard ``name`` at ``at`` unless ``tx`` has ended by then; replaces
        the guard ``tx`` had."""
        seq = next(self._seq)
        if self._guards.get(tx) is not None:
            self._dead += 1
        self._guards[tx] = (name, seq)
        heapq.heappush(self._heap, TimerEntry(at, seq, tx, name))

    def _disarm(self, call: Call, *names: CallTimer) -> None:
        for name in names:
            if call.timers.pop(name, None) is not None:
                self._dead += 1

    def _disarm_all(self, call: Call) -> None:
        self._dead += len(call.timers)
        call.timers.clear()

    def _compact(self) -> None:
        """Drop heap entries that can no longer fire.

        Cancelled timers stay in the heap until their deadline (a max-duration timer for an
        hour), and each entry keeps its call or transaction alive; at 1,000 calls/s that is
        most of the switch's memory. Rebuilding once dead entries are the majority costs O(n)
        per n cancellations.
        """
        def alive(entry: TimerEntry) -> bool:
            target, name = entry.target, entry.name
            if name is None:
                return not target.terminated and target.next_deadline() is not None
            if isinstance(name, CallTimer):
                armed: int | None = target.timers.get(name)  # target is Any (see TimerEntry)
                return armed == entry.seq
            return self._guards.get(target) == (name, entry.seq)

        self._heap = [entry for entry in self._heap if alive(entry)]
        heapq.heapify(self._heap)
        self._dead = 0

    def _reply(self, tx: ServerTransaction, response: Response, now: float, out: list[Action],
               defer: list[Transmit] | None = None) -> None:
        if tx.terminated or tx.state not in ("trying", "proceeding"):
            return  # already answered (a race between a CANCEL and the vendor's answer)
        self._after_tx(tx, tx.respond(response, now), now, out, defer)


def _check_complete(where: str, names: type[StrEnum], table: Mapping[Any, object]) -> None:
    """Refuse a dispatch table that leaves a timer or guard without a handler."""
    missing = [member.name for member in names if member not in table]
    if missing:
        raise TypeError(f"{where} has no handler for {', '.join(missing)}")
