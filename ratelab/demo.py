"""The end-to-end demo (``python -m ratelab.demo``, what ``make demo`` runs).

On the default warehouse (``data/warehouse.duckdb``, or ``--warehouse``) it

1. imports the sample rate decks shipped in the package (``ratelab/data/decks/``: three
   vendors, a standard and a premium customer price list, and one customer's private deal),
2. assigns them to the demo's customers and vendors,
3. exports the routing snapshot the switch routes by (``ratelab routing export``),
4. starts the switch (``ratelab.SwitchProcess``) and carries real SIP calls through it from the
   load generator's customers to its vendors (:mod:`ratelab.demo_calls`: failover, a CPS limit
   and the profit limit at work), then stops it; the CDRs land in ``data/spool/switch/``,
5. ingests and 6. rates them, and
7. prints the margins by customer, by vendor and by destination, and the totals.

``--synthetic-cdrs N`` (20,000 by default) adds generated CDRs over the ``--days`` (30) days
before today, labelled SYNTHETIC in the data and wherever shown, so the daily report's trend
charts have history; the printed margins cover today's real calls. 8. The daily report over
today is written to ``reports/`` (``--no-report`` skips it).

Running it again is safe: a re-imported deck corrects the same rows, assignments are replaced,
each run's calls are new calls with new cdr_ids, and ingest never adds a cdr_id twice.

>>> [deck.table for deck in DECKS if deck.side == "vendor"]
['vendor_northstar', 'vendor_tollgate', 'vendor_meridian']
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ratelab.cli.output import (
    SYNTHETIC_BANNER,
    print_margin_summary,
    totals_line,
    warehouse_currency,
)
from ratelab.decks import read_deck
from ratelab.demo_calls import carry_calls
from ratelab.progress import progress
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
from ratelab.warehouse import DEFAULT_PATH, Warehouse

__all__ = ["ASSIGNMENTS", "CUSTOMERS", "DECKS", "DECKS_DIR", "VENDORS", "history_window", "main",
           "run"]

#: The sample decks, shipped inside the package (package data, ``ratelab/data/decks/``): found
#: next to this module, never through the working directory.
DECKS_DIR = Path(__file__).resolve().parent / "data" / "decks"
DEFAULT_SPOOL = Path("data/spool")
#: Where the demo writes the switch's config, the routing snapshot and the load plan.
DEFAULT_WORKDIR = Path("data/demo")
#: Where the demo's report is written.
DEFAULT_REPORTS = Path("reports")
#: The synthetic CDRs' batch name: fixed, so a re-run writes the same cdr_ids.
BATCH = "demo"


@dataclass(frozen=True)
class DemoDeck:
    """A sample deck and the rate table it goes into."""

    file: str
    table: str
    side: str


@dataclass(frozen=True)
class Assignment:
    """Which rate table prices whom."""

    table: str
    side: str
    party: str
    kind: str = "account"
    note: str = ""


DECKS: tuple[DemoDeck, ...] = (
    DemoDeck("vendor_northstar.csv", "vendor_northstar", "vendor"),
    DemoDeck("vendor_tollgate.csv", "vendor_tollgate", "vendor"),
    DemoDeck("vendor_meridian.csv", "vendor_meridian", "vendor"),
    DemoDeck("customer_standard.csv", "customer_standard", "customer"),
    DemoDeck("customer_premium.csv", "customer_premium", "customer"),
    DemoDeck("customer_bluewave_private.csv", "bluewave_private", "customer"),
)

ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment("vendor_northstar", "vendor", "northstar"),
    Assignment("vendor_tollgate", "vendor", "tollgate"),
    Assignment("vendor_meridian", "vendor", "meridian"),
    Assignment("customer_standard", "customer", "atlas_telecom"),
    Assignment("customer_standard", "customer", "bluewave_voip"),
    Assignment("bluewave_private", "customer", "bluewave_voip", "account_private",
               "each call is charged the cheaper of this and customer_standard"),
    Assignment("customer_premium", "customer", "cobalt_mobile"),
)

CUSTOMERS: tuple[str, ...] = tuple(dict.fromkeys(
    a.party for a in ASSIGNMENTS if a.side == "customer"))
VENDORS: tuple[str, ...] = tuple(a.party for a in ASSIGNMENTS if a.side == "vendor")


def run(
    *,
    warehouse: str | Path = DEFAULT_PATH,
    spool: str | Path = DEFAULT_SPOOL,
    workdir: str | Path = DEFAULT_WORKDIR,
    calls: int = 2_200,
    synthetic_cdrs: int = 20_000,
    days: int = 30,
    seed: int = 7,
    files: int = 4,
    decks_dir: str | Path | None = None,
    report: bool = True,
    reports_dir: str | Path = DEFAULT_REPORTS,
) -> Warehouse:
    """Run the demo and print what it does; return the warehouse.

    ``calls`` real calls go through the switch (0: none); ``synthetic_cdrs`` generated CDRs
    (history for the report's trend charts, labelled SYNTHETIC) are added over the ``days``
    days before today; with ``report``, the daily report over today is written into
    ``reports_dir``. The example runs without the switch and the report:

    >>> import contextlib, io, tempfile; from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with contextlib.redirect_stdout(io.StringIO()) as out:
    ...     wh = run(warehouse=folder / "w.duckdb", spool=folder / "spool",
    ...              workdir=folder / "demo", calls=0, synthetic_cdrs=100, report=False)
    >>> "SYNTHETIC" in out.getvalue(), wh.rated().height
    (True, 100)
    """
    began = time.monotonic()
    folder = _decks_dir(decks_dir)
    spool, workdir = Path(spool), Path(workdir)
    steps = 8 if report else 7
    say = click.echo
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    what = [f"{calls:,} real calls through the switch"] if calls else []
    if synthetic_cdrs:
        what.append(f"{synthetic_cdrs:,} SYNTHETIC CDRs")
    say(f"ratelab demo: sample rate decks + {' + '.join(what) or 'no calls'} -> "
        f"warehouse {warehouse}")
    say("")

    say(f"1/{steps} importing the sample rate decks from {folder} ...")
    wh = Warehouse(warehouse, create=True)
    prefixes: set[str] = set()
    for deck in DECKS:
        path = folder / deck.file
        summary = wh.import_deck(path, deck.table, deck.side)
        prefixes.update(row.prefix for row in read_deck(path))
        say(f"    {deck.side:8} {summary}")

    say(f"2/{steps} assigning the rate tables to customers and vendors ...")
    for a in ASSIGNMENTS:
        if a.side == "vendor":
            wh.assign(a.table, vendor=a.party)
        else:
            wh.assign(a.table, customer=a.party, kind=a.kind)
        note = f"; {a.note}" if a.note else ""
        say(f"    {a.table:18} prices {a.side} {a.party} ({a.kind}{note})")

    say(f"3/{steps} exporting the routing snapshot the switch routes by ...")
    workdir.mkdir(parents=True, exist_ok=True)
    snapshot = wh.export_routing(workdir / "routing.json")
    say(f"    {_shown(snapshot)}: customer and vendor rates per prefix in force now")

    if calls:
        say(f"4/{steps} carrying {calls:,} real SIP calls: switch + load generator on 127.0.0.1 "
            "(failover, a CPS limit and the profit limit at work) ...")
        carried = carry_calls(workdir, spool / "switch", snapshot, calls, say=say)
        say(f"    {carried.placed:,} calls placed in {carried.seconds:.0f} s, "
            f"{carried.cdrs:,} CDRs written; the switch stopped cleanly "
            f"(exit {carried.switch_exit})")
        for line in carried.loadgen_summary.splitlines():
            if line.startswith("plan finished"):
                say(f"    load generator: {line}")
    else:
        say(f"4/{steps} no real calls this time (--calls 0)")
    if synthetic_cdrs:
        start, end = history_window(wh, today, days)
        say(f"    + generating {synthetic_cdrs:,} SYNTHETIC CDRs (generated, not real calls) "
            f"from {start:%Y-%m-%d} to {end:%Y-%m-%d} UTC into {spool / 'synthetic'} ...")
        spec = SyntheticSpec(CUSTOMERS, VENDORS, sorted(prefixes), start, end, seed=seed)
        write_synthetic_cdrs(spool / "synthetic", synthetic_cdrs, spec, files=files,
                             batch=BATCH)

    say(f"5/{steps} ingesting the CDR spool (idempotent: a cdr_id is never added twice) ...")
    done = 0
    with progress("Ingesting", unit="files", transient=True) as update:

        def on_file(_: Path) -> None:
            nonlocal done
            done += 1
            update(done)

        ingested = wh.ingest(spool, on_file=on_file)
    say(f"    {ingested}")

    say(f"6/{steps} rating every CDR on both sides (customer revenue, vendor cost) ...")
    with progress("Rating", unit="CDRs", transient=True) as update:
        rated = wh.rate(on_chunk=lambda n, total: update(n, total))
    say(f"    {rated}")
    for line in _private_deal_lines(wh):
        say(f"    {line}")
    for line in _switch_lines(wh):
        say(f"    {line}")

    # With real calls, the tables show them (today, UTC); generated history stays in the report.
    since = today if calls else None
    scope = "today's real calls" if calls else "every CDR"
    say(f"7/{steps} margins of {scope} (from sums of revenue and cost, never averages of "
        "percentages)")
    currency = warehouse_currency(wh)
    synthetic = False
    for by, top in (("customer", 0), ("vendor", 0), ("destination", 15)):
        frame = wh.margin_summary(by, since=since)
        synthetic = synthetic or bool(frame.height and frame["synthetic"].any())
        say("")
        print_margin_summary(frame, by, top=top, title=f"Margin by {by}", currency=currency,
                             totals=False)
    say("")
    if synthetic:
        say(SYNTHETIC_BANNER)
    say(totals_line(list(wh.margin_summary("customer", since=since).iter_rows(named=True)),
                    currency))
    say("")
    if report:
        from ratelab.report_runner import run_report

        say(f"8/{steps} the daily report over today (papermill, HTML without code cells) ...")
        paths = run_report("daily_report", {"warehouse": str(Path(warehouse).resolve()),
                                            "start": f"{today:%Y-%m-%d}",
                                            "end": f"{today + timedelta(days=1):%Y-%m-%d}"},
                           out_dir=reports_dir)
        say(f"    report: {_shown(paths.html)}  (open it in a browser; works offline)")
        say("")
    command = "ratelab" if Path(warehouse) == DEFAULT_PATH else f"ratelab --warehouse {warehouse}"
    update_deck = _shown(folder / "vendor_tollgate_update.csv")
    say(f"done in {time.monotonic() - began:.1f} s. Next, for example:")
    say(f"    {command} summary --by destination --top 10")
    say(f"    {command} deck diff {update_deck} --name vendor_tollgate --as-of 2026-11-28")
    return wh


def history_window(wh: Warehouse, today: datetime, days: int) -> tuple[datetime, datetime]:
    """Where the generated history goes: the ``days`` days before ``today``, but never before
    every sample table has rates in force (the latest of the tables' first effective dates),
    so the history produces no flagged calls by accident. When that date is later than
    ``days`` before ``today`` the window starts on it (and is shorter); when it is after
    ``today``, the window is the ``days`` days from it.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=1)             # its decks take effect on 2026-01-01
    >>> history_window(wh, datetime(2026, 1, 10), 30)
    (datetime.datetime(2026, 1, 1, 0, 0), datetime.datetime(2026, 1, 10, 0, 0))
    >>> history_window(wh, datetime(2026, 6, 1), 30)
    (datetime.datetime(2026, 5, 2, 0, 0), datetime.datetime(2026, 6, 1, 0, 0))
    """
    tables = [d.table for d in DECKS]
    first = wh.sql(
        """SELECT max(first) AS ready FROM (
               SELECT table_name, min(effective_from) AS first FROM rates
               WHERE list_contains($tables, table_name) OR NOT EXISTS (
                   SELECT 1 FROM rates WHERE list_contains($tables, table_name))
               GROUP BY table_name)""", {"tables": tables})["ready"][0]
    start = today - timedelta(days=days)
    if first is None or first <= start:
        return start, today
    if first < today:
        return first, today
    return first, first + timedelta(days=days)


def _switch_lines(wh: Warehouse) -> list[str]:
    """How the switch ended the real calls: answered, failover, limits."""
    frame = wh.sql(
        """SELECT disconnect_reason AS reason, count(*) AS calls,
                  count(*) FILTER (WHERE len(attempts) > 1) AS failed_over
           FROM cdrs WHERE switch_id <> 'synthetic' GROUP BY ALL ORDER BY calls DESC""")
    rows = list(frame.iter_rows(named=True))
    if not rows:
        return []
    reasons = ", ".join(f"{r['reason']} {r['calls']:,}" for r in rows)
    failed_over = sum(r["failed_over"] for r in rows)
    return [f"switch CDRs by how the call ended: {reasons}",
            f"calls that failed over to another vendor: {failed_over:,}"]


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it (shorter to read)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _decks_dir(given: str | Path | None) -> Path:
    """The folder of the sample decks: ``given``, or the ones shipped in the package."""
    folder = Path(given) if given is not None else DECKS_DIR
    if (folder / DECKS[0].file).is_file():
        return folder
    hint = ("pass a folder holding " + ", ".join(deck.file for deck in DECKS)
            if given is not None else "the ratelab installation is incomplete: reinstall it")
    raise FileNotFoundError(f"sample decks not found in {folder}: {hint}")


def _private_deal_lines(wh: Warehouse) -> list[str]:
    """How the cheapest-of rule split one customer's calls between its rate tables."""
    deals = [a for a in ASSIGNMENTS if a.kind != "account"]
    lines = []
    for deal in deals:
        frame = wh.sql(
            """SELECT customer_table, count(*) AS calls FROM rated
               WHERE customer = $c AND billed_s_customer > 0 GROUP BY ALL ORDER BY calls DESC""",
            {"c": deal.party},
        )
        split = ", ".join(f"{r['calls']:,} by {r['customer_table']}"
                          for r in frame.iter_rows(named=True))
        if split:
            lines.append(f"cheapest-of rule: {deal.party}'s answered calls were priced {split}")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ratelab.demo [OPTIONS]``: the ``ratelab demo`` command, with its options.

    ``--warehouse`` defaults to ``RATELAB_WAREHOUSE``, else ``data/warehouse.duckdb``.
    """
    from ratelab.cli.cdrs import demo  # the one command; the CLI imports this module late

    demo.main(args=argv, prog_name="python -m ratelab.demo")


if __name__ == "__main__":
    main()
