"""What a watch run produces: :class:`Severity`, :class:`FindingKind`, :class:`Finding` and
:class:`WatchResult` (the contract shared with the watch's CLI and notifications).

>>> Severity.parse("Warning") > Severity.INFO, str(Severity.CRITICAL)
(True, 'critical')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Draft", "Finding", "FindingKind", "Severity", "WatchResult"]


class Severity(enum.IntEnum):
    """How urgent a finding is; ordered, so ``>=`` compares urgency.

    >>> sorted([Severity.CRITICAL, Severity.INFO])
    [<Severity.INFO: 1>, <Severity.CRITICAL: 3>]
    """

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named ``text`` (any case); ValueError naming the choices.

        >>> try:
        ...     Severity.parse("urgent")
        ... except ValueError as err:
        ...     print(err)
        unknown severity 'urgent': choose info, warning or critical
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}: choose info, warning or critical") \
                from None


class FindingKind(enum.StrEnum):
    """What a detector found (docs/watch.md has one section per kind).

    >>> FindingKind("night_burst") is FindingKind.NIGHT_BURST
    True
    """

    TRAFFIC_SPIKE = "traffic_spike"
    NEW_DESTINATION = "new_destination"
    ASR_DROP = "asr_drop"
    ACD_DROP = "acd_drop"
    SHORT_CALLS = "short_calls"
    HIGH_RISK = "high_risk"
    NIGHT_BURST = "night_burst"
    LOSS_MAKER = "loss_maker"


@dataclass(frozen=True)
class Draft:
    """A finding as a detector makes it, before the store says whether it is new: the
    subject, the window of data it is about, the numbers that triggered it.

    ``id`` is stable (same kind, subject and window -> same id) and link-able; ``numbers`` holds
    exact text (money as decimal text, ratios like "0.412"). Times are naive UTC.
    """

    id: str
    kind: FindingKind
    severity: Severity
    customer: str | None
    destination: str | None
    window_start: datetime
    window_end: datetime
    summary: str
    numbers: dict[str, str]


@dataclass(frozen=True)
class Finding(Draft):
    """One stored finding: a :class:`Draft` with when a run first raised it and whether this
    run did (``new``)."""

    first_seen: datetime
    new: bool


@dataclass(frozen=True)
class WatchResult:
    """The findings current in one run (most severe first), its ``now`` and its window.

    >>> r = WatchResult(datetime(2026, 11, 2), (datetime(2026, 11, 1), datetime(2026, 11, 2)),
    ...                 [])
    >>> r.new, r.at_least(Severity.WARNING)
    ([], [])
    """

    now: datetime
    window: tuple[datetime, datetime]
    findings: list[Finding]

    @property
    def new(self) -> list[Finding]:
        """The findings raised for the first time by this run."""
        return [f for f in self.findings if f.new]

    def at_least(self, severity: Severity, *, new_only: bool = True) -> list[Finding]:
        """The findings of ``severity`` or worse (only new ones unless ``new_only=False``)."""
        return [f for f in self.findings
                if f.severity >= severity and (f.new or not new_only)]
