"""The watch's findings for people: counts by severity and kind, a table, and per kind a chart
of the numbers behind each finding (observed against its baseline and the level that
flags). Used by the ``watch`` report notebook; the frames are those of
:func:`ratelab.watch.findings`.

>>> frame = pl.DataFrame({
...     "id": ["traffic_spike/acme/Nigeria/2026-11-02T03"], "kind": ["traffic_spike"],
...     "severity": ["critical"], "customer": ["acme"], "destination": ["Nigeria"],
...     "window_start": [datetime(2026, 11, 2, 3)], "window_end": [datetime(2026, 11, 2, 4)],
...     "summary": ["acme called Nigeria 120 times"],
...     "numbers": ['{"calls": "120", "baseline": "4.00", "threshold": "20"}'],
...     "first_seen": [datetime(2026, 11, 2, 4, 2)], "last_seen": [datetime(2026, 11, 2, 4, 2)]})
>>> by_severity_and_kind(frame).rows()
[('critical', 'traffic_spike', 1)]
>>> [trace.name for trace in findings_chart(frame, "traffic_spike").data]
['calls', 'baseline', 'flagged from']
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import plotly.graph_objects as go
import polars as pl

__all__ = [
    "CHART_NOTES",
    "CHART_SPECS",
    "by_severity_and_kind",
    "chart_note",
    "findings_chart",
    "findings_table",
    "numbers_of",
]

def _key(name: str) -> Callable[[dict[str, str]], float | None]:
    return lambda numbers: _number(numbers.get(name))


def _level(base: str, step: str, how: Callable[[Decimal, Decimal], Decimal]
           ) -> Callable[[dict[str, str]], float | None]:
    def level(numbers: dict[str, str]) -> float | None:
        try:
            return float(how(Decimal(numbers[base]), Decimal(numbers[step])))
        except (KeyError, InvalidOperation):
            return None
    return level


_Get = Callable[[dict[str, str]], float | None]
#: Per kind, the bars a chart draws (name, value) and where the detector starts to flag (the
#: threshold marker): observed against the finding's own baseline (docs/watch.md).
CHART_SPECS: dict[str, tuple[list[tuple[str, _Get]], _Get | None]] = {
    "traffic_spike": ([("calls", _key("calls")), ("baseline", _key("baseline"))],
                      _key("threshold")),
    "night_burst": ([("calls", _key("calls")), ("baseline", _key("baseline"))],
                    _key("threshold")),
    "asr_drop": ([("ASR", _key("asr")), ("baseline ASR", _key("baseline_asr"))],
                 _level("baseline_asr", "threshold", lambda b, t: b - t)),
    "acd_drop": ([("ACD s", _key("acd_s")), ("baseline ACD s", _key("baseline_acd_s"))],
                 _level("baseline_acd_s", "threshold", lambda b, t: b * (1 - t))),
    "short_calls": ([("short share", _key("short_share")),
                     ("baseline short share", _key("baseline_short_share"))],
                    _level("baseline_short_share", "threshold", lambda b, t: b + t)),
    "high_risk": ([("calls", _key("calls")), ("answered", _key("answered")),
                   ("minutes", _key("minutes"))], _key("critical_calls")),
    "new_destination": ([("calls", _key("calls")), ("answered", _key("answered")),
                         ("calls before", _key("history_calls"))], None),
    "loss_maker": ([("revenue", _key("revenue")), ("cost", _key("cost")),
                    ("profit", _key("profit"))], None),
}
_ORDER = {"critical": 0, "warning": 1, "info": 2}


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


def _number(text: str | None) -> float | None:
    # for drawing only: the findings keep the exact text
    if text is None:
        return None
    try:
        return float(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def _label(row: dict[str, object], numbers: dict[str, str]) -> str:
    # the subject as the id names it: the destination, or the listed range it called
    where = row["destination"] or numbers.get("prefix")
    who = " / ".join(str(v) for v in (row["customer"], where) if v)
    start = row["window_start"]
    when = f"{start:%m-%d %H:%M}" if isinstance(start, datetime) else str(start)
    return f"{who or '-'} {when}"


#: What each kind's chart compares, said once above it.
CHART_NOTES = {
    "high_risk": "Calls, answered calls and minutes to each listed range in the hour; the "
                 "marker is where the calls make it critical.",
    "new_destination": "Calls in the hour to a destination the customer had not called "
                       "before (none in the history).",
    "loss_maker": "Revenue, cost and profit over each trailing period, in the base currency.",
}
DEFAULT_NOTE = ("Observed in the finding's window against its baseline (its own history at "
                "the same hour of the week); the marker is where the detector flags.")


def chart_note(kind: str) -> str:
    """The sentence above a kind's chart.

    >>> chart_note("loss_maker")
    'Revenue, cost and profit over each trailing period, in the base currency.'
    """
    return CHART_NOTES.get(kind, DEFAULT_NOTE)


def findings_chart(frame: pl.DataFrame, kind: str) -> go.Figure:
    """One bar group per finding of ``kind``: what was observed beside its baseline
    (:data:`CHART_SPECS`), the level where the detector flags as a marker. A kind without a
    spec shows every number its findings carry."""
    rows = [r for r in frame.iter_rows(named=True) if r["kind"] == kind]
    numbers = [numbers_of(r["numbers"]) for r in rows]
    bars, threshold = CHART_SPECS.get(kind, ([], None))
    if not bars:
        keys = sorted({k for n in numbers for k, v in n.items() if _number(v) is not None})
        bars = [(k, _key(k)) for k in keys]
    labels = [_label(r, n) for r, n in zip(rows, numbers, strict=True)]
    colours = ["#c0392b", "#7f8c8d", "#2471a3"]
    fig = go.Figure()
    for n, (name, get) in enumerate(bars):
        fig.add_bar(name=name, x=labels, y=[get(found) for found in numbers],
                    marker_color=colours[n % len(colours)])
    if threshold is not None:
        marker = "critical from" if kind == "high_risk" else "flagged from"
        fig.add_scatter(name=marker, x=labels, y=[threshold(f) for f in numbers],
                        mode="markers", marker={"symbol": "line-ew-open", "size": 28,
                                                "line": {"width": 3}, "color": "#e67e22"})
    money = " (" + numbers[0]["currency"] + ")" if kind == "loss_maker" and numbers and \
        "currency" in numbers[0] else ""
    fig.update_layout(title=f"{kind.replace('_', ' ').capitalize()}: the numbers behind each "
                            f"finding{money}",
                      barmode="group", legend={"orientation": "h"})
    return fig
