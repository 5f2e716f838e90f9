"""Narrow rated rows (issue 15, migration 005): `rated_rows` stores rate-row ids and exact
amounts; the view `rated` reads as the old table did, and every rated row stays explainable
after decks are corrected, superseded or closed."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal as D
from pathlib import Path

import duckdb

import ratelab
from ratelab.migrations import MIGRATIONS_DIR, available, current_version, migrate
from tests.helpers import contract_cdr, write_jsonl

GOLDEN = json.loads((Path(__file__).parent / "golden" / "narrow_rated" / "migration.json")
                    .read_text())
HEAD = "prefix,destination,rate,increment,effective_from\n"
#: What the view `rated` must show, and with which types (the old table's, migration 001).
RATED_TYPES = {
    "cdr_seq": "BIGINT", "start_ts": "TIMESTAMP", "customer": "VARCHAR", "vendor": "VARCHAR",
    "synthetic": "BOOLEAN", "answered": "BOOLEAN", "status": "VARCHAR",
    "customer_table": "VARCHAR", "customer_kind": "VARCHAR", "customer_prefix": "VARCHAR",
    "destination": "VARCHAR", "customer_rate": "DECIMAL(18,6)", "billed_s_customer": "INTEGER",
    "revenue": "DECIMAL(18,6)", "vendor_table": "VARCHAR", "vendor_prefix": "VARCHAR",
    "vendor_rate": "DECIMAL(18,6)", "billed_s_vendor": "INTEGER", "cost": "DECIMAL(18,6)",
    "rated_at": "TIMESTAMP",
    # since migration 007: the currency of each side as rated
    "revenue_currency": "VARCHAR", "cost_currency": "VARCHAR",
}


def _schema_3(path: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse file at schema version 3 (what a warehouse from before issue 15 holds)."""
    old = tmp_path / "migrations_1_to_3"
    old.mkdir()
    for migration in available()[:3]:
        shutil.copy(migration.path, old / migration.path.name)
    con = duckdb.connect(str(path))
    migrate(con, old)
    assert current_version(con) == 3
    return con


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[list[object]]) -> None:
    marks = ", ".join("?" * len(rows[0]))
    con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def test_migration_005_converts_rated_rows_and_keeps_them_explainable(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = _schema_3(path, tmp_path)
    _insert(con, "rate_tables", [[n, s, "USD", "UTC", "default", "2026-01-01"]
                                 for n, s in GOLDEN["rate_tables"]])
    _insert(con, "rates", GOLDEN["rates"])
    _insert(con, "rate_groups", GOLDEN["rate_groups"])
    _insert(con, "rate_segments", GOLDEN["rate_segments"])
    _insert(con, "rated", GOLDEN["rated"])
    migrate(con, MIGRATIONS_DIR)
    assert current_version(con) == available()[-1].version

    columns = GOLDEN["rated_columns"]
    shown = con.execute(f"SELECT {', '.join(f'CAST({c} AS VARCHAR)' for c in columns)} "
                        "FROM rated ORDER BY cdr_seq").fetchall()
    assert [list(row) for row in shown] == GOLDEN["rated"]
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() "
                             "WHERE table_name = 'rated'").fetchall())
    assert types == RATED_TYPES

    owners = con.execute(
        """SELECT s.sid, r.table_name, r.prefix, r.band, CAST(r.rate AS VARCHAR)
           FROM rate_segments s JOIN rates r USING (rate_id) ORDER BY s.sid""").fetchall()
    assert {str(sid): list(rest) for sid, *rest in owners} == GOLDEN["segment_owners"]

    archived = con.execute(
        """SELECT table_name, prefix, destination, CAST(rate AS VARCHAR) FROM rates_superseded
           ORDER BY ALL""").fetchall()
    assert [list(row) for row in archived] == GOLDEN["archived"]
    # rate ids stay unique across current and archived rows
    ids = con.execute("SELECT rate_id FROM rate_rows").fetchall()
    assert len(ids) == len(set(ids)) == len(GOLDEN["rates"]) + len(GOLDEN["archived"])
    con.close()
    # the file opens as a warehouse and rates on: nothing else to upgrade
    assert ratelab.connect(path).schema_version() == available()[-1].version


