"""Honest headline numbers: the margin of fully rated calls beside the overall one, flagged
revenue apart, and a demo history that flags nothing by accident."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime
from decimal import Decimal

import polars as pl
import pytest

import ratelab
from ratelab import demo, reports
from tests.helpers import contract_cdr, write_jsonl

CUSTOMER = "prefix,destination,rate,increment,effective_from\n44,UK,0.0200,60/60,2026-01-01\n" \
           "1,USA,0.0100,60/60,2026-01-01\n"
VENDOR = "prefix,destination,rate,increment,effective_from\n44,UK,0.0100,60/60,2026-01-01\n"


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    root = tmp_path_factory.mktemp("headline")
    warehouse = ratelab.connect(root / "w.duckdb", create=True)
    for name, side, text, who in (("cust", "customer", CUSTOMER, {"customer": "acme"}),
                                  ("vend", "vendor", VENDOR, {"vendor": "carrier_x"})):
        (root / f"{name}.csv").write_text(text)
        warehouse.import_deck(root / f"{name}.csv", name, side)
        warehouse.assign(name, **who)
    # h1: UK, rated on both sides: 0.020000 - 0.010000. h2: USA, the vendor has no rate for 1:
    # no_vendor_rate, revenue 0.010000 and no cost.
    write_jsonl(root / "spool" / "c.jsonl", [
        contract_cdr("h1", "441234567890", "2026-11-02T10:00:00.000000Z", 60_000),
        contract_cdr("h2", "12125550000", "2026-11-02T11:00:00.000000Z", 60_000)])
    warehouse.ingest(root / "spool")
    summary = warehouse.rate()
    assert summary.status == {"ok": 1, "no_vendor_rate": 1}
    return warehouse


def test_headline_shows_the_margin_of_fully_rated_calls_beside_the_overall_one(wh) -> None:
    row = reports.headline(wh, "2026-11-02", "2026-11-03").row(0, named=True)
    assert (row["revenue"], row["cost"], row["profit"]) == (
        Decimal("0.030000"), Decimal("0.010000"), Decimal("0.020000"))
    assert row["margin"] == pytest.approx(0.02 / 0.03)     # flattered by the unpriced cost
    assert row["margin_ok"] == pytest.approx(0.5)          # what the rated calls make
    assert (row["flagged"], row["flagged_revenue"], row["currency"]) == (
        1, Decimal("0.010000"), "USD")
    assert wh.headline().equals(reports.headline(wh))


def test_headline_of_an_empty_period_is_one_row_of_zeros(wh) -> None:
    frame = reports.headline(wh, "2027-01-01", "2027-01-02")
    assert frame.select("calls", "revenue", "margin", "margin_ok").rows() == [
        (0, Decimal("0"), None, None)]


def test_margin_by_has_margin_ok_and_flagged_revenue_per_group(wh) -> None:
    frame = reports.margin_by(wh, "2026-11-02", "2026-11-03", by=["customer", "destination"])
    assert frame.select("customer", "destination", "margin_ok", "flagged_revenue").rows() == [
        ("acme", "UK", 0.5, Decimal("0.000000")),          # both made 0.01: by key
        ("acme", "USA", None, Decimal("0.010000"))]


def test_rated_has_answered_duration_and_callee(wh) -> None:
    rated = wh.rated()
    assert rated.select("cdr_id", "callee", "answered", "duration_s").rows() == [
        ("h1", "441234567890", True, Decimal("60.000")),
        ("h2", "12125550000", True, Decimal("60.000"))]
    assert rated.schema["duration_s"] == pl.Decimal(18, 3)


def test_demo_history_starts_inside_the_decks_and_flags_nothing(tmp_path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        warehouse = demo.run(warehouse=tmp_path / "w.duckdb", spool=tmp_path / "spool",
                             workdir=tmp_path / "demo", calls=0, synthetic_cdrs=3000,
                             report=False)
    flagged = warehouse.sql("SELECT status, count(*) AS n FROM rated WHERE status <> 'ok' "
                            "GROUP BY ALL")
    assert flagged.height == 0, flagged
    first = warehouse.sql("SELECT min(start_ts) AS t FROM cdrs")["t"][0]
    ready = warehouse.sql("SELECT max(f) AS f FROM (SELECT min(effective_from) AS f FROM rates "
                          "GROUP BY table_name)")["f"][0]
    assert first >= ready
    # an early "today" still puts the history after every deck took effect
    start, end = demo.history_window(warehouse, datetime(2026, 9, 1), 30)
    assert start == ready and end > start
    # the generator's failovers name only real vendors: no internal name in any table
    quality = reports.traffic_quality(warehouse, ready, datetime(2100, 1, 1), by="vendor")
    assert set(quality["vendor"]) <= set(demo.VENDORS)
    for by in ("customer", "vendor", "destination"):
        table = warehouse.margin_summary(by)
        assert not any("synthetic" in str(v) for v in table[by].to_list())


def test_margin_by_refuses_an_unknown_party_instead_of_an_empty_table() -> None:
    # `ratelab table margin_by -p vendor nosuchvendor` printed "(no rows)" and exited 0.
    from ratelab.examples import sample_warehouse
    from ratelab.reports import ReportError, margin_by

    wh = sample_warehouse(cdrs=20, rated=True)
    with pytest.raises(ReportError, match="unknown vendor 'nosuchvendor'"):
        margin_by(wh, "2026-11-02", "2026-11-03", vendor="nosuchvendor")
    with pytest.raises(ReportError, match="unknown customer 'acmee'"):
        margin_by(wh, "2026-11-02", "2026-11-03", customer="acmee")
    assert margin_by(wh, "2026-11-02", "2026-11-03", customer="acme").height > 0
