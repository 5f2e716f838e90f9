"""``ratelab check``: checks that find problems before they cost money; exit 1 when one does.

``check rates`` is the rate-plan leak check (:func:`ratelab.reports.rate_leaks`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from ratelab.cli.exports import FORMATS, guess_format, write_export
from ratelab.cli.output import WHEN, echo_wrapped, format_money, table_width
from ratelab.cli.tables import print_frame
from ratelab.reports.leaks import rate_leaks

if TYPE_CHECKING:
    from ratelab.cli import _State

__all__ = ["check", "leak_summary"]

#: The columns the terminal table shows, with their headers (exports carry every column, with
#: its name, exactly).
SHOWN = {"customer": "Customer", "prefix": "Range", "destination": "Destination",
         "customer_table": "Priced by", "customer_prefix": "at prefix",
         "customer_rate": "Price", "vendor": "Vendor", "vendor_prefix": "Vendor prefix",
         "vendor_rate": "Cost", "route_rank": "Tried", "loss_per_minute": "Loss per min",
         "every_route_loses": "All routes lose", "undercut": "Undercut", "calls": "Calls",
         "minutes": "Minutes", "loss": "Loss"}


def leak_summary(leaks: pl.DataFrame, at: datetime, days: int) -> str:
    """One line about a :func:`~ratelab.reports.rate_leaks` frame, for people and cron logs.

    >>> from ratelab.reports.leaks import LEAK_SCHEMA
    >>> print(leak_summary(pl.DataFrame(schema=LEAK_SCHEMA), datetime(2026, 11, 15), 30))
    no leaks: no customer is priced below a vendor's cost at 2026-11-15 00:00 UTC
    """
    shown = f"{at:%Y-%m-%d %H:%M} UTC"
    if leaks.is_empty():
        return f"no leaks: no customer is priced below a vendor's cost at {shown}"
    ranges = leaks.select("customer", "prefix").unique().height
    customers = leaks["customer"].n_unique()
    everywhere = leaks.filter(pl.col("every_route_loses")).select(
        "customer", "prefix").unique().height
    loss = Decimal(str(leaks["loss"].sum()))  # a Decimal column's sum is exact
    currency = leaks["currency"][0]
    return (f"{leaks.height:,} leak(s) at {shown}: {ranges:,} range(s) of {customers:,} "
            f"customer(s) priced below a vendor's cost ({everywhere:,} below every vendor); "
            f"loss over the last {days} days {format_money(loss)} {currency}")


@click.group(short_help="Checks that find problems (exit 1 when they do).")
def check() -> None:
    """Checks that look for problems before they cost money. Each exits 1 when it finds one
    (so cron mails it), 0 when all is well, 2 when the command must change.

    \b
    Examples:
      ratelab check rates
      ratelab check rates --customer bluewave_voip --at 2026-11-15
    """


@check.command(short_help="Customers priced below the vendors that route their calls.")
@click.option("--at", "at", type=WHEN, default=None,
              help="The moment whose rates are compared (UTC; default: now).")
@click.option("--customer", default=None, help="Check one customer only.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True,
              help="The days before --at whose rated CDRs give each leak's loss.")
@click.option("--switch-config", "switch_config",
              type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The switch's TOML config: rank vendors by its routing gateways' prefixes "
                   "and priorities (default: cheapest first, as with default priorities).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="table (default), csv, json or xlsx; guessed from --output's suffix.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE instead of the terminal (xlsx needs it).")
@click.pass_obj
def rates(state: _State, at: datetime | None, customer: str | None, days: int,
          switch_config: Path | None, fmt: str | None, output: Path | None) -> None:
    """The rate-plan leak check: for every customer and number range, whether the price the
    cheapest-of rule gives (its period, account and account_private tables; phone_private ones
    are left out) is below the rate of a vendor that routes the range, in routing order. A
    shorter prefix of one table undercutting a longer, dearer one of another (a private 447
    under the standard 4470) is marked "undercut". Each leak shows its loss per minute and, from
    the rated CDRs of the last --days days, the calls and the money it lost. It needs only the
    decks: run it after every deck import, before any call.

    Rates are per minute, in the base currency at the exchange rates of --at's day; banded
    tables count the customer's lowest band and the vendor's highest.

    Exit status: 1 when any leak is found (or an exchange rate is missing), 0 when none, 2 for
    bad input (an unknown customer, a bad date or switch config).

    \b
    Examples:
      ratelab check rates
      ratelab check rates --at 2026-12-01 --customer bluewave_voip
      ratelab check rates --switch-config /etc/ratelab/switch.toml --days 7
      ratelab check rates --output leaks.xlsx
    """
    fmt = guess_format(fmt, output)
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE.xlsx")
    if switch_config is not None and not switch_config.is_file():
        raise click.BadParameter(f"no such file: {switch_config}", param_hint="--switch-config")
    wh = state.open(read_only=True)
    moment = at if at is not None else datetime.now(UTC).replace(tzinfo=None)
    # an unknown customer or a bad switch config is a ValueError: the group exits 2
    leaks = rate_leaks(wh, at=moment, customer=customer, days=days, switch_config=switch_config)
    line = leak_summary(leaks, moment, days)
    if fmt == "table":
        if not leaks.is_empty():
            print_frame(leaks.select(list(SHOWN)).rename(SHOWN), output=output,
                        title=f"Rate-plan leaks, {leaks['currency'][0]} per minute")
        echo_wrapped(line, table_width())
    else:
        text = write_export(leaks, fmt, output)
        if text is not None:
            click.echo(text, nl=False)
        click.echo(line, err=True)
    if output is not None:
        click.echo(f"wrote {output} ({leaks.height:,} rows, {fmt})", err=True)
    if not leaks.is_empty():
        raise click.exceptions.Exit(1)
