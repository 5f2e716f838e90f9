"""The switch's admin HTTP API: health, Prometheus metrics, calls, registrations and bans.

``[admin] listen = "127.0.0.1:8080"`` turns it on (docs/admin.md). Endpoints:

``GET /health``
    ``{"status": "ok", "uptime_seconds": float}``.
``GET /metrics``
    Prometheus text exposition format 0.0.4, generated at scrape time from
    :meth:`AdminSource.snapshot` (names in :data:`METRICS`).
``GET /calls``, ``GET /registrations``, ``GET /guard``
    JSON lists: the calls in progress, the live registrar bindings, the current bans.
``DELETE /guard/{ip}``
    Lift a ban: 200 ``{"lifted": ip}``, 404 when the address was not banned, 400 when it is
    not an IP address.

Web access control (VOS3000's): a client whose address is not in ``[admin] allow`` gets 403
(counted in ``ratelab_switch_admin_denied_total``); with ``[admin] token_file`` set every request
also needs ``Authorization: Bearer <the file's first line>`` (401 otherwise). Errors are short
JSON objects ``{"error": ...}``: unknown paths 404, wrong methods 405, and an exception raised by
the source 500 (logged; the server keeps serving).

The switch provides an :class:`AdminSource`; :func:`start_admin` serves it:

>>> import asyncio
>>> class Idle:
...     def snapshot(self) -> Snapshot:
...         return Snapshot({}, 0.0, 0, 0, {}, {}, 0, None, 0.0, {})
...     def calls(self) -> list[dict[str, object]]:
...         return []
...     def registrations(self) -> list[dict[str, object]]:
...         return []
...     def bans(self) -> list[dict[str, object]]:
...         return []
...     def lift(self, ip: str) -> bool:
...         return False
>>> async def demo() -> list[str]:
...     server = await start_admin(AdminSettings(listen="127.0.0.1:0"), Idle())
...     host, port = server.address
...     reader, writer = await asyncio.open_connection(host, port)
...     writer.write(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
...     status = (await reader.readline()).decode().split()
...     writer.close()
...     await server.close()
...     return status[1:]
>>> asyncio.run(demo())
['200', 'OK']
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from switch.config_types import AdminSettings

__all__ = ["METRICS", "AdminError", "AdminServer", "AdminSource", "Snapshot", "SwitchCollector",
           "parse_listen", "read_token", "start_admin"]

log = logging.getLogger("switch.admin")

PREFIX = "ratelab_switch_"

#: Every metric family ``/metrics`` exposes: name (as written in the exposition), type, help.
METRICS: dict[str, tuple[str, str]] = {
    "ratelab_switch_calls_total": (
        "counter", "Calls since start by CDR disconnect reason (label result)."),
    "ratelab_switch_cps": ("gauge", "New calls per second over the last few seconds."),
    "ratelab_switch_concurrent_calls": ("gauge", "Calls in progress."),
    "ratelab_switch_registrations": ("gauge", "Live registrar bindings."),
    "ratelab_switch_guard_drops_total": (
        "counter", "Datagrams dropped by the guard, by rule (label rule)."),
    "ratelab_switch_guard_bans_total": ("counter", "Bans started by the guard, by rule."),
    "ratelab_switch_guard_banned": ("gauge", "Source addresses banned now."),
    "ratelab_switch_relay_ports_in_use": (
        "gauge", "Media relay ports in use (absent when media is not relayed)."),
    "ratelab_switch_cdr_spool_lag_seconds": (
        "gauge", "How long the oldest CDR not yet durable has waited (0 when none)."),
    "ratelab_switch_admin_denied_total": (
        "counter", "Admin API requests refused by web access control (403)."),
    "ratelab_switch_counter_total": (
        "counter", "Every other switch counter, by dotted name (label name)."),
}


class AdminError(ValueError):
    """The admin settings cannot be served: a bad listen address, CIDR or token file."""


@dataclass(frozen=True)
class Snapshot:
    """The switch's numbers at one moment, read by ``/metrics`` at every scrape."""

    calls_by_result: Mapping[str, int]  # CDR disconnect reason -> calls since start
    cps: float  # new calls per second, last few seconds
    concurrent_calls: int
    registrations: int  # live registrar bindings
    guard_drops: Mapping[str, int]  # guard rule -> datagrams dropped
    guard_bans: Mapping[str, int]  # guard rule -> bans started
    banned_now: int
    relay_ports_in_use: int | None  # None when media is not relayed
    spool_lag_seconds: float  # how long the oldest CDR not yet durable has waited; 0 when none
    counters: Mapping[str, int]  # every other switch counter, flat dotted names


