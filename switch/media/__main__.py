"""``python -m switch.media run``: the media relay process, controlled over rtpengine's ng protocol.

Prints one ready line once both the control socket and the port range are usable, e.g.
``relay ready: ng 127.0.0.1:2223 media 127.0.0.1 ports 10000-20000``, then relays until SIGTERM or
SIGINT (exit 0). Uses uvloop when it is installed. Bad arguments exit 2 with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence

from switch.aio import run_loop
from switch.media.ng import parse_address
from switch.media.ports import DEFAULT_PORT_MAX, DEFAULT_PORT_MIN
from switch.media.relay import Relay


def _address(text: str) -> tuple[str, int]:
    try:
        host, port = parse_address(text)
        ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}") from None
    return host, port


def _ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number 1-65535: {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line parser (``run`` is the only command).

    >>> build_parser().parse_args(["run", "--address", "127.0.0.1"]).port_min
    10000
    """
    parser = argparse.ArgumentParser(
        prog="python -m switch.media",
        description="The ratelab media relay: RTP/RTCP relaying controlled over rtpengine's ng "
                    "protocol (ping, offer, answer, delete, query, statistics, list).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run the relay until SIGTERM or SIGINT",
        description="Run the relay. It prints a ready line once listening; SIGTERM/SIGINT end "
                    "every call and exit 0.")
    run.add_argument("--listen-ng", type=_address, default=("127.0.0.1", 2223),
                     metavar="IP:PORT", help="UDP address of the ng control socket "
                                             "(default 127.0.0.1:2223; [v6]:port for IPv6)")
    run.add_argument("--address", type=_ip, required=True, metavar="IP",
                     help="the address media ports bind to and SDP advertises")
    run.add_argument("--port-min", type=_port, default=DEFAULT_PORT_MIN, metavar="N",
                     help=f"lowest media port (default {DEFAULT_PORT_MIN})")
    run.add_argument("--port-max", type=_port, default=DEFAULT_PORT_MAX, metavar="N",
                     help=f"highest media port (default {DEFAULT_PORT_MAX})")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    return parser


async def serve(relay: Relay, listen: tuple[str, int]) -> int:
    """Serve until SIGTERM/SIGINT; print the ready line once listening.

    Run by :func:`main`; tests/switch/test_media_relay.py runs it as a process and stops it
    with SIGTERM.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = await relay.start(*listen)
    shown = f"[{host}]" if ":" in host else host
    print(f"relay ready: ng {shown}:{port} media {relay.address} "
          f"ports {relay.ports.port_min}-{relay.ports.port_max}", flush=True)
    await stop.wait()
    await relay.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m switch.media``; return the exit status.

    >>> main(["run", "--address", "127.0.0.1", "--port-min", "20", "--port-max", "10"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        relay = Relay(args.address, port_min=args.port_min, port_max=args.port_max)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return run_loop(serve(relay, args.listen_ng))
    except OSError as err:  # the control address is taken or not local
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
