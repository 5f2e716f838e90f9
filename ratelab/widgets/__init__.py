"""Interactive explorers for notebooks: the logic in pure functions, the widgets a thin layer.

* :func:`margin_view` / :func:`margin_figure` / :class:`MarginExplorer`: margins of the rated
  calls by destination, customer, vendor or day, with filters;
* :func:`simulate` / :func:`simulate_figure` / :class:`RateSimulator`: a vendor rate change or a
  target margin applied to a past period's traffic;
* :func:`spool_stats` / :func:`spool_figure` / :class:`SwitchMonitor`: calls per second, ASR and
  concurrent calls of a running switch, from its CDR spool; with a warehouse, the loss and fraud
  watch's current findings too (:func:`findings_view`).

When the calls shown include generated CDRs (``switch_id = "synthetic"``), the margin explorer
and the rate simulator say "generated (synthetic) data" above the chart and shade the groups
that hold them, as the report charts do.

>>> from ratelab.examples import sample_warehouse
>>> MarginExplorer(sample_warehouse(cdrs=10, rated=True)).frame.height > 0
True
"""

from ratelab.widgets.margins import MarginExplorer, margin_figure, margin_view, synthetic_calls
from ratelab.widgets.monitor import SwitchMonitor, findings_view, spool_dir_of
from ratelab.widgets.simulator import (
    RateSimulator,
    simulate,
    simulate_figure,
    synthetic_destinations,
)
from ratelab.widgets.spool import SpoolStats, SpoolTail, spool_figure, spool_stats

__all__ = [
    "MarginExplorer",
    "RateSimulator",
    "SpoolStats",
    "SpoolTail",
    "SwitchMonitor",
    "findings_view",
    "margin_figure",
    "margin_view",
    "simulate",
    "simulate_figure",
    "spool_dir_of",
    "spool_figure",
    "spool_stats",
    "synthetic_calls",
    "synthetic_destinations",
]
