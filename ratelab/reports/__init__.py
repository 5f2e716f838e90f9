"""Report functions: the analyst's Python API over the warehouse, one Polars frame each.

Every report takes the :class:`~ratelab.Warehouse` first and a period ``start`` (inclusive) to
``end`` (exclusive): ``date``/``datetime`` (naive means UTC) or ISO strings, checked by
:func:`period`. Money is exact (``Decimal``), ratios are floats; a period without calls gives
an empty frame with the usual columns; bad arguments raise :class:`ReportError` saying what to
change. See docs/reports.md.

>>> from ratelab.examples import sample_warehouse
>>> wh = sample_warehouse(cdrs=20, rated=True)
>>> margin_by(wh, "2026-11-02", "2026-11-03", by="vendor")["calls"].to_list()
[20]
"""

from ratelab.reports.autorates import auto_create_rates
from ratelab.reports.billing import (
    clearing_details,
    gateway_bill,
    revenue_details,
    settlement_summary,
)
from ratelab.reports.breakeven import break_even, break_even_curve
from ratelab.reports.common import (
    MissingRateError,
    ReportError,
    check_party,
    load_sql,
    period,
)
from ratelab.reports.compare import compare, compare_periods, compare_totals
from ratelab.reports.leaks import rate_leaks
from ratelab.reports.margins import (
    headline,
    margin_by,
    margin_by_day,
    rate_deviation,
    top_loss_makers,
)
from ratelab.reports.quality import failure_causes, traffic_quality
from ratelab.reports.reconcile import reconcile, reconcile_summary
from ratelab.reports.whatif import what_if

__all__ = [
    "MissingRateError",
    "ReportError",
    "auto_create_rates",
    "break_even",
    "break_even_curve",
    "check_party",
    "clearing_details",
    "compare",
    "compare_periods",
    "compare_totals",
    "failure_causes",
    "gateway_bill",
    "headline",
    "load_sql",
    "margin_by",
    "margin_by_day",
    "period",
    "rate_deviation",
    "rate_leaks",
    "reconcile",
    "reconcile_summary",
    "revenue_details",
    "settlement_summary",
    "top_loss_makers",
    "traffic_quality",
    "what_if",
]
