"""What the report notebooks share: the period, parameters, and a page that shows one clear
message instead of a traceback.

Every report notebook does::

    page = ReportPage()
    with page.guard():                      # a ReportError becomes one markdown message
        page.open(warehouse, start, end, tz)
        settlement = page.require(reports.settlement_summary(page.wh, page.start, page.end))
    ...
    if page.ok:                             # later cells show nothing after an error
        page.heading("Settlement", "Revenue, cost and profit per day.")
        page.table(settlement)
        page.chart(charts.waterfall(settlement))

>>> report_period("2026-11-02", "", "Europe/London")
(datetime.datetime(2026, 11, 2, 0, 0), datetime.datetime(2026, 11, 3, 0, 0))
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ratelab.money import to_decimal
from ratelab.reports.common import ReportError, moment, period

__all__ = [
    "NoCalls",
    "ReportError",
    "ReportPage",
    "decimal_param",
    "int_param",
    "report_period",
    "text_param",
    "zone_param",
]


class NoCalls(ReportError):
    """The period has no calls: the report says so instead of drawing empty charts."""

    def __init__(self, message: str = "no calls in this period") -> None:
        super().__init__(message)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo((tz or "UTC").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"unknown time zone {tz!r}: use an IANA name such as UTC or "
                          "Europe/London") from None


def report_period(start: str | None, end: str | None, tz: str = "UTC", *, default_days: int = 1,
                  today: date | None = None) -> tuple[datetime, datetime]:
    """The report period as naive UTC datetimes (start inclusive, end exclusive).

    Dates and times without an offset are read in ``tz``. Both empty: the ``default_days``
    days before today in ``tz`` (yesterday by default). Only ``start``: that day (or
    ``default_days``); only ``end``: the days before it.

    >>> report_period("", "", today=date(2026, 11, 3))
    (datetime.datetime(2026, 11, 2, 0, 0), datetime.datetime(2026, 11, 3, 0, 0))
    >>> report_period("2026-11-02", "2026-11-03", "America/New_York")[0]
    datetime.datetime(2026, 11, 2, 5, 0)
    >>> try:
    ...     report_period("2026-13-01", "")
    ... except ReportError as err:
    ...     print(err)
    start '2026-13-01' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)
    """
    zone = _zone(tz)
    span = timedelta(days=default_days)
    # moment() is the one parser (naive UTC out); the default span is counted in the zone's
    # wall time, so a day across a DST change is still midnight to midnight there.
    begin = moment(start, "start", zone) if start and start.strip() else None
    finish = moment(end, "end", zone) if end and end.strip() else None
    if begin is None and finish is None:
        midnight = today or datetime.now(zone).date()
        finish = moment(midnight, "end", zone)
    if begin is None:
        assert finish is not None
        begin = moment(_wall(finish, zone) - span, "start", zone)
    if finish is None:
        finish = moment(_wall(begin, zone) + span, "end", zone)
    return period(begin, finish)


def _wall(utc: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC to naive wall time in ``zone``."""
    return utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def text_param(value: str | None, name: str, *, required: bool = False) -> str | None:
    """A string parameter: stripped, None when empty (ReportError when ``required``).

    >>> text_param("  acme ", "customer"), text_param("", "customer")
    ('acme', None)
    """
    text = (value or "").strip()
    if not text and required:
        raise ReportError(f"the parameter {name} is required (`--param {name} VALUE`)")
    return text or None


def decimal_param(value: str | None, name: str, *, required: bool = False) -> Decimal | None:
    """A number parameter as an exact Decimal (None when empty and not ``required``).

    >>> decimal_param("1000.50", "fixed_costs")
    Decimal('1000.50')
    >>> try:
    ...     decimal_param("1,000", "fixed_costs")
    ... except ReportError as err:
    ...     print(err)
    fixed_costs '1,000' is not a number: write it like 1000 or 0.25
    """
    text = text_param(value, name, required=required)
    if text is None:
        return None
    try:
        return to_decimal(text)
    except (TypeError, ValueError):
        raise ReportError(f"{name} {text!r} is not a number: write it like 1000 or 0.25"
                          ) from None


