"""`ratelab routing export`: the rates the switch routes on."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.output import WHEN

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
@click.pass_obj
def export(state: _State, out: Path, at: datetime | None) -> None:
    """Write the rates in force (per customer and vendor, per prefix) for the switch, atomically.

    \b
    Example:
      ratelab routing export --out data/routing.json
    """
    wh = state.open(read_only=True)
    path = wh.export_routing(out, at)
    snapshot = json.loads(path.read_text())
    click.echo(f"wrote {path}: {len(snapshot['customers'])} customers, "
               f"{len(snapshot['vendors'])} vendors, rates at {snapshot['rates_at']}")
    if not snapshot["customers"] or not snapshot["vendors"]:
        click.echo("hint: assign rate tables first (`ratelab assign`); the switch finds no "
                   "route without customer and vendor rates")
