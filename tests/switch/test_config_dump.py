"""``dump_config``: the one writer of switch TOML; what it writes loads back equal."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.config import (
    Listen,
    MappingGateway,
    RoutingGateway,
    SipSettings,
    SwitchConfig,
    load_config,
    load_config_text,
)
from switch.config_toml import dump_config

ROOT = Path(__file__).resolve().parents[2]

EVERY_KIND = SwitchConfig(
    id="sw-2",
    sip_listen=(Listen("udp", "127.0.0.1", 5060), Listen("tcp", "::1", 5061),
                Listen("udp", "0.0.0.0", 0)),
    spool_dir=Path("/var/spool/ratelab cdr/\"quoted\" \\ and ünïcode ☎"),
    routing_snapshot=Path("relative/routing.json"),
    shutdown_grace=0.5,
    cdr_rotate_seconds=1,
    cdr_rotate_mb=0.001,
    sip=SipSettings(invite_timeout=2.25, call_progress_timeout=20,
                    stop_gateway_after_invite_timeout=True, stop_gateway_period=1e3,
                    max_number_digits=15, max_message_bytes=4096, max_headers=16,
                    max_header_bytes=256, max_uri_bytes=128),
    mapping_gateways=(
        MappingGateway("by_ip", ("127.0.0.1", "::1"), cps_limit=1, max_concurrent=1,
                       max_duration=1),
        MappingGateway("by_port", ("127.0.0.1:5071", "[::1]:5072"), auth="ip_port",
                       tech_prefix="900"),
        MappingGateway("by_password", (), auth="password", password='p"a\\ss\tword'),
    ),
    routing_gateways=(
        RoutingGateway("cheap", "127.0.0.1:5080", ("44", "1")),
        RoutingGateway("loss_ok", "[::1]:5081", ("447",), priority=0,
                       lowest_profit_per_second="-0.0001", huntstop_codes=(486, 404, 699)),
        RoutingGateway("exact", "127.0.0.1:5082", ("3",), priority=1000,
                       lowest_profit_per_second="0.00004"),
    ),
)


@pytest.mark.parametrize("config", [
    SwitchConfig("sw1", (Listen("udp", "127.0.0.1", 5060),)),
    EVERY_KIND,
    load_config(ROOT / "data" / "switch.toml"),
], ids=["minimal", "every-kind", "sample"])
def test_what_dump_config_writes_loads_back_equal(config: SwitchConfig) -> None:
    text = dump_config(config)
    assert load_config_text(text) == config
    assert dump_config(load_config_text(text)) == text   # and writes the same text again


def test_every_gateway_kind_and_key_is_written() -> None:
    data = tomllib.loads(dump_config(EVERY_KIND))
    assert [g["auth"] for g in data["mapping_gateway"]] == ["ip", "ip_port", "password"]
    # a profit limit stays exact text, never a float
    assert data["routing_gateway"][1]["lowest_profit_per_second"] == "-0.0001"
    assert data["switch"]["sip_listen"][1] == "tcp:[::1]:5061"
    assert set(data["sip"]) == set(SipSettings.__dataclass_fields__)


def test_comment_heads_the_file() -> None:
    text = dump_config(EVERY_KIND, comment="line one\n\nline three")
    assert text.startswith("# line one\n#\n# line three\n[switch]\n")
    assert load_config_text(text) == EVERY_KIND


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(switch_id=names, password=names, spool=names,
       grace=st.floats(0, 3600, allow_nan=False),
       profit=st.decimals(-1, 1, places=6).map(str))
def test_any_text_and_number_survives_the_round_trip(switch_id: str, password: str,
                                                    spool: str, grace: float,
                                                    profit: str) -> None:
    config = SwitchConfig(
        switch_id, (Listen("udp", "127.0.0.1", 5060),), spool_dir=Path(spool),
        shutdown_grace=grace,
        mapping_gateways=(MappingGateway("c", (), auth="password", password=password),),
        routing_gateways=(RoutingGateway("v", "127.0.0.1:5070", ("1",),
                                         lowest_profit_per_second=profit),))
    assert load_config_text(dump_config(config)) == config
