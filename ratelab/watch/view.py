"""The watch's findings for people: counts by severity and kind, a table, and per kind a chart
of the numbers behind each finding (observed against baseline and threshold). Used by the
``watch`` report notebook; the frames are those of :func:`ratelab.watch.findings`.

>>> frame = pl.DataFrame({
...     "id": ["traffic_spike/acme/Nigeria/2026-11-02T03"], "kind": ["traffic_spike"],
...     "severity": ["critical"], "customer": ["acme"], "destination": ["Nigeria"],
...     "window_start": [datetime(2026, 11, 2, 3)], "window_end": [datetime(2026, 11, 2, 4)],
...     "summary": ["acme called Nigeria 120 times"],
...     "numbers": ['{"observed": "120", "baseline": "4.0", "threshold": "20"}'],
...     "first_seen": [datetime(2026, 11, 2, 4, 2)], "last_seen": [datetime(2026, 11, 2, 4, 2)]})
>>> by_severity_and_kind(frame).rows()
[('critical', 'traffic_spike', 1)]
>>> [trace.name for trace in findings_chart(frame, "traffic_spike").data]
['observed', 'baseline', 'threshold']
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

import plotly.graph_objects as go
import polars as pl

__all__ = ["CHART_KEYS", "by_severity_and_kind", "findings_chart", "findings_table",
           "numbers_of"]

#: The numbers a chart compares, when a finding has them: what was seen, what is usual, and
#: where the detector starts to flag.
CHART_KEYS = ("observed", "baseline", "threshold")
_ORDER = {"critical": 0, "warning": 1, "info": 2}
_COLOURS = {"observed": "#c0392b", "baseline": "#7f8c8d", "threshold": "#e67e22"}


def _rank(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("severity").replace_strict(_ORDER, default=3, return_dtype=pl.Int64)


def by_severity_and_kind(frame: pl.DataFrame) -> pl.DataFrame:
    """How many findings of each severity and kind, the most severe first."""
    if frame.is_empty():
        return pl.DataFrame(schema={"severity": pl.String, "kind": pl.String,
                                    "findings": pl.UInt32})
    return (frame.group_by("severity", "kind").agg(findings=pl.len())
            .sort(_rank(frame), "kind").select("severity", "kind", "findings"))


def findings_table(frame: pl.DataFrame) -> pl.DataFrame:
    """The findings as people read them: most severe first, then newest; the numbers as
    ``key value`` text; the id last (it is the link to the finding)."""
    if frame.is_empty():
        return frame
    numbers = [", ".join(f"{k} {v}" for k, v in numbers_of(text).items())
               for text in frame["numbers"].to_list()]
    return (frame.with_columns(numbers=pl.Series(numbers, dtype=pl.String))
            .sort(_rank(frame), pl.col("window_start"), descending=[False, True])
            .select("severity", "kind", "customer", "destination", "window_start",
                    "window_end", "summary", "numbers", "first_seen", "last_seen", "id"))


def numbers_of(text: str | None) -> dict[str, str]:
    """The numbers of a stored finding (JSON text) as a dict of exact strings.

    >>> numbers_of('{"observed": "120", "ratio": "0.412"}')
    {'observed': '120', 'ratio': '0.412'}
    """
    found = json.loads(text or "{}")
    return {str(k): str(v) for k, v in found.items()}


def _number(text: str) -> float | None:
    # for drawing only: the findings keep the exact text
    try:
        return float(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def _label(row: dict[str, object]) -> str:
    who = " / ".join(str(v) for v in (row["customer"], row["destination"]) if v)
    start = row["window_start"]
    when = f"{start:%m-%d %H:%M}" if isinstance(start, datetime) else str(start)
    return f"{who or '-'} {when}"


def findings_chart(frame: pl.DataFrame, kind: str) -> go.Figure:
    """One bar group per finding of ``kind``: what was observed beside the baseline, the
    threshold as a marker. Findings whose numbers lack these show every number they have."""
    rows = [r for r in frame.iter_rows(named=True) if r["kind"] == kind]
    numbers = [numbers_of(r["numbers"]) for r in rows]
    keys = [k for k in CHART_KEYS if any(k in n for n in numbers)]
    if not keys:  # no observed / baseline: every numeric value the findings carry
        keys = sorted({k for n in numbers for k, v in n.items() if _number(v) is not None})
    labels = [_label(r) for r in rows]
    fig = go.Figure()
    for key in keys:
        values = [_number(n[key]) if key in n else None for n in numbers]
        if key == "threshold":
            fig.add_scatter(name=key, x=labels, y=values, mode="markers",
                            marker={"symbol": "line-ew-open", "size": 28, "line": {"width": 3},
                                    "color": _COLOURS[key]})
        else:
            fig.add_bar(name=key, x=labels, y=values, marker_color=_COLOURS.get(key),
                        text=[n.get(key, "") for n in numbers], textposition="outside")
    fig.update_layout(title=f"{kind.replace('_', ' ')}: the numbers behind each finding",
                      barmode="group", legend={"orientation": "h"},
                      yaxis={"rangemode": "nonnegative"})
    return fig
