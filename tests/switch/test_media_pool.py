"""RelayPool (switch/media/pool.py): health, round robin and the ping schedule, sans-IO."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media import RelayPool

A, B, C = ("127.0.0.1", 2001), ("127.0.0.1", 2002), ("::1", 2003)


def test_round_robin_in_order_over_every_relay() -> None:
    pool = RelayPool([A, B, C])
    assert [pool.pick(0.0) for _ in range(7)] == [A, B, C, A, B, C, A]


def test_unhealthy_relays_are_skipped_and_come_back_in_turn() -> None:
    pool = RelayPool([A, B, C])
    assert pool.pick(0.0) == A
    assert pool.failed(B, 1.0) is True
    assert [pool.pick(1.0) for _ in range(4)] == [C, A, C, A]
    assert pool.answered(B, 2.0) is True
    # Round robin goes on from where it was: after A comes B again.
    assert [pool.pick(2.0) for _ in range(3)] == [B, C, A]
    state = pool.state(B)
    assert (state.healthy, state.last_failed, state.last_answered) == (True, 1.0, 2.0)


def test_none_healthy_or_empty_picks_none() -> None:
    pool = RelayPool([A, B])
    pool.failed(A, 0.0)
    pool.failed(B, 0.0)
    assert pool.pick(0.0) is None
    assert pool.healthy() == []
    assert pool.counts() == {"relays": 2, "healthy": 0, "unhealthy": 2}
    assert RelayPool([]).pick(0.0) is None
    assert RelayPool([]).due_pings(0.0) == []
    assert RelayPool([]).next_ping_at() is None


def test_transitions_are_reported_once() -> None:
    pool = RelayPool([A])
    assert pool.answered(A, 0.0) is False  # presumed healthy: no news
    assert pool.failed(A, 1.0) is True
    assert pool.failed(A, 2.0) is False
    assert pool.answered(A, 3.0) is True
    assert pool.answered(A, 4.0) is False


def test_ping_schedule_covers_healthy_and_unhealthy_relays() -> None:
    pool = RelayPool([A, B], ping_interval=5.0)
    assert pool.due_pings(10.0) == [A, B]  # everything is due at first
    assert pool.next_ping_at() == 15.0
    assert pool.due_pings(14.9) == []
    pool.failed(B, 12.0)
    assert pool.due_pings(15.0) == [A, B]  # the unhealthy one too: its pong brings it back
    # A loop that wakes late pings once and schedules from now, not a burst to catch up.
    assert pool.due_pings(40.0) == [A, B]
    assert pool.due_pings(41.0) == []
    assert pool.next_ping_at() == 45.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        RelayPool([A, A])
    with pytest.raises(ValueError, match="ping_interval"):
        RelayPool([A], ping_interval=0)
    with pytest.raises(KeyError):
        RelayPool([A]).failed(B, 0.0)
    assert RelayPool([A]).is_healthy(B) is False


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.integers(0, 20))
def test_one_lap_picks_each_healthy_relay_exactly_once(health: list[bool], skip: int) -> None:
    relays = [("127.0.0.1", 3000 + n) for n in range(len(health))]
    pool = RelayPool(relays)
    for _ in range(skip):  # start the lap anywhere
        pool.pick(0.0)
    for relay, healthy in zip(relays, health, strict=True):
        if not healthy:
            pool.failed(relay, 0.0)
    healthy_relays = [r for r, h in zip(relays, health, strict=True) if h]
    picks = [pool.pick(0.0) for _ in range(len(healthy_relays))]
    if healthy_relays:
        assert sorted(p for p in picks if p is not None) == sorted(healthy_relays)
    else:
        assert pool.pick(0.0) is None
