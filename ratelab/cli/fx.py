"""``ratelab fx import|set|list|base``: exchange rates to the warehouse's base currency."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.output import WHEN, _fail, print_table
from ratelab.fx import FxError

if TYPE_CHECKING:
    from ratelab.cli import _State

__all__ = ["fx"]


@click.group()
def fx() -> None:
    """Exchange rates: what one unit of a currency is worth in the base currency.

    Summaries and reports convert revenue and cost to the base currency (USD unless set) at
    the rate in force on each call's UTC day: the latest rate on or before that day. Where a
    rate is missing they refuse, naming the currency and the days.

    \b
    Examples:
      ratelab fx set EUR 1.08 --date 2026-11-01
      ratelab fx import rates.csv
      ratelab fx list --currency EUR
      ratelab fx base EUR      # before any rate: amounts are then reported in EUR
    """


@fx.command("import", short_help="Import exchange rates from a CSV file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def fx_import(state: _State, file: Path) -> None:
    """Import the exchange rates in FILE: a CSV with the header date,currency,rate.

    Each row says that from DATE (a UTC day, YYYY-MM-DD) one unit of CURRENCY is worth RATE
    units of the base currency. The file is imported whole or not at all: if any row is bad,
    every problem is printed as file:line: reason and nothing changes (exit status 2). A rate
    already set for the same day and currency is replaced.

    \b
    Example file:
      date,currency,rate
      2026-11-01,EUR,1.08
      2026-11-01,GBP,1.27
    \b
    Example:
      ratelab fx import rates.csv
    """
    wh = state.open()
    try:
        summary = wh.import_fx(file)
    except FxError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        _fail(f"{len(err.problems)} problem(s) in {err.file}; nothing was imported", 2)
    click.echo(f"{summary} (base currency {wh.base_currency()})")
    click.echo("hint: summaries and reports convert with them at once; nothing to re-rate")


@fx.command("set", short_help="Set one exchange rate.")
@click.argument("currency")
@click.argument("rate")
@click.option("--date", "day", type=WHEN, required=True,
              help="The UTC day the rate applies from (YYYY-MM-DD).")
@click.pass_obj
def fx_set(state: _State, currency: str, rate: str, day: datetime) -> None:
    """Set the rate of CURRENCY: one unit is worth RATE units of the base currency from
    --date on (until the next date that has a rate).

    \b
    Examples:
      ratelab fx set EUR 1.08 --date 2026-11-01
      ratelab fx set GBP 1.2695 --date 2026-11-15
    """
    if day.time() != datetime.min.time():
        raise click.BadParameter("a rate applies from a whole UTC day: give YYYY-MM-DD",
                                 param_hint="--date")
    wh = state.open()
    entry = wh.set_fx(currency, rate, date(day.year, day.month, day.day))
    click.echo(f"1 {entry.currency} = {entry.rate} {wh.base_currency()} from {entry.day} (UTC)")


@fx.command("list", short_help="List the exchange rates.")
@click.option("--currency", default=None, help="Only this currency.")
@click.pass_obj
def fx_list(state: _State, currency: str | None) -> None:
    """List the exchange rates, by currency and day.

    \b
    Examples:
      ratelab fx list
      ratelab fx list --currency EUR
    """
    wh = state.open(read_only=True)
    frame = wh.fx_rates(currency)
    base = wh.base_currency()
    if frame.is_empty():
        click.echo(f"no exchange rates (base currency {base}); add them with `ratelab fx set` "
                   "or `ratelab fx import`")
        return
    rows = [[str(r["currency"]), str(r["day"]), _rate(r["rate"]), str(r["source"])]
            for r in frame.iter_rows(named=True)]
    print_table(["Currency", "From (UTC)", f"Rate ({base})", "Source"], rows, right=[2])


@fx.command("base", short_help="Show or set the base currency.")
@click.argument("currency", required=False)
@click.pass_obj
def fx_base(state: _State, currency: str | None) -> None:
    """Show the base currency, or set it to CURRENCY (a three-letter code such as EUR).

    Summaries and reports convert every amount into the base currency (USD unless set). It can
    change only while the warehouse has no exchange rates, since they are quoted in it (exit
    status 2 otherwise). Stored charges stay in their rate tables' currencies either way.

    \b
    Examples:
      ratelab fx base
      ratelab fx base EUR
    """
    if currency is None:
        click.echo(state.open(read_only=True).base_currency())
        return
    wh = state.open()
    before = wh.base_currency()
    after = wh.set_base_currency(currency)
    click.echo(f"base currency {after}" + (f" (was {before})" if after != before
                                           else " (unchanged)"))


def _rate(value: Decimal) -> str:
    """A rate without trailing zeros: 1.0800000000 -> 1.08."""
    text = format(value.normalize(), "f")
    return text if "." in text or "E" not in text else str(value)
