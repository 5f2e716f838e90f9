"""``ratelab deck import|diff|list`` and ``ratelab assign``: rate tables and who they price."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ratelab.assignments import EPOCH, HistoryError
from ratelab.cli.output import WHEN, _count, _fail, _moment, print_table
from ratelab.decks import DeckError
from ratelab.money import quantize
from ratelab.progress import progress

if TYPE_CHECKING:
    from ratelab.cli import _State

__all__ = ["assign", "deck"]

_STATUSES = ("new", "increase", "decrease", "unchanged", "closed")


# -- decks ----------------------------------------------------------------------------------

@click.group()
def deck() -> None:
    """Rate decks: check, import and list versioned rate tables."""


def _deck_read_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how to read a deck (shared by `deck import` and `deck diff`)."""
    options = [
        click.option("--effective-from", type=WHEN, default=None,
                     help="Effective date for rows without one (deck-local time)."),
        click.option("--increment", default="60/60", show_default=True,
                     help="Billing increment X/Y for rows without one."),
        click.option("--date-order", type=click.Choice(["dmy", "mdy"]), default="dmy",
                     show_default=True, help="How to read 01/02/2026 in the deck."),
        click.option("--sheet", default=None, help="XLSX sheet name (default: the first)."),
        click.option("--column", "column_maps", multiple=True, metavar='"HEADER=CANONICAL"',
                     help="Map a deck header to a canonical column (repeatable), e.g. "
                          '--column "Tariff=rate"; "Notes=" ignores a column.'),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_options(effective_from: datetime | None, increment: str, date_order: str,
                  sheet: str | None, column_maps: Sequence[str]) -> dict[str, Any]:
    columns: dict[str, str] = {}
    for item in column_maps:
        source, sep, target = item.partition("=")
        if not sep or not source.strip():
            raise click.BadParameter(f"{item!r}: use \"Source Header=canonical\"",
                                     param_hint="--column")
        columns[source.strip()] = target.strip()
    return {"columns": columns or None, "effective_from": effective_from,
            "default_increment": increment, "date_order": date_order, "sheet": sheet}


@deck.command("import", short_help="Import a deck into a rate table.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Rate table to import into (created if new).")
@click.option("--side", type=click.Choice(["customer", "vendor"]), required=True,
              help="Whether the table prices customers (revenue) or a vendor (cost).")
@click.option("--mode", type=click.Choice(["full", "update"]), default="full", show_default=True,
              help="full: prefixes missing from the deck are closed; update: only change "
                   "the prefixes listed.")
@_deck_read_options
@click.option("--currency", default=None,
              help="Currency of a new table.")
@click.option("--time-zone", default=None,
              help="IANA time zone of a new table's dates and time bands (default UTC; an "
                   "existing table keeps its own).")
@click.pass_obj
def deck_import(state: _State, file: Path, name: str, side: str, mode: str,
                effective_from: datetime | None, increment: str, date_order: str,
                sheet: str | None, column_maps: tuple[str, ...], currency: str | None,
                time_zone: str | None) -> None:
    """Validate FILE (CSV or XLSX) and import it as a new version of rate table NAME.

    The deck is imported whole or not at all: if any row is bad, every problem is printed
    as file:line: reason and nothing changes (exit status 2). Vendor spellings of the column
    headers ("Dial Code", "Rate (USD/min)", "Valid From", ...) are recognised; --column maps
    others. Importing a deck again with the same effective dates corrects those rows.

    \b
    Examples:
      ratelab deck import ratelab/data/decks/vendor_northstar.csv --name vendor_northstar \\
          --side vendor
      ratelab deck import prices.xlsx --name customer_standard --side customer \\
          --sheet "Price List" --column "Tariff=rate" --effective-from 2026-12-01
      ratelab deck import changes.csv --name vendor_tollgate --side vendor --mode update
    """
    options = _read_options(effective_from, increment, date_order, sheet, column_maps)
    wh = state.open()
    with progress("Importing (validate, store, index)", total=3, unit="steps") as update:
        summary = wh.import_deck(file, name, side, mode=mode, currency=currency,
                                 time_zone=time_zone, on_step=update, **options)
    click.echo(str(summary))
    assigned = wh.sql("SELECT count(*) AS n FROM assignments WHERE table_name = $t",
                      {"t": name})["n"][0]
    if not assigned:
        who = "--customer NAME" if side == "customer" else "--vendor NAME"
        click.echo(f"hint: {name} prices nobody yet; run `ratelab assign {name} {who}`")


@deck.command("diff", short_help="Compare a deck with a rate table.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Rate table to compare with (its rates in force).")
@click.option("--notice-days", type=click.IntRange(min=0), default=7, show_default=True,
              help="Increases effective sooner than this are flagged short notice.")
@click.option("--as-of", type=WHEN, default=None,
              help="Compare with the rates in force at this time (default: now).")
@click.option("--all", "show_all", is_flag=True, help="Also list unchanged prefixes.")
@_deck_read_options
@click.pass_obj
def deck_diff(state: _State, file: Path, name: str, notice_days: int, as_of: datetime | None,
              show_all: bool, effective_from: datetime | None, increment: str,
              date_order: str, sheet: str | None, column_maps: tuple[str, ...]) -> None:
    """Compare deck FILE with rate table NAME before importing it; nothing is changed.

    Each prefix is new, increase, decrease, unchanged or closed (in the table, missing from
    the deck). Increases taking effect sooner than --notice-days are flagged: wholesale
    contracts usually require 7 days' notice of an increase.

    \b
    Examples:
      ratelab deck diff ratelab/data/decks/vendor_tollgate_update.csv --name vendor_tollgate
      ratelab deck diff new.csv --name vendor_tollgate --as-of 2026-11-28 --notice-days 7
    """
    options = _read_options(effective_from, increment, date_order, sheet, column_maps)
    wh = state.open(read_only=True)
    try:
        frame = wh.deck_diff(file, name, notice_days=notice_days, as_of=as_of, **options)
    except DeckError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        _fail(f"{len(err.problems)} problem(s) in {err.file}; the deck was not compared")
    records = list(frame.iter_rows(named=True))
    shown = [r for r in records if show_all or r["status"] != "unchanged"]
    rows = [
        [r["prefix"], r["destination"], r["band"], r["status"],
         _rate(r["old_rate"]), _rate(r["new_rate"]), _change(r["change"], r["old_rate"]),
         _moment(r["effective_from"]), "SHORT NOTICE" if r["short_notice"] else ""]
        for r in shown
    ]
    headers = ["Prefix", "Destination", "Band", "Status", "Old rate", "New rate", "Change",
               "Effective", "Notice"]
    print_table(headers, rows, right=[4, 5, 6], title=f"{file} against {name}")
    counts = {status: 0 for status in _STATUSES}
    for r in records:
        counts[r["status"]] += 1
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items()))
    hidden = len(records) - len(shown)
    if hidden:
        click.echo(f"({hidden} unchanged prefixes not listed; --all lists them)")
    short = [r for r in records if r["short_notice"]]
    if short:
        listing = ", ".join(f"{r['prefix']} ({_moment(r['effective_from'])})" for r in short)
        click.echo(f"WARNING: {len(short)} increase(s) on short notice (effective sooner than "
                   f"{notice_days} days): {listing}")


