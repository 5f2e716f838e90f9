"""``ratelab ingest|quarantine|rate|summary|generate|demo``: CDRs from spool to margins."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.output import WHEN, _fail, _moment, print_margin_summary, warehouse_currency
from ratelab.decks import read_deck
from ratelab.migrations import SchemaError
from ratelab.progress import progress
from ratelab.reports.common import ReportError
from ratelab.warehouse import DEFAULT_PATH, Warehouse, WarehouseBusy

if TYPE_CHECKING:
    from ratelab.cli import _State

__all__ = ["demo", "generate", "ingest", "quarantine", "rate", "summary"]


# -- CDRs -----------------------------------------------------------------------------------

@click.command(short_help="Ingest a CDR spool directory.")
@click.argument("spool_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Read every file again, even unchanged ones.")
@click.pass_obj
def ingest(state: _State, spool_dir: Path, force: bool) -> None:
    """Ingest the CDR files (JSON lines, CDR contract v1) of SPOOL_DIR into the warehouse.

    Safe to run again at any time: unchanged files are skipped and a CDR already in the
    warehouse is never added twice (by cdr_id). Lines that are not valid CDRs go to the
    quarantine with their file, line and reason (see `ratelab quarantine`).

    \b
    Examples:
      ratelab ingest /var/spool/ratelab
      ratelab ingest data/spool/synthetic --force
    """
    from ratelab.ingest import spool_files

    total = len(spool_files(spool_dir))
    wh = state.open()
    done = 0
    with progress("Ingesting", total=total, unit="files") as update:

        def on_file(path: Path) -> None:
            nonlocal done
            done += 1
            update(done)

        summary = wh.ingest(spool_dir, force=force, on_file=on_file)
        update(total)
    click.echo(str(summary))
    if summary.quarantined:
        click.echo(f"hint: {summary.quarantined} line(s) quarantined; list them with "
                   "`ratelab quarantine`")


@click.command(short_help="List the CDR lines that could not be ingested.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Lines to show (0: all).")
@click.pass_obj
def quarantine(state: _State, limit: int) -> None:
    """List the CDR lines that could not be ingested, as file:line: reason.

    \b
    Example:
      ratelab quarantine --limit 0 > quarantine.txt
    """
    frame = state.open(read_only=True).quarantine()
    if frame.height == 0:
        click.echo("the quarantine is empty")
        return
    shown = frame.head(limit) if limit else frame
    for r in shown.iter_rows(named=True):
        click.echo(f"{r['file']}:{r['line']}: {r['reason']}")
    more = f" (showing {shown.height}; --limit 0 shows all)" if shown.height < frame.height else ""
    click.echo(f"{frame.height:,} quarantined line(s){more}")


@click.command(short_help="Rate CDRs: customer revenue and vendor cost.")
@click.option("--since", type=WHEN, default=None, help="CDRs starting at or after (UTC).")
@click.option("--until", type=WHEN, default=None, help="CDRs starting before (UTC).")
@click.option("--customer", default=None, help="Only this customer's CDRs.")
@click.option("--vendor", default=None, help="Only this vendor's CDRs.")
@click.pass_obj
def rate(state: _State, since: datetime | None, until: datetime | None, customer: str | None,
         vendor: str | None) -> None:
    """Rate (or re-rate) CDRs on both sides: customer revenue and vendor cost.

    Each CDR is priced by longest prefix match against the rate tables in force when the
    call started. Re-rating replaces earlier results, so run it again after importing a
    corrected deck or changing assignments.

    \b
    Examples:
      ratelab rate
      ratelab rate --since 2026-11-01 --until 2026-12-01 --customer atlas_telecom
    """
    wh = state.open()
    with progress("Rating", unit="CDRs") as update:
        summary = wh.rate(since, until, customer, vendor,
                          on_chunk=lambda done, total: update(done, total))
    click.echo(str(summary))
    if summary.cdrs == 0:
        click.echo("hint: no CDRs in that range; ingest some with `ratelab ingest SPOOL_DIR`")


@click.command(short_help="Margins by customer, vendor or destination.")
@click.option("--by", type=click.Choice(["customer", "vendor", "destination"]),
              default="customer", show_default=True, help="What to group by.")
@click.option("--since", type=WHEN, default=None, help="CDRs starting at or after (UTC).")
@click.option("--until", type=WHEN, default=None, help="CDRs starting before (UTC).")
@click.option("--top", type=click.IntRange(min=0), default=0,
              help="Only the N most profitable rows (0: all).")
@click.option("--customer", default=None, help="Only this customer's CDRs.")
@click.option("--vendor", default=None, help="Only CDRs this vendor carried.")
@click.pass_obj
def summary(state: _State, by: str, since: datetime | None, until: datetime | None,
            top: int, customer: str | None, vendor: str | None) -> None:
    """Margins of rated CDRs: calls, minutes, revenue, cost, profit, margin, markup.

    Margins are computed from sums (never averaged per call): margin = profit / revenue,
    markup = profit / cost. "Flagged" counts calls without a customer or vendor rate.

    \b
    Examples:
      ratelab summary
      ratelab summary --by destination --top 15 --since 2026-11-01
      ratelab summary --by destination --vendor tollgate
    """
    wh = state.open(read_only=True)
    frame = wh.margin_summary(by, since, until, customer=customer, vendor=vendor)
    if frame.height == 0:
        click.echo("nothing rated in that range: run `ratelab rate` first")
        return
    print_margin_summary(frame, by, top=top, title=f"Margin by {by}",
                         currency=warehouse_currency(wh))


@click.command(short_help="Write synthetic CDRs (labelled, not real calls).")
@click.argument("spool_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(min=1), required=True, help="How many CDRs.")
@click.option("--customers", default=None,
              help="Comma-separated customers (default: those known to the warehouse).")
@click.option("--vendors", default=None,
              help="Comma-separated vendors (default: those known to the warehouse).")
@click.option("--prefixes-from", "decks", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dial the prefixes of this deck (repeatable; default: every prefix in the "
                   "warehouse's rate tables).")
@click.option("--start", type=WHEN, default=None,
              help="First call time (UTC; default: midnight --days days ago).")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True,
              help="Spread the calls over this many days.")
@click.option("--files", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of spool files.")
@click.option("--answer-ratio", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Share of calls answered.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Same seed, same CDRs.")
@click.option("--batch", default=None,
              help="Batch name in file names and cdr_ids (default: s<seed>); CDRs of one "
                   "batch and seed are the same on every run.")
@click.pass_obj
def generate(state: _State, spool_dir: Path, count: int, customers: str | None,
             vendors: str | None, decks: tuple[Path, ...], start: datetime | None, days: int,
             files: int, answer_ratio: float, seed: int, batch: str | None) -> None:
    """Write COUNT synthetic CDRs (clearly labelled, not real calls) into SPOOL_DIR.

    Synthetic CDRs follow the CDR contract v1; their switch_id is "synthetic" and their
    cdr_id starts with "synthetic-", so every report can say so. Use them to try the
    pipeline before the switch produces real CDRs.

    \b
    Examples:
      ratelab generate data/spool/synthetic --count 100000
      ratelab generate /tmp/spool --count 5000 --customers acme,globex --vendors tollgate \\
          --prefixes-from ratelab/data/decks/customer_standard.csv --start 2026-11-01 --days 30
    """
    from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs

    wh: Warehouse | None = None

    def known(side: str) -> list[str]:
        nonlocal wh
        wh = wh or state.open(read_only=True)
        return wh.parties(side)

    customer_list = _split(customers) if customers else known("customer")
    vendor_list = _split(vendors) if vendors else known("vendor")
    if decks:
        prefixes = sorted({row.prefix for path in decks
                           for row in read_deck(path, effective_from=date(2000, 1, 1))})
    else:
        wh = wh or state.open(read_only=True)
        prefixes = wh.sql("SELECT DISTINCT prefix FROM rates ORDER BY prefix")["prefix"].to_list()
    for what, found, how in (("customers", customer_list, "--customers a,b"),
                             ("vendors", vendor_list, "--vendors x,y"),
                             ("prefixes", prefixes, "--prefixes-from DECK.csv")):
        if not found:
            raise ValueError(f"no {what} to generate for: pass {how} (the warehouse has none)")
    if start is None:
        start = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0,
                                          microsecond=0) - timedelta(days=days)
    spec = SyntheticSpec(customer_list, vendor_list, prefixes, start,
                         start + timedelta(days=days), answer_ratio=answer_ratio, seed=seed)
    paths = write_synthetic_cdrs(spool_dir, count, spec, files=files, batch=batch or f"s{seed}")
    click.echo(
        f"wrote {count:,} SYNTHETIC CDRs (generated, not real calls) in {len(paths)} file(s) "
        f"under {spool_dir}: {len(customer_list)} customers, {len(vendor_list)} vendors, "
        f"{len(prefixes)} prefixes, {_moment(spec.start)} to {_moment(spec.end)} UTC"
    )
    click.echo(f"next: ratelab ingest {spool_dir}")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# -- demo -----------------------------------------------------------------------------------

@click.command(short_help="Run the end-to-end demo: real calls through the switch.",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The DuckDB warehouse file  [default: ratelab's --warehouse, else "
                   "RATELAB_WAREHOUSE, else data/warehouse.duckdb]")
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path),
              default="data/spool", show_default=True,
              help="The CDR spool: the switch writes into SPOOL/switch, generated CDRs go to "
                   "SPOOL/synthetic.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default="data/demo", show_default=True,
              help="Where the switch config, routing snapshot and load plan are written.")
@click.option("--calls", type=click.IntRange(min=0), default=2_200, show_default=True,
              help="Real calls to carry through the switch (0: none).")
@click.option("--synthetic-cdrs", type=click.IntRange(min=0), default=20_000,
              show_default=True,
              help="Generated history over the --days days before today, for the report's "
                   "trend charts (labelled SYNTHETIC; 0: none).")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True,
              help="Spread the generated history over the N days before today.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="End with the daily report over today (HTML in --reports).")
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False, path_type=Path),
              default="reports", show_default=True, help="Where reports go.")
@click.option("--seed", type=int, default=7, show_default=True, help="Generator seed.")
@click.option("--decks", "decks_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None,
              help="Folder of the sample decks (default: the ones shipped in the package).")
@click.pass_context
def demo(ctx: click.Context, warehouse: Path | None, spool: Path, workdir: Path, calls: int,
         synthetic_cdrs: int, days: int, report: bool, reports_dir: Path, seed: int,
         decks_dir: Path | None) -> None:
    """Run the end-to-end demo (`make demo`; `python -m ratelab.demo` is this command).

    Imports the sample decks shipped in the package, assigns them, exports the routing snapshot,
    starts the switch and carries real SIP calls through it from the load generator, ingests and
    rates the CDRs, and prints margins by customer, vendor and destination; with --report,
    writes the daily report over today. Safe to run again: nothing is counted twice.

    \b
    Examples:
      ratelab --warehouse /tmp/demo.duckdb demo --calls 500
      python -m ratelab.demo --warehouse /tmp/demo.duckdb --calls 500 --days 7
    """
    from ratelab.demo import run  # late: it loads the switch harness
    from ratelab.switch_process import SwitchError

    if warehouse is None:
        state: _State | None = ctx.obj  # None when run alone (python -m ratelab.demo)
        warehouse = (state.path if state is not None
                     else Path(os.environ.get("RATELAB_WAREHOUSE") or DEFAULT_PATH))
    try:
        run(warehouse=warehouse, spool=spool, workdir=workdir, calls=calls,
            synthetic_cdrs=synthetic_cdrs, days=days, seed=seed, decks_dir=decks_dir,
            report=report, reports_dir=reports_dir)
    except (WarehouseBusy, SchemaError, FileNotFoundError, SwitchError, RuntimeError,
            ReportError, ValueError) as err:
        _fail(str(err), 1)

