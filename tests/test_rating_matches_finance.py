"""The SQL rating engine and the pure finance functions agree, call by call.

Random decks (rates with up to 6 decimals, increments, connect fees) and random durations are
rated by the warehouse and by ratelab.call_charge; every revenue and cost must be equal to the
last digit. This ties the two implementations of the charge formula together.
"""

from __future__ import annotations

import random
from decimal import Decimal

from ratelab import billable_seconds, call_charge
from tests.helpers import contract_cdr, write_jsonl

INCREMENTS = [(60, 60), (30, 6), (1, 1), (6, 6), (0, 1), (60, 1), (45, 15)]


def _deck(rng: random.Random, prefixes: list[str]) -> tuple[str, dict[str, tuple]]:
    lines = ["prefix,destination,first_rate,rate,first_period,cycle,connect_fee,effective_from"]
    terms = {}
    for p in prefixes:
        first_rate = Decimal(rng.randint(0, 2_000_000)) / 1_000_000
        rate = Decimal(rng.randint(0, 2_000_000)) / 1_000_000
        first, cycle = rng.choice(INCREMENTS)
        fee = Decimal(rng.choice([0, 0, rng.randint(1, 50_000)])) / 1_000_000
        lines.append(f"{p},D{p},{first_rate},{rate},{first},{cycle},{fee},2026-01-01")
        terms[p] = (first_rate, first, rate, cycle, fee)
    return "\n".join(lines) + "\n", terms


def test_every_charge_matches_call_charge(warehouse, deck, tmp_path) -> None:
    rng = random.Random(20261126)
    prefixes = ["1", "44", "447", "34", "346", "3462", "49", "4915", "91", "919"]
    cust_text, cust = _deck(rng, prefixes)
    vend_text, vend = _deck(rng, prefixes)
    warehouse.import_deck(deck(cust_text, "c.csv"), "c", "customer")
    warehouse.import_deck(deck(vend_text, "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="carrier_x")
    cdrs, expected = [], {}
    for i in range(400):
        p = rng.choice(prefixes)
        number = p + "".join(rng.choice("0123456789") for _ in range(12 - len(p)))
        duration_ms = rng.choice([0, rng.randint(1, 999), rng.randint(1000, 7_200_000)])
        cdrs.append(contract_cdr(f"r{i}", number, "2026-11-02T10:00:00Z", duration_ms))
        seconds = billable_seconds(duration_ms)
        longest = max((q for q in prefixes if number.startswith(q)), key=len)
        fr, first, rate, cycle, fee = cust[longest]
        revenue = call_charge(seconds, fr, first, rate, cycle, fee)
        fr, first, rate, cycle, fee = vend[longest]
        cost = call_charge(seconds, fr, first, rate, cycle, fee)
        expected[f"r{i}"] = (revenue, cost)
    write_jsonl(tmp_path / "spool" / "a.jsonl", cdrs)
    warehouse.ingest(tmp_path / "spool")
    warehouse.rate()
    got = {r["cdr_id"]: (r["revenue"], r["cost"]) for r in warehouse.rated().iter_rows(named=True)}
    assert got == expected
