"""The admin HTTP API over real loopback HTTP: access control, token, Prometheus exposition, bans.

The source is a small in-test class with known numbers; the HTTP server, the web access control
and the exposition are the real ones (the end-to-end test against a running switch is elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switch.admin import AdminError, AdminServer, Snapshot, start_admin
from switch.config_types import AdminSettings

SNAPSHOT = Snapshot(
    calls_by_result={"normal": 12, "no_route": 3, "cancelled": 1},
    cps=2.5,
    concurrent_calls=4,
    registrations=7,
    guard_drops={"options": 100, "scanner": 40, "hashlimit": 5},
    guard_bans={"recent": 2, "hashlimit": 1},
    banned_now=2,
    relay_ports_in_use=8,
    spool_lag_seconds=0.25,
    counters={"sip.requests_in": 250, "b2bua.calls": 16},
)


class Source:
    """An AdminSource with known numbers and two bans."""

    def __init__(self, snapshot: Snapshot = SNAPSHOT) -> None:
        self.snap = snapshot
        self.banned: dict[str, dict[str, object]] = {
            "192.0.2.66": {"ip": "192.0.2.66", "rule": "recent", "since": 1000.0,
                           "until": 1600.0, "remaining": 600.0},
            "2001:db8::1": {"ip": "2001:db8::1", "rule": "hashlimit", "since": 1000.0,
                            "until": 1600.0, "remaining": 600.0},
        }
        self.fail = False

    def snapshot(self) -> Snapshot:
        if self.fail:
            raise RuntimeError("the switch is confused")
        return self.snap

    def calls(self) -> list[dict[str, object]]:
        if self.fail:
            raise RuntimeError("the switch is confused")
        return [{"call_id": "c1", "customer": "acme", "state": "answered"}]

    def registrations(self) -> list[dict[str, object]]:
        return [{"aor": "sip:100@example.com", "contact": "sip:100@192.0.2.10:5060",
                 "expires": 3600}]

    def bans(self) -> list[dict[str, object]]:
        return list(self.banned.values())

    def lift(self, ip: str) -> bool:
        return self.banned.pop(ip, None) is not None


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


@asynccontextmanager
async def serving(source: Source | None = None,
                  **settings: Any) -> AsyncIterator[tuple[AdminServer, str]]:
    config = AdminSettings(**{"listen": "127.0.0.1:0", **settings})
    server = await start_admin(config, source or Source())
    try:
        yield server, server.url
    finally:
        await server.close()


@asynccontextmanager
async def client(source_ip: str = "127.0.0.2",
                 token: str | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """A session whose connections come from ``source_ip``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Parsed exposition: family name -> {(sample name, sorted labels): value}."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value
                            for s in family.samples}
    return out


