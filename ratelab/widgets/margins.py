"""Margin explorer: revenue, cost, profit and margin of the rated calls, filtered and grouped.

The pure part is :func:`margin_view` (a frame) and :func:`margin_figure` (a Plotly figure);
:class:`MarginExplorer` is a thin ipywidgets layer that re-renders both when a filter changes.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=30, rated=True)
>>> view = margin_view(wh, start="2026-11-02", end="2026-11-03", by="customer")
>>> view.select("customer", "calls").rows()
[('acme', 30)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from ratelab.charts import shade_synthetic, warehouse_currency
from ratelab.reports.common import check_choice, check_party, period
from ratelab.reports.margins import GROUPINGS, margin_table
from ratelab.widgets.common import (
    ALL,
    NO_DATA,
    date_range,
    distinct,
    html_table,
    no_data_figure,
    show_figure,
    synthetic_note,
    to_float,
)

__all__ = ["BY", "MarginExplorer", "margin_figure", "margin_view", "synthetic_calls"]

#: What the explorer can group by (the groupings of :func:`ratelab.reports.margins.margin_table`).
BY = GROUPINGS


def margin_view(
    wh: Any,
    *,
    start: datetime | date | str,
    end: datetime | date | str,
    customer: str | None = None,
    vendor: str | None = None,
    destination: str | None = None,
    by: str = "destination",
) -> pl.DataFrame:
    """Calls, answered, minutes, revenue, cost, profit, margin, markup and flagged calls of the
    rated calls starting in [start, end) (UTC), optionally of one customer, vendor and
    destination, grouped ``by`` destination, customer, vendor or day.

    A view over :func:`ratelab.reports.margins.margin_table`, the one margin query (that of
    :func:`ratelab.reports.margin_by` and ``Warehouse.margin_summary``): the same numbers, its
    frame without the ``synthetic`` column, over a checked period and known parties.

    Money columns are Decimal(18, 6); minutes are customer billed minutes, Decimal(18, 1)
    rounded half up; margin and markup are Float64 ratios of the sums (null when revenue, or
    cost, is 0). Rows are sorted by profit, highest first (by day: by day). A period without
    calls gives an empty frame with these columns; an unknown customer or vendor raises
    ``ReportError`` naming the known ones.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=40, rated=True)
    >>> view = margin_view(wh, start="2026-11-02", end="2026-11-03", destination="USA")
    >>> view["destination"].to_list(), view["profit"][0] == view["revenue"][0] - view["cost"][0]
    (['USA'], True)
    >>> margin_view(wh, start="2026-12-01", end="2026-12-02").height
    0
    """
    return _margin_frame(wh, start=start, end=end, customer=customer, vendor=vendor,
                         destination=destination, by=by).drop("synthetic")


def _margin_frame(wh: Any, *, start: datetime | date | str, end: datetime | date | str,
                  customer: str | None, vendor: str | None, destination: str | None,
                  by: str) -> pl.DataFrame:
    """margin_table's frame over a checked period and known parties, ``synthetic`` kept."""
    check_choice("by", by, BY)
    since, until = period(start, end)
    check_party(wh, "customer", customer)
    check_party(wh, "vendor", vendor)
    return margin_table(wh, by, start=since, end=until, customer=customer, vendor=vendor,
                        destination=destination)


def synthetic_calls(wh: Any, *, start: datetime | date | str, end: datetime | date | str,
                    customer: str | None = None, vendor: str | None = None,
                    destination: str | None = None) -> int:
    """How many rated calls in [start, end), with the explorer's filters, were generated
    (``switch_id = 'synthetic'``): what the explorer's label counts.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=12, rated=True)
    >>> synthetic_calls(wh, start="2026-11-02", end="2026-11-03")
    12
    """
    since, until = period(start, end)
    found = wh.sql(
        """SELECT count(*) AS n FROM rated
           WHERE synthetic AND start_ts >= $since AND start_ts < $until
             AND ($customer IS NULL OR customer = $customer)
             AND ($vendor IS NULL OR vendor = $vendor)
             AND ($destination IS NULL OR coalesce(destination, '(unrated)') = $destination)""",
        {"since": since, "until": until, "customer": customer, "vendor": vendor,
         "destination": destination})
    count: int = found["n"][0]
    return count


