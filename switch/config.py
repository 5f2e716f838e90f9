"""The switch's TOML configuration: one loader, validated whole, errors that name key and problem.

Readable keys; ``docs/config.md`` maps each to the VOS3000 parameter it plays. Every problem
in a file is reported at once (like a deck import), as ``key: problem`` lines, so an operator
fixes them in one pass:

>>> load_config_text('''
... [switch]
... id = "sw1"
... sip_listen = ["udp:127.0.0.1:5060"]
... [[mapping_gateway]]
... name = "acme"
... addresses = ["127.0.0.1"]
... ''').mapping_gateways[0].cps_limit
30
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from switch.config_types import (
    DIGEST_ALGORITHMS,
    AdminSettings,
    GuardSettings,
    Listen,
    MappingGateway,
    MediaSettings,
    Privacy,
    RegistrarSettings,
    RoutingGateway,
    SipSettings,
    SwitchConfig,
)
from switch.media.crypto import Mode, check_key

__all__ = [
    "AdminSettings",
    "ConfigError",
    "GuardSettings",
    "Listen",
    "MappingGateway",
    "MediaSettings",
    "Privacy",
    "RegistrarSettings",
    "RoutingGateway",
    "SipSettings",
    "SwitchConfig",
    "encryption_of",
    "load_config",
    "load_config_text",
]

AUTH_MODES = ("ip", "ip_port", "password")


TRANSPORTS = ("udp", "tcp")
#: ``[sip]`` size limits: key -> (default, lowest, highest), all integers. 65535 is the most a
#: UDP datagram can carry; the floors keep a legitimate INVITE with SDP acceptable.
_SIP_LIMITS: dict[str, tuple[int, int, int]] = {
    "max_number_digits": (32, 1, 128),
    "max_message_bytes": (65535, 1024, 65535),
    "max_headers": (128, 16, 1024),
    "max_header_bytes": (8192, 256, 65535),
    "max_uri_bytes": (4096, 128, 65535),
}


class ConfigError(ValueError):
    """A configuration with problems; ``problems`` lists every one as ``key: problem``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


def load_config(path: str | Path) -> SwitchConfig:
    """Read and validate a TOML file; raise ``ConfigError`` listing every problem.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "switch.toml")
    >>> _ = open(path, "w").write('[switch]\\nid = "sw1"\\nsip_listen = ["udp:127.0.0.1:0"]\\n')
    >>> load_config(path).sip_listen[0].transport
    'udp'
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    return load_config_text(text, source=source)


def load_config_text(text: str, *, source: str = "<config>") -> SwitchConfig:
    """Validate TOML text (see :func:`load_config`).

    >>> try:
    ...     load_config_text('[switch]\\nid = ""\\nsip_listen = ["sctp:1.2.3.4:5060"]')
    ... except ConfigError as err:
    ...     print("\\n".join(err.problems))
    switch.id: must be a non-empty string
    switch.sip_listen[0]: transport must be udp or tcp, got 'sctp'
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    check = _Checker()
    config = _build(data, check)
    if check.problems:
        raise ConfigError(source, check.problems)
    assert config is not None
    return config


