"""``python -m switch``: the softswitch's command line (``run``, ``check``, ``registrations``,
``firewall``).

``run`` uses uvloop when it is installed (it is a dependency on Linux and macOS): the same
asyncio code, a faster loop.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from switch.aio import run_loop
from switch.config import ConfigError, SwitchConfig, load_config
from switch.routing import SnapshotError


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m switch``; return the exit status.

    >>> main(["check", "--config", "data/switch.toml"])  # doctest: +ELLIPSIS
    data/switch.toml: OK (switch sw1; 2 listeners, 1 customers, 1 vendors)
    0
    """
    parser = argparse.ArgumentParser(prog="python -m switch",
                                     description="The ratelab softswitch.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a configuration file and exit",
                                description="Validate a switch configuration; every problem "
                                            "is listed as key: problem.")
    check.add_argument("--config", required=True, metavar="FILE", help="the TOML file")
    run = commands.add_parser(
        "run", help="run the switch until SIGTERM (drains) or SIGINT",
        description="Run the softswitch. SIGTERM/SIGINT drain and stop (exit 0); SIGHUP "
                    "reloads the configuration and the routing snapshot.")
    run.add_argument("--config", required=True, metavar="FILE", help="the TOML file")
    regs = commands.add_parser("registrations", help="print the registrar's bindings",
                               description="Print the live bindings in the state file.")
    regs.add_argument("--config", required=True, metavar="FILE", help="the TOML file")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    fw = commands.add_parser(
        "firewall", help="print the [guard]/[admin] policy as kernel rules",
        description="Print iptables-restore, ip6tables-restore or nft -f input for the "
                    "switch's SIP ports and admin port (docs/guard.md); --rollback prints "
                    "what removes them.")
    fw.add_argument("--config", metavar="FILE", help="the TOML file (not needed with --rollback)")
    fw.add_argument("--format", required=True, choices=["iptables", "ip6tables", "nftables"],
                    help="iptables (IPv4), ip6tables (IPv6) or nftables (both)")
    fw.add_argument("--rollback", action="store_true",
                    help="print what removes the rules: a sh script (iptables, ip6tables) or "
                         "nft -f input (nftables)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.log_level)
    if args.command == "firewall":
        return _firewall(parser, args.config, args.format, args.rollback)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "registrations":
        return _registrations(config)
    print(f"{args.config}: OK (switch {config.id}; {len(config.sip_listen)} listeners, "
          f"{len(config.mapping_gateways)} customers, {len(config.routing_gateways)} vendors)")
    return 0


def _firewall(parser: argparse.ArgumentParser, config_path: str | None, fmt: str,
              rollback: bool) -> int:
    from switch.firewall import FirewallError, render, render_rollback

    if rollback:
        sys.stdout.write(render_rollback(fmt))
        return 0
    if config_path is None:
        parser.error("firewall: --config is required (except with --rollback)")
    try:
        sys.stdout.write(render(load_config(config_path), fmt, source=config_path))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FirewallError as err:
        print(f"error: {config_path}: {err}", file=sys.stderr)
        return 2
    return 0


def _registrations(config: SwitchConfig) -> int:
    import time

    from switch.registrar import load_bindings, state_path

    path = state_path(config)
    now = time.time()
    try:
        rows = load_bindings(path, 0.0, now)  # on the wall clock: offset 0
    except (ValueError, KeyError, TypeError) as err:
        print(f"error: {path}: {err}", file=sys.stderr)
        return 2
    print(f"{'gateway':<20} {'contact':<40} {'source':<28} {'expires_in':<10} user_agent")
    for b in rows:
        source = f"{b.transport}:{b.host}:{b.port}"
        print(f"{b.gateway:<20} {b.contact:<40} {source:<28} {int(b.expires - now):<10} "
              f"{b.user_agent or '-'}")
    print(f"{len(rows)} registration(s) in {path}")
    return _upstream_table(config, now)


def _upstream_table(config: SwitchConfig, now: float) -> int:
    """The switch's own registrations to its vendors, from the status file the switch keeps."""
    from switch.upstream import load_status, status_path

    path = status_path(config)
    try:
        rows = load_status(path)
    except (ValueError, KeyError, TypeError) as err:
        print(f"error: {path}: {err}", file=sys.stderr)
        return 2
    if not rows and not any(g.register_out for g in config.routing_gateways):
        return 0
    print(f"\n{'upstream':<20} {'server':<24} {'user':<16} {'state':<14} "
          f"{'registered_for':<15} {'failing_for':<12} last_answer")
    for r in rows:
        until = "-" if r.registered_until is None else f"{int(r.registered_until - now)} s"
        since = "-" if r.failing_since is None else f"{int(now - r.failing_since)} s"
        print(f"{r.gateway:<20} {r.server:<24} {r.user:<16} {r.state:<14} {until:<15} "
              f"{since:<12} {r.last_answer or '-'}")
    print(f"{len(rows)} upstream registration(s) in {path}")
    return 0


def _run(config_path: str, level: str) -> int:
    from switch.server import run

    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_loop(run(config_path))
    except (ConfigError, SnapshotError, OSError, RuntimeError) as err:
        # RuntimeError: a local media relay worker did not start (its stderr is in the message)
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
