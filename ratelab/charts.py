"""Plotly figures for the report frames of ``ratelab.reports``.

Every function takes the frame a report function returns (the columns of the reports
contract), returns a ``plotly.graph_objects.Figure`` and never changes the frame. Money
arrives as Decimal and is plotted as float: a chart is a picture, the frames keep the exact
values. An empty frame gives a figure that says "no data for this period" instead of an empty
grid.

>>> import polars as pl
>>> fig = waterfall(pl.DataFrame({"revenue": [10.0], "cost": [7.5], "profit": [2.5]}))
>>> list(fig.data[0].y)
[10.0, -7.5, 2.5]
>>> no_data(title="Margin").layout.annotations[0].text
'no data for this period'

Labels inside the pictures: time buckets that hold generated CDRs (``switch_id =
"synthetic"``) are shaded, with one legend entry :data:`SYNTHETIC_LABEL`; pass them as
``synthetic=`` (bucket starts: a ``date`` marks every bucket of that day, a ``datetime`` the
bucket starting then; :func:`synthetic_buckets` reads them from a warehouse), or let a frame
with a boolean ``synthetic`` column say so. Money axes say their currency: ``currency=``, by
default the frame's ``currency`` column when it holds one currency (two or more are refused:
a chart never adds unlike money).

>>> from datetime import date
>>> f = pl.DataFrame({"day": [date(2026, 11, 1), date(2026, 11, 2)], "destination": ["UK"] * 2,
...                   "profit": [1.0, 2.0]})
>>> fig = margin_heatmap(f, synthetic=[date(2026, 11, 2)], currency="EUR")
>>> [(s.name, s.x0, s.x1) for s in fig.layout.shapes]
[('generated (synthetic) data', 0.5, 1.5)]
>>> fig.data[0].colorbar.title.text
'profit (EUR)'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from ratelab.chart_compare import compare_bars, compare_headline, compare_waterfall
from ratelab.chart_labels import (
    EMPTY_COLOUR,
    EMPTY_LABEL,
    SYNTHETIC_LABEL,
    chart_currency,
    format_amount,
    frame_synthetic,
    money_title,
    people_table,
    shade_synthetic,
    synthetic_buckets,
    synthetic_marks,
    table_html,
    warehouse_currency,
)

__all__ = [
    "EMPTY_LABEL",
    "NO_DATA",
    "SYNTHETIC_LABEL",
    "asr_acd_timeseries",
    "break_even_chart",
    "chart_currency",
    "compare_bars",
    "compare_headline",
    "compare_waterfall",
    "format_amount",
    "margin_heatmap",
    "no_data",
    "people_table",
    "rate_deviation_chart",
    "reconciliation_chart",
    "shade_synthetic",
    "synthetic_buckets",
    "synthetic_marks",
    "table_html",
    "top_loss_makers_chart",
    "warehouse_currency",
    "waterfall",
    "what_if_chart",
]

NO_DATA = "no data for this period"

# Red for losses, white at zero, blue for profit: readable for the common colour blindnesses.
DIVERGING = "RdBu"
LOSS, PROFIT, NEUTRAL = "#c0392b", "#2471a3", "#7f8c8d"
STATUS_COLOURS = {"matched": "#27ae60", "deviation": "#e67e22", "only_ours": "#2471a3",
                  "only_theirs": "#8e44ad"}
_MARGIN_COLUMNS = {"day", "revenue", "cost", "profit", "margin", "markup", "calls", "answered",
                   "minutes", "flagged", "synthetic", "currency"}

#: At most this many bars in what_if_chart; the rest are summed in one "other (k)" bar.
WHAT_IF_TOP = 15


def no_data(title: str | None = None, message: str = NO_DATA) -> go.Figure:
    """An empty figure carrying ``message`` in the middle (for an empty frame).

    >>> no_data("Top loss makers").layout.title.text
    'Top loss makers'
    """
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 16})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False},
                      height=300)
    return fig


def _floats(frame: pl.DataFrame, column: str) -> list[float | None]:
    """A column as plain floats (Decimal money, ints and None kept as None)."""
    return frame.get_column(column).cast(pl.Float64).to_list()


def _key_column(frame: pl.DataFrame, known: set[str], preferred: Sequence[str]) -> str:
    """The grouping column of a report frame: the one named after the report's ``by``."""
    for name in preferred:
        if name in frame.columns:
            return name
    for name in frame.columns:
        if name not in known:
            return name
    raise ValueError(f"no grouping column in {frame.columns}")


