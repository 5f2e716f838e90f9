"""The registrar: REGISTER from password gateways (RFC 3261 section 10), sans-IO.

Who may register: mapping gateways with ``auth = "password"`` and routing gateways with
``register_in = true``; the digest username is the gateway name (401 challenge, one
WWW-Authenticate per configured algorithm, RFC 8760). Rules, with VOS3000's names:

* ``register_replace`` (SS_ENDPOINT_REGISTER_REPLACE, on): a new contact replaces the gateway's
  binding; off, a different contact is refused (403) while the old binding lives. A refresh of
  the same contact is always accepted.
* ``register_retry`` (SS_ENDPOINT_REGISTER_RETRY, 6) and ``register_suspend``
  (SS_ENDPOINT_REGISTER_SUSPEND, 180 s): after that many failed authentications for one
  username, and separately from one source IP, every REGISTER and INVITE from it is refused
  (403) for the suspend time without the password being looked at (:class:`Guard`). Unknown
  usernames are counted and suspended the same way, so suspension tells nothing either.
* ``min_expires`` / ``max_expires``: shorter than the minimum (but not 0) is 423 with
  Min-Expires; longer is cut to the maximum. Expires 0 removes a binding, ``Contact: *`` with
  Expires 0 removes them all.

Pure: requests, the source address and ``now`` come in; a :class:`Reply` (status, headers to add,
a reason for logs) goes out, and :attr:`Registrar.bindings` is the table the shell persists.
"""

from __future__ import annotations

import json
import os
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, overload

from switch.config import RegistrarSettings, SwitchConfig
from switch.sip import NonceCounts, NonceFactory, Request, parse_auth_params, uri_of, verify
from switch.sip.digest import DigestError, challenges
from switch.sip.headers import header_param, split_values

__all__ = ["Binding", "Guard", "Registrar", "Reply", "load_bindings", "save_bindings",
           "state_path"]

_T = TypeVar("_T")

#: The most of a gateway's User-Agent the registrations table keeps.
USER_AGENT_CHARS = 64


@dataclass(frozen=True)
class Binding:
    """Where a gateway is: its Contact URI, the address the REGISTER came from, until when."""

    gateway: str
    contact: str
    transport: str
    host: str
    port: int
    expires: float  # on the engine's clock
    user_agent: str = ""  # the User-Agent of the REGISTER, cut to USER_AGENT_CHARS

    def as_dict(self) -> dict[str, object]:
        return {"gateway": self.gateway, "contact": self.contact, "transport": self.transport,
                "host": self.host, "port": self.port, "expires": self.expires,
                "user_agent": self.user_agent}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Binding:
        port, expires = d["port"], d["expires"]
        if not isinstance(port, int) or not isinstance(expires, int | float):
            raise ValueError("bad binding")
        return cls(str(d["gateway"]), str(d["contact"]), str(d["transport"]), str(d["host"]),
                   port, float(expires), str(d.get("user_agent", "")))  # older files: none


