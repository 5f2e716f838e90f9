"""Period comparison (ratelab.reports.compare): golden warehouses built from
tests/golden/compare/*.json (decks, exchange rates and CDRs over two weeks; expected rows
computed by hand, see each file's "about"), the exact volume + mix + price = profit change
property on random data, currencies, empty periods, errors and the charts' numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ratelab
from ratelab import charts
from ratelab.reports import MissingRateError, ReportError, compare, compare_totals, margin_by
from ratelab.reports.compare import COMPARE_MEASURES, _effects, parse_period
from tests.compare_fixtures import build_compare_warehouse, load_compare_golden
from tests.helpers import ratelab as run_cli
from tests.reports_fixtures import plain, same

MONEY, MINUTES = pl.Decimal(18, 6), pl.Decimal(18, 1)
A, B = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return build_compare_warehouse(tmp_path_factory.mktemp("weeks"), "two_weeks")


@pytest.fixture(scope="module")
def euro(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return build_compare_warehouse(tmp_path_factory.mktemp("eur"), "eur")


def check_rows(frame: pl.DataFrame, want: list[dict], where: str) -> None:
    got = [{k: plain(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
    assert len(got) == len(want), f"{where}: {len(got)} rows, want {len(want)}: {got}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert list(g) == list(w), f"{where} row {i}: columns {list(g)}"
        for column in w:
            assert same(g[column], w[column]), (
                f"{where} row {i} {column}: got {g[column]!r}, want {w[column]!r}")


@pytest.mark.parametrize("name", ["two_weeks", "eur"])
def test_golden(name: str, weeks: ratelab.Warehouse, euro: ratelab.Warehouse) -> None:
    wh = {"two_weeks": weeks, "eur": euro}[name]
    for number, case in enumerate(load_compare_golden(name)["cases"]):
        args = dict(case["args"])
        for key in ("period_a", "period_b"):
            if isinstance(args[key], list):
                args[key] = tuple(args[key])
        frame = compare(wh, **args)
        where = f"{name} case {number} {case['args']}"
        check_rows(frame, case["rows"], where)
        totals = compare_totals(frame).row(0, named=True)
        for column, value in case["totals"].items():
            assert same(plain(totals[column]), value), f"{where} totals {column}"


def test_effects_add_up_exactly_per_row_and_in_total(weeks: ratelab.Warehouse) -> None:
    frame = compare(weeks, A, B)
    assert (frame["volume_effect"] + frame["mix_effect"] + frame["price_effect"]
            == frame["profit_change"]).all()
    total = compare_totals(frame).row(0, named=True)
    assert (total["profit_a"] + total["volume_effect"] + total["mix_effect"]
            + total["price_effect"]) == total["profit_b"]


@pytest.mark.parametrize("by", ["destination", "customer", "vendor", ["vendor", "destination"]])
@pytest.mark.parametrize("periods", [(A, B), ("2026-12-01..2026-12-08", "2026-12-08..2026-12-15")],
                         ids=["data", "empty"])
def test_columns_and_types(weeks: ratelab.Warehouse, by, periods) -> None:
    keys = [by] if isinstance(by, str) else by
    frame = compare(weeks, *periods, by=by)
    types = {"calls": pl.Int64, "answered": pl.Int64, "minutes": MINUTES, "revenue": MONEY,
             "cost": MONEY, "profit": MONEY, "asr": pl.Float64, "margin": pl.Float64}
    want = {**{k: pl.String for k in keys},
            **{f"{m}_{side}": t for side in "ab" for m, t in types.items()},
            "revenue_change": MONEY, "cost_change": MONEY, "profit_change": MONEY,
            "minutes_change": MINUTES, "asr_change": pl.Float64, "volume_effect": MONEY,
            "mix_effect": MONEY, "price_effect": MONEY, "currency": pl.String,
            "synthetic_a": pl.Boolean, "synthetic_b": pl.Boolean}
    assert dict(frame.schema) == want
    assert list(compare_totals(frame).columns) == list(COMPARE_MEASURES)


def test_empty_periods(weeks: ratelab.Warehouse) -> None:
    nothing = compare(weeks, "2026-12-01..2026-12-08", "2026-12-08..2026-12-15")
    assert nothing.is_empty()
    total = compare_totals(nothing).row(0, named=True)
    assert total["calls_a"] == total["calls_b"] == 0 and total["asr_a"] is None
    assert total["profit_change"] == total["price_effect"] == Decimal(0)
    # period a empty: every row is new, all of its profit is mix
    fresh = compare(weeks, "2026-10-01..2026-10-08", B)
    assert fresh.height == 4 and (fresh["calls_a"] == 0).all()
    assert (fresh["mix_effect"] == fresh["profit_b"]).all()
    assert (fresh["volume_effect"] == 0).all() and (fresh["price_effect"] == 0).all()
    # period b empty: every row is gone, all of its profit lost is mix
    gone = compare(weeks, A, "2026-12-01..2026-12-08")
    assert (gone["mix_effect"] == -gone["profit_a"]).all() and gone.height == 4


def test_one_engine_with_margin_by(weeks: ratelab.Warehouse) -> None:
    # each side is margin_by over its period: the same calls, minutes and money
    frame = compare(weeks, A, B, by="destination")
    for side, (start, end) in (("a", A.split("..")), ("b", B.split(".."))):
        margins = margin_by(weeks, start, end, by="destination")
        mine = frame.filter(pl.col(f"calls_{side}") > 0).select(
            "destination", *(pl.col(f"{m}_{side}").alias(m) for m in
                             ("calls", "answered", "minutes", "revenue", "cost", "profit")))
        theirs = margins.select("destination", "calls", "answered", "minutes", "revenue",
                                "cost", "profit")
        assert mine.sort("destination").equals(theirs.sort("destination"))


def test_overlapping_and_identical_periods(weeks: ratelab.Warehouse) -> None:
    same_week = compare(weeks, A, A)
    for column in ("profit_change", "volume_effect", "mix_effect", "price_effect"):
        assert (same_week[column] == 0).all(), column
    # overlapping periods are allowed: a call in both counts in both
    wide = compare(weeks, "2026-11-02..2026-11-16", B, by="customer").row(0, named=True)
    assert (wide["calls_a"], wide["calls_b"]) == (11, 6)


def test_a_period_is_a_pair_or_a_string(weeks: ratelab.Warehouse) -> None:
    assert compare(weeks, A, B).equals(
        compare(weeks, (date(2026, 11, 2), datetime(2026, 11, 9)), ["2026-11-09", "2026-11-16"]))
    assert parse_period(" 2026-11-02T06:00 .. 2026-11-03 ") == (
        datetime(2026, 11, 2, 6), datetime(2026, 11, 3))


@pytest.mark.parametrize("args, message", [
    ((B, A.replace("02..", "12..")), "period_b: the period is empty"),
    (("2026-11-09..2026-11-02", B), "period_a: the period is empty: start 2026-11-09"),
    (("2026-11-02", B), "period_a '2026-11-02' is not a period: write START..END"),
    (("2026-11-02..2026-11-31", B), "period_a: end '2026-11-31' is not a date"),
    (("2026-11-02..2026-11-05..2026-11-09", B), "is not a period"),
    ((("2026-11-02",), B), "period_a must be a (start, end) pair"),
    ((A, B, "country"), "by must be one of destination, customer, vendor; got 'country'"),
    ((A, B, ["vendor", "vendor"]), "by lists a key twice"),
])
def test_bad_arguments_are_report_errors(weeks: ratelab.Warehouse, args, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        compare(weeks, *args)
    assert message in str(caught.value)


def test_a_missing_exchange_rate_in_either_period_is_refused(tmp_path: Path) -> None:
    spec = load_compare_golden("eur")
    spec["fx"] = [["EUR", "1.20", "2026-11-09"]]  # nothing for period a's days
    wh = build_compare_warehouse(tmp_path, spec)
    with pytest.raises(MissingRateError) as caught:
        compare(wh, A, B)
    assert "EUR on 2026-11-03" in str(caught.value)
    with pytest.raises(MissingRateError):
        compare(wh, B, A)  # either side
    assert compare(wh, B, B).height == 1  # period b alone has its rate


# -- the decomposition on random data ------------------------------------------------------

def exact_half_up(value: Fraction) -> Decimal:
    """``value`` rounded half up (away from zero) to 6 places, from the exact fraction."""
    scaled = abs(value) * 10**6
    whole = int(scaled)
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole if value >= 0 else -whole).scaleb(-6)


profits = st.decimals(min_value=Decimal("-999.999999"), max_value=Decimal("999.999999"),
                      places=6, allow_nan=False, allow_infinity=False)


@given(seconds_a=st.integers(0, 10**7), seconds_b=st.integers(0, 10**7),
       other_a=st.integers(0, 10**8), other_b=st.integers(0, 10**8),
       calls_a=st.integers(0, 3), calls_b=st.integers(0, 3), profit_a=profits, profit_b=profits)
@settings(max_examples=300, deadline=None)
def test_effects_are_the_formulas_rounded_half_up_and_add_up_exactly(
        seconds_a: int, seconds_b: int, other_a: int, other_b: int, calls_a: int,
        calls_b: int, profit_a: Decimal, profit_b: Decimal) -> None:
    total_a, total_b = seconds_a + other_a, seconds_b + other_b
    row = {"calls_a": calls_a, "calls_b": calls_b, "seconds_a": seconds_a,
           "seconds_b": seconds_b, "profit_a": profit_a, "profit_b": profit_b}
    volume, mix, price = _effects(row, total_a, total_b)
    assert volume + mix + price == profit_b - profit_a
    if not calls_a or not calls_b:
        assert (volume, mix, price) == (0, profit_b - profit_a, 0)
    elif seconds_a == 0:
        assert (volume, mix) == (0, 0)
    else:
        m_a, m_b, big_a, big_b = (Fraction(v, 60) for v in (seconds_a, seconds_b, total_a,
                                                             total_b))
        p_a = Fraction(profit_a) / m_a
        s_a = m_a / big_a
        s_b = m_b / big_b if big_b else Fraction(0)
        assert volume == exact_half_up((big_b - big_a) * s_a * p_a)
        assert mix == exact_half_up(big_b * (s_b - s_a) * p_a)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return ratelab.sample_warehouse(cdrs=300, rated=True,
                                    directory=tmp_path_factory.mktemp("sample"))


@given(cut_a=st.integers(1, 24 * 60), length_b=st.integers(1, 24 * 60),
       overlap=st.integers(0, 600), by=st.sampled_from(["destination", "customer", "vendor"]))
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_periods_of_generated_calls_add_up_exactly(
        sample: ratelab.Warehouse, cut_a: int, length_b: int, overlap: int, by: str) -> None:
    # period a: from midnight to a random minute of the sample's day; period b: a random
    # span from there, reaching back up to `overlap` minutes into period a
    day = datetime(2026, 11, 2)
    a = (day, day + timedelta(minutes=cut_a))
    b = (max(a[1] - timedelta(minutes=overlap), day), a[1] + timedelta(minutes=length_b))
    frame = compare(sample, a, b, by=by)
    assert (frame["volume_effect"] + frame["mix_effect"] + frame["price_effect"]
            == frame["profit_change"]).all()
    total = compare_totals(frame).row(0, named=True)
    assert (total["profit_a"] + total["volume_effect"] + total["mix_effect"]
            + total["price_effect"] == total["profit_b"])
    assert total["profit_a"] == margin_by(sample, *a, by=by)["profit"].sum()
    assert total["profit_b"] == margin_by(sample, *b, by=by)["profit"].sum()
    assert frame.filter(pl.col("calls_a") > 0)["synthetic_a"].all()


# -- charts: the figure's numbers are the frame's -------------------------------------------

def test_waterfall_bars_are_the_totals(weeks: ratelab.Warehouse) -> None:
    frame = compare(weeks, A, B)
    total = compare_totals(frame).row(0, named=True)
    fig = charts.compare_waterfall(frame, periods=("week 45", "week 46"))
    bars = fig.data[0]
    assert list(bars.x) == ["profit week 45", "volume", "mix", "price", "profit week 46"]
    assert list(bars.y) == [float(total[c]) for c in ("profit_a", "volume_effect",
                                                      "mix_effect", "price_effect",
                                                      "profit_b")]
    assert fig.layout.yaxis.title.text == "profit (USD)"
    assert not fig.layout.shapes  # no generated CDRs in these weeks
    assert charts.compare_waterfall(frame.head(0)).layout.annotations[0].text == (
        "no data for this period")


def test_bars_are_the_effects_per_key_and_the_rest(weeks: ratelab.Warehouse) -> None:
    frame = compare(weeks, A, B)
    fig = charts.compare_bars(frame, top=3)
    volume, mix, price, change = fig.data
    # the 3 largest changes (ties by name: Germany, Italy, Spain), biggest loss first
    assert list(volume.x) == ["Germany", "Spain", "Italy", "other (2)"]
    by_key = {row["destination"]: row for row in frame.iter_rows(named=True)}
    rest = [by_key["UK"], by_key["France"]]
    for trace, column in ((volume, "volume_effect"), (mix, "mix_effect"),
                          (price, "price_effect"), (change, "profit_change")):
        want = [float(by_key[k][column]) for k in ("Germany", "Spain", "Italy")]
        want.append(float(sum(r[column] for r in rest)))
        assert list(trace.y) == want, column
    assert fig.layout.yaxis.title.text == "profit change (USD)"
    assert [t.name for t in fig.data] == ["volume", "mix", "price", "profit change"]


def test_charts_shade_generated_periods(sample: ratelab.Warehouse) -> None:
    frame = compare(sample, "2026-10-26..2026-11-02", "2026-11-02..2026-11-09")
    fig = charts.compare_waterfall(frame)
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(3.5, 4.5)]  # profit b only
    assert fig.layout.shapes[0].name == charts.SYNTHETIC_LABEL
    bars = charts.compare_bars(frame)
    assert len(bars.layout.shapes) == 1 and bars.layout.shapes[0].x0 == -0.5  # every key
    assert bars.layout.shapes[0].x1 == len(bars.data[0].x) - 0.5
    headline = charts.compare_headline(compare_totals(frame), ("a", "b"))
    assert headline.columns == ["measure", "a", "b", "change"]
    assert headline.row(0)[:2] == ("calls", "0")


# -- the CLI ----------------------------------------------------------------------------------

def test_ratelab_table_compare(weeks: ratelab.Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "compare.csv"
    result = run_cli("--warehouse", weeks.path, "table", "compare", "-p", "period_a", A,
                     "-p", "period_b", B, "-p", "by", "destination", "--output", out)
    assert result.returncode == 0, result.stderr
    exported = pl.read_csv(out, infer_schema=False)
    assert exported["destination"].to_list() == ["Germany", "Italy", "Spain", "UK", "France"]
    assert exported["price_effect"].to_list()[-1] == "-0.050000"
    bad = run_cli("--warehouse", weeks.path, "table", "compare", "-p", "period_a",
                  "2026-11-09..2026-11-02", "-p", "period_b", B)
    assert bad.returncode == 2 and "period_a: the period is empty" in bad.stderr
