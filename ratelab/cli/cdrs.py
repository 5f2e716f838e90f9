"""``ratelab ingest|quarantine|rate|summary|generate|demo``: CDRs from spool to margins."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.exports import FORMATS, guess_format, write_export
from ratelab.cli.output import (
    SYNTHETIC_BANNER,
    WHEN,
    _fail,
    _moment,
    print_margin_summary,
    warehouse_currency,
)
from ratelab.decks import read_deck
from ratelab.migrations import SchemaError
from ratelab.progress import progress
from ratelab.reports.common import ReportError
from ratelab.warehouse import DEFAULT_PATH, Warehouse, WarehouseError

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


@click.group(invoke_without_command=True,
             short_help="List the CDR lines that could not be ingested; resolve them.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Lines to show (0: all).")
@click.option("--all", "show_all", is_flag=True,
              help="Include the entries already resolved (by hand or by re-ingesting).")
@click.pass_context
def quarantine(ctx: click.Context, limit: int, show_all: bool) -> None:
    """List the CDR lines that could not be ingested, as [id] file:line: reason.

    An entry is resolved when its CDR (same cdr_id) is ingested later, the line fixed in
    place or in another file; `ratelab quarantine resolve ID` resolves one by hand. Resolved
    entries are kept (with when and why) and listed with --all.

    \b
    Examples:
      ratelab quarantine --limit 0 > quarantine.txt
      ratelab quarantine resolve 17 --note "duplicate of a CDR re-sent by the switch"
    """
    if ctx.invoked_subcommand is not None:
        return
    state: _State = ctx.obj
    frame = state.open(read_only=True).quarantine_entries(include_resolved=show_all)
    if frame.height == 0:
        click.echo("the quarantine is empty" if show_all else
                   "no unresolved quarantine entries (--all lists the resolved ones)")
        return
    shown = frame.head(limit) if limit else frame
    for r in shown.iter_rows(named=True):
        done = f"  [resolved: {r['resolution']}]" if r["resolved_at"] is not None else ""
        click.echo(f"[{r['id']}] {r['file']}:{r['line']}: {r['reason']}{done}")
    more = f" (showing {shown.height}; --limit 0 shows all)" if shown.height < frame.height else ""
    click.echo(f"{frame.height:,} quarantined line(s){more}")


@quarantine.command("resolve", short_help="Mark a quarantine entry resolved (kept, with a note).")
@click.argument("entry_id", metavar="ID", type=int)
@click.option("--note", default="resolved by hand", show_default=True,
              help="Why it is resolved (kept with the entry).")
@click.pass_obj
def quarantine_resolve(state: _State, entry_id: int, note: str) -> None:
    """Mark quarantine entry ID resolved: it stays, with the time and NOTE.

    \b
    Example:
      ratelab quarantine resolve 17 --note "the carrier re-sent it"
    """
    try:
        state.open().resolve_quarantine(entry_id, note)
    except ValueError as err:
        _fail(str(err))
    click.echo(f"quarantine entry {entry_id} resolved: {note}")


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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="table (default), or an exact export: csv, json, xlsx (guessed from "
                   "--output's suffix).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE instead of the terminal (xlsx needs it).")
@click.pass_obj
def summary(state: _State, by: str, since: datetime | None, until: datetime | None,
            top: int, customer: str | None, vendor: str | None, fmt: str | None,
            output: Path | None) -> None:
    """Margins of rated CDRs: calls, minutes, revenue, cost, profit, margin, markup.

    Margins are computed from sums (never averaged per call): margin = profit / revenue,
    markup = profit / cost. "Flagged" counts calls without a customer or vendor rate.
    The table rounds money to 2 places for reading; --format csv|json|xlsx exports the
    exact frame (Warehouse.margin_summary), money as decimal text such as "0.034500".
    Nothing rated in the range exits 1.

    \b
    Examples:
      ratelab summary
      ratelab summary --by destination --top 15 --since 2026-11-01
      ratelab summary --by destination --vendor tollgate
      ratelab summary --by vendor --since 2026-11-01 --until 2026-12-01 --output nov.xlsx
      ratelab summary --format csv > margins.csv
    """
    fmt = guess_format(fmt, output)
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE.xlsx")
    wh = state.open(read_only=True)
    frame = wh.margin_summary(by, since, until, customer=customer, vendor=vendor)
    if frame.height == 0:
        _fail("nothing rated in that range: run `ratelab rate` first (or widen --since / "
              "--until)", 1)
    if top > 0 and fmt != "table":  # the table shows the top rows but totals them all
        frame = frame.head(top)
    if fmt != "table":
        if bool(frame["synthetic"].any()):
            click.echo(SYNTHETIC_BANNER, err=True)
        text = write_export(frame, fmt, output)
        if text is not None:
            click.echo(text, nl=False)
        else:
            click.echo(f"wrote {output} ({frame.height:,} rows, {fmt})", err=True)
        return
    head = _headline(wh, since, until, customer, vendor)
    currency = str(frame["currency"][0]) if "currency" in frame.columns else \
        warehouse_currency(wh)
    if output is not None:
        with click.open_file(str(output), "w", encoding="utf-8") as stream, \
                contextlib.redirect_stdout(stream):
            print_margin_summary(frame, by, top=top, title=f"Margin by {by}",
                                 currency=currency, width=0, headline=head)
        click.echo(f"wrote {output}", err=True)
        return
    print_margin_summary(frame, by, top=top, title=f"Margin by {by}", currency=currency,
                         headline=head)


def _headline(wh: Warehouse, since: datetime | None, until: datetime | None,
              customer: str | None, vendor: str | None) -> dict[str, object] | None:
    """The honest headline row over the summary's calls (None where reports lack it)."""
    from ratelab.reports import margins

    make = getattr(margins, "headline", None)
    if make is None:
        return None
    frame = make(wh, since, until, customer=customer, vendor=vendor)
    return dict(frame.row(0, named=True)) if frame.height else None


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
        # The demo is the one command besides `init` that makes its warehouse: explicitly.
        Warehouse(warehouse, create=True).close()
        run(warehouse=warehouse, spool=spool, workdir=workdir, calls=calls,
            synthetic_cdrs=synthetic_cdrs, days=days, seed=seed, decks_dir=decks_dir,
            report=report, reports_dir=reports_dir)
    except (WarehouseError, SchemaError, FileNotFoundError, SwitchError, RuntimeError,
            ReportError, ValueError) as err:
        _fail(str(err), 1)

