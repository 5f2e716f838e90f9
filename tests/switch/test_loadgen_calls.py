"""Customer (Uac) against vendor (Uas) endpoints over real UDP sockets on 127.0.0.1, no switch.

Durations are a tenth of a second or so; the whole file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import socket

from switch.loadgen import Uac, Uas

FAST = {"t1": 0.02, "t2": 0.16}  # so 64*T1 is 1.28 s where a test needs a timer to expire


async def _run(uas: Uas, **uac_args: object) -> tuple[Uac, Uas]:
    async with uas:
        uac = Uac(uas.address, **uac_args)  # type: ignore[arg-type]
        try:
            await uac.run()
        finally:
            uac.close()
        await _acks_landed(uas)
    return uac, uas


async def _acks_landed(uas: Uas, timeout: float = 5.0) -> None:
    """Wait until the vendor has no final response waiting for its ACK, or ``timeout``.

    The UAC's run ends once every call has its final answer (and every BYE its 200), but it
    does not wait for its last ACKs to arrive. A test that expects an ACK to be missing sees
    ``uas.pending_acks`` after the timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while uas.pending_acks and loop.time() < deadline:
        await asyncio.sleep(0.01)


def test_answered_calls_are_hung_up_with_bye() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="answer=1"), calls=6, rate=60,
                                durations={0.1: 1.0}))
    summary = uac.summary()
    assert summary.placed == 6 and summary.answered == 6
    assert summary.by_code == {200: 6}
    assert summary.by_outcome == {"completed": 6}
    assert uas.stats.invites == 6 and uas.stats.answered == 6
    assert uas.stats.byes_received == 6
    assert uas.pending_acks == 0  # every 200 was ACKed
    for r in uac.results:
        assert r.answered and r.bye_status == 200
        assert 0.09 <= r.duration < 0.5
        assert r.pdd is not None and r.pdd < 0.2
        assert r.number.startswith("4477009") and len(r.number) == 12


def test_refusals_are_acked_and_counted_by_code() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="486=0.5,503=0.5", seed=3), calls=12, rate=120,
                                numbers=["3460"], digits=3))
    summary = uac.summary()
    assert set(summary.by_code) <= {486, 503}
    assert sum(summary.by_code.values()) == 12
    assert summary.by_code == uas.stats.refused
    assert summary.by_outcome == {"rejected": 12}
    assert summary.answered == 0 and uas.stats.answered == 0
    assert uas.pending_acks == 0  # the ACKs on the INVITE's branch stopped Timer G
    assert all(r.number.startswith("3460") and len(r.number) == 7 for r in uac.results)


def test_no_answer_vendor_and_cancel_after() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="no_answer=1"), calls=4, rate=40,
                                cancel_after=0.2))
    summary = uac.summary()
    assert summary.by_code == {487: 4}
    assert summary.by_outcome == {"cancelled": 4}
    assert uas.stats.cancelled == 4 and uas.stats.answered == 0
    assert uas.pending_acks == 0  # the 487s were ACKed
    assert all(r.pdd is not None and r.pdd < 0.2 for r in uac.results)  # from the 180


def test_ring_then_answer() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="ring=1", ring_seconds=0.25), calls=3, rate=30,
                                durations=0.1))
    summary = uac.summary()
    assert summary.by_code == {200: 3}
    assert summary.by_outcome == {"completed": 3}
    assert uas.stats.behaviours == {"ring": 3}
    assert summary.elapsed >= 0.25 + 0.1
    assert all(r.pdd is not None and r.pdd < 0.2 for r in uac.results)  # PDD is to the 180


def test_cancel_ratio_only_cancels_a_share_and_answered_calls_are_not_cancelled() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="ring=0.5,answer=0.5", ring_seconds=0.4, seed=1),
                                calls=20, rate=100, durations=0.05, cancel_after=0.15,
                                cancel_ratio=0.5, seed=2))
    summary = uac.summary()
    assert sum(summary.by_code.values()) == 20
    assert set(summary.by_code) <= {200, 487}
    # Answered-at-once calls are never cancelled; ringing calls are when picked.
    assert summary.by_code.get(200, 0) >= uas.stats.behaviours.get("answer", 0)
    assert uas.stats.cancelled == summary.by_code.get(487, 0)


