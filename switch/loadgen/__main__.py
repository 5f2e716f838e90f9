"""``python -m switch.loadgen``: SIP load generator (UDP only) for the ratelab softswitch.

Subcommands: ``uas`` (a vendor endpoint that answers by a behaviour mix), ``uac`` (a customer
endpoint that places paced calls) and ``plan FILE.toml`` (several of each in one process). Each
prints a one-paragraph summary at the end and exits 0; bad arguments exit 2 with a message
saying what to change. Runs on uvloop when it is installed.

>>> main(["uac", "--target", "127.0.0.1:5060", "--rate", "0"])  # error on stderr
2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from switch.loadgen.common import parse_hostport
from switch.loadgen.mix import BehaviourMix, DurationMix, MixError
from switch.loadgen.plan import PlanError, load_plan, run_plan
from switch.loadgen.uac import Uac
from switch.loadgen.uas import Uas

__all__ = ["main"]


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _on_signals(stop: asyncio.Event) -> None:
    """The first SIGINT/SIGTERM asks for a clean stop; a second one acts as usual (kills)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def first() -> None:
        stop.set()
        for sig in signals:
            loop.remove_signal_handler(sig)

    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, first)


def _say(text: str) -> None:
    print(text, flush=True)


async def _uas(args: argparse.Namespace) -> int:
    host, port = parse_hostport(args.listen)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user:
            raise ValueError("--auth wants USER:PASSWORD")
        auth = (user, password)
    uas = Uas(host, port, mix=BehaviourMix.parse(args.mix), ring_seconds=args.ring_seconds,
              answer_delay=args.answer_delay, seed=args.seed, name=args.name, require_auth=auth)
    await uas.start()
    stop = asyncio.Event()
    _on_signals(stop)
    bound = uas.address
    _say(f"{args.name}: listening on udp:{bound[0]}:{bound[1]} (mix {uas.mix.describe()})")
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.seconds)
    finally:
        uas.close()
    _say(uas.stats.text())
    return 0


async def _uac(args: argparse.Namespace) -> int:
    local = parse_hostport(args.local)
    uac = Uac(parse_hostport(args.target), calls=args.calls, rate=args.rate,
              numbers=[n.strip() for n in args.numbers.split(",") if n.strip()],
              digits=args.digits, durations=DurationMix.parse(args.durations),
              local_host=local[0], local_port=local[1], tech_prefix=args.tech_prefix,
              username=args.username, password=args.password, cancel_after=args.cancel_after,
              cancel_ratio=args.cancel_ratio, seed=args.seed, max_seconds=args.max_seconds,
              answer_timeout=args.answer_timeout, caller=args.caller, name=args.name)
    await uac.start()
    stop = asyncio.Event()
    _on_signals(stop)
    stopper = asyncio.create_task(stop.wait())
    stopper.add_done_callback(lambda _: uac.stop())
    bound = uac.address
    _say(f"{args.name}: {args.calls} calls at {args.rate:g}/s from udp:{bound[0]}:{bound[1]} "
         f"to {uac.target[0]}:{uac.target[1]}")
    try:
        summary = await uac.run()
    finally:
        stopper.cancel()
        uac.close()
    _say(summary.text())
    return 0


