"""One period parser (issue 9): reports, widgets, the CLI's dates and report pages read a date
through ratelab.reports.common.moment, so the same text gives the same moment, or the same
refusal, at every entry point."""

from __future__ import annotations

from datetime import date, datetime

import click
import pytest

from ratelab.cli.output import WHEN, parse_when
from ratelab.report_page import report_period
from ratelab.reports import ReportError, period
from ratelab.reports.common import moment

GOOD = [
    ("2026-11-02", datetime(2026, 11, 2)),
    ("2026-11-02T10:00", datetime(2026, 11, 2, 10, 0)),
    ("2026-11-02 10:00:30", datetime(2026, 11, 2, 10, 0, 30)),
    (" 2026-11-02T10:00 ", datetime(2026, 11, 2, 10, 0)),
    ("2026-11-02T10:00+01:00", datetime(2026, 11, 2, 9, 0)),    # an offset: converted to UTC
    ("2026-11-02T10:00:00Z", datetime(2026, 11, 2, 10, 0)),
]
BAD = ["01/11/2026", "2026-11-31", "yesterday", ""]

_OPTION = click.Option(["--since"])


def _entry_points(text: str) -> dict[str, datetime]:
    return {
        "moment": moment(text, "start"),
        "reports.period": period(text, "2027-01-01")[0],
        "report page": report_period(text, "2027-01-01", "UTC")[0],
        "cli parse_when": parse_when(text),
        "cli option": WHEN.convert(text, _OPTION, None),
    }


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t for t, _ in GOOD])
def test_every_entry_point_reads_the_same_moment(text: str, expected: datetime) -> None:
    assert _entry_points(text) == dict.fromkeys(_entry_points(text), expected)


@pytest.mark.parametrize("text", BAD)
def test_every_entry_point_refuses_the_same_text(text: str) -> None:
    message = f"'{text}' is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
    for name, call in [("moment", lambda: moment(text, "start")),
                       ("reports.period", lambda: period(text, "2027-01-01")),
                       ("cli parse_when", lambda: parse_when(text, "start"))]:
        with pytest.raises(ReportError) as err:
            call()
        assert str(err.value) == f"start {message}", name
    with pytest.raises(click.BadParameter) as bad:
        WHEN.convert(text, _OPTION, None)
    assert str(bad.value.message) == f"--since {message}"
    if text:  # an empty report parameter means "the default period", not a bad date
        with pytest.raises(ReportError) as err:
            report_period(text, "2027-01-01", "UTC")
        assert str(err.value) == f"start {message}"


def test_dates_and_zones() -> None:
    # a date is its midnight everywhere; a report page reads wall time in its tz (EST, -5 h)
    assert moment(date(2026, 11, 2)) == period(date(2026, 11, 2), "2027-01-01")[0] \
        == datetime(2026, 11, 2)
    assert report_period("2026-11-02", "2026-11-03", "America/New_York") == (
        datetime(2026, 11, 2, 5, 0), datetime(2026, 11, 3, 5, 0))
    # US summer time ends on 1 Nov 2026, so that day is 25 hours long in New York: from
    # 00:00 EDT (-4 h, 04:00 UTC) to 2 Nov 00:00 EST (-5 h, 05:00 UTC)
    assert report_period("2026-11-01", "", "America/New_York") == (
        datetime(2026, 11, 1, 4, 0), datetime(2026, 11, 2, 5, 0))