class AdminSource(Protocol):
    """What the admin API reads from the switch. Called on the switch's event loop, so the
    methods may read its state directly; they should be quick (no I/O)."""

    def snapshot(self) -> Snapshot:
        """The numbers for ``/metrics``."""
        ...

    def calls(self) -> list[dict[str, object]]:
        """JSON-able, one per call in progress."""
        ...

    def registrations(self) -> list[dict[str, object]]:
        """JSON-able, one per live registrar binding."""
        ...

    def bans(self) -> list[dict[str, object]]:
        """``{"ip", "rule", "since", "until" (epoch seconds), "remaining"}`` per ban."""
        ...

    def lift(self, ip: str) -> bool:
        """End the ban of ``ip`` (normalised text form); False when there was none."""
        ...


class SwitchCollector:
    """A prometheus-client collector reading ``snapshot()`` at every collection.

    >>> snap = Snapshot({"normal": 3}, 1.5, 2, 1, {}, {}, 0, None, 0.0, {"sip.in": 7})
    >>> families = {m.name: m for m in SwitchCollector(lambda: snap, lambda: 4).collect()}
    >>> [(s.name, s.labels, s.value) for s in families["ratelab_switch_calls"].samples]
    [('ratelab_switch_calls_total', {'result': 'normal'}, 3)]
    >>> families["ratelab_switch_admin_denied"].samples[0].value
    4
    >>> "ratelab_switch_relay_ports_in_use" in families
    False
    """

    def __init__(self, snapshot: Callable[[], Snapshot], denied: Callable[[], int]) -> None:
        self._snapshot = snapshot
        self._denied = denied

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families of one snapshot (see :data:`METRICS`)."""
        snap = self._snapshot()

        def counter(name: str, label: str | None = None,
                    values: Mapping[str, int] | None = None,
                    value: float | None = None) -> CounterMetricFamily:
            help_text = METRICS[name][1]
            if label is None:
                return CounterMetricFamily(name, help_text, value=value)
            family = CounterMetricFamily(name, help_text, labels=[label])
            for key in sorted(values or {}):
                family.add_metric([key], (values or {})[key])
            return family

        def gauge(name: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, METRICS[name][1], value=value)

        yield counter("ratelab_switch_calls_total", "result", snap.calls_by_result)
        yield gauge("ratelab_switch_cps", snap.cps)
        yield gauge("ratelab_switch_concurrent_calls", snap.concurrent_calls)
        yield gauge("ratelab_switch_registrations", snap.registrations)
        yield counter("ratelab_switch_guard_drops_total", "rule", snap.guard_drops)
        yield counter("ratelab_switch_guard_bans_total", "rule", snap.guard_bans)
        yield gauge("ratelab_switch_guard_banned", snap.banned_now)
        if snap.relay_ports_in_use is not None:
            yield gauge("ratelab_switch_relay_ports_in_use", snap.relay_ports_in_use)
        yield gauge("ratelab_switch_cdr_spool_lag_seconds", snap.spool_lag_seconds)
        yield counter("ratelab_switch_admin_denied_total", value=self._denied())
        yield counter("ratelab_switch_counter_total", "name", snap.counters)


def parse_listen(text: str) -> tuple[str, int]:
    """``"IP:PORT"`` (``"[IPv6]:PORT"`` for IPv6) as ``(host, port)``; port 0 picks a free one.

    >>> parse_listen("127.0.0.1:8080"), parse_listen("[::1]:0")
    (('127.0.0.1', 8080), ('::1', 0))
    >>> parse_listen("localhost:80")
    Traceback (most recent call last):
    ...
    switch.admin.AdminError: [admin] listen must be IP:PORT, got 'localhost:80'
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise AdminError(f"[admin] listen must be IP:PORT, got {text!r}") from None
    if not sep or not 0 <= number <= 65535:
        raise AdminError(f"[admin] listen must be IP:PORT, got {text!r}")
    return str(address), number