class _Checker:
    """Collects problems while reading values with the right types."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, problem: str) -> None:
        self.problems.append(f"{key}: {problem}")

    def unknown(self, table: dict[str, Any], known: set[str], where: str) -> None:
        for key in sorted(set(table) - known):
            self.fail(f"{where}.{key}" if where else key, "unknown key (misspelt?)")

    def string(self, table: dict[str, Any], key: str, where: str, default: str | None = None,
               *, empty: bool = False) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or (not empty and not value):
            self.fail(f"{where}.{key}", "must be a non-empty string" if not empty
                      else "must be a string")
            return default or ""
        return value

    def number(self, table: dict[str, Any], key: str, where: str, default: float, *,
               low: float, high: float, integer: bool = False) -> float:
        value = table.get(key, default)
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            self.fail(f"{where}.{key}", f"must be {'an integer' if integer else 'a number'}")
            return default
        if not low <= value <= high:
            self.fail(f"{where}.{key}", f"must be between {low:g} and {high:g}, got {value}")
            return default
        number: float = value  # an int or float, checked above
        return number

    def boolean(self, table: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", "must be true or false")
            return default
        return value

    def strings(self, table: dict[str, Any], key: str, where: str, *,
                required: bool = True) -> list[str]:
        value = table.get(key, [] if not required else None)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{where}.{key}", "must be a list of strings")
            return []
        if required and not value:
            self.fail(f"{where}.{key}", "must list at least one entry")
        return value


def _build(data: dict[str, Any], check: _Checker) -> SwitchConfig | None:
    check.unknown(data, {"switch", "sip", "mapping_gateway", "routing_gateway", "registrar",
                         "media", "guard", "admin"}, "")
    sw = data.get("switch")
    if not isinstance(sw, dict):
        check.fail("switch", "the [switch] table is required (id, sip_listen)")
        sw = {}
    check.unknown(sw, {"id", "sip_listen", "spool_dir", "routing_snapshot", "shutdown_grace",
                       "cdr_rotate_seconds", "cdr_rotate_mb"}, "switch")
    switch_id = check.string(sw, "id", "switch")
    listens = []
    for k, text in enumerate(check.strings(sw, "sip_listen", "switch")):
        listen = _listen(text, f"switch.sip_listen[{k}]", check)
        if listen is not None:
            listens.append(listen)
    if len(set(listens)) != len(listens):
        check.fail("switch.sip_listen", "lists the same address twice")
    spool = check.string(sw, "spool_dir", "switch", "data/spool")
    snapshot = check.string(sw, "routing_snapshot", "switch", "data/routing.json")
    grace = check.number(sw, "shutdown_grace", "switch", 10.0, low=0, high=3600)
    rotate_seconds = check.number(sw, "cdr_rotate_seconds", "switch", 300.0, low=1, high=86400)
    rotate_mb = check.number(sw, "cdr_rotate_mb", "switch", 64.0, low=0.001, high=4096)
    if listens and not any(item.transport == "udp" for item in listens):
        check.fail("switch.sip_listen", "needs a udp: address (vendor legs use UDP)")
    media_table = data.get("media", {})
    first_udp = next((item.host for item in listens if item.transport == "udp"), "")
    if isinstance(media_table, dict) and first_udp in ("0.0.0.0", "::") \
            and not media_table.get("address") and not media_table.get("relays") \
            and media_table.get("workers", 1):
        check.fail("media.address", f"is required when the switch listens on {first_udp}: the "
                                    "relays must advertise an address peers can reach")

    sip = data.get("sip", {})
    if not isinstance(sip, dict):
        check.fail("sip", "must be a table")
        sip = {}
    check.unknown(sip, {"invite_timeout", "call_progress_timeout",
                        "stop_gateway_after_invite_timeout", "stop_gateway_period",
                        "register_privacy", "send_unregister", "unregister_wait", "t1",
                        *_SIP_LIMITS}, "sip")
    privacy = sip.get("register_privacy", "ignore")
    if privacy not in set(Privacy):
        check.fail("sip.register_privacy",
                   f"must be one of {', '.join(Privacy)}, got {privacy!r}")
        privacy = "ignore"
    settings = SipSettings(
        invite_timeout=check.number(sip, "invite_timeout", "sip", 8.0, low=1, high=300),
        call_progress_timeout=check.number(sip, "call_progress_timeout", "sip", 60.0,
                                           low=1, high=3600),
        stop_gateway_after_invite_timeout=check.boolean(
            sip, "stop_gateway_after_invite_timeout", "sip", False),
        stop_gateway_period=check.number(sip, "stop_gateway_period", "sip", 60.0,
                                         low=1, high=86400),
        **{key: int(check.number(sip, key, "sip", default, low=low, high=high, integer=True))
           for key, (default, low, high) in _SIP_LIMITS.items()},
        register_privacy=Privacy(privacy),
        send_unregister=check.boolean(sip, "send_unregister", "sip", True),
        unregister_wait=check.number(sip, "unregister_wait", "sip", 5.0, low=0, high=60),
        t1=check.number(sip, "t1", "sip", 0.5, low=0.05, high=4.0),
    )
    registrar = _registrar(data, check)
    media = _media(data, check)
    guard = _guard(data, check)
    admin = _admin(data, check)
    customers = _tables(data, "mapping_gateway", check)
    vendors = _tables(data, "routing_gateway", check)
    mapping = tuple(g for g in (_mapping(t, f"mapping_gateway[{k}]", check)
                                for k, t in enumerate(customers)) if g is not None)
    routing = tuple(g for g in (_routing(t, f"routing_gateway[{k}]", check)
                                for k, t in enumerate(vendors)) if g is not None)
    for kind, gateways in (("mapping_gateway", mapping), ("routing_gateway", routing)):
        names = [g.name for g in gateways]
        for name in sorted({n for n in names if names.count(n) > 1}):
            check.fail(kind, f"name {name!r} is used twice")
    config = SwitchConfig(
        id=switch_id, sip_listen=tuple(listens), spool_dir=Path(spool),
        routing_snapshot=Path(snapshot), shutdown_grace=grace,
        cdr_rotate_seconds=rotate_seconds, cdr_rotate_mb=rotate_mb, sip=settings,
        mapping_gateways=mapping, routing_gateways=routing, registrar=registrar, media=media,
        guard=guard, admin=admin,
    )
    legs: list[tuple[str, MappingGateway | RoutingGateway]] = [
        *((f"mapping_gateway[{k}]", g) for k, g in enumerate(mapping)),
        *((f"routing_gateway[{k}]", g) for k, g in enumerate(routing))]
    for where, g in legs:
        mode, key = encryption_of(config, g)
        try:
            check_key(Mode(mode), key)
        except ValueError as err:
            check.fail(where, f"{g.name!r}: {err} (rtp_encryption / rtp_key, or [media] "
                              f"rtp_encryption_mode / rtp_encryption_key)")
    return config


def _algorithms(t: dict[str, Any], where: str, check: _Checker,
                default: tuple[str, ...]) -> tuple[str, ...]:
    if "digest_algorithms" not in t:
        return default
    names = check.strings(t, "digest_algorithms", where, required=bool(default))
    for k, name in enumerate(names):
        if name not in DIGEST_ALGORITHMS:
            check.fail(f"{where}.digest_algorithms[{k}]",
                       f"must be one of {', '.join(DIGEST_ALGORITHMS)}, got {name!r}")
    if len(set(names)) != len(names):
        check.fail(f"{where}.digest_algorithms", "lists the same algorithm twice")
    return tuple(n for n in names if n in DIGEST_ALGORITHMS) or default


def encryption_of(config: SwitchConfig, gateway: MappingGateway | RoutingGateway
                  ) -> tuple[int, bytes]:
    r"""The RTP payload encryption of a gateway's leg: (mode, key bytes), [media] filling in.

    >>> config = load_config_text('[switch]\nid = "s"\nsip_listen = ["udp:127.0.0.1:0"]\n'
    ...     '[media]\nrtp_encryption_mode = 1\nrtp_encryption_key = "k"\n'
    ...     '[[mapping_gateway]]\nname = "a"\naddresses = ["127.0.0.1"]\nrtp_encryption = 0\n')
    >>> encryption_of(config, config.mapping_gateways[0])
    (0, b'k')
    """
    media = config.media
    mode = media.rtp_encryption_mode if gateway.rtp_encryption is None else gateway.rtp_encryption
    key = media.rtp_encryption_key if gateway.rtp_key is None else gateway.rtp_key
    return mode, key.encode("utf-8")


def _media(data: dict[str, Any], check: _Checker) -> MediaSettings:
    media = data.get("media", {})
    if not isinstance(media, dict):
        check.fail("media", "must be a table")
        media = {}
    check.unknown(media, {f.name for f in fields(MediaSettings)}, "media")
    relays = check.strings(media, "relays", "media", required=False)
    for k, relay in enumerate(relays):
        _address(relay, f"media.relays[{k}]", check)
    address = check.string(media, "address", "media", "", empty=True)
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            check.fail("media.address", f"must be an IP address, got {address!r}")
    low = int(check.number(media, "port_min", "media", 10000, low=1024, high=65534,
                           integer=True))
    high = int(check.number(media, "port_max", "media", 20000, low=1025, high=65535,
                            integer=True))
    workers = int(check.number(media, "workers", "media", 1, low=0, high=64, integer=True))
    if high - low + 1 < 2 * max(workers, 1):
        check.fail("media.port_max", f"the range {low}-{high} has no port pair per worker")
    return MediaSettings(
        workers=0 if relays else workers, relays=tuple(relays), address=address,
        port_min=low, port_max=high,
        media_timeout=check.number(media, "media_timeout", "media", 60.0, low=0, high=86400),
        ng_timeout=check.number(media, "ng_timeout", "media", 1.0, low=0.05, high=30),
        rtp_encryption_mode=int(check.number(media, "rtp_encryption_mode", "media", 0, low=0,
                                             high=3, integer=True)),
        rtp_encryption_key=check.string(media, "rtp_encryption_key", "media", "", empty=True),
    )


def _encryption(t: dict[str, Any], where: str, check: _Checker) -> dict[str, Any]:
    """A gateway's own ``rtp_encryption`` / ``rtp_key`` (absent: the [media] defaults)."""
    mode = None
    if "rtp_encryption" in t:
        mode = int(check.number(t, "rtp_encryption", where, 0, low=0, high=3, integer=True))
    key = check.string(t, "rtp_key", where, "", empty=True) if "rtp_key" in t else None
    return {"rtp_encryption": mode, "rtp_key": key}


