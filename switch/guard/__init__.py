"""The switch's own scanner defence, sans-IO: trusted sources, signatures, per-source limits.

:class:`Screen` is the whole guard; the listeners call :meth:`Screen.check` for each datagram
before parsing it and drop it silently when a :class:`Rule` comes back. See docs/guard.md.

>>> from switch.config_types import GuardSettings
>>> from switch.guard import Rule, Screen
>>> Screen(GuardSettings()).check(b"OPTIONS sip:x@y SIP/2.0\\r\\n\\r\\n", "192.0.2.1", 0.0)
<Rule.OPTIONS: 'options'>
"""

from switch.guard.dialogs import Dialogs, network_of
from switch.guard.rules import Ban, Rule
from switch.guard.screen import Screen
from switch.guard.signatures import SCAN_LIMIT, SERVED_METHODS, Signatures
from switch.guard.sources import RateRules, Source
from switch.guard.trust import TrustList, parse_address

__all__ = [
    "SCAN_LIMIT",
    "SERVED_METHODS",
    "Ban",
    "Dialogs",
    "RateRules",
    "Rule",
    "Screen",
    "Signatures",
    "Source",
    "TrustList",
    "network_of",
    "parse_address",
]
