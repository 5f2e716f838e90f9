"""The routing snapshot the switch loads: rates in force, per customer and vendor, per prefix."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import DECKS, ok, ratelab

HEAD = "prefix,destination,rate,increment,effective_from\n"


def test_snapshot_semantics(warehouse, deck, tmp_path: Path) -> None:
    warehouse.import_deck(deck(HEAD + "44,UK,0.050,60/60,2026-01-01\n"
                               "1,USA,0.020,60/60,2026-01-01\n", "std.csv"), "std", "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.040,60/60,2026-01-01\n", "priv.csv"), "priv",
                          "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.001,60/60,2026-01-01\n", "boss.csv"), "boss",
                          "customer")
    banded = ("prefix,destination,band,rate,increment,effective_from\n"
              "44,UK,peak,0.030,60/60,2026-01-01\n44,UK,offpeak,0.010,60/60,2026-01-01\n"
              "44,UK,weekend,0.005,60/60,2026-01-01\n")
    warehouse.import_deck(deck(banded, "v.csv"), "v", "vendor")
    warehouse.import_deck(deck(HEAD + "44,UK,0.035,60/60,2026-12-01\n", "v2.csv"), "v", "vendor",
                          mode="update")
    warehouse.assign("std", customer="acme")
    warehouse.assign("priv", customer="acme", kind="account_private")
    warehouse.assign("boss", customer="acme", kind="phone_private", phone="15550001111")
    warehouse.assign("v", vendor="tollgate")
    path = warehouse.export_routing(tmp_path / "routing.json", at=datetime(2026, 11, 2))
    snapshot = json.loads(path.read_text())
    assert (snapshot["format"], snapshot["version"]) == ("ratelab-routing", 1)
    assert snapshot["rates_at"] == "2026-11-02T00:00:00Z"
    # cheapest of the account tables; the phone-private table prices one caller, not routing
    assert snapshot["customers"] == {"acme": {"1": "0.020000", "44": "0.040000"}}
    # the vendor's dearest band, and the version in force at rates_at (not December's)
    assert snapshot["vendors"] == {"tollgate": {"44": "0.030000"}}
    later = json.loads(warehouse.export_routing(tmp_path / "r2.json",
                                                at=datetime(2026, 12, 2)).read_text())
    assert later["vendors"]["tollgate"]["44"] == "0.035000"
    assert not list(tmp_path.glob("*.tmp")), "written atomically, no temp file left"


def test_routing_export_command(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    ok(ratelab("init", wh))
    ok(ratelab("deck", "import", DECKS / "vendor_tollgate.csv", "--name", "t", "--side", "vendor",
               warehouse=wh))
    good = tmp_path / "r.json"
    good.write_text("the snapshot the switch runs on")
    refused = ratelab("routing", "export", "--out", good, warehouse=wh)
    assert refused.returncode == 1                       # cron notices: nothing to route on
    assert "0 customers and 0 vendors" in refused.stderr and "ratelab assign" in refused.stderr
    assert good.read_text() == "the snapshot the switch runs on", "the old file is kept"
    ok(ratelab("assign", "t", "--vendor", "tollgate", warehouse=wh))
    refused = ratelab("routing", "export", "--out", good, warehouse=wh)
    assert refused.returncode == 1 and "0 customers and 1 vendors" in refused.stderr
    out = ok(ratelab("routing", "export", "--out", good, "--allow-empty", warehouse=wh))
    assert "0 customers, 1 vendors" in out
    assert json.loads((tmp_path / "r.json").read_text())["vendors"]["tollgate"]


def test_the_snapshot_prices_every_number_as_rating_does(tmp_path: Path) -> None:
    """For every prefix of the sample decks (as the demo assigns them), a number under it gets
    from the snapshot's longest match exactly the customer rate rating charges: the cheapest of
    the customer's tables, each by its own longest prefix. The private 447 at 0.0139 beside the
    standard 4470 at 0.3381 puts 4470 at 0.0139 (it said 0.3381, so the switch's profit limit
    let through calls rating then priced at a loss)."""
    from switch.contract import longest_match
    from tests.helpers import contract_cdr, demo_decks_warehouse, write_jsonl

    wh = demo_decks_warehouse(tmp_path / "demo.duckdb")
    at = datetime(2026, 11, 15, 12)
    snapshot = json.loads(wh.export_routing(tmp_path / "r.json", at=at).read_text())
    assert snapshot["customers"]["bluewave_voip"]["4470"] == "0.013900"
    assert snapshot["customers"]["atlas_telecom"]["4470"] == "0.338100"
    prefixes = sorted({p for book in snapshot["customers"].values() for p in book})
    customers = sorted(snapshot["customers"])
    records = [contract_cdr(f"{c}-{p}", p + "0" * (12 - len(p)), "2026-11-15T12:00:00Z", 60_000,
                            customer=c, vendor=None)
               for c in customers for p in prefixes]
    write_jsonl(tmp_path / "spool" / "s.jsonl", records)
    wh.ingest(tmp_path / "spool")
    wh.rate()
    rated = {(r["customer"], r["callee"]): r["customer_rate"]
             for r in wh.rated().iter_rows(named=True)}
    checked = 0
    for customer in customers:
        book = snapshot["customers"][customer]
        for p in prefixes:
            number = p + "0" * (12 - len(p))
            hit = longest_match(number, book)
            charged = rated[customer, number]
            assert (hit[1] if hit else None) == (None if charged is None else f"{charged:.6f}"), (
                customer, number)
            checked += 1
    assert checked == len(customers) * len(prefixes) > 20


def test_unlike_money_is_converted_or_refused(warehouse, deck, tmp_path: Path) -> None:
    from datetime import date

    from ratelab.reports import MissingRateError

    warehouse.import_deck(deck(HEAD + "44,UK,0.020,60/60,2026-01-01\n", "c.csv"), "c",
                          "customer")
    warehouse.import_deck(deck(HEAD + "44,UK,0.010,60/60,2026-01-01\n", "v.csv"), "v", "vendor",
                          currency="EUR")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="eurocarrier")
    with pytest.raises(MissingRateError, match="EUR on 2026-11-02"):
        warehouse.export_routing(tmp_path / "r.json", at=datetime(2026, 11, 2))
    warehouse.set_fx("EUR", "1.25", date(2026, 11, 1))
    snapshot = json.loads(warehouse.export_routing(tmp_path / "r.json",
                                                   at=datetime(2026, 11, 2)).read_text())
    assert snapshot["vendors"] == {"eurocarrier": {"44": "0.012500"}}   # in USD, as the customer
    assert snapshot["customers"] == {"acme": {"44": "0.020000"}}
