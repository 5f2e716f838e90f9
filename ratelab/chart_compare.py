"""Charts of a period comparison (:func:`ratelab.reports.compare`), re-exported by
:mod:`ratelab.charts`: the profit of period a, through the volume, mix and price effects, to
the profit of period b (:func:`compare_waterfall`), and the same split per key
(:func:`compare_bars`).

As in :mod:`ratelab.charts`, money arrives as Decimal and is drawn as float; the axis names
the currency (the frame's ``currency`` column, or ``currency=``); a period holding generated
CDRs (the frame's ``synthetic_a`` / ``synthetic_b``) is shaded, :data:`SYNTHETIC_LABEL` in the
legend (``ratelab.charts.SYNTHETIC_LABEL``).

>>> from decimal import Decimal
>>> import polars as pl
>>> f = pl.DataFrame({"vendor": ["v1"], "profit_a": [Decimal("2")], "profit_b": [Decimal("3")],
...                   "volume_effect": [Decimal("0.5")], "mix_effect": [Decimal("0")],
...                   "price_effect": [Decimal("0.5")], "currency": ["USD"]})
>>> list(compare_waterfall(f).data[0].y)
[2.0, 0.5, 0.0, 0.5, 3.0]
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
import polars as pl

from ratelab.chart_labels import chart_currency, format_amount, money_title, shade_synthetic

__all__ = ["COMPARE_TOP", "EFFECT_COLOURS", "compare_bars", "compare_headline",
           "compare_waterfall"]

#: At most this many keys in compare_bars; the rest are summed in one "other (k)" bar.
COMPARE_TOP = 15
#: One colour per effect, away from the synthetic shading's purple.
EFFECT_COLOURS = {"volume": "#2471a3", "mix": "#e67e22", "price": "#16a085"}
_EFFECTS = ("volume_effect", "mix_effect", "price_effect")
# Every column of a compare frame that is not a key (the keys are what is left).
_MEASURES = frozenset({
    *(f"{m}_{side}" for m in ("calls", "answered", "minutes", "revenue", "cost", "profit",
                              "asr", "margin", "synthetic") for side in "ab"),
    "revenue_change", "cost_change", "profit_change", "minutes_change", "asr_change",
    *_EFFECTS, "currency"})

def _total(frame: pl.DataFrame, column: str) -> Decimal:
    """The exact sum of a money column (0 for no rows)."""
    return sum((v for v in frame.get_column(column).to_list() if v is not None), Decimal(0))


def _any(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns and bool(frame.get_column(column).fill_null(False).any())


def compare_headline(totals: pl.DataFrame,
                     periods: tuple[str, str] = ("period a", "period b")) -> pl.DataFrame:
    """The totals of a comparison as a small table for people: one row per measure (calls,
    answered, minutes, revenue, cost, profit, ASR, margin), a column per period and the
    change, then the profit change explained (volume, mix, price). Text, for display: the
    exact values stay in ``totals`` (:func:`~ratelab.reports.compare_totals`).

    >>> from decimal import Decimal as D
    >>> t = pl.DataFrame({"calls_a": [10], "calls_b": [12], "profit_a": [D("1.5")],
    ...                   "profit_b": [D("1.25")], "asr_a": [0.5], "asr_b": [0.6]})
    >>> compare_headline(t).rows()
    [('calls', '10', '12', '+2'), ('profit', '1.50', '1.25', '-0.25'),
     ('ASR', '50.0%', '60.0%', '+10.0 pts')]
    """
    row: dict[str, Any] = totals.row(0, named=True) if totals.height else {}
    lines: list[tuple[str, str, str, str]] = []
    for measure in ("calls", "answered", "minutes", "revenue", "cost", "profit", "asr",
                    "margin"):
        if f"{measure}_a" not in row:
            continue
        a, b = row[f"{measure}_a"], row[f"{measure}_b"]
        shown = "ASR" if measure == "asr" else measure
        if measure in ("asr", "margin"):
            change = "" if a is None or b is None else f"{(b - a) * 100:+.1f} pts"
            lines.append((shown, "" if a is None else f"{a:.1%}",
                          "" if b is None else f"{b:.1%}", change))
        elif isinstance(a, int):
            lines.append((shown, f"{a:,}", f"{b:,}", f"{b - a:+,}"))
        else:
            places = (1, 1) if measure == "minutes" else (2, 4)
            change = format_amount(b - a, places=places)
            lines.append((shown, format_amount(a, places=places),
                          format_amount(b, places=places),
                          change if change.startswith("-") else f"+{change}"))
    for effect in _EFFECTS:
        if effect in row:
            amount = format_amount(row[effect])
            lines.append((f"profit change: {effect.removesuffix('_effect')}", "", "",
                          amount if amount.startswith("-") else f"+{amount}"))
    return pl.DataFrame(lines, schema=["measure", periods[0], periods[1], "change"],
                        orient="row")


def compare_waterfall(frame: pl.DataFrame, *, title: str = "What changed the profit",
                      currency: str | None = None,
                      periods: tuple[str, str] = ("period a", "period b")) -> go.Figure:
    """Profit in period a, then the volume, mix and price effects, to the profit in period b.

    ``frame`` is a :func:`~ratelab.reports.compare` frame (or its
    :func:`~ratelab.reports.compare_totals`): the bars are the sums of profit_a,
    volume_effect, mix_effect, price_effect and profit_b, which add up exactly. ``periods``
    names the two ends (``"profit 2026-11-09..16"``, say). A profit bar is shaded when its
    period holds generated CDRs (``synthetic_a`` / ``synthetic_b``).

    >>> from decimal import Decimal
    >>> f = pl.DataFrame({"profit_a": [Decimal("5"), Decimal("1")],
    ...                   "volume_effect": [Decimal("1"), Decimal("0")],
    ...                   "mix_effect": [Decimal("-2"), Decimal("-1")],
    ...                   "price_effect": [Decimal("0.5"), Decimal("0")],
    ...                   "profit_b": [Decimal("4.5"), Decimal("0")],
    ...                   "synthetic_a": [True, False], "synthetic_b": [False, False]})
    >>> fig = compare_waterfall(f, currency="EUR")
    >>> list(fig.data[0].x)
    ['profit period a', 'volume', 'mix', 'price', 'profit period b']
    >>> list(fig.data[0].y), list(fig.data[0].measure)[:2]
    ([6.0, 1.0, -3.0, 0.5, 4.5], ['absolute', 'relative'])
    >>> fig.layout.yaxis.title.text, [s.x0 for s in fig.layout.shapes]
    ('profit (EUR)', [-0.5])
    """
    from ratelab.charts import LOSS, NEUTRAL, PROFIT, _need, no_data

    if frame.is_empty():
        return no_data(title)
    _need(frame, ["profit_a", *_EFFECTS, "profit_b"], "compare_waterfall")
    money = chart_currency(frame, currency)
    values = [_total(frame, c) for c in ("profit_a", *_EFFECTS, "profit_b")]
    labels = [f"profit {periods[0]}", "volume", "mix", "price", f"profit {periods[1]}"]
    fig = go.Figure(go.Waterfall(
        x=labels, y=[float(v) for v in values],
        measure=["absolute", "relative", "relative", "relative", "total"], name="waterfall",
        showlegend=False,
        text=[f"{v:+,.2f}" if 0 < i < 4 else f"{v:,.2f}" for i, v in enumerate(values)],
        textposition="outside",
        increasing={"marker": {"color": PROFIT}}, decreasing={"marker": {"color": LOSS}},
        totals={"marker": {"color": PROFIT if values[-1] >= 0 else LOSS}},
        connector={"line": {"color": NEUTRAL}},
        hovertemplate="%{x}<br>%{y:,.2f}<extra></extra>"))
    shade_synthetic(fig, [_any(frame, "synthetic_a"), False, False, False,
                          _any(frame, "synthetic_b")])
    fig.update_layout(title=title, xaxis={"type": "category"},
                      yaxis={"title": money_title("profit", money), "tickformat": ",.2f"},
                      showlegend=bool(fig.layout.shapes))
    return fig


def _keys(frame: pl.DataFrame) -> list[str]:
    keys = [c for c in frame.columns if c not in _MEASURES]
    if not keys:
        raise ValueError(f"compare_bars needs the key columns of a compare frame (destination, "
                         f"customer, vendor); the frame has {', '.join(frame.columns)}")
    return keys


def compare_bars(frame: pl.DataFrame, *, top: int = COMPARE_TOP, title: str | None = None,
                 currency: str | None = None) -> go.Figure:
    """Profit change per key, split into its volume, mix and price effects (stacked bars),
    with the net change as a marker.

    ``frame`` is a :func:`~ratelab.reports.compare` frame. The ``top`` keys whose profit
    changes most (in absolute value) get their own bars, ordered by the change, the biggest
    loss first; the rest are summed in one last bar, ``other (k)``. Several keys are joined
    with `` · ``. A key holding generated CDRs in either period is shaded.

    >>> from decimal import Decimal as D
    >>> f = pl.DataFrame({"destination": ["A", "B", "C"],
    ...                   "profit_change": [D("2"), D("-3"), D("0.5")],
    ...                   "volume_effect": [D("1"), D("-1"), D("0")],
    ...                   "mix_effect": [D("0"), D("-2"), D("0.5")],
    ...                   "price_effect": [D("1"), D("0"), D("0")]})
    >>> fig = compare_bars(f, top=2)
    >>> [(t.name, list(t.x), list(t.y)) for t in fig.data][0]
    ('volume', ['B', 'A', 'other (1)'], [-1.0, 1.0, 0.0])
    >>> list(fig.data[3].y)
    [-3.0, 2.0, 0.5]
    """
    from ratelab.charts import _need, no_data

    keys = _keys(frame)
    title = title or f"Profit change by {' and '.join(keys)}: volume, mix and price"
    if frame.is_empty():
        return no_data(title)
    _need(frame, ["profit_change", *_EFFECTS], "compare_bars")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    money = chart_currency(frame, currency)
    label = pl.concat_str([pl.col(k).cast(pl.String).fill_null("") for k in keys],
                          separator=" · ") if len(keys) > 1 else pl.col(keys[0]).cast(pl.String)
    flagged = [c for c in ("synthetic_a", "synthetic_b") if c in frame.columns]
    rows = frame.select(
        label.alias("_label"), "profit_change", *_EFFECTS,
        (pl.any_horizontal(*[pl.col(c).fill_null(False) for c in flagged]) if flagged
         else pl.lit(False)).alias("_synthetic"),
    ).with_columns(pl.col("profit_change").abs().alias("_size"))
    ranked = rows.sort(["_size", "_label"], descending=[True, False], nulls_last=True)
    shown = ranked.head(top).sort(["profit_change", "_label"], nulls_last=True)
    rest = ranked.slice(top)
    names: list[Any] = shown.get_column("_label").to_list()
    series = {c: [float(v) for v in shown.get_column(c).to_list()]
              for c in ("profit_change", *_EFFECTS)}
    marks = [bool(v) for v in shown.get_column("_synthetic").to_list()]
    if rest.height:
        names.append(f"other ({rest.height})")
        for column, values in series.items():
            values.append(float(_total(rest, column)))
        marks.append(_any(rest, "_synthetic"))
    fig = go.Figure()
    for column in _EFFECTS:
        name = column.removesuffix("_effect")
        fig.add_trace(go.Bar(x=names, y=series[column], name=name,
                             marker_color=EFFECT_COLOURS[name],
                             hovertemplate=f"%{{x}}<br>{name} %{{y:+,.2f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=names, y=series["profit_change"], mode="markers",
                             name="profit change", marker={"symbol": "diamond", "size": 11,
                                                           "color": "#17202a"},
                             hovertemplate="%{x}<br>profit change %{y:+,.2f}<extra></extra>"))
    shade_synthetic(fig, marks)
    fig.update_layout(title=title, barmode="relative",
                      xaxis={"title": f"{' · '.join(keys)} (by change in profit)",
                             "type": "category"},
                      yaxis={"title": money_title("profit change", money),
                             "tickformat": ",.2f"},
                      legend={"orientation": "h", "y": -0.25})
    return fig
