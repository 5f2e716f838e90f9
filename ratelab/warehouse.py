"""The DuckDB warehouse: one file holding rate tables, CDRs and rated results.

Only one process may hold a DuckDB file read-write, so a ``Warehouse`` holds no connection
between calls: each method opens the file, does its work in a transaction and closes it. An
ingest job and an analyst's notebook therefore take turns; a call that finds the file locked
retries for ``lock_timeout`` seconds before it gives up with a message saying who to wait for.

``Warehouse`` is a facade: opening the file, connections and errors are
:mod:`ratelab.warehouse_file`'s, and each method hands its work to the module that owns the
concept (:mod:`ratelab.rates`, :mod:`ratelab.assignments`, :mod:`ratelab.calendars`,
:mod:`ratelab.fx`, :mod:`ratelab.ingest`, :mod:`ratelab.rating`, :mod:`ratelab.routing`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as TimeOfDay
from decimal import Decimal
from pathlib import Path

import polars as pl

from ratelab import assignments, calendars, fx
from ratelab import rates as rate_store
from ratelab.db import transaction
from ratelab.decks import read_deck
from ratelab.ingest import IngestSummary, ingest_spool, resolve_quarantine
from ratelab.rating import RateSummary, rate_cdrs, rated_calls
from ratelab.routing import routing_snapshot, write_snapshot
from ratelab.warehouse_file import WarehouseBusy, WarehouseError, WarehouseFile, WarehouseNotFound
from ratelab.watch.aggregates import mark_stale

__all__ = ["DEFAULT_PATH", "Warehouse", "WarehouseBusy", "WarehouseError", "WarehouseNotFound",
           "connect"]

DEFAULT_PATH = Path("data/warehouse.duckdb")


def connect(path: str | Path | None = None, *, read_only: bool = False, create: bool = False,
            lock_timeout: float = 30.0, memory_limit: str | None = None) -> Warehouse:
    """Open the warehouse at ``path`` (default ``data/warehouse.duckdb``), upgrading its schema
    when opened read-write.

    Nothing is created unless ``create=True``: a missing file raises :class:`WarehouseNotFound`
    (a :class:`WarehouseError`) saying how to create one, and a file that is not a ratelab
    warehouse raises :class:`WarehouseError`.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.duckdb")
    >>> try:
    ...     connect(path)
    ... except WarehouseError as err:
    ...     print(str(err).replace(path, "PATH"))
    no warehouse at PATH: create one with `ratelab init PATH` (Python: connect(path, create=True))
    >>> with connect(path, create=True) as wh:
    ...     wh.schema_version() >= 1
    True
    """
    return Warehouse(DEFAULT_PATH if path is None else path, read_only=read_only,
                     create=create, lock_timeout=lock_timeout, memory_limit=memory_limit)


class Warehouse(WarehouseFile):
    """A rate and CDR warehouse in one DuckDB file. See the module docstring on sharing it.

    ``Warehouse(path)`` opens an existing warehouse (``create=True`` makes a new one). It holds
    no connection between calls; ``close()`` (or leaving a ``with`` block) ends its use, and
    later calls raise :class:`WarehouseError`. Opening, connections and ``sql`` come from
    :class:`ratelab.warehouse_file.WarehouseFile`.
    """

    # -- rate decks --------------------------------------------------------------------------

    def import_deck(
        self,
        path: str | Path,
        name: str,
        side: str,
        *,
        mode: str = "full",
        columns: dict[str, str] | None = None,
        effective_from: datetime | date | None = None,
        default_increment: str = "60/60",
        date_order: str = "dmy",
        sheet: str | None = None,
        currency: str | None = None,
        time_zone: str | None = None,
        calendar: str | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> rate_store.ImportSummary:
        """Validate a CSV/XLSX deck and import it as a new version of rate table ``name``.

        Any bad row raises ``DeckError`` listing every problem as file:line: reason, and
        nothing is imported. ``mode="full"`` closes prefixes the deck no longer lists.
        A new table gets ``currency`` (USD), ``time_zone`` (UTC) and work ``calendar``
        (default); an existing table keeps its own and refuses different ones.
        ``on_step(done, 3)`` reports progress: read and validated, stored, indexed.

        >>> import tempfile; from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> deck = folder / "vendor.csv"
        >>> _ = deck.write_text("Dial Code;Rate;Increment;Effective Date\\n"
        ...                     "44;0,015;1/1;01/01/2026\\n")
        >>> wh = connect(folder / "w.duckdb", create=True)
        >>> print(wh.import_deck(deck, "vendor_x", "vendor"))
        vendor_x: imported 1 rows (import 1); 0 superseded, 0 closed, 0 corrected; index 1 segments
        """
        self._write()
        step = on_step or (lambda done, total: None)
        rows = read_deck(path, columns=columns, effective_from=effective_from,
                         default_increment=default_increment, date_order=date_order, sheet=sheet)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        step(1, 3)
        with self.connection() as con, transaction(con):
            rate_store.ensure_table(con, name, side, currency=currency, time_zone=time_zone,
                                    calendar=calendar)
            summary = rate_store.import_rows(con, name, rows, file=str(path), sha256=digest,
                                             mode=mode, on_stored=lambda: step(2, 3))
        step(3, 3)
        return summary

    def deck_diff(
        self,
        path: str | Path,
        name: str,
        *,
        notice_days: int = 7,
        as_of: datetime | None = None,
        **read_options: object,
    ) -> pl.DataFrame:
        """Classify each prefix of a new deck against rate table ``name`` as in force now.

        Status is new, increase, decrease, unchanged or closed; ``short_notice`` flags increases
        effective sooner than ``notice_days`` after ``as_of``.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> new = wh.path.parent / "new.csv"
        >>> _ = new.write_text("prefix,rate,effective_from\\n44,0.0160,2026-12-01\\n")
        >>> diff = wh.deck_diff(new, "vend_x", as_of=datetime(2026, 11, 28))
        >>> diff.select("prefix", "status", "short_notice").rows()
        [('1', 'closed', False), ('44', 'increase', True), ('447', 'closed', False)]
        """
        # read_options are read_deck's keyword arguments, passed through unchecked here.
        new = read_deck(path, **read_options)  # type: ignore[arg-type]
        with self.connection() as con:
            return rate_store.diff_deck(con, name, new, as_of=as_of, notice_days=notice_days)

    def assign(
        self,
        table: str,
        *,
        customer: str | None = None,
        vendor: str | None = None,
        kind: str = "account",
        phone: str | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        replace_history: bool = False,
    ) -> tuple[datetime, datetime | None]:
        """Say that rate table ``table`` prices ``customer`` (or ``vendor``); return the
        interval it does so over (naive UTC; 1970-01-01 means "since the beginning").

        Customer kinds follow the VOS billing principle: period, account, account_private,
        phone_private (with ``phone``); the cheapest applicable charge wins. See
        :func:`ratelab.assignments.assign` for how a new assignment replaces an older one: it closes
        the old interval and keeps the history; one that would re-price calls already made is
        refused (``HistoryError``) unless ``replace_history=True``.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> wh.assign("cust_std", customer="globex", kind="account_private")
        (datetime.datetime(1970, 1, 1, 0, 0), None)
        >>> wh.sql("SELECT kind FROM assignments WHERE party = 'globex'")["kind"].to_list()
        ['account_private']
        """
        self._write()
        side, party = assignments.party_side(customer, vendor)
        with self.connection() as con, transaction(con):
            return assignments.assign(con, table, party, side, kind=kind, phone=phone,
                                      valid_from=valid_from, valid_to=valid_to,
                                      replace_history=replace_history)

    def set_calendar(self, name: str,
                     hours: list[tuple[int, TimeOfDay, TimeOfDay | None, str]]) -> None:
        """Define (or replace) work calendar ``name``: (weekday 1-7, start, end, band) rows
        covering every day from 00:00 to 24:00 (``end`` None for 24:00).

        >>> from ratelab.examples import sample_warehouse
        >>> from datetime import time
        >>> wh = sample_warehouse(cdrs=1)
        >>> week = [(d, time(0), time(9), "offpeak") for d in range(1, 8)]
        >>> week += [(d, time(9), None, "peak") for d in range(1, 8)]
        >>> wh.set_calendar("nine_to_midnight", week)
        >>> wh.sql("SELECT count(*) AS n FROM calendar_hours "
        ...        "WHERE calendar = 'nine_to_midnight'")["n"][0]
        14
        """
        self._write()
        with self.connection() as con, transaction(con):
            calendars.set_calendar(con, name, hours)

    def rate_tables(self, at: datetime | None = None) -> pl.DataFrame:
        """The rate tables: side, currency, time zone, rows in force at ``at`` (naive UTC,
        default now) and scheduled after it, imports, the last file, and whom each prices.

        >>> from ratelab.examples import sample_warehouse
        >>> tables = sample_warehouse(cdrs=1).rate_tables()
        >>> tables.select("name", "side", "in_force", "assigned").rows()
        [('cust_std', 'customer', 3, 'acme'), ('vend_x', 'vendor', 3, 'carrier_x')]
        """
        with self.connection() as con:
            return rate_store.table_overview(con, at)

    def parties(self, side: str) -> list[str]:
        """The customers (``side="customer"``) or vendors that rate tables were assigned to.

        >>> from ratelab.examples import sample_warehouse
        >>> sample_warehouse(cdrs=1).parties("vendor")
        ['carrier_x']
        """
        return self.sql("SELECT name FROM parties WHERE side = $s ORDER BY name",
                        {"s": side})["name"].to_list()

    def export_routing(self, path: str | Path = "data/routing.json",
                       at: datetime | None = None) -> Path:
        """Write the switch's routing snapshot (customer and vendor rates per prefix in force
        at ``at``, default now; format in :mod:`ratelab.routing`) atomically to ``path``.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> out = wh.export_routing(wh.path.parent / "routing.json", at=datetime(2026, 6, 1))
        >>> import json; sorted(json.loads(out.read_text())["customers"]["acme"])
        ['1', '44', '447']
        """
        with self.connection() as con:
            snapshot = routing_snapshot(con, at)
        return write_snapshot(snapshot, path)

    def calendar_day(self, day: date, band: str, *, calendar: str = "default",
                     note: str = "") -> None:
        """Price a whole local day (a holiday, say) as ``band`` in ``calendar``.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> wh.calendar_day(date(2026, 12, 25), "weekend", note="Christmas")
        >>> wh.sql("SELECT band FROM calendar_days")["band"].to_list()
        ['weekend']
        """
        self._write()
        with self.connection() as con:
            calendars.set_calendar_day(con, day, band, calendar=calendar, note=note)

    # -- CDRs --------------------------------------------------------------------------------

    def ingest(self, spool_dir: str | Path, *, force: bool = False,
               on_file: Callable[[Path], None] | None = None) -> IngestSummary:
        """Ingest new CDR files from a spool directory (idempotent on cdr_id).

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=20)        # already ingested its spool once
        >>> print(wh.ingest(wh.path.parent / "spool", force=True))
        ingested 0 CDRs from 1 files (0 unchanged skipped); 20 already present, 0 quarantined
        """
        self._write()
        with self.connection() as con:
            return ingest_spool(con, spool_dir, force=force, on_file=on_file)

    def quarantine(self) -> pl.DataFrame:
        """The CDR lines that could not be ingested, with file, line and reason.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> bad = wh.path.parent / "spool" / "bad.jsonl"
        >>> _ = bad.write_text('{"cdr_id": "x"\\n')
        >>> wh.ingest(bad.parent).quarantined
        1
        >>> wh.quarantine().select("line", "reason").rows()
        [(1, 'not valid JSON')]
        """
        return self.sql("SELECT * FROM cdr_quarantine ORDER BY file, line")

    # -- rating ------------------------------------------------------------------------------

    def rate(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        customer: str | None = None,
        vendor: str | None = None,
        *,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> RateSummary:
        """(Re-)rate the CDRs starting in [since, until), optionally of one customer/vendor.

        >>> from ratelab.examples import sample_warehouse
        >>> summary = sample_warehouse(cdrs=50).rate()
        >>> summary.cdrs, summary.flagged, summary.profit == summary.revenue - summary.cost
        (50, 0, True)
        """
        self._write()
        with self.connection() as con:
            # first: the watch aggregates these hours again when it next reads them
            mark_stale(con, since, until)
            return rate_cdrs(con, since=since, until=until, customer=customer, vendor=vendor,
                             on_chunk=on_chunk)

    def rated(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        customer: str | None = None,
        vendor: str | None = None,
        status: str | None = None,
    ) -> pl.DataFrame:
        """Rated CDRs with revenue, cost, profit and rate deviation, ordered by start; also the
        CDR's ``callee`` (as received), ``answered`` and ``duration_s`` (exact, Decimal(18, 3)).
        Money is as rated, in each rate table's currency (``rated_base`` converts it).

        >>> from ratelab.examples import sample_warehouse
        >>> rated = sample_warehouse(cdrs=50, rated=True).rated(customer="acme")
        >>> rated.height, (rated["revenue"] - rated["cost"] == rated["profit"]).all()
        (50, True)
        """
        with self.connection() as con:
            return rated_calls(con, since, until, customer, vendor, status)

    def margin_summary(
        self,
        by: str | list[str] = "customer",
        since: datetime | None = None,
        until: datetime | None = None,
        customer: str | None = None,
        vendor: str | None = None,
    ) -> pl.DataFrame:
        """Calls, minutes, revenue, cost, profit, margin and markup grouped ``by`` one or
        several (a list) of customer, vendor, destination and day, optionally for one
        customer or vendor; margins come from sums. ``answered`` counts calls with a
        duration, rated or not. Money is in the base currency (``currency`` column);
        ``margin_ok`` is the margin of the fully rated calls, ``flagged_revenue`` the revenue
        of the flagged ones. A missing exchange rate raises ``MissingRateError``.

        The same query, columns and rounding as :func:`ratelab.reports.margin_by` (it is
        :func:`ratelab.reports.margins.margin_table`), with ``since`` / ``until`` optional.

        >>> from ratelab.examples import sample_warehouse
        >>> summary = sample_warehouse(rated=True).margin_summary(by="vendor")
        >>> summary["vendor"].to_list(), summary["synthetic"].to_list()
        (['carrier_x'], [True])
        """
        # Imported here, not at the top: ratelab.reports imports the ratelab package, which
        # imports this module, so a top-level import would be circular.
        from ratelab.reports.margins import margin_table

        return margin_table(self, by, start=since, end=until, customer=customer,
                            vendor=vendor)

    # -- honest headline numbers --------------------------------------------------------------

    def headline(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        customer: str | None = None,
        vendor: str | None = None,
    ) -> pl.DataFrame:
        """One row of totals: the overall margin beside ``margin_ok`` (fully rated calls only)
        and ``flagged_revenue``, in the base currency: :func:`ratelab.reports.headline`.

        >>> from ratelab.examples import sample_warehouse
        >>> sample_warehouse(cdrs=5, rated=True).headline()["calls"].to_list()
        [5]
        """
        from ratelab.reports.margins import headline

        return headline(self, since, until, customer=customer, vendor=vendor)

    # -- currencies ---------------------------------------------------------------------------

    def base_currency(self) -> str:
        """The currency summaries and reports convert money into (USD unless set).

        >>> from ratelab.examples import sample_warehouse
        >>> sample_warehouse(cdrs=1).base_currency()
        'USD'
        """
        with self.connection() as con:
            return fx.base_currency(con)

    def set_base_currency(self, currency: str) -> str:
        """Set the base currency (refused once exchange rates exist: they are quoted in it)."""
        self._write()
        with self.connection() as con:
            return fx.set_base_currency(con, currency)

    def import_fx(self, path: str | Path) -> fx.FxSummary:
        """Import exchange rates from a CSV of ``date,currency,rate`` (1 unit of the currency
        is worth ``rate`` base units from that UTC day on). Every bad row is reported as
        file:line: reason in one :class:`ratelab.fx.FxError` and nothing is imported; a rate
        already set for the same day and currency is replaced.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> f = wh.path.parent / "fx.csv"
        >>> _ = f.write_text("date,currency,rate\\n2026-11-01,EUR,1.08\\n2026-11-02,GBP,1.27\\n")
        >>> summary = wh.import_fx(f)
        >>> summary.rows, summary.added, summary.replaced
        (2, 2, 0)
        """
        self._write()
        rows = fx.read_fx_file(path)
        with self.connection() as con, transaction(con):
            added, replaced = fx.import_rates(con, rows, source=str(path))
        return fx.FxSummary(str(path), len(rows), added, replaced)

    def set_fx(self, currency: str, rate: Decimal | str, day: date) -> fx.FxRate:
        """Set one exchange rate: 1 ``currency`` = ``rate`` base units from UTC ``day`` on.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> wh.set_fx("eur", "1.08", date(2026, 11, 1))
        FxRate(day=datetime.date(2026, 11, 1), currency='EUR', rate=Decimal('1.08'))
        """
        self._write()
        with self.connection() as con:
            return fx.set_rate(con, currency, rate, day)

    def fx_rates(self, currency: str | None = None) -> pl.DataFrame:
        """The exchange rates: day, currency, rate (Decimal(18, 10)), source, set_at;
        sorted by currency and day.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> _ = wh.set_fx("EUR", "1.08", date(2026, 11, 1))
        >>> wh.fx_rates().select("day", "currency", "rate").rows()
        [(datetime.date(2026, 11, 1), 'EUR', Decimal('1.0800000000'))]
        """
        with self.connection() as con:
            return fx.rates_frame(con, currency)

    # -- assignment history -------------------------------------------------------------------

    def assignment_history(self, *, customer: str | None = None,
                           vendor: str | None = None) -> pl.DataFrame:
        """Every interval a rate table priced ``customer`` (or ``vendor``), ended and
        superseded ones included: :func:`ratelab.assignments.assignment_history`.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> wh.assignment_history(vendor="carrier_x").select("table_name", "status").rows()
        [('vend_x', 'in force')]
        """
        side, party = assignments.party_side(customer, vendor)
        with self.connection() as con:
            return assignments.assignment_history(con, party, side)

    # -- quarantine ---------------------------------------------------------------------------

    def quarantine_entries(self, *, include_resolved: bool = False) -> pl.DataFrame:
        """The quarantine with ids: id, file, line, reason, content, quarantined_at,
        resolved_at, resolution; unresolved entries only unless ``include_resolved``.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> bad = wh.path.parent / "spool" / "bad.jsonl"
        >>> _ = bad.write_text('{"cdr_id": "x"\\n')
        >>> _ = wh.ingest(bad.parent)
        >>> wh.quarantine_entries().select("id", "line", "reason").rows()
        [(1, 1, 'not valid JSON')]
        """
        return self.sql(
            "SELECT id, file, line, reason, content, quarantined_at, resolved_at, resolution "
            "FROM cdr_quarantine WHERE $all OR resolved_at IS NULL ORDER BY file, line, id",
            {"all": include_resolved})

    def resolve_quarantine(self, entry_id: int, note: str = "resolved by hand") -> None:
        """Mark quarantine entry ``entry_id`` resolved (it is kept, with the time and
        ``note``). A line fixed and re-ingested is resolved automatically.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> bad = wh.path.parent / "spool" / "bad.jsonl"
        >>> _ = bad.write_text('{"cdr_id": "x"\\n')
        >>> _ = wh.ingest(bad.parent)
        >>> wh.resolve_quarantine(1, "test line, not a call")
        >>> wh.quarantine_entries().height, wh.quarantine_entries(include_resolved=True).height
        (0, 1)
        """
        self._write()
        with self.connection() as con:
            resolve_quarantine(con, entry_id, note)