def test_rated_rows_hold_ids_and_amounts_not_strings(warehouse) -> None:
    types = dict(warehouse.sql(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'rated_rows'"
    ).rows())
    strings = {c for c, t in types.items() if t == "VARCHAR"}
    assert strings == {"customer", "vendor"}   # kept so reports filter without a join
    assert types["customer_rate_id"] == types["vendor_rate_id"] == "BIGINT"
    assert types["status"] == types["customer_kind"] == "UTINYINT"
    assert types["revenue"] == types["cost"] == "DECIMAL(18,6)"   # 64-bit millionths
    view = dict(warehouse.sql(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'rated'").rows())
    assert view == RATED_TYPES


def _explained(warehouse: ratelab.Warehouse) -> dict[str, tuple[object, ...]]:
    rows = warehouse.rated().select(
        "cdr_id", "status", "customer_table", "customer_prefix", "destination",
        "customer_rate", "revenue", "vendor_table", "vendor_prefix", "vendor_rate",
        "cost").rows()
    return {row[0]: row[1:] for row in rows}


def test_old_rated_rows_still_resolve_after_decks_are_reimported_and_closed(
        warehouse, deck, tmp_path: Path) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.010,60/60,2026-01-01\n"
                                      "49,Germany,0.020,60/60,2026-01-01\n", "c1.csv"),
                          "cust", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK Fixed,0.005,60/60,2026-01-01\n"
                                      "49,Germany Fixed,0.008,60/60,2026-01-01\n", "v1.csv"),
                          "vend", "vendor")
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend", vendor="carrier_x")
    write_jsonl(tmp_path / "spool" / "a.jsonl", [
        contract_cdr("uk", "447700900001", "2026-03-01T09:00:00.000000Z", 60_000),
        contract_cdr("de", "4930123456", "2026-03-01T10:00:00.000000Z", 120_000),
    ])
    assert warehouse.ingest(tmp_path / "spool").added == 2
    assert warehouse.rate().flagged == 0
    before = _explained(warehouse)
    assert before["uk"][2:7] == ("44", "UK", D("0.010000"),
                                 D("0.010000"), "vend")

    # A correction (same prefix and date: the rows are replaced), then a full deck that
    # closes 49 from April on a new price for 44, and an update of the vendor: the rate rows
    # that priced March are corrected away or closed, and nothing is re-rated yet.
    warehouse.import_deck(deck(HEAD + "44,UK corrected,0.012,60/60,2026-01-01\n"
                                      "49,Germany corrected,0.022,60/60,2026-01-01\n",
                               "c2.csv"), "cust", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK April,0.030,60/60,2026-04-01\n", "c3.csv"),
                          "cust", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK Fixed,0.006,60/60,2026-01-01\n", "v2.csv"),
                          "vend", "vendor", mode="update")
    assert _explained(warehouse) == before        # the stored rows still read as rated
    archived = warehouse.sql("SELECT table_name, prefix, CAST(rate AS VARCHAR) AS rate "
                             "FROM rates_superseded ORDER BY ALL").rows()
    assert archived == [("cust", "44", "0.010000"), ("cust", "49", "0.020000"),
                        ("vend", "44", "0.005000")]

    # Re-rating prices March with the corrected rows (49 is closed only from April).
    warehouse.rate()
    after = _explained(warehouse)
    assert after["uk"][2:8] == ("44", "UK corrected", D("0.012000"),
                                D("0.012000"), "vend", "44")
    assert after["uk"][8:] == (D("0.006000"), D("0.006000"))
    assert after["de"][2:6] == ("49", "Germany corrected", D("0.022000"),
                                D("0.044000"))
    # every rated row names existing rate rows, current or archived
    dangling = warehouse.sql(
        """SELECT count(*) AS n FROM rated_rows r
           WHERE (customer_rate_id IS NOT NULL AND customer_rate_id NOT IN
                  (SELECT rate_id FROM rate_rows))
              OR (vendor_rate_id IS NOT NULL AND vendor_rate_id NOT IN
                  (SELECT rate_id FROM rate_rows))""")["n"][0]
    assert dangling == 0


def test_rate_ids_are_never_reused(warehouse, deck) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.010,60/60,2026-01-01\n", "a.csv"), "t", "vendor")
    first = warehouse.sql("SELECT rate_id FROM rates")["rate_id"].to_list()
    warehouse.import_deck(deck(HEAD + "44,UK,0.011,60/60,2026-01-01\n", "b.csv"), "t", "vendor")
    second = warehouse.sql("SELECT rate_id FROM rates")["rate_id"].to_list()
    assert warehouse.sql("SELECT rate_id FROM rates_superseded")["rate_id"].to_list() == first
    assert second[0] > first[0]
    segment = warehouse.sql("SELECT rate_id FROM rate_segments")["rate_id"].to_list()
    assert segment == second
