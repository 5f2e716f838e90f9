"""Deck versions imported out of order, band holes, full-deck close dates, assignment overrides."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from tests.helpers import contract_cdr, write_jsonl

HEAD = "prefix,destination,rate,increment,effective_from\n"
VEND = HEAD + "4,Zone 4,0.001,60/60,2026-01-01\n49,Germany,0.001,60/60,2026-01-01\n"


def in_force(warehouse, at: str) -> dict[str, str]:
    rows = warehouse.sql(
        "SELECT prefix, CAST(rate AS VARCHAR) FROM rates WHERE effective_from <= ? "
        "AND (effective_to IS NULL OR effective_to > ?) ORDER BY prefix",
        [datetime.fromisoformat(at)] * 2,
    ).rows()
    return dict(rows)


def test_versions_imported_out_of_order_chain_by_date(warehouse, deck) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.030,60/60,2026-03-01\n", "mar.csv"), "c",
                          "customer", mode="update")
    warehouse.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-02-01\n", "feb.csv"), "c",
                          "customer", mode="update")
    assert in_force(warehouse, "2026-02-15") == {"44": "0.020000"}
    assert in_force(warehouse, "2026-03-01") == {"44": "0.030000"}
    versions = warehouse.sql(
        "SELECT effective_from, effective_to FROM rates ORDER BY effective_from").rows()
    assert versions == [(datetime(2026, 2, 1), datetime(2026, 3, 1)),
                        (datetime(2026, 3, 1), None)]


def test_full_deck_closes_dropped_prefixes_from_its_newest_date(warehouse, deck) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.01,60/60,2026-01-01\n"
                               "33,France,0.01,60/60,2026-01-01\n", "a.csv"), "c", "customer")
    # a vendor's full deck: unchanged rows keep their old date, the change is dated March
    summary = warehouse.import_deck(deck(HEAD + "44,UK,0.01,60/60,2026-01-01\n"
                                         "49,Germany,0.02,60/60,2026-03-01\n", "b.csv"),
                                    "c", "customer")
    assert summary.closed == 1
    assert "33" in in_force(warehouse, "2026-02-28")
    assert "33" not in in_force(warehouse, "2026-03-01")


def test_a_prefix_without_a_price_for_the_band_is_not_priced_by_its_parent(
        warehouse, deck, tmp_path) -> None:
    banded = ("prefix,destination,band,rate,increment,effective_from\n"
              "4,Zone 4,any,0.50,60/60,2026-01-01\n"
              "49,Germany,peak,0.10,60/60,2026-01-01\n"
              "49,Germany,offpeak,0.05,60/60,2026-01-01\n")
    warehouse.import_deck(deck(banded, "c.csv"), "c", "customer")
    warehouse.import_deck(deck(VEND, "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="carrier_x")
    write_jsonl(tmp_path / "spool" / "a.jsonl", [
        contract_cdr("sat", "4915112345", "2026-11-07T12:00:00Z", 60000),   # Saturday
        contract_cdr("mon", "4915112345", "2026-11-02T12:00:00Z", 60000),
        contract_cdr("zone", "4115112345", "2026-11-07T12:00:00Z", 60000),
    ])
    warehouse.ingest(tmp_path / "spool")
    warehouse.rate()
    got = {r["cdr_id"]: (r["status"], r["revenue"]) for r in warehouse.rated().iter_rows(
        named=True)}
    assert got["sat"][0] == "no_customer_rate"
    assert str(got["mon"][1]) == "0.100000"
    assert str(got["zone"][1]) == "0.500000"


def test_a_new_assignment_overrides_only_its_interval(warehouse, deck) -> None:
    for name in ("std", "promo"):
        warehouse.import_deck(deck(HEAD + "44,UK,0.01,60/60,2026-01-01\n", f"{name}.csv"),
                              name, "customer")
    warehouse.assign("std", customer="acme", valid_from=datetime(2026, 1, 1))
    warehouse.assign("std", customer="acme", valid_from=datetime(2026, 1, 1))  # no-op
    warehouse.assign("promo", customer="acme", valid_from=datetime(2026, 3, 1),
                     valid_to=datetime(2026, 4, 1))
    rows = warehouse.sql("SELECT table_name, valid_from, valid_to FROM assignments "
                         "ORDER BY valid_from").rows()
    assert rows == [("std", datetime(2026, 1, 1), datetime(2026, 3, 1)),
                    ("promo", datetime(2026, 3, 1), datetime(2026, 4, 1)),
                    ("std", datetime(2026, 4, 1), None)]


def test_reassigning_a_vendor_without_a_date_keeps_its_history(warehouse, deck) -> None:
    warehouse.import_deck(deck(VEND, "v1.csv"), "v1", "vendor")
    warehouse.import_deck(deck(VEND, "v2.csv"), "v2", "vendor")
    warehouse.assign("v1", vendor="carrier_x")
    warehouse.assign("v2", vendor="carrier_x")
    rows = warehouse.sql("SELECT table_name, valid_from, valid_to FROM assignments "
                         "ORDER BY valid_from").rows()
    assert [r[0] for r in rows] == ["v1", "v2"]
    assert rows[0][1] == datetime(1970, 1, 1) and rows[0][2] == rows[1][1] and rows[1][2] is None


def test_an_existing_table_refuses_a_different_time_zone(warehouse, deck) -> None:
    warehouse.import_deck(deck(VEND, "v.csv"), "v", "vendor", time_zone="Europe/Madrid")
    with pytest.raises(ValueError, match="time zone Europe/Madrid, not UTC"):
        warehouse.import_deck(deck(VEND, "v2.csv"), "v", "vendor", time_zone="UTC")
    summary = warehouse.import_deck(deck(VEND.replace("0.001", "0.002"), "v3.csv"), "v", "vendor")
    assert summary.rows == 2  # no zone given: the table's own


def test_a_table_on_its_own_calendar(warehouse, deck, tmp_path) -> None:
    week = [(d, time(0), time(9), "offpeak") for d in range(1, 8)]
    week += [(d, time(9), None, "peak") for d in range(1, 8)]
    warehouse.set_calendar("late", week)
    banded = ("prefix,destination,band,rate,increment,effective_from\n"
              "44,UK,peak,0.10,60/60,2026-01-01\n44,UK,offpeak,0.05,60/60,2026-01-01\n"
              "44,UK,weekend,0.01,60/60,2026-01-01\n")
    warehouse.import_deck(deck(banded, "c.csv"), "c", "customer", calendar="late")
    warehouse.import_deck(deck(VEND, "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="carrier_x")
    write_jsonl(tmp_path / "spool" / "a.jsonl", [
        contract_cdr("sat-22h", "447700900001", "2026-11-07T22:00:00Z", 60000),
        contract_cdr("sat-08h", "447700900001", "2026-11-07T08:00:00Z", 60000),
    ])
    warehouse.ingest(tmp_path / "spool")
    warehouse.rate()
    got = {r["cdr_id"]: str(r["revenue"]) for r in warehouse.rated().iter_rows(named=True)}
    assert got == {"sat-22h": "0.100000", "sat-08h": "0.050000"}


def test_a_calendar_must_cover_every_day(warehouse, deck) -> None:
    with pytest.raises(ValueError, match="weekday 1"):
        warehouse.set_calendar("gappy", [(1, time(0), time(8), "offpeak")])
    with pytest.raises(ValueError, match="no work calendar 'nope'"):
        warehouse.import_deck(deck(VEND, "x.csv"), "x", "customer", calendar="nope")
