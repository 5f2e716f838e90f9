"""``python -m switch firewall``: the rendered rules (order, ports, every [guard] key), and their
validation by the real tools, each in a throwaway network namespace (``unshare -n``): never the
machine's own tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from switch.config import load_config, load_config_text
from switch.config_types import SwitchConfig
from switch.firewall import (
    CHAINS,
    FirewallError,
    admin_port,
    render,
    render_iptables,
    render_nftables,
    render_rollback,
    sip_ports,
    trusted_networks,
)
from tests.switch.netns import in_netns

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "data/switch.toml"  # relative: the CLI runs from ROOT
BASE = ('[switch]\nid = "sw1"\nsip_listen = ["udp:192.0.2.1:5060", "tcp:192.0.2.1:5061"]\n'
        'spool_dir = "/tmp/x"\n')
GATEWAYS = ('[[mapping_gateway]]\nname = "ipco"\naddresses = ["198.51.100.7"]\n'
            '[[mapping_gateway]]\nname = "portco"\nauth = "ip_port"\n'
            'addresses = ["198.51.100.8:5060", "[2001:db8::8]:5060"]\n'
            '[[mapping_gateway]]\nname = "pwco"\nauth = "password"\npassword = "x"\n'
            '[[routing_gateway]]\nname = "v1"\naddress = "203.0.113.5:5060"\nprefixes = ["1"]\n'
            'register_out = true\nregister_user = "u"\nregister_password = "p"\n'
            'register_server = "203.0.113.6:5060"\n')


def _config(guard: str = "", more: str = "") -> SwitchConfig:
    return load_config_text(f"{BASE}{more}\n[guard]\n{guard}\n")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _index(lines: list[str], needle: str) -> int:
    return next(k for k, line in enumerate(lines) if needle in line)


# --- rendering ------------------------------------------------------------------------------------

def test_chains_are_declared_and_hooked_once_at_the_top_of_input() -> None:
    lines = _lines(render_iptables(_config()))
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    for chain in (*CHAINS, "RATELAB_GUARD", "SIP_BAN"):
        assert f":{chain} - [0:0]" in lines
    assert [line for line in lines if "INPUT" in line] == ["-I INPUT 1 -j RATELAB_GUARD"]
    assert not any(line.startswith(("-F", "-X", ":INPUT")) for line in lines)  # --noflush


def test_order_trusted_then_signatures_then_rates() -> None:
    lines = _lines(render_iptables(_config('trusted = ["10.0.0.0/8"]')))
    order = [_index(lines, needle) for needle in (
        "-A RATELAB_GUARD -p udp --dport 5060 -j SIP_TRUSTED",
        "-A SIP_TRUSTED -s 10.0.0.0/8 -j ACCEPT",
        "-A SIP_TRUSTED -j SIP_SCANNER_BLOCK",
        '"OPTIONS sip:"', '"friendly-scanner"',
        "-A SIP_SCANNER_BLOCK -j SIP_RATE_LIMIT",
        "--rcheck", "--set", "--update", "hashlimit", "--connlimit-mask 32",
        "--connlimit-mask 24", "-m limit --limit 2000/second --limit-burst 2000 -j ACCEPT",
        "-A SIP_RATE_LIMIT -j DROP", "-A SIP_BAN")]
    assert order == sorted(order), order
    # untrusted_rate = 0: no shared budget, whatever passed the per-source rules is accepted
    unlimited = _lines(render_iptables(_config("untrusted_rate = 0")))
    assert "-A SIP_RATE_LIMIT -j ACCEPT" in unlimited
    assert not any("-m limit" in line for line in unlimited)
    text = render_nftables(_config('trusted = ["10.0.0.0/8"]'))
    order = [text.index(needle) for needle in (
        "chain SIP_TRUSTED", "ip saddr @trusted4 counter accept", "jump SIP_SCANNER_BLOCK",
        "chain SIP_SCANNER_BLOCK", "0x4f5054494f4e53207369703a", "jump SIP_RATE_LIMIT",
        "chain SIP_RATE_LIMIT", "@sip_ban4 counter drop", "update @sip_recent4",
        "update @sip_rate4", "add @sip_conn4", "add @sip_conn24_4",
        "limit rate over 2000/second burst 2000 packets counter drop", "chain SIP_BAN")]
    assert order == sorted(order), order


def test_ports_come_from_sip_listen() -> None:
    config = _config()
    assert sip_ports(config) == (("tcp", 5061), ("udp", 5060))
    lines = _lines(render_iptables(config))
    assert "-A RATELAB_GUARD -p udp --dport 5060 -j SIP_TRUSTED" in lines
    assert "-A RATELAB_GUARD -p tcp --dport 5061 -j SIP_TRUSTED" in lines
    assert len([line for line in lines if "--dport" in line]) == 2
    text = render_nftables(config)
    assert "udp dport { 5060 } jump SIP_TRUSTED" in text
    assert "tcp dport { 5061 } jump SIP_TRUSTED" in text


def test_port_zero_cannot_be_firewalled() -> None:
    config = load_config_text('[switch]\nid = "a"\nsip_listen = ["udp:127.0.0.1:0"]\n')
    with pytest.raises(FirewallError, match="port 0"):
        render(config, "iptables")


def test_trust_gateways_adds_ip_authenticated_customers_and_vendors() -> None:
    on = [str(n) for n in trusted_networks(_config("trust_gateways = true", GATEWAYS))]
    # 192.0.2.1 is the switch's own listening address: trusted always (its own host)
    assert on == ["192.0.2.1/32", "198.51.100.7/32", "198.51.100.8/32", "203.0.113.5/32",
                  "203.0.113.6/32", "2001:db8::8/128"]
    off = trusted_networks(_config('trust_gateways = false\ntrusted = ["10.1.0.0/16"]',
                                   GATEWAYS))
    assert [str(n) for n in off] == ["10.1.0.0/16", "192.0.2.1/32"]
    v4 = render_iptables(_config("trust_gateways = true", GATEWAYS))
    v6 = render_iptables(_config("trust_gateways = true", GATEWAYS), family=6)
    assert "-A SIP_TRUSTED -s 198.51.100.8/32 -j ACCEPT" in v4 and "2001:db8" not in v4
    assert "-A SIP_TRUSTED -s 2001:db8::8/128 -j ACCEPT" in v6 and "198.51" not in v6
    assert "198.51.100.7" not in render_iptables(_config("trust_gateways = false", GATEWAYS))


def test_the_switch_trusts_its_own_host() -> None:
    # Its listening addresses, or loopback when it listens on a wildcard address.
    wildcard = load_config_text(BASE.replace("192.0.2.1", "0.0.0.0") +
                                '[media]\naddress = "192.0.2.1"\n[guard]\n')
    assert [str(n) for n in trusted_networks(wildcard)] == ["127.0.0.1/32", "::1/128"]


def test_trusted_cidrs_are_collapsed_and_split_by_family() -> None:
    config = _config('trusted = ["10.0.0.0/8", "10.1.2.3", "2001:db8::/32", "2001:db8:1::1"]')
    assert [str(n) for n in trusted_networks(config)] == ["10.0.0.0/8", "192.0.2.1/32",
                                                          "2001:db8::/32"]
    text = render_nftables(config)
    assert "set trusted4 { type ipv4_addr; flags interval; auto-merge; " \
           "elements = { 10.0.0.0/8, 192.0.2.1/32 } }" in text
    assert "elements = { 2001:db8::/32 }" in text


def test_signature_toggles_and_scanner_agents() -> None:
    default = render_iptables(_config())
    assert '--string "OPTIONS sip:" --algo bm --to 160 -j DROP' in default
    assert "REGISTER sip:" not in default
    assert '-m string --string "VaxSIPUserAgent" --algo bm --icase -j DROP' in default
    flipped = _config("drop_options_from_untrusted = false\ndrop_register_from_untrusted = true\n"
                      'scanner_agents = ["evil", "say \\"hi\\""]')
    text = render_iptables(flipped)
    assert "OPTIONS sip:" not in text and '--string "REGISTER sip:"' in text
    assert '--string "evil" --algo bm --icase' in text and "friendly-scanner" not in text
    quoted = b'say "hi"'.hex()
    assert f'--hex-string "|{quoted}|"' in text
    nft = render_nftables(flipped)
    assert "0x4f5054494f4e53" not in nft
    assert f"@th,64,104 0x{b'REGISTER sip:'.hex()} counter drop" in nft
    assert f"@ih,0,104 0x{b'REGISTER sip:'.hex()} counter drop" in nft
    # the agents cannot be matched in nftables: listed in the header comment only
    assert "#   evil" in nft and "has no string match" in nft
    assert not any("evil" in line for line in _lines(nft))


def test_too_long_agent_is_refused() -> None:
    with pytest.raises(FirewallError, match="longer"):
        render_iptables(_config(f'scanner_agents = ["{"x" * 129}"]'))


def test_rate_keys() -> None:
    config = _config("recent_hits = 7\nrecent_seconds = 30\nrate = 0.5\nburst = 3\n"
                     "dialogs_per_ip = 4\ndialogs_per_24 = 9\nban_time = 120\n"
                     "max_sources = 5000")
    v4 = render_iptables(config)
    assert "--update --seconds 30 --hitcount 8 -j SIP_BAN" in v4  # more than 7
    assert "--hashlimit-above 30/minute --hashlimit-burst 3 --hashlimit-mode srcip " \
           "--hashlimit-name sip_rate --hashlimit-htable-max 5000 -j SIP_BAN" in v4
    assert "--connlimit-above 4 --connlimit-mask 32 --connlimit-saddr -j SIP_BAN" in v4
    assert "--connlimit-above 9 --connlimit-mask 24 --connlimit-saddr -j SIP_BAN" in v4
    assert "--name sip_ban --rsource --rcheck --seconds 120 -j DROP" in v4
    v6 = render_iptables(config, family=6)
    assert "--connlimit-above 4 --connlimit-mask 64" in v6
    assert "--connlimit-above 9 --connlimit-mask 48" in v6
    assert "--hashlimit-srcmask 64" in v6 and "--mask ffff:ffff:ffff:ffff::" in v6
    nft = render_nftables(config)
    assert "update @sip_recent4 { ip saddr limit rate over 14/minute burst 7 packets }" in nft
    assert "update @sip_rate4 { ip saddr limit rate over 30/minute burst 3 packets }" in nft
    assert "add @sip_conn4 { ip saddr ct count over 4 }" in nft
    assert "add @sip_conn24_4 { ip saddr & 255.255.255.0 ct count over 9 }" in nft
    assert "add @sip_conn24_6 { ip6 saddr & ffff:ffff:ffff:: ct count over 9 }" in nft
    assert "set sip_ban4 { type ipv4_addr; size 5000; flags dynamic,timeout; timeout 120s; }" \
        in nft


def test_ban_time_zero_drops_without_banning() -> None:
    config = _config("ban_time = 0")
    v4 = _lines(render_iptables(config))
    assert "-A SIP_BAN -j DROP" in v4 and not any("sip_ban" in line for line in v4)
    nft = render_nftables(config)
    assert "sip_ban" not in nft and "chain SIP_BAN {\n\t\tcounter drop\n\t}" in nft


def test_guard_disabled_leaves_the_sip_ports_alone() -> None:
    config = _config("enabled = false", '[admin]\nlisten = "127.0.0.1:8080"\n')
    lines = _lines(render_iptables(config))
    assert not any("-j SIP_TRUSTED" in line for line in lines)
    assert "-A RATELAB_GUARD -p tcp --dport 8080 -j DROP" in lines
    assert "jump SIP_TRUSTED" not in render_nftables(config)


def test_admin_allow_comes_before_its_drop_and_before_any_sip_rule() -> None:
    config = _config(more='[admin]\nlisten = "127.0.0.1:8080"\n'
                          'allow = ["192.0.2.0/24", "10.9.9.9", "2001:db8:a::/48"]\n')
    assert admin_port(config) == 8080
    lines = _lines(render_iptables(config))
    accept = [_index(lines, f"--dport 8080 -s {n} -j ACCEPT")
              for n in ("10.9.9.9/32", "192.0.2.0/24")]
    drop = _index(lines, "-A RATELAB_GUARD -p tcp --dport 8080 -j DROP")
    first_sip = _index(lines, "-j SIP_TRUSTED")
    assert max(accept) < drop < first_sip
    v6 = _lines(render_iptables(config, family=6))
    assert _index(v6, "--dport 8080 -s 2001:db8:a::/48 -j ACCEPT") < \
        _index(v6, "--dport 8080 -j DROP")
    nft = render_nftables(config)
    assert nft.index("tcp dport 8080 ip saddr @admin4 counter accept") < \
        nft.index("tcp dport 8080 counter drop") < nft.index("jump SIP_TRUSTED")
    assert "elements = { 10.9.9.9/32, 192.0.2.0/24 }" in nft
    assert "--dport 8080" not in render_iptables(_config())


def test_admin_port_shared_with_sip_tcp_is_refused() -> None:
    with pytest.raises(FirewallError, match="5061"):
        admin_port(_config(more='[admin]\nlisten = "127.0.0.1:5061"\n'))


def test_header_names_the_generator_and_config() -> None:
    text = render(_config(), "ip6tables", source="/etc/switch.toml")
    assert text.startswith("# Generated by `python -m switch firewall --format ip6tables` for "
                           "switch sw1.\n# Config from /etc/switch.toml;")
    with pytest.raises(FirewallError, match="unknown format"):
        render(_config(), "pf")


# --- the real tools, each in a namespace of its own ----------------------------------------------

CONFIGS = {
    "default": load_config(ROOT / SAMPLE),
    "many_trusted": _config(
        "trust_gateways = true\ntrusted = [" + ", ".join(
            [f'"10.{k}.0.0/16"' for k in range(100)] + [f'"198.18.{k}.{k}"' for k in range(50)]
            + [f'"2001:db8:{k:x}::/48"' for k in range(50)] + ['"fd00::1"']) + "]", GATEWAYS),
    "admin": _config(more='[admin]\nlisten = "[::1]:8080"\n'
                          'allow = ["192.0.2.0/24", "2001:db8::/32"]\n'),
    "toggles": _config("drop_options_from_untrusted = false\n"
                       "drop_register_from_untrusted = true\nban_time = 0\n"
                       'scanner_agents = ["a \\"quoted\\" name", "x;y"]\n'
                       "recent_hits = 300\nrecent_seconds = 7.5\nrate = 0.1\nburst = 1"),
}


def _tools_present() -> None:
    import shutil

    for tool in ("unshare", "iptables-restore", "ip6tables-restore", "nft"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install iptables nftables util-linux "
                        "(.ci/run does)")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_iptables_restore_accepts_and_loads_it(name: str) -> None:
    _tools_present()
    for fmt, tool in (("iptables", "iptables-restore"), ("ip6tables", "ip6tables-restore")):
        text = render(CONFIGS[name], fmt)
        check = in_netns([tool, "--noflush", "--test"], text)
        assert check.returncode == 0, (fmt, check.stderr)
        # --test only parses; loading it (into the namespace's empty tables) asks the kernel
        loaded = in_netns([tool, "--noflush"], text)
        assert loaded.returncode == 0, (fmt, loaded.stderr)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_nft_accepts_it_and_re_applying_replaces_the_table(name: str) -> None:
    _tools_present()
    text = render(CONFIGS[name], "nftables")
    check = in_netns(["nft", "-c", "-f", "-"], text)
    assert check.returncode == 0, check.stderr
    twice = in_netns(["sh", "-c", 'f=$(mktemp); cat > "$f"; nft -f "$f" && nft -f "$f" && '
                      'nft list table inet ratelab_guard; rm -f "$f"'], text)
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.count("chain SIP_TRUSTED {") == 1


def test_iptables_rollback_removes_every_copy_and_is_safe_twice(tmp_path: Path) -> None:
    _tools_present()
    rules = tmp_path / "rules"
    rules.write_text(render(CONFIGS["admin"], "iptables"))
    rollback = tmp_path / "rollback.sh"
    rollback.write_text(render_rollback("iptables"))
    script = (f"iptables -A INPUT -s 192.0.2.99 -j DROP && "  # the administrator's own rule
              f"iptables-restore --noflush < {rules} && iptables-restore --noflush < {rules} && "
              f"iptables -S INPUT && sh {rollback} && sh {rollback} && echo ROLLED && "
              "iptables -S")
    run = in_netns(["sh", "-c", script])
    assert run.returncode == 0, run.stderr
    before, after = run.stdout.split("ROLLED")
    assert before.count("-j RATELAB_GUARD") == 2  # a second apply without rollback: two jumps
    assert "RATELAB_GUARD" not in after and "SIP_" not in after
    assert "-A INPUT -s 192.0.2.99/32 -j DROP" in after  # untouched


def test_nft_rollback_is_safe_with_or_without_the_table() -> None:
    _tools_present()
    text = render_rollback("nftables")
    assert in_netns(["nft", "-f", "-"], text).returncode == 0
    both = render(CONFIGS["default"], "nftables") + text
    run = in_netns(["sh", "-c", "nft -f - && nft list tables"], both)
    assert run.returncode == 0 and "ratelab_guard" not in run.stdout, run.stderr


# --- the command line -----------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switch", "firewall", *args],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_cli_prints_the_rules() -> None:
    for fmt in ("iptables", "ip6tables", "nftables"):
        run = _cli("--config", SAMPLE, "--format", fmt)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert run.stdout == render(load_config(ROOT / SAMPLE), fmt, source=SAMPLE)
    run = _cli("--format", "iptables", "--rollback")
    assert run.returncode == 0 and run.stdout.startswith("#!/bin/sh")


def test_cli_bad_config_path_and_bad_config(tmp_path: Path) -> None:
    missing = _cli("--config", str(tmp_path / "nope.toml"), "--format", "iptables")
    assert missing.returncode == 2 and missing.stdout == ""
    assert "nope.toml" in missing.stderr and "cannot read" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + "[guard]\ntrusted = [\"not-a-net\"]\n")
    run = _cli("--config", str(bad), "--format", "nftables")
    assert run.returncode == 2 and run.stdout == ""
    assert "guard.trusted[0]" in run.stderr
    zero = tmp_path / "zero.toml"
    zero.write_text('[switch]\nid = "a"\nsip_listen = ["udp:127.0.0.1:0"]\n')
    run = _cli("--config", str(zero), "--format", "iptables")
    assert run.returncode == 2 and "port 0" in run.stderr and run.stdout == ""
    run = _cli("--format", "iptables")
    assert run.returncode == 2 and "--config is required" in run.stderr
    run = _cli("--config", SAMPLE, "--format", "pf")
    assert run.returncode == 2 and "invalid choice" in run.stderr


TCP_PROBE = '''
import socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
load = ["iptables-restore", "--noflush"] if sys.argv[1] == "iptables" else ["nft", "-f", "-"]
assert subprocess.run(load, input=sys.stdin.read(), text=True).returncode == 0
srv = socket.socket()
srv.bind(("127.0.0.1", 5060))
srv.listen(5)
srv.settimeout(5)
for source in ("127.0.0.1", "127.0.0.4"):  # trusted (data/switch.toml's customer), untrusted
    client = socket.socket()
    client.bind((source, 0))
    client.settimeout(5)
    client.connect(("127.0.0.1", 5060))
    conn, _ = srv.accept()
    conn.settimeout(1.0)
    client.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/TCP x\\r\\n\\r\\n")
    try:
        print(source, conn.recv(12).decode())
    except OSError:
        print(source, "nothing")
'''


@pytest.mark.parametrize("fmt", ["iptables", "nftables"])
def test_the_request_line_is_found_in_tcp_too(tmp_path: Path, fmt: str) -> None:
    """Over TCP the request line follows the TCP header and its options (nftables: ``@ih``;
    iptables: within ``--to 160``): an untrusted OPTIONS segment never reaches the listener."""
    _tools_present()
    probe = tmp_path / "probe.py"
    probe.write_text(TCP_PROBE)
    run = in_netns([sys.executable, str(probe), fmt], render(CONFIGS["default"], fmt))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["127.0.0.1 OPTIONS sip:", "127.0.0.4 nothing"], run.stdout
