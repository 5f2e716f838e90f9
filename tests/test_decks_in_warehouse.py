"""Rate decks imported into a real warehouse: versions, modes, diffs and assignments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import ratelab
from ratelab import DeckError
from tests.helpers import contract_cdr, write_jsonl

HEAD = "prefix,destination,rate,increment,effective_from\n"
JAN = HEAD + "44,UK,0.010,60/60,2026-01-01\n49,Germany,0.020,60/60,2026-01-01\n"


def snapshot(warehouse: ratelab.Warehouse) -> dict[str, list[tuple]]:
    return {
        "rate_tables": warehouse.sql("SELECT * FROM rate_tables ORDER BY name").rows(),
        "rates": warehouse.sql(
            "SELECT * FROM rates ORDER BY table_name, prefix, band, effective_from").rows(),
        "deck_imports": warehouse.sql("SELECT * FROM deck_imports ORDER BY import_id").rows(),
        "rate_groups": warehouse.sql("SELECT * FROM rate_groups ORDER BY grp").rows(),
        "rate_segments": warehouse.sql(
            "SELECT * FROM rate_segments ORDER BY grp, lo").rows(),
    }


def rates(warehouse: ratelab.Warehouse, table: str = "cust") -> list[tuple]:
    """(prefix, rate, effective_from, effective_to) of every row of ``table``."""
    return warehouse.sql(
        "SELECT prefix, rate, effective_from, effective_to FROM rates WHERE table_name = ? "
        "ORDER BY prefix, effective_from", [table]).rows()


def n_rates(warehouse: ratelab.Warehouse) -> int:
    return warehouse.sql("SELECT count(*) AS n FROM rates")["n"][0]


# -- nothing half-imported -----------------------------------------------------------------


BAD = (HEAD + "44,UK,0.010,60/60,2026-02-01\n"
       + "33,France,-0.02,60/60,2026-02-01\n"   # line 3: negative rate
       + "4x,Bad,0.01,60/60,2026-02-01\n")      # line 4: not a prefix


def test_a_bad_deck_into_a_new_table_imports_nothing(warehouse, deck) -> None:
    before = snapshot(warehouse)
    path = deck(BAD, "bad.csv")
    with pytest.raises(DeckError) as err:
        warehouse.import_deck(path, "cust", "customer")
    assert f"{path}:3:" in str(err.value)
    assert f"{path}:4:" in str(err.value)
    assert [p.line for p in err.value.problems] == [3, 4]
    assert snapshot(warehouse) == before
    assert warehouse.sql("SELECT count(*) AS n FROM rate_tables")["n"][0] == 0


def test_a_bad_deck_leaves_the_earlier_good_version_alone(warehouse, deck) -> None:
    warehouse.import_deck(deck(JAN, "jan.csv"), "cust", "customer")
    before = snapshot(warehouse)
    with pytest.raises(DeckError, match=r"bad\.csv:3:"):
        warehouse.import_deck(deck(BAD, "bad.csv"), "cust", "customer")
    assert snapshot(warehouse) == before
    assert rates(warehouse) == [
        ("44", Decimal("0.010000"), datetime(2026, 1, 1), None),
        ("49", Decimal("0.020000"), datetime(2026, 1, 1), None),
    ]


def test_a_failure_inside_the_import_transaction_is_rolled_back(warehouse, deck) -> None:
    before = snapshot(warehouse)
    # the deck is valid, so the table row is created before the bad mode is noticed
    with pytest.raises(ValueError, match="mode"):
        warehouse.import_deck(deck(JAN), "cust", "customer", mode="partial")
    assert snapshot(warehouse) == before

    warehouse.import_deck(deck(JAN), "cust", "customer")
    before = snapshot(warehouse)
    with pytest.raises(ValueError, match="customer table"):
        warehouse.import_deck(deck(JAN), "cust", "vendor")
    with pytest.raises(ValueError, match="mode"):
        warehouse.import_deck(deck(JAN), "cust", "customer", mode="partial")
    assert snapshot(warehouse) == before


# -- versions ------------------------------------------------------------------------------


def test_reimporting_the_identical_deck_changes_nothing(warehouse, deck) -> None:
    path = deck(JAN)
    first = warehouse.import_deck(path, "cust", "customer")
    assert (first.rows, first.replaced, first.superseded, first.closed) == (2, 0, 0, 0)
    rows_before = rates(warehouse)

    again = warehouse.import_deck(path, "cust", "customer")
    assert again.unchanged and again.import_id == first.import_id
    assert "nothing changed" in str(again)
    assert n_rates(warehouse) == 2
    assert rates(warehouse) == rows_before
    imports = warehouse.sql("SELECT count(*) AS n FROM deck_imports")["n"][0]
    assert imports == 1


def test_a_corrected_deck_for_the_same_dates_replaces_rather_than_duplicates(warehouse,
                                                                             deck) -> None:
    first = warehouse.import_deck(deck(JAN, "jan.csv"), "cust", "customer")
    corrected = warehouse.import_deck(deck(JAN.replace("0.010,", "0.011,"), "jan2.csv"),
                                      "cust", "customer")
    assert corrected.rows == 2 and corrected.replaced == 2
    assert (corrected.superseded, corrected.closed) == (0, 0)
    assert corrected.import_id == first.import_id + 1
    assert n_rates(warehouse) == 2
    segments = warehouse.sql("SELECT count(*) AS n FROM rate_segments")["n"][0]
    assert segments == corrected.segments == first.segments


@pytest.mark.parametrize(("mode", "closed_to"), [("full", datetime(2026, 2, 1)),
                                                 ("update", None)])
def test_full_closes_unlisted_prefixes_update_leaves_them_open(warehouse, deck, mode: str,
                                                               closed_to) -> None:
    warehouse.import_deck(deck(JAN, "jan.csv"), "cust", "customer")
    summary = warehouse.import_deck(
        deck(HEAD + "44,UK,0.012,60/60,2026-02-01\n", "feb.csv"), "cust", "customer", mode=mode)
    assert summary.closed == (1 if mode == "full" else 0)
    assert summary.superseded == 1
    assert rates(warehouse) == [
        ("44", Decimal("0.010000"), datetime(2026, 1, 1), datetime(2026, 2, 1)),
        ("44", Decimal("0.012000"), datetime(2026, 2, 1), None),
        ("49", Decimal("0.020000"), datetime(2026, 1, 1), closed_to),
    ]


def test_a_newer_version_supersedes_the_old_at_its_effective_from(warehouse, deck) -> None:
    warehouse.import_deck(deck(JAN, "jan.csv"), "cust", "customer")
    summary = warehouse.import_deck(
        deck(HEAD + "44,UK,0.015,60/60,2026-03-15 12:00\n49,Germany,0.020,60/60,2026-01-01\n",
             "mar.csv"), "cust", "customer")
    assert summary.superseded == 1
    assert summary.replaced == 1  # 49 re-sent with its own date
    old, new = [r for r in rates(warehouse) if r[0] == "44"]
    assert old[3] == new[2] == datetime(2026, 3, 15, 12, 0)
    assert new[3] is None


def test_versions_in_a_deck_time_zone_are_stored_in_utc(warehouse, deck) -> None:
    warehouse.import_deck(deck(JAN, "jan.csv"), "vend", "vendor", time_zone="Europe/Madrid")
    warehouse.import_deck(deck(HEAD + "44,UK,0.012,60/60,2026-07-01\n", "jul.csv"), "vend",
                          "vendor", mode="update", time_zone="Europe/Madrid")
    old, new = [r for r in rates(warehouse, "vend") if r[0] == "44"]
    assert old[2] == datetime(2025, 12, 31, 23, 0)
    assert old[3] == new[2] == datetime(2026, 6, 30, 22, 0)


# -- deck_diff -----------------------------------------------------------------------------


def test_deck_diff_through_the_warehouse(warehouse, deck) -> None:
    warehouse.import_deck(deck(
        HEAD
        + "44,UK,0.0100,60/60,2026-01-01\n"
        + "33,France,0.0200,60/60,2026-01-01\n"
        + "34,Spain,0.0200,60/60,2026-01-01\n"
        + "49,Germany,0.0300,60/60,2026-01-01\n"
        + "1,USA,0.0040,60/60,2026-01-01\n", "current.csv"), "cust", "customer")
    as_of = datetime(2026, 3, 1, 9, 0)
    new = deck(
        HEAD
        + "44,UK,0.0120,60/60,2026-03-03\n"      # increase in 2 days: short notice
        + "34,Spain,0.0250,60/60,2026-03-20\n"   # increase with enough notice
        + "33,France,0.0150,60/60,2026-03-02\n"  # decrease (no notice needed)
        + "1,USA,0.0040,60/60,2026-03-02\n"      # unchanged
        + "7,Russia,0.0500,60/60,2026-03-02\n",  # new; 49 is gone: closed
        "new.csv")
    before = snapshot(warehouse)

    diff = warehouse.deck_diff(new, "cust", notice_days=7, as_of=as_of)
    assert snapshot(warehouse) == before, "a diff changes nothing"
    got = {r["prefix"]: r for r in diff.iter_rows(named=True)}
    assert diff["prefix"].to_list() == ["1", "33", "34", "44", "49", "7"]
    status = {p: r["status"] for p, r in got.items()}
    assert status == {"44": "increase", "34": "increase", "33": "decrease", "1": "unchanged",
                      "7": "new", "49": "closed"}
    assert got["44"]["short_notice"] is True
    assert got["44"]["old_rate"] == Decimal("0.0100")
    assert got["44"]["new_rate"] == Decimal("0.0120")
    assert got["44"]["change"] == Decimal("0.0020")
    assert got["44"]["effective_from"] == datetime(2026, 3, 3)
    assert got["34"]["short_notice"] is False
    assert got["33"]["short_notice"] is False
    assert got["33"]["change"] == Decimal("-0.0050")
    assert got["7"]["old_rate"] is None and got["7"]["new_rate"] == Decimal("0.0500")
    assert got["49"]["new_rate"] is None and got["49"]["effective_from"] is None
    assert got["49"]["destination"] == "Germany"
    assert sum(diff["short_notice"]) == 1

    relaxed = warehouse.deck_diff(new, "cust", notice_days=1, as_of=as_of)
    assert not any(relaxed["short_notice"])


def test_deck_diff_compares_with_the_rates_in_force_at_as_of(warehouse, deck) -> None:
    warehouse.import_deck(deck(JAN, "jan.csv"), "cust", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.015,60/60,2026-04-01\n", "apr.csv"), "cust",
                          "customer", mode="update")
    new = deck(HEAD + "44,UK,0.015,60/60,2026-05-01\n49,Germany,0.020,60/60,2026-05-01\n",
               "may.csv")
    march = warehouse.deck_diff(new, "cust", as_of=datetime(2026, 3, 1))
    april = warehouse.deck_diff(new, "cust", as_of=datetime(2026, 4, 15))
    assert dict(march.select("prefix", "status").rows())["44"] == "increase"
    assert dict(april.select("prefix", "status").rows())["44"] == "unchanged"


def test_deck_diff_against_an_unknown_table(warehouse, deck) -> None:
    with pytest.raises(ValueError, match="no rate table 'nope'"):
        warehouse.deck_diff(deck(JAN), "nope", as_of=datetime(2026, 3, 1))


# -- assignments ---------------------------------------------------------------------------


@pytest.fixture
def tables(warehouse, deck) -> ratelab.Warehouse:
    warehouse.import_deck(deck(JAN, "cust.csv"), "cust", "customer")
    warehouse.import_deck(deck(JAN, "vend.csv"), "vend", "vendor")
    return warehouse


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        ("nope", {"customer": "acme"}, "no rate table 'nope'"),
        ("vend", {"customer": "acme"}, "'vend' is a vendor table"),
        ("cust", {"vendor": "carrier_x"}, "'cust' is a customer table"),
        ("cust", {"customer": "acme", "kind": "phone_private"}, "phone= is required"),
        ("cust", {"customer": "acme", "phone": "15551234567"}, "phone= is required"),
        ("cust", {"customer": "acme", "kind": "gold"}, "kind must be one of"),
        ("vend", {"vendor": "carrier_x", "kind": "period"}, "vendors have account"),
        ("cust", {"customer": "acme", "vendor": "carrier_x"}, "exactly one of customer"),
        ("cust", {}, "exactly one of customer"),
        ("cust", {"customer": "acme", "valid_from": datetime(2026, 2, 1),
                  "valid_to": datetime(2026, 2, 1)}, "valid_to must be after"),
    ],
    ids=["unknown", "vendor-to-customer", "customer-to-vendor", "phone-missing",
         "phone-without-kind", "bad-kind", "vendor-kind", "both", "neither", "empty-span"],
)
def test_assign_errors(tables, table: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tables.assign(table, **kwargs)
    assert tables.sql("SELECT count(*) AS n FROM assignments")["n"][0] == 0
    assert tables.sql("SELECT count(*) AS n FROM parties")["n"][0] == 0


def test_assigning_twice_does_not_duplicate(tables) -> None:
    tables.assign("cust", customer="acme")
    tables.assign("cust", customer="acme")
    tables.assign("vend", vendor="carrier_x")
    tables.assign("vend", vendor="carrier_x")
    rows = tables.sql("SELECT party, side FROM assignments ORDER BY side").rows()
    assert rows == [("acme", "customer"), ("carrier_x", "vendor")]
    assert tables.sql("SELECT count(*) AS n FROM parties")["n"][0] == 2


def test_a_vendor_table_from_a_later_date_takes_over(warehouse, deck, tmp_path: Path) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-01-01\n", "c.csv"), "cust",
                          "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.005,60/60,2026-01-01\n", "v1.csv"), "vend1",
                          "vendor")
    warehouse.import_deck(deck(HEAD + "44,UK,0.008,60/60,2026-01-01\n", "v2.csv"), "vend2",
                          "vendor")
    switch = datetime(2026, 2, 1)
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend1", vendor="carrier_x")
    warehouse.assign("vend2", vendor="carrier_x", valid_from=switch)

    spans = warehouse.sql("SELECT table_name, valid_from, valid_to FROM assignments "
                          "WHERE side = 'vendor' ORDER BY valid_from").rows()
    assert spans == [("vend1", datetime(1970, 1, 1), switch), ("vend2", switch, None)]

    write_jsonl(tmp_path / "spool" / "c.jsonl", [
        contract_cdr("jan", "447700900001", "2026-01-15T10:00:00.000000Z", 60_000),
        contract_cdr("last", "447700900001", "2026-01-31T23:59:59.999999Z", 60_000),
        contract_cdr("edge", "447700900001", "2026-02-01T00:00:00.000000Z", 60_000),
        contract_cdr("feb", "447700900001", "2026-02-15T10:00:00.000000Z", 60_000),
    ])
    warehouse.ingest(tmp_path / "spool")
    summary = warehouse.rate()
    assert summary.cdrs == 4 and summary.flagged == 0
    got = {r["cdr_id"]: r for r in warehouse.rated().iter_rows(named=True)}
    for cdr_id, table, cost in [("jan", "vend1", "0.005"), ("last", "vend1", "0.005"),
                                ("edge", "vend2", "0.008"), ("feb", "vend2", "0.008")]:
        assert got[cdr_id]["vendor_table"] == table, cdr_id
        assert got[cdr_id]["cost"] == Decimal(cost), cdr_id
        assert got[cdr_id]["revenue"] == Decimal("0.020"), cdr_id
    assert summary.cost == Decimal("0.026")


def test_import_reports_its_steps(warehouse, deck) -> None:
    steps: list[tuple[int, int]] = []
    warehouse.import_deck(deck(JAN), "cust", "customer",
                          on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
