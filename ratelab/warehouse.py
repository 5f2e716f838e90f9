"""The DuckDB warehouse: one file holding rate tables, CDRs and rated results.

Only one process may hold a DuckDB file read-write, so a ``Warehouse`` holds no connection
between calls: each method opens the file, does its work in a transaction and closes it. An
ingest job and an analyst's notebook therefore take turns; a call that finds the file locked
retries for ``lock_timeout`` seconds before it gives up with a message saying who to wait for.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as TimeOfDay
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from ratelab import fx
from ratelab import rates as rate_store
from ratelab.db import one
from ratelab.decks import DeckRow, diff_rates, read_deck
from ratelab.ingest import IngestSummary, ingest_spool, resolve_quarantine
from ratelab.migrations import SchemaError, available, current_version, migrate, verify
from ratelab.rating import RateSummary, cdr_filter, rate_cdrs
from ratelab.routing import routing_snapshot, write_snapshot
from ratelab.watch.aggregates import refresh_hourly

__all__ = ["DEFAULT_PATH", "Warehouse", "WarehouseBusy", "WarehouseError", "WarehouseNotFound",
           "connect"]

DEFAULT_PATH = Path("data/warehouse.duckdb")

_RATED_SQL = """
SELECT c.cdr_id, r.start_ts, r.customer, r.vendor, c.callee, r.answered,
       CAST(CAST(c.duration_ms AS DECIMAL(18, 0)) * 0.001 AS DECIMAL(18, 3)) AS duration_s,
       r.status, r.destination,
       r.customer_table, r.customer_kind, r.customer_prefix, r.customer_rate,
       r.billed_s_customer, r.revenue,
       r.vendor_table, r.vendor_prefix, r.vendor_rate, r.billed_s_vendor, r.cost,
       r.revenue - r.cost AS profit,
       r.customer_rate - r.vendor_rate AS rate_deviation,
       r.synthetic, r.rated_at
FROM (SELECT * FROM rated WHERE {where}) r
JOIN cdrs c USING (cdr_seq)
ORDER BY r.start_ts, c.cdr_id
"""

# One row per rate table: what is in force at $now, what is scheduled, its imports and whom it
# prices now.
_RATE_TABLES_SQL = """
WITH counts AS (
    SELECT table_name,
           count(*) FILTER (WHERE effective_from <= $now
                            AND (effective_to IS NULL OR effective_to > $now))
               AS in_force,
           count(*) FILTER (WHERE effective_from > $now) AS scheduled
    FROM rates GROUP BY ALL),
imports AS (
    SELECT table_name, count(*) AS imports, max(imported_at) AS last_import,
           arg_max(file, imported_at) AS last_file
    FROM deck_imports GROUP BY ALL),
parties AS (
    SELECT table_name,
           string_agg(DISTINCT party || CASE WHEN kind = 'account' THEN ''
                                             ELSE ' (' || kind || ')' END, ', '
                      ORDER BY party || CASE WHEN kind = 'account' THEN ''
                                             ELSE ' (' || kind || ')' END)
               AS assigned
    FROM assignments WHERE valid_to IS NULL OR valid_to > $now GROUP BY ALL)
SELECT t.name, t.side, t.currency, t.time_zone,
       coalesce(c.in_force, 0) AS in_force, coalesce(c.scheduled, 0) AS scheduled,
       i.imports, i.last_import, i.last_file, p.assigned
FROM rate_tables t
LEFT JOIN counts c ON c.table_name = t.name
LEFT JOIN imports i ON i.table_name = t.name
LEFT JOIN parties p ON p.table_name = t.name
ORDER BY t.side, t.name
"""

class WarehouseError(RuntimeError):
    """The warehouse cannot be used: the file is missing, is not a ratelab warehouse (garbage,
    or another DuckDB database), cannot be opened, or the ``Warehouse`` was closed."""


class WarehouseNotFound(WarehouseError, FileNotFoundError):
    """No file at the path: create a warehouse with ``ratelab init PATH`` or
    ``connect(path, create=True)``."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse file."""


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