def read_token(path: str | Path) -> str:
    """The bearer token: the first line of ``path``, stripped. A missing, unreadable or empty
    file is an :class:`AdminError`.

    >>> import tempfile
    >>> token = Path(tempfile.mkdtemp()) / "token"
    >>> _ = token.write_text("s3cret\\nignored\\n")
    >>> read_token(token)
    's3cret'
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise AdminError(f"[admin] token_file {str(path)!r} cannot be read: {err}") from None
    lines = text.splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise AdminError(f"[admin] token_file {str(path)!r}: the first line is empty")
    return token


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class AdminServer:
    """A running admin API (made by :func:`start_admin`). ``address`` is the (host, port)
    actually bound, ``url`` its ``http://`` base, ``denied`` the requests refused with 403."""

    def __init__(self, settings: AdminSettings, source: AdminSource) -> None:
        host, port = parse_listen(settings.listen)
        try:
            self.allow: tuple[_Network, ...] = tuple(
                ipaddress.ip_network(cidr, strict=False) for cidr in settings.allow)
        except ValueError as err:
            raise AdminError(f"[admin] allow: {err}") from None
        self._token = read_token(settings.token_file).encode() if settings.token_file else None
        self.settings = settings
        self.source = source
        self.denied = 0
        self.started = time.monotonic()
        self.address: tuple[str, int] = (host, port)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SwitchCollector(source.snapshot, lambda: self.denied))
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/health", self._health, allow_head=False)
        app.router.add_get("/metrics", self._metrics, allow_head=False)
        app.router.add_get("/calls", self._calls, allow_head=False)
        app.router.add_get("/registrations", self._registrations, allow_head=False)
        app.router.add_get("/guard", self._bans, allow_head=False)
        app.router.add_delete("/guard/{ip}", self._lift)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound address (IPv6 in brackets)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        """Bind and serve (``start_admin`` calls this)."""
        host, port = self.address
        await self._runner.setup()
        try:
            site = web.TCPSite(self._runner, host, port, reuse_address=True)
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        bound = self._runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        log.info("admin API listening on %s", self.url)

    async def close(self) -> None:
        """Stop serving and close the listening socket and open connections."""
        await self._runner.cleanup()

    def allowed(self, remote: str | None) -> bool:
        """True when ``remote`` (a client address) is in ``[admin] allow``."""
        if not remote:
            return False
        try:
            ip = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.allow)

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not self.allowed(request.remote):
            self.denied += 1
            log.debug("admin API: refused %s (not in [admin] allow)", request.remote)
            return _error(403, "forbidden")
        if self._token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), self._token):
                return _error(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return _error(exc.status, exc.reason.lower(), headers)
        except Exception as err:
            log.exception("admin API: %s %s failed", request.method, request.path)
            return _error(500, f"internal error: {type(err).__name__}")

    async def _health(self, request: web.Request) -> web.Response:
        uptime = round(time.monotonic() - self.started, 3)
        return web.json_response({"status": "ok", "uptime_seconds": uptime})

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    @staticmethod
    def _json(value: object) -> web.Response:
        return web.json_response(value, dumps=lambda v: json.dumps(v, default=str))

    async def _calls(self, request: web.Request) -> web.Response:
        return self._json(self.source.calls())

    async def _registrations(self, request: web.Request) -> web.Response:
        return self._json(self.source.registrations())

    async def _bans(self, request: web.Request) -> web.Response:
        return self._json(self.source.bans())

    async def _lift(self, request: web.Request) -> web.Response:
        text = request.match_info["ip"]
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            return _error(400, f"not an IP address: {text[:64]!r}")
        if not self.source.lift(ip):
            return _error(404, f"{ip} is not banned")
        log.info("admin API: ban of %s lifted by %s", ip, request.remote)
        return web.json_response({"lifted": ip})


async def start_admin(settings: AdminSettings, source: AdminSource) -> AdminServer:
    """Serve ``source`` on ``settings.listen``; the running :class:`AdminServer`.

    The token file is read and the CIDRs are checked here: a problem is an :class:`AdminError`
    before anything listens.

    >>> import asyncio
    >>> async def demo() -> str:
    ...     try:
    ...         await start_admin(AdminSettings(listen="127.0.0.1:0", token_file="/nonexistent"),
    ...                           None)  # type: ignore[arg-type]
    ...     except AdminError as err:
    ...         return str(err).split(":")[0]
    ...     return "started"
    >>> asyncio.run(demo())
    "[admin] token_file '/nonexistent' cannot be read"
    """
    if not settings.enabled:
        raise AdminError("[admin] listen is empty: the admin API is off")
    server = AdminServer(settings, source)
    await server.start()
    return server
