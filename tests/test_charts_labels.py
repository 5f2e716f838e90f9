"""Labels inside the pictures: time buckets (and explorer groups) that hold generated CDRs
(``switch_id = "synthetic"``) are shaded, with one legend entry, "generated (synthetic) data".

The warehouse has synthetic CDRs on 2 Nov (the sample) and two real, hand-made calls on 5 Nov.
"""

from __future__ import annotations

from datetime import date, datetime

import plotly.graph_objects as go
import polars as pl
import pytest

import ratelab
from ratelab import charts
from ratelab.widgets import MarginExplorer, RateSimulator, margin_figure, synthetic_calls
from tests.helpers import contract_cdr, write_jsonl

LABEL = "generated (synthetic) data"


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    root = tmp_path_factory.mktemp("labels")
    wh = ratelab.sample_warehouse(cdrs=60, rated=True, directory=root / "wh")
    wh.assign("cust_std", customer="globex")
    write_jsonl(root / "real" / "globex.jsonl", [
        contract_cdr("g1", "442071234567", "2026-11-05T12:00:00Z", 61000, customer="globex"),
        contract_cdr("g2", "442071234568", "2026-11-05T13:00:00Z", 3000, customer="globex"),
    ])
    wh.ingest(root / "real")
    wh.rate()
    return wh


def shaded(fig: go.Figure) -> list[tuple[float, float]]:
    """The x spans of the synthetic shading."""
    return [(s.x0, s.x1) for s in fig.layout.shapes if s.name == LABEL]


def legend_entries(fig: go.Figure) -> list[str]:
    """Names the legend shows for shapes (traces are checked separately)."""
    return [s.name for s in fig.layout.shapes if s.showlegend]


def quality(buckets: list[datetime], acd: list[float]) -> pl.DataFrame:
    n = len(buckets)
    return pl.DataFrame({"bucket": buckets, "vendor": ["carrier_x"] * n,
                         "attempts": [10] * n, "answered": [5] * n, "asr": [0.5] * n,
                         "acd_s": acd})


def test_synthetic_buckets_reads_the_generated_days_and_hours(wh: ratelab.Warehouse) -> None:
    assert charts.synthetic_buckets(wh, "2026-11-01", "2026-11-07") == [date(2026, 11, 2)]
    hours = charts.synthetic_buckets(wh, "2026-11-01", "2026-11-07", grain="hour")
    assert hours and all(h.date() == date(2026, 11, 2) for h in hours)
    assert all(isinstance(h, datetime) and h.minute == 0 for h in hours)
    # the real calls of 5 Nov are not synthetic
    assert charts.synthetic_buckets(wh, "2026-11-05", "2026-11-06") == []
    with pytest.raises(ValueError, match="grain must be day or hour"):
        charts.synthetic_buckets(wh, "2026-11-01", "2026-11-07", grain="week")


def test_asr_acd_shades_the_synthetic_buckets_and_says_so_in_the_legend() -> None:
    # the scorecard's case: ACD ~390 s on the real day, 3 s on the generated ones
    days = [datetime(2026, 11, d) for d in (1, 2, 3, 4)]
    frame = quality(days, [390.0, 3.0, 3.0, 390.0])
    fig = charts.asr_acd_timeseries(frame, synthetic=[date(2026, 11, 2), date(2026, 11, 3)])
    # one span over the 2nd and 3rd buckets (category positions 1 and 2), not over the real ones
    assert shaded(fig) == [(0.5, 2.5)]
    assert legend_entries(fig) == [LABEL]
    assert fig.layout.showlegend is True
    # the attempt bars of the generated buckets are hatched, the real ones plain
    assert list(fig.data[0].marker.pattern.shape) == ["", "/", "/", ""]
    plain = charts.asr_acd_timeseries(frame)
    assert shaded(plain) == [] and list(plain.data[0].marker.pattern.shape) == [""] * 4


def test_separate_spans_get_one_legend_entry() -> None:
    hours = [datetime(2026, 11, 2, h) for h in range(5)]
    fig = charts.asr_acd_timeseries(quality(hours, [60.0] * 5),
                                    synthetic=[hours[0], hours[3], hours[4]])
    assert shaded(fig) == [(-0.5, 0.5), (2.5, 4.5)]
    assert legend_entries(fig) == [LABEL]
    assert all(s.legendgroup == "synthetic" for s in fig.layout.shapes)


