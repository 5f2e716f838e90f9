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
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from ratelab import rates as rate_store
from ratelab.db import one
from ratelab.decks import DeckRow, diff_rates, read_deck
from ratelab.ingest import IngestSummary, ingest_spool
from ratelab.migrations import SchemaError, available, current_version, migrate, verify
from ratelab.rating import RateSummary, cdr_filter, rate_cdrs
from ratelab.routing import routing_snapshot, write_snapshot

__all__ = ["DEFAULT_PATH", "Warehouse", "WarehouseBusy", "connect"]

DEFAULT_PATH = Path("data/warehouse.duckdb")

_RATED_SQL = """
SELECT c.cdr_id, r.start_ts, r.customer, r.vendor, r.status, r.destination,
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

class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file."""


def connect(path: str | Path | None = None, *, read_only: bool = False,
            lock_timeout: float = 30.0, memory_limit: str | None = None) -> Warehouse:
    """Open (creating and upgrading as needed) the warehouse at ``path``.

    >>> import tempfile, os
    >>> wh = connect(os.path.join(tempfile.mkdtemp(), "w.duckdb"))
    >>> wh.schema_version() >= 1
    True
    """
    return Warehouse(DEFAULT_PATH if path is None else path, read_only=read_only,
                     lock_timeout=lock_timeout, memory_limit=memory_limit)


class Warehouse:
    """A rate and CDR warehouse in one DuckDB file. See the module docstring on sharing it."""

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 lock_timeout: float = 30.0, memory_limit: str | None = None) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit or os.environ.get("RATELAB_MEMORY_LIMIT", "3GB")
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no warehouse at {self.path}")
            with self.connection() as con:
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
                    "open it read-write once to upgrade it"
                )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.connection() as con:
                migrate(con)

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"Warehouse({str(self.path)!r}, {mode})"

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits up to ``lock_timeout`` s for another process."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
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
        >>> print(connect(folder / "w.duckdb").import_deck(deck, "vendor_x", "vendor"))
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
    ) -> tuple[datetime, datetime | None]:
        """Say that rate table ``table`` prices ``customer`` (or ``vendor``); return the
        interval it does so over (naive UTC; 1970-01-01 means "since the beginning").

        Customer kinds follow the VOS billing principle: period, account, account_private,
        phone_private (with ``phone``); the cheapest applicable charge wins. See
        :func:`ratelab.rates.assign` for how a new assignment replaces an older one.

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
                                         valid_to=valid_to)
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
        """Rated CDRs with revenue, cost, profit and rate deviation, ordered by start.

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
        by: str = "customer",
        since: datetime | None = None,
        until: datetime | None = None,
        customer: str | None = None,
        vendor: str | None = None,
    ) -> pl.DataFrame:
        """Calls, minutes, revenue, cost, profit, margin and markup grouped ``by`` one of
        customer, vendor or destination, optionally for one customer or vendor; margins come
        from sums. ``answered`` counts calls with a duration, rated or not.

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


def _deck_rows(frame: pl.DataFrame) -> list[DeckRow]:
    return [DeckRow(line=0, **row) for row in frame.iter_rows(named=True)]
