"""The B2BUA: call control between customers and vendors, sans-IO.

:class:`Engine` takes messages and ``now`` and returns actions (:class:`Transmit`,
:class:`Finish`); the asyncio shell (:mod:`switch.server`) owns sockets, the clock and the disk.

>>> from switch.b2bua import Engine, Transmit, Finish
>>> Transmit.__name__, Finish.__name__
('Transmit', 'Finish')
"""

from switch.b2bua.build import Ids, Leg, Peer
from switch.b2bua.call import CallState, Role, Side, normalize_number, reason_for_status
from switch.b2bua.cdr import Attempt, CallRecord, iso
from switch.b2bua.customers import CustomerDirectory, Identity
from switch.b2bua.engine import Engine
from switch.b2bua.limits import CallLimits
from switch.b2bua.tu import Action, Finish, TransactionUser, Transmit

__all__ = [
    "Action",
    "Attempt",
    "CallLimits",
    "CallRecord",
    "CallState",
    "CustomerDirectory",
    "Engine",
    "Finish",
    "Identity",
    "Ids",
    "Leg",
    "Peer",
    "Role",
    "Side",
    "TransactionUser",
    "Transmit",
    "iso",
    "normalize_number",
    "reason_for_status",
]
