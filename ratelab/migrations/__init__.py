"""Versioned warehouse schema: numbered SQL files applied in order, each in its own transaction.

A warehouse made by an older ratelab is upgraded in place; one made by a newer ratelab is refused
rather than touched. Add a change as the next ``NNN_name.sql`` file; never edit an applied one:
each applied migration's checksum is recorded, and a warehouse whose migration file has changed
since is refused with a SchemaError (it would otherwise fail later with a confusing binder error
on a column that is not there).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

__all__ = ["MIGRATIONS_DIR", "Migration", "SchemaError", "available", "current_version", "migrate",
           "verify"]

MIGRATIONS_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """The warehouse's schema cannot be used by this version of ratelab."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        """sha256 of the file's text with line endings normalised (a checkout may change them).

        >>> len(available()[0].checksum)
        64
        """
        text = self.path.read_text(encoding="utf-8").replace("\r\n", "\n")
        return hashlib.sha256(text.encode()).hexdigest()


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations shipped in ``directory``, in version order.

    >>> [m.version for m in available()][:1]
    [1]
    """
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise SchemaError(f"{path}: migration files are named NNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaError(f"{directory}: migration versions must run 1..N without gaps: {versions}")
    return found


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the open warehouse (0 for an empty file).

    >>> current_version(duckdb.connect())
    0
    """
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_migrations'"
    ).fetchall()
    if not exists[0][0]:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
               .fetchall()[0][0])


def migrate(con: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Bring the warehouse up to the newest schema; return the migrations applied.

    >>> con = duckdb.connect()
    >>> applied = migrate(con)
    >>> current_version(con) == applied[-1].version, migrate(con)
    (True, [])
    """
    migrations = available(directory)
    newest = migrations[-1].version if migrations else 0
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    # Warehouses from before checksums were recorded get the column; their rows stay NULL.
    con.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum VARCHAR")
    have = current_version(con)
    if have > newest:
        raise SchemaError(
            f"this warehouse has schema version {have}, newer than this ratelab knows ({newest}); "
            "upgrade ratelab instead of opening it with an older one"
        )
    verify(con, migrations)
    applied = []
    for migration in migrations:
        if migration.version <= have:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.path.read_text())
            con.execute(
                "INSERT INTO schema_migrations (version, name, applied_at, checksum) "
                "VALUES (?, ?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC).replace(tzinfo=None),
                 migration.checksum],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration)
    return applied


def verify(con: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None) -> None:
    """Refuse a warehouse whose applied migration files have been edited since (SchemaError).

    Rows recorded before checksums existed (NULL) cannot be checked and pass.

    >>> con = duckdb.connect()
    >>> _ = migrate(con)
    >>> verify(con)
    """
    columns = con.execute(
        "SELECT count(*) FROM duckdb_columns() "
        "WHERE table_name = 'schema_migrations' AND column_name = 'checksum'").fetchall()
    if not columns[0][0]:
        return
    recorded = dict(con.execute(
        "SELECT version, checksum FROM schema_migrations WHERE checksum IS NOT NULL").fetchall())
    for migration in migrations if migrations is not None else available():
        stored = recorded.get(migration.version)
        if stored is not None and stored != migration.checksum:
            raise SchemaError(
                f"migration {migration.path.name} has changed since this warehouse applied it: "
                "applied migrations are never edited (add the change as a new NNN_name.sql). "
                "A scratch warehouse can simply be deleted (make clean-data)."
            )