def _rate(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:f}"


def _change(change: Decimal | None, old: Decimal | None) -> str:
    if change is None:
        return "-"
    text = f"{change:+f}"
    if old:
        text += f" ({quantize(change / old * 100, 1):+}%)"
    return text


@deck.command("list", short_help="List the rate tables.")
@click.pass_obj
def deck_list(state: _State) -> None:
    """List the rate tables: side, time zone, rows in force now, last import, who they price.

    \b
    Example:
      ratelab deck list
    """
    wh = state.open(read_only=True)
    frame = wh.rate_tables()
    if frame.height == 0:
        click.echo("no rate tables yet: import one with `ratelab deck import`")
        return
    rows = [
        [r["name"], r["side"], r["currency"], r["time_zone"], _count(r["in_force"]),
         _count(r["scheduled"]), _count(r["imports"]),
         _moment(r["last_import"].replace(microsecond=0)) if r["last_import"] else "-",
         Path(r["last_file"]).name if r["last_file"] else "-", r["assigned"] or "-"]
        for r in frame.iter_rows(named=True)
    ]
    headers = ["Table", "Side", "Currency", "Time zone", "In force", "Scheduled", "Imports",
               "Last import (UTC)", "Last file", "Prices"]
    print_table(headers, rows, right=[4, 5, 6])


