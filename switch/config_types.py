"""The switch configuration as data: the frozen records :mod:`switch.config` builds from TOML
(and :mod:`switch.config_toml` writes back). No validation here; the loader does that.

>>> SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),)).media.workers
1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = ["DIGEST_ALGORITHMS", "SCANNER_AGENTS", "AdminSettings", "GuardSettings", "Listen",
           "MappingGateway", "MediaSettings", "Privacy", "RegistrarSettings", "RoutingGateway",
           "SipSettings", "SwitchConfig"]

DIGEST_ALGORITHMS = ("SHA-256", "MD5")


class Privacy(StrEnum):
    """``[sip] register_privacy`` (SS_SIP_USER_AGENT_PRIVACY): what the switch's REGISTERs to
    upstream carriers say about privacy (RFC 3323 / RFC 3325)."""

    IGNORE = "ignore"  # no Privacy header
    ID = "id"  # Privacy: id, and the user in P-Preferred-Identity
    NONE = "none"  # Privacy: none


@dataclass(frozen=True)
class Listen:
    """One SIP listening socket."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


@dataclass(frozen=True)
class SipSettings:
    """``[sip]``: timers, failover behaviour and the limits on what a peer may send.

    The ``max_*`` limits bound the work one message can cause: ``max_number_digits`` applies to
    the dialled number after the tech prefix is stripped (the digits that are routed); the
    others to a message as the transports parse it.
    """

    invite_timeout: float = 8.0
    call_progress_timeout: float = 60.0
    stop_gateway_after_invite_timeout: bool = False
    stop_gateway_period: float = 60.0
    max_number_digits: int = 32
    max_message_bytes: int = 65535
    max_headers: int = 128
    max_header_bytes: int = 8192
    max_uri_bytes: int = 4096
    register_privacy: Privacy = Privacy.IGNORE
    send_unregister: bool = True
    unregister_wait: float = 5.0
    t1: float = 0.5  # RFC 3261 T1 (RTT estimate): retransmit intervals and 64*T1 timeouts


@dataclass(frozen=True)
class MediaSettings:
    """``[media]``: the RTP relays and the payload encryption defaults (SS_RTPENCRYPTION*).

    Media is relayed when there are relays: ``workers`` local relay processes the switch starts
    itself, or ``relays`` started elsewhere (then no workers). With neither, SDP passes through
    and media flows between customer and vendor directly.
    """

    workers: int = 1
    relays: tuple[str, ...] = ()  # "IP:PORT" ng addresses
    address: str = ""  # the local workers' media IP; empty: the first UDP listener's
    port_min: int = 10000
    port_max: int = 20000
    media_timeout: float = 60.0  # 0: off
    ng_timeout: float = 1.0
    rtp_encryption_mode: int = 0
    rtp_encryption_key: str = ""

    @property
    def relayed(self) -> bool:
        """True when calls' media goes through relays."""
        return bool(self.workers or self.relays)


@dataclass(frozen=True)
class MappingGateway:
    """``[[mapping_gateway]]``: a customer and how its calls are recognised and limited."""

    name: str
    addresses: tuple[str, ...]
    auth: str = "ip"
    password: str = ""
    tech_prefix: str = ""
    cps_limit: int = 30
    max_concurrent: int = 200
    max_duration: int = 3600
    digest_algorithms: tuple[str, ...] = ()  # empty: [registrar] digest_algorithms
    rtp_encryption: int | None = None  # None: [media] rtp_encryption_mode
    rtp_key: str | None = None  # None: [media] rtp_encryption_key


@dataclass(frozen=True)
class RegistrarSettings:
    """``[registrar]``: REGISTER from password gateways (names follow VOS3000's SS_ENDPOINT_*)."""

    digest_algorithms: tuple[str, ...] = DIGEST_ALGORITHMS
    register_replace: bool = True
    register_retry: int = 6
    register_suspend: float = 180.0
    min_expires: int = 60
    max_expires: int = 3600