async def _mixed_run() -> tuple[dict[int, int], dict[str, int], list[str], dict[str, int]]:
    uas = Uas(mix={"answer": 0.5, "ring": 0.1, "no_answer": 0.15,
                   "refuse": {486: 0.15, 503: 0.1}}, ring_seconds=0.2, seed=7)
    uac, uas = await _run(uas, calls=40, rate=40, numbers=["4477009", "3460"],
                          durations={0.1: 0.5, 0.2: 0.5}, cancel_after=0.4, seed=11)
    summary = uac.summary()
    assert summary.placed == 40
    return (summary.by_code, summary.by_outcome, [r.number for r in uac.results],
            uas.stats.behaviours)


def test_forty_calls_add_up_and_the_seeded_choice_is_reproducible() -> None:
    first = asyncio.run(_mixed_run())
    by_code, by_outcome, numbers, behaviours = first
    assert sum(by_code.values()) == 40
    assert sum(by_outcome.values()) == 40
    assert sum(behaviours.values()) == 40
    assert all(n.startswith(("4477009", "3460")) for n in numbers) and len(set(numbers)) > 30
    assert by_code.get(200, 0) == behaviours.get("answer", 0) + behaviours.get("ring", 0)
    assert by_code.get(487, 0) == behaviours.get("no_answer", 0)
    assert by_code.get(486, 0) == behaviours.get("486", 0)
    assert asyncio.run(_mixed_run()) == first


def test_silent_vendor_times_out_on_timer_b() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="silent=1"), calls=2, rate=100, **FAST))
    summary = uac.summary()
    assert summary.by_outcome == {"timeout": 2}
    assert summary.by_code == {} and summary.no_final == 2
    assert uas.stats.invite_retransmissions >= 2 * 4  # Timer A kept resending
    assert summary.elapsed < 64 * FAST["t1"] + 1.0


def test_digest_auth_retry_with_credentials() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="answer=1", require_auth=("alice", "s3cret")),
                                calls=3, rate=60, durations=0.05, username="alice",
                                password="s3cret"))
    summary = uac.summary()
    assert summary.by_code == {200: 3}
    assert summary.by_outcome == {"completed": 3}
    assert uas.stats.challenged == 3 and uas.stats.invites == 3
    assert all(r.auth_attempts == 1 for r in uac.results)
    assert uas.pending_acks == 0  # the 407s were ACKed too


def test_digest_auth_wrong_password_ends_with_407() -> None:
    uac, uas = asyncio.run(_run(Uas(require_auth=("alice", "s3cret")), calls=2, rate=60,
                                username="alice", password="nope"))
    summary = uac.summary()
    assert summary.by_code == {407: 2}
    assert summary.by_outcome == {"rejected": 2}
    assert uas.stats.challenged == 4 and uas.stats.invites == 0


def test_without_credentials_a_challenge_is_final() -> None:
    uac, uas = asyncio.run(_run(Uas(require_auth=("alice", "s3cret")), calls=1, rate=10))
    assert uac.summary().by_code == {407: 1} and uas.stats.challenged == 1
    assert uac.results[0].auth_attempts == 0


def test_max_seconds_caps_the_run_and_wraps_up_calls() -> None:
    uac, uas = asyncio.run(_run(Uas(mix="answer=1"), calls=100, rate=20, durations=30,
                                max_seconds=0.3))
    summary = uac.summary()
    assert 4 <= summary.placed <= 8  # 20 cps for 0.3 s
    assert summary.by_outcome == {"completed": summary.placed}  # hung up early, not aborted
    assert summary.elapsed < 1.5
    assert uas.stats.byes_received == summary.placed


def test_tech_prefix_and_local_port_reach_the_vendor() -> None:
    async def scenario() -> tuple[str, tuple[str, int], tuple[str, int], int]:
        seen: list[tuple[str, tuple[str, int]]] = []
        async with Uas(mix="486=1") as uas:
            original = uas._on_message

            def spy(msg, source):  # type: ignore[no-untyped-def]
                if getattr(msg, "method", "") == "INVITE":
                    seen.append((msg.uri, source))
                original(msg, source)

            uas._sock.handler = spy  # type: ignore[union-attr]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            uac = Uac(uas.address, calls=1, tech_prefix="0099", local_port=port)
            await uac.run()
            uac.close()
            return seen[0][0], seen[0][1], uas.address, port

    uri, source, (host, port), local_port = asyncio.run(scenario())
    assert uri.startswith("sip:00994477009") and uri.endswith(f"@{host}:{port}")
    assert source == ("127.0.0.1", local_port)