# -- assignments ----------------------------------------------------------------------------

@click.command(short_help="Say which rate table prices a customer or vendor; show the history.")
@click.argument("table", required=False)
@click.option("--customer", default=None, help="The customer (account) TABLE prices.")
@click.option("--vendor", default=None, help="The vendor (gateway) TABLE prices.")
@click.option("--kind", type=click.Choice(["account", "period", "account_private",
                                           "phone_private"]),
              default="account", show_default=True,
              help="Customer rate kind (VOS billing principle); vendors use account only.")
@click.option("--phone", default=None, help="Caller number, for --kind phone_private.")
@click.option("--from", "valid_from", type=WHEN, default=None,
              help="First moment it applies (UTC; default: always).")
@click.option("--to", "valid_to", type=WHEN, default=None,
              help="First moment it no longer applies (UTC; default: open ended).")
@click.option("--history", is_flag=True,
              help="Show every interval a table priced the customer or vendor (no TABLE).")
@click.option("--replace-history", is_flag=True,
              help="Allow an assignment that re-prices calls already in the warehouse (the "
                   "intervals it changes are kept as superseded).")
@click.pass_obj
def assign(state: _State, table: str | None, customer: str | None, vendor: str | None,
           kind: str, phone: str | None, valid_from: datetime | None,
           valid_to: datetime | None, history: bool, replace_history: bool) -> None:
    """Say that rate table TABLE prices a customer or a vendor.

    A customer may have several tables (period, account, account_private, phone_private):
    each call is charged the cheapest of those that apply (the VOS billing principle). A
    vendor has one table at a time; a new assignment takes over from its --from.

    \b
    Examples:
      ratelab assign customer_standard --customer atlas_telecom
      ratelab assign bluewave_private --customer bluewave_voip --kind account_private
      ratelab assign vip_line --customer atlas_telecom --kind phone_private --phone 15551234567
      ratelab assign vendor_tollgate --vendor tollgate --from 2026-12-01
      ratelab assign --history --vendor tollgate

    A new assignment closes the interval it takes over from; nothing is deleted. One that
    would re-price calls already in the warehouse is refused unless --replace-history.
    """
    if (customer is None) == (vendor is None):
        raise click.UsageError("give exactly one of --customer or --vendor")
    if history:
        if table is not None:
            raise click.UsageError("--history shows every table: give no TABLE")
        frame = state.open(read_only=True).assignment_history(customer=customer, vendor=vendor)
        if frame.height == 0:
            who = f"customer {customer}" if customer is not None else f"vendor {vendor}"
            _fail(f"no assignment for {who}")
        print_table(frame.columns,
                    [["" if v is None else str(v) for v in row] for row in frame.iter_rows()])
        return
    if table is None:
        raise click.UsageError("missing argument TABLE (or --history)")
    if (kind == "phone_private") != (phone is not None):
        raise click.UsageError("--phone is required with --kind phone_private, and only there")
    wh = state.open()
    try:
        start, end = wh.assign(table, customer=customer, vendor=vendor, kind=kind, phone=phone,
                               valid_from=valid_from, valid_to=valid_to,
                               replace_history=replace_history)
    except HistoryError as err:
        _fail(str(err))
    who = f"customer {customer}" if customer is not None else f"vendor {vendor}"
    detail = kind + (f", caller {phone}" if phone else "")
    span = f"from {'the beginning' if start == EPOCH else _moment(start)}"
    span += f" to {_moment(end)}" if end else " on"
    click.echo(f"{table} prices {who} ({detail}) {span}")
    click.echo("hint: CDRs already rated keep their prices until you run `ratelab rate` again")