def _need(frame: pl.DataFrame, columns: Sequence[str], chart: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{chart} needs the columns {', '.join(missing)}; "
                         f"the frame has {', '.join(frame.columns)}")


# -- margins -------------------------------------------------------------------------------

def margin_heatmap(frame: pl.DataFrame, *, value: str = "profit", title: str | None = None,
                   currency: str | None = None, synthetic: Iterable[Any] | None = None
                   ) -> go.Figure:
    """Profit (or margin) by destination and day, on a colour scale centred on zero.

    ``frame`` is a ``margin_by_day`` frame: day, <by>, revenue, cost, profit, margin. Rows are
    the <by> values sorted by their total profit, worst at the top. A cell without calls is
    not a zero: it is drawn grey by a second trace, :data:`EMPTY_LABEL` in the legend, while
    0 is white. Days holding generated CDRs (``synthetic``, or the frame's own ``synthetic``
    column) are outlined and shaded, :data:`SYNTHETIC_LABEL` in the legend. ``currency``
    names the money scale (default: the frame's ``currency`` column, if any).

    >>> from datetime import date
    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"day": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 2)],
    ...                   "destination": ["UK", "UK", "USA"],
    ...                   "profit": [Decimal("1.5"), Decimal("-2"), Decimal("3")]})
    >>> fig = margin_heatmap(f)
    >>> trace, empty = fig.data
    >>> list(trace.y), [list(row) for row in trace.z], trace.zmid
    (['UK', 'USA'], [[1.5, -2.0], [None, 3.0]], 0)
    >>> empty.name, [list(row) for row in empty.z]
    ('no calls (empty cell)', [[None, None], [1, None]])
    """
    if value not in ("profit", "margin", "revenue", "cost"):
        raise ValueError(f"value must be profit, margin, revenue or cost, got {value!r}")
    key = _key_column(frame, _MARGIN_COLUMNS, ("destination", "customer", "vendor"))
    title = title or f"{value.capitalize()} by {key} and day"
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["day", value], "margin_heatmap")
    money = None if value == "margin" else chart_currency(frame, currency)
    days = sorted(set(frame.get_column("day").to_list()))
    cells: dict[tuple[Any, Any], float | None] = {}
    totals: dict[Any, float] = {}
    for name, day, amount in zip(frame.get_column(key).to_list(),
                                 frame.get_column("day").to_list(), _floats(frame, value),
                                 strict=True):
        cells[(name, day)] = amount
        totals[name] = totals.get(name, 0.0) + (amount or 0.0)
    names = sorted(totals, key=lambda n: (totals[n], str(n)))
    z = [[cells.get((name, day)) for day in days] for name in names]
    empty = [[1 if (name, day) not in cells else None for day in days] for name in names]
    fmt = ".1%" if value == "margin" else ",.2f"
    unit = money_title(value, money)
    x = [_day_label(d) for d in days]
    y = [str(n) for n in names]
    fig = go.Figure(go.Heatmap(
        x=x, y=y, z=z, zmid=0, xgap=1, ygap=1,
        colorscale=DIVERGING, colorbar={"title": {"text": unit}, "tickformat": fmt},
        hovertemplate=f"%{{y}}<br>%{{x}}<br>{unit} %{{z:{fmt}}}<extra></extra>",
        hoverongaps=False, name=value, showlegend=False))
    fig.add_trace(go.Heatmap(
        x=x, y=y, z=empty, xgap=1, ygap=1, zmin=0, zmax=1, name=EMPTY_LABEL,
        colorscale=[[0, EMPTY_COLOUR], [1, EMPTY_COLOUR]], showscale=False,
        showlegend=any(v is not None for row in empty for v in row),
        hovertemplate="%{y}<br>%{x}<br>no calls<extra></extra>", hoverongaps=False))
    marks = synthetic_marks(days, [*(synthetic or ()), *frame_synthetic(frame, "day")])
    shade_synthetic(fig, marks, above=True)
    fig.update_layout(title=title, xaxis={"title": "day (UTC)", "type": "category"},
                      yaxis={"title": key, "autorange": "reversed", "type": "category"},
                      plot_bgcolor="white", showlegend=True,
                      legend={"orientation": "h", "y": -0.25},
                      height=max(320, 160 + 28 * len(names)))
    return fig