def _registrar(data: dict[str, Any], check: _Checker) -> RegistrarSettings:
    reg = data.get("registrar", {})
    if not isinstance(reg, dict):
        check.fail("registrar", "must be a table")
        reg = {}
    check.unknown(reg, {"digest_algorithms", "register_replace", "register_retry",
                        "register_suspend", "min_expires", "max_expires"}, "registrar")
    low = int(check.number(reg, "min_expires", "registrar", 60, low=1, high=86400,
                           integer=True))
    high = int(check.number(reg, "max_expires", "registrar", 3600, low=1, high=604800,
                            integer=True))
    if high < low:
        check.fail("registrar.max_expires", f"must not be below min_expires ({low})")
    return RegistrarSettings(
        digest_algorithms=_algorithms(reg, "registrar", check, DIGEST_ALGORITHMS),
        register_replace=check.boolean(reg, "register_replace", "registrar", True),
        register_retry=int(check.number(reg, "register_retry", "registrar", 6, low=1,
                                        high=1000, integer=True)),
        register_suspend=check.number(reg, "register_suspend", "registrar", 180.0, low=0,
                                      high=86400),
        min_expires=low, max_expires=high,
    )


def _section(data: dict[str, Any], name: str, check: _Checker, known: type) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        check.fail(name, "must be a table")
        return {}
    check.unknown(table, {f.name for f in fields(known)}, name)
    return table