@dataclass(frozen=True)
class Reply:
    """What to answer: ``status`` and extra headers; ``reason`` is for logs, never the wire."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    reason: str = "ok"
    changed: bool = False  # the bindings changed: persist them


class Guard:
    """Failed-authentication counters and suspensions, per username and per source IP.

    >>> g = Guard(retry=2, suspend=10.0)
    >>> g.failed("gw", "1.2.3.4", now=0.0); g.suspended("gw", "9.9.9.9", now=1.0)
    False
    >>> g.failed("gw", "1.2.3.4", now=1.0); g.suspended("gw", "9.9.9.9", now=2.0)
    True
    >>> g.suspended("other", "1.2.3.4", now=2.0), g.suspended("gw", "9.9.9.9", now=11.0)
    (True, False)
    """

    def __init__(self, retry: int, suspend: float, max_entries: int = 100_000) -> None:
        self.retry = retry
        self.suspend = suspend
        self.max_entries = max_entries
        self._fails: OrderedDict[str, int] = OrderedDict()
        self._until: dict[str, float] = {}
        self.stats: Counter[str] = Counter()

    @staticmethod
    def _keys(username: str | None, ip: str) -> list[str]:
        return ([f"user:{username}"] if username is not None else []) + [f"ip:{ip}"]

    def suspended(self, username: str | None, ip: str, now: float) -> bool:
        """True while ``username`` or ``ip`` is suspended (counted in ``stats``)."""
        hit = False
        for key in self._keys(username, ip):
            until = self._until.get(key)
            if until is None:
                continue
            if now < until:
                hit = True
            else:  # suspension over: start counting afresh
                del self._until[key]
                self._fails.pop(key, None)
        if hit:
            self.stats["suspended_refused"] += 1
        return hit

    def failed(self, username: str | None, ip: str, now: float) -> None:
        """One failed authentication; suspends a key when it reaches ``retry``."""
        self.stats["auth_failed"] += 1
        for key in self._keys(username, ip):
            count = self._fails.pop(key, 0) + 1
            if count >= self.retry:
                self._until[key] = now + self.suspend
                self.stats["suspensions"] += 1
                continue
            self._fails[key] = count
            while len(self._fails) > self.max_entries:
                self._fails.popitem(last=False)
        if len(self._until) > self.max_entries:
            for key in [k for k, u in self._until.items() if u <= now]:
                del self._until[key]

    def succeeded(self, username: str | None, ip: str) -> None:
        for key in self._keys(username, ip):
            self._fails.pop(key, None)


def _expires_of(contact_value: str, default: int | None) -> int | None:
    raw = header_param(contact_value, "expires")
    if raw is None:
        return default
    raw = raw.strip()
    if not raw.isdigit():
        return default
    return min(int(raw), 2**31 - 1)


class BindingTable(dict[str, Binding]):
    """The bindings by gateway name, also indexed by the address each REGISTER came from, so
    that :meth:`Registrar.registered_at` (asked for INVITEs) does not scan every binding.

    The registrar changes it only with ``table[name] = b``, ``del table[name]`` and ``pop``,
    which keep the index. :meth:`at` checks each hit against the table, so a change made any
    other way can only make it miss (the INVITE is then challenged), never admit.

    >>> t = BindingTable()
    >>> t["gw1"] = Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0)
    >>> t.at("1.2.3.4", 5060, 0.0), t.at("1.2.3.4", 5061, 0.0), t.at("1.2.3.4", 5060, 100.0)
    ('gw1', None, None)
    >>> t["gw1"] = Binding("gw1", "sip:gw1@1.2.3.5", "udp", "1.2.3.5", 5060, 100.0)
    >>> t.at("1.2.3.4", 5060, 0.0), t.hosts
    (None, {'1.2.3.5': 1})
    >>> t.pop("gw1").host, t.at("1.2.3.5", 5060, 0.0), t == {}, t.hosts
    ('1.2.3.5', None, True, {})
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_source: dict[tuple[str, int], dict[str, None]] = {}  # names, in order
        #: Bindings per source IP: a registered gateway's address (``ip in table.hosts``), which
        #: the guard trusts while the binding is kept, as it trusts IP-authenticated gateways.
        self.hosts: dict[str, int] = {}

    def at(self, host: str, port: int, now: float) -> str | None:
        """The gateway whose live binding was made from ``host:port`` (the first indexed
        there when several were), or None."""
        for name in self._by_source.get((host, port), ()):
            b = self.get(name)
            if b is not None and b.host == host and b.port == port and b.expires > now:
                return b.gateway
        return None

    def _unindex(self, name: str) -> None:
        old = self.get(name)
        if old is None:
            return
        names = self._by_source.get((old.host, old.port))
        if names is not None:
            names.pop(name, None)
            if not names:
                del self._by_source[(old.host, old.port)]
        left = self.hosts.get(old.host, 0) - 1
        if left > 0:
            self.hosts[old.host] = left
        else:
            self.hosts.pop(old.host, None)

    def __setitem__(self, name: str, b: Binding) -> None:
        self._unindex(name)
        super().__setitem__(name, b)
        self._by_source.setdefault((b.host, b.port), {})[name] = None
        self.hosts[b.host] = self.hosts.get(b.host, 0) + 1

    def __delitem__(self, name: str) -> None:
        self._unindex(name)
        super().__delitem__(name)

    @overload
    def pop(self, name: str, /) -> Binding: ...
    @overload
    def pop(self, name: str, default: Binding, /) -> Binding: ...
    @overload
    def pop(self, name: str, default: _T, /) -> Binding | _T: ...

    def pop(self, name: str, /, *default: object) -> object:
        if name in self:
            self._unindex(name)
            return super().pop(name)
        if default:
            return default[0]
        raise KeyError(name)

    def clear(self) -> None:
        super().clear()
        self._by_source.clear()
        self.hosts.clear()


