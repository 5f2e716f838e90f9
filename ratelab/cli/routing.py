"""`ratelab routing export`: the rates the switch routes on."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.output import WHEN, _fail
from ratelab.routing import routing_snapshot, write_snapshot

if TYPE_CHECKING:
    from ratelab.cli import _State


@click.group(short_help="The switch's routing snapshot.")
def routing() -> None:
    """The switch routes on a snapshot of customer and vendor rates per prefix, exported from
    the warehouse (the switch never opens it). Format: see docs/config.md.

    \b
    Example:
      ratelab routing export --out data/routing.json && kill -HUP $(pidof switch)
    """


@routing.command("export", short_help="Write the routing snapshot for the switch.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("data/routing.json"), show_default=True, help="Where to write it.")
@click.option("--at", type=WHEN, default=None, help="Rates in force at (UTC; default now).")
@click.option("--allow-empty", is_flag=True,
              help="Write a snapshot without customer or vendor rates anyway (the switch "
                   "would then route no call).")
@click.pass_obj
def export(state: _State, out: Path, at: datetime | None, allow_empty: bool) -> None:
    """Write the rates in force (per customer and vendor, per prefix) for the switch, atomically.

    A snapshot without customer or vendor rates would make the switch refuse every call, so it
    is not written (exit 1, the file at --out is left as it was) unless --allow-empty.

    \b
    Example:
      ratelab routing export --out data/routing.json
    """
    wh = state.open(read_only=True)
    with wh.connection() as con:
        snapshot = routing_snapshot(con, at)
    customers, vendors = len(snapshot["customers"]), len(snapshot["vendors"])
    if (not customers or not vendors) and not allow_empty:
        _fail(f"the snapshot would have {customers} customers and {vendors} vendors with rates "
              f"in force at {snapshot['rates_at']}: the switch would route no call. Assign rate "
              f"tables first (`ratelab assign TABLE --customer NAME` / `--vendor NAME`); {out} "
              "is left as it was (--allow-empty writes it anyway)", 1)
    path = write_snapshot(snapshot, out)
    click.echo(f"wrote {path}: {customers} customers, {vendors} vendors, "
               f"rates at {snapshot['rates_at']}")
