"""Read and validate rate decks (CSV or XLSX) into :class:`DeckRow` objects.

A deck is imported whole or not at all: every row is checked, every problem is collected
with its file and line, and :class:`DeckError` lists them all. The accepted column headers
are documented in :mod:`ratelab.decks.columns`.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from ratelab.decks.cells import (
    BANDS,
    CellError,
    cell_text,
    format_moment,
    is_empty,
    parse_band,
    parse_datetime,
    parse_increment,
    parse_money,
    parse_prefix,
    parse_seconds,
)
from ratelab.decks.columns import REQUIRED_COLUMNS, map_headers

__all__ = ["BANDS", "DeckError", "DeckProblem", "DeckRow", "read_deck"]

_T = TypeVar("_T")
_XLSX_SUFFIXES = {".xlsx", ".xlsm", ".xltx", ".xltm"}
_DELIMITERS = (",", ";", "\t", "|")
_NO_DATE = "no effective date: add an effective_from column or pass effective_from"


@dataclass(frozen=True)
class DeckProblem:
    """One problem in a deck: the file as given, a 1-based line (or XLSX row) and why.

    >>> str(DeckProblem("deck.csv", 3, "empty prefix"))
    'deck.csv:3: empty prefix'
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class DeckError(ValueError):
    """A deck was rejected; ``problems`` lists every problem found, in line order.

    >>> err = DeckError("deck.csv", [DeckProblem("deck.csv", 2, "empty prefix")])
    >>> print(err)
    1 problem(s) in deck.csv; nothing was imported:
    deck.csv:2: empty prefix
    """

    def __init__(self, file: str, problems: Iterable[DeckProblem]) -> None:
        self.file = file
        self.problems: list[DeckProblem] = list(problems)
        listing = "\n".join(str(problem) for problem in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in {file}; nothing was imported:\n{listing}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problems))


@dataclass(frozen=True)
class DeckRow:
    """One validated deck line. Rates are per minute; times are naive (deck-local)."""

    line: int
    prefix: str
    destination: str
    band: str
    first_rate: Decimal
    first_period: int
    rate: Decimal
    cycle: int
    connect_fee: Decimal
    effective_from: datetime
    effective_to: datetime | None


# --- file loading --------------------------------------------------------------------------

Record = tuple[int, list[object]]  # (1-based physical line or sheet row, cell values)


