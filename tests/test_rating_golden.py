"""Golden rating fixtures: decks and CDRs in, expected rated rows out (tests/golden/rating/).

Each fixture is a JSON file: the decks to import (and whom they price), the CDRs (compact;
completed to the full v1 contract here), and the expected rated rows, compared column by column
on the columns each expected row names. Money is compared as exact decimal strings. Expected
values are worked out by hand: an expected row's ``how`` (not a column) shows the arithmetic.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ratelab import rating
from tests.helpers import contract_cdr, write_jsonl

GOLDEN = Path(__file__).parent / "golden" / "rating"
CASES = sorted(GOLDEN.glob("*.json"))


def _load(case: Path, warehouse, tmp_path: Path) -> dict:
    spec = json.loads(case.read_text())
    for k, deck in enumerate(spec["decks"]):
        path = tmp_path / f"deck{k}.csv"
        path.write_text(deck["csv"])
        warehouse.import_deck(path, deck["name"], deck["side"], mode=deck.get("mode", "full"),
                              time_zone=deck.get("time_zone", "UTC"))
        for who in deck.get("assign", []):
            who = dict(who)
            for key in ("valid_from", "valid_to"):
                if key in who:
                    who[key] = datetime.fromisoformat(who[key])
            warehouse.assign(deck["name"], **who)
    for day in spec.get("calendar_days", []):
        warehouse.calendar_day(date.fromisoformat(day["day"]), day["band"])
    cdrs = []
    for c in spec["cdrs"]:
        extra = {k: c[k] for k in ("customer", "vendor", "caller") if k in c}
        cdrs.append(contract_cdr(c["cdr_id"], c["callee"], c["start"], c["duration_ms"], **extra))
    write_jsonl(tmp_path / "spool" / "cdrs.jsonl", cdrs)
    summary = warehouse.ingest(tmp_path / "spool")
    assert summary.added == len(cdrs) and summary.quarantined == 0
    return spec


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    return value


@pytest.mark.parametrize("lookup", list(rating.Lookup))
@pytest.mark.parametrize("query", ["chosen", "full"])
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path, query: str, lookup: rating.Lookup, warehouse, tmp_path: Path,
                monkeypatch) -> None:
    if query == "full":  # the cheapest-of branch and the band joins must change nothing
        original = rating.rating_query.__wrapped__
        monkeypatch.setattr(rating, "rating_query",
                            lambda lookup, *, several=True, partitioned=True, banded=True:
                            original(lookup, several=True, partitioned=partitioned,
                                     banded=True))
    spec = _load(case, warehouse, tmp_path)
    with warehouse.connection() as con:   # both lookups, whichever the run would choose
        rating.rate_cdrs(con, lookup=lookup)
    rows = {r["cdr_id"]: r for r in warehouse.rated().iter_rows(named=True)}
    assert set(rows) == {c["cdr_id"] for c in spec["cdrs"]}, "every CDR is kept, rated or flagged"
    for want in spec["expected"]:
        got = rows[want["cdr_id"]]
        for column, value in want.items():
            if column == "how":
                continue
            assert _plain(got[column]) == value, f"{case.stem}: {want['cdr_id']}.{column}"


def test_golden_cases_cover_the_issue_checklist() -> None:
    names = {c.stem for c in CASES}
    assert {"increments", "prefixes", "versions", "bands", "cheapest", "ties", "rounding",
            "docs_charges"} <= names
