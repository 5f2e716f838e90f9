"""The warehouse file: opening it, its short-lived connections, and telling a ratelab
warehouse from anything else.

:class:`WarehouseFile` is the part of :class:`ratelab.warehouse.Warehouse` that deals with the
file itself: the checks on open (missing, a directory, not a ratelab warehouse, another schema
version) and the schema upgrade, connections that wait for another process's lock and set the
session up, ``close``, and running a query. The errors all of that raises live here too. What
the warehouse *does* (decks, rating, reports) is ``Warehouse``'s, in ratelab/warehouse.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import duckdb
import polars as pl

from ratelab.migrations import SchemaError, available, current_version, migrate, verify

__all__ = ["WarehouseBusy", "WarehouseError", "WarehouseFile", "WarehouseNotFound",
           "check_is_warehouse", "prepare"]


class WarehouseError(RuntimeError):
    """The warehouse cannot be used: the file is missing, is not a ratelab warehouse (garbage,
    or another DuckDB database), cannot be opened, or the ``Warehouse`` was closed."""


class WarehouseNotFound(WarehouseError, FileNotFoundError):
    """No file at the path: create a warehouse with ``ratelab init PATH`` or
    ``connect(path, create=True)``."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse file."""


def check_is_warehouse(con: duckdb.DuckDBPyConnection, path: Path, *, create: bool) -> None:
    """Refuse a DuckDB file that is not a ratelab warehouse (no ``schema_migrations``).

    An empty database becomes a warehouse only with ``create``; one holding other tables
    never does (ratelab never adds its schema to someone else's database).

    >>> con = duckdb.connect(); _ = con.execute("CREATE TABLE invoices (id INT)")
    >>> check_is_warehouse(con, Path("x.duckdb"), create=True)
    Traceback (most recent call last):
    ...
    ratelab.warehouse_file.WarehouseError: x.duckdb is a DuckDB database but not a ratelab ...
    """
    if current_version(con) > 0:
        return
    others = [row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise WarehouseError(
            f"{path} is a DuckDB database but not a ratelab warehouse (it holds "
            f"{shown} and no schema_migrations); point at a warehouse, or create a new "
            "one with `ratelab init NEW_PATH`")
    if not create:
        raise WarehouseError(
            f"{path} is an empty DuckDB file, not a ratelab warehouse; make it one "
            f"with `ratelab init {path}` (Python: connect(path, create=True))")


def prepare(con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool,
            create: bool) -> None:
    """Check that ``con`` holds a ratelab warehouse, then upgrade its schema (read-write) or
    refuse a schema other than this ratelab's (read-only: it cannot upgrade).

    >>> con = duckdb.connect()
    >>> prepare(con, Path("w.duckdb"), read_only=False, create=True)
    >>> current_version(con) == available()[-1].version
    True
    """
    check_is_warehouse(con, path, create=create and not read_only)
    if not read_only:
        migrate(con)
        return
    have, newest = current_version(con), available()[-1].version
    verify(con)
    if have > newest:
        raise SchemaError(
            f"{path} has schema version {have}, newer than this ratelab knows "
            f"({newest}); upgrade ratelab to read it"
        )
    if have < newest:
        raise SchemaError(
            f"{path} has schema version {have}, this ratelab needs {newest}: "
            f"upgrade it (its data is kept) with `ratelab init {path}` "
            "(Python: connect(path))"
        )

class WarehouseFile:
    """A warehouse file opened (and checked, or upgraded) as ``Warehouse`` is; holds no
    connection between calls. :class:`ratelab.warehouse.Warehouse` builds on it."""

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
        with self.connection() as con:
            prepare(con, self.path, read_only=read_only, create=create)

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"{type(self).__name__}({str(self.path)!r}, {mode})"

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
