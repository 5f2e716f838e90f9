"""The registrar's state file by group commit (switch/statefile.py, Switch._do): a 200 to a
REGISTER leaves only once its binding is on disk, the REGISTERs that arrive while a save is in
flight are all covered by the next save, and other traffic is not held meanwhile."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from switch.config import load_config_text
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION
from switch.registrar import Binding, load_bindings, state_path
from switch.server import Switch
from switch.sip import Response, parse_message
from switch.sip.digest import authorization
from switch.statefile import GroupSave, StateFile

GATEWAYS = ("gw1", "gw2", "gw3")


def _binding(name: str, expires: float = 100.0) -> Binding:
    return Binding(name, f"sip:{name}@10.0.0.1:5060", "udp", "10.0.0.1", 5060, expires)


class BlockingFile(StateFile):
    """A state file whose saves wait for the test (in the worker thread) when told to."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saved: list[list[str]] = []
        self.block = threading.Event()    # set: the next save waits for release
        self.entered = threading.Event()  # a blocked save has begun
        self.release = threading.Event()

    def save(self, bindings: Iterable[Binding], wall_offset: float) -> None:
        bindings = list(bindings)
        if self.block.is_set():
            self.block.clear()
            self.entered.set()
            assert self.release.wait(10)
        super().save(bindings, wall_offset)
        self.saved.append(sorted(b.gateway for b in bindings))


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def test_changes_during_a_save_go_into_the_next_one_and_wait_for_it(tmp_path: Path) -> None:
    file = BlockingFile(tmp_path / "sw1.registrations.json")
    table: dict[str, Binding] = {}
    done: list[str] = []

    async def run() -> None:
        saver = GroupSave(file, lambda: (list(table.values()), 0.0), spacing=0.0)
        table["gw1"] = _binding("gw1")
        file.block.set()
        task = saver.changed()
        assert task is not None
        saver.after_saved(lambda: done.append("gw1"))
        await _until(file.entered.is_set, "the first save to begin")
        # Two changes while it is in flight: no second save starts, nothing is answered.
        table["gw2"] = _binding("gw2")
        assert saver.changed() is None
        saver.after_saved(lambda: done.append("gw2"))
        table["gw3"] = _binding("gw3")
        assert saver.changed() is None
        saver.after_saved(lambda: done.append("gw3"))
        await asyncio.sleep(0.05)
        assert done == [] and saver.pending
        file.release.set()
        await task
        assert not saver.pending

    asyncio.run(run())
    assert file.saved == [["gw1"], ["gw1", "gw2", "gw3"]]  # one save for both changes
    assert done == ["gw1", "gw2", "gw3"]
    assert load_bindings(file.path, 0.0, now=0.0) == [_binding(n) for n in GATEWAYS]


