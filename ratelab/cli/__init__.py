"""The ``ratelab`` command line: rate decks, CDR ingest, rating and margin reports.

Every command works on one DuckDB warehouse file (``--warehouse``, env ``RATELAB_WAREHOUSE``,
default ``data/warehouse.duckdb``), which only ``init`` (and ``demo``) create. Commands that
only read (``deck list``, ``deck diff``, ``quarantine``, ``summary``, ``table``) open it
read-only, so they can run next to each other.

Exit status, the same for every command (docs/operations.md, "Exit status"):

- 0: the command did its job.
- 1: it could not do its job, or found a problem: the warehouse is busy, has the wrong schema
  version, or is not a ratelab warehouse; an exchange rate is missing; a report had no calls;
  a summary found nothing rated; a notebook broke; the watch raised a new finding at or above
  its --severity, or could not reach a --notify target.
- 2: the command must change: a bad option or parameter (name or value, also one a report
  page explains), a rejected deck, an unknown rate table, report or party, a missing file or
  warehouse (click's usage errors are 2).

Every problem prints one ``error: ...`` line on stderr (a rejected deck lists each problem as
``file:line: reason`` first). Tables fit the terminal without cutting a number or dropping a
column (see ``ratelab.cli.output.render_table``).

The commands live by concept: ``output`` (values, tables, error lines), ``exports`` (csv,
json, xlsx), ``decks`` (``deck`` and ``assign``), ``cdrs`` (``ingest`` to ``summary``,
``generate`` and ``demo``), ``tables`` (``table``), ``reports`` (``report``), ``fx``,
``checks`` (``check``), ``watch`` (``watch``, ``watch findings``); this module holds the
top-level group, its options, ``init`` and ``main``.
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
from ratelab.cli.checks import check
from ratelab.cli.decks import assign, deck
from ratelab.cli.fx import fx
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
from ratelab.cli.tables import table
from ratelab.cli.watch import watch
from ratelab.decks import DeckError
from ratelab.migrations import SchemaError, current_version
from ratelab.reports.common import MissingRateError
from ratelab.warehouse import DEFAULT_PATH, Warehouse, WarehouseError, WarehouseNotFound

__all__ = ["main"]


#: Exit status of a command that could not do its job or found a problem.
PROBLEM = 1
#: Exit status of a command that must change (click's own usage errors are 2 as well).
USAGE = 2


class _Group(click.Group):
    """The top-level group: every problem is one ``error:`` line on stderr and a non-zero exit
    status (1: could not do its job; 2: the command must change)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeckError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            _fail(f"{len(err.problems)} problem(s) in {err.file}; nothing was imported", USAGE)
        except WarehouseNotFound as err:
            _fail(str(err), USAGE)
        except MissingRateError as err:  # an exchange rate is missing: the data must change
            _fail(str(err), PROBLEM)
        except (WarehouseError, SchemaError) as err:  # busy, not a warehouse, wrong version
            _fail(str(err), PROBLEM)
        except duckdb.IOException as err:  # a full disk, a file that went away
            state = ctx.find_object(_State)
            _fail(f"cannot use the warehouse {state.path if state else ''}: {err}", PROBLEM)
        except FileNotFoundError as err:
            _fail(str(err) if err.filename is None else f"no such file: {err.filename}", USAGE)
        except (ValueError, PermissionError) as err:
            _fail(str(err), USAGE)


@dataclass
class _State:
    path: Path

    def open(self, *, read_only: bool = False) -> Warehouse:
        """The warehouse; never created here (`ratelab init` creates one)."""
        if not self.path.exists():
            raise WarehouseNotFound(
                f"no warehouse at {self.path}: create one with `ratelab init {self.path}`, "
                "or point --warehouse / RATELAB_WAREHOUSE at one"
            )
        return Warehouse(self.path, read_only=read_only)


# -- the group ------------------------------------------------------------------------------

@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path),
              envvar="RATELAB_WAREHOUSE", default=str(DEFAULT_PATH), show_default=True,
              show_envvar=True,
              help="The DuckDB warehouse file (`ratelab init` creates one).")
@click.version_option(package_name="ratelab")
@click.pass_context
def cli(ctx: click.Context, warehouse: Path) -> None:
    """Billing and rate analytics for wholesale VoIP carriers.

    A typical day: import the decks vendors sent (check them with `deck diff` first), ingest
    the switch's CDR spool, rate it, and look at the margins.

    Exit status: 0 done; 1 could not do its job or found a problem (busy or unusable
    warehouse, a report that shows an error); 2 the command must change (bad option or value,
    rejected deck, missing file or warehouse).

    \b
    Examples:
      ratelab init data/warehouse.duckdb
      ratelab deck diff new_northstar.csv --name vendor_northstar
      ratelab deck import new_northstar.csv --name vendor_northstar --side vendor
      ratelab assign customer_standard --customer atlas_telecom
      ratelab ingest /var/spool/ratelab
      ratelab rate --since 2026-11-01
      ratelab summary --by vendor
      ratelab demo            # everything above on sample decks and synthetic CDRs
    """
    ctx.obj = _State(warehouse)


@cli.command(short_help="Create a new, empty warehouse file.")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def init(state: _State, path: Path | None) -> None:
    """Create the warehouse PATH (default: --warehouse) with the newest schema, and its folder.

    Every other command opens an existing warehouse and never creates one, so a typo in
    --warehouse or RATELAB_WAREHOUSE fails instead of starting an empty warehouse. An existing
    warehouse is left as it is (upgraded to the newest schema); a file that is not a ratelab
    warehouse is refused (exit 1).

    \b
    Examples:
      ratelab init data/warehouse.duckdb
      RATELAB_WAREHOUSE=/srv/ratelab/data/warehouse.duckdb ratelab init
    """
    target = path if path is not None else state.path
    existed = target.exists()
    before = _schema_version(target) if existed else 0
    wh = Warehouse(target, create=True)
    version = wh.schema_version()
    wh.close()
    if existed and 0 < before < version:
        click.echo(f"upgraded the warehouse {target} from schema version {before} to {version}; "
                   "its data is kept")
    elif existed:
        click.echo(f"{target} is already a ratelab warehouse (schema version {version}); "
                   "nothing created")
    else:
        click.echo(f"created the warehouse {target} (schema version {version})")
        click.echo("next: ratelab deck import FILE --name TABLE --side customer|vendor")


for _command in (deck, assign, calendar, ingest, quarantine, rate, summary, routing, generate,
                 demo, report, table, fx, check, watch):
    cli.add_command(_command)


def _schema_version(path: Path) -> int:
    """The schema version of the DuckDB file ``path`` (0 for a file that is not a warehouse)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return 0   # not a DuckDB file, or busy: Warehouse() below says which
    try:
        return current_version(con)
    finally:
        con.close()


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

    >>> "deck import" in list(_iter_commands(cli)), "init" in list(_iter_commands(cli))
    (True, True)
    """
    for name, command in sorted(group.commands.items()):
        yield prefix + name
        if isinstance(command, click.Group):
            yield from _iter_commands(command, prefix + name + " ")
