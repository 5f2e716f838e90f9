"""Tests for ratelab.decks reading and validation (CSV fixtures, XLSX built in tmp_path)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from ratelab.decks import (
    CANONICAL_COLUMNS,
    DeckError,
    DeckProblem,
    DeckRow,
    canonical_column,
    normalise_header,
    read_deck,
)
from ratelab.decks.columns import COLUMN_ALIASES

FIXTURES = Path(__file__).parent / "fixtures" / "decks"
FEB_1 = datetime(2026, 2, 1)


def problems_of(path: Path, **kwargs: object) -> list[tuple[int, str]]:
    with pytest.raises(DeckError) as info:
        read_deck(path, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert all(problem.file == str(path) for problem in err.problems)
    return [(problem.line, problem.reason) for problem in err.problems]


def write_csv(tmp_path: Path, text: str, name: str = "deck.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- one fixture per error kind ------------------------------------------------------------

ERROR_FIXTURES = [
    ("bad_prefix_digits.csv", 3, "prefix '44a' is not all digits"),
    ("empty_prefix.csv", 4, "empty prefix"),
    ("long_prefix.csv", 2, "prefix 123456789012345678 is longer than 17 digits"),
    ("negative_rate.csv", 3, "negative rate -0.01"),
    ("bad_number.csv", 4, "unparseable rate 'abc'"),
    ("too_many_decimals.csv", 2, "rate 0.0123456 has more than 6 decimal places"),
    ("bad_date.csv", 3, "unparseable effective_from 'xyz'"),
    ("bad_increment.csv", 3, "unparseable increment '60/x'"),
    ("effective_to_not_after.csv", 3,
     "effective_to 2026-02-01 is not after effective_from 2026-02-01"),
    ("duplicate_prefix.csv", 5,
     "duplicate prefix 33 (band any, effective 2026-02-01) with different terms from line 3"),
    ("unknown_band.csv", 3, "unknown band 'night' (expected any, peak, offpeak or weekend)"),
    ("missing_column.csv", 1,
     "missing required column 'rate' (found: 'Code', 'Country', 'Effective Date')"),
    ("empty_deck.csv", 1, "empty deck: no data rows"),
    ("no_effective_date.csv", 1,
     "no effective date: add an effective_from column or pass effective_from"),
]


@pytest.mark.parametrize(("name", "line", "reason"), ERROR_FIXTURES)
def test_each_error_kind_is_reported_at_its_line(name: str, line: int, reason: str) -> None:
    path = FIXTURES / name
    with pytest.raises(DeckError) as info:
        read_deck(path)
    err = info.value
    assert err.problems == [DeckProblem(str(path), line, reason)]
    assert str(err) == f"1 problem(s) in {path}; nothing was imported:\n{path}:{line}: {reason}"


def test_bad_cycle_and_first_period() -> None:
    assert problems_of(FIXTURES / "bad_cycle.csv") == [
        (2, "cycle must be >= 1, got 0"),
        (3, "first_period must be >= 0, got -1"),
    ]


def test_several_errors_are_all_reported_with_physical_line_numbers() -> None:
    path = FIXTURES / "many_errors.csv"
    with pytest.raises(DeckError) as info:
        read_deck(path)
    err = info.value
    assert [(p.line, p.reason) for p in err.problems] == [
        (4, "prefix '4x' is not all digits"),
        (7, "negative rate -0.02"),
        (8, "unparseable effective_from '31/02/2026'"),
        (9, "unparseable increment 'fast'"),  # a quoted field spans lines 9-10
        (12, "duplicate prefix 44 (band any, effective 2026-02-01) "
             "with different terms from line 3"),
    ]
    message = str(err)
    assert message.startswith(f"5 problem(s) in {path}; nothing was imported:\n")
    assert message.count("\n") == 5
    assert f"{path}:7: negative rate -0.02" in message


def test_several_problems_on_one_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prefix,rate,band,effective_from\n+,x,night,soon\n")
    assert problems_of(path) == [
        (2, "empty prefix"),
        (2, "unparseable rate 'x'"),
        (2, "unknown band 'night' (expected any, peak, offpeak or weekend)"),
        (2, "unparseable effective_from 'soon'"),
    ]


def test_deck_error_is_a_value_error_and_pickles() -> None:
    problem = DeckProblem("d.csv", 2, "empty prefix")
    err = DeckError("d.csv", [problem])
    assert isinstance(err, ValueError)
    assert str(problem) == "d.csv:2: empty prefix"
    copy = pickle.loads(pickle.dumps(err))
    assert copy.problems == [problem] and str(copy) == str(err)


def test_missing_both_required_columns_and_ambiguous_columns(tmp_path: Path) -> None:
    assert problems_of(write_csv(tmp_path, "Country,Notes\nUK,x\n"), effective_from=FEB_1) == [
        (1, "missing required column 'prefix' (found: 'Country', 'Notes')"),
        (1, "missing required column 'rate' (found: 'Country', 'Notes')"),
    ]
    path = write_csv(tmp_path, "Code,Rate,New Rate\n44,0.01,0.02\n")
    assert problems_of(path, effective_from=FEB_1) == [
        (1, "columns 'Rate' and 'New Rate' both map to rate; pass columns= to choose one"),
    ]
    rows = read_deck(path, effective_from=FEB_1, columns={"New Rate": "rate"})
    assert rows[0].rate == Decimal("0.02")


def test_completely_empty_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "\n\n")
    assert problems_of(path) == [(1, "empty deck: no header row and no data rows")]


def test_empty_required_cells(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prefix,rate\n44,\n , 0.01\n")
    assert problems_of(path, effective_from=FEB_1) == [(2, "empty rate"), (3, "empty prefix")]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "deck.csv"
    text = "prefix,destination,rate\n44,UK,0.01\n225,Côte d'Ivoire,0.1\n"
    path.write_bytes(text.encode("cp1252"))
    assert problems_of(path, effective_from=FEB_1) == [
        (3, "not UTF-8 text (byte 0xf4); save it as UTF-8"),
    ]


def test_legacy_xls_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deck.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    assert problems_of(path) == [(1, "legacy .xls workbooks are not supported: save as .xlsx")]


# --- vendor spellings, delimiters, values --------------------------------------------------

def test_vendor_semicolon_deck() -> None:
    rows = read_deck(FIXTURES / "vendor_semicolon.csv")
    assert rows == [
        DeckRow(2, "44", "United Kingdom", "any", Decimal("0.0105"), 60, Decimal("0.0105"),
                60, Decimal(0), FEB_1, None),
        DeckRow(3, "4420", "United Kingdom - London", "any", Decimal("0.0098"), 30,
                Decimal("0.0098"), 6, Decimal(0), FEB_1, None),
        DeckRow(4, "1201", "USA - New Jersey", "any", Decimal("0.004"), 1, Decimal("0.004"),
                1, Decimal(0), datetime(2026, 2, 15, 10, 0), None),
    ]
    assert all(isinstance(row.rate, Decimal) for row in rows)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_and_bom(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["Code", "Destination", "Price", "Date"]) + "\r\n"
    text += delimiter.join(["+44 7", "UK Mobile", "0.0105", "2026-02-01"]) + "\r\n"
    path = tmp_path / "deck.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (row,) = read_deck(path)
    assert (row.prefix, row.destination, row.rate, row.effective_from) == (
        "447", "UK Mobile", Decimal("0.0105"), FEB_1,
    )


def test_exact_decimal_values_and_money_formats(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "prefix,rate,first_rate,connect_fee,effective_from\n"
        "1,0.0105,0.0105,0,2026-02-01\n"
        '2,"0,0123","$0,5",€ 0.01,2026-02-01\n'
        "3,£0.010000,0.1,,2026-02-01\n"
        '4,"1,234.50",1e-05,0,2026-02-01\n'
    ))
    rows = read_deck(path)
    assert [(r.rate, r.first_rate, r.connect_fee) for r in rows] == [
        (Decimal("0.0105"), Decimal("0.0105"), Decimal(0)),
        (Decimal("0.0123"), Decimal("0.5"), Decimal("0.01")),
        (Decimal("0.010000"), Decimal("0.1"), Decimal(0)),
        (Decimal("1234.50"), Decimal("0.00001"), Decimal(0)),
    ]
    assert str(rows[0].rate) == "0.0105"


def test_money_problems(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "prefix,rate,connect_fee,effective_from\n"
        "1,-0.01,0,2026-02-01\n"
        "2,0.01,-1,2026-02-01\n"
        '3,"1.234,5",0,2026-02-01\n'
        "4,0.01.2,0,2026-02-01\n"
        "5,nan,0,2026-02-01\n"
    ))
    assert problems_of(path) == [
        (2, "negative rate -0.01"),
        (3, "negative connect_fee -1"),
        (4, "unparseable rate '1.234,5'"),
        (5, "unparseable rate '0.01.2'"),
        (6, "unparseable rate 'nan'"),
    ]


def test_first_rate_defaults_to_rate_and_separate_first_rate(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prefix,rate,initial rate\n44,0.01,0.05\n33,0.02,\n")
    first, second = read_deck(path, effective_from=date(2026, 2, 1))
    assert (first.first_rate, first.rate) == (Decimal("0.05"), Decimal("0.01"))
    assert second.first_rate == second.rate == Decimal("0.02")


@pytest.mark.parametrize(("increment", "expected"), [
    ("60/60", (60, 60)), ("30/6", (30, 6)), ("1/1", (1, 1)), ("60 / 60", (60, 60)),
    ("60-60", (60, 60)), ("6", (6, 6)), ("0/1", (0, 1)),
])
def test_increment_column(tmp_path: Path, increment: str, expected: tuple[int, int]) -> None:
    path = write_csv(tmp_path, f"prefix,rate,billing increment\n44,0.01,{increment}\n")
    (row,) = read_deck(path, effective_from=FEB_1)
    assert (row.first_period, row.cycle) == expected


def test_increment_fallbacks(tmp_path: Path) -> None:
    plain = write_csv(tmp_path, "prefix,rate\n44,0.01\n", "plain.csv")
    assert (read_deck(plain, effective_from=FEB_1)[0].cycle) == 60
    (row,) = read_deck(plain, effective_from=FEB_1, default_increment="30/6")
    assert (row.first_period, row.cycle) == (30, 6)

    path = write_csv(tmp_path, (
        "prefix,rate,increment,min duration,billing cycle\n"
        "1,0.01,1/1,30,6\n"  # increment column wins
        "2,0.01,,30,6\n"  # empty increment: first_period/cycle columns
        "3,0.01,,,6\n"  # cycle only: first period = cycle
        "4,0.01,,30,\n"  # first period only: cycle from default_increment
        "5,0.01,,,\n"  # nothing: default_increment
    ))
    rows = read_deck(path, effective_from=FEB_1, default_increment="60/10")
    assert [(r.first_period, r.cycle) for r in rows] == [(1, 1), (30, 6), (6, 6), (30, 10),
                                                         (60, 10)]


def test_zero_cycle_increment_and_bad_seconds(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prefix,rate,increment,cycle\n1,0.01,60/0,\n2,0.01,,1.5\n")
    assert problems_of(path, effective_from=FEB_1) == [
        (2, "cycle must be >= 1, got 0"),
        (3, "unparseable cycle '1.5' (whole seconds expected)"),
    ]


@pytest.mark.parametrize(("raw", "band"), [
    ("ANY", "any"), ("all", "any"), ("Peak", "peak"), ("offpeak", "offpeak"),
    ("Off-Peak", "offpeak"), ("off peak", "offpeak"), ("Weekend", "weekend"), ("", "any"),
])
def test_bands(tmp_path: Path, raw: str, band: str) -> None:
    path = write_csv(tmp_path, f"prefix,time band,rate\n44,{raw},0.01\n")
    assert read_deck(path, effective_from=FEB_1)[0].band == band


def test_same_prefix_in_other_band_or_date_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "prefix,band,rate,effective_from\n"
        "44,peak,0.02,2026-02-01\n44,offpeak,0.01,2026-02-01\n"
        "44,peak,0.03,2026-03-01\n44,Peak,0.020,01/02/2026\n"  # last: exact duplicate
    ))
    rows = read_deck(path)
    assert [(r.line, r.band, r.rate) for r in rows] == [
        (2, "peak", Decimal("0.02")), (3, "offpeak", Decimal("0.01")), (4, "peak", Decimal("0.03")),
    ]


# --- dates ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-01-31", datetime(2026, 1, 31)),
    ("2026-01-31 10:00", datetime(2026, 1, 31, 10, 0)),
    ("2026-01-31 10:00:30", datetime(2026, 1, 31, 10, 0, 30)),
    ("2026-01-31T10:00:00", datetime(2026, 1, 31, 10, 0)),
    ("2026/01/31", datetime(2026, 1, 31)),
    ("20260131", datetime(2026, 1, 31)),
    ("31/01/2026", datetime(2026, 1, 31)),
    ("31.01.2026", datetime(2026, 1, 31)),
    ("31-01-2026", datetime(2026, 1, 31)),
    ("01/02/2026", datetime(2026, 2, 1)),
    ("31-Jan-2026", datetime(2026, 1, 31)),
    ("31 Jan 2026", datetime(2026, 1, 31)),
    ("Jan 31 2026", datetime(2026, 1, 31)),
    ('"January 31, 2026"', datetime(2026, 1, 31)),
    ("31 Jan 2026 23:59", datetime(2026, 1, 31, 23, 59)),
    ("1.2.2026 06:00", datetime(2026, 2, 1, 6, 0)),
])
def test_date_formats_day_first(tmp_path: Path, raw: str, expected: datetime) -> None:
    path = write_csv(tmp_path, f"prefix,rate,valid from\n44,0.01,{raw}\n")
    assert read_deck(path)[0].effective_from == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("01/02/2026", datetime(2026, 1, 2)),
    ("12.31.2026", datetime(2026, 12, 31)),
    ("02-01-2026 08:00", datetime(2026, 2, 1, 8, 0)),
    ("2026-01-31", datetime(2026, 1, 31)),  # ISO is never flipped
    ("31 Jan 2026", datetime(2026, 1, 31)),
])
def test_date_formats_month_first(tmp_path: Path, raw: str, expected: datetime) -> None:
    path = write_csv(tmp_path, f"prefix,rate,start date\n44,0.01,{raw}\n")
    assert read_deck(path, date_order="mdy")[0].effective_from == expected


@pytest.mark.parametrize("raw", ["31/13/2026", "2026-02-30", "13/31/2026", "Foo 3 2026", "31/01/26",
                                 "2026-01-31 25:00", "tomorrow"])
def test_unparseable_dates(tmp_path: Path, raw: str) -> None:
    path = write_csv(tmp_path, f"prefix,rate,effective date\n44,0.01,{raw}\n")
    assert problems_of(path) == [(2, f"unparseable effective_from {raw!r}")]


def test_effective_from_argument_and_effective_to(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "prefix,rate,effective_from,expires\n"
        "44,0.01,,2026-03-01\n"
        "33,0.02,2026-02-15,\n"
    ))
    first, second = read_deck(path, effective_from=date(2026, 2, 1))
    assert (first.effective_from, first.effective_to) == (FEB_1, datetime(2026, 3, 1))
    assert (second.effective_from, second.effective_to) == (datetime(2026, 2, 15), None)
    assert problems_of(path) == [
        (2, "no effective date: add an effective_from column or pass effective_from"),
    ]


# --- header mapping ------------------------------------------------------------------------

@pytest.mark.parametrize(("alias", "canonical"), [
    (alias, canonical) for canonical, aliases in COLUMN_ALIASES.items() for alias in aliases
])
def test_every_documented_alias_maps(alias: str, canonical: str) -> None:
    assert canonical_column(alias) == canonical
    assert canonical_column(alias.upper().replace(" ", "_") + " (USD/min)") == canonical


def test_canonical_columns_and_normalisation() -> None:
    assert set(COLUMN_ALIASES) == set(CANONICAL_COLUMNS)
    assert normalise_header("  Rate ($) ") == "rate"
    assert normalise_header("Connection-Fee [USD]") == "connectionfee"
    assert canonical_column("Notes") is None
    assert canonical_column("Tariff", {"TARIFF": "rate"}) == "rate"
    assert canonical_column("Code", {"code": ""}) is None
    with pytest.raises(ValueError, match="target must be one of"):
        canonical_column("Tariff", {"Tariff": "price"})


def test_column_overrides_and_unknown_columns_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "Country,Description,Number,Tariff,Notes,Date,Effective Date\n"
        "UK,UK Mobile,447,0.02,call us,2025-12-01,2026-02-01\n"
    ))
    (row,) = read_deck(path, columns={"Number": "prefix", "Tariff": "rate", "Date": ""})
    assert (row.prefix, row.destination, row.rate, row.effective_from) == (
        "447", "UK", Decimal("0.02"), FEB_1,
    )


def test_bad_arguments(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prefix,rate\n44,0.01\n")
    with pytest.raises(ValueError, match="date_order"):
        read_deck(path, date_order="ymd")
    with pytest.raises(ValueError, match="default_increment"):
        read_deck(path, default_increment="sixty")
    with pytest.raises(ValueError, match="default_increment"):
        read_deck(path, default_increment="60/0")
    with pytest.raises(ValueError, match="naive"):
        read_deck(path, effective_from=datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="target must be one of"):
        read_deck(path, columns={"x": "nonsense"})


# --- XLSX ----------------------------------------------------------------------------------

def write_xlsx(path: Path, rows: list[list[object]], *, start_row: int = 1,
               sheet: str = "Rates", first_sheet: str | None = None) -> Path:
    book = Workbook()
    cover = book.active
    assert cover is not None
    if first_sheet is not None:
        cover.title = first_sheet
        cover["A1"] = "cover page"
        sheet_obj = book.create_sheet(sheet)
    else:
        cover.title = sheet
        sheet_obj = cover
    for offset, values in enumerate(rows):
        for column, value in enumerate(values, start=1):
            sheet_obj.cell(row=start_row + offset, column=column, value=value)
    book.save(path)
    return path


def test_xlsx_with_datetime_and_numeric_cells(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "deck.xlsx", [
        ["Dial Code", "Country", "Rate (USD/min)", "Increment", "Effective Date", "Valid To"],
        [44, "UK", 0.0105, "60/60", datetime(2026, 2, 1), None],
        [33.0, "France", 0.02, 6, date(2026, 2, 1), datetime(2026, 3, 1, 12, 0)],
        ["+1 201", "USA", Decimal("0.004"), "1/1", "01/02/2026", None],
        [None, None, None, None, None, None],
        ["4420", "London", 1, "30/6", 20260201, None],
    ], start_row=3)
    rows = read_deck(path)
    assert [(r.line, r.prefix, r.rate, r.first_period, r.cycle, r.effective_from, r.effective_to)
            for r in rows] == [
        (4, "44", Decimal("0.0105"), 60, 60, FEB_1, None),
        (5, "33", Decimal("0.02"), 6, 6, FEB_1, datetime(2026, 3, 1, 12, 0)),
        (6, "1201", Decimal("0.004"), 1, 1, FEB_1, None),
        (8, "4420", Decimal("1"), 30, 6, FEB_1, None),
    ]
    assert str(rows[0].rate) == "0.0105"


def test_xlsx_problems_use_sheet_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "deck.xlsx", [
        ["Code", "Rate", "Increment", "Effective"],
        [44.5, 0.01, "60/60", datetime(2026, 2, 1)],
        [33, 0.0123456, "60/60", datetime(2026, 2, 1)],
        [49, -0.01, datetime(2026, 1, 1), "xyz"],
        [1, True, "60/60", datetime(2026, 2, 1)],
    ], start_row=2)
    assert problems_of(path) == [
        (3, "prefix '44.5' is not all digits"),
        (4, "rate 0.0123456 has more than 6 decimal places"),
        (5, "negative rate -0.01"),
        (5, "unparseable increment: the cell holds a date (2026-01-01 00:00:00); the spreadsheet "
            "probably turned text like '1/1' into a date, format it as text"),
        (5, "unparseable effective_from 'xyz'"),
        (6, "unparseable rate 'True'"),
    ]


def test_xlsx_sheet_selection(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "deck.xlsx", [["Prefix", "Rate"], [44, 0.01]],
                      sheet="Rates", first_sheet="Cover")
    assert problems_of(path, effective_from=FEB_1) == [
        (1, "missing required column 'prefix' (found: 'cover page')"),
        (1, "missing required column 'rate' (found: 'cover page')"),
        (1, "empty deck: no data rows"),
    ]
    (row,) = read_deck(path, effective_from=FEB_1, sheet="Rates")
    assert (row.prefix, row.rate) == ("44", Decimal("0.01"))
    assert problems_of(path, sheet="Nope") == [
        (1, "no sheet named 'Nope' (sheets: 'Cover', 'Rates')"),
    ]


def test_broken_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "deck.xlsx"
    path.write_text("prefix,rate\n", encoding="utf-8")
    ((line, reason),) = problems_of(path)
    assert line == 1 and reason.startswith("not a readable XLSX workbook")
