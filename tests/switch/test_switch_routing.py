"""Route planning: vendor order, skips and the answer when nothing is left."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from switch.config import RoutingGateway
from switch.routing import (
    GatewayTable,
    PrefixTable,
    SnapshotError,
    load_snapshot,
    longest_match,
    parse_snapshot,
    plan_route,
)


def snapshot(customers: dict, vendors: dict):
    return parse_snapshot({"format": "ratelab-routing", "version": 1, "rates_at": "t",
                           "customers": customers, "vendors": vendors})


def gw(name: str, prefixes: tuple[str, ...] = ("44",), priority: int = 1,
       limit: str = "0") -> RoutingGateway:
    return RoutingGateway(name, "127.0.0.1:5070", prefixes, priority=priority,
                          lowest_profit_per_second=limit)


def names(plan) -> list[str]:
    return [c.gateway.name for c in plan.candidates]


SNAP = snapshot({"acme": {"44": "0.0600", "447": "0.0900"}},
                {"a": {"44": "0.0100"}, "b": {"44": "0.0200"}, "c": {"447": "0.0300"},
                 "d": {"44": "0.0050"}})


def test_longest_gateway_prefix_first_then_priority_then_cost() -> None:
    gateways = [gw("a", priority=2), gw("b", priority=1), gw("c", ("447",), priority=9),
                gw("d", priority=2)]
    plan = plan_route("447700900001", "acme", gateways, SNAP)
    assert names(plan) == ["c", "b", "d", "a"]
    assert plan.customer_rate == Decimal("0.0900")
    assert plan.candidates[0].vendor_prefix == "447"


def test_vendors_without_a_rate_or_down_are_skipped() -> None:
    plan = plan_route("447700900001", "acme", [gw("a"), gw("zz"), gw("b")], SNAP, down={"a"})
    assert names(plan) == ["b"]
    assert plan.skipped == [("a", "down"), ("zz", "no_vendor_rate")]


@pytest.mark.parametrize(("limit", "tried"), [
    ("0", True),                    # 0.06 - 0.02 = 0.04/min > 0
    ("0.000666", True),             # 0.04/60 = 0.000666.. >= limit
    ("0.000667", False),            # just above the margin per second
    ("-0.01", True),                # a negative limit lets a loss through
])
def test_lowest_profit_per_second(limit: str, tried: bool) -> None:
    plan = plan_route("4420712345", "acme", [gw("b", limit=limit)], SNAP)
    assert (names(plan) == ["b"]) is tried


def test_a_loss_making_route_needs_a_negative_limit() -> None:
    snap = snapshot({"acme": {"44": "0.0100"}}, {"b": {"44": "0.0160"}})
    assert plan_route("4420712345", "acme", [gw("b")], snap).failure == (503, "profit_limit")
    assert names(plan_route("4420712345", "acme", [gw("b", limit="-0.0001")], snap)) == ["b"]


def test_failures() -> None:
    assert plan_route("33123456", "acme", [gw("a")], SNAP).failure == (404, "no_route")
    assert plan_route("4420712345", "nobody", [gw("a")], SNAP).failure == (404, "no_route")
    assert plan_route("4420712345", "acme", [gw("a")], SNAP, down={"a"}).failure == \
        (503, "no_route")
    assert plan_route("4420712345", "acme", [gw("a")], SNAP).failure is None


def test_the_exported_snapshot_loads(warehouse, deck, tmp_path: Path) -> None:
    head = "prefix,destination,rate,increment,effective_from\n"
    warehouse.import_deck(deck(head + "44,UK,0.0600,60/60,2026-01-01\n", "c.csv"), "c",
                          "customer")
    warehouse.import_deck(deck(head + "44,UK,0.0100,1/1,2026-01-01\n", "v.csv"), "v", "vendor")
    warehouse.assign("c", customer="acme")
    warehouse.assign("v", vendor="a")
    path = warehouse.export_routing(tmp_path / "routing.json", at=datetime(2026, 11, 2))
    plan = plan_route("447700900001", "acme", [gw("a")], load_snapshot(path))
    assert names(plan) == ["a"] and plan.candidates[0].vendor_rate == Decimal("0.0100")


@pytest.mark.parametrize(("data", "problem"), [
    ({"format": "x", "version": 1}, "not a ratelab routing snapshot"),
    ({"format": "ratelab-routing", "version": 2}, "version 2 is not supported"),
    ({"format": "ratelab-routing", "version": 1, "customers": {"a": {"44": "-1"}},
      "vendors": {}}, "customers.a.44: bad prefix or rate"),
    ({"format": "ratelab-routing", "version": 1, "customers": {}, "vendors": {"v": {"4x": "1"}}},
     "vendors.v.4x"),
    # "²".isdigit() is True, but no normalized number can hold it
    ({"format": "ratelab-routing", "version": 1, "customers": {}, "vendors": {"v": {"4²": "1"}}},
     "vendors.v.4²"),
])
def test_bad_snapshots_are_refused(data: dict, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match=problem):
        load_snapshot(path)


# --- longest-prefix lookup: bounded by the table's longest key, not by the number ----------------


class CountingDict(dict):
    """A dict that counts lookups: the probe count is the cost measure, no clock involved."""

    probes = 0

    def get(self, key, default=None):
        self.probes += 1
        return super().get(key, default)

    def __getitem__(self, key):
        self.probes += 1
        return super().__getitem__(key)

    def __contains__(self, key):
        self.probes += 1
        return super().__contains__(key)


HUGE = "4" * 60_000   # what one INVITE can carry; every prefix of it is all 4s


def test_a_60000_digit_number_costs_at_most_longest_key_probes() -> None:
    rates = CountingDict({"1": 1, "44": 2, "4477": 3, "3312345": 4})   # longest key: 7
    assert longest_match(HUGE, rates) == ("44", 2)
    assert 0 < rates.probes <= 7

    adopted = CountingDict({"1": 1, "44": 2, "4477": 3, "3312345": 4})
    table = PrefixTable(adopted)   # a dict is adopted, not copied
    assert table.max_len == 7
    assert table.longest(HUGE) == ("44", 2)
    assert table.longest("9" * 60_000) is None
    assert longest_match(HUGE, table) == ("44", 2)   # answered from the table's own bound
    assert 0 < adopted.probes <= 3 * 7               # three lookups, each within the bound


def test_plan_route_probes_each_table_within_its_bound() -> None:
    snap = snapshot({"acme": {"44": "0.0600", "4478": "0.0900"}},
                    {"a": {"44": "0.0100"}, "b": {"4": "0.0200", "44777": "0.0250"}})
    counting = {}
    for book in (snap.customers, snap.vendors):
        for name in list(book):
            counting[name] = CountingDict(book[name])
            book[name] = PrefixTable(counting[name])   # type: ignore[index]
    gateways = GatewayTable([gw("a"), gw("b", ("4", "44777"))])
    plan = plan_route("44" + "7" * 60_000, "acme", gateways, snap)
    assert names(plan) == ["b", "a"] and plan.customer_rate == Decimal("0.0600")
    assert [c.vendor_prefix for c in plan.candidates] == ["44777", "44"]
    longest_key = {"acme": 4, "a": 2, "b": 5}
    assert all(0 < counting[n].probes <= longest_key[n] for n in longest_key), counting


def test_prefix_table_gives_the_same_answers_as_trying_every_length() -> None:
    import random

    rng = random.Random(8)
    for _ in range(200):
        keys = {"".join(rng.choice("0123") for _ in range(rng.randint(1, 6)))
                for _ in range(rng.randint(0, 30))}
        entries = {k: i for i, k in enumerate(sorted(keys))}
        table = PrefixTable(entries)
        number = "".join(rng.choice("0123") for _ in range(rng.randint(0, 12)))
        brute = next(((number[:end], entries[number[:end]])
                      for end in range(len(number), 0, -1) if number[:end] in entries), None)
        assert table.longest(number) == brute == longest_match(number, entries)


def test_the_snapshot_holds_prefix_tables_and_a_gateway_table_plans_like_a_list() -> None:
    assert isinstance(SNAP.customers["acme"], PrefixTable)
    assert SNAP.customers["acme"]["447"] == Decimal("0.0900")   # still a mapping
    gateways = [gw("a", priority=2), gw("b", priority=1), gw("c", ("447",), priority=9)]
    by_list = plan_route("447700900001", "acme", gateways, SNAP)
    by_table = plan_route("447700900001", "acme", GatewayTable(gateways), SNAP)
    assert names(by_list) == names(by_table) == ["c", "b", "a"]
