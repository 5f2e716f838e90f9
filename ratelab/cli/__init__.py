"""The ``ratelab`` command line: rate decks, CDR ingest, rating and margin reports.

Every command works on one DuckDB warehouse file (``--warehouse``, env ``RATELAB_WAREHOUSE``,
default ``data/warehouse.duckdb``). Commands that only read (``deck list``, ``deck diff``,
``quarantine``, ``summary``) open it read-only, so they can run next to each other.

User errors (a bad deck, an unknown rate table, a missing file) print one clear message on
stderr and exit with status 2; a rejected deck prints every problem as ``file:line: reason``.
Tables are drawn with rich on a terminal and as plain aligned text otherwise (pipes, files).

The commands live by concept: ``output`` (values, tables, error lines), ``decks`` (``deck``
and ``assign``) and ``cdrs`` (``ingest`` to ``summary``, ``generate`` and ``demo``); this
module holds the top-level group, its options and ``main``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import duckdb

from ratelab.cli.calendars import calendar
from ratelab.cli.cdrs import demo, generate, ingest, quarantine, rate, summary
from ratelab.cli.decks import assign, deck
from ratelab.cli.output import SYNTHETIC_BANNER as SYNTHETIC_BANNER
from ratelab.cli.output import _fail
from ratelab.cli.output import format_money as format_money
from ratelab.cli.output import parse_when as parse_when
from ratelab.cli.output import print_margin_summary as print_margin_summary
from ratelab.cli.output import print_table as print_table
from ratelab.cli.output import totals_line as totals_line
from ratelab.cli.output import warehouse_currency as warehouse_currency
from ratelab.cli.reports import report
from ratelab.cli.routing import routing
from ratelab.decks import DeckError
from ratelab.migrations import SchemaError
from ratelab.warehouse import DEFAULT_PATH, Warehouse, WarehouseBusy

__all__ = ["main"]


class _Group(click.Group):
    """The top-level group: user errors become one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeckError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            _fail(f"{len(err.problems)} problem(s) in {err.file}; nothing was imported")
        except (WarehouseBusy, SchemaError) as err:
            _fail(str(err), 1)
        except duckdb.IOException as err:  # not a DuckDB file, a newer format, a full disk
            state = ctx.find_object(_State)
            _fail(f"cannot use the warehouse {state.path if state else ''}: {err}", 1)
        except FileNotFoundError as err:
            _fail(str(err) if err.filename is None else f"no such file: {err.filename}")
        except (ValueError, PermissionError) as err:
            _fail(str(err))


@dataclass
class _State:
    path: Path

    def open(self, *, read_only: bool = False) -> Warehouse:
        if read_only and not self.path.exists():
            raise FileNotFoundError(
                f"no warehouse at {self.path}: import a deck first (`ratelab deck import`), "
                "or point --warehouse / RATELAB_WAREHOUSE at one"
            )
        return Warehouse(self.path, read_only=read_only)


# -- the group ------------------------------------------------------------------------------

@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path),
              envvar="RATELAB_WAREHOUSE", default=str(DEFAULT_PATH), show_default=True,
              show_envvar=True, help="The DuckDB warehouse file (created on first write).")
@click.version_option(package_name="ratelab")
@click.pass_context
def cli(ctx: click.Context, warehouse: Path) -> None:
    """Billing and rate analytics for wholesale VoIP carriers.

    A typical day: import the decks vendors sent (check them with `deck diff` first), ingest
    the switch's CDR spool, rate it, and look at the margins.

    \b
    Examples:
      ratelab deck diff new_northstar.csv --name vendor_northstar
      ratelab deck import new_northstar.csv --name vendor_northstar --side vendor
      ratelab assign customer_standard --customer atlas_telecom
      ratelab ingest /var/spool/ratelab
      ratelab rate --since 2026-11-01
      ratelab summary --by vendor
      ratelab demo            # everything above on sample decks and synthetic CDRs
    """
    ctx.obj = _State(warehouse)


for _command in (deck, assign, calendar, ingest, quarantine, rate, summary, routing, generate,
                 demo):
    cli.add_command(_command)
cli.add_command(report)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``ratelab`` console script.

    >>> try:
    ...     main(["--version"])
    ... except SystemExit as done:
    ...     print("exit", done.code)
    ratelab, version 0.1.0
    exit 0
    """
    cli.main(args=list(argv) if argv is not None else None, prog_name="ratelab")


def _iter_commands(group: click.Group, prefix: str = "") -> Iterator[str]:
    """Every command path of ``group`` (for tests and docs).

    >>> "deck import" in list(_iter_commands(cli))
    True
    """
    for name, command in sorted(group.commands.items()):
        yield prefix + name
        if isinstance(command, click.Group):
            yield from _iter_commands(command, prefix + name + " ")