def _networks(table: dict[str, Any], key: str, where: str, check: _Checker,
              default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """CIDRs (or bare addresses), each checked, kept as written."""
    if key not in table:
        return default
    texts = check.strings(table, key, where, required=False)
    for k, text in enumerate(texts):
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            check.fail(f"{where}.{key}[{k}]", f"must be an address or CIDR, got {text!r}")
    return tuple(texts)


def _guard(data: dict[str, Any], check: _Checker) -> GuardSettings:
    g = _section(data, "guard", check, GuardSettings)
    d = GuardSettings()

    def count(key: str, default: int, low: int, high: int) -> int:
        return int(check.number(g, key, "guard", default, low=low, high=high, integer=True))

    agents = d.scanner_agents
    if "scanner_agents" in g:
        agents = tuple(check.strings(g, "scanner_agents", "guard", required=False))
        if any(not agent.strip() for agent in agents):
            check.fail("guard.scanner_agents", "must not hold an empty name")
    return GuardSettings(
        enabled=check.boolean(g, "enabled", "guard", d.enabled),
        trusted=_networks(g, "trusted", "guard", check),
        trust_gateways=check.boolean(g, "trust_gateways", "guard", d.trust_gateways),
        drop_options_from_untrusted=check.boolean(g, "drop_options_from_untrusted", "guard",
                                                  d.drop_options_from_untrusted),
        drop_register_from_untrusted=check.boolean(g, "drop_register_from_untrusted", "guard",
                                                   d.drop_register_from_untrusted),
        drop_unserved=check.boolean(g, "drop_unserved", "guard", d.drop_unserved),
        scanner_agents=agents,
        recent_hits=count("recent_hits", d.recent_hits, 1, 1_000_000),
        recent_seconds=check.number(g, "recent_seconds", "guard", d.recent_seconds, low=1,
                                    high=86400),
        rate=check.number(g, "rate", "guard", d.rate, low=0.1, high=1_000_000),
        burst=count("burst", d.burst, 1, 1_000_000),
        dialogs_per_ip=count("dialogs_per_ip", d.dialogs_per_ip, 1, 1_000_000),
        dialogs_per_24=count("dialogs_per_24", d.dialogs_per_24, 1, 1_000_000),
        ban_time=check.number(g, "ban_time", "guard", d.ban_time, low=0, high=30 * 86400),
        max_sources=count("max_sources", d.max_sources, 1000, 100_000_000),
        untrusted_rate=check.number(g, "untrusted_rate", "guard", d.untrusted_rate, low=0,
                                    high=10_000_000),
    )


def _admin(data: dict[str, Any], check: _Checker) -> AdminSettings:
    a = _section(data, "admin", check, AdminSettings)
    listen = check.string(a, "listen", "admin", "", empty=True)
    if listen:
        _address(listen, "admin.listen", check)
    return AdminSettings(
        listen=listen,
        allow=_networks(a, "allow", "admin", check, AdminSettings().allow),
        token_file=check.string(a, "token_file", "admin", "", empty=True),
    )


def _tables(data: dict[str, Any], key: str, check: _Checker) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        check.fail(key, f"must be written as [[{key}]] tables")
        return []
    return value


def _listen(text: str, key: str, check: _Checker) -> Listen | None:
    transport, _, rest = text.partition(":")
    if transport not in TRANSPORTS:
        check.fail(key, f"transport must be udp or tcp, got {transport!r}")
        return None
    address = _address(rest, key, check, allow_zero=True)
    return Listen(transport, *address) if address else None


def _address(text: str, key: str, check: _Checker, *,
             allow_zero: bool = False) -> tuple[str, int] | None:
    host, sep, port_text = text.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()):
        check.fail(key, f"expected host:port, got {text!r}")
        return None
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        check.fail(key, f"host must be an IP address, got {host!r}")
        return None
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        check.fail(key, f"port must be 1-65535, got {port}")
        return None
    return host, port