def by_label(family: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {labels[0][1]: value for (_, labels), value in family.items()}


def test_allowed_client_gets_health_and_lists() -> None:
    async def test() -> None:
        async with serving() as (_, url), client("127.0.0.2") as session:
            status, body = await get(session, f"{url}/health")
            assert status == 200 and body["status"] == "ok" and body["uptime_seconds"] >= 0
            assert await get(session, f"{url}/calls") == (
                200, [{"call_id": "c1", "customer": "acme", "state": "answered"}])
            status, regs = await get(session, f"{url}/registrations")
            assert status == 200 and regs[0]["aor"] == "sip:100@example.com"
            status, bans = await get(session, f"{url}/guard")
            assert status == 200 and {b["ip"] for b in bans} == {"192.0.2.66", "2001:db8::1"}
    run(test)


def test_client_outside_allow_gets_403_and_is_counted() -> None:
    async def test() -> None:
        async with serving(allow=("127.0.0.2/32",)) as (server, url):
            async with client("127.0.0.3") as outsider:
                for path in ("/health", "/metrics", "/guard", "/nowhere"):
                    status, body = await get(outsider, url + path)
                    assert (status, body) == (403, {"error": "forbidden"}), path
                async with outsider.delete(f"{url}/guard/192.0.2.66") as response:
                    assert response.status == 403
            assert server.denied == 5
            async with client("127.0.0.2") as insider:
                status, text = await get(insider, f"{url}/metrics")
            assert status == 200
            denied = families(text)["ratelab_switch_admin_denied"]
            assert denied == {("ratelab_switch_admin_denied_total", ()): 5.0}
    run(test)


def test_bearer_token(tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text("correct horse battery staple\n# comment lines are ignored\n")

    async def test() -> None:
        async with serving(token_file=str(token_file)) as (_, url):
            for token in (None, "", "wrong", "correct horse battery stapl"):
                async with client(token=token) as session:
                    status, body = await get(session, f"{url}/health")
                    assert (status, body) == (401, {"error": "unauthorized"}), token
            async with client() as session, session.get(
                    f"{url}/health", headers={"Authorization": "Basic Zm9vOmJhcg=="}) as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
            async with client(token="correct horse battery staple") as session:
                assert (await get(session, f"{url}/health"))[0] == 200
                assert (await get(session, f"{url}/metrics"))[0] == 200
    run(test)


@pytest.mark.parametrize("content", [None, "", "\n", "   \nsecond line\n"])
def test_missing_or_empty_token_file_fails_at_start(tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "admin.token"
    if content is not None:
        token_file.write_text(content)

    async def test() -> None:
        with pytest.raises(AdminError, match="token_file"):
            await start_admin(AdminSettings(listen="127.0.0.1:0", token_file=str(token_file)),
                              Source())
    run(test)


@pytest.mark.parametrize(("settings", "match"), [
    ({"listen": "localhost:8080"}, "IP:PORT"),
    ({"listen": "127.0.0.1"}, "IP:PORT"),
    ({"listen": "127.0.0.1:70000"}, "IP:PORT"),
    ({"listen": ""}, "off"),
    ({"listen": "127.0.0.1:0", "allow": ("10.0.0.0/33",)}, "allow"),
])
def test_bad_settings_fail_at_start(settings: dict[str, Any], match: str) -> None:
    async def test() -> None:
        with pytest.raises(AdminError, match=match):
            await start_admin(AdminSettings(**settings), Source())
    run(test)


def test_metrics_parse_and_equal_the_snapshot() -> None:
    async def test() -> None:
        async with serving() as (_, url), client() as session, \
                session.get(f"{url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await response.text()
        parsed = families(text)
        assert by_label(parsed["ratelab_switch_calls"]) == SNAPSHOT.calls_by_result
        assert ("ratelab_switch_calls_total", (("result", "normal"),)) in \
            parsed["ratelab_switch_calls"]
        assert by_label(parsed["ratelab_switch_guard_drops"]) == SNAPSHOT.guard_drops
        assert by_label(parsed["ratelab_switch_guard_bans"]) == SNAPSHOT.guard_bans
        assert by_label(parsed["ratelab_switch_counter"]) == SNAPSHOT.counters
        assert ("ratelab_switch_counter_total", (("name", "sip.requests_in"),)) in \
            parsed["ratelab_switch_counter"]
        scalars = {name: values[(name, ())] for name, values in parsed.items()
                   if (name, ()) in values}
        assert scalars == {
            "ratelab_switch_cps": 2.5, "ratelab_switch_concurrent_calls": 4,
            "ratelab_switch_registrations": 7, "ratelab_switch_guard_banned": 2,
            "ratelab_switch_relay_ports_in_use": 8,
            "ratelab_switch_cdr_spool_lag_seconds": 0.25}
        assert parsed["ratelab_switch_admin_denied"] == {
            ("ratelab_switch_admin_denied_total", ()): 0.0}
        assert "# TYPE ratelab_switch_calls_total counter" in text
        assert "# TYPE ratelab_switch_cps gauge" in text
    run(test)


def test_relay_ports_absent_without_relay_and_scrapes_are_live() -> None:
    source = Source(replace(SNAPSHOT, relay_ports_in_use=None, calls_by_result={}))

    async def test() -> None:
        async with serving(source) as (_, url), client() as session:
            parsed = families((await get(session, f"{url}/metrics"))[1])
            assert "ratelab_switch_relay_ports_in_use" not in parsed
            assert parsed["ratelab_switch_calls"] == {}
            source.snap = replace(source.snap, concurrent_calls=99)  # read at scrape time
            parsed = families((await get(session, f"{url}/metrics"))[1])
            assert parsed["ratelab_switch_concurrent_calls"] == {
                ("ratelab_switch_concurrent_calls", ()): 99.0}
    run(test)


def test_delete_lifts_a_ban() -> None:
    source = Source()

    async def test() -> None:
        async with serving(source) as (_, url), client() as session:
            async with session.delete(f"{url}/guard/192.0.2.66") as response:
                assert (response.status, await response.json()) == (200, {"lifted": "192.0.2.66"})
            status, bans = await get(session, f"{url}/guard")
            assert status == 200 and [b["ip"] for b in bans] == ["2001:db8::1"]
            async with session.delete(f"{url}/guard/192.0.2.66") as response:
                assert response.status == 404
                assert "not banned" in (await response.json())["error"]
            # an IPv6 address in another spelling is the same address
            async with session.delete(f"{url}/guard/2001:DB8:0:0::1") as response:
                assert (response.status, await response.json()) == (200, {"lifted": "2001:db8::1"})
            assert (await get(session, f"{url}/guard")) == (200, [])
            for bad in ("not-an-ip", "192.0.2.300", "10.0.0.0%2F8"):
                async with session.delete(f"{url}/guard/{bad}") as response:
                    assert response.status == 400, bad
                    assert (await response.json())["error"].startswith("not an IP address")
    run(test)


def test_wrong_method_405_unknown_path_404() -> None:
    async def test() -> None:
        async with serving() as (_, url), client() as session:
            async with session.post(f"{url}/health") as response:
                assert response.status == 405
                assert (await response.json())["error"] == "method not allowed"
                assert "GET" in response.headers["Allow"]
            async with session.get(f"{url}/guard/192.0.2.66") as response:
                assert response.status == 405
            async with session.delete(f"{url}/calls") as response:
                assert response.status == 405
            for path in ("/", "/nowhere", "/metrics/extra", "/guard/1.2.3.4/x"):
                status, body = await get(session, url + path)
                assert (status, body) == (404, {"error": "not found"}), path
    run(test)


def test_a_failing_source_gives_500_and_the_server_keeps_serving(
        caplog: pytest.LogCaptureFixture) -> None:
    source = Source()

    async def test() -> None:
        async with serving(source) as (_, url), client() as session:
            source.fail = True
            with caplog.at_level(logging.ERROR, logger="switch.admin"):
                for path in ("/metrics", "/calls"):
                    status, body = await get(session, url + path)
                    assert (status, body) == (500, {"error": "internal error: RuntimeError"})
            assert "the switch is confused" in caplog.text
            assert (await get(session, f"{url}/health"))[0] == 200
            source.fail = False
            assert (await get(session, f"{url}/metrics"))[0] == 200
            assert (await get(session, f"{url}/calls"))[0] == 200
    run(test)


def test_ipv6_listener_and_allow() -> None:
    async def test() -> None:
        async with serving(listen="[::1]:0", allow=("::1/128",)) as (server, url):
            assert server.address[0] == "::1" and url.startswith("http://[::1]:")
            async with client("::1") as session:
                assert (await get(session, f"{url}/health"))[0] == 200
    run(test)


def test_close_frees_the_port() -> None:
    async def test() -> None:
        async with serving() as (server, _):
            host, port = server.address
        again = await start_admin(AdminSettings(listen=f"{host}:{port}"), Source())
        assert again.address == (host, port)
        await again.close()
    run(test)
