"""``python -m switch firewall``: the ``[guard]`` and ``[admin]`` policy as kernel rules.

Pure functions from a :class:`~switch.config_types.SwitchConfig` to text: ``iptables-restore``
input (IPv4), ``ip6tables-restore`` input (IPv6) and ``nft -f`` input (both families in one
``inet`` table), plus the text that removes them again. Nothing here touches the machine's
tables; docs/guard.md says how to install, persist and roll back, and explains each rule against
the VOS3000 article it reproduces.

The chains follow the article: the switch's SIP ports go through ``SIP_TRUSTED`` (trusted
sources accepted), then ``SIP_SCANNER_BLOCK`` (signatures dropped), then ``SIP_RATE_LIMIT``
(``recent``, ``hashlimit``, ``connlimit``; a source over one goes to ``SIP_BAN``, which drops it
and, with ``ban_time``, keeps dropping it for that long). A hook chain ``RATELAB_GUARD``, the
only rule we put into ``INPUT``, sends the admin port to its allow list first, so no SIP rule
can lock the admin CIDRs out.

>>> from switch.config import load_config_text
>>> config = load_config_text('[switch]\\nid = "sw1"\\nsip_listen = ["udp:192.0.2.1:5060"]\\n'
...                           '[guard]\\ntrusted = ["203.0.113.10"]\\n')
>>> text = render(config, "iptables")
>>> for line in text.splitlines():
...     if line.startswith("-A SIP_TRUSTED"):
...         print(line)
-A SIP_TRUSTED -s 192.0.2.1/32 -j ACCEPT
-A SIP_TRUSTED -s 203.0.113.10/32 -j ACCEPT
-A SIP_TRUSTED -j SIP_SCANNER_BLOCK
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable

from switch.config_types import SwitchConfig
from switch.guard.trust import Network, trusted_networks

__all__ = ["BAN_CHAIN", "CHAINS", "FORMATS", "HOOK_CHAIN", "NFT_TABLE", "FirewallError",
           "admin_port", "render", "render_iptables", "render_nftables", "render_rollback",
           "sip_ports", "trusted_networks"]

#: ``--format`` values: IPv4 ``iptables-restore`` input, IPv6 ``ip6tables-restore`` input,
#: ``nft -f`` input (both families).
FORMATS = ("iptables", "ip6tables", "nftables")
#: The article's three chains, in the order a packet goes through them.
CHAINS = ("SIP_TRUSTED", "SIP_SCANNER_BLOCK", "SIP_RATE_LIMIT")
#: Where a source over a rate rule goes: dropped, and remembered for ``ban_time``.
BAN_CHAIN = "SIP_BAN"
#: The one chain ``INPUT`` jumps to (iptables); it holds the admin rules and the port matches.
HOOK_CHAIN = "RATELAB_GUARD"
#: The nftables table of its own (family ``inet``).
NFT_TABLE = "ratelab_guard"

ALL_CHAINS = (HOOK_CHAIN, *CHAINS, BAN_CHAIN)
#: Request lines are looked for in a packet's first bytes only (IP + UDP/TCP headers with
#: options, then the method): a body or header that merely mentions them is not dropped.
REQUEST_LINE_WINDOW = 160
#: xt_string's longest pattern (XT_STRING_MAX_PATTERN_SIZE).
MAX_PATTERN = 128
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-/:+@")
_V6_SOURCE = ipaddress.IPv6Network("::/64").netmask  # an IPv6 "source" is its /64
_V6_SOURCE_24 = ipaddress.IPv6Network("::/48").netmask  # and the /24 rule's block a /48


class FirewallError(ValueError):
    """The configuration cannot be expressed as kernel rules (the message says why)."""


def sip_ports(config: SwitchConfig) -> tuple[tuple[str, int], ...]:
    """``(protocol, port)`` of every SIP listener, sorted, without repeats; FirewallError for a
    listener on port 0 (the kernel rules need the port the switch will have).

    >>> from switch.config import load_config
    >>> sip_ports(load_config("data/switch.toml"))
    (('tcp', 5060), ('udp', 5060))
    """
    for listen in config.sip_listen:
        if listen.port == 0:
            raise FirewallError(f"switch.sip_listen {listen} has port 0: the kernel rules "
                                "need the port the switch listens on")
    return tuple(sorted({(listen.transport, listen.port) for listen in config.sip_listen}))


def admin_port(config: SwitchConfig) -> int | None:
    """The admin API's TCP port, None when ``[admin] listen`` is off; FirewallError when it is
    also a SIP TCP port (the admin allow list would then decide who may send SIP there).

    >>> from switch.config import load_config_text
    >>> admin_port(load_config_text('[switch]\\nid = "a"\\nsip_listen = ["udp:192.0.2.1:5060"]\\n'
    ...                             '[admin]\\nlisten = "127.0.0.1:8080"\\n'))
    8080
    """
    if not config.admin.enabled:
        return None
    port = int(config.admin.listen.rpartition(":")[2])
    if ("tcp", port) in sip_ports(config):
        raise FirewallError(f"admin.listen {config.admin.listen} shares TCP port {port} with a "
                            "SIP listener; give the admin API a port of its own")
    return port


def render(config: SwitchConfig, fmt: str, *, source: str = "") -> str:
    """The rules in ``fmt`` (one of :data:`FORMATS`); ``source`` names the config file in the
    header.

    >>> from switch.config import load_config
    >>> render(load_config("data/switch.toml"), "nftables").splitlines()[0]
    '# Generated by `python -m switch firewall --format nftables` for switch sw1.'
    """
    if fmt == "iptables":
        return render_iptables(config, family=4, source=source)
    if fmt == "ip6tables":
        return render_iptables(config, family=6, source=source)
    if fmt == "nftables":
        return render_nftables(config, source=source)
    raise FirewallError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def render_rollback(fmt: str) -> str:
    """What removes the rules of ``fmt`` again, whatever config they came from: a POSIX ``sh``
    script for iptables/ip6tables (safe to run when nothing or a rule twice is installed), ``nft
    -f`` input for nftables.

    >>> print(render_rollback("nftables"), end="")
    # Removes what `python -m switch firewall --format nftables` installed: nft -f FILE
    table inet ratelab_guard {}
    delete table inet ratelab_guard
    """
    if fmt == "nftables":
        return (f"# Removes what `python -m switch firewall --format nftables` installed: "
                f"nft -f FILE\ntable inet {NFT_TABLE} {{}}\ndelete table inet {NFT_TABLE}\n")
    if fmt not in ("iptables", "ip6tables"):
        raise FirewallError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    chains = " ".join(ALL_CHAINS)
    return (f"#!/bin/sh\n"
            f"# Removes what `python -m switch firewall --format {fmt}` installed: pipe to sh.\n"
            f"# Safe to run when nothing is installed; removes every copy of the INPUT jump.\n"
            f"while {fmt} -w -D INPUT -j {HOOK_CHAIN} 2>/dev/null; do :; done\n"
            f"for chain in {chains}; do {fmt} -w -F \"$chain\" 2>/dev/null; done\n"
            f"for chain in {chains}; do {fmt} -w -X \"$chain\" 2>/dev/null; done\n"
            f"exit 0\n")


# --- iptables -------------------------------------------------------------------------------------

def render_iptables(config: SwitchConfig, *, family: int = 4, source: str = "") -> str:
    """``iptables-restore --noflush`` input (``family`` 4) or ``ip6tables-restore --noflush``
    input (6): our chains declared (and so emptied), one jump inserted at the top of ``INPUT``;
    the administrator's other rules are left alone.

    >>> from switch.config import load_config
    >>> text = render_iptables(load_config("data/switch.toml"))
    >>> [line for line in text.splitlines() if "INPUT" in line and not line.startswith("#")]
    ['-I INPUT 1 -j RATELAB_GUARD']
    """
    if family not in (4, 6):
        raise FirewallError(f"family must be 4 or 6, got {family}")
    guard = config.guard
    tool = "iptables" if family == 4 else "ip6tables"
    ports = sip_ports(config)
    admin = admin_port(config)
    trusted = _family(trusted_networks(config), family)
    allow = _family(_networks(config.admin.allow), family)
    out = _header(config, tool, source, "#")
    out += [f"# Check:     {tool}-restore --noflush --test < FILE",
            f"# Apply:     {tool}-restore --noflush < FILE",
            f"# Roll back: python -m switch firewall --format {tool} --rollback | sh",
            "#            (do that first when re-applying: a second apply adds a second jump)",
            "*filter"]
    out += [f":{chain} - [0:0]" for chain in ALL_CHAINS]
    if admin is not None:
        out.append(f"# [admin] listen {config.admin.listen}: only [admin] allow may connect; "
                   "first, so nothing below can lock it out")
        out += [f"-A {HOOK_CHAIN} -p tcp --dport {admin} -s {n} -j ACCEPT" for n in allow]
        out.append(f"-A {HOOK_CHAIN} -p tcp --dport {admin} -j DROP")
    if guard.enabled:
        out.append("# the switch's SIP ports ([switch] sip_listen)")
        out += [f"-A {HOOK_CHAIN} -p {proto} --dport {port} -j SIP_TRUSTED"
                for proto, port in ports]
    else:
        out.append("# [guard] enabled = false: no SIP rules")
    out.append("# SIP_TRUSTED: [guard] trusted" +
               (" and the gateways' addresses (trust_gateways)" if guard.trust_gateways else ""))
    out += [f"-A SIP_TRUSTED -s {n} -j ACCEPT" for n in trusted]
    out.append("-A SIP_TRUSTED -j SIP_SCANNER_BLOCK")
    out.append("# SIP_SCANNER_BLOCK: request lines from untrusted sources, scanner names "
               "anywhere in the packet (any case)")
    for method in _methods(config):
        out.append(f"-A SIP_SCANNER_BLOCK -m string {_string_arg(method + ' sip:')} --algo bm "
                   f"--to {REQUEST_LINE_WINDOW} -j DROP")
    for agent in guard.scanner_agents:
        out.append(f"-A SIP_SCANNER_BLOCK -m string {_string_arg(agent)} --algo bm --icase "
                   "-j DROP")
    out.append("-A SIP_SCANNER_BLOCK -j SIP_RATE_LIMIT")
    out += _iptables_rates(config, family)
    out.append(f"-I INPUT 1 -j {HOOK_CHAIN}")
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def _iptables_rates(config: SwitchConfig, family: int) -> list[str]:
    guard = config.guard
    six = family == 6
    suffix = "6" if six else ""
    recent_mask = f" --mask {_V6_SOURCE}" if six else ""
    ban = BAN_CHAIN
    fate = f"banned for {_seconds(guard.ban_time)} s" if guard.ban_time else "dropped"
    out = [f"# SIP_RATE_LIMIT: a source over any rule goes to {ban} ({fate})"
           + ("; an IPv6 source is its /64, the /24 rule's block a /48" if six else "")]
    if guard.ban_time:
        out.append(f"-A SIP_RATE_LIMIT -m recent --name sip_ban{suffix} --rsource{recent_mask} "
                   f"--rcheck --seconds {_seconds(guard.ban_time)} -j DROP")
    hits = guard.recent_hits + 1  # "more than recent_hits": the packet after them matches
    out += [f"# recent: more than {guard.recent_hits} requests in "
            f"{_seconds(guard.recent_seconds)} s (each request that gets this far counts)",
            f"-A SIP_RATE_LIMIT -m recent --name sip_recent{suffix} --rsource{recent_mask} --set",
            f"-A SIP_RATE_LIMIT -m recent --name sip_recent{suffix} --rsource{recent_mask} "
            f"--update --seconds {_seconds(guard.recent_seconds)} --hitcount {hits} -j {ban}"]
    count, unit = _rate(guard.rate)
    srcmask = " --hashlimit-srcmask 64" if six else ""
    out += [f"# hashlimit: over {guard.rate:g}/s after a burst of {guard.burst}, per source",
            f"-A SIP_RATE_LIMIT -m hashlimit --hashlimit-above {count}/{unit} "
            f"--hashlimit-burst {guard.burst} --hashlimit-mode srcip{srcmask} "
            f"--hashlimit-name sip_rate{suffix} --hashlimit-htable-max {guard.max_sources} "
            f"-j {ban}"]
    mask, mask24 = (64, 48) if six else (32, 24)
    out += [f"# connlimit: more than {guard.dialogs_per_ip} flows per source, "
            f"{guard.dialogs_per_24} per /{mask24}",
            f"-A SIP_RATE_LIMIT -m connlimit --connlimit-above {guard.dialogs_per_ip} "
            f"--connlimit-mask {mask} --connlimit-saddr -j {ban}",
            f"-A SIP_RATE_LIMIT -m connlimit --connlimit-above {guard.dialogs_per_24} "
            f"--connlimit-mask {mask24} --connlimit-saddr -j {ban}"]
    if guard.untrusted_rate:
        flood, flood_unit = _rate(guard.untrusted_rate)
        burst = max(1, math.ceil(guard.untrusted_rate))
        out += [f"# untrusted_rate: {guard.untrusted_rate:g}/s for every untrusted source "
                "together (no ban: no one source is to blame)",
                f"-A SIP_RATE_LIMIT -m limit --limit {flood}/{flood_unit} "
                f"--limit-burst {min(burst, 10000)} -j ACCEPT",
                "-A SIP_RATE_LIMIT -j DROP"]
    else:
        out.append("-A SIP_RATE_LIMIT -j ACCEPT")
    if guard.ban_time:
        out.append(f"-A {ban} -m recent --name sip_ban{suffix} --rsource{recent_mask} --set "
                   "-j DROP")
    else:
        out.append(f"-A {ban} -j DROP")
    return out


def _string_arg(text: str) -> str:
    """``--string "..."`` for plain text, ``--hex-string "|..|"`` for anything a shell-like
    parser could mangle."""
    data = text.encode()
    if len(data) > MAX_PATTERN:
        raise FirewallError(f"{text!r} is longer than the kernel's string match allows "
                            f"({MAX_PATTERN} bytes)")
    if set(text) <= _SAFE:
        return f'--string "{text}"'
    return f'--hex-string "|{data.hex()}|"'


# --- nftables -------------------------------------------------------------------------------------

def render_nftables(config: SwitchConfig, *, source: str = "") -> str:
    """``nft -f`` input: the table ``inet ratelab_guard``, deleted and re-created, so applying it
    again replaces it; nothing outside it is touched.

    >>> from switch.config import load_config
    >>> text = render_nftables(load_config("data/switch.toml"))
    >>> [line.strip() for line in text.splitlines() if "OPTIONS sip:" in line][:1]
    ['meta l4proto udp @th,64,96 0x4f5054494f4e53207369703a counter drop comment "OPTIONS sip:"']
    """
    guard = config.guard
    ports = sip_ports(config)
    admin = admin_port(config)
    trusted = trusted_networks(config)
    allow = _networks(config.admin.allow)
    size = guard.max_sources
    out = _header(config, "nftables", source, "#")
    out += ["# Check:     nft -c -f FILE",
            "# Apply:     nft -f FILE   (again to re-apply: the table is replaced whole)",
            "# Roll back: python -m switch firewall --format nftables --rollback | nft -f -",
            "# Not expressible here (nftables has no string match): the scanner User-Agent/From/To",
            "# names of [guard] scanner_agents; the switch's own guard layer drops those:",
            *[f"#   {agent}" for agent in guard.scanner_agents],
            f"table inet {NFT_TABLE} {{}}",
            f"delete table inet {NFT_TABLE}",
            f"table inet {NFT_TABLE} {{"]

    def addr_set(name: str, v6: bool, elements: Iterable[Network]) -> None:
        items = ", ".join(str(n) for n in elements)
        kind = "ipv6_addr" if v6 else "ipv4_addr"
        body = f"type {kind}; flags interval; auto-merge;"
        out.append(f"\tset {name} {{ {body}" + (f" elements = {{ {items} }}" if items else "")
                   + " }")

    def dyn_set(name: str, v6: bool, timeout: int | None) -> None:
        kind = "ipv6_addr" if v6 else "ipv4_addr"
        flags = "dynamic,timeout" if timeout else "dynamic"
        extra = f" timeout {timeout}s;" if timeout else ""
        out.append(f"\tset {name} {{ type {kind}; size {size}; flags {flags};{extra} }}")

    addr_set("trusted4", False, _family(trusted, 4))
    addr_set("trusted6", True, _family(trusted, 6))
    if admin is not None:
        addr_set("admin4", False, _family(allow, 4))
        addr_set("admin6", True, _family(allow, 6))
    window = _seconds(guard.recent_seconds)
    hl_timeout = max(60, math.ceil(guard.burst / guard.rate) + 1)
    for v6, tag in ((False, "4"), (True, "6")):
        if guard.ban_time:
            dyn_set(f"sip_ban{tag}", v6, _seconds(guard.ban_time))
        dyn_set(f"sip_recent{tag}", v6, window)
        dyn_set(f"sip_rate{tag}", v6, hl_timeout)
        dyn_set(f"sip_conn{tag}", v6, None)
        dyn_set(f"sip_conn24_{tag}", v6, None)
    out += ["\tchain input {",
            "\t\ttype filter hook input priority filter - 10; policy accept;"]
    if admin is not None:
        out += [f"\t\t# [admin] listen {config.admin.listen}: only [admin] allow may connect",
                f"\t\ttcp dport {admin} ip saddr @admin4 counter accept",
                f"\t\ttcp dport {admin} ip6 saddr @admin6 counter accept",
                f"\t\ttcp dport {admin} counter drop"]
    if guard.enabled:
        for proto in ("udp", "tcp"):
            chosen = [str(port) for p, port in ports if p == proto]
            if chosen:
                out.append(f"\t\t{proto} dport {{ {', '.join(chosen)} }} jump SIP_TRUSTED")
    else:
        out.append("\t\t# [guard] enabled = false: no SIP rules")
    out += ["\t}",
            "\tchain SIP_TRUSTED {",
            "\t\tip saddr @trusted4 counter accept",
            "\t\tip6 saddr @trusted6 counter accept",
            "\t\tjump SIP_SCANNER_BLOCK",
            "\t}",
            "\tchain SIP_SCANNER_BLOCK {",
            "\t\t# the request line at the start of the payload: UDP after its 8-byte header,",
            "\t\t# TCP at the inner header (after the TCP options); only a segment that starts",
            "\t\t# with the request is seen"]
    for method in _methods(config):
        line = method + " sip:"
        bits, value = len(line) * 8, "0x" + line.encode().hex()
        out += [f'\t\tmeta l4proto udp @th,64,{bits} {value} counter drop comment "{line}"',
                f'\t\tmeta l4proto tcp @ih,0,{bits} {value} counter drop comment "{line}"']
    out += ["\t\t# scanner_agents: not expressible in nftables (see the header)",
            "\t\tjump SIP_RATE_LIMIT",
            "\t}"]
    out += _nft_rates(config)
    out.append("}")
    return "\n".join(out) + "\n"


def _nft_rates(config: SwitchConfig) -> list[str]:
    guard = config.guard
    v4, v6, v6_24 = "ip saddr", f"ip6 saddr & {_V6_SOURCE}", f"ip6 saddr & {_V6_SOURCE_24}"
    window = _seconds(guard.recent_seconds)
    recent_count, recent_unit = _rate(guard.recent_hits / window)
    count, unit = _rate(guard.rate)
    out = ["\tchain SIP_RATE_LIMIT {",
           "\t\t# an IPv6 source is its /64, the /24 rule's block a /48"]
    if guard.ban_time:
        out += [f"\t\t{v4} @sip_ban4 counter drop", f"\t\t{v6} @sip_ban6 counter drop"]
    out += [f"\t\t# recent: more than {guard.recent_hits} in {window} s, as a token bucket "
            f"({guard.recent_hits} at once, then {recent_count}/{recent_unit})"]
    for key, tag in ((v4, "4"), (v6, "6")):
        out.append(f"\t\tupdate @sip_recent{tag} {{ {key} limit rate over "
                   f"{recent_count}/{recent_unit} burst {guard.recent_hits} packets }} "
                   f"counter jump {BAN_CHAIN}")
    out.append(f"\t\t# hashlimit: over {guard.rate:g}/s after a burst of {guard.burst}")
    for key, tag in ((v4, "4"), (v6, "6")):
        out.append(f"\t\tupdate @sip_rate{tag} {{ {key} limit rate over {count}/{unit} "
                   f"burst {guard.burst} packets }} counter jump {BAN_CHAIN}")
    out.append(f"\t\t# connlimit: more than {guard.dialogs_per_ip} flows per source, "
               f"{guard.dialogs_per_24} per /24 (IPv6 /48)")
    for key, key24, tag in ((v4, "ip saddr & 255.255.255.0", "4"), (v6, v6_24, "6")):
        out += [f"\t\tadd @sip_conn{tag} {{ {key} ct count over {guard.dialogs_per_ip} }} "
                f"counter jump {BAN_CHAIN}",
                f"\t\tadd @sip_conn24_{tag} {{ {key24} ct count over {guard.dialogs_per_24} }} "
                f"counter jump {BAN_CHAIN}"]
    if guard.untrusted_rate:
        flood, flood_unit = _rate(guard.untrusted_rate)
        out += [f"\t\t# untrusted_rate: {guard.untrusted_rate:g}/s for every untrusted source "
                "together (no ban)",
                f"\t\tlimit rate over {flood}/{flood_unit} burst "
                f"{max(1, math.ceil(guard.untrusted_rate))} packets counter drop"]
    out += ["\t\taccept", "\t}", f"\tchain {BAN_CHAIN} {{"]
    if guard.ban_time:
        out += [f"\t\tadd @sip_ban4 {{ {v4} }} counter drop",
                f"\t\tadd @sip_ban6 {{ {v6} }} counter drop"]
    out += ["\t\tcounter drop", "\t}"]
    return out


# --- shared ---------------------------------------------------------------------------------------

def _header(config: SwitchConfig, fmt: str, source: str, mark: str) -> list[str]:
    where = f" from {source}" if source else ""
    return [f"{mark} Generated by `python -m switch firewall --format {fmt}` for switch "
            f"{config.id}.",
            f"{mark} Config{where or ': (given as data)'}; edit the config and re-generate "
            "rather than this file (docs/guard.md)."]


def _methods(config: SwitchConfig) -> list[str]:
    guard = config.guard
    return ((["OPTIONS"] if guard.drop_options_from_untrusted else [])
            + (["REGISTER"] if guard.drop_register_from_untrusted else []))


def _networks(texts: Iterable[str]) -> tuple[Network, ...]:
    networks = [ipaddress.ip_network(t, strict=False) for t in texts]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))


def _family(networks: Iterable[Network], family: int) -> list[Network]:
    return [n for n in networks if n.version == family]


def _seconds(value: float) -> int:
    """Whole seconds for the kernel, rounded up (never a shorter window or ban)."""
    return max(1, math.ceil(value))


def _rate(per_second: float) -> tuple[int, str]:
    """``(count, unit)`` for a rate: the shortest unit in which it is a whole number, else per
    day rounded up (the more lenient side)."""
    units = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))
    for name, seconds in units:
        n = per_second * seconds
        if n >= 1 and abs(n - round(n)) < 1e-9:
            return round(n), name
    return math.ceil(per_second * 86400), "day"
