"""The running switch: the asyncio shell around the B2BUA engine.

It owns what the engine must not: sockets (:mod:`switch.transport`), the clocks, the disk
(:class:`switch.cdrlog.CdrWriter`) and signals. The engine's ``now`` is the event loop's
monotonic clock (``loop.time()``), so the timer heap and the loop's own timers share one clock
and a wall-clock step (NTP, an operator) moves no SIP timer; wall-clock time reaches the engine
only as ``wall_offset`` (wall-clock minus monotonic), read when a CDR is stamped.

Every message goes to :meth:`Engine.receive`; the actions that come back are carried out in
order: :class:`Transmit` at once, :class:`Finish` after its CDR is durable.

Responses to the switch's own REGISTERs go to :class:`switch.upstream.Upstreams` (the switch
registering to its vendors), everything else to the engine; both share the one timer.

Signals: SIGTERM or SIGINT drains (every upstream registration is unregistered at once, new calls
get 503 ``shutdown``, calls in progress get ``shutdown_grace`` seconds to end, then BYE on both
legs; the unregisters' answers are awaited at most ``[sip] unregister_wait``; CDRs are flushed;
exit 0). SIGHUP reloads the configuration and the routing snapshot for new calls and registers to
vendors added, unregisters from vendors removed; a file that does not load is logged and the
switch keeps what it has. Listening addresses and the spool are fixed at start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from switch.admin import AdminServer, start_admin
from switch.admin_source import SwitchAdmin
from switch.b2bua import Action, Engine, Finish, Peer, Transmit
from switch.b2bua.tu import MediaRequest
from switch.cdrlog import CdrLog, CdrWriter, recover_spool
from switch.config import ConfigError, SwitchConfig, load_config
from switch.firewall import trusted_networks
from switch.guard import Screen
from switch.media.control import MediaControl
from switch.media.workers import Workers, start_workers
from switch.registrar import load_bindings, state_path
from switch.routing import SnapshotError, load_snapshot
from switch.sip import Message, ParseLimits, Response, TimerConfig
from switch.statefile import GroupSave, StateFile
from switch.transport import Address, Listener, Sender, Stats, UdpTransport, listen
from switch.upstream import Upstreams, save_status, status_path

__all__ = ["Switch", "parse_limits", "run"]

log = logging.getLogger("switch")

#: Seconds by which timer wake-ups are batched (see Switch._schedule).
TIMER_GRANULARITY = 0.01


class Switch:
    """One switch process: listeners, engine, CDR writer."""

    def __init__(self, config: SwitchConfig, config_path: str | Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stats = Stats()
        self.listeners: list[Listener] = []
        self.engine: Engine | None = None
        self.writer: CdrWriter | None = None
        self.cdr_errors = 0
        self._tcp: dict[Address, Sender] = {}  # TCP peer -> its connection, while it is open
        self._udp: UdpTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._finishing: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Event | None = None
        self._state = state_path(config)  # the registrar's bindings, next to the spool
        self.upstream: Upstreams | None = None  # the switch's own registrations to vendors
        self._status = status_path(config)
        self.media: MediaControl | None = None  # the relays calls' media goes through
        self._workers: Workers | None = None  # the relay processes this switch started
        self.screen: Screen | None = None  # the guard's layers before the parser ([guard])
        self.admin: SwitchAdmin | None = None  # what the admin API shows ([admin])
        self._admin_server: AdminServer | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Recover the spool, bind the listeners and start taking calls."""
        config = self.config
        snapshot = load_snapshot(config.routing_snapshot)
        recovered = recover_spool(config.spool_dir) if Path(config.spool_dir).exists() else None
        if recovered and recovered.files:
            log.warning("spool: cut %d half-written bytes off %d file(s) from an earlier run",
                        recovered.truncated_bytes, recovered.files)
        cdr_log = CdrLog(config.spool_dir, config.id,
                         rotate_seconds=config.cdr_rotate_seconds,
                         rotate_bytes=int(config.cdr_rotate_mb * (1 << 20)))
        self.writer = CdrWriter(cdr_log)
        local: dict[str, Peer] = {}
        limits = parse_limits(config)
        # Made even when [guard] enabled = false (it then lets everything through), so that a
        # SIGHUP can turn it on: the listeners keep the screen they were given at start.
        self.screen = screen = Screen(config.guard, gateways=_trusted(config))
        for item in config.sip_listen:
            found, _ = await listen([item], self._handler(item.transport), self.stats,
                                    limits=limits, on_close=self._tcp_closed,
                                    screen=screen.check)
            listener = found[0]
            self.listeners.append(listener)
            local.setdefault(item.transport, Peer(item.transport, *listener.address))
            if listener.udp is not None and self._udp is None:
                self._udp = listener.udp
        loop = self._loop = asyncio.get_running_loop()
        await self._start_media(local["udp"].host)
        # T1 is fixed at start, like the listeners: transactions in flight keep their timers.
        timers = TimerConfig(t1=config.sip.t1, t2=max(TimerConfig.t2, config.sip.t1))
        self.engine = Engine(config, snapshot, local=local, cdr_id=cdr_log.next_id, timers=timers,
                             wall_offset=lambda: time.time() - loop.time(),
                             media=self.media is not None)
        self.engine.observer = screen  # connlimit: the guard counts calls per source
        screen.vouched = self.engine.registrar.bindings.hosts  # registered gateways: trusted
        # Registrations survive a restart: live bindings come back, expired ones are dropped.
        try:
            self.engine.registrar.load(load_bindings(self._state, time.time() - loop.time(),
                                                     loop.time()))
        except (ValueError, KeyError, TypeError) as err:
            log.warning("registrations: %s unreadable (%s); starting without", self._state, err)
        self._stopping = asyncio.Event()
        self.upstream = Upstreams(config, local=local["udp"], ids=self.engine.ids,
                                  timers=self.engine.timer_config)
        self._upstream_do(self.upstream.start(self._now()))
        if config.admin.enabled:
            self.admin = SwitchAdmin(self, now=self._now)
            self._admin_server = await start_admin(config.admin, self.admin)
            log.info("admin API on http://%s:%s", *self._admin_server.address)
        self._ticker = loop.create_task(self._tick())

    async def _tick(self) -> None:
        # Runs until close() cancels it, once a second: expired registrations go (their
        # addresses stop being trusted by the guard, and the state file follows); the admin
        # API's calls-per-second sample; the relays' ports in use every few seconds (ng
        # statistics, so never on an admin request's path).
        while True:
            await asyncio.sleep(1.0)
            engine = self.engine
            if engine is not None and engine.registrar.expire(self._now()):
                engine.bindings_changed = True
                self._do([])
            admin = self.admin
            if admin is None:
                continue
            admin.tick()
            if self.media is not None and admin.ports_due():
                try:
                    admin.ports_in_use = await self.media.ports_in_use()
                except Exception:  # a bug: the figure stays as it was, the switch goes on
                    log.exception("media ports in use could not be read")

    async def _start_media(self, sip_host: str) -> None:
        """Start the local relay workers (or take ``[media] relays``) and the control client.

        Fixed at start, like the listeners: a reload does not add or remove relays."""
        media = self.config.media
        if not media.relayed:
            return
        if media.relays:
            relays = [(host.strip("[]"), int(port)) for host, _, port in
                      (relay.rpartition(":") for relay in media.relays)]
        else:
            self._workers = await start_workers(
                media.workers, address=media.address or sip_host, port_min=media.port_min,
                port_max=media.port_max)
            relays = list(self._workers.addresses)
        self.media = MediaControl(relays, timeout=media.ng_timeout)
        await self.media.start()
        log.info("media: %d relay(s) %s", len(relays),
                 " ".join(f"{host}:{port}" for host, port in relays))

    async def _media_request(self, request: MediaRequest) -> None:
        assert self.media is not None and self.engine is not None
        try:
            reply = await self.media.request(request.call_id, request.command)
        except Exception:  # a bug, not the relay's trouble: still the call must not hang
            log.exception("media request %s for %s failed", request.step, request.call_id)
            reply = None
        self._do(self.engine.media_result(request.token, reply, self._now()))

    def _handler(
            self, transport: str
    ) -> Callable[[Message, Address, Callable[[Message], None]], None]:
        tcp = transport == "tcp"

        def handle(message: Message, source: Address, reply: Callable[[Message], None]) -> None:
            if tcp:
                self._tcp[source] = reply
            assert self.engine is not None and self.upstream is not None
            if type(message) is Response and self.upstream.owns(message):
                self._upstream_do(self.upstream.receive(message, self._now()))
                return
            self._do(self.engine.receive(message, Peer(transport, source[0], source[1]),
                                         self._now()))

        return handle

    def _tcp_closed(self, source: Address, reply: Sender) -> None:
        # Only if the map still holds this connection's sender: a newer connection from the same
        # address may have taken its place.
        if self._tcp.get(source) == reply:
            del self._tcp[source]

    def _now(self) -> float:
        """The engine's ``now``: the loop's monotonic clock."""
        assert self._loop is not None
        return self._loop.time()

    def _send(self, message: Message, peer: Peer) -> None:
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.send(message, (peer.host, peer.port))
            return
        reply = self._tcp.get((peer.host, peer.port))
        if reply is None:
            log.debug("no TCP connection to %s:%s; message dropped", peer.host, peer.port)
            return
        reply(message)

    _saver: GroupSave | None = None  # the state file's group commit, made at the first save

    def _do(self, actions: list[Action]) -> None:
        if self.engine is not None and self.engine.bindings_changed:
            self._save_bindings()
        saver = self._saver
        if saver is not None and saver.pending:
            # Answers to REGISTER wait, in order, until the bindings are on disk: an answered
            # REGISTER is durable, and a retransmitted 200 cannot overtake the save either.
            # Calls go on meanwhile.
            held = [a for a in actions if self._answers_register(a)]
            if held:
                saver.after_saved(lambda: self._carry_out(held))
                actions = [a for a in actions if not self._answers_register(a)]
        self._carry_out(actions)
        self._schedule()

    @staticmethod
    def _answers_register(action: Action) -> bool:
        message = action.message if type(action) is Transmit else None
        return isinstance(message, Response) and (
            message.headers.get("cseq") or "").endswith("REGISTER")

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if type(action) is Transmit:
                self._send(action.message, action.peer)
                continue
            if type(action) is MediaRequest:
                work = self._media_request(action)
            else:
                assert isinstance(action, Finish)
                work = self._finish(action)
            # Both end in what close() waits for: a media reply may bring the call's CDR.
            task = asyncio.get_running_loop().create_task(work)
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    def _save_bindings(self) -> None:
        """Save the bindings by group commit (:mod:`switch.statefile`): one save at a time, in
        a worker thread; the changes made meanwhile go into the next one."""
        assert self.engine is not None and self._loop is not None
        self.engine.bindings_changed = False
        if self._saver is None:
            engine, loop = self.engine, self._loop
            self._saver = GroupSave(StateFile(self._state), lambda: (
                list(engine.registrar.bindings.values()), time.time() - loop.time()))
        task = self._saver.changed()
        if task is not None:  # close() waits for it, and for what it held, as for CDRs
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _finish(self, action: Finish) -> None:
        assert self.writer is not None
        try:
            await self.writer.write(action.record)
        except Exception:
            # Not durable, so not acknowledged: the peers' retransmissions and timers take over.
            self.cdr_errors += 1
            log.exception("CDR %s could not be written", action.record.get("cdr_id"))
            return
        for item in action.then:
            self._send(item.message, item.peer)

    def _upstream_do(self, actions: list[Transmit]) -> None:
        for action in actions:
            self._send(action.message, action.peer)
        assert self.upstream is not None and self._loop is not None
        if self.upstream.changed:
            self.upstream.changed = False
            try:
                save_status(self._status,
                            self.upstream.status(time.time() - self._loop.time()))
            except OSError:
                log.exception("upstream registration status could not be saved to %s",
                              self._status)
        self._schedule()

    def _schedule(self) -> None:
        assert self.engine is not None
        deadlines = [d for d in (self.engine.next_deadline(),
                                 self.upstream.next_deadline() if self.upstream else None)
                     if d is not None]
        deadline = min(deadlines, default=None)
        # Timers are batched to TIMER_GRANULARITY: at 1,000 calls/s thousands of transaction
        # deadlines fall due each second, and one wake-up per deadline costs more than the
        # timers themselves. SIP's shortest timer (T1, 500 ms) does not notice 10 ms.
        if deadline is None or deadline >= self._timer_at - TIMER_GRANULARITY:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        assert self._loop is not None
        # The deadline is on the loop's clock already: the loop can wake at it directly.
        when = max(deadline, self._loop.time() + TIMER_GRANULARITY)
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        assert self.engine is not None and self.upstream is not None
        self._upstream_do(self.upstream.handle_timers(self._now()))
        self._do(self.engine.handle_timers(self._now()))

    def reload(self) -> bool:
        """Re-read the configuration and snapshot (SIGHUP); keep the old ones on error."""
        assert self.engine is not None
        try:
            config = load_config(self.config_path) if self.config_path else self.config
            snapshot = load_snapshot(config.routing_snapshot)
        except (ConfigError, SnapshotError) as err:
            log.error("reload failed, keeping the running configuration: %s", err)
            return False
        if config.sip_listen != self.config.sip_listen or config.spool_dir != self.config.spool_dir:
            log.warning("reload: sip_listen and spool_dir changes apply at the next start")
        if config.admin != self.config.admin:
            log.warning("reload: [admin] changes apply at the next start")
        if config.guard.enabled != self.config.guard.enabled:
            log.info("reload: guard %s", "on" if config.guard.enabled else "off")
        self.config = config
        self.engine.reload(config, snapshot)
        if self.screen is not None:
            self.screen.reload(config.guard, gateways=_trusted(config))
        if self.upstream is not None:
            self._upstream_do(self.upstream.reload(config, self._now()))
        log.info("reloaded: %d customers, %d vendors, snapshot rates_at %s",
                 len(config.mapping_gateways), len(config.routing_gateways), snapshot.rates_at)
        return True

    def stop(self) -> None:
        """Begin the graceful stop (what SIGTERM does)."""
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self) -> None:
        """Run until :meth:`stop`, then drain and close."""
        assert self._stopping is not None and self.engine is not None
        await self._stopping.wait()
        engine = self.engine
        engine.drain()
        # Unregister first, so the carriers stop sending calls while the calls here drain.
        unregister_by = time.monotonic() + self.config.sip.unregister_wait
        assert self.upstream is not None
        self._upstream_do(self.upstream.unregister_all(self._now()))
        log.info("draining: %d active calls, grace %.0f s", engine.active_calls,
                 self.config.shutdown_grace)
        deadline = time.monotonic() + self.config.shutdown_grace
        while engine.active_calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if engine.active_calls:
            self._do(engine.hangup_all(self._now()))
        while self.upstream.pending and time.monotonic() < unregister_by:
            await asyncio.sleep(0.02)
        if self.upstream.pending:
            log.warning("unregister: %d upstream(s) did not answer within %.1f s",
                        self.upstream.pending, self.config.sip.unregister_wait)
        await self.close()

    async def close(self) -> None:
        """Flush CDRs, give the last BYEs a moment, close sockets."""
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)
        if self.engine is not None and len(self.engine.table):
            await asyncio.sleep(0.2)  # let the final BYEs and 200s leave and be answered
        if self.writer is not None:
            await self.writer.close()
        if self._timer is not None:
            self._timer.cancel()
        for listener in self.listeners:
            listener.close()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._admin_server is not None:
            await self._admin_server.close()
        if self.media is not None:
            await self.media.close()
        if self._workers is not None:
            await self._workers.stop()

    def counters(self) -> dict[str, int]:
        """What the switch refused, repaired and carried, by reason (zero counts left out).

        ``malformed.<kind>`` are messages the parser refused (docs/sip-parsing.md), the rest the
        engine's counters (calls, CDR reasons, requests it refused), ``registrar.*`` and
        ``guard.*`` the registrar's and its guard's (``guard.suspended_refused``: refused
        without the password being looked at), and ``cdr.*`` the writer's.
        """
        out: dict[str, int] = {"received": self.stats.received, "sent": self.stats.sent,
                               "screened": self.stats.screened}
        out.update({f"malformed.{kind}": n for kind, n in self.stats.malformed.items()})
        if self.stats.handler_errors:
            out["handler_errors"] = self.stats.handler_errors
        if self.engine is not None:
            out.update(self.engine.stats)
            registrar = self.engine.registrar
            out.update({f"registrar.{key}": n for key, n in registrar.stats.items()})
            out.update({f"guard.{key}": n for key, n in registrar.guard.stats.items()})
        if self.media is not None:
            out.update({f"media.{key}": n for key, n in self.media.stats().items()})
        if self.screen is not None:
            out.update({f"screen.{key}": n for key, n in self.screen.stats.items()})
        if self.writer is not None:
            out.update({"cdr.repaired": self.writer.log.repaired,
                        "cdr.rejected": self.writer.log.rejected})
        out["cdr.errors"] = self.cdr_errors
        return {key: n for key, n in sorted(out.items()) if n}

    def ready_line(self) -> str:
        """What the switch prints once it takes calls (SwitchProcess waits for it)."""
        where = " ".join(f"{item.listen.transport}:{item.address[0]}:{item.address[1]}"
                         for item in self.listeners)
        return f"switch {self.config.id} ready: {where}"