def _detect_delimiter(line: str) -> str:
    """The candidate delimiter occurring most often outside double quotes (``,`` on a tie)."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    best, best_count = ",", 0
    for delimiter in _DELIMITERS:
        count = unquoted.count(delimiter)
        if count > best_count:
            best, best_count = delimiter, count
    return best


def _load_csv(path: Path) -> tuple[list[Record], list[tuple[int, str]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return [], [(line, f"not UTF-8 text (byte 0x{data[err.start]:02x}); save it as UTF-8")]
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_detect_delimiter(first))
    records: list[Record] = []
    previous = 0
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((previous + 1, list(cells)))
            previous = reader.line_num
    except csv.Error as err:
        return [], [(previous + 1, f"unreadable CSV: {err}")]
    return records, []


def _load_xlsx(path: Path, sheet: str | None) -> tuple[list[Record], list[tuple[int, str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException) as err:
        return [], [(1, f"not a readable XLSX workbook: {err}")]
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            names = ", ".join(repr(name) for name in workbook.sheetnames)
            return [], [(1, f"no sheet named {sheet!r} (sheets: {names})")]
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        if not hasattr(worksheet, "reset_dimensions"):
            return [], [(1, f"sheet {worksheet.title!r} is a chart, not a table of rates")]
        worksheet.reset_dimensions()  # trust the cells, not a possibly stale <dimension>
        records: list[Record] = [
            (number, list(values))
            for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), 1)
            if any(not is_empty(value) for value in values)
        ]
    finally:
        workbook.close()
    return records, []


# --- validation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _RowParser:
    columns: Mapping[str, int]
    date_order: str
    default_increment: tuple[int, int]
    effective_from: datetime | None

    def parse(self, line: int, cells: list[object]) -> tuple[DeckRow | None, list[str]]:
        problems: list[str] = []

        def cell(name: str) -> object:
            index = self.columns.get(name)
            return cells[index] if index is not None and index < len(cells) else None

        def get(
            name: str, parse: Callable[[object], _T], default: _T, required: bool = False
        ) -> _T | None:
            """Parse column ``name``; ``default`` if empty; None (and a problem) if bad."""
            value = cell(name)
            if is_empty(value):
                if required:
                    problems.append(f"empty {name}")
                return default
            try:
                return parse(value)
            except CellError as bad:
                problems.append(str(bad))
                return None

        prefix = get("prefix", parse_prefix, None, required=True)
        rate = get("rate", lambda v: parse_money(v, "rate"), None, required=True)
        band = get("band", parse_band, "any")
        first_rate = get("first_rate", lambda v: parse_money(v, "first_rate"), rate)
        connect_fee = get("connect_fee", lambda v: parse_money(v, "connect_fee"), Decimal(0))

        first_period: int | None
        cycle: int | None
        increment = get("increment", parse_increment, None)
        if increment is not None:
            first_period, cycle = increment
        elif is_empty(cell("increment")):
            first_period = get("first_period", lambda v: parse_seconds(v, "first_period"), None)
            cycle = get("cycle", lambda v: parse_seconds(v, "cycle"), None)
            if is_empty(cell("first_period")) and is_empty(cell("cycle")):
                first_period, cycle = self.default_increment
            elif is_empty(cell("cycle")):
                cycle = self.default_increment[1]
            elif is_empty(cell("first_period")):
                first_period = cycle
        else:
            first_period = cycle = None
        if cycle is not None and cycle < 1:
            problems.append(f"cycle must be >= 1, got {cycle}")
        if first_period is not None and first_period < 0:
            problems.append(f"first_period must be >= 0, got {first_period}")

        effective_from = get(
            "effective_from", lambda v: parse_datetime(v, "effective_from", self.date_order),
            self.effective_from,
        )
        if "effective_from" in self.columns and is_empty(cell("effective_from")) and (
            self.effective_from is None
        ):
            problems.append(_NO_DATE)
        effective_to = get(
            "effective_to", lambda v: parse_datetime(v, "effective_to", self.date_order), None
        )
        if effective_from is not None and effective_to is not None and (
            effective_to <= effective_from
        ):
            problems.append(
                f"effective_to {format_moment(effective_to)} is not after "
                f"effective_from {format_moment(effective_from)}"
            )
        if problems:
            return None, problems
        assert prefix and band and rate is not None and first_rate is not None
        assert connect_fee is not None and first_period is not None and cycle is not None
        return DeckRow(
            line=line, prefix=prefix, destination=cell_text(cell("destination")), band=band,
            first_rate=first_rate, first_period=first_period, rate=rate, cycle=cycle,
            connect_fee=connect_fee,
            # datetime.min only when the whole deck has no date: that is already a problem
            effective_from=effective_from or datetime.min, effective_to=effective_to,
        ), []


def _terms(row: DeckRow) -> tuple[object, ...]:
    return (row.first_rate, row.first_period, row.rate, row.cycle, row.connect_fee,
            row.effective_to)


def _validate(
    records: list[Record], columns: Mapping[str, str] | None, parser_args: dict[str, Any]
) -> tuple[list[DeckRow], list[tuple[int, str]]]:
    if not records:
        return [], [(1, "empty deck: no header row and no data rows")]
    (header_line, header), data = records[0], records[1:]
    mapping, ambiguous = map_headers([cell_text(cell) for cell in header], columns)
    problems = [(header_line, reason) for reason in ambiguous.values()]
    for required in REQUIRED_COLUMNS:
        if required not in mapping and required not in ambiguous:
            found = ", ".join(repr(cell_text(cell)) for cell in header if not is_empty(cell))
            problems.append((header_line, f"missing required column {required!r} (found: {found})"))
    if not data:
        problems.append((header_line, "empty deck: no data rows"))
    if "effective_from" not in mapping and parser_args["effective_from"] is None:
        problems.append((header_line, _NO_DATE))
    if ambiguous or any(required not in mapping for required in REQUIRED_COLUMNS):
        return [], problems

    parser = _RowParser(columns=mapping, **parser_args)
    rows: list[DeckRow] = []
    seen: dict[tuple[str, str, datetime], DeckRow] = {}
    for line, cells in data:
        row, reasons = parser.parse(line, cells)
        problems.extend((line, reason) for reason in reasons)
        if row is None:
            continue
        key = (row.prefix, row.band, row.effective_from)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = row
            rows.append(row)
        elif _terms(earlier) != _terms(row):
            when = format_moment(row.effective_from)
            problems.append((line, (
                f"duplicate prefix {row.prefix} (band {row.band}, effective {when}) "
                f"with different terms from line {earlier.line}"
            )))
    return rows, problems


def _naive(moment: datetime | date | None) -> datetime | None:
    if moment is None or isinstance(moment, datetime):
        if moment is not None and moment.tzinfo is not None:
            raise ValueError("effective_from must be naive (deck-local time), not time-zone aware")
        return moment
    return datetime.combine(moment, time())


def read_deck(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    effective_from: datetime | date | None = None,
    default_increment: str = "60/60",
    date_order: str = "dmy",
    sheet: str | None = None,
) -> list[DeckRow]:
    """Read and validate a whole deck; raise DeckError listing every bad row.

    Rows are returned (in file order, exact duplicates merged) only if the file is clean.
    ``.xlsx``/``.xlsm`` files are read with openpyxl (first sheet unless ``sheet``), anything
    else as delimited UTF-8 text. ``columns`` maps extra header spellings to canonical
    names (see :mod:`ratelab.decks.columns`); ``effective_from`` is used for rows without a
    date; ``default_increment`` when a deck gives no billing increment; ``date_order``
    (``"dmy"`` or ``"mdy"``) decides how ``01/02/2026`` is read.

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> deck = folder / "deck.csv"
    >>> _ = deck.write_text(
    ...     "Dial Code;Country;Rate (USD/min);Increment;Effective Date\\n"
    ...     "44;United Kingdom;0,0105;30/6;01/02/2026\\n"
    ...     "+1 201;USA;$0.004;1/1;2026-02-01 10:00\\n", encoding="utf-8")
    >>> uk, us = read_deck(deck)
    >>> uk.prefix, uk.rate, uk.first_rate, uk.first_period, uk.cycle, uk.effective_from
    ('44', Decimal('0.0105'), Decimal('0.0105'), 30, 6, datetime.datetime(2026, 2, 1, 0, 0))
    >>> us.prefix, us.rate, us.band, us.effective_from.hour
    ('1201', Decimal('0.004'), 'any', 10)
    >>> _ = deck.write_text("prefix,rate\\n44x,-0.01\\n", encoding="utf-8")
    >>> try:
    ...     read_deck(deck, effective_from=date(2026, 2, 1))
    ... except DeckError as err:
    ...     for problem in err.problems:
    ...         print(problem.line, problem.reason)
    2 prefix '44x' is not all digits
    2 negative rate -0.01
    >>> shutil.rmtree(folder)
    """
    if date_order not in ("dmy", "mdy"):
        raise ValueError(f"date_order must be 'dmy' or 'mdy', not {date_order!r}")
    try:
        first_period, cycle = parse_increment(default_increment)
    except CellError as bad:
        raise ValueError(f"default_increment: {bad}") from None
    if cycle < 1:
        raise ValueError(f"default_increment {default_increment!r}: cycle must be >= 1")
    map_headers([], columns)  # reject bad overrides before touching the file
    parser_args: dict[str, Any] = {
        "date_order": date_order,
        "default_increment": (first_period, cycle),
        "effective_from": _naive(effective_from),
    }
    file, source = str(path), Path(path)
    suffix = source.suffix.lower()
    if suffix in _XLSX_SUFFIXES:
        records, problems = _load_xlsx(source, sheet)
    elif suffix == ".xls":
        records, problems = [], [(1, "legacy .xls workbooks are not supported: save as .xlsx")]
    else:
        records, problems = _load_csv(source)
    rows: list[DeckRow] = []
    if not problems:
        rows, problems = _validate(records, columns, parser_args)
    if problems:
        ordered = sorted(problems, key=lambda problem: problem[0])
        raise DeckError(file, (DeckProblem(file, line, reason) for line, reason in ordered))
    return rows