def _mapping(t: dict[str, Any], where: str, check: _Checker) -> MappingGateway | None:
    check.unknown(t, {"name", "auth", "addresses", "password", "tech_prefix", "cps_limit",
                      "max_concurrent", "max_duration", "digest_algorithms", "rtp_encryption",
                      "rtp_key"}, where)
    name = check.string(t, "name", where)
    auth = t.get("auth", "ip")
    if auth not in AUTH_MODES:
        check.fail(f"{where}.auth", f"must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    password = check.string(t, "password", where, "", empty=True)
    addresses = check.strings(t, "addresses", where, required=auth != "password")
    for k, address in enumerate(addresses):
        key = f"{where}.addresses[{k}]"
        if auth == "ip_port":
            _address(address, key, check)
        else:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                hint = " (auth = \"ip\" takes no port)" if ":" in address else ""
                check.fail(key, f"must be an IP address{hint}, got {address!r}")
    if auth == "password" and not password:
        check.fail(f"{where}.password", "is required when auth = \"password\"")
    tech = check.string(t, "tech_prefix", where, "", empty=True)
    if tech and not (tech.isascii() and tech.isdigit()):
        check.fail(f"{where}.tech_prefix", f"must be digits, got {tech!r}")
    return MappingGateway(
        name=name, addresses=tuple(addresses), auth=auth if auth in AUTH_MODES else "ip",
        password=password, tech_prefix=tech,
        cps_limit=int(check.number(t, "cps_limit", where, 30, low=1, high=100_000, integer=True)),
        max_concurrent=int(check.number(t, "max_concurrent", where, 200, low=1,
                                        high=1_000_000, integer=True)),
        max_duration=int(check.number(t, "max_duration", where, 3600, low=1, high=86_400,
                                      integer=True)),
        digest_algorithms=_algorithms(t, where, check, ()),
        **_encryption(t, where, check),
    )


def _is_decimal(value: object) -> bool:
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _routing(t: dict[str, Any], where: str, check: _Checker) -> RoutingGateway | None:
    check.unknown(t, {"name", "address", "prefixes", "priority", "lowest_profit_per_second",
                      "huntstop_codes", "register_in", "password", "digest_algorithms",
                      "rtp_encryption", "rtp_key", *_REGISTER_OUT}, where)
    name = check.string(t, "name", where)
    address = check.string(t, "address", where)
    if address:
        _address(address, f"{where}.address", check)
    prefixes = check.strings(t, "prefixes", where)
    for k, prefix in enumerate(prefixes):
        if not (prefix.isascii() and prefix.isdigit()):
            check.fail(f"{where}.prefixes[{k}]", f"must be digits, got {prefix!r}")
    profit = t.get("lowest_profit_per_second", 0)
    if isinstance(profit, bool) or not isinstance(profit, int | float | str) \
            or not _is_decimal(profit):
        check.fail(f"{where}.lowest_profit_per_second",
                   f"must be a number (may be negative; \"0.00004\" as text keeps it exact), "
                   f"got {profit!r}")
        profit = 0
    register_in = check.boolean(t, "register_in", where, False)
    password = check.string(t, "password", where, "", empty=True)
    if register_in and not password:
        check.fail(f"{where}.password", "is required when register_in = true")
    codes = t.get("huntstop_codes", [])
    if not isinstance(codes, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 699 for c in codes):
        check.fail(f"{where}.huntstop_codes", "must be a list of SIP codes 400-699")
        codes = []
    return RoutingGateway(
        name=name, address=address, prefixes=tuple(prefixes),
        priority=int(check.number(t, "priority", where, 1, low=0, high=1000, integer=True)),
        # kept as text: a float like 0.1 read from TOML must not turn into money arithmetic
        lowest_profit_per_second=repr(profit) if isinstance(profit, float) else str(profit),
        huntstop_codes=tuple(codes),
        register_in=register_in, password=password,
        digest_algorithms=_algorithms(t, where, check, ()),
        **_register_out(t, where, check),
        **_encryption(t, where, check),
    )


_REGISTER_OUT = ("register_out", "register_user", "register_password", "register_server",
                 "register_expire", "register_retry_delay")


def _register_out(t: dict[str, Any], where: str, check: _Checker) -> dict[str, Any]:
    """The keys of a vendor the switch registers to (VOS3000's SS_SIP_USER_AGENT_*)."""
    out = check.boolean(t, "register_out", where, False)
    user = check.string(t, "register_user", where, "", empty=True)
    password = check.string(t, "register_password", where, "", empty=True)
    if out and not user:
        check.fail(f"{where}.register_user", "is required when register_out = true")
    if out and not password:
        check.fail(f"{where}.register_password", "is required when register_out = true")
    server = check.string(t, "register_server", where, "", empty=True)
    if server:
        _address(server, f"{where}.register_server", check)
    expire: int | str = t.get("register_expire", "auto")
    if expire != "auto" and (isinstance(expire, bool) or not isinstance(expire, int)
                             or not 20 <= expire <= 7200):
        check.fail(f"{where}.register_expire",
                   f'must be "auto" or whole seconds 20-7200, got {expire!r}')
        expire = "auto"
    return {"register_out": out, "register_user": user, "register_password": password,
            "register_server": server, "register_expire": expire,
            "register_retry_delay": check.number(t, "register_retry_delay", where, 60.0,
                                                 low=30, high=600)}
