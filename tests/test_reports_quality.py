"""Traffic quality reports on the golden warehouse (tests/reports_fixtures.py; expected rows in
tests/golden/reports/<function>.json). The ASR, ACD, PDD and short-call figures there are
worked by hand in the comments below."""

from __future__ import annotations

import polars as pl
import pytest

import ratelab
from ratelab.reports import ReportError, failure_causes, traffic_quality
from tests.reports_fixtures import END, START, build_golden_warehouse, check_golden

QUALITY_COLUMNS = ["attempts", "answered", "asr", "acd_s", "pdd_ms", "short_calls",
                   "short_ratio"]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return build_golden_warehouse(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("report", [traffic_quality, failure_causes], ids=lambda f: f.__name__)
def test_golden(report, wh) -> None:
    check_golden(report.__name__, report, wh)


def test_vendor_quality_counts_failover_attempts(wh) -> None:
    # c4 tried carrier_x (503) then carrier_y (200): carrier_x gets a failed attempt, carrier_y
    # an answered one. On 2026-11-02 carrier_x had c1, c2, c3 answered (60, 90 and 4 s; PDD 2000,
    # 3000, 1000 ms), c4's 503 and c5's 486: 5 attempts, 3 answered, ASR 3/5,
    # ACD (60 + 90 + 4) / 3 s, PDD 6000 / 3 ms, one short call (c3, 4 s) of 3 answered.
    frame = traffic_quality(wh, "2026-11-02", "2026-11-03", by="vendor")
    rows = {r["vendor"]: r for r in frame.iter_rows(named=True)}
    x, y = rows["carrier_x"], rows["carrier_y"]
    assert (x["attempts"], x["answered"], x["short_calls"]) == (5, 3, 1)
    assert x["asr"] == pytest.approx(3 / 5)
    assert x["acd_s"] == pytest.approx(154 / 3)
    assert x["pdd_ms"] == pytest.approx(2000.0)
    assert x["short_ratio"] == pytest.approx(1 / 3)
    # carrier_y: c4 (120 s, PDD 2500) and c6 (60 s, PDD 1500), both answered
    assert (y["attempts"], y["answered"], y["asr"], y["acd_s"], y["pdd_ms"]) == (
        2, 2, 1.0, 90.0, 2000.0)
    # by customer the failover call is one attempt, answered
    acme = traffic_quality(wh, "2026-11-02", "2026-11-03", by="customer").row(0, named=True)
    assert (acme["customer"], acme["attempts"], acme["answered"]) == ("acme", 5, 4)


def test_failure_causes_leave_out_rescued_attempts(wh) -> None:
    causes = failure_causes(wh, START, END, by="vendor")
    assert 503 not in causes["sip_code"].to_list()  # c4's 503 was rescued by carrier_y
    assert causes.group_by("vendor").agg(pl.col("share").sum())["share"].to_list() == \
        pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("by", ["vendor", "customer", "destination"])
@pytest.mark.parametrize("grain", ["hour", "day"])
def test_columns_and_types_also_when_empty(by, grain, wh) -> None:
    for start, end in ((START, END), ("2026-12-01", "2026-12-02")):
        frame = traffic_quality(wh, start, end, by=by, grain=grain)
        assert frame.columns == ["bucket", by, *QUALITY_COLUMNS]
        assert frame.schema["bucket"] == pl.Datetime("us")
        assert frame.schema[by] == pl.String
        assert [frame.schema[c] for c in QUALITY_COLUMNS] == [
            pl.Int64, pl.Int64, pl.Float64, pl.Float64, pl.Float64, pl.Int64, pl.Float64]
        causes = failure_causes(wh, start, end, by=by)
        assert dict(causes.schema) == {by: pl.String, "sip_code": pl.Int32,
                                       "disconnect_reason": pl.String, "calls": pl.Int64,
                                       "share": pl.Float64}
        assert (frame.height == 0) == (causes.height == 0) == (start == "2026-12-01")


def test_hour_buckets_are_utc_hours(wh) -> None:
    frame = traffic_quality(wh, "2026-11-02T10:00", "2026-11-02T12:00", by="customer",
                            grain="hour")
    assert [b.isoformat() for b in frame["bucket"]] == ["2026-11-02T10:00:00",
                                                        "2026-11-02T11:00:00"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda wh: traffic_quality(wh, START, END, by="country"),
     "by must be one of vendor, customer, destination; got 'country'"),
    (lambda wh: traffic_quality(wh, START, END, grain="minute"),
     "grain must be one of hour, day; got 'minute'"),
    (lambda wh: failure_causes(wh, START, END, by="codec"), "by must be one of"),
    (lambda wh: traffic_quality(wh, "2026-02-30", END), "start '2026-02-30' is not a date"),
    (lambda wh: failure_causes(wh, START, "2026-11-04 25:00"), "end '2026-11-04 25:00' is not"),
])
def test_bad_arguments_raise_report_error(call, message, wh) -> None:
    with pytest.raises(ReportError, match=message):
        call(wh)


@pytest.mark.parametrize("keys", [["vendor", "customer"], ["customer", "destination"],
                                  ["destination", "vendor", "customer"]])
def test_several_keys_add_up_to_one(keys, wh) -> None:
    # by= takes a list: one column per key, in the order given; summed over the other keys the
    # counts are those of the single key (with vendor among the keys, attempts count;
    # otherwise calls).
    many = traffic_quality(wh, START, END, by=keys)
    assert many.columns[:len(keys) + 1] == ["bucket", *keys]
    base = ["vendor", keys[0]] if "vendor" in keys[1:] else [keys[0]]
    one = traffic_quality(wh, START, END, by=base)
    summed = (many.group_by("bucket", *base).agg(pl.col("attempts").sum(),
                                                 pl.col("answered").sum())
              .sort("bucket", *base))
    assert summed.rows() == one.select("bucket", *base, "attempts", "answered").sort(
        "bucket", *base).rows()
    causes = failure_causes(wh, START, END, by=keys)
    assert causes.columns[:len(keys)] == keys
    assert causes["calls"].sum() == failure_causes(wh, START, END, by=keys[0])["calls"].sum()
    shares = causes.group_by(keys).agg(pl.col("share").sum())["share"]
    assert all(abs(s - 1) < 1e-12 for s in shares)
