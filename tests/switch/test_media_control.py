"""MediaControl and the local relay workers (switch/media/control.py, switch/media/workers.py).

Most tests run real relay processes started by ``start_workers``; a few use an in-process fake
relay that holds replies back, to see what waits for what without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from switch.media import MediaControl, NgClient, Workers, start_workers
from switch.media.ng import decode_message, encode_message
from tests.switch.media_peers import WAIT, offer_sdp

T = TypeVar("T")

# Each test with workers gets its own 100-port slice of 31600-32699: no other test's ports (see
# tests/switch/test_media_relay.py and test_media_rtpengine.py), below the kernel's ephemeral
# ports (32768 and up), 25 pairs per worker of two.
_ranges = itertools.count(31600, 100)
# MediaControl's request timeout in these tests: long enough that a live relay on a loaded
# two-core machine always answers in time, short enough that the tests killing a relay wait
# little for the timeout that finds it. Nothing here measures it.
TIMEOUT = 1.0


def _range() -> tuple[int, int]:
    start = next(_ranges)
    if start + 99 >= 32768:
        raise RuntimeError("out of test port ranges")
    return start, start + 99


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    # The bound turns a hang into a failure; no test comes near it.
    return asyncio.run(asyncio.wait_for(test(), 60))


@contextlib.asynccontextmanager
async def workers(count: int = 2) -> AsyncIterator[Workers]:
    low, high = _range()
    started = await start_workers(count, address="127.0.0.1", port_min=low, port_max=high)
    try:
        yield started
    finally:
        await started.stop()


@contextlib.asynccontextmanager
async def control(relays: list[tuple[str, int]], **options: Any) -> AsyncIterator[MediaControl]:
    options.setdefault("timeout", TIMEOUT)
    media = MediaControl(relays, **options)
    await media.start()
    try:
        yield media
    finally:
        await media.close()


def offer(call_id: str, port: int = 4000) -> dict[str, object]:
    return {"command": "offer", "call-id": call_id, "from-tag": "a",
            "sdp": offer_sdp("127.0.0.1", port)}


def answer(call_id: str, port: int = 5000) -> dict[str, object]:
    return {"command": "answer", "call-id": call_id, "from-tag": "a", "to-tag": "b",
            "sdp": offer_sdp("127.0.0.1", port)}


def delete(call_id: str) -> dict[str, object]:
    return {"command": "delete", "call-id": call_id, "flags": ["fast"]}


async def relay_calls(address: tuple[str, int]) -> int:
    """The number of calls on a relay of ours (``query`` without call-id)."""
    async with NgClient(address, timeout=WAIT) as client:
        reply: Any = await client.query()
    calls = reply["calls"]
    assert isinstance(calls, int)
    return calls


async def relay_ports_in_use(address: tuple[str, int]) -> int:
    async with NgClient(address, timeout=WAIT) as client:
        reply: Any = await client.query()
    value = reply["ratelab-ports"]["in use"]
    assert isinstance(value, int)
    return value


def dead_address() -> tuple[str, int]:
    """A UDP port on 127.0.0.1 where nothing listens (bound, read, closed)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return "127.0.0.1", port


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def relay_children() -> list[int]:
    """Our child processes that run a relay (or a test's stand-in for one), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended while we looked
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"switch.media" in cmdline:
            children.append(int(entry.name))
    return children


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a bound against hanging, not a timing assertion)."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


# --- with real relay processes --------------------------------------------------------------------


def test_start_pings_every_relay() -> None:
    async def test() -> None:
        async with workers() as relays:
            assert len(relays.addresses) == 2 and len(relays.pids) == 2
            dead = dead_address()
            async with control([*relays.addresses, dead]) as media:
                stats = media.stats()
                assert stats["pings"] == 3 and stats["ping_failures"] == 1
                assert (stats["relays"], stats["relays_healthy"], stats["relays_unhealthy"]) \
                    == (3, 2, 1)
                assert media.pool.healthy() == relays.addresses
                pong = await media.request("p", {"command": "ping"})
                assert pong == {"result": "pong"}

    run(test)


def test_round_robin_across_calls_and_affinity_within_a_call() -> None:
    async def test() -> None:
        async with workers() as relays, control(relays.addresses) as media:
            calls = [f"rr-{n}" for n in range(6)]
            for call in calls:
                assert await media.request(call, offer(call)) is not None
            assert [await relay_calls(a) for a in relays.addresses] == [3, 3]
            assert [media.relay_of(c) for c in calls] == relays.addresses * 3
            # Every later request of a call goes to its relay: an answer anywhere else would be
            # an "Unknown call-id" error, a query there too.
            for call in calls:
                reply: Any = await media.request(call, answer(call))
                assert reply is not None and "sdp" in reply
                query: Any = await media.request(call, {"command": "query"})
                assert query is not None and set(query["tags"]) == {"a", "b"}
            assert [await relay_calls(a) for a in relays.addresses] == [3, 3]
            for call in calls:
                assert await media.request(call, delete(call)) is not None
                assert media.relay_of(call) is None
            assert [await relay_calls(a) for a in relays.addresses] == [0, 0]
            stats = media.stats()
            assert (stats["requests"], stats["failures"], stats["calls"]) == (24, 0, 0)

    run(test)


def test_one_calls_requests_run_in_the_order_asked() -> None:
    async def test() -> None:
        async with workers() as relays, control(relays.addresses) as media:
            # Started together, interleaved across 20 calls: each call's answer must find its
            # offer done, its query both parties, its delete the call still there.
            tasks = []
            for n in range(20):
                call = f"order-{n}"
                tasks.append([asyncio.create_task(media.request(call, command)) for command in
                              (offer(call), answer(call), {"command": "query"},
                               {"command": "delete", "call-id": call, "flags": ["fatal"]})])
            for offered, answered, queried, deleted in tasks:
                assert (await offered) is not None
                assert (await answered) is not None
                query: Any = await queried
                assert query is not None and set(query["tags"]) == {"a", "b"}
                assert (await deleted) is not None
            assert media.stats()["failures"] == 0
            assert media.stats()["calls"] == media.stats()["queued_calls"] == 0

    run(test)


def test_killed_relay_is_skipped_after_a_request_timeout() -> None:
    async def test() -> None:
        # Pings far apart: here it is the request's timeout that finds the dead relay.
        async with workers() as relays, control(relays.addresses, ping_interval=3600) as media:
            assert await media.request("doomed", offer("doomed")) is not None
            assert await media.request("fine", offer("fine")) is not None
            victim = media.relay_of("doomed")
            survivor = media.relay_of("fine")
            assert victim is not None and survivor is not None and victim != survivor
            os.kill(relays.pids[relays.addresses.index(victim)], signal.SIGKILL)

            assert await media.request("doomed", answer("doomed")) is None
            stats = media.stats()
            assert (stats["timeouts"], stats["relays_healthy"]) == (1, 1)
            # The call's relay is down: its next requests fail at once, without a send.
            assert await media.request("doomed", {"command": "query"}) is None
            assert await media.request("doomed", delete("doomed")) is None
            stats = media.stats()
            assert (stats["timeouts"], stats["unavailable"]) == (1, 2)
            assert media.relay_of("doomed") is None  # the delete forgot it all the same
            # New calls all go to the survivor; the survivor's call goes on.
            for n in range(4):
                assert await media.request(f"new-{n}", offer(f"new-{n}")) is not None
                assert media.relay_of(f"new-{n}") == survivor
            assert await media.request("fine", answer("fine")) is not None
            assert await relay_calls(survivor) == 5
            assert media.stats()["timeouts"] == 1

    run(test)


def test_killed_relay_is_found_by_the_pings() -> None:
    async def test() -> None:
        async with workers() as relays, control(relays.addresses, ping_interval=0.1) as media:
            victim, survivor = relays.addresses
            os.kill(relays.pids[0], signal.SIGKILL)
            await until(lambda: media.stats()["relays_unhealthy"] == 1, "the victim marked down")
            assert not media.pool.is_healthy(victim)
            for n in range(4):
                assert await media.request(f"c-{n}", offer(f"c-{n}")) is not None
                assert media.relay_of(f"c-{n}") == survivor
            stats = media.stats()
            assert stats["timeouts"] == 0 and stats["ping_failures"] >= 1

    run(test)


def test_no_healthy_relay_returns_none_at_once() -> None:
    async def test() -> None:
        async with control([dead_address(), dead_address()]) as media:
            assert media.stats()["relays_healthy"] == 0
            assert await media.request("c1", offer("c1")) is None
            assert await media.request("c1", delete("c1")) is None
            stats = media.stats()
            # Nothing was sent: no timeout, the requests were refused on the spot.
            assert (stats["unavailable"], stats["timeouts"], stats["failures"]) == (2, 0, 2)
            assert stats["calls"] == stats["queued_calls"] == 0
        async with control([]) as media:
            assert await media.request("c1", offer("c1")) is None
            assert media.stats()["unavailable"] == 1

    run(test)


def test_error_replies_return_none_and_keep_the_relay_healthy() -> None:
    async def test() -> None:
        async with workers(1) as relays, control(relays.addresses) as media:
            assert await media.request("nope", {"command": "query"}) is None  # unknown call-id
            assert await media.request("bad", {"command": "offer", "from-tag": "a",
                                               "sdp": "not an sdp"}) is None
            assert await media.request("nope", {"command": "no-such-command"}) is None
            stats = media.stats()
            assert (stats["errors"], stats["failures"], stats["relays_healthy"]) == (3, 3, 1)
            # A failed delete still forgets the call.
            fatal = {"command": "delete", "call-id": "nope", "flags": ["fatal"]}
            assert await media.request("nope", fatal) is None
            assert await media.request("bad", delete("bad")) is not None  # ok, with a warning
            assert media.stats()["calls"] == 0

    run(test)


def test_ten_thousand_calls_leave_no_state_behind() -> None:
    async def test() -> None:
        async with workers() as relays, control(relays.addresses) as media:
            async def call(n: int) -> None:
                call_id = f"leak-{n}"
                offered, deleted = await asyncio.gather(
                    media.request(call_id, offer(call_id)), media.request(call_id, delete(call_id)))
                assert offered is not None and deleted is not None

            # 40 calls at a time: 20 per relay, within each relay's 25 pairs.
            for first in range(0, 10_000, 40):
                await asyncio.gather(*(call(n) for n in range(first, first + 40)))
            stats = media.stats()
            assert (stats["requests"], stats["failures"]) == (20_000, 0)
            assert stats["calls"] == stats["queued_calls"] == 0
            assert media._affinity == {} and media._queues == {}
            for address in relays.addresses:
                assert await relay_calls(address) == 0
                assert await relay_ports_in_use(address) == 0

    run(test)


def test_stop_leaves_no_process() -> None:
    async def test() -> None:
        low, high = _range()
        relays = await start_workers(2, address="127.0.0.1", port_min=low, port_max=high)
        assert sorted(relay_children()) == sorted(relays.pids)
        await relays.stop()
        assert all(gone(pid) for pid in relays.pids)
        assert relays.running() == [] and relay_children() == []
        await relays.stop()  # twice is harmless

    run(test)


# --- workers that fail ----------------------------------------------------------------------------


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for the interpreter: ``body`` is sh, ``$REAL`` the real one."""
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\nREAL="{sys.executable}"\n{body}\n')
    script.chmod(0o755)
    return str(script)


