"""Compare the rates in force with a new deck: what is new, dearer, cheaper, same or closed.

Rows are matched on ``(prefix, band)``. Only ``rate`` decides between increase and decrease;
when it is equal, the other terms (first_rate, connect_fee, first_period, cycle) decide: any
of them higher is an increase (a longer first period or cycle also costs more), otherwise a
decrease. An increase taking effect sooner than ``as_of + notice_days`` is flagged
``short_notice`` (wholesale contracts usually require 7 days' notice of increases).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from ratelab.decks.reader import DeckRow

__all__ = ["STATUSES", "RateChange", "diff_rates"]

ChangeStatus = Literal["new", "increase", "decrease", "unchanged", "closed"]
STATUSES: tuple[ChangeStatus, ...] = ("new", "increase", "decrease", "unchanged", "closed")


@dataclass(frozen=True)
class RateChange:
    """The outcome for one ``(prefix, band)``; ``change`` is ``new_rate - old_rate``."""

    prefix: str
    destination: str
    band: str
    status: ChangeStatus
    old_rate: Decimal | None
    new_rate: Decimal | None
    change: Decimal | None
    effective_from: datetime | None  # of the new row; None for closed
    short_notice: bool


def _other_terms(row: DeckRow) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (row.first_rate, row.connect_fee, Decimal(row.first_period), Decimal(row.cycle))


def _status(old: DeckRow, new: DeckRow) -> ChangeStatus:
    if new.rate != old.rate:
        return "increase" if new.rate > old.rate else "decrease"
    pairs = list(zip(_other_terms(old), _other_terms(new), strict=True))
    if all(before == after for before, after in pairs):
        return "unchanged"
    return "increase" if any(after > before for before, after in pairs) else "decrease"


def _pick(versions: list[DeckRow], horizon: datetime) -> DeckRow:
    """The latest version effective by ``horizon``, else the earliest one."""
    due = [row for row in versions if row.effective_from <= horizon]
    if due:
        return max(due, key=lambda row: row.effective_from)
    return min(versions, key=lambda row: row.effective_from)


def diff_rates(
    current: Iterable[DeckRow],
    new: Iterable[DeckRow],
    *,
    as_of: datetime,
    notice_days: int = 7,
) -> list[RateChange]:
    """Classify every ``(prefix, band)`` of ``current`` and ``new``; sorted by prefix, band.

    ``current`` holds the rows in force now, one per prefix and band (a second one raises
    :class:`ValueError`). ``new`` may hold several versions of a prefix and band; the one
    compared is the latest effective by ``as_of + notice_days``, else the earliest.
    ``short_notice`` marks increases effective before ``as_of + notice_days``. All
    datetimes are naive, in the decks' time zone (a ``date`` ``as_of`` means midnight).

    >>> from decimal import Decimal as D
    >>> def row(prefix, rate, day):
    ...     return DeckRow(1, prefix, "", "any", D(rate), 60, D(rate), 60, D(0),
    ...                    datetime(2026, 3, day), None)
    >>> current = [row("44", "0.0100", 1), row("33", "0.0200", 1), row("49", "0.03", 1)]
    >>> new = [row("44", "0.0120", 5), row("33", "0.0150", 20), row("1", "0.004", 20)]
    >>> for c in diff_rates(current, new, as_of=datetime(2026, 3, 2)):
    ...     print(c.prefix, c.status, c.change, c.short_notice)
    1 new None False
    33 decrease -0.0050 False
    44 increase 0.0020 True
    49 closed None False
    """
    if isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of = datetime.combine(as_of, time())
    horizon = as_of + timedelta(days=notice_days)

    in_force: dict[tuple[str, str], DeckRow] = {}
    for row in current:
        key = (row.prefix, row.band)
        if key in in_force:
            raise ValueError(
                f"current has more than one row for prefix {row.prefix} band {row.band} "
                f"(lines {in_force[key].line} and {row.line}); pass only the rows in force"
            )
        in_force[key] = row
    versions: dict[tuple[str, str], list[DeckRow]] = {}
    for row in new:
        versions.setdefault((row.prefix, row.band), []).append(row)

    changes: list[RateChange] = []
    for key in sorted(in_force.keys() | versions.keys()):
        prefix, band = key
        old = in_force.get(key)
        candidate = _pick(versions[key], horizon) if key in versions else None
        if candidate is None:
            assert old is not None
            changes.append(RateChange(
                prefix, old.destination, band, "closed", old.rate, None, None, None, False
            ))
            continue
        if old is None:
            changes.append(RateChange(
                prefix, candidate.destination, band, "new", None, candidate.rate, None,
                candidate.effective_from, False,
            ))
            continue
        status = _status(old, candidate)
        changes.append(RateChange(
            prefix=prefix,
            destination=candidate.destination or old.destination,
            band=band,
            status=status,
            old_rate=old.rate,
            new_rate=candidate.rate,
            change=candidate.rate - old.rate,
            effective_from=candidate.effective_from,
            short_notice=status == "increase" and candidate.effective_from < horizon,
        ))
    return changes
