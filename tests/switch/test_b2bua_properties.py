"""Property tests of the sans-IO B2BUA engine: random event sequences, invariants that must hold.

The state machine, what it plays and the invariants it checks after every step are described in
tests/switch/b2bua_machine.py; the sequences that once found bugs are kept as plain examples in
test_b2bua_property_examples.py. ``B2BUA_PROPERTY_EXAMPLES`` sets the number of examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

import switch.b2bua.tu as tu
from tests.switch.b2bua_machine import B2buaMachine

EXAMPLES = int(os.environ.get("B2BUA_PROPERTY_EXAMPLES", "400"))
SETTINGS = settings(
    max_examples=EXAMPLES, stateful_step_count=50, deadline=None, derandomize=True,
    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
B2buaMachine.TestCase.settings = SETTINGS
test_b2bua_engine_properties = B2buaMachine.TestCase


def test_the_properties_hold_while_the_timer_heap_is_compacted_all_the_time(monkeypatch):
    """Compaction drops cancelled timers from the heap; it must keep every live one (call
    timers, transaction timers and guards), or a call would never end."""
    monkeypatch.setattr(tu, "COMPACT_AFTER", 2)
    run_state_machine_as_test(B2buaMachine, settings=settings(
        SETTINGS, max_examples=max(1, EXAMPLES // 4)))