def test_a_worker_that_cannot_start_stops_the_others(tmp_path: Path) -> None:
    low, high = _range()
    # Worker 0 is a real relay; worker 1 fails. (split_port_range gives worker 1 the upper half.)
    upper = low + 50
    python = fake_python(tmp_path, f'case "$*" in *"--port-min {upper} "*) '
                                   f'echo "boom: no relay today" >&2; exit 3;; esac\n'
                                   f'exec "$REAL" "$@"')

    async def test() -> None:
        with pytest.raises(RuntimeError) as raised:
            await start_workers(2, address="127.0.0.1", port_min=low, port_max=high,
                                python=python)
        message = str(raised.value)
        assert "media worker 1" in message and "exit status 3" in message
        assert "boom: no relay today" in message
        assert relay_children() == []

    run(test)


def test_bad_media_address_fails_with_the_relays_message() -> None:
    async def test() -> None:
        with pytest.raises(RuntimeError, match=r"cannot bind media address 192\.0\.2\.1"):
            # TEST-NET: not this machine's address, so the relay refuses to start (and binds no
            # media port: the range is never used).
            await start_workers(2, address="192.0.2.1", port_min=31000, port_max=31003)
        assert relay_children() == []

    run(test)


def test_a_worker_that_never_gets_ready_is_killed(tmp_path: Path) -> None:
    python = fake_python(tmp_path, 'exec "$REAL" -c "import time; time.sleep(60)" switch.media')

    async def test() -> None:
        with pytest.raises(RuntimeError, match="no ready line"):
            await start_workers(1, address="127.0.0.1", port_min=31000, port_max=31001,
                                python=python, ready_timeout=0.5)
        assert relay_children() == []

    run(test)