class Warehouse:
    """A rate and CDR warehouse in one DuckDB file. See the module docstring on sharing it.

    ``Warehouse(path)`` opens an existing warehouse (``create=True`` makes a new one). It holds
    no connection between calls; ``close()`` (or leaving a ``with`` block) ends its use, and
    later calls raise :class:`WarehouseError`.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = False,
                 lock_timeout: float = 30.0, memory_limit: str | None = None) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit or os.environ.get("RATELAB_MEMORY_LIMIT", "3GB")
        self._closed = False
        if create and read_only:
            raise ValueError("create=True needs a read-write open (read_only=False)")
        if self.path.is_dir():
            raise WarehouseError(f"{self.path} is a directory, not a warehouse file")
        if not self.path.exists():
            if not create:
                raise WarehouseNotFound(
                    f"no warehouse at {self.path}: create one with `ratelab init {self.path}` "
                    "(Python: connect(path, create=True))")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if read_only:
            with self.connection() as con:
                self._check_is_warehouse(con, create=False)
                have, newest = current_version(con), available()[-1].version
                verify(con)
            if have > newest:
                raise SchemaError(
                    f"{self.path} has schema version {have}, newer than this ratelab knows "
                    f"({newest}); upgrade ratelab to read it"
                )
            if have < newest:
                raise SchemaError(
                    f"{self.path} has schema version {have}, this ratelab needs {newest}: "
                    f"upgrade it (its data is kept) with `ratelab init {self.path}` "
                    "(Python: connect(path))"
                )
        else:
            with self.connection() as con:
                self._check_is_warehouse(con, create=create)
                migrate(con)

    def _check_is_warehouse(self, con: duckdb.DuckDBPyConnection, *, create: bool) -> None:
        """Refuse a DuckDB file that is not a ratelab warehouse (no ``schema_migrations``).

        An empty database becomes a warehouse only with ``create``; one holding other tables
        never does (ratelab never adds its schema to someone else's database).
        """
        if current_version(con) > 0:
            return
        others = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
        if others:
            shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
            raise WarehouseError(
                f"{self.path} is a DuckDB database but not a ratelab warehouse (it holds "
                f"{shown} and no schema_migrations); point at a warehouse, or create a new "
                "one with `ratelab init NEW_PATH`")
        if not create:
            raise WarehouseError(
                f"{self.path} is an empty DuckDB file, not a ratelab warehouse; make it one "
                f"with `ratelab init {self.path}` (Python: connect(path, create=True))")

    def close(self) -> None:
        """End the use of this warehouse: later calls raise WarehouseError. Idempotent.

        A ``Warehouse`` holds no connection between calls, so nothing stays locked either way;
        ``close`` makes the end explicit (and ``with connect(path) as wh:`` does it for you).
        """
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"Warehouse({str(self.path)!r}, {mode})"

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits up to ``lock_timeout`` s for another process."""
        if self._closed:
            raise WarehouseError(f"{self.path}: this Warehouse was closed; connect() again")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    # garbage, a newer storage format, a directory, no permission
                    raise WarehouseError(
                        f"cannot open {self.path} as a ratelab warehouse: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"{self.path} is locked by another process (an ingest or rating job?); "
                        f"waited {self.lock_timeout:g} s. Retry when it finishes, or raise "
                        "lock_timeout."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)  # short: a reader in a loop must not starve a writer
        try:
            # Stored times are naive UTC; the session zone makes every conversion agree.
            con.execute("SET TimeZone = 'UTC'")
            # Nothing here relies on insertion order; dropping it lets DuckDB write in
            # parallel and keeps less in memory. The memory cap keeps big jobs within a
            # laptop's reach (DuckDB spills to disk past it).
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
            # DuckDB's own progress bar would print into notebooks and cron logs; ratelab
            # shows its own (ratelab.progress) where work is long.
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()

    def schema_version(self) -> int:
        """The schema version of the file.

        >>> from ratelab.examples import sample_warehouse
        >>> sample_warehouse(cdrs=1).schema_version() >= 1
        True
        """
        with self.connection() as con:
            return current_version(con)

    def sql(self, query: str, params: dict[str, Any] | list[Any] | None = None) -> pl.DataFrame:
        """Run any query and return a Polars frame (for notebooks).

        >>> from ratelab.examples import sample_warehouse
        >>> sample_warehouse(cdrs=5).sql("SELECT count(*) AS n FROM cdrs")["n"].to_list()
        [5]
        """
        with self.connection() as con:
            # duckdb types .pl() as Any (it may return a LazyFrame)
            frame: pl.DataFrame = con.sql(query, params=params).pl()
            return frame

    def _write(self) -> None:
        if self.read_only:
            raise PermissionError(f"{self.path} is open read-only")

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
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                rate_store.ensure_table(con, name, side, currency=currency, time_zone=time_zone,
                                        calendar=calendar)
                summary = rate_store.import_rows(con, name, rows, file=str(path), sha256=digest,
                                                 mode=mode, on_stored=lambda: step(2, 3))
                con.execute("COMMIT")
                step(3, 3)
            except Exception:
                con.execute("ROLLBACK")
                raise
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
            tz_row = one(con, "SELECT time_zone FROM rate_tables WHERE name = ?", [name])
            if tz_row is None:
                raise ValueError(f"no rate table {name!r} to compare with")
            if as_of is None:  # now, on the rate table's own clock (its deck dates are local)
                as_of = datetime.now(ZoneInfo(tz_row[0])).replace(tzinfo=None)
            current = rate_store.rows_in_force(con, name, rate_store.to_utc(as_of, tz_row[0]))
        changes = diff_rates(_deck_rows(current), new, as_of=as_of, notice_days=notice_days)
        return pl.DataFrame(
            [c.__dict__ for c in changes],
            schema={"prefix": pl.String, "destination": pl.String, "band": pl.String,
                    "status": pl.String, "old_rate": pl.Decimal(18, 6),
                    "new_rate": pl.Decimal(18, 6), "change": pl.Decimal(18, 6),
                    "effective_from": pl.Datetime("us"), "short_notice": pl.Boolean},
        )

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
        :func:`ratelab.rates.assign` for how a new assignment replaces an older one: it closes
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
        if (customer is None) == (vendor is None):
            raise ValueError("give exactly one of customer= or vendor=")
        side, party = ("customer", customer) if customer is not None else ("vendor", vendor)
        assert party is not None  # exactly one was given (checked above)
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                span = rate_store.assign(con, table, party, side,
                                         kind=kind, phone=phone, valid_from=valid_from,
                                         valid_to=valid_to, replace_history=replace_history)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return span

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
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                rate_store.set_calendar(con, name, hours)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def rate_tables(self, at: datetime | None = None) -> pl.DataFrame:
        """The rate tables: side, currency, time zone, rows in force at ``at`` (naive UTC,
        default now) and scheduled after it, imports, the last file, and whom each prices.

        >>> from ratelab.examples import sample_warehouse
        >>> tables = sample_warehouse(cdrs=1).rate_tables()
        >>> tables.select("name", "side", "in_force", "assigned").rows()
        [('cust_std', 'customer', 3, 'acme'), ('vend_x', 'vendor', 3, 'carrier_x')]
        """
        now = at or datetime.now(UTC).replace(tzinfo=None)
        return self.sql(_RATE_TABLES_SQL, {"now": now})

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
            con.execute("DELETE FROM calendar_days WHERE calendar = ? AND day = ?",
                        [calendar, day])
            con.execute("INSERT INTO calendar_days VALUES (?, ?, ?, ?)",
                        [calendar, day, band, note])

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
            summary = rate_cdrs(con, since=since, until=until, customer=customer,
                                vendor=vendor, on_chunk=on_chunk)
            refresh_hourly(con, since, until)  # the watch's hourly aggregates (docs/watch.md)
            return summary

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
        where, params = cdr_filter(since, until, customer, vendor)
        if status is not None:
            where += " AND status = $status"
            params["status"] = status
        return self.sql(_RATED_SQL.format(where=where), params)

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
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                added, replaced = fx.import_rates(con, rows, source=str(path))
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
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
        return self.sql(
            "SELECT day, currency, rate, source, set_at FROM fx_rates "
            "WHERE $c IS NULL OR currency = upper($c) ORDER BY currency, day",
            {"c": currency})

    # -- assignment history -------------------------------------------------------------------

    def assignment_history(self, *, customer: str | None = None,
                           vendor: str | None = None) -> pl.DataFrame:
        """Every interval a rate table priced ``customer`` (or ``vendor``), ended and
        superseded ones included: :func:`ratelab.rates.assignment_history`.

        >>> from ratelab.examples import sample_warehouse
        >>> wh = sample_warehouse(cdrs=1)
        >>> wh.assignment_history(vendor="carrier_x").select("table_name", "status").rows()
        [('vend_x', 'in force')]
        """
        if (customer is None) == (vendor is None):
            raise ValueError("give exactly one of customer= or vendor=")
        side, party = ("customer", customer) if customer is not None else ("vendor", vendor)
        assert party is not None
        with self.connection() as con:
            return rate_store.assignment_history(con, party, side)

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


def _deck_rows(frame: pl.DataFrame) -> list[DeckRow]:
    return [DeckRow(line=0, **row) for row in frame.iter_rows(named=True)]
