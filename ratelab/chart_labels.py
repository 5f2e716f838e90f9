"""Labels inside the pictures, and numbers for people: the parts of :mod:`ratelab.charts` that
say what a figure or table shows rather than draw it.

- Generated data: :func:`synthetic_buckets` finds the buckets that hold synthetic CDRs
  (``switch_id = 'synthetic'``), :func:`synthetic_marks` lines them up with a chart's x
  buckets, :func:`shade_synthetic` shades them with one legend entry, :data:`SYNTHETIC_LABEL`.
- Currency: :func:`warehouse_currency`, :func:`chart_currency` (a chart never adds unlike
  money: two currencies in one frame are refused).
- Tables meant for people: :func:`format_amount`, :func:`people_table`, :func:`table_html`
  (separators and 2-4 decimals; the frames keep the exact values).

>>> format_amount(1234.5)
'1,234.50'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import plotly.graph_objects as go
import polars as pl

from ratelab.report_page import RATIO_COLUMNS, TABLE_STYLE

__all__ = ["EMPTY_COLOUR", "EMPTY_LABEL", "SYNTHETIC_FILL", "SYNTHETIC_LABEL", "SYNTHETIC_LINE",
           "chart_currency", "format_amount", "frame_synthetic", "money_title", "people_table",
           "shade_synthetic", "synthetic_buckets", "synthetic_marks", "table_html",
           "warehouse_currency"]

#: The legend entry of the shading over buckets that hold generated CDRs.
SYNTHETIC_LABEL = "generated (synthetic) data"
#: Purple, well away from the red-white-blue money scale and the traces' colours.
SYNTHETIC_FILL = "rgba(142, 68, 173, 0.16)"
SYNTHETIC_LINE = "rgba(142, 68, 173, 0.85)"
#: The legend note of heatmap cells without calls (drawn grey, not as a zero).
EMPTY_LABEL = "no calls (empty cell)"
EMPTY_COLOUR = "#9e9e9e"

# -- labels: synthetic buckets, currency, numbers for people -------------------------------

def synthetic_buckets(wh: Any, start: Any, end: Any, *, grain: str = "day"
                      ) -> list[date] | list[datetime]:
    """The UTC days (``grain="day"``: ``date``) or hours (``"hour"``: ``datetime``) in
    [start, end) that hold generated CDRs (``switch_id = 'synthetic'``), for ``synthetic=``.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=10)
    >>> synthetic_buckets(wh, "2026-11-01", "2026-11-04")
    [datetime.date(2026, 11, 2)]
    >>> synthetic_buckets(wh, "2026-11-03", "2026-11-04")
    []
    """
    from ratelab.reports.common import period

    if grain not in ("day", "hour"):
        raise ValueError(f"grain must be day or hour, got {grain!r}")
    since, until = period(start, end)
    frame = wh.sql(f"""SELECT DISTINCT date_trunc('{grain}', start_ts) AS b FROM cdrs
                       WHERE switch_id = 'synthetic' AND start_ts >= $since
                         AND start_ts < $until ORDER BY b""", {"since": since, "until": until})
    buckets = frame["b"].to_list()
    if grain == "day":
        return [b.date() if isinstance(b, datetime) else b for b in buckets]
    return [b if isinstance(b, datetime) else datetime(b.year, b.month, b.day) for b in buckets]


def warehouse_currency(wh: Any) -> str | None:
    """The warehouse's base currency: ``wh.base_currency`` (attribute or method) when the
    warehouse has one, else the one currency of its rate tables; None when they mix.

    >>> from ratelab.examples import sample_warehouse
    >>> warehouse_currency(sample_warehouse(cdrs=1))
    'USD'
    """
    base = getattr(wh, "base_currency", None)
    if callable(base):
        base = base()
    if isinstance(base, str) and base:
        return base
    found = wh.sql("SELECT DISTINCT currency FROM rate_tables ORDER BY currency")
    values = [v for v in found["currency"].to_list() if v]
    return values[0] if len(values) == 1 else None


def chart_currency(frame: pl.DataFrame, currency: str | None = None) -> str | None:
    """The currency a chart's money axis names: ``currency`` when given, else the frame's
    ``currency`` column when it holds one (``(unrated)`` ignored), else None. A frame with
    several currencies is refused unless ``currency`` names the one it was converted to.

    >>> chart_currency(pl.DataFrame({"currency": ["EUR", "EUR"]}))
    'EUR'
    >>> chart_currency(pl.DataFrame({"revenue": [1]})) is None
    True
    >>> chart_currency(pl.DataFrame({"currency": ["EUR", "USD"]}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the frame holds amounts in EUR, USD: a chart adds no unlike money; ...
    """
    if currency:
        return currency
    if "currency" not in frame.columns:
        return None
    values = sorted({str(v) for v in frame.get_column("currency").to_list()
                     if v is not None and v != "(unrated)"})
    if len(values) > 1:
        raise ValueError(f"the frame holds amounts in {', '.join(values)}: a chart adds no "
                         "unlike money; filter to one currency or convert first")
    return values[0] if values else None


def money_title(name: str, currency: str | None) -> str:
    """``profit (USD)``; just ``profit`` when the currency is unknown.

    >>> money_title("profit", "USD"), money_title("profit", None)
    ('profit (USD)', 'profit')
    """
    return f"{name} ({currency})" if currency else name


def format_amount(value: Any, *, places: tuple[int, int] = (2, 4)) -> str:
    """A money amount for people: thousands separators, at least ``places[0]`` and at most
    ``places[1]`` decimals (rounded half up; trailing zeros beyond the minimum dropped).
    The frames and exports keep the exact value.

    >>> format_amount(Decimal("1234567.5")), format_amount(Decimal("11.360400"))
    ('1,234,567.50', '11.3604')
    >>> format_amount(Decimal("-0.008333")), format_amount(None)
    ('-0.0083', '')
    """
    if value is None:
        return ""
    low, high = places
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-high), rounding=ROUND_HALF_UP)
    text = f"{amount:,.{high}f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0")
    decimals = decimals + "0" * (low - len(decimals))
    return f"{whole}.{decimals}" if decimals else whole


#: Columns that are per-minute prices: shown with up to 6 decimals (a rate table's precision).
_RATE_COLUMNS = ("rate", "_rate", "deviation")
_RATIO_COLUMNS = RATIO_COLUMNS  # one list: the report page's


def people_table(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every number as text for people: money (Decimal) with thousands
    separators and 2-4 decimals (rates per minute, columns named ``*rate``, up to 6), minutes
    and seconds at their own scale and counts with separators, ratios as percentages. For
    display only: keep the frame for sums and exports.

    >>> f = pl.DataFrame({"destination": ["USA"], "calls": [1779], "margin": [0.2683],
    ...                   "revenue": [Decimal("7015.527000")],
    ...                   "vendor_rate": [Decimal("0.008267")]})
    >>> people_table(f).row(0)
    ('USA', '1,779', '26.8%', '7,015.527', '0.008267')
    """
    columns = []
    for name, dtype in frame.schema.items():
        values = frame.get_column(name).to_list()
        if isinstance(dtype, pl.Decimal):
            is_rate = name.endswith(_RATE_COLUMNS)
            scale = dtype.scale if dtype.scale is not None else 6
            if is_rate:
                texts = [format_amount(v, places=(4, max(4, scale))) for v in values]
            elif "minutes" in name or name.endswith("_s"):  # minutes, seconds: as stored
                texts = [format_amount(v, places=(scale, scale)) for v in values]
            else:
                texts = [format_amount(v) for v in values]
        elif dtype.is_integer():
            texts = ["" if v is None else f"{v:,}" for v in values]
        elif dtype.is_float():
            fmt = ".1%" if name in _RATIO_COLUMNS else ",.1f"
            texts = ["" if v is None else format(v, fmt) for v in values]
        else:
            columns.append(frame.get_column(name))
            continue
        columns.append(pl.Series(name, texts, dtype=pl.String))
    return pl.DataFrame(columns)


# The report page's table style: the tables look the same on a page and in a notebook.


def table_html(frame: pl.DataFrame, *, rows: int = 50, empty: str = "no rows") -> str:
    """A frame as an HTML table for people: :func:`people_table`'s text, numbers
    right-aligned, every column kept (the table scrolls sideways), the first ``rows`` rows
    and a line saying how many more there are; ``empty`` for no rows.

    >>> from decimal import Decimal
    >>> table = table_html(pl.DataFrame({"vendor": ["a<b"], "profit": [Decimal("-1234.5")]}))
    >>> table.split("<tbody>")[1]
    '<tr><td>a&lt;b</td><td class="n">-1,234.50</td></tr></tbody></table></div>'
    >>> table_html(pl.DataFrame({"a": [1, 2, 3]}), rows=2).endswith("<p>first 2 of 3 rows</p>")
    True
    """
    from html import escape

    if frame.height == 0:
        return f"<p>{escape(empty)}</p>"
    shown = frame.head(rows)
    numeric = [dtype.is_numeric() for dtype in shown.schema.values()]
    texts = people_table(shown)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in texts.iter_rows():
        cells = []
        for value, number in zip(row, numeric, strict=True):
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif isinstance(value, datetime):
                text = f"{value:%Y-%m-%d %H:%M}" + (f":{value:%S}" if value.second else "")
            else:
                text = "" if value is None else str(value)
            cells.append(f'<td class="n">{escape(text)}</td>' if number
                         else f"<td>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>first {rows} of {frame.height} rows</p>" if frame.height > rows else ""
    return (f"{TABLE_STYLE}<div style=\"overflow-x:auto\"><table class=\"ratelab\"><thead>"
            f"<tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{more}")


def _as_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


def synthetic_marks(buckets: Sequence[Any], synthetic: Iterable[Any] | None) -> list[bool]:
    """For each x bucket, whether it holds generated CDRs: a ``date`` in ``synthetic`` marks
    every bucket on that day, a ``datetime`` the bucket starting then.

    >>> synthetic_marks([datetime(2026, 11, 1, 23), datetime(2026, 11, 2, 0),
    ...                  datetime(2026, 11, 2, 1)], [date(2026, 11, 2)])
    [False, True, True]
    >>> synthetic_marks([date(2026, 11, 1), date(2026, 11, 2)], [datetime(2026, 11, 1)])
    [True, False]
    """
    days: set[date] = set()
    moments: set[datetime] = set()
    for value in synthetic or ():
        if isinstance(value, datetime):
            moments.add(value)
        elif isinstance(value, date):
            days.add(value)
        elif isinstance(value, str) and len(value) > 10:
            moments.add(datetime.fromisoformat(value))
        elif isinstance(value, str):
            days.add(date.fromisoformat(value))
    marks = []
    for bucket in buckets:
        moment = _as_moment(bucket)
        marks.append(moment is not None and (moment in moments or moment.date() in days))
    return marks


def frame_synthetic(frame: pl.DataFrame, column: str) -> list[Any]:
    """The ``column`` values of rows flagged ``synthetic`` (a frame that says so itself).

    >>> frame_synthetic(pl.DataFrame({"day": [1, 2, 2], "synthetic": [False, True, True]}),
    ...                 "day")
    [2]
    """
    if "synthetic" not in frame.columns or column not in frame.columns:
        return []
    flagged = frame.filter(pl.col("synthetic").fill_null(False))
    return sorted(set(flagged.get_column(column).to_list()))


def _runs(marks: Sequence[bool]) -> list[tuple[int, int]]:
    """Index ranges (first, last) of consecutive True marks."""
    runs: list[tuple[int, int]] = []
    for index, marked in enumerate(marks):
        if not marked:
            continue
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def shade_synthetic(fig: go.Figure, marks: Sequence[bool], *, above: bool = False) -> int:
    """Shade each run of marked buckets on a category x axis (positions 0, 1, ...) and add
    one legend entry, :data:`SYNTHETIC_LABEL`. Returns the number of shaded spans.

    ``above`` draws over the traces (a heatmap hides anything below it): a light fill with a
    dotted border, so the cell colours stay readable.
    """
    spans = _runs(marks)
    for number, (first, last) in enumerate(spans):
        fig.add_shape(
            type="rect", xref="x", yref="paper", x0=first - 0.5, x1=last + 0.5, y0=0, y1=1,
            fillcolor=SYNTHETIC_FILL if not above else "rgba(142, 68, 173, 0.10)",
            line={"color": SYNTHETIC_LINE, "width": 2 if above else 1, "dash": "dot"},
            layer="above" if above else "below", name=SYNTHETIC_LABEL,
            legendgroup="synthetic", showlegend=number == 0,
            label={"text": "generated", "textposition": "top center",
                   "font": {"size": 10, "color": SYNTHETIC_LINE}})
    if spans:
        fig.update_layout(showlegend=True)
    return len(spans)