def _day_label(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def top_loss_makers_chart(frame: pl.DataFrame, *, title: str | None = None,
                          currency: str | None = None) -> go.Figure:
    """Horizontal bars of the (negative) profit of each loss maker, the worst at the top.

    ``frame`` is a ``top_loss_makers`` (or ``margin_by``) frame; rows with profit >= 0 are
    left out. The axis names ``currency`` (default: the frame's ``currency`` column).

    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"destination": ["UK", "USA"], "revenue": [Decimal(1), Decimal(2)],
    ...                   "cost": [Decimal(4), Decimal(3)], "profit": [Decimal(-3), Decimal(-1)]})
    >>> bars = top_loss_makers_chart(f).data[0]
    >>> list(bars.y), list(bars.x)
    (['UK', 'USA'], [-3.0, -1.0])
    """
    key = _key_column(frame, _MARGIN_COLUMNS, ("destination", "customer", "vendor"))
    title = title or f"Top loss makers by {key}"
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["profit"], "top_loss_makers_chart")
    money = chart_currency(frame, currency)
    losers = frame.filter(pl.col("profit") < 0).sort(["profit", key])
    if losers.is_empty():
        return no_data(title, "no loss makers in this period")
    extra = [c for c in ("revenue", "cost", "margin", "calls") if c in losers.columns]
    custom = list(zip(*[_floats(losers, c) for c in extra], strict=True)) if extra else None
    hover = "<br>".join([f"{c} %{{customdata[{i}]:,.4g}}" for i, c in enumerate(extra)])
    fig = go.Figure(go.Bar(
        x=_floats(losers, "profit"), y=[str(v) for v in losers.get_column(key).to_list()],
        orientation="h", marker_color=LOSS, name="profit", customdata=custom,
        hovertemplate=f"%{{y}}<br>profit %{{x:,.2f}}<br>{hover}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": money_title("profit (loss)", money),
                                          "tickformat": ",.2f"},
                      yaxis={"title": key, "autorange": "reversed", "type": "category"},
                      height=max(300, 120 + 30 * losers.height))
    return fig


def waterfall(frame: pl.DataFrame, *, title: str = "Revenue, cost and profit",
              currency: str | None = None) -> go.Figure:
    """Revenue, minus cost, gives profit: the totals of a settlement or margin frame.

    ``frame`` needs revenue, cost and profit columns (``settlement_summary``, ``margin_by``);
    the bars are their sums over all rows, so a frame with several currencies is refused;
    the axis names ``currency`` (default: the frame's ``currency`` column).

    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"revenue": [Decimal("3.5"), Decimal("1")],
    ...                   "cost": [Decimal("4"), Decimal("0.5")],
    ...                   "profit": [Decimal("-0.5"), Decimal("0.5")]})
    >>> bars = waterfall(f).data[0]
    >>> list(bars.x), list(bars.y), list(bars.measure)
    (['revenue', 'cost', 'profit'], [4.5, -4.5, 0.0], ['absolute', 'relative', 'total'])
    """
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["revenue", "cost", "profit"], "waterfall")
    money = chart_currency(frame, currency)
    revenue, cost, profit = (float(frame.get_column(c).cast(pl.Float64).sum())
                             for c in ("revenue", "cost", "profit"))
    fig = go.Figure(go.Waterfall(
        x=["revenue", "cost", "profit"], y=[revenue, -cost, profit],
        measure=["absolute", "relative", "total"], name="settlement",
        text=[f"{revenue:,.2f}", f"-{cost:,.2f}", f"{profit:,.2f}"], textposition="outside",
        increasing={"marker": {"color": PROFIT}}, decreasing={"marker": {"color": LOSS}},
        totals={"marker": {"color": PROFIT if profit >= 0 else LOSS}},
        connector={"line": {"color": NEUTRAL}}))
    fig.update_layout(title=title, yaxis={"title": money_title("amount", money),
                                          "tickformat": ",.2f"}, showlegend=False)
    return fig