def int_param(value: str | None, name: str) -> int | None:
    """A whole-number parameter (None when empty).

    >>> int_param("4", "places")
    4
    """
    text = text_param(value, name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ReportError(f"{name} {text!r} is not a whole number") from None


def zone_param(value: str | None, name: str = "tz") -> ZoneInfo:
    """A time-zone parameter (an IANA name; empty means UTC), or a clear ReportError.

    >>> zone_param("Europe/Berlin").key, zone_param("").key
    ('Europe/Berlin', 'UTC')
    """
    try:
        return _zone(value or "UTC")
    except ReportError:
        raise ReportError(f"{name}: unknown time zone {value!r}: use an IANA name such as "
                          "UTC or Europe/London") from None


#: The display-metadata key under which a report page records the problem it showed.
PROBLEM_KEY = "ratelab"

#: Float columns that are ratios (0..1), shown as percentages in every table for people.
RATIO_COLUMNS = frozenset({"margin", "markup", "asr", "short_ratio", "share", "margin_before",
                           "margin_after", "margin_ok", "margin_rated", "rated_margin",
                           "asr_a", "asr_b", "asr_change", "margin_a", "margin_b"})
#: The CSS of the tables people read, on report pages and in notebooks alike.
TABLE_STYLE = ("<style>table.ratelab{border-collapse:collapse;font-size:13px;margin:4px 0 12px}"
                "table.ratelab th,table.ratelab td{padding:3px 10px;white-space:nowrap;"
                "border-bottom:1px solid #ddd;text-align:left!important}"
                "table.ratelab th{background:#f4f6f7}"
                "table.ratelab td.n{text-align:right!important;"
                "font-variant-numeric:tabular-nums}</style>")


class ReportPage:
    """The frame of a report notebook: period, warehouse, errors shown as one message.

    In a notebook::

        page = ReportPage()
        with page.guard():
            page.open(warehouse, start, end, tz)
            settlement = page.require(reports.settlement_summary(page.wh, page.start, page.end))
        ...
        if page.ok:
            page.heading("Settlement", "Revenue, cost and profit per day.")
            page.table(settlement)
            page.chart(charts.waterfall(settlement))

    A ``ReportError`` (bad date, unknown customer, ...) inside ``guard`` prints its message as
    markdown and sets ``ok`` to False, so the later cells show nothing; ``require`` turns an
    empty frame into "no calls in this period". Outside a notebook the messages are printed.

    >>> page = ReportPage()
    >>> with page.guard():
    ...     page.open("no/such/warehouse.duckdb", "2026-11-02", "", "UTC")
    > **This report cannot run:** no warehouse at no/such/warehouse.duckdb: pass the ...
    >>> page.ok
    False
    """

    def __init__(self) -> None:
        self.ok = True
        self.problem: str | None = None
        self.exit_code = 0
        self.plotly_embedded = False
        self.wh: Any = None
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.tz = "UTC"

    def connect(self, warehouse: str) -> ReportPage:
        """Open the warehouse read-only (a clear message when the file is missing)."""
        from ratelab.warehouse import Warehouse

        path = Path(warehouse or "data/warehouse.duckdb")
        if not path.exists():
            raise ReportError(f"no warehouse at {path}: pass the warehouse parameter "
                              "(`--param warehouse PATH`)")
        self.wh = Warehouse(path, read_only=True)
        return self

    def open(self, warehouse: str, start: str, end: str, tz: str = "UTC", *,
             default_days: int = 1) -> ReportPage:
        """Validate the period, open the warehouse read-only and print what the report covers."""
        self.start, self.end = report_period(start, end, tz, default_days=default_days)
        self.tz = (tz or "UTC").strip()
        self.connect(warehouse)
        shown = f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        if self.tz.upper() != "UTC":
            zone = _zone(self.tz)
            local = [t.replace(tzinfo=UTC).astimezone(zone) for t in (self.start, self.end)]
            shown += f" ({local[0]:%Y-%m-%d %H:%M} to {local[1]:%Y-%m-%d %H:%M} {self.tz})"
        self.markdown(f"**Period:** {shown}, end exclusive · **warehouse:** `{self.wh.path}`")
        self.synthetic_banner(self.start, self.end)
        return self

    def synthetic_banner(self, start: datetime, end: datetime) -> bool:
        """Say so when CDRs in [start, end) were generated, not carried (switch_id synthetic).

        Returns whether it printed the banner. Call it for every window a chart covers beyond
        the report's period (a trend over the last days, say).
        """
        found = self.wh.sql(
            """SELECT count(*) AS n FROM cdrs
               WHERE switch_id = 'synthetic' AND start_ts >= $start AND start_ts < $end""",
            {"start": start, "end": end})["n"][0]
        if found:
            self.markdown(f"**SYNTHETIC DATA:** {found:,} of the CDRs from {start:%Y-%m-%d} to "
                          f"{end:%Y-%m-%d} were generated by ratelab (cdr_id 'synthetic-...'), "
                          "not carried by a switch.")
        return bool(found)

    @contextmanager
    def guard(self) -> Iterator[ReportPage]:
        """Show a ReportError (or a missing / busy warehouse) as a message, not a traceback.

        The message is also recorded in the notebook (``problem`` and ``exit_code``, see
        :meth:`fail`), so ``ratelab report`` exits non-zero: 2 for a bad parameter or a missing
        warehouse (the command must change), 1 for a period without calls, a missing exchange
        rate, or a warehouse that is busy, at another schema version or not a warehouse.
        """
        from ratelab.migrations import SchemaError
        from ratelab.reports.common import MissingRateError
        from ratelab.warehouse import WarehouseError, WarehouseNotFound

        try:
            yield self
        except MissingRateError as err:  # the data lacks an exchange rate: `ratelab fx set`
            self.fail(f"**This report cannot run:** {err}", problem=str(err), exit_code=1)
        except NoCalls as err:
            self.fail(f"**{str(err).capitalize()}** — nothing to report. Check the period or "
                      "run `ratelab ingest` and `ratelab rate` first.", problem=str(err),
                      exit_code=1)
        except (ReportError, FileNotFoundError, WarehouseNotFound) as err:
            self.fail(f"**This report cannot run:** {err}", problem=str(err), exit_code=2)
        except (SchemaError, WarehouseError) as err:
            self.fail(f"**This report cannot run:** {err}", problem=str(err), exit_code=1)

    def fail(self, message: str, *, problem: str | None = None, exit_code: int = 1) -> None:
        """Print ``message`` as markdown and skip the rest of the report.

        The output carries ``{"ratelab": {"problem": ..., "exit_code": ...}}`` as display
        metadata: :func:`ratelab.report_runner.run_report` reads it back from the executed
        notebook (``ReportPaths.problem``), and ``ratelab report`` exits with ``exit_code``.
        """
        self.ok = False
        self.problem = problem or message
        self.exit_code = exit_code
        self.markdown(f"> {message}", metadata={
            PROBLEM_KEY: {"problem": self.problem, "exit_code": exit_code}})

    def require(self, frame: Any, message: str = "no calls in this period") -> Any:
        """``frame`` unchanged, or NoCalls when it has no rows."""
        if frame.is_empty():
            raise NoCalls(message)
        return frame

    @staticmethod
    def markdown(text: str, *, metadata: dict[str, Any] | None = None) -> None:
        """Display ``text`` as markdown (printed as it is outside a notebook)."""
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is None:
            print(text)
        elif metadata:
            display(Markdown(text), metadata=metadata)
        else:
            display(Markdown(text))

    def heading(self, title: str, prose: str = "", level: int = 2) -> None:
        """A section heading, with a sentence on how to read what follows."""
        self.markdown("#" * level + f" {title}" + (f"\n\n{prose}" if prose else ""))

    @staticmethod
    def table(frame: Any, rows: int = 50, empty: str = "no rows") -> None:
        """Display a polars frame as a table for people, up to ``rows`` rows and a line saying
        how many more there are (:func:`ratelab.charts.table_html`: thousands separators,
        money with 2-4 decimals, ratios as percentages; the frame keeps the exact values), or
        the sentence ``empty`` when it has no rows."""
        from IPython.display import HTML, display

        from ratelab.chart_labels import table_html

        if frame.is_empty():
            ReportPage.markdown(empty)
            return
        display(HTML(table_html(frame, rows=rows)))

    def chart(self, fig: Any) -> None:
        """Display a Plotly figure; the first one also embeds plotly.js (the page works offline).

        Like the "notebook" renderer of ``fig.show()``, without its MathJax from a CDN.
        """
        from IPython.display import HTML, display
        from plotly.offline import get_plotlyjs

        if not self.plotly_embedded:
            display(HTML("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
                         f"<script>{get_plotlyjs()}</script>"))
            self.plotly_embedded = True
        display(HTML(fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                                 default_width="100%", default_height=480)))
