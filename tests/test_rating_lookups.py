"""The two lookups of the rating query give the same rated rows, row for row.

``Lookup.MERGED`` (one ASOF join against both sides' segments merged per pair of index groups,
CDRs borrowing a pair and masking the side they have no group for) and ``Lookup.SIDES`` (one
ASOF join per side) are independent ways to the same answer. A random warehouse built to reach
every path: several customer and vendor tables with different prefix sets, a customer with
several tables (cheapest-of), an assignment that starts mid-month and one that ends, a banded
table, a vendor without a table, calls with no vendor, unknown parties and bad numbers.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from ratelab import rating
from tests.helpers import contract_cdr, write_jsonl

COLUMNS = ("cdr_seq, status, customer_kind, customer_rate_id, billed_s_customer, revenue, "
           "vendor_rate_id, billed_s_vendor, cost, start_ts, customer, vendor, synthetic, "
           "answered")


def _deck(rng: random.Random, prefixes: list[str], banded: bool = False) -> str:
    lines = ["prefix,destination,band,rate,increment,effective_from"]
    for p in prefixes:
        for band in (("peak", "offpeak") if banded else ("any",)):
            rate = rng.randint(1, 300_000) / 1_000_000
            inc = rng.choice(["60/60", "30/6", "1/1", "6/6"])
            lines.append(f"{p},D{p},{band},{rate:.6f},{inc},2026-01-01")
    return "\n".join(lines) + "\n"


def _rated(warehouse, lookup: rating.Lookup) -> list[tuple]:
    with warehouse.connection() as con:
        rating.rate_cdrs(con, lookup=lookup)
        return con.execute(f"SELECT {COLUMNS} FROM rated_rows ORDER BY cdr_seq").fetchall()


@pytest.mark.parametrize("strangers", [True, False], ids=["strangers", "known-parties"])
@pytest.mark.parametrize("seed", [1, 2])
def test_merged_and_per_side_lookups_agree(warehouse, deck, tmp_path, seed: int,
                                           strangers: bool) -> None:
    """Without strangers no pair has a -1 side, so calls outside an assignment's interval
    must borrow a pair and mask the side they lack."""
    rng = random.Random(seed)
    pool = sorted({str(rng.randint(1, 99)) + "".join(rng.choice("0123456789")
                                                     for _ in range(rng.randint(0, 4)))
                   for _ in range(120)})

    def some() -> list[str]:
        return sorted(rng.sample(pool, rng.randint(20, len(pool))))

    warehouse.import_deck(deck(_deck(rng, some()), "c1.csv"), "c1", "customer")
    warehouse.import_deck(deck(_deck(rng, some()), "c2.csv"), "c2", "customer")
    warehouse.import_deck(deck(_deck(rng, some(), banded=True), "c3.csv"), "c3", "customer")
    warehouse.import_deck(deck(_deck(rng, some()), "v1.csv"), "v1", "vendor")
    warehouse.import_deck(deck(_deck(rng, some()), "v2.csv"), "v2", "vendor")
    mid = datetime(2026, 11, 15)
    warehouse.assign("c1", customer="acme")
    warehouse.assign("c2", customer="acme", kind="account_private")   # cheapest-of
    warehouse.assign("c2", customer="bolt", valid_from=mid)            # none before the 15th
    warehouse.assign("c3", customer="cora", valid_to=mid)              # none after the 15th
    warehouse.assign("v1", vendor="carrier_x")
    warehouse.assign("v2", vendor="carrier_y", valid_from=mid)
    cdrs = []
    start = datetime(2026, 11, 1)
    for i in range(1500):
        when = start + timedelta(seconds=rng.randint(0, 29 * 86400))
        number = rng.choice(pool) + "".join(rng.choice("0123456789") for _ in range(8))
        if rng.random() < 0.03:
            number = "12a4"   # not a number: bad_number
        cdrs.append(contract_cdr(
            f"r{i}", number, when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            rng.choice([0, rng.randint(1, 999), rng.randint(1000, 3_600_000)]),
            customer=rng.choice(["acme", "bolt", "cora"] + (["dora"] if strangers else [])),
            vendor=rng.choice(["carrier_x", "carrier_y"]
                              + (["carrier_z", None] if strangers else []))))
    write_jsonl(tmp_path / "spool" / "cdrs.jsonl", cdrs)
    assert warehouse.ingest(tmp_path / "spool").added == len(cdrs)

    merged = _rated(warehouse, rating.Lookup.MERGED)
    sides = _rated(warehouse, rating.Lookup.SIDES)
    assert len(merged) == len(cdrs)
    assert merged == sides
    statuses = {row[1] for row in merged}
    assert {0, 1, 2, 3, 4} <= statuses, "the random data reaches every status"
    if not strangers:   # priced on the vendor side through a borrowed pair
        assert warehouse.sql("SELECT count(*) AS n FROM rated_rows r JOIN cdrs c USING "
                             "(cdr_seq) WHERE c.customer = 'bolt' AND r.start_ts < "
                             "'2026-11-15' AND r.vendor_rate_id IS NOT NULL")["n"][0] > 0
    assert any(row[2] == 1 for row in merged), "the cheapest-of picked a private table"


def test_a_call_with_no_table_on_either_side_is_not_priced_by_the_only_pair(
        warehouse, deck, tmp_path, monkeypatch) -> None:
    """With a single pair the merged lookup's join has no partition: a CDR whose customer and
    vendor have no table must still match nothing."""
    warehouse.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                               "44,UK,0.02,60/60,2026-01-01\n", "c.csv"), "c", "customer")
    warehouse.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                               "44,UK,0.01,60/60,2026-01-01\n", "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="carrier_x")
    write_jsonl(tmp_path / "spool" / "cdrs.jsonl", [
        contract_cdr("known", "447700900001", "2026-11-02T10:00:00Z", 60000),
        contract_cdr("stranger", "447700900002", "2026-11-02T10:00:00Z", 60000,
                     customer="nobody", vendor="nowhere"),
    ])
    warehouse.ingest(tmp_path / "spool")
    asked = []
    query = rating.rating_query
    monkeypatch.setattr(rating, "rating_query",
                        lambda *a, **k: asked.append(k) or query(*a, **k))
    with warehouse.connection() as con:
        rating.rate_cdrs(con, lookup=rating.Lookup.MERGED)
    assert asked == [{"several": False, "partitioned": False, "banded": False}], (
        "one pair, no bands: no partition, no band joins")
    rows = {r["cdr_id"]: r for r in warehouse.rated().iter_rows(named=True)}
    assert (rows["known"]["status"], str(rows["known"]["revenue"])) == ("ok", "0.020000")
    assert rows["stranger"]["status"] == "no_rates"
    assert rows["stranger"]["revenue"] is None and rows["stranger"]["cost"] is None