def break_even_chart(frame: pl.DataFrame, *, title: str = "Cumulative profit against fixed costs",
                     currency: str | None = None, synthetic: Iterable[Any] | None = None
                     ) -> go.Figure:
    """Cumulative profit per day as a line, the fixed costs as a dashed line to reach.

    ``frame`` is a ``break_even_curve`` frame: day, cumulative_profit, fixed_costs. The axis
    names ``currency``; days holding generated CDRs (``synthetic``) are shaded.

    >>> from datetime import date
    >>> f = pl.DataFrame({"day": [date(2026, 11, 1), date(2026, 11, 2)],
    ...                   "cumulative_profit": [4.0, 11.0], "fixed_costs": [10.0, 10.0]})
    >>> fig = break_even_chart(f)
    >>> [t.name for t in fig.data], list(fig.data[0].y), list(fig.data[1].y)
    (['cumulative profit', 'fixed costs', 'break-even'], [4.0, 11.0], [10.0, 10.0])
    """
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["day", "cumulative_profit", "fixed_costs"], "break_even_chart")
    money = chart_currency(frame, currency)
    frame = frame.sort("day")
    days = [_day_label(d) for d in frame.get_column("day").to_list()]
    profit, fixed = _floats(frame, "cumulative_profit"), _floats(frame, "fixed_costs")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=days, y=profit, mode="lines+markers", name="cumulative profit",
                             line={"color": PROFIT},
                             hovertemplate="%{x}<br>cumulative profit %{y:,.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=days, y=fixed, mode="lines+markers", name="fixed costs",
                             line={"color": LOSS, "dash": "dash"},
                             hovertemplate="fixed costs %{y:,.2f}<extra></extra>"))
    reached = [(d, p) for d, p, f in zip(days, profit, fixed, strict=True)
               if p is not None and f is not None and p >= f]
    if reached:
        fig.add_trace(go.Scatter(x=[reached[0][0]], y=[reached[0][1]], mode="markers",
                                 name="break-even", marker={"size": 14, "symbol": "star",
                                                            "color": "#27ae60"}))
    shade_synthetic(fig, synthetic_marks(
        frame.get_column("day").to_list(),
        [*(synthetic or ()), *frame_synthetic(frame, "day")]))
    fig.update_layout(title=title, xaxis={"title": "day (UTC)", "type": "category"},
                      yaxis={"title": money_title("amount", money), "tickformat": ",.2f"},
                      hovermode="x unified")
    return fig


def rate_deviation_chart(frame: pl.DataFrame, *, title: str = "Loss from rates below cost",
                         currency: str | None = None) -> go.Figure:
    """Bars of the loss per destination and vendor where the customer rate is below cost.

    ``frame`` is a ``rate_deviation`` frame: destination, vendor, calls_below_cost,
    minutes_below_cost, loss (a positive amount), worst_deviation. The axis names
    ``currency`` (default: the frame's ``currency`` column).

    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"destination": ["UK", "USA"], "vendor": ["v1", "v2"],
    ...                   "loss": [Decimal("0.5"), Decimal("2")], "calls_below_cost": [1, 4]})
    >>> bars = rate_deviation_chart(f).data[0]
    >>> list(bars.y), list(bars.x)
    (['USA · v2', 'UK · v1'], [2.0, 0.5])
    """
    if frame.is_empty():
        return no_data(title, "no calls below cost in this period")
    _need(frame, ["destination", "vendor", "loss"], "rate_deviation_chart")
    money = chart_currency(frame, currency)
    rows = frame.sort(["loss", "destination", "vendor"], descending=[True, False, False])
    labels = [f"{d} · {v}" for d, v in zip(rows.get_column("destination").to_list(),
                                            rows.get_column("vendor").to_list(), strict=True)]
    calls = (rows.get_column("calls_below_cost").to_list() if "calls_below_cost" in rows.columns
             else None)
    fig = go.Figure(go.Bar(x=_floats(rows, "loss"), y=labels, orientation="h", name="loss",
                           marker_color=LOSS, customdata=calls,
                           hovertemplate="%{y}<br>loss %{x:,.4f}"
                           + ("<br>%{customdata} calls" if calls else "") + "<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": money_title("loss", money),
                                          "tickformat": ",.2f"},
                      yaxis={"title": "destination · vendor", "autorange": "reversed",
                             "type": "category"},
                      height=max(300, 120 + 30 * rows.height))
    return fig


