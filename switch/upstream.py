"""Registration to upstream carriers: the switch as a registering user agent, sans-IO.

A vendor with ``register_out = true`` wants the switch registered before it takes calls (its
address for us is the Contact we register). Per vendor, with VOS3000's names:

* ``register_expire`` (SS_SIP_USER_AGENT_EXPIRE): ``"auto"`` asks 3600 s and uses what the
  registrar grants; a number (20-7200) is asked. Either way the switch refreshes once 80% of the
  granted time has passed. A 423 is answered by asking the registrar's Min-Expires.
* ``register_retry_delay`` (SS_SIP_USER_AGENT_RETRY_DELAY, 60 s): the wait after a failure (a
  403 or any other final refusal, no answer within timer F, a challenge the credentials did
  not satisfy).
* 401 and 407 challenges are answered (MD5 or SHA-256, the first challenge we can answer) with
  ``register_user`` / ``register_password``; a second challenge to the same attempt is a
  failure unless it says ``stale=true``.
* ``[sip] register_privacy`` (SS_SIP_USER_AGENT_PRIVACY, :class:`~switch.config.Privacy`).
* ``[sip] send_unregister`` (SS_SIP_USER_AGENT_SEND_UNREGISTER): :meth:`Upstreams.unregister_all`
  sends ``Expires: 0`` (same Call-ID, next CSeq, same Contact) to every upstream the switch is
  or may be registered with, so the carrier stops sending calls to a switch that is gone. The
  shell waits for the answers at most ``unregister_wait`` seconds.

Every REGISTER of one upstream (first, challenge answers, refreshes, the unregister) shares one
Call-ID and counts CSeq up (RFC 3261 10.2.4). Pure: responses and ``now`` (monotonic) come in,
:class:`~switch.b2bua.Transmit` actions go out; timers are :meth:`Upstreams.next_deadline` and
:meth:`Upstreams.handle_timers`; :meth:`Upstreams.status` is the table the shell persists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from switch.b2bua import Ids, Peer, Transmit
from switch.config import Privacy, RoutingGateway, SwitchConfig
from switch.sip import (
    ClientTransaction,
    Deliver,
    DigestError,
    Headers,
    Request,
    Response,
    Send,
    TimedOut,
    TimerConfig,
    authorization,
    header_param,
    parse_auth_params,
    split_values,
)

__all__ = ["AUTO_EXPIRES", "REFRESH_AT", "UpstreamState", "UpstreamStatus", "Upstreams",
           "dump_status", "load_status", "load_status_text", "save_status", "status_path"]

#: What ``register_expire = "auto"`` asks for.
AUTO_EXPIRES = 3600
#: The fraction of the granted time after which the registration is refreshed.
REFRESH_AT = 0.8
_STATUS_FORMAT = "ratelab-switch-upstream/1"
_CHALLENGES = {401: ("WWW-Authenticate", "Authorization"),
               407: ("Proxy-Authenticate", "Proxy-Authorization")}


class UpstreamState(StrEnum):
    """Where one upstream registration stands."""

    REGISTERING = "registering"  # a REGISTER is out and the switch has never been registered
    REGISTERED = "registered"  # granted until ``registered_until`` (a refresh may be out)
    FAILING = "failing"  # the last attempt failed; the next one after the retry delay
    UNREGISTERING = "unregistering"  # Expires 0 sent, waiting for its answer
    UNREGISTERED = "unregistered"  # gone: unregistered, or stopped without sending


@dataclass(frozen=True)
class UpstreamStatus:
    """One row of the registrations table; times are on the clock given to :meth:`status`."""

    gateway: str
    server: str
    user: str
    state: UpstreamState
    registered_until: float | None
    failing_since: float | None
    last_answer: str


class _Upstream:
    """The mutable state of one upstream registration."""

    def __init__(self, gateway: RoutingGateway, call_id: str, from_tag: str) -> None:
        self.gateway = gateway
        host, _, port = gateway.registrar_address.rpartition(":")
        self.server = Peer("udp", host.strip("[]"), int(port))
        self.call_id = call_id
        self.from_tag = from_tag
        self.cseq = 0
        expire = gateway.register_expire
        self.asked = expire if isinstance(expire, int) else AUTO_EXPIRES
        self.state = UpstreamState.REGISTERING
        self.registered_until: float | None = None
        self.failing_since: float | None = None
        self.last_answer = ""
        self.tx: ClientTransaction | None = None
        self.expires = self.asked  # what the REGISTER in flight asks (0: unregister)
        self.challenged = False  # the attempt in flight already answered a challenge
        self.wake_at: float | None = None  # refresh or retry

    @property
    def key(self) -> tuple[str, str, str, int | str, float]:
        """What makes two configurations the same registration (a change re-registers)."""
        g = self.gateway
        return (g.register_user, g.register_password, g.registrar_address, g.register_expire,
                g.register_retry_delay)


def _order(u: _Upstream) -> tuple[str, bool]:
    return u.gateway.name, u.state is UpstreamState.UNREGISTERED  # the live one first


def _stale(challenge: str) -> bool:
    try:
        return parse_auth_params(challenge)[1].get("stale", "").lower() == "true"
    except DigestError:
        return False


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Upstreams:
    """Every ``register_out`` vendor's registration. See the module docstring.

    >>> from switch.config import load_config_text
    >>> config = load_config_text('''
    ... [switch]
    ... id = "sw1"
    ... sip_listen = ["udp:127.0.0.1:5060"]
    ... [[routing_gateway]]
    ... name = "carrier"
    ... address = "127.0.0.1:5090"
    ... prefixes = ["44"]
    ... register_out = true
    ... register_user = "ratelab"
    ... register_password = "secret"
    ... ''')
    >>> ua = Upstreams(config, local=Peer("udp", "127.0.0.1", 5060), ids=Ids("t"))
    >>> [sent] = ua.start(now=0.0)
    >>> sent.message.uri, sent.message.headers.get("Expires"), sent.peer
    ('sip:127.0.0.1:5090', '3600', Peer(transport='udp', host='127.0.0.1', port=5090))
    >>> [row.state for row in ua.status()]
    [<UpstreamState.REGISTERING: 'registering'>]
    """

    def __init__(self, config: SwitchConfig, *, local: Peer, ids: Ids | None = None,
                 timers: TimerConfig | None = None,
                 cnonce: Callable[[], str] | None = None) -> None:
        self.config = config
        self.local = local
        self.ids = ids or Ids()
        self.timers = timers
        self._cnonce = cnonce or (lambda: os.urandom(8).hex())
        self._active: dict[str, _Upstream] = {}  # gateway name -> its current registration
        self._by_call: dict[str, _Upstream] = {}  # Call-ID -> registration (also leaving ones)
        self._ended: dict[str, _Upstream] = {}  # gateway -> its last unregistered registration
        self.changed = False  # the status changed: the shell persists it and clears this
        self._stopped = False

    # --- outside controls ---------------------------------------------------------------------

    def start(self, now: float) -> list[Transmit]:
        """Register to every ``register_out`` vendor of the configuration."""
        out: list[Transmit] = []
        for gateway in self.config.routing_gateways:
            if gateway.register_out:
                self._add(gateway, now, out)
        return out

    def reload(self, config: SwitchConfig, now: float) -> list[Transmit]:
        """A new configuration: unregister vendors gone or changed, register new or changed."""
        self.config = config
        out: list[Transmit] = []
        if self._stopped:
            return out
        wanted = {g.name: g for g in config.routing_gateways if g.register_out}
        for name, u in list(self._active.items()):
            new = wanted.get(name)
            if new is not None:
                probe = _Upstream(new, u.call_id, u.from_tag)
                if probe.key == u.key:
                    u.gateway = new  # same registration; other vendor keys changed
                    continue
            del self._active[name]
            self._unregister(u, now, out)
        for name, gateway in wanted.items():
            if name not in self._active:
                self._add(gateway, now, out)
        return out

    def unregister_all(self, now: float) -> list[Transmit]:
        """The switch is stopping: Expires 0 to every upstream (none with send_unregister off)."""
        self._stopped = True
        out: list[Transmit] = []
        for u in list(self._active.values()):
            self._unregister(u, now, out)
        self._active.clear()
        return out

    @property
    def pending(self) -> int:
        """Unregistrations still waiting for their answer."""
        return sum(u.state is UpstreamState.UNREGISTERING for u in self._by_call.values())

    def status(self, clock_offset: float = 0.0) -> list[UpstreamStatus]:
        """Every registration (leaving and ended ones too), times moved by ``clock_offset``."""
        def moved(t: float | None) -> float | None:
            return None if t is None else t + clock_offset

        return [UpstreamStatus(u.gateway.name, u.gateway.registrar_address,
                               u.gateway.register_user, u.state, moved(u.registered_until),
                               moved(u.failing_since), u.last_answer)
                for u in sorted([*self._by_call.values(), *self._ended.values()], key=_order)]

    # --- input ----------------------------------------------------------------------------------

    def owns(self, response: Response) -> bool:
        """True when ``response`` answers one of our REGISTERs (by Call-ID)."""
        return (response.headers.get("Call-ID") or "") in self._by_call

    def receive(self, response: Response, now: float) -> list[Transmit]:
        """Handle a response :meth:`owns`; a stray one (an older attempt's) is ignored."""
        u = self._by_call.get(response.headers.get("Call-ID") or "")
        out: list[Transmit] = []
        if u is None or u.tx is None:
            return out
        try:
            outputs = u.tx.receive(response, now)
        except ValueError:  # another transaction's answer (a late one): nothing to do
            return out
        self._outputs(u, outputs, now, out)
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` has something to do next."""
        times = [t for u in self._by_call.values()
                 for t in (u.wake_at, u.tx.next_deadline() if u.tx is not None else None)
                 if t is not None]
        return min(times, default=None)

    def handle_timers(self, now: float) -> list[Transmit]:
        """Retransmit, time out, refresh and retry what is due."""
        out: list[Transmit] = []
        for u in list(self._by_call.values()):
            if u.tx is not None and (d := u.tx.next_deadline()) is not None and d <= now:
                self._outputs(u, u.tx.handle_timer(now), now, out)
            if u.wake_at is not None and u.wake_at <= now:
                u.wake_at = None
                u.challenged = False
                self._register(u, now, u.asked, out)
        return out

    # --- the machine ----------------------------------------------------------------------------

    def _add(self, gateway: RoutingGateway, now: float, out: list[Transmit]) -> None:
        u = _Upstream(gateway, self.ids.call_id(self.local.host), self.ids.tag())
        self._ended.pop(gateway.name, None)
        self._active[gateway.name] = u
        self._by_call[u.call_id] = u
        self._register(u, now, u.asked, out)

    def _unregister(self, u: _Upstream, now: float, out: list[Transmit]) -> None:
        registered = u.registered_until is not None and u.registered_until > now
        in_flight = u.tx is not None and not u.tx.terminated
        u.wake_at = None
        if self.config.sip.send_unregister and (registered or in_flight):
            u.state = UpstreamState.UNREGISTERING
            u.challenged = False
            self.changed = True
            self._register(u, now, 0, out)
        else:
            self._gone(u)

    def _gone(self, u: _Upstream) -> None:
        u.state = UpstreamState.UNREGISTERED
        u.registered_until = None
        u.tx = None
        self._by_call.pop(u.call_id, None)
        if u.gateway.name not in self._active:
            self._ended[u.gateway.name] = u
        self.changed = True

    def _register(self, u: _Upstream, now: float, expires: int, out: list[Transmit],
                  credentials: tuple[str, str] | None = None) -> None:
        u.cseq += 1
        u.expires = expires
        request = self._request(u, expires, credentials)
        u.tx = ClientTransaction(request, reliable=False, now=now, timers=self.timers)
        out += [Transmit(o.message, u.server) for o in u.tx.start() if type(o) is Send]

    def _request(self, u: _Upstream, expires: int,
                 credentials: tuple[str, str] | None) -> Request:
        g, local = u.gateway, self.local
        server = _host_text(u.server.host)
        aor = f"<sip:{g.register_user}@{server}>"
        headers = Headers()
        headers.add("Via", f"SIP/2.0/UDP {_host_text(local.host)}:{local.port};"
                           f"branch={self.ids.branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{aor};tag={u.from_tag}")
        headers.add("To", aor)
        headers.add("Call-ID", u.call_id)
        headers.add("CSeq", f"{u.cseq} REGISTER")
        headers.add("Contact", f"<sip:{g.register_user}@{_host_text(local.host)}:{local.port}>")
        headers.add("Expires", str(expires))
        privacy = self.config.sip.register_privacy
        if privacy is Privacy.ID:
            headers.add("Privacy", "id")
            headers.add("P-Preferred-Identity", aor)
        elif privacy is Privacy.NONE:
            headers.add("Privacy", "none")
        if credentials is not None:
            headers.add(*credentials)
        headers.add("User-Agent", "ratelab-switch")
        headers.add("Content-Length", "0")
        return Request("REGISTER", self._uri(u), headers)

    @staticmethod
    def _uri(u: _Upstream) -> str:
        return f"sip:{_host_text(u.server.host)}:{u.server.port}"

    def _outputs(self, u: _Upstream, outputs: Iterable[object], now: float,
                 out: list[Transmit]) -> None:
        for o in outputs:
            if type(o) is Send:
                out.append(Transmit(o.message, u.server))  # a retransmission
            elif type(o) is TimedOut:
                self._failed(u, now, "timeout")
            elif type(o) is Deliver and isinstance(o.message, Response) \
                    and o.message.status >= 200:
                self._answer(u, o.message, now, out)

    def _answer(self, u: _Upstream, response: Response, now: float,
                out: list[Transmit]) -> None:
        status = response.status
        answer = f"{status} {response.reason}".strip()
        if status in _CHALLENGES:
            credentials = self._credentials(u, response)
            if credentials is not None:
                u.challenged = True
                self._register(u, now, u.expires, out, credentials)
                return
        elif status == 423 and u.expires:
            wanted = (response.headers.get("Min-Expires") or "").strip()
            if wanted.isdigit() and u.expires < int(wanted) <= 2**31 - 1:
                u.asked = int(wanted)
                u.challenged = False
                self._register(u, now, u.asked, out)
                return
        elif 200 <= status < 300:
            if u.state is UpstreamState.UNREGISTERING:
                u.last_answer = answer
                self._gone(u)
                return
            granted = self._granted(u, response)
            if granted > 0:
                u.state = UpstreamState.REGISTERED
                u.registered_until = now + granted
                u.failing_since = None
                u.last_answer = answer
                u.wake_at = now + REFRESH_AT * granted
                u.tx = None
                self.changed = True
                return
            answer += " (no time granted)"
        self._failed(u, now, answer)

    def _credentials(self, u: _Upstream, response: Response) -> tuple[str, str] | None:
        challenge_header, answer_header = _CHALLENGES[response.status]
        values = response.headers.get_all(challenge_header)
        if u.challenged and not any(_stale(v) for v in values):
            return None  # our credentials were refused, not just the nonce
        for value in values:
            try:
                return answer_header, authorization(
                    value, username=u.gateway.register_user,
                    password=u.gateway.register_password, method="REGISTER",
                    uri=self._uri(u), cnonce=self._cnonce())
            except DigestError:
                continue  # an algorithm or qop we do not speak: the next challenge
        return None

    def _granted(self, u: _Upstream, response: Response) -> int:
        ours = f"sip:{u.gateway.register_user}@{_host_text(self.local.host)}:{self.local.port}"
        for value in response.headers.get_all("Contact"):
            for contact in split_values(value):
                start, end = contact.find("<"), contact.find(">")
                uri = contact[start + 1:end] if 0 <= start < end else contact.split(";")[0]
                raw = header_param(contact, "expires")
                if uri.strip() == ours and raw is not None and raw.strip().isdigit():
                    return int(raw.strip())
        raw = (response.headers.get("Expires") or "").strip()
        return int(raw) if raw.isdigit() else u.expires

    def _failed(self, u: _Upstream, now: float, answer: str) -> None:
        u.last_answer = answer
        u.tx = None
        if u.state is UpstreamState.UNREGISTERING:
            self._gone(u)  # nothing more to do: the binding expires by itself upstream
            return
        u.state = UpstreamState.FAILING
        if u.failing_since is None:
            u.failing_since = now
        if u.registered_until is not None and u.registered_until <= now:
            u.registered_until = None
        u.challenged = False
        u.wake_at = now + u.gateway.register_retry_delay
        self.changed = True


# --- the status file ------------------------------------------------------------------------


def status_path(config: SwitchConfig) -> Path:
    """Where the upstream registrations' status lives: next to the spool.

    >>> from switch.config import Listen
    >>> status_path(SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),),
    ...                          spool_dir=Path("data/spool")))
    PosixPath('data/sw1.upstream.json')
    """
    return Path(config.spool_dir).parent / f"{config.id}.upstream.json"


def dump_status(rows: Iterable[UpstreamStatus]) -> str:
    """The status file's text (times as given: the shell passes wall-clock ones).

    >>> row = UpstreamStatus("up", "127.0.0.1:5090", "u", UpstreamState.FAILING, None, 5.0,
    ...                      "403 Forbidden")
    >>> load_status_text(dump_status([row])) == [row]
    True
    """
    return json.dumps({"format": _STATUS_FORMAT, "upstream": [
        {"gateway": r.gateway, "server": r.server, "user": r.user, "state": str(r.state),
         "registered_until": r.registered_until, "failing_since": r.failing_since,
         "last_answer": r.last_answer} for r in rows]}, indent=1) + "\n"


def load_status_text(text: str) -> list[UpstreamStatus]:
    """The rows of a status file's text; ValueError when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != _STATUS_FORMAT:
        raise ValueError(f"not a {_STATUS_FORMAT} file")
    rows = []
    for d in data["upstream"]:
        until, since = d["registered_until"], d["failing_since"]
        rows.append(UpstreamStatus(str(d["gateway"]), str(d["server"]), str(d["user"]),
                                   UpstreamState(d["state"]),
                                   None if until is None else float(until),
                                   None if since is None else float(since),
                                   str(d["last_answer"])))
    return rows


def load_status(path: Path) -> list[UpstreamStatus]:
    """The rows of the status file; none when it does not exist."""
    try:
        return load_status_text(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []


def save_status(path: Path, rows: Iterable[UpstreamStatus]) -> None:
    """Replace the status file atomically (it is a report, not a ledger: no fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_status(rows), encoding="utf-8")
    os.replace(tmp, path)
