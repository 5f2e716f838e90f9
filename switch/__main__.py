"""``python -m switch``: the softswitch's command line.

Today it validates a configuration (``check``); running the switch lands with the rest of the
switch-core issue.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from switch.config import ConfigError, load_config


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
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK (switch {config.id}; {len(config.sip_listen)} listeners, "
          f"{len(config.mapping_gateways)} customers, {len(config.routing_gateways)} vendors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
