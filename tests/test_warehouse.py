"""The warehouse file: creation, schema migrations, read-only use and another process's lock."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

import ratelab
from ratelab.migrations import (
    MIGRATIONS_DIR,
    SchemaError,
    available,
    current_version,
    migrate,
    verify,
)
from ratelab.warehouse import Warehouse, WarehouseBusy
from tests.helpers import contract_cdr, write_jsonl

DECK = "prefix,destination,rate,increment,effective_from\n44,UK,0.010,60/60,2026-01-01\n"

# Holds the file read-write until the test closes its stdin (no timer that could run out first).
HOLDER = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
    "print('ready', flush=True); sys.stdin.read()"
)


def migrations_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
    finally:
        con.close()


# -- creation and migrations ---------------------------------------------------------------


def test_connect_creates_the_file_at_the_newest_schema(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "w.duckdb"
    wh = ratelab.connect(path, create=True)
    assert path.is_file()
    shipped = available()
    assert wh.schema_version() == shipped[-1].version
    rows = migrations_rows(path)
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in shipped]
    tables = set(wh.sql("SELECT table_name FROM duckdb_tables()")["table_name"])
    assert {"rate_tables", "rates", "rate_groups", "rate_segments", "assignments", "cdrs",
            "cdr_quarantine", "spool_files", "rated_rows", "rates_superseded",
            "schema_migrations"} <= tables
    views = set(wh.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal")["view_name"])
    assert {"rated", "rated_base", "rate_rows"} <= views   # rated: narrow rows, named (005)
    assert "read-write" in repr(wh)


def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    before = migrations_rows(path)
    again = ratelab.connect(path, create=True)
    ratelab.connect(path, create=True)
    assert migrations_rows(path) == before, "one row per migration, applied_at untouched"
    assert len(before) == len(available())
    assert again.schema_version() == available()[-1].version
    # the seeded work calendar is not inserted twice either
    n = again.sql("SELECT count(*) AS n FROM calendar_hours WHERE calendar = 'default'")["n"][0]
    assert n == 5 * 3 + 2


def test_upgrade_in_place_keeps_data(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS_DIR / "001_initial.sql", migrations / "001_initial.sql")
    path = tmp_path / "w.duckdb"

    con = duckdb.connect(str(path))
    try:
        applied = migrate(con, migrations)
        assert [m.version for m in applied] == [1]
        assert current_version(con) == 1
        con.execute(
            "INSERT INTO rate_tables (name, side, created_at) VALUES ('cust', 'customer', ?)",
            [datetime(2026, 1, 1)],
        )
    finally:
        con.close()

    (migrations / "002_add_note.sql").write_text(
        "ALTER TABLE rate_tables ADD COLUMN note VARCHAR DEFAULT '';\n"
    )
    con = duckdb.connect(str(path))
    try:
        applied = migrate(con, migrations)
        assert [(m.version, m.name) for m in applied] == [(2, "add_note")]
        assert current_version(con) == 2
        rows = con.execute("SELECT name, side, note FROM rate_tables").fetchall()
        assert rows == [("cust", "customer", "")]
        assert migrate(con, migrations) == [], "nothing left to apply"
        versions = con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert versions == [(1,), (2,)]
    finally:
        con.close()


def test_a_failing_migration_is_rolled_back(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS_DIR / "001_initial.sql", migrations / "001_initial.sql")
    (migrations / "002_broken.sql").write_text(
        "ALTER TABLE rate_tables ADD COLUMN note VARCHAR;\nSELECT * FROM no_such_table;\n"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        with pytest.raises(duckdb.Error):
            migrate(con, migrations)
        assert current_version(con) == 1
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'rate_tables'").fetchall()]
        assert "note" not in columns
    finally:
        con.close()


def _stamp_future_version(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                    "VALUES (99, 'from_the_future', ?)",
                    [datetime(2030, 1, 1)])
    finally:
        con.close()


def test_a_newer_warehouse_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    _stamp_future_version(path)
    with pytest.raises(SchemaError) as err:
        ratelab.connect(path, create=True)
    # (tmp_path holds the test's name: look at the message without the path)
    assert "newer" in str(err.value).replace(str(path), "<path>")
    assert ratelab.SchemaError is SchemaError
    # refused rather than touched
    assert max(v for v, *_ in migrations_rows(path)) == 99


def test_a_newer_warehouse_is_refused_read_only_too(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    _stamp_future_version(path)
    with pytest.raises(SchemaError) as err:
        ratelab.connect(path, read_only=True)
    # The advice must not be "open it read-write once to upgrade it": that is refused too.
    assert "newer" in str(err.value).replace(str(path), "<path>")


def test_an_older_warehouse_is_upgraded_by_connect(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    try:
        migrate(con, _only_first_migration(tmp_path))
    finally:
        con.close()
    wh = ratelab.connect(path, create=True)
    assert wh.schema_version() == available()[-1].version


def _only_first_migration(tmp_path: Path) -> Path:
    folder = tmp_path / "first_only"
    folder.mkdir()
    shutil.copy(MIGRATIONS_DIR / "001_initial.sql", folder / "001_initial.sql")
    return folder


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    folder = _only_first_migration(tmp_path)
    (folder / "003_skip.sql").write_text("SELECT 1;")
    with pytest.raises(SchemaError, match="without gaps"):
        available(folder)
    (folder / "003_skip.sql").unlink()
    (folder / "2_bad-name.sql").write_text("SELECT 1;")
    with pytest.raises(SchemaError, match=r"NNN_name\.sql"):
        available(folder)


# -- read-only -----------------------------------------------------------------------------


def test_read_only_on_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.duckdb"
    with pytest.raises(FileNotFoundError, match=r"missing\.duckdb"):
        ratelab.connect(path, read_only=True)
    assert not path.exists(), "a read-only open must not create the file"


def test_read_only_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK)
    ratelab.connect(path, create=True).import_deck(deck, "cust", "customer")
    write_jsonl(tmp_path / "spool" / "c.jsonl",
                [contract_cdr("c1", "447700900001", "2026-03-01T10:00:00.000000Z", 60_000)])

    ro = ratelab.connect(path, read_only=True)
    assert "read-only" in repr(ro)
    with pytest.raises(PermissionError, match="read-only"):
        ro.import_deck(deck, "cust", "customer")
    with pytest.raises(PermissionError):
        ro.assign("cust", customer="acme")
    with pytest.raises(PermissionError):
        ro.ingest(tmp_path / "spool")
    with pytest.raises(PermissionError):
        ro.rate()
    with pytest.raises(PermissionError):
        ro.calendar_day(datetime(2026, 12, 25).date(), "weekend")
    # reads work, and nothing was written
    assert ro.sql("SELECT count(*) AS n FROM rates")["n"][0] == 1
    assert ro.sql("SELECT count(*) AS n FROM assignments")["n"][0] == 0
    assert ro.sql("SELECT count(*) AS n FROM cdrs")["n"][0] == 0
    assert ro.schema_version() == available()[-1].version
    assert ro.rated().height == 0


# -- another process holding the file -----------------------------------------------------


def _hold(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        pytest.fail(f"the holder process did not start: {line!r}")
    return proc


def _release(proc: subprocess.Popen) -> None:
    try:
        if proc.stdin:
            proc.stdin.close()  # the holder's read returns: it exits and lets the file go
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_opening_a_file_another_process_holds(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    proc = _hold(path)
    try:
        with pytest.raises(WarehouseBusy, match="locked") as err:
            Warehouse(path, lock_timeout=0.5)
        assert str(path) in str(err.value)
        assert isinstance(err.value, RuntimeError)
    finally:
        _release(proc)
    assert Warehouse(path, lock_timeout=0.5).schema_version() == available()[-1].version


def test_a_call_on_an_open_warehouse_while_another_process_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    wh = ratelab.connect(path, create=True, lock_timeout=0.5)
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK)
    proc = _hold(path)
    try:
        with pytest.raises(WarehouseBusy, match="locked by another process"):
            wh.import_deck(deck, "cust", "customer")
        with pytest.raises(WarehouseBusy):
            wh.sql("SELECT 1")
    finally:
        _release(proc)
    summary = wh.import_deck(deck, "cust", "customer")
    assert summary.rows == 1
    assert wh.sql("SELECT count(*) AS n FROM rates")["n"][0] == 1


def test_an_edited_migration_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS_DIR / "001_initial.sql", migrations / "001_initial.sql")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        migrate(con, migrations)
        verify(con, available(migrations))                 # unchanged: fine
        edited = migrations / "001_initial.sql"
        edited.write_text(edited.read_text().replace("\n", "\r\n"))
        verify(con, available(migrations))                 # line endings alone do not count
        edited.write_text(edited.read_text() + "\nCREATE TABLE sneaky (x INTEGER);\n")
        with pytest.raises(SchemaError, match=r"001_initial\.sql has changed since this "
                                              "warehouse applied it"):
            migrate(con, migrations)
    finally:
        con.close()


def test_a_warehouse_from_before_checksums_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE schema_migrations SET checksum = NULL")
    finally:
        con.close()
    assert ratelab.connect(path, read_only=True).schema_version() == available()[-1].version
    assert ratelab.connect(path, create=True).schema_version() == available()[-1].version


def test_a_read_only_open_checks_the_checksums_too(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE schema_migrations SET checksum = 'not-this-file'")
    finally:
        con.close()
    with pytest.raises(SchemaError, match="has changed since"):
        ratelab.connect(path, read_only=True)