async def _plan(args: argparse.Namespace) -> int:
    plan = load_plan(args.file)
    stop = asyncio.Event()
    _on_signals(stop)

    def started(vendors: list[Uas], customers: list[Uac]) -> None:
        for uas in vendors:
            _say(f"{uas.stats.name}: listening on udp:{uas.address[0]}:{uas.address[1]}")
        for uac in customers:
            _say(f"{uac.name}: {uac.calls} calls at {uac.rate:g}/s from "
                 f"udp:{uac.address[0]}:{uac.address[1]}")

    result = await run_plan(plan, started, stop)
    _say(result.text())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m switch.loadgen",
        description="SIP load generator for the ratelab softswitch (UDP only; TCP is not "
                    "supported). 'uas' plays a vendor, 'uac' a customer, 'plan' runs a TOML "
                    "plan of several. See docs/loadgen.md.")
    commands = parser.add_subparsers(dest="command", required=True)

    uas = commands.add_parser(
        "uas", help="run a vendor endpoint that answers INVITEs by a behaviour mix",
        description="Answer INVITEs by a seeded behaviour mix until SIGINT/SIGTERM or "
                    "--seconds, then print a summary.")
    uas.add_argument("--listen", default="127.0.0.1:5080", metavar="HOST:PORT",
                     help="UDP address to bind (port 0 = any; default %(default)s)")
    uas.add_argument("--mix", default="answer=1", metavar="MIX",
                     help="proportions NAME=P,... of answer, ring, no_answer, silent and "
                          "refusal codes (e.g. answer=0.7,ring=0.1,486=0.1,503=0.05,"
                          "no_answer=0.05); must sum to <= 1, the rest is answered")
    uas.add_argument("--ring-seconds", type=float, default=1.0, metavar="S",
                     help="how long 'ring' calls ring before the 200 (default %(default)s)")
    uas.add_argument("--answer-delay", type=float, default=0.0, metavar="S",
                     help="delay before the 200 of 'answer' calls (default %(default)s)")
    uas.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    uas.add_argument("--auth", metavar="USER:PASSWORD",
                     help="challenge INVITEs with 407 and require these digest credentials")
    uas.add_argument("--seconds", type=float, default=None, metavar="N",
                     help="stop after N seconds (default: run until SIGINT/SIGTERM)")
    uas.add_argument("--name", default="vendor", help="name in the summary")

    uac = commands.add_parser(
        "uac", help="run a customer endpoint that places paced calls",
        description="Place --calls calls at --rate calls/s to --target, hang each up after a "
                    "duration drawn from --durations, then print a summary.")
    uac.add_argument("--target", required=True, metavar="HOST:PORT",
                     help="where to send INVITEs (the switch, or a uas)")
    uac.add_argument("--calls", type=int, default=10, help="calls to place (default 10)")
    uac.add_argument("--rate", type=float, default=10.0, metavar="CPS",
                     help="calls per second (default %(default)s)")
    uac.add_argument("--numbers", default="4477009", metavar="P1,P2",
                     help="number prefixes, completed with --digits random digits")
    uac.add_argument("--digits", type=int, default=5, help="random digits (default 5)")
    uac.add_argument("--durations", default="1", metavar="MIX",
                     help="call durations in seconds with proportions summing to 1, e.g. "
                          "2:0.5,5:0.3,20:0.2, or one number (default %(default)s)")
    uac.add_argument("--local", default="127.0.0.1:0", metavar="HOST:PORT",
                     help="local UDP address; set the port when the switch authenticates "
                          "customers by IP and port (default %(default)s)")
    uac.add_argument("--tech-prefix", default="", help="prepended to every dialled number")
    uac.add_argument("--username", help="digest username (answer 401/407 challenges)")
    uac.add_argument("--password", help="digest password")
    uac.add_argument("--cancel-after", type=float, metavar="S",
                     help="CANCEL calls not answered within S seconds")
    uac.add_argument("--cancel-ratio", type=float, default=1.0, metavar="P",
                     help="share of calls --cancel-after applies to (default %(default)s)")
    uac.add_argument("--answer-timeout", type=float, default=120.0, metavar="S",
                     help="CANCEL any call still unanswered after S seconds (default 120)")
    uac.add_argument("--max-seconds", type=float, default=3600.0, metavar="S",
                     help="stop placing calls and wrap up after S seconds (default 3600)")
    uac.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    uac.add_argument("--caller", default="loadgen", help="user part of the From URI")
    uac.add_argument("--name", default="customer", help="name in the summary")

    plan = commands.add_parser(
        "plan", help="run vendors and customers from a TOML plan in one process",
        description="Run the [[vendors]] and [[customers]] of a TOML plan (format in "
                    "docs/loadgen.md) and print a summary per endpoint.")
    plan.add_argument("file", metavar="FILE.toml", help="the plan")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad arguments, 1 socket error)."""
    args = _parser().parse_args(argv)
    if args.command == "uas" and args.seconds is not None and args.seconds <= 0:
        print("error: --seconds must be positive", file=sys.stderr)
        return 2
    handler = {"uas": _uas, "uac": _uac, "plan": _plan}[args.command]
    try:
        return _run(handler(args))
    except (MixError, PlanError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
