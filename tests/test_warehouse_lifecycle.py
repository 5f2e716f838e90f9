"""Opening, creating and closing a warehouse: nothing is created unless asked, a file that is not
a warehouse is refused with WarehouseError (never DuckDB's raw IOException, never migrated into),
``Warehouse`` is a context manager, ``ratelab init`` creates one, ``ratelab.__version__``."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import duckdb
import pytest

import ratelab
from ratelab.migrations import available
from tests.helpers import ROOT
from tests.helpers import ratelab as run_cli


def test_connect_never_creates_a_missing_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "dir" / "x.duckdb"
    for read_only in (False, True):
        with pytest.raises(ratelab.WarehouseError) as err:
            ratelab.connect(path, read_only=read_only)
        message = str(err.value)
        assert f"no warehouse at {path}" in message
        assert f"ratelab init {path}" in message and "create=True" in message
        assert isinstance(err.value, FileNotFoundError)  # code catching that keeps working
        assert isinstance(err.value, ratelab.WarehouseNotFound)
    with pytest.raises(ratelab.WarehouseError):
        ratelab.Warehouse(path)
    assert not (tmp_path / "typo").exists(), "neither the folder nor the file was created"


def test_create_makes_the_folder_and_a_warehouse_that_opens_later(tmp_path: Path) -> None:
    path = tmp_path / "new" / "w.duckdb"
    made = ratelab.connect(path, create=True)
    assert path.is_file()
    assert made.schema_version() == available()[-1].version
    again = ratelab.connect(path)                     # now it exists: no create needed
    assert again.schema_version() == available()[-1].version
    assert ratelab.connect(path, read_only=True).read_only
    assert ratelab.connect(path, create=True).schema_version() == available()[-1].version


def test_create_and_read_only_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read-write"):
        ratelab.connect(tmp_path / "w.duckdb", read_only=True, create=True)
    assert not (tmp_path / "w.duckdb").exists()


def test_a_garbage_file_is_a_warehouse_error_and_stays_untouched(tmp_path: Path) -> None:
    path = tmp_path / "garbage.duckdb"
    content = b"this is not a database\n" * 500
    path.write_bytes(content)
    for kwargs in ({}, {"read_only": True}, {"create": True}):
        with pytest.raises(ratelab.WarehouseError, match=r"cannot open .* as a ratelab "
                                                         "warehouse") as err:
            ratelab.connect(path, **kwargs)  # type: ignore[arg-type]
        assert not isinstance(err.value, duckdb.Error)
        assert not isinstance(err.value, FileNotFoundError)
    assert path.read_bytes() == content


def test_another_duckdb_database_is_refused_and_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.close()
    for kwargs in ({}, {"read_only": True}, {"create": True}):
        with pytest.raises(ratelab.WarehouseError, match=r"not a ratelab warehouse .*invoices"):
            ratelab.connect(path, **kwargs)  # type: ignore[arg-type]
    con = duckdb.connect(str(path), read_only=True)
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    con.close()
    assert tables == ["invoices"], "ratelab added nothing to someone else's database"


def test_an_empty_duckdb_file_becomes_a_warehouse_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(ratelab.WarehouseError, match=r"empty DuckDB file.*ratelab init"):
        ratelab.connect(path)
    assert ratelab.connect(path, create=True).schema_version() == available()[-1].version


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ratelab.WarehouseError, match="is a directory"):
        ratelab.connect(tmp_path)


def test_warehouse_is_a_context_manager_and_close_ends_its_use(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with ratelab.connect(path, create=True) as wh:
        assert isinstance(wh, ratelab.Warehouse)
        assert not wh.closed
        assert wh.sql("SELECT 41 + 1 AS n")["n"][0] == 42
    assert wh.closed
    with pytest.raises(ratelab.WarehouseError, match="closed"):
        wh.sql("SELECT 1")
    wh.close()  # idempotent
    other = ratelab.connect(path)
    other.close()
    with pytest.raises(ratelab.WarehouseError, match="closed"):
        other.schema_version()
    # nothing stays locked: another process can open the file read-write at once
    assert ratelab.connect(path, lock_timeout=0).schema_version() == available()[-1].version


def test_busy_is_a_warehouse_error() -> None:
    assert issubclass(ratelab.WarehouseBusy, ratelab.WarehouseError)
    assert issubclass(ratelab.WarehouseError, RuntimeError)
    assert {"WarehouseError", "WarehouseNotFound", "__version__"} <= set(ratelab.__all__)


def test_version_comes_from_the_package_metadata() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ratelab.__version__ == importlib.metadata.version("ratelab") == pyproject


def test_ratelab_init_creates_once_and_refuses_what_is_not_a_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "srv" / "warehouse.duckdb"
    first = run_cli("init", path)
    assert first.returncode == 0, first.stderr
    assert f"created the warehouse {path}" in first.stdout
    assert ratelab.connect(path, read_only=True).schema_version() == available()[-1].version
    again = run_cli("init", path)
    assert again.returncode == 0, again.stderr
    assert "already a ratelab warehouse" in again.stdout
    # without PATH: the global --warehouse
    other = tmp_path / "other.duckdb"
    assert run_cli("init", warehouse=other).returncode == 0
    assert other.is_file()
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"\x00garbage" * 100)
    bad = run_cli("init", garbage)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: cannot open") and "Traceback" not in bad.stderr
    assert garbage.read_bytes() == b"\x00garbage" * 100


def test_writing_commands_do_not_create_a_warehouse_either(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "w.duckdb"
    deck = ROOT / "ratelab" / "data" / "decks" / "vendor_tollgate.csv"
    result = run_cli("deck", "import", deck, "--name", "t", "--side", "vendor", warehouse=path)
    assert result.returncode == 2
    assert f"no warehouse at {path}: create one with `ratelab init {path}`" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_an_older_warehouse_says_how_to_upgrade_and_init_upgrades_it(tmp_path: Path) -> None:
    import shutil

    from ratelab.migrations import MIGRATIONS_DIR, migrate

    older = tmp_path / "migrations"
    older.mkdir()
    for migration in available()[:-1]:          # every migration but the newest
        shutil.copy(MIGRATIONS_DIR / migration.path.name, older)
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, older)
    con.close()
    before = available()[-2].version
    refused = run_cli("summary", warehouse=path)
    assert refused.returncode != 0
    assert f"schema version {before}" in refused.stderr
    assert f"ratelab init {path}" in refused.stderr            # says which command upgrades
    upgraded = run_cli("init", path)
    assert upgraded.returncode == 0, upgraded.stderr
    newest = available()[-1].version
    assert f"from schema version {before} to {newest}" in upgraded.stdout
    after = run_cli("summary", warehouse=path)
    assert "nothing rated" in after.stderr, after.stderr        # opens now: it is just empty
    again = run_cli("init", path)
    assert "already a ratelab warehouse" in again.stdout