def what_if_chart(frame: pl.DataFrame, *, title: str = "Profit before and after the change",
                  currency: str | None = None, top: int = WHAT_IF_TOP) -> go.Figure:
    """Grouped bars: profit per destination with the current rates and with the candidate.

    ``frame`` is a ``what_if`` frame (destination, ..., profit_before, profit_after, ...).
    The ``top`` destinations whose profit changes most (in absolute value) get their own
    bars, ordered by the change, the biggest loss first; the others are summed in one last
    bar, ``other (k)``. The axis names ``currency`` (default: the frame's ``currency``).

    >>> f = pl.DataFrame({"destination": ["UK"], "profit_before": [3.0],
    ...                   "profit_after": [1.5]})
    >>> [(t.name, list(t.y)) for t in what_if_chart(f).data]
    [('profit before', [3.0]), ('profit after', [1.5])]
    >>> f = pl.DataFrame({"destination": ["A", "B", "C", "D"],
    ...                   "profit_before": [1.0, 1.0, 1.0, 1.0],
    ...                   "profit_after": [3.0, 0.5, 0.0, 1.25]})
    >>> before, after = what_if_chart(f, top=2).data
    >>> list(after.x), list(after.y)
    (['C', 'A', 'other (2)'], [0.0, 3.0, 1.75])
    """
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["destination", "profit_before", "profit_after"], "what_if_chart")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    money = chart_currency(frame, currency)
    rows = frame.select(
        pl.col("destination").cast(pl.String),
        pl.col("profit_before").cast(pl.Float64).alias("_before"),
        pl.col("profit_after").cast(pl.Float64).alias("_after"),
        (pl.col("profit_after") - pl.col("profit_before")).cast(pl.Float64).alias("_change"),
    ).with_columns(pl.col("_change").abs().alias("_size"))
    ranked = rows.sort(["_size", "destination"], descending=[True, False], nulls_last=True)
    shown = ranked.head(top).sort(["_change", "destination"], nulls_last=True)
    rest = ranked.slice(top)
    names = shown.get_column("destination").to_list()
    before = shown.get_column("_before").to_list()
    after = shown.get_column("_after").to_list()
    change = shown.get_column("_change").to_list()
    if rest.height:
        names.append(f"other ({rest.height})")
        before.append(float(rest.get_column("_before").fill_null(0).sum()))
        after.append(float(rest.get_column("_after").fill_null(0).sum()))
        change.append(float(rest.get_column("_change").fill_null(0).sum()))
    fig = go.Figure([
        go.Bar(x=names, y=before, name="profit before", marker_color=NEUTRAL,
               customdata=change,
               hovertemplate="%{x}<br>before %{y:,.2f}<br>change %{customdata:+,.2f}"
                             "<extra></extra>"),
        go.Bar(x=names, y=after, name="profit after", marker_color=PROFIT, customdata=change,
               hovertemplate="%{x}<br>after %{y:,.2f}<br>change %{customdata:+,.2f}"
                             "<extra></extra>"),
    ])
    fig.update_layout(title=title, barmode="group",
                      xaxis={"title": "destination (by change in profit)", "type": "category"},
                      yaxis={"title": money_title("profit", money), "tickformat": ",.2f"})
    return fig


# -- quality -------------------------------------------------------------------------------