@dataclass(frozen=True)
class RoutingGateway:
    """``[[routing_gateway]]``: a vendor the switch sends calls to."""

    name: str
    address: str
    prefixes: tuple[str, ...]
    priority: int = 1
    lowest_profit_per_second: str = "0"  # exact decimal text; may be negative
    huntstop_codes: tuple[int, ...] = ()
    register_in: bool = False  # the vendor registers to us; calls go to its registered contact
    password: str = ""  # digest password for register_in (username = name)
    digest_algorithms: tuple[str, ...] = ()  # empty: [registrar] digest_algorithms
    register_out: bool = False  # the switch registers to this vendor (switch.upstream)
    register_user: str = ""
    register_password: str = ""
    register_server: str = ""  # host:port; empty: address
    register_expire: int | str = "auto"  # "auto" or 20-7200 seconds (SS_SIP_USER_AGENT_EXPIRE)
    register_retry_delay: float = 60.0  # SS_SIP_USER_AGENT_RETRY_DELAY
    rtp_encryption: int | None = None  # None: [media] rtp_encryption_mode
    rtp_key: str | None = None  # None: [media] rtp_encryption_key

    @property
    def registrar_address(self) -> str:
        """Where REGISTERs go: ``register_server``, else ``address``."""
        return self.register_server or self.address


#: ``[guard] scanner_agents`` by default: names SIP scanners put in User-Agent, From or To (the
#: article's list and SIPVicious' own), matched case-insensitively as substrings.
SCANNER_AGENTS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "VaxSIPUserAgent",
                  "iWar", "SIPScan", "sundayddr", "pplsip", "Cisco-SIPGateway/IOS-12.x")


@dataclass(frozen=True)
class GuardSettings:
    """``[guard]``: the switch's scanner defence, cheapest layer first (docs/guard.md).

    Sources in ``trusted`` (CIDRs) skip the signature and rate layers; with ``trust_gateways``
    so do the addresses of IP-authenticated mapping gateways and of routing gateways. The rate
    rules are the article's iptables defaults: ``recent`` (more than ``recent_hits`` requests in
    ``recent_seconds``), ``hashlimit`` (``rate`` per second, burst ``burst``), ``connlimit``
    (``dialogs_per_ip`` concurrent dialogs per IP, ``dialogs_per_24`` per /24); a source over one
    is banned for ``ban_time`` seconds. At most ``max_sources`` untrusted sources are tracked
    (the oldest forgotten first), which bounds the memory a flood of addresses can take. Past
    the per-source rules, all untrusted sources together get ``untrusted_rate`` datagrams per
    second (burst: one second's worth; 0: no limit), so a flood from many addresses, each
    under its own limits, cannot take the switch from trusted traffic.
    """

    enabled: bool = True
    trusted: tuple[str, ...] = ()
    trust_gateways: bool = True
    drop_options_from_untrusted: bool = True
    drop_register_from_untrusted: bool = False
    drop_unserved: bool = True  # methods the switch never serves, URIs it cannot route
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS
    recent_hits: int = 20
    recent_seconds: float = 60.0
    rate: float = 10.0
    burst: int = 20
    dialogs_per_ip: int = 10
    dialogs_per_24: int = 30
    ban_time: float = 600.0
    max_sources: int = 200_000
    untrusted_rate: float = 2000.0


@dataclass(frozen=True)
class AdminSettings:
    """``[admin]``: the HTTP admin API (health, Prometheus metrics, calls, registrations, bans).

    Off while ``listen`` is empty. Only clients in ``allow`` (CIDRs) are served, others get 403;
    with ``token_file`` set, requests also need ``Authorization: Bearer <the file's first line>``.
    """

    listen: str = ""  # "IP:PORT"
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    token_file: str = ""

    @property
    def enabled(self) -> bool:
        """True when the admin API listens."""
        return bool(self.listen)


@dataclass(frozen=True)
class SwitchConfig:
    """A whole, valid switch configuration."""

    id: str
    sip_listen: tuple[Listen, ...]
    spool_dir: Path = Path("data/spool")
    routing_snapshot: Path = Path("data/routing.json")
    shutdown_grace: float = 10.0
    cdr_rotate_seconds: float = 300.0
    cdr_rotate_mb: float = 64.0
    sip: SipSettings = field(default_factory=SipSettings)
    mapping_gateways: tuple[MappingGateway, ...] = ()
    routing_gateways: tuple[RoutingGateway, ...] = ()
    registrar: RegistrarSettings = field(default_factory=RegistrarSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