class Registrar:
    """Bindings per gateway name and the rules that change them.

    >>> from switch.config import load_config_text
    >>> cfg = load_config_text('[switch]\\nid = "sw1"\\nsip_listen = ["udp:127.0.0.1:5060"]\\n'
    ...     '[[mapping_gateway]]\\nname = "gw1"\\nauth = "password"\\npassword = "pw"\\n')
    >>> r = Registrar(cfg, nonces=NonceFactory(b"0123456789abcdef"))
    >>> sorted(r.accounts)
    ['gw1']
    """

    def __init__(self, config: SwitchConfig, *, nonces: NonceFactory,
                 counts: NonceCounts | None = None, guard: Guard | None = None,
                 bindings: Iterable[Binding] = ()) -> None:
        self.realm = config.id
        self.nonces = nonces
        self.counts = counts if counts is not None else NonceCounts()
        self.bindings = BindingTable()  # the table the shell persists
        self.stats: Counter[str] = Counter()
        self.guard = guard or Guard(config.registrar.register_retry,
                                    config.registrar.register_suspend)
        self.reload(config)
        self.load(bindings)

    def reload(self, config: SwitchConfig) -> None:
        self.settings: RegistrarSettings = config.registrar
        self.guard.retry = config.registrar.register_retry
        self.guard.suspend = config.registrar.register_suspend
        # name -> (password, challenge algorithms); mapping gateways first on a shared name
        self.accounts: dict[str, tuple[str, tuple[str, ...]]] = {}
        for vendor in config.routing_gateways:
            if vendor.register_in:
                self.accounts[vendor.name] = (vendor.password, vendor.digest_algorithms)
        for gw in config.mapping_gateways:
            if gw.auth == "password":
                self.accounts[gw.name] = (gw.password, gw.digest_algorithms)
        for name in [n for n in self.bindings if n not in self.accounts]:
            del self.bindings[name]

    # --- lookups ------------------------------------------------------------------------------

    def binding(self, gateway: str, now: float) -> Binding | None:
        """The live binding of ``gateway``, or None."""
        b = self.bindings.get(gateway)
        return b if b is not None and b.expires > now else None

    def registered_at(self, host: str, port: int, now: float) -> str | None:
        """The gateway whose live binding was made from ``host:port``, or None."""
        return self.bindings.at(host, port, now)

    def load(self, bindings: Iterable[Binding]) -> None:
        """Take bindings read at start (those of gateways no longer configured are left out)."""
        for b in bindings:
            if b.gateway in self.accounts:
                self.bindings[b.gateway] = b

    def expire(self, now: float) -> bool:
        """Drop expired bindings; True when any went."""
        gone = [n for n, b in self.bindings.items() if b.expires <= now]
        for name in gone:
            del self.bindings[name]
        return bool(gone)

    def table(self, now: float) -> list[Binding]:
        return sorted((b for b in self.bindings.values() if b.expires > now),
                      key=lambda b: b.gateway)

    # --- REGISTER -----------------------------------------------------------------------------

    def _challenge(self, algorithms: tuple[str, ...], now: float, *, stale: bool,
                   reason: str) -> Reply:
        self.stats["register_challenged"] += 1
        chs = challenges(realm=self.realm, nonces=self.nonces, now=now,
                         algorithms=algorithms or self.settings.digest_algorithms, stale=stale)
        return Reply(401, tuple(("WWW-Authenticate", c.header_value()) for c in chs), reason)

    def _refuse(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()
                ) -> Reply:
        self.stats[f"register_{reason.replace(' ', '_')}"] += 1
        return Reply(status, headers, reason)

    def register(self, req: Request, transport: str, ip: str, port: int, now: float) -> Reply:
        """Answer one REGISTER from ``transport:ip:port`` at ``now``."""
        value = req.headers.get("authorization")
        username: str | None = None
        parsed: tuple[str, dict[str, str]] | None = None
        if value is not None:
            try:
                parsed = parse_auth_params(value)
                username = parsed[1].get("username")
            except DigestError:
                username = None
        # Suspended: refused before the password is looked at.
        if self.guard.suspended(username, ip, now):
            return self._refuse(403, "suspended")
        if value is None:
            return self._challenge(self.settings.digest_algorithms, now, stale=False,
                                   reason="credentials asked")
        account = self.accounts.get(username or "")
        algorithms = (account[1] if account else ()) or self.settings.digest_algorithms
        verdict = verify(value, method="REGISTER", realm=self.realm, nonces=self.nonces,
                         now=now, password_for=lambda u: account[0] if account else None,
                         algorithms=algorithms, counts=self.counts, parsed=parsed)
        if verdict.stale:
            return self._challenge(algorithms, now, stale=True, reason="stale nonce")
        if not verdict.ok or username is None or account is None:
            self.guard.failed(username, ip, now)
            return self._refuse(403, "auth failed")
        self.guard.succeeded(username, ip)
        return self._bind(req, username, transport, ip, port, now)

    def _bind(self, req: Request, name: str, transport: str, ip: str, port: int,
              now: float) -> Reply:
        s = self.settings
        contacts = [c for v in req.headers.get_all("contact") for c in split_values(v)
                    if c.strip()]
        expires_header = (req.headers.get("expires") or "").strip()
        default = int(expires_header) if expires_header.isdigit() else s.max_expires
        changed = False
        current = self.binding(name, now)
        if any(c.strip() == "*" for c in contacts):
            if len(contacts) != 1 or default != 0:
                return self._refuse(400, "bad wildcard")
            changed = name in self.bindings
            self.bindings.pop(name, None)
            self.stats["register_removed"] += 1
            return Reply(200, (), "removed all", changed)
        if not contacts:  # a query
            self.stats["register_query"] += 1
            return Reply(200, self._contact_headers(current, now), "query")
        # Checked before anything changes, so a refused REGISTER changes nothing.
        wanted = [(uri_of(c), _expires_of(c, default) or 0) for c in contacts]
        if any(0 < e < s.min_expires for _, e in wanted):
            return self._refuse(423, "interval too brief", (("Min-Expires", str(s.min_expires)),))
        live = [(uri, e) for uri, e in wanted if e > 0]
        for uri, e in wanted:
            if e == 0 and current is not None and current.contact == uri:
                current = None
                changed = True
                self.stats["register_removed"] += 1
        if live:
            # One binding per gateway: the last contact given is the one kept.
            uri, e = live[-1]
            if current is not None and current.contact != uri and not s.register_replace:
                return self._refuse(403, "already registered")
            agent = "".join(ch if ch.isprintable() else "?"
                            for ch in (req.headers.get("user-agent") or "")[:USER_AGENT_CHARS])
            current = Binding(name, uri, transport, ip, port, now + min(e, s.max_expires), agent)
            changed = True
        if current is None:
            self.bindings.pop(name, None)
        else:
            self.bindings[name] = current
        self.stats["register_ok"] += 1
        return Reply(200, self._contact_headers(current, now), "ok", changed)

    @staticmethod
    def _contact_headers(b: Binding | None, now: float) -> tuple[tuple[str, str], ...]:
        if b is None:
            return ()
        return (("Contact", f"<{b.contact}>;expires={max(0, int(b.expires - now))}"),)


