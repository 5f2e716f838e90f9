"""Tests for ratelab.decks.diff_rates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ratelab.decks import DeckRow, RateChange, diff_rates, read_deck

AS_OF = datetime(2026, 3, 1, 12, 0)


def row(
    prefix: str,
    rate: str,
    *,
    band: str = "any",
    first_rate: str | None = None,
    first_period: int = 60,
    cycle: int = 60,
    connect_fee: str = "0",
    effective_from: datetime = datetime(2026, 1, 1),
    destination: str = "",
    line: int = 2,
) -> DeckRow:
    return DeckRow(
        line=line, prefix=prefix, destination=destination, band=band,
        first_rate=Decimal(first_rate if first_rate is not None else rate),
        first_period=first_period, rate=Decimal(rate), cycle=cycle,
        connect_fee=Decimal(connect_fee), effective_from=effective_from, effective_to=None,
    )


def only(changes: list[RateChange]) -> RateChange:
    assert len(changes) == 1
    return changes[0]


def test_every_status_sorted_by_prefix_and_band() -> None:
    later = datetime(2026, 3, 20)
    current = [
        row("44", "0.0100", destination="UK"),
        row("33", "0.0200", destination="France"),
        row("49", "0.0300", destination="Germany"),
        row("1", "0.0040", band="peak", destination="USA"),
        row("1", "0.0030", band="offpeak", destination="USA"),
    ]
    new = [
        row("44", "0.0120", effective_from=later),
        row("33", "0.0150", effective_from=later, destination="France"),
        row("1", "0.004", band="peak", effective_from=later, destination="USA"),
        row("1", "0.0030", band="offpeak", effective_from=later),
        row("7", "0.0500", effective_from=later, destination="Russia"),
    ]
    changes = diff_rates(current, new, as_of=AS_OF)
    assert changes == [
        RateChange("1", "USA", "offpeak", "unchanged", Decimal("0.0030"), Decimal("0.0030"),
                   Decimal("0.0000"), later, False),
        RateChange("1", "USA", "peak", "unchanged", Decimal("0.0040"), Decimal("0.004"),
                   Decimal("0"), later, False),
        RateChange("33", "France", "any", "decrease", Decimal("0.0200"), Decimal("0.0150"),
                   Decimal("-0.0050"), later, False),
        RateChange("44", "UK", "any", "increase", Decimal("0.0100"), Decimal("0.0120"),
                   Decimal("0.0020"), later, False),
        RateChange("49", "Germany", "any", "closed", Decimal("0.0300"), None, None, None, False),
        RateChange("7", "Russia", "any", "new", None, Decimal("0.0500"), None, later, False),
    ]
    assert all(isinstance(c.change, Decimal) for c in changes if c.change is not None)


@pytest.mark.parametrize(("effective_from", "notice_days", "short"), [
    (datetime(2026, 3, 2), 7, True),  # tomorrow
    (datetime(2026, 3, 8, 11, 59), 7, True),  # a minute short of 7 days
    (datetime(2026, 3, 8, 12, 0), 7, False),  # exactly 7 days
    (datetime(2026, 3, 20), 7, False),
    (datetime(2026, 3, 20), 30, True),
    (datetime(2026, 2, 1), 0, True),  # already effective
    (datetime(2026, 3, 1, 12, 0), 0, False),
])
def test_short_notice_for_increases(
    effective_from: datetime, notice_days: int, short: bool
) -> None:
    new = [row("44", "0.02", effective_from=effective_from)]
    change = only(diff_rates([row("44", "0.01")], new, as_of=AS_OF, notice_days=notice_days))
    assert change.status == "increase"
    assert change.short_notice is short


def test_decreases_and_new_rows_are_never_short_notice() -> None:
    tomorrow = datetime(2026, 3, 2)
    changes = diff_rates(
        [row("44", "0.02"), row("33", "0.01")],
        [row("44", "0.01", effective_from=tomorrow), row("33", "0.01", effective_from=tomorrow),
         row("49", "0.05", effective_from=tomorrow)],
        as_of=AS_OF,
    )
    assert [(c.prefix, c.status, c.short_notice) for c in changes] == [
        ("33", "unchanged", False), ("44", "decrease", False), ("49", "new", False),
    ]


@pytest.mark.parametrize(("changes", "status"), [
    ({"connect_fee": "0.01"}, "increase"),
    ({"first_rate": "0.02"}, "increase"),
    ({"first_period": 30}, "decrease"),
    ({"cycle": 1}, "decrease"),
    ({"cycle": 60, "first_period": 60}, "unchanged"),
    ({"first_rate": "0.005", "cycle": 1}, "decrease"),
    ({"first_rate": "0.005", "cycle": 120}, "increase"),  # any term higher -> increase
])
def test_equal_rate_other_terms_decide(changes: dict[str, object], status: str) -> None:
    old = row("44", "0.01", first_rate="0.01", first_period=60, cycle=60)
    new = row("44", "0.010", **{"first_rate": "0.01", **changes})  # type: ignore[arg-type]
    change = only(diff_rates([old], [new], as_of=AS_OF))
    assert change.status == status
    assert change.change == Decimal(0)
    assert change.short_notice is (status == "increase")  # effective 2026-01-01: already due


def test_rate_decides_over_other_terms() -> None:
    old = row("44", "0.01", connect_fee="0.05")
    assert only(diff_rates([old], [row("44", "0.009", connect_fee="0.10")], as_of=AS_OF)).status \
        == "decrease"
    assert only(diff_rates([old], [row("44", "0.011", connect_fee="0")], as_of=AS_OF)).status \
        == "increase"


def test_several_new_versions_pick_the_latest_due_else_the_earliest() -> None:
    current = [row("44", "0.01"), row("33", "0.01")]
    new = [
        row("44", "0.03", effective_from=datetime(2026, 4, 1)),
        row("44", "0.02", effective_from=datetime(2026, 3, 5)),
        row("44", "0.015", effective_from=datetime(2026, 2, 1)),
        row("33", "0.05", effective_from=datetime(2026, 5, 1)),
        row("33", "0.04", effective_from=datetime(2026, 4, 1)),
    ]
    by_prefix = {c.prefix: c for c in diff_rates(current, new, as_of=AS_OF)}
    assert (by_prefix["44"].new_rate, by_prefix["44"].short_notice) == (Decimal("0.02"), True)
    assert (by_prefix["33"].new_rate, by_prefix["33"].effective_from) == (
        Decimal("0.04"), datetime(2026, 4, 1),
    )
    assert by_prefix["33"].short_notice is False


def test_destination_falls_back_to_current() -> None:
    change = only(diff_rates([row("44", "0.01", destination="UK")], [row("44", "0.01")],
                             as_of=AS_OF))
    assert change.destination == "UK"


def test_duplicate_current_rows_are_rejected() -> None:
    with pytest.raises(ValueError, match="more than one row for prefix 44 band any"):
        diff_rates([row("44", "0.01", line=2), row("44", "0.02", line=3)], [], as_of=AS_OF)


def test_empty_inputs_and_date_as_of() -> None:
    assert diff_rates([], [], as_of=AS_OF) == []
    new = [row("44", "0.02", effective_from=datetime(2026, 3, 5))]
    as_of: datetime = date(2026, 3, 1)  # type: ignore[assignment]  # a date means midnight
    change = only(diff_rates([row("44", "0.01")], new, as_of=as_of))
    assert change.short_notice is True


def test_diff_of_two_decks_read_from_files(tmp_path: Path) -> None:
    current = tmp_path / "current.csv"
    current.write_text(
        "Code,Country,Rate,Effective Date\n44,UK,0.0100,01/01/2026\n33,France,0.02,01/01/2026\n",
        encoding="utf-8",
    )
    new = tmp_path / "new.csv"
    new.write_text(
        "Dial Code;Country;Rate (USD/min);Effective Date\n"
        "44;UK;0,0105;03/03/2026\n49;Germany;0,03;03/03/2026\n",
        encoding="utf-8",
    )
    changes = diff_rates(read_deck(current), read_deck(new), as_of=AS_OF)
    assert [(c.prefix, c.status, c.change, c.short_notice) for c in changes] == [
        ("33", "closed", None, False),
        ("44", "increase", Decimal("0.0005"), True),
        ("49", "new", None, False),
    ]
