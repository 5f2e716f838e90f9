"""The loss and fraud watch (docs/watch.md): hourly aggregates (rating marks the hours it
changes, a run aggregates the stale hours it reads), detectors comparing each customer and
destination with its own history, findings stored in the warehouse, and :func:`notify` to send
the new ones (e-mail, JSON lines). The charts of the findings are in
:mod:`ratelab.watch.view` (it imports Plotly, so it is not loaded here).

>>> from ratelab.examples import sample_warehouse
>>> from datetime import datetime
>>> result = run_watch(sample_warehouse(cdrs=20, rated=True), now=datetime(2026, 11, 2, 12))
>>> [f.kind for f in result.findings if f.kind == FindingKind.TRAFFIC_SPIKE]
[]
"""

from ratelab.watch.aggregates import SHORT_CALL_MS, mark_stale, refresh_hourly, refresh_stale
from ratelab.watch.config import WatchConfig
from ratelab.watch.detect import run_watch
from ratelab.watch.model import Finding, FindingKind, Severity, WatchResult
from ratelab.watch.notify import notify
from ratelab.watch.ranges import HIGH_RISK_DEFAULT, HighRiskRange, read_ranges
from ratelab.watch.store import findings

__all__ = [
    "HIGH_RISK_DEFAULT",
    "SHORT_CALL_MS",
    "Finding",
    "FindingKind",
    "HighRiskRange",
    "Severity",
    "WatchConfig",
    "WatchResult",
    "findings",
    "mark_stale",
    "notify",
    "read_ranges",
    "refresh_hourly",
    "refresh_stale",
    "run_watch",
]
