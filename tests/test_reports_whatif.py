"""what_if: re-rating a period with a candidate deck or a percentage change, on a scratch copy.

Golden style: decks and CDRs in, expected rows per destination out (money as exact strings).
Customer acme pays cust (UK 0.02, USA 0.01, 60/60); carrier_x charges vend (UK 0.015, USA
0.005), carrier_y charges vend_y (UK 0.012).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ratelab.finance import call_charge
from ratelab.money import quantize
from ratelab.reports.common import ReportError
from ratelab.reports.whatif import what_if
from tests.helpers import contract_cdr, write_jsonl

DAY = ("2026-11-02", "2026-11-03")
VEND = "prefix,destination,rate,increment,effective_from\n" \
       "44,UK,0.0150,60/60,2026-01-01\n1,USA,0.0050,60/60,2026-01-01\n"
COLUMNS = ["destination", "revenue", "cost_before", "cost_after", "profit_before",
           "profit_after", "margin_before", "margin_after", "profit_change", "revenue_after",
           "calls", "unpriced_after", "currency"]
CHECKED = ["destination", "revenue", "revenue_after", "cost_before", "cost_after",
           "profit_before", "profit_after", "profit_change", "calls", "unpriced_after"]


@pytest.fixture
def wh(warehouse, deck, tmp_path: Path):
    warehouse.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                               "44,UK,0.0200,60/60,2026-01-01\n1,USA,0.0100,60/60,2026-01-01\n",
                               "cust.csv"), "cust", "customer")
    warehouse.import_deck(deck(VEND, "vend.csv"), "vend", "vendor")
    warehouse.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                               "44,UK,0.0120,60/60,2026-01-01\n", "vend_y.csv"), "vend_y", "vendor")
    warehouse.assign("cust", customer="acme")
    warehouse.assign("vend", vendor="carrier_x")
    warehouse.assign("vend_y", vendor="carrier_y")
    write_jsonl(tmp_path / "spool" / "cdrs.jsonl", [
        contract_cdr("u1", "447700900001", "2026-11-02T10:00:00Z", 60000),
        contract_cdr("u2", "447700900002", "2026-11-02T11:00:00Z", 90000),
        contract_cdr("u3", "12125550001", "2026-11-02T12:00:00Z", 60000),
        contract_cdr("u4", "12125550002", "2026-11-02T13:00:00Z", 0),
        contract_cdr("y1", "447700900003", "2026-11-02T14:00:00Z", 60000, vendor="carrier_y"),
        contract_cdr("later", "447700900004", "2026-11-05T10:00:00Z", 60000),
    ])
    warehouse.ingest(tmp_path / "spool")
    warehouse.rate()
    return warehouse


def _rows(frame: pl.DataFrame) -> list[tuple]:
    assert frame.columns == COLUMNS
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row)
            for row in frame.select(CHECKED).rows()]


def _export(wh, path: Path) -> bytes:
    with wh.connection() as con:
        con.execute(f"COPY (SELECT * FROM rated ORDER BY cdr_seq) TO '{path}' (HEADER)")
    return path.read_bytes()


def test_percentage_change(wh) -> None:
    frame = what_if(wh, *DAY, vendor="carrier_x", change_pct=10)
    assert _rows(frame) == [
        # carrier_x's UK calls: 60 s and 120 s at 0.0165 instead of 0.015; carrier_y's unchanged
        ("UK", "0.080000", "0.080000", "0.057000", "0.061500", "0.023000", "0.018500",
         "-0.004500", 3, 0),
        ("USA", "0.010000", "0.010000", "0.005000", "0.005500", "0.005000", "0.004500",
         "-0.000500", 2, 0),
    ]
    uk = frame.row(0, named=True)
    assert uk["margin_before"] == pytest.approx(0.023 / 0.08)
    assert uk["margin_after"] == pytest.approx(0.0185 / 0.08)


def test_rounded_rates_match_finance(wh) -> None:
    frame = what_if(wh, *DAY, vendor="carrier_x", change_pct="3.3333")
    factor = Decimal("1.033333")
    uk, usa = quantize(Decimal("0.015") * factor), quantize(Decimal("0.005") * factor)
    assert (uk, usa) == (Decimal("0.015500"), Decimal("0.005167"))  # half-up, 6 places
    want_uk = (call_charge(60, uk, 60, uk, 60) + call_charge(90, uk, 60, uk, 60)
               + call_charge(60, "0.012", 60, "0.012", 60))
    want_usa = call_charge(60, usa, 60, usa, 60) + call_charge(0, usa, 60, usa, 60)
    assert frame["cost_after"].to_list() == [want_uk, want_usa]


def test_zero_change_changes_nothing(wh) -> None:
    frame = what_if(wh, *DAY, vendor="carrier_x", change_pct=0)
    assert frame["profit_change"].to_list() == [Decimal(0), Decimal(0)]
    assert frame["cost_after"].to_list() == frame["cost_before"].to_list()


def test_candidate_deck(wh, deck) -> None:
    # a cheaper UK, dated in the future (what-if dates are ignored), and no USA at all
    candidate = deck("prefix,destination,rate,increment,effective_from\n"
                     "44,UK,0.0100,60/60,2027-05-01\n", "candidate.csv")
    frame = what_if(wh, *DAY, deck=candidate, table="vend")
    assert _rows(frame) == [
        ("UK", "0.080000", "0.080000", "0.057000", "0.042000", "0.023000", "0.038000",
         "0.015000", 3, 0),
        # both USA calls lose their vendor rate: flagged, their cost counts 0
        ("USA", "0.010000", "0.010000", "0.005000", "0.000000", "0.005000", "0.010000",
         "0.005000", 2, 2),
    ]


def test_same_deck_again_changes_nothing(wh, deck) -> None:
    frame = what_if(wh, *DAY, deck=deck(VEND, "vend.csv"), table="vend")
    assert frame["profit_change"].to_list() == [Decimal(0), Decimal(0)]


def test_customer_side_deck(wh, deck) -> None:
    candidate = deck("prefix,destination,rate,increment,effective_from\n"
                     "44,UK,0.0300,60/60,2026-01-01\n1,USA,0.0100,60/60,2026-01-01\n",
                     "cust_new.csv")
    frame = what_if(wh, *DAY, deck=candidate, deck_side="customer", table="cust")
    assert _rows(frame) == [
        ("UK", "0.080000", "0.120000", "0.057000", "0.057000", "0.023000", "0.063000",
         "0.040000", 3, 0),
        ("USA", "0.010000", "0.010000", "0.005000", "0.005000", "0.005000", "0.005000",
         "0.000000", 2, 0),
    ]


def test_stored_results_unchanged(wh, deck, tmp_path: Path) -> None:
    before = _export(wh, tmp_path / "before.csv")
    file_hash = hashlib.sha256(wh.path.read_bytes()).hexdigest()
    what_if(wh, *DAY, vendor="carrier_x", change_pct=25)
    what_if(wh, *DAY, deck=deck("prefix,rate\n44,0.5\n", "c.csv"), table="vend")
    assert hashlib.sha256(wh.path.read_bytes()).hexdigest() == file_hash
    assert _export(wh, tmp_path / "after.csv") == before
    assert wh.sql("SELECT count(*) AS n FROM rates WHERE table_name = 'vend'")["n"][0] == 2
    assert wh.sql("SELECT count(*) AS n FROM deck_imports")["n"][0] == 3


def test_empty_period(wh) -> None:
    frame = what_if(wh, "2026-10-01", "2026-10-02", vendor="carrier_x", change_pct=5)
    assert frame.height == 0 and frame.columns == COLUMNS
    assert frame.schema["revenue"] == pl.Decimal(18, 6)
    assert frame.schema["margin_after"] == pl.Float64
    assert frame.schema["calls"] == pl.Int64


def test_errors(wh, deck) -> None:
    with pytest.raises(ReportError, match="unknown vendor 'carrier_z'; known: carrier_x"):
        what_if(wh, *DAY, vendor="carrier_z", change_pct=5)
    with pytest.raises(ReportError, match="give either deck="):
        what_if(wh, *DAY, vendor="carrier_x")
    with pytest.raises(ReportError, match="give either deck="):
        what_if(wh, *DAY, deck="x.csv", table="vend", vendor="carrier_x", change_pct=5)
    with pytest.raises(ReportError, match="needs table="):
        what_if(wh, *DAY, deck="x.csv")
    with pytest.raises(ReportError, match="needs vendor="):
        what_if(wh, *DAY, change_pct=5)
    with pytest.raises(ReportError, match="at least -100"):
        what_if(wh, *DAY, vendor="carrier_x", change_pct=-101)
    candidate = deck("prefix,rate\n44,0.01\n", "c.csv")
    with pytest.raises(ReportError, match="no vendor rate table 'nope'; vendor tables: vend, "):
        what_if(wh, *DAY, deck=candidate, table="nope")
    with pytest.raises(ReportError, match="no customer rate table 'vend'"):
        what_if(wh, *DAY, deck=candidate, table="vend", deck_side="customer")
    bad = deck("prefix,rate\n44x,0.01\n", "bad.csv")
    with pytest.raises(ReportError, match=r"bad\.csv:2: prefix '44x' is not all digits"):
        what_if(wh, *DAY, deck=bad, table="vend")
    twice = deck("prefix,rate,effective_from\n44,0.01,2026-01-01\n44,0.02,2026-06-01\n",
                 "twice.csv")
    with pytest.raises(ReportError, match=r"twice\.csv:3: prefix 44 .* also on line 2"):
        what_if(wh, *DAY, deck=twice, table="vend")


def test_unrated_period_is_refused(wh, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spool2" / "late.jsonl",
                [contract_cdr("late", "447700900099", "2026-11-02T15:00:00Z", 5000)])
    wh.ingest(tmp_path / "spool2")
    with pytest.raises(ReportError, match=r"1 call.* not rated yet"):
        what_if(wh, *DAY, vendor="carrier_x", change_pct=5)


def test_matches_a_real_rerate(tmp_path: Path) -> None:
    """The scratch re-rating equals importing the candidate for real and rating again."""
    from ratelab.examples import sample_warehouse

    wh = sample_warehouse(cdrs=200, rated=True, directory=tmp_path / "sample")
    candidate = tmp_path / "candidate.csv"
    candidate.write_text("prefix,destination,rate,increment,effective_from\n"
                         "44,United Kingdom,0.0110,30/6,2026-11-02\n"
                         "447,United Kingdom - Mobile,0.0310,1/1,2026-11-02\n")
    frame = what_if(wh, *DAY, deck=candidate, table="vend_x")
    assert frame["calls"].sum() == 200
    wh.import_deck(candidate, "vend_x", "vendor")    # for real, from the period start
    wh.rate()
    real = wh.sql("""SELECT destination, CAST(coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS cost,
                            count(*) FILTER (WHERE status <> 'ok') AS flagged
                     FROM rated GROUP BY ALL ORDER BY destination""")
    assert frame.select("destination", "cost_after", "unpriced_after").rows() == real.rows()
    assert real.filter(pl.col("destination") == "USA")["flagged"].item() > 0


def test_a_change_with_more_than_six_places_is_refused() -> None:
    from ratelab.examples import sample_warehouse
    from ratelab.reports.common import ReportError as Refused
    from ratelab.reports.whatif import what_if as run_what_if

    wh = sample_warehouse(cdrs=5, rated=True)
    with pytest.raises(Refused, match="more than 6 decimal places"):
        run_what_if(wh, "2026-11-02", "2026-11-03", vendor="carrier_x",
                    change_pct="1.0000001")


def test_calls_first_priced_by_the_candidate_move_out_of_unrated(wh, deck, tmp_path: Path) -> None:
    """A call no table priced sits in '(unrated)'; a candidate vendor deck that prices it moves
    it (both its figures) to its new destination, while the other vendors' calls stay put."""
    write_jsonl(tmp_path / "spool" / "more.jsonl", [
        contract_cdr("fr1", "33140000001", "2026-11-02T15:00:00Z", 60000),   # nobody has 33
        contract_cdr("fr2", "33140000002", "2026-11-02T15:30:00Z", 120000,
                     vendor="carrier_y"),
    ])
    wh.ingest(tmp_path / "spool")
    wh.rate()
    candidate = deck("prefix,destination,rate,increment,effective_from\n"
                     "44,UK,0.0150,60/60,2026-01-01\n1,USA,0.0050,60/60,2026-01-01\n"
                     "33,France,0.0300,60/60,2026-01-01\n", "vend_fr.csv")
    frame = what_if(wh, *DAY, deck=candidate, table="vend")
    assert _rows(frame) == [
        # fr2 went through carrier_y, whose table is not the candidate's: still unrated
        ("(unrated)", "0.000000", "0.000000", "0.000000", "0.000000", "0.000000", "0.000000",
         "0.000000", 1, 0),
        # fr1: no customer rate (revenue 0 either way), now a France cost of one minute
        ("France", "0.000000", "0.000000", "0.000000", "0.030000", "0.000000", "-0.030000",
         "-0.030000", 1, 0),
        ("UK", "0.080000", "0.080000", "0.057000", "0.057000", "0.023000", "0.023000",
         "0.000000", 3, 0),
        ("USA", "0.010000", "0.010000", "0.005000", "0.005000", "0.005000", "0.005000",
         "0.000000", 2, 0),
    ]