def margin_figure(frame: pl.DataFrame, *, top: int = 30, currency: str | None = None,
                  synthetic: Iterable[Any] | None = None) -> go.Figure:
    """Revenue, cost and profit bars per group of a :func:`margin_view` frame (the first
    ``top`` rows), with the margin as markers on a right-hand axis.

    The amount axis names ``currency``. Groups in ``synthetic`` (the values of the frame's
    first column whose calls include generated CDRs: days, destinations, ...; by default
    those the frame's own ``synthetic`` column flags) are shaded, with the legend entry
    ``generated (synthetic) data``.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> fig = margin_figure(margin_view(wh, start="2026-11-02", end="2026-11-03"))
    >>> [trace.name for trace in fig.data]
    ['revenue', 'cost', 'profit', 'margin']
    >>> margin_figure(margin_view(wh, start="2026-12-01", end="2026-12-02")).data
    ()
    """
    key = frame.columns[0] if frame.columns else "group"
    title = f"Margin by {key}"
    if frame.height == 0:
        return no_data_figure(title, NO_DATA)
    shown = frame.head(top)
    values = shown[key].to_list()
    labels = [str(v) for v in values]
    if synthetic is None and "synthetic" in shown.columns:
        synthetic = [v for v, s in zip(values, shown["synthetic"].to_list(), strict=True) if s]
    flagged = {str(v) for v in synthetic or ()}
    marks = [label in flagged for label in labels]
    fig = go.Figure()
    for column in ("revenue", "cost", "profit"):
        fig.add_bar(name=column, x=labels, y=to_float(shown[column].to_list()))
    fig.add_scatter(name="margin", x=labels, y=shown["margin"].to_list(), yaxis="y2",
                    mode="markers", marker={"size": 10, "symbol": "diamond"})
    fig.update_xaxes(type="category")
    shade_synthetic(fig, marks)
    amount = f"amount ({currency})" if currency else "amount"
    fig.update_layout(title=title, barmode="group",
                      yaxis={"title": amount, "tickformat": ",.2f"},
                      yaxis2={"title": "margin", "overlaying": "y", "side": "right",
                              "tickformat": ".0%"},
                      legend={"orientation": "h"})
    return fig


def _choice(value: str) -> str | None:
    return None if value == ALL else value


class MarginExplorer:
    """Dropdowns for customer, vendor, destination and grouping, two date pickers, a table and
    a chart; changing any of them re-renders. ``.widget`` is the container to display;
    ``.frame`` and ``.figure`` are what is shown (for tests and for further analysis).

    >>> from ratelab.examples import sample_warehouse
    >>> explorer = MarginExplorer(sample_warehouse(cdrs=30, rated=True))
    >>> explorer.frame["destination"].len() > 0
    True
    >>> explorer.by.value = "customer"
    >>> explorer.frame.columns[0], explorer.figure.layout.title.text
    ('customer', 'Margin by customer')
    >>> explorer.synthetic, "generated (synthetic) data" in explorer.label.value
    (30, True)
    """

    def __init__(self, wh: Any, *, start: date | None = None, end: date | None = None) -> None:
        self.wh = wh
        first, after = date_range(wh)
        self.customer = widgets.Dropdown(description="customer",
                                         options=[ALL, *distinct(wh, "customer")])
        self.vendor = widgets.Dropdown(description="vendor",
                                       options=[ALL, *distinct(wh, "vendor")])
        destinations = wh.sql("SELECT DISTINCT coalesce(destination, '(unrated)') AS v "
                              "FROM rated ORDER BY v")["v"].to_list()
        self.destination = widgets.Dropdown(description="destination",
                                            options=[ALL, *destinations])
        self.by = widgets.Dropdown(description="group by", options=list(BY),
                                   value="destination")
        self.start = widgets.DatePicker(description="from", value=start or first)
        self.end = widgets.DatePicker(description="until (excl.)", value=end or after)
        self.table = widgets.HTML()
        self.message = widgets.HTML()
        #: says "generated (synthetic) data" when the calls shown include generated CDRs
        self.label = widgets.HTML()
        self.synthetic = 0
        self.currency = warehouse_currency(wh)
        self.chart = widgets.Output()
        self.frame: pl.DataFrame = pl.DataFrame()
        self.figure: go.Figure = go.Figure()
        controls = [self.customer, self.vendor, self.destination, self.by, self.start, self.end]
        for control in controls:
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([
            widgets.HBox(controls[:3]), widgets.HBox(controls[3:]),
            self.message, self.label, self.chart, self.table])
        self.render()

    def _changed(self, _change: dict[str, Any]) -> None:
        self.render()

    def render(self) -> pl.DataFrame:
        """Recompute the frame and the figure from the current values and show them."""
        try:
            if self.start.value is None or self.end.value is None:
                raise ValueError("pick both dates")
            filters = {"customer": _choice(self.customer.value),
                       "vendor": _choice(self.vendor.value),
                       "destination": _choice(self.destination.value)}
            full = _margin_frame(self.wh, start=self.start.value, end=self.end.value,
                                 by=self.by.value, **filters)
            self.synthetic = synthetic_calls(self.wh, start=self.start.value,
                                             end=self.end.value, **filters)
        except ValueError as err:  # ReportError is a ValueError: say it, keep the widgets
            self.message.value = f"<b>{err}</b>"
            self.frame, full, self.synthetic = pl.DataFrame(), pl.DataFrame(), 0
        else:
            self.message.value = ""
            self.frame = full.drop("synthetic")
        self.label.value = synthetic_note(self.synthetic)
        self.figure = margin_figure(full, currency=self.currency)
        self.table.value = html_table(self.frame)
        show_figure(self.chart, self.figure)
        return self.frame
