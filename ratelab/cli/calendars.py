"""`ratelab calendar`: the work calendars that decide time bands (peak, offpeak, weekend)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from ratelab.calendars import BANDS
from ratelab.cli.output import WHEN, print_table

if TYPE_CHECKING:
    from ratelab.cli import _State

DAYS = ("", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@click.group(short_help="Work calendars: weekly hours and special days for time bands.")
def calendar() -> None:
    """Work calendars decide the time band (peak, offpeak, weekend) of a call in rate tables
    that have bands. Weekly hours are set from Python (Warehouse.set_calendar); special days
    such as public holidays are added here.

    \b
    Examples:
      ratelab calendar show
      ratelab calendar day 2026-12-25 --band weekend --note Christmas
    """


@calendar.command("show", short_help="Show a calendar's weekly hours and special days.")
@click.argument("name", default="default")
@click.pass_obj
def show(state: _State, name: str) -> None:
    """Show calendar NAME (default: the calendar named "default").

    \b
    Example:
      ratelab calendar show
    """
    wh = state.open(read_only=True)
    # as text in SQL: 24:00 is a valid end of day there, but not a Python time
    hours = wh.sql(
        "SELECT weekday, left(CAST(start_time AS VARCHAR), 5), left(CAST(end_time AS VARCHAR), 5),"
        " band FROM calendar_hours WHERE calendar = $c ORDER BY weekday, start_time", {"c": name})
    if hours.height == 0:
        raise click.UsageError(f"no work calendar {name!r}")
    print_table(["Day", "From", "To", "Band"],
                [[DAYS[d], start, end, band] for d, start, end, band in hours.rows()],
                title=f"Calendar {name}: weekly hours")
    days = wh.sql("SELECT day, band, note FROM calendar_days WHERE calendar = $c ORDER BY day",
                  {"c": name})
    if days.height:
        print_table(["Day", "Band", "Note"],
                    [[d.isoformat(), b, n] for d, b, n in days.rows()],
                    title=f"Calendar {name}: special days")


@calendar.command("day", short_help="Price a whole local day as one band (a holiday).")
@click.argument("day", type=WHEN)
@click.option("--band", type=click.Choice(BANDS), required=True, help="The band for the day.")
@click.option("--calendar", "name", default="default", show_default=True,
              help="The calendar to change.")
@click.option("--note", default="", help="Why (shown by `calendar show`).")
@click.pass_obj
def day(state: _State, day: datetime, band: str, name: str, note: str) -> None:
    """Price every call on local day DAY as BAND in a calendar (replaces an earlier entry).

    \b
    Example:
      ratelab calendar day 2026-12-25 --band weekend --note Christmas
    """
    wh = state.open()
    wh.calendar_day(day.date(), band, calendar=name, note=note)
    click.echo(f"{day.date().isoformat()} is priced as {band} in calendar {name}")
    click.echo("hint: CDRs already rated keep their prices until you run `ratelab rate` again")