def _quality_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Per bucket: attempts, answered, ASR and ACD over all keys (ratios of sums)."""
    return (frame.group_by("bucket")
            .agg(pl.col("attempts").sum(), pl.col("answered").sum(),
                 (pl.col("acd_s").fill_null(0) * pl.col("answered")).sum().alias("_seconds"))
            .with_columns(
                (pl.col("answered") / pl.when(pl.col("attempts") > 0).then(pl.col("attempts"))
                 ).alias("asr"),
                (pl.col("_seconds") / pl.when(pl.col("answered") > 0).then(pl.col("answered"))
                 ).alias("acd_s"))
            .drop("_seconds").sort("bucket"))


def asr_acd_timeseries(frame: pl.DataFrame, *, key: str | None = None, split: bool = False,
                       title: str | None = None, synthetic: Iterable[Any] | None = None
                       ) -> go.Figure:
    """Attempts as bars, ASR (%) and ACD (s) as lines on their own axes, per time bucket.

    ``frame`` is a ``traffic_quality`` frame (bucket, <by>, attempts, answered, asr, acd_s,
    ...). ``key`` keeps one value of the <by> column (one vendor, say). By default the keys
    are added up per bucket (ASR = answered / attempts, ACD weighted by answered calls); with
    ``split`` each key gets its own bars and lines.

    Buckets holding generated CDRs (``synthetic``: see :func:`synthetic_buckets`, or the
    frame's own ``synthetic`` column) are shaded, their attempt bars hatched, and the legend
    says :data:`SYNTHETIC_LABEL`: a jump in ACD at the edge of generated history is the data
    changing, not the vendor. A single bucket is drawn as a narrow bar (explicit ``width``)
    with labelled markers, not one bar across the whole chart.

    >>> from datetime import datetime
    >>> f = pl.DataFrame({"bucket": [datetime(2026, 11, 2)] * 2, "vendor": ["a", "b"],
    ...                   "attempts": [4, 6], "answered": [2, 3], "asr": [0.5, 0.5],
    ...                   "acd_s": [30.0, 60.0]})
    >>> fig = asr_acd_timeseries(f)
    >>> [(t.name, list(t.y)) for t in fig.data]
    [('attempts', [10]), ('ASR', [50.0]), ('ACD', [48.0])]
    """
    group = _key_column(frame, {"bucket", "attempts", "answered", "asr", "acd_s", "pdd_ms",
                                "short_calls", "short_ratio"}, ("vendor", "customer",
                                                                "destination"))
    title = title or ("ASR, ACD and attempts" + (f": {group} {key}" if key else ""))
    if key is not None:
        frame = frame.filter(pl.col(group).cast(pl.String) == key)
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["bucket", "attempts", "answered", "acd_s"], "asr_acd_timeseries")
    if split:
        names = sorted({str(v) for v in frame.get_column(group).to_list()})
        series = [(name, _quality_totals(frame.filter(pl.col(group).cast(pl.String) == name)))
                  for name in names]
    else:
        series = [("", _quality_totals(frame))]
    buckets = sorted(set(frame.get_column("bucket").to_list()))
    order = {b: i for i, b in enumerate(buckets)}
    marks = synthetic_marks(buckets, [*(synthetic or ()),
                                       *frame_synthetic(frame, "bucket")])
    single = len(buckets) == 1
    fig = go.Figure()
    for name, part in series:
        suffix = f" {name}" if name else ""
        own = part.get_column("bucket").to_list()
        x = [_day_label(b) for b in own]
        hatch = ["/" if marks[order[b]] else "" for b in own]
        fig.add_trace(go.Bar(x=x, y=part.get_column("attempts").to_list(),
                             name="attempts" + suffix, yaxis="y", opacity=0.45,
                             width=[0.2] * len(x) if single else None,
                             marker={"color": NEUTRAL if not split else None,
                                     "pattern": {"shape": hatch, "solidity": 0.3}},
                             hovertemplate="%{x}<br>attempts %{y}<extra></extra>"))
        asr = [None if v is None else round(v * 100, 2) for v in part.get_column("asr").to_list()]
        mode = "markers+text" if single else "lines+markers"
        marker = {"size": 14} if single else None
        fig.add_trace(go.Scatter(x=x, y=asr, name="ASR" + suffix, yaxis="y2", mode=mode,
                                 marker=marker, textposition="middle right",
                                 text=[f"ASR {v:.1f}%" if v is not None else "" for v in asr]
                                 if single else None,
                                 line={"color": PROFIT} if not split else None,
                                 hovertemplate="ASR %{y:.1f}%<extra></extra>"))
        acd = [None if v is None else round(v, 1) for v in part.get_column("acd_s").to_list()]
        fig.add_trace(go.Scatter(x=x, y=acd, name="ACD" + suffix, yaxis="y3", mode=mode,
                                 marker={"size": 14, "symbol": "diamond"} if single else None,
                                 textposition="middle left",
                                 text=[f"ACD {v:.1f} s" if v is not None else "" for v in acd]
                                 if single else None,
                                 line={"color": "#e67e22", "dash": "dot"} if not split else
                                 {"dash": "dot"},
                                 hovertemplate="ACD %{y:.1f} s<extra></extra>"))
    # every bucket on the category axis in time order, so the shading's positions hold
    fig.update_xaxes(categoryorder="array",
                     categoryarray=[_day_label(b) for b in buckets])
    shade_synthetic(fig, marks)
    fig.update_layout(
        title=title, barmode="stack", hovermode="x unified",
        xaxis={"title": "time (UTC)", "type": "category", "domain": [0, 0.88]},
        yaxis={"title": "attempts", "rangemode": "tozero"},
        yaxis2={"title": "ASR %", "overlaying": "y", "side": "right", "range": [0, 100],
                "anchor": "x", "showgrid": False},
        yaxis3={"title": "ACD s", "overlaying": "y", "side": "right", "anchor": "free",
                "position": 1.0, "rangemode": "tozero", "showgrid": False},
        legend={"orientation": "h", "y": -0.2})
    return fig


# -- reconciliation ------------------------------------------------------------------------

def reconciliation_chart(frame: pl.DataFrame, *, title: str = "Reconciliation against the "
                         "vendor's CDRs", currency: str | None = None) -> go.Figure:
    """Calls per status (bars) and the amount difference of each matched call over time.

    ``frame`` is a ``reconcile`` frame (status, callee, our_start, their_start, ...,
    amount_diff). Left: how many calls are matched, deviate, or are only on one side. Right:
    amount_diff per call with both sides, coloured by status, on an axis naming ``currency``
    (default: the frame's ``currency`` column).

    >>> from datetime import datetime
    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"status": ["matched", "deviation", "only_ours"],
    ...                   "our_start": [datetime(2026, 11, 2, 1), datetime(2026, 11, 2, 2),
    ...                                 datetime(2026, 11, 2, 3)],
    ...                   "amount_diff": [Decimal("0"), Decimal("0.25"), None]})
    >>> fig = reconciliation_chart(f)
    >>> [(t.name, list(t.y)) for t in fig.data]
    [('calls', [1, 1, 1, 0]), ('matched', [0.0]), ('deviation', [0.25])]
    """
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["status"], "reconciliation_chart")
    money = chart_currency(frame, currency)
    statuses = list(STATUS_COLOURS)
    counts = dict(frame.get_column("status").value_counts().iter_rows())
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7],
                        subplot_titles=("calls per status", "amount difference per call"))
    fig.add_trace(go.Bar(x=statuses, y=[int(counts.get(s, 0)) for s in statuses], name="calls",
                         marker_color=[STATUS_COLOURS[s] for s in statuses], showlegend=False,
                         hovertemplate="%{x}: %{y} calls<extra></extra>"), row=1, col=1)
    when = next((c for c in ("our_start", "their_start") if c in frame.columns), None)
    if "amount_diff" in frame.columns and when is not None:
        both = frame.filter(pl.col("amount_diff").is_not_null())
        if "their_start" in frame.columns and when == "our_start":
            both = both.with_columns(pl.coalesce("our_start", "their_start").alias("our_start"))
        for status in statuses:
            part = both.filter(pl.col("status") == status).sort(when)
            if part.is_empty():
                continue
            text = part.get_column("callee").to_list() if "callee" in part.columns else None
            fig.add_trace(go.Scatter(
                x=part.get_column(when).to_list(), y=_floats(part, "amount_diff"), text=text,
                mode="markers", name=status, marker={"color": STATUS_COLOURS[status]},
                hovertemplate="%{text}<br>%{x}<br>difference %{y:,.4f}<extra></extra>"),
                row=1, col=2)
    fig.update_yaxes(title_text="calls", row=1, col=1)
    fig.update_yaxes(title_text=money_title("amount difference", money), zeroline=True,
                     tickformat=",.4f", row=1, col=2)
    fig.update_xaxes(title_text="call start (UTC)", row=1, col=2)
    fig.update_layout(title=title)
    return fig
