"""What the explorers share: options from the warehouse, HTML tables, figures in an Output.

Widgets stay thin: every explorer computes a frame with a pure function, turns it into a table
(:func:`html_table`) and a Plotly figure, and shows the figure with :func:`show_figure`, which
sets the ``Output`` widget's outputs directly. That works from a background thread (the switch
monitor) and without a kernel (the tests), where ``with output:`` would not.

>>> import polars as pl
>>> '<td class="n">1</td>' in html_table(pl.DataFrame({"a": [1]}))
True
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime, timedelta
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from ratelab.charts import no_data
from ratelab.report_page import html_table as report_table

__all__ = ["ALL", "NO_DATA", "date_range", "distinct", "html_table", "no_data_figure",
           "show_figure", "to_float"]

NO_DATA = "no calls in this period"
ALL = "(all)"


def distinct(wh: Any, column: str, *, where: str = "TRUE") -> list[str]:
    """Sorted distinct non-null values of ``column`` in the rated table (dropdown options).

    >>> from ratelab.examples import sample_warehouse
    >>> distinct(sample_warehouse(cdrs=20, rated=True), "vendor")
    ['carrier_x']
    """
    if column not in ("customer", "vendor", "destination"):
        raise ValueError(f"column must be customer, vendor or destination, got {column!r}")
    frame = wh.sql(f"SELECT DISTINCT {column} AS v FROM rated "
                   f"WHERE {column} IS NOT NULL AND {where} ORDER BY v")
    values: list[str] = frame["v"].to_list()  # wh is Any here
    return values


def date_range(wh: Any) -> tuple[date, date]:
    """The first day with rated calls and the day after the last one (defaults for pickers);
    today and tomorrow when nothing is rated.

    >>> from ratelab.examples import sample_warehouse
    >>> date_range(sample_warehouse(cdrs=20, rated=True))
    (datetime.date(2026, 11, 2), datetime.date(2026, 11, 3))
    """
    first, last = wh.sql("SELECT min(start_ts) AS a, max(start_ts) AS b FROM rated").row(0)
    if first is None:
        today = datetime.now().date()
        return today, today + timedelta(days=1)
    return first.date(), last.date() + timedelta(days=1)


def to_float(values: list[Any]) -> list[float | None]:
    """Decimals to floats, *for drawing only* (Plotly plots numbers; money stays Decimal).

    >>> from decimal import Decimal
    >>> to_float([Decimal("0.5"), None])
    [0.5, None]
    """
    return [None if v is None else float(v) for v in values]


def html_table(frame: pl.DataFrame, *, max_rows: int = 200, empty: str = NO_DATA) -> str:
    """A frame as an HTML table, formatted as in the reports; ``empty`` for no rows.

    >>> html_table(pl.DataFrame({"a": []}))
    '<p>no calls in this period</p>'
    """
    if frame.height == 0:
        return f"<p>{html.escape(empty)}</p>"
    more = (f"<p>{frame.height - max_rows} more rows not shown</p>"
            if frame.height > max_rows else "")
    return report_table(frame, rows=max_rows) + more


def no_data_figure(title: str, message: str = NO_DATA) -> go.Figure:
    """An empty figure saying ``message`` (the reports' :func:`ratelab.charts.no_data`).

    >>> no_data_figure("t").layout.annotations[0].text
    'no calls in this period'
    """
    return no_data(title, message)


def show_figure(output: widgets.Output, fig: go.Figure) -> None:
    """Replace what ``output`` shows with ``fig`` (thread-safe; needs no kernel).

    >>> out = widgets.Output()
    >>> show_figure(out, no_data_figure("t"))
    >>> sorted(out.outputs[0]["data"])
    ['application/vnd.plotly.v1+json', 'text/plain']
    """
    bundle = {"application/vnd.plotly.v1+json": json.loads(fig.to_json()),
              "text/plain": f"<Figure: {fig.layout.title.text or ''}>"}
    output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
