"""Writing switch TOML: the one writer (ratelab's demo writes its configs through it), next to
the one loader (:mod:`switch.config`), so a key added to the loader is written by the same code.
tomllib reads but does not write TOML; the file needs only strings, numbers, booleans and flat
lists.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from switch.config_types import (
    AdminSettings,
    GuardSettings,
    Listen,
    MappingGateway,
    MediaSettings,
    RegistrarSettings,
    RoutingGateway,
    SipSettings,
    SwitchConfig,
)

__all__ = ["dump_config"]


# The one writer of switch TOML (ratelab's demo writes its configs through it), so a key added
# to the loader is written by the same module. tomllib reads but does not write TOML; the file
# needs only strings, numbers, booleans and flat lists.


def _toml_string(text: str) -> str:
    # A TOML basic string: quote, backslash and control characters escaped, the rest as is
    # (TOML has no surrogate escapes, so non-ASCII text is not \u-escaped the way JSON does).
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path | Listen):
        return _toml_string(_listen_text(value) if isinstance(value, Listen) else str(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _listen_text(listen: Listen) -> str:
    # An IPv6 host in brackets, so the port stays the part after the last colon.
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return f"{listen.transport}:{host}:{listen.port}"


def _table(header: str, values: dict[str, object]) -> list[str]:
    # None is "not set" (a gateway inheriting a [media] default): TOML has no null, so absent.
    return [header, *(f"{key} = {_toml_value(value)}" for key, value in values.items()
                      if value is not None), ""]


def dump_config(config: SwitchConfig, *, comment: str = "") -> str:
    """The TOML text of ``config``, every key written; :func:`load_config_text` reads it back
    equal. ``comment`` (lines of text) heads the file as ``#`` comments.

    >>> config = SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),),
    ...     mapping_gateways=(MappingGateway("acme", ("127.0.0.1",)),))
    >>> text = dump_config(config, comment="for the doctest")
    >>> print(text[:text.index("[sip]")], end="")
    # for the doctest
    [switch]
    id = "sw1"
    sip_listen = ["udp:127.0.0.1:5060"]
    spool_dir = "data/spool"
    routing_snapshot = "data/routing.json"
    shutdown_grace = 10.0
    cdr_rotate_seconds = 300.0
    cdr_rotate_mb = 64.0
    <BLANKLINE>
    >>> from switch.config import load_config_text
    >>> load_config_text(text) == config
    True
    """
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += _table("[switch]", {
        "id": config.id, "sip_listen": config.sip_listen, "spool_dir": config.spool_dir,
        "routing_snapshot": config.routing_snapshot, "shutdown_grace": config.shutdown_grace,
        "cdr_rotate_seconds": config.cdr_rotate_seconds, "cdr_rotate_mb": config.cdr_rotate_mb,
    })
    lines += _table("[sip]", {f.name: getattr(config.sip, f.name) for f in fields(SipSettings)})
    for gw in config.mapping_gateways:
        lines += _table("[[mapping_gateway]]", {f.name: getattr(gw, f.name)
                                                for f in fields(MappingGateway)})
    for vendor in config.routing_gateways:
        lines += _table("[[routing_gateway]]", {f.name: getattr(vendor, f.name)
                                                for f in fields(RoutingGateway)})
    lines += _table("[registrar]", {f.name: getattr(config.registrar, f.name)
                                    for f in fields(RegistrarSettings)})
    lines += _table("[media]", {f.name: getattr(config.media, f.name)
                                for f in fields(MediaSettings)})
    lines += _table("[guard]", {f.name: getattr(config.guard, f.name)
                                for f in fields(GuardSettings)})
    lines += _table("[admin]", {f.name: getattr(config.admin, f.name)
                                for f in fields(AdminSettings)})
    return "\n".join(lines)