def test_stop_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    program = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "print('relay ready: ng 127.0.0.1:9 media 127.0.0.1 ports 1-2', flush=True); "
               "time.sleep(60)")
    python = fake_python(tmp_path, f'exec "$REAL" -c "{program}" switch.media')

    async def test() -> None:
        relays = await start_workers(1, address="127.0.0.1", port_min=31000, port_max=31001,
                                     python=python)
        assert relays.addresses == [("127.0.0.1", 9)]
        await relays.stop(timeout=0.2)
        assert gone(relays.pids[0]) and relay_children() == []

    run(test)


def test_port_range_too_small_for_the_workers() -> None:
    async def test() -> None:
        with pytest.raises(ValueError, match="fewer than 3 workers"):
            await start_workers(3, address="127.0.0.1", port_min=31000, port_max=31003)

    run(test)


# --- with a fake relay that holds replies back ----------------------------------------------------


class HoldingRelay(asyncio.DatagramProtocol):
    """Answers ``ok`` at once, except requests of call ``held`` until ``release`` is set."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[tuple[str, str]] = []  # (call-id, command), first sends only
        self.cookies: set[str] = set()
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message = decode_message(data)
        if message.cookie in self.cookies:
            return  # a retransmission: the first send is answered (or held) already
        self.cookies.add(message.cookie)
        call_id = str(message.body.get("call-id", ""))
        command = str(message.body.get("command"))
        self.seen.append((call_id, command))
        reply = encode_message(message.cookie, {"result": "pong" if command == "ping" else "ok"})
        if call_id == "held" and not self.release.is_set():
            self.held.set()
            asyncio.get_running_loop().create_task(self._later(reply, addr))
        else:
            assert self.transport is not None
            self.transport.sendto(reply, addr)

    async def _later(self, reply: bytes, addr: Any) -> None:
        await self.release.wait()
        assert self.transport is not None
        self.transport.sendto(reply, addr)


@contextlib.asynccontextmanager
async def holding_relay() -> AsyncIterator[tuple[HoldingRelay, tuple[str, int]]]:
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(
        HoldingRelay, local_addr=("127.0.0.1", 0))
    try:
        yield relay, transport.get_extra_info("sockname")[:2]
    finally:
        transport.close()


def test_a_call_waits_for_its_own_requests_only() -> None:
    async def test() -> None:
        async with holding_relay() as (relay, address), \
                control([address], timeout=WAIT) as media:
            first = asyncio.create_task(media.request("held", {"command": "offer"}))
            second = asyncio.create_task(media.request("held", {"command": "answer"}))
            await relay.held.wait()
            # Another call goes through while "held" waits for its offer's reply...
            assert await media.request("other", {"command": "offer"}) == {"result": "ok"}
            # ...and the held call's answer has not been sent: it waits for the offer.
            assert ("held", "answer") not in relay.seen and not first.done()
            assert media.stats()["queued_calls"] == 1
            relay.release.set()
            assert await first == {"result": "ok"} and await second == {"result": "ok"}
            held = [command for call, command in relay.seen if call == "held"]
            assert held == ["offer", "answer"]
            assert media.stats()["queued_calls"] == 0

    run(test)


def test_close_while_requests_wait_returns_none() -> None:
    async def test() -> None:
        async with holding_relay() as (relay, address):
            media = MediaControl([address], timeout=WAIT)
            await media.start()
            waiting = asyncio.create_task(media.request("held", {"command": "offer"}))
            queued = asyncio.create_task(media.request("held", {"command": "delete"}))
            await relay.held.wait()
            await media.close()
            assert await waiting is None and await queued is None
            stats = media.stats()
            assert stats["calls"] == stats["queued_calls"] == 0
            assert await media.request("x", {"command": "ping"}) is None

    run(test)
