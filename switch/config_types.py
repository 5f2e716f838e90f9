"""The switch configuration as data: the frozen records :mod:`switch.config` builds from TOML
(and :mod:`switch.config_toml` writes back). No validation here; the loader does that.

>>> SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),)).media.workers
1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = ["DIGEST_ALGORITHMS", "Listen", "MappingGateway", "MediaSettings", "Privacy",
           "RegistrarSettings", "RoutingGateway", "SipSettings", "SwitchConfig"]

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
