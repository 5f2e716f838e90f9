"""Small DuckDB helpers shared by the warehouse modules.

DuckDB 2 refuses new work on a connection while a result from ``execute()`` is unfinished, and
``fetchone()`` leaves it unfinished; these helpers always read results to the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

__all__ = ["one", "scalar", "transaction"]


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (or None), with the result read to the end.

    >>> one(duckdb.connect(), "SELECT 1, 'a'")
    (1, 'a')
    """
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first column of the first row of ``sql`` (None when there is no row).

    >>> scalar(duckdb.connect(), "SELECT 41 + 1")
    42
    """
    row = one(con, sql, params)
    return row[0] if row else None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction on ``con``: committed at its end, rolled back (and the
    error raised again) when it fails, so a failed import or assignment leaves nothing behind.

    >>> con = duckdb.connect(); _ = con.execute("CREATE TABLE t (x INT)")
    >>> try:
    ...     with transaction(con):
    ...         _ = con.execute("INSERT INTO t VALUES (1)")
    ...         raise ValueError("bad row")
    ... except ValueError:
    ...     pass
    >>> scalar(con, "SELECT count(*) FROM t")
    0
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