def _trusted(config: SwitchConfig) -> list[str]:
    # The kernel rules' trusted sources (firewall.trusted_networks): one list for both layers.
    return [str(network) for network in trusted_networks(config)]


def parse_limits(config: SwitchConfig) -> ParseLimits:
    r"""The parser's size limits from ``[sip]`` (fixed at start, like the listeners).

    >>> from switch.config import load_config_text
    >>> config = load_config_text('[switch]\nid = "s"\nsip_listen = ["udp:127.0.0.1:0"]\n'
    ...                           '[sip]\nmax_uri_bytes = 256\n')
    >>> parse_limits(config).max_uri_bytes, parse_limits(config).max_headers
    (256, 128)
    """
    sip = config.sip
    return ParseLimits(max_message_bytes=sip.max_message_bytes, max_headers=sip.max_headers,
                       max_header_bytes=sip.max_header_bytes, max_uri_bytes=sip.max_uri_bytes)


async def run(config_path: str | Path, *, on_ready: Callable[[Switch], None] | None = None) -> int:
    """Run the switch from a config file until SIGTERM/SIGINT; return the exit status."""
    config = load_config(config_path)
    switch = Switch(config, config_path)
    await switch.start()
    # Call state is freed by reference counting (no cycles); the cyclic collector only costs
    # pauses under load, and full collections over a large heap stall every call at once.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, switch.stop)
    loop.add_signal_handler(signal.SIGINT, switch.stop)
    loop.add_signal_handler(signal.SIGHUP, switch.reload)
    print(switch.ready_line(), flush=True)
    if on_ready is not None:
        on_ready(switch)
    await switch.serve()
    # Stopped: a repeated SIGTERM (a supervisor's retry) must not turn the clean exit into a
    # kill. Handlers the loop still holds are reset to the default (death) when it closes, so
    # take them from the loop first and ignore the signals for the rest of the exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    log.info("counters: %s", " ".join(f"{key}={n}" for key, n in switch.counters().items()))
    print(f"switch {config.id} stopped: {switch.engine.stats['calls'] if switch.engine else 0} "
          f"calls carried", flush=True)
    return 0