def test_a_failed_save_is_logged_and_releases_what_waited(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    file = StateFile(tmp_path / "not-a-dir" / "x.json")
    (tmp_path / "not-a-dir").write_text("a file where the directory should be")
    done: list[str] = []

    async def run() -> None:
        saver = GroupSave(file, lambda: ([_binding("gw1")], 0.0))
        task = saver.changed()
        saver.after_saved(lambda: done.append("answered"))
        assert task is not None
        await task

    asyncio.run(run())
    assert done == ["answered"]
    assert "registrations could not be saved" in caplog.text


def test_state_file_encodes_only_changed_bindings_and_follows_a_clock_step(
        tmp_path: Path) -> None:
    file = StateFile(tmp_path / "sw1.registrations.json")
    table = [_binding(n) for n in GATEWAYS]
    file.save(table, 1000.0)
    table[1] = _binding("gw2", expires=200.0)
    file.save(table, 1000.0 + 1e-6)  # the offset read again: noise, not a clock step
    assert file.encoded == 4
    assert [b.expires for b in load_bindings(file.path, 1000.0, now=0.0)] == [100.0, 200.0,
                                                                             100.0]
    file.save(table, 5000.0)  # the wall clock stepped: every line again
    assert file.encoded == 7
    assert [b.expires for b in load_bindings(file.path, 5000.0, now=0.0)] == [100.0, 200.0,
                                                                             100.0]
    file.save(table[:1], 5000.0)
    assert [b.gateway for b in load_bindings(file.path, 5000.0, now=0.0)] == ["gw1"]


# --- the running switch -------------------------------------------------------------------------

def _config(tmp_path: Path) -> str:
    snapshot = tmp_path / "routing.json"
    snapshot.write_text(json.dumps({"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION,
                                    "rates_at": "2026-11-26T00:00:00Z",
                                    "customers": {}, "vendors": {}}))
    return (f'[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:0"]\n'
            f'spool_dir = "{tmp_path / "spool"}"\nrouting_snapshot = "{snapshot}"\n'
            '[registrar]\ndigest_algorithms = ["MD5", "SHA-256"]\n'
            + "".join(f'[[mapping_gateway]]\nname = "{n}"\nauth = "password"\n'
                      f'password = "pw-{n}"\n' for n in GATEWAYS))


def _register(name: str, target: tuple[str, int], local: tuple[str, int], cseq: int,
              authorization_value: str | None = None) -> bytes:
    auth = f"Authorization: {authorization_value}\r\n" if authorization_value else ""
    return (f"REGISTER sip:{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK-{name}-{cseq}\r\n"
            f"From: <sip:{name}@{target[0]}>;tag=t-{name}\r\nTo: <sip:{name}@{target[0]}>\r\n"
            f"Call-ID: reg-{name}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{name}@{local[0]}:{local[1]}>\r\nExpires: 3600\r\n{auth}"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def _options(target: tuple[str, int], local: tuple[str, int]) -> bytes:
    return (f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK-ping\r\n"
            f"From: <sip:ping@{target[0]}>;tag=p\r\nTo: <sip:{target[0]}>\r\n"
            "Call-ID: ping\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def _answers(sock: socket.socket) -> list[Response]:
    out = []
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return out
        message = parse_message(data)
        assert isinstance(message, Response)
        out.append(message)


def test_switch_answers_a_register_only_once_its_binding_is_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files: list[BlockingFile] = []

    def blocking_file(path: Path) -> BlockingFile:
        files.append(BlockingFile(path))
        return files[-1]

    monkeypatch.setattr("switch.server.StateFile", blocking_file)
    config = load_config_text(_config(tmp_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    local = sock.getsockname()
    got: list[Response] = []

    def received(count: int) -> bool:
        got.extend(_answers(sock))
        return len(got) >= count

    async def answers(count: int, what: str) -> list[Response]:
        await _until(lambda: received(count), what)
        out = got[:count]
        del got[:count]
        return out

    async def run() -> None:
        switch = Switch(config)
        await switch.start()
        try:
            [listener] = switch.listeners
            target = listener.address[:2]
            # Challenges for all three first: while a save is pending nothing is answered.
            challenge: dict[str, str] = {}
            for name in GATEWAYS:
                sock.sendto(_register(name, target, local, 1), target)
                [c] = await answers(1, f"the 401 to {name}")
                assert c.status == 401
                challenge[name] = c.headers.get("www-authenticate") or ""

            def credentials(name: str) -> str:
                return authorization(challenge[name], username=name, password=f"pw-{name}",
                                     method="REGISTER", uri=f"sip:{target[0]}:{target[1]}",
                                     cnonce="c0ffee")

            [file] = files
            file.block.set()
            sock.sendto(_register("gw1", target, local, 2, credentials("gw1")), target)
            await _until(file.entered.is_set, "the save of gw1's binding to begin")
            registrar = switch.engine.registrar if switch.engine else None
            assert registrar is not None
            for name in ("gw2", "gw3"):
                sock.sendto(_register(name, target, local, 2, credentials(name)), target)
            await _until(lambda: {"gw2", "gw3"} <= set(registrar.bindings),
                         "the switch to bind gw2 and gw3")
            # Other traffic goes on while the save is in flight: an OPTIONS is answered.
            sock.sendto(_options(target, local), target)
            [pong] = await answers(1, "the 200 to OPTIONS")
            assert (pong.status, pong.headers.get("call-id")) == (200, "ping")
            await asyncio.sleep(0.05)
            assert _answers(sock) == []  # bound in memory, not on disk: REGISTERs unanswered
            saves = len(file.saved)
            file.release.set()
            ok = await answers(3, "the three 200s")
            assert [(r.status, r.headers.get("call-id")) for r in ok] == [
                (200, "reg-gw1"), (200, "reg-gw2"), (200, "reg-gw3")]
            # gw1's save, then one save for both REGISTERs that came while it was in flight
            assert file.saved[saves:] == [["gw1"], ["gw1", "gw2", "gw3"]]
            on_disk = load_bindings(state_path(config), 0.0, now=0.0)
            assert sorted(b.gateway for b in on_disk) == ["gw1", "gw2", "gw3"]
        finally:
            await switch.close()
            sock.close()

    asyncio.run(run())


# --- the registered-contact lookup (an index, not a scan) ----------------------------------------

def test_registered_at_follows_every_change_of_the_table() -> None:
    from switch.registrar import Registrar
    from switch.sip import NonceFactory

    base = '[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:5060"]\n'
    gw1, gw2 = (f'[[mapping_gateway]]\nname = "{n}"\nauth = "password"\npassword = "p"\n'
                for n in ("gw1", "gw2"))
    r = Registrar(load_config_text(base + gw1 + gw2), nonces=NonceFactory(b"0123456789abcdef"))

    def at(host: str, port: int, now: float = 0.0) -> str | None:
        return r.registered_at(host, port, now)

    r.load([Binding("gw1", "sip:gw1@10.0.0.1", "udp", "10.0.0.1", 5060, 100.0)])
    assert (at("10.0.0.1", 5060), at("10.0.0.1", 5061), at("10.0.0.1", 5060, 100.0)) == (
        "gw1", None, None)
    r.bindings["gw1"] = Binding("gw1", "sip:gw1@10.0.0.2", "udp", "10.0.0.2", 5070, 100.0)
    assert (at("10.0.0.1", 5060), at("10.0.0.2", 5070)) == (None, "gw1")  # moved
    r.bindings["gw2"] = Binding("gw2", "sip:gw2@10.0.0.2", "udp", "10.0.0.2", 5070, 150.0)
    assert at("10.0.0.2", 5070) == "gw1"  # two from one address: the first, as a scan finds
    assert at("10.0.0.2", 5070, now=120.0) == "gw2"  # gw1's has expired
    r.bindings.pop("gw1")
    assert at("10.0.0.2", 5070) == "gw2"
    r.reload(load_config_text(base + gw1))
    assert at("10.0.0.2", 5070) is None and r.bindings == {}  # gw2 no longer configured
    r.load([Binding("gw1", "sip:gw1@10.0.0.3", "udp", "10.0.0.3", 5060, 100.0)])
    assert r.expire(now=100.0) and at("10.0.0.3", 5060, now=0.0) is None