def test_a_frame_that_flags_synthetic_rows_is_shaded_without_the_argument() -> None:
    days = [datetime(2026, 11, 1), datetime(2026, 11, 2)]
    frame = quality(days, [60.0, 60.0]).with_columns(synthetic=pl.Series([False, True]))
    assert shaded(charts.asr_acd_timeseries(frame)) == [(0.5, 1.5)]


def test_split_vendors_share_the_shading_of_the_buckets() -> None:
    h1, h2 = datetime(2026, 11, 2, 10), datetime(2026, 11, 2, 11)
    frame = pl.DataFrame({"bucket": [h1, h2, h2], "vendor": ["a", "a", "b"],
                          "attempts": [1, 2, 3], "answered": [1, 1, 1], "asr": [1.0, .5, .33],
                          "acd_s": [5.0, 6.0, 7.0]})
    fig = charts.asr_acd_timeseries(frame, split=True, synthetic=[h2])
    assert shaded(fig) == [(0.5, 1.5)]
    assert list(fig.layout.xaxis.categoryarray) == ["2026-11-02 10:00", "2026-11-02 11:00"]
    # vendor b has only the 11:00 bucket: its bar is hatched
    assert list(fig.data[3].marker.pattern.shape) == ["/"]


def test_heatmap_and_break_even_chart_shade_generated_days() -> None:
    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    heat = pl.DataFrame({"day": days, "destination": ["UK"] * 3, "profit": [1.0, 2.0, 3.0]})
    fig = charts.margin_heatmap(heat, synthetic=[date(2026, 11, 3)])
    assert shaded(fig) == [(1.5, 2.5)]
    assert fig.layout.shapes[0].layer == "above"  # a heatmap would hide it below
    assert legend_entries(fig) == [LABEL]
    assert shaded(charts.margin_heatmap(heat)) == []
    curve = pl.DataFrame({"day": days, "cumulative_profit": [1.0, 2.0, 3.0],
                          "fixed_costs": [5.0] * 3})
    assert shaded(charts.break_even_chart(curve, synthetic=days[:2])) == [(-0.5, 1.5)]


def test_margin_explorer_labels_generated_data(wh: ratelab.Warehouse) -> None:
    explorer = MarginExplorer(wh, start=date(2026, 11, 2), end=date(2026, 11, 3))
    assert explorer.synthetic == 60
    assert LABEL in explorer.label.value
    assert LABEL in [s.name for s in explorer.figure.layout.shapes]
    assert "synthetic" not in explorer.frame.columns  # the frame is margin_view's
    # the real day alone: no label, no shading
    explorer.start.value, explorer.end.value = date(2026, 11, 5), date(2026, 11, 6)
    assert explorer.synthetic == 0 and explorer.label.value == ""
    assert shaded(explorer.figure) == []
    # both, by day: only the generated day is shaded
    explorer.start.value = date(2026, 11, 2)
    explorer.by.value = "day"
    assert explorer.synthetic == 60
    days = list(explorer.figure.data[0].x)
    assert shaded(explorer.figure) == [(days.index("2026-11-02") - 0.5,
                                        days.index("2026-11-02") + 0.5)]


def test_synthetic_calls_counts_with_the_filters(wh: ratelab.Warehouse) -> None:
    assert synthetic_calls(wh, start="2026-11-01", end="2026-11-07") == 60
    assert synthetic_calls(wh, start="2026-11-01", end="2026-11-07", customer="globex") == 0


def test_margin_figure_shades_the_groups_flagged_synthetic() -> None:
    frame = pl.DataFrame({"destination": ["UK", "USA"], "revenue": [2.0, 1.0],
                          "cost": [1.0, 1.0], "profit": [1.0, 0.0], "margin": [0.5, 0.0],
                          "synthetic": [False, True]})
    assert shaded(margin_figure(frame)) == [(0.5, 1.5)]
    assert shaded(margin_figure(frame.drop("synthetic"))) == []


def test_rate_simulator_labels_generated_data(wh: ratelab.Warehouse) -> None:
    sim = RateSimulator(wh, start=date(2026, 11, 2), end=date(2026, 11, 3))
    assert LABEL in sim.label.value
    assert legend_entries(sim.figure) == [LABEL]
    sim.start.value, sim.end.value = date(2026, 11, 5), date(2026, 11, 6)
    assert sim.label.value == "" and shaded(sim.figure) == []