# --- the state file (the shell's part) ----------------------------------------------------------
# Bindings are kept on the engine's (monotonic) clock; the file holds wall-clock expiries so that
# they mean the same after a restart. Written whole to a temporary file, flushed and renamed over
# the old one, so a crash leaves either the old table or the new one.

STATE_FORMAT = "switch-registrations/1"


def state_path(config: SwitchConfig) -> Path:
    """Where the bindings live: next to the spool, named after the switch.

    >>> from switch.config import Listen
    >>> state_path(SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),),
    ...                         spool_dir=Path("data/spool")))
    PosixPath('data/sw1.registrations.json')
    """
    return Path(config.spool_dir).parent / f"{config.id}.registrations.json"


def binding_row(b: Binding, wall_offset: float) -> str:
    """One binding's line of the file: a JSON object, its expiry on the wall clock.

    >>> row = binding_row(Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0), 1000.0)
    >>> row[:40], json.loads(row)["expires"]
    ('{"gateway": "gw1", "contact": "sip:gw1@1', 1100.0)
    """
    return json.dumps(dict(b.as_dict(), expires=b.expires + wall_offset))


def state_text(rows: list[str]) -> str:
    """The file's text around the bindings' lines (:func:`binding_row`), one binding a line."""
    body = "\n" + ",\n".join(rows) + "\n" if rows else ""
    return f'{{"format": "{STATE_FORMAT}", "bindings": [{body}]}}\n'


def dump_bindings(bindings: Iterable[Binding], wall_offset: float) -> str:
    """The file's text; ``wall_offset`` is wall-clock minus the engine's clock.

    The shell writes it through :class:`switch.statefile.StateFile`, which keeps the lines of
    the bindings that did not change since its last save.
    """
    return state_text([binding_row(b, wall_offset)
                       for b in sorted(bindings, key=lambda b: b.gateway)])


def parse_bindings(text: str, wall_offset: float, now: float) -> list[Binding]:
    """The live bindings in a state file's text, back on the engine's clock (expired dropped).

    >>> b = Binding("gw1", "sip:gw1@1.2.3.4", "udp", "1.2.3.4", 5060, 100.0)
    >>> parse_bindings(dump_bindings([b], 1000.0), 2000.0, now=50.0)
    []
    >>> parse_bindings(dump_bindings([b], 1000.0), 1000.0, now=50.0) == [b]
    True
    """
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ValueError(f"not a {STATE_FORMAT} file")
    out = []
    for row in data.get("bindings", []):
        b = Binding.from_dict(row)
        b = replace(b, expires=b.expires - wall_offset)
        if b.expires > now:
            out.append(b)
    return out


def save_bindings(path: Path, bindings: Iterable[Binding], wall_offset: float) -> None:
    """Write the state file atomically (temporary file, fsync, rename, fsync the directory)."""
    write_state(path, dump_bindings(bindings, wall_offset))


def write_state(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_bindings(path: Path, wall_offset: float, now: float) -> list[Binding]:
    """The live bindings of the state file; none when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_bindings(text, wall_offset, now)
