"""Re-rating: a range, a customer, or everything; rated rows replaced, never duplicated."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import ratelab
from tests.helpers import contract_cdr, write_jsonl

HEAD = "prefix,destination,rate,increment,effective_from\n"
DAY1 = datetime(2026, 3, 1)
DAY2 = datetime(2026, 3, 2)


@pytest.fixture
def rated(warehouse, deck, tmp_path: Path) -> ratelab.Warehouse:
    """acme and beta on their own customer tables, one vendor; CDRs on two days, rated."""
    warehouse.import_deck(deck(HEAD + "44,UK,0.010,60/60,2026-01-01\n", "acme1.csv"),
                          "acme_rates", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.030,60/60,2026-01-01\n", "beta1.csv"),
                          "beta_rates", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.005,60/60,2026-01-01\n", "vend.csv"),
                          "vend", "vendor")
    warehouse.assign("acme_rates", customer="acme")
    warehouse.assign("beta_rates", customer="beta")
    warehouse.assign("vend", vendor="carrier_x")

    n = "447700900001"
    write_jsonl(tmp_path / "spool" / "day1.jsonl", [
        contract_cdr("a1-1", n, "2026-03-01T09:00:00.000000Z", 60_000),
        contract_cdr("a1-2", n, "2026-03-01T23:59:59.999999Z", 120_000),
        contract_cdr("b1-1", n, "2026-03-01T12:00:00.000000Z", 60_000, customer="beta"),
    ])
    write_jsonl(tmp_path / "spool" / "day2.jsonl", [
        contract_cdr("a2-1", n, "2026-03-02T00:00:00.000000Z", 60_000),
        contract_cdr("a2-2", n, "2026-03-02T15:30:00.000000Z", 180_000),
        contract_cdr("b2-1", n, "2026-03-02T12:00:00.000000Z", 60_000, customer="beta"),
    ])
    assert warehouse.ingest(tmp_path / "spool").added == 6
    summary = warehouse.rate()
    assert summary.cdrs == 6 and summary.flagged == 0
    return warehouse


def state(warehouse: ratelab.Warehouse) -> dict[str, tuple[Decimal, datetime]]:
    """cdr_id -> (revenue, rated_at)."""
    rows = warehouse.rated().select("cdr_id", "revenue", "rated_at").rows()
    return {cdr_id: (revenue, at) for cdr_id, revenue, at in rows}


def one_row_per_cdr(warehouse: ratelab.Warehouse) -> None:
    counts = warehouse.sql(
        "SELECT c.cdr_id, count(r.cdr_seq) AS n FROM cdrs c "
        "LEFT JOIN rated r USING (cdr_seq) GROUP BY ALL").rows()
    assert counts and all(n == 1 for _, n in counts), counts
    total = warehouse.sql("SELECT count(*) AS n FROM rated")["n"][0]
    assert total == len(counts)


def test_initial_rating(rated) -> None:
    got = state(rated)
    assert {k: v[0] for k, v in got.items()} == {
        "a1-1": Decimal("0.010"), "a1-2": Decimal("0.020"), "b1-1": Decimal("0.030"),
        "a2-1": Decimal("0.010"), "a2-2": Decimal("0.030"), "b2-1": Decimal("0.030"),
    }
    assert len({at for _, at in got.values()}) == 1, "one run, one rated_at"
    one_row_per_cdr(rated)


def test_rating_twice_does_not_duplicate_rated_rows(rated) -> None:
    first = state(rated)
    again = rated.rate()
    assert again.cdrs == 6
    assert again.revenue == Decimal("0.130")
    assert again.cost == Decimal("0.045")
    one_row_per_cdr(rated)
    second = state(rated)
    assert {k: v[0] for k, v in second.items()} == {k: v[0] for k, v in first.items()}
    assert all(second[k][1] > first[k][1] for k in first), "every row was re-rated"

    rated.rate(since=DAY2, until=DAY2 + timedelta(days=1))
    rated.rate(customer="acme")
    rated.rate(vendor="carrier_x")
    one_row_per_cdr(rated)


def test_rerating_a_range_after_a_new_deck_version(rated, deck) -> None:
    before = state(rated)
    # a correction: acme's price is higher from the earliest CDR day on
    rated.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-03-01\n", "acme2.csv"),
                      "acme_rates", "customer", mode="update")
    assert state(rated) == before, "importing a deck does not re-rate by itself"

    summary = rated.rate(since=DAY2, until=DAY2 + timedelta(days=1))
    assert summary.cdrs == 3
    after = state(rated)
    # day 2: acme at the new rate, beta (unchanged table) the same amount
    assert after["a2-1"][0] == Decimal("0.020")
    assert after["a2-2"][0] == Decimal("0.060")
    assert after["b2-1"][0] == Decimal("0.030")
    for cdr_id in ("a2-1", "a2-2", "b2-1"):
        assert after[cdr_id][1] > before[cdr_id][1], f"{cdr_id} was re-rated"
    # day 1: untouched, same revenue AND same rated_at
    for cdr_id in ("a1-1", "a1-2", "b1-1"):
        assert after[cdr_id] == before[cdr_id], cdr_id
    assert summary.revenue == Decimal("0.110")
    one_row_per_cdr(rated)

    everything = rated.rate()
    assert everything.cdrs == 6
    final = state(rated)
    assert final["a1-1"][0] == Decimal("0.020")
    assert final["a1-2"][0] == Decimal("0.040")
    assert final["b1-1"][0] == Decimal("0.030")
    assert final["a2-1"][0] == Decimal("0.020")
    assert all(final[k][1] > after[k][1] for k in final)
    one_row_per_cdr(rated)


def test_range_end_is_exclusive(rated, deck) -> None:
    before = state(rated)
    rated.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-03-01\n", "acme2.csv"),
                      "acme_rates", "customer", mode="update")
    # [09:00 on day 1, midnight of day 2): includes the last microsecond of day 1, not day 2
    summary = rated.rate(since=DAY1 + timedelta(hours=9), until=DAY2)
    assert summary.cdrs == 3
    after = state(rated)
    assert after["a1-1"][0] == Decimal("0.020")  # exactly at since: included
    assert after["a1-2"][0] == Decimal("0.040")  # 23:59:59.999999
    assert after["a2-1"] == before["a2-1"]       # exactly at until: excluded


def test_rerating_one_customer_touches_only_its_cdrs(rated, deck) -> None:
    before = state(rated)
    rated.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-03-01\n", "acme2.csv"),
                      "acme_rates", "customer", mode="update")
    rated.import_deck(deck(HEAD + "44,UK,0.050,60/60,2026-03-01\n", "beta2.csv"),
                      "beta_rates", "customer", mode="update")

    summary = rated.rate(customer="beta")
    assert summary.cdrs == 2
    assert summary.revenue == Decimal("0.100")
    after = state(rated)
    assert after["b1-1"][0] == after["b2-1"][0] == Decimal("0.050")
    for cdr_id in ("b1-1", "b2-1"):
        assert after[cdr_id][1] > before[cdr_id][1]
    for cdr_id in ("a1-1", "a1-2", "a2-1", "a2-2"):
        assert after[cdr_id] == before[cdr_id], f"{cdr_id} (acme) must be untouched"
    one_row_per_cdr(rated)

    # customer and range together
    summary = rated.rate(since=DAY2, until=DAY2 + timedelta(days=1), customer="acme")
    assert summary.cdrs == 2
    final = state(rated)
    assert final["a2-2"][0] == Decimal("0.060")
    assert final["a1-1"] == before["a1-1"]
    assert final["b2-1"] == after["b2-1"]


def test_rating_an_empty_selection_changes_nothing(rated) -> None:
    before = state(rated)
    summary = rated.rate(customer="nobody")
    assert summary.cdrs == 0 and summary.revenue == 0
    summary = rated.rate(since=datetime(2027, 1, 1))
    assert summary.cdrs == 0
    assert state(rated) == before


def test_progress_reports_every_chunk(rated) -> None:
    seen: list[tuple[int, int]] = []
    rated.rate(on_chunk=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (6, 6)


def test_margin_summary_counts_answered_calls_even_without_a_rate(warehouse, deck,
                                                                   tmp_path) -> None:
    head = "prefix,destination,rate,increment,effective_from\n"
    warehouse.import_deck(deck(head + "44,UK,0.02,60/60,2026-01-01\n", "c.csv"), "c", "customer")
    warehouse.import_deck(deck(head + "44,UK,0.01,60/60,2026-01-01\n", "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="carrier_x")
    write_jsonl(tmp_path / "spool2" / "a.jsonl", [
        contract_cdr("uk", "447700900001", "2026-11-02T10:00:00Z", 60000),
        contract_cdr("fr", "33123456789", "2026-11-02T10:00:00Z", 60000),   # no rate
        contract_cdr("no-answer", "447700900001", "2026-11-02T10:00:00Z", 0),
        contract_cdr("other", "447700900001", "2026-11-02T10:00:00Z", 60000, customer="globex"),
    ])
    warehouse.ingest(tmp_path / "spool2")
    warehouse.rate()
    acme = warehouse.margin_summary(by="customer", customer="acme")
    assert acme.select("customer", "calls", "answered", "flagged").rows() == [("acme", 3, 2, 1)]
    assert str(acme["revenue"][0]) == "0.020000"
    everyone = warehouse.margin_summary(by="customer")
    assert sorted(everyone["customer"].to_list()) == ["acme", "globex"]
