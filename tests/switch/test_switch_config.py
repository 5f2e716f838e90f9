"""The switch configuration: valid files load, every problem is named with its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from switch.config import ConfigError, load_config, load_config_text

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = '[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:5060"]\n'


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config_text(text)
    return err.value.problems


def test_the_sample_config_loads() -> None:
    config = load_config(ROOT / "data" / "switch.toml")
    assert [str(x) for x in config.sip_listen] == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
    assert config.sip.invite_timeout == 8 and not config.sip.stop_gateway_after_invite_timeout
    (customer,) = config.mapping_gateways
    assert (customer.name, customer.auth, customer.cps_limit) == ("atlas_telecom", "ip", 30)
    (vendor,) = config.routing_gateways
    assert vendor.prefixes == ("44", "1") and vendor.huntstop_codes == (486, 404)
    assert vendor.lowest_profit_per_second == "0.0"


def test_defaults() -> None:
    config = load_config_text(MINIMAL)
    assert config.sip.call_progress_timeout == 60 and config.spool_dir == Path("data/spool")
    assert config.mapping_gateways == () and config.routing_gateways == ()
    sip = config.sip
    assert (sip.max_number_digits, sip.max_message_bytes, sip.max_headers,
            sip.max_header_bytes, sip.max_uri_bytes) == (32, 65535, 128, 8192, 4096)
    assert sip.t1 == 0.5
    assert problems(MINIMAL + "[sip]\nt1 = 0\n") == ["sip.t1: must be between 0.05 and 4, got 0"]


def test_sip_size_limits_load_and_are_range_checked() -> None:
    sip = load_config_text(MINIMAL + "[sip]\nmax_number_digits = 15\nmax_message_bytes = 1024\n"
                           "max_headers = 16\nmax_header_bytes = 256\nmax_uri_bytes = 128\n").sip
    assert (sip.max_number_digits, sip.max_message_bytes, sip.max_headers,
            sip.max_header_bytes, sip.max_uri_bytes) == (15, 1024, 16, 256, 128)
    found = problems(MINIMAL + "[sip]\nmax_number_digits = 129\nmax_message_bytes = 65536\n"
                     "max_headers = 15\nmax_header_bytes = 255\nmax_uri_bytes = 127\n")
    assert found == [
        "sip.max_number_digits: must be between 1 and 128, got 129",
        "sip.max_message_bytes: must be between 1024 and 65535, got 65536",
        "sip.max_headers: must be between 16 and 1024, got 15",
        "sip.max_header_bytes: must be between 256 and 65535, got 255",
        "sip.max_uri_bytes: must be between 128 and 65535, got 127",
    ]
    assert problems(MINIMAL + "[sip]\nmax_number_digits = 0\nmax_headers = 20.5\n") == [
        "sip.max_number_digits: must be between 1 and 128, got 0",
        "sip.max_headers: must be an integer",
    ]


@pytest.mark.parametrize("digits", ["\u00b2", "\u0664"])   # "²" and ARABIC-INDIC FOUR: isdigit()
def test_prefixes_are_ascii_digits(digits: str) -> None:
    gateway = '[[routing_gateway]]\nname = "v"\naddress = "127.0.0.1:5070"\n'
    assert problems(MINIMAL + gateway + f'prefixes = ["4{digits}"]\n') == [
        f"routing_gateway[0].prefixes[0]: must be digits, got '4{digits}'"]
    customer = '[[mapping_gateway]]\nname = "c"\naddresses = ["127.0.0.1"]\n'
    assert problems(MINIMAL + customer + f'tech_prefix = "9{digits}"\n') == [
        f"mapping_gateway[0].tech_prefix: must be digits, got '9{digits}'"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "switch: the [switch] table is required (id, sip_listen)"),
    ("[switch\n", "not valid TOML"),
    (MINIMAL + "[sip]\ninvite_timeout = 0\n",
     "sip.invite_timeout: must be between 1 and 300, got 0"),
    (MINIMAL + "[sip]\ninvite_tmeout = 5\n", "sip.invite_tmeout: unknown key (misspelt?)"),
    (MINIMAL + "[sip]\nstop_gateway_after_invite_timeout = 1\n",
     "sip.stop_gateway_after_invite_timeout: must be true or false"),
    ('[switch]\nid = "x"\nsip_listen = ["udp:localhost:5060"]\n',
     "switch.sip_listen[0]: host must be an IP address, got 'localhost'"),
    ('[switch]\nid = "x"\nsip_listen = ["udp:127.0.0.1:99999"]\n',
     "switch.sip_listen[0]: port must be 1-65535, got 99999"),
    (MINIMAL + '[[mapping_gateway]]\nname = "a"\nauth = "token"\naddresses = ["127.0.0.1"]\n',
     "mapping_gateway[0].auth: must be one of ip, ip_port, password, got 'token'"),
    (MINIMAL + '[[mapping_gateway]]\nname = "a"\naddresses = ["127.0.0.1:5071"]\n',
     'mapping_gateway[0].addresses[0]: must be an IP address (auth = "ip" takes no port)'),
    (MINIMAL + '[[mapping_gateway]]\nname = "a"\nauth = "password"\n',
     'mapping_gateway[0].password: is required when auth = "password"'),
    (MINIMAL + '[[mapping_gateway]]\nname = "a"\naddresses = ["127.0.0.1"]\ncps_limit = 0\n',
     "mapping_gateway[0].cps_limit: must be between 1 and 100000, got 0"),
    (MINIMAL + '[[routing_gateway]]\nname = "v"\naddress = "127.0.0.1:5070"\nprefixes = ["4a"]\n',
     "routing_gateway[0].prefixes[0]: must be digits, got '4a'"),
    (MINIMAL + '[[routing_gateway]]\nname = "v"\naddress = "127.0.0.1:5070"\nprefixes = ["4"]\n'
     "huntstop_codes = [200]\n", "routing_gateway[0].huntstop_codes: must be a list of SIP codes"),
    (MINIMAL + '[[routing_gateway]]\nname = "v"\naddress = "127.0.0.1:5070"\nprefixes = ["4"]\n'
     '[[routing_gateway]]\nname = "v"\naddress = "127.0.0.1:5071"\nprefixes = ["4"]\n',
     "routing_gateway: name 'v' is used twice"),
])
def test_each_problem_names_its_key(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_every_problem_is_reported_at_once() -> None:
    found = problems('[switch]\nid = ""\nsip_listen = ["x"]\n[sip]\ninvite_timeout = "8"\n')
    assert len(found) == 3


def test_check_command(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "switch", "check", "--config",
                           str(ROOT / "data" / "switch.toml")], capture_output=True, text=True)
    assert good.returncode == 0 and "OK (switch sw1" in good.stdout
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text('[switch]\nid = "x"\nsip_listen = ["udp:127.0.0.1:0"]\nspool = "x"\n')
    bad = subprocess.run([sys.executable, "-m", "switch", "check", "--config", str(bad_file)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "switch.spool: unknown key (misspelt?)" in bad.stderr and "Traceback" not in bad.stderr


def test_lowest_profit_per_second_must_be_a_decimal():
    from switch.config import ConfigError, load_config_text

    base = ('[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:5060"]\n[[routing_gateway]]\n'
            'name = "v"\naddress = "127.0.0.1:5070"\nprefixes = ["44"]\n')
    assert load_config_text(base + 'lowest_profit_per_second = "-0.00002"\n') \
        .routing_gateways[0].lowest_profit_per_second == "-0.00002"
    try:
        load_config_text(base + 'lowest_profit_per_second = "cheap"\n')
    except ConfigError as err:
        assert err.problems[0].startswith("routing_gateway[0].lowest_profit_per_second: must be")
    else:
        raise AssertionError("a non-number was accepted")


def test_a_switch_needs_a_udp_listener_and_a_sane_shutdown_grace():
    from switch.config import ConfigError, load_config_text

    try:
        load_config_text('[switch]\nid = "sw1"\nsip_listen = ["tcp:127.0.0.1:5060"]\n'
                         "shutdown_grace = -1\n")
    except ConfigError as err:
        assert err.problems == [
            "switch.shutdown_grace: must be between 0 and 3600, got -1",
            "switch.sip_listen: needs a udp: address (vendor legs use UDP)",
        ]
    else:
        raise AssertionError("accepted")


def test_guard_and_admin_defaults_follow_the_article() -> None:
    config = load_config_text(MINIMAL)
    guard = config.guard
    assert guard.enabled and guard.trusted == () and guard.trust_gateways
    assert guard.drop_options_from_untrusted and not guard.drop_register_from_untrusted
    assert (guard.recent_hits, guard.recent_seconds) == (20, 60)  # -m recent --hitcount 20
    assert (guard.rate, guard.burst) == (10, 20)  # -m hashlimit 10/sec burst 20
    assert (guard.dialogs_per_ip, guard.dialogs_per_24) == (10, 30)  # connlimit /32 and /24
    assert guard.ban_time == 600 and "friendly-scanner" in guard.scanner_agents
    assert not config.admin.enabled and config.admin.allow == ("127.0.0.0/8", "::1/128")


def test_guard_and_admin_keys_are_checked() -> None:
    found = problems(MINIMAL + '[guard]\ntrusted = ["10.0.0.0/8", "not-a-net"]\nrate = 0\n'
                     'scanner_agents = ["x", " "]\nbogus = 1\n'
                     '[admin]\nlisten = "localhost:80"\nallow = ["300.1.1.1/8"]\n')
    assert found == [
        "guard.bogus: unknown key (misspelt?)",
        "guard.scanner_agents: must not hold an empty name",
        "guard.trusted[1]: must be an address or CIDR, got 'not-a-net'",
        "guard.rate: must be between 0.1 and 1e+06, got 0",
        "admin.listen: host must be an IP address, got 'localhost'",
        "admin.allow[0]: must be an address or CIDR, got '300.1.1.1/8'",
    ]
    config = load_config_text(MINIMAL + '[guard]\ntrusted = ["192.0.2.7", "10.0.0.0/8"]\n'
                              '[admin]\nlisten = "127.0.0.1:8080"\ntoken_file = "t"\n')
    assert config.guard.trusted == ("192.0.2.7", "10.0.0.0/8")
    assert config.admin.enabled and config.admin.token_file == "t"
