"""Assignments keep their history: a new one closes the old interval, nothing is deleted, old
calls keep the table in force when they were made, and re-writing the past is explicit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import ratelab
from ratelab.assignments import HistoryError
from tests.helpers import contract_cdr, write_jsonl

DECK = "prefix,destination,rate,increment,effective_from\n44,UK,{rate},60/60,2026-01-01\n"


def _warehouse(root: Path) -> ratelab.Warehouse:
    wh = ratelab.connect(root / "w.duckdb", create=True)
    for name, side, rate in (("std", "customer", "0.0200"), ("cheap", "customer", "0.0150"),
                             ("vend", "vendor", "0.0100")):
        (root / f"{name}.csv").write_text(DECK.format(rate=rate))
        wh.import_deck(root / f"{name}.csv", name, side)
    wh.assign("std", customer="acme")
    wh.assign("vend", vendor="carrier_x")
    write_jsonl(root / "spool" / "c.jsonl", [
        contract_cdr("a1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000)])
    wh.ingest(root / "spool")
    wh.rate()
    return wh


def _revenue(wh: ratelab.Warehouse) -> Decimal:
    value: Decimal = wh.rated()["revenue"][0]
    return value


def test_a_new_assignment_closes_the_old_one_and_old_calls_keep_their_table(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    start, end = wh.assign("cheap", customer="acme")  # from now
    assert end is None and start > datetime(2026, 11, 2)
    history = wh.assignment_history(customer="acme")
    assert history.select("table_name", "valid_to", "status").rows() == [
        ("std", start, "ended"), ("cheap", None, "in force")]
    wh.rate()  # re-rating the old call uses the table in force when it was made
    assert _revenue(wh) == Decimal("0.020000")


def test_re_assigning_from_1970_does_not_rewrite_history_silently(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    before = wh.sql("SELECT * FROM assignments ORDER BY party")
    with pytest.raises(HistoryError, match=r"re-price 1 call\(s\) already made") as caught:
        wh.assign("cheap", customer="acme", valid_from=datetime(1970, 1, 1))
    assert "replace_history=True" in str(caught.value)
    assert wh.sql("SELECT * FROM assignments ORDER BY party").equals(before)  # nothing changed
    wh.rate()
    assert _revenue(wh) == Decimal("0.020000")


def test_replace_history_is_explicit_and_keeps_the_old_interval(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    wh.assign("cheap", customer="acme", valid_from=datetime(1970, 1, 1), replace_history=True)
    history = wh.assignment_history(customer="acme")
    assert history.select("table_name", "valid_from", "valid_to", "status").rows() == [
        ("std", datetime(1970, 1, 1), None, "superseded"),
        ("cheap", datetime(1970, 1, 1), None, "in force")]
    assert history["superseded_at"][0] is not None
    wh.rate()
    assert _revenue(wh) == Decimal("0.015000")


def test_a_past_date_without_calls_to_re_price_is_allowed(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    # from 2026-11-03: after the only call, so nothing already rated changes
    wh.assign("cheap", customer="acme", valid_from=datetime(2026, 11, 3))
    rows = wh.assignment_history(customer="acme").select("table_name", "valid_from",
                                                         "valid_to", "status").rows()
    assert len(rows) == 3
    assert ("std", datetime(1970, 1, 1), None, "superseded") in rows  # as it was
    assert ("std", datetime(1970, 1, 1), datetime(2026, 11, 3), "ended") in rows
    assert ("cheap", datetime(2026, 11, 3), None, "in force") in rows
    wh.rate()
    assert _revenue(wh) == Decimal("0.020000")


def test_a_split_interval_keeps_both_parts_and_the_original(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    wh.assign("cheap", customer="acme", valid_from=datetime(2026, 11, 2),
              valid_to=datetime(2026, 11, 3), replace_history=True)
    live = wh.sql("SELECT table_name, valid_from, valid_to FROM assignments "
                  "WHERE party = 'acme' ORDER BY valid_from").rows()
    assert live == [("std", datetime(1970, 1, 1), datetime(2026, 11, 2)),
                    ("cheap", datetime(2026, 11, 2), datetime(2026, 11, 3)),
                    ("std", datetime(2026, 11, 3), None)]
    assert wh.sql("SELECT count(*) AS n FROM assignments_superseded")["n"][0] == 1
    wh.rate()
    assert _revenue(wh) == Decimal("0.015000")


def test_history_needs_exactly_one_party(tmp_path) -> None:
    wh = _warehouse(tmp_path)
    with pytest.raises(ValueError, match="exactly one"):
        wh.assignment_history()
    assert wh.assignment_history(vendor="carrier_x")["table_name"].to_list() == ["vend"]
