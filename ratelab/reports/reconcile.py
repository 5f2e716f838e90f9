"""Reconcile a vendor's CDR file (what they bill us) against our CDRs and vendor costs.

Their file is a CSV (UTF-8, delimiter ``,`` ``;`` tab or ``|``, detected from the header), one
call per line, with a header naming these four columns in any of the accepted spellings
(case, spaces and hyphens ignored; other columns are ignored):

=============  ==========================================================
column         accepted spellings
=============  ==========================================================
callee         callee, callee_e164, number, dst, destination_number
start_time     start_time, start, connect_time, start_ts
duration_s     duration_s, duration, billsec
amount         amount, cost, charge
=============  ==========================================================

``callee`` is the dialled number in E.164 digits (a leading ``+``, spaces and hyphens are
dropped); ``start_time`` is ISO 8601 (``2026-11-02T10:00:00Z``, ``2026-11-02 10:00:00``; a
time without zone is UTC); ``duration_s`` is seconds (up to 3 decimals); ``amount`` the
charge (up to 6 decimals, not negative). The file is checked whole first: any bad row raises
:class:`TheirFileError` (a ``ReportError``) listing every problem as file:line: reason, and
nothing is reconciled.

Our side is the vendor's answered CDRs (``cdrs.vendor``, duration above 0) with the
vendor-side ``cost`` rated for them: rate the period first. A call of ours and a row of theirs
match when the numbers are equal and the starts are at most ``time_tolerance_s`` apart,
one-to-one, the nearest pairs first. A matched pair whose duration differs by more than
``duration_tolerance_s`` or whose ``amount_diff`` (theirs minus ours) falls outside
``[amount_lower, amount_upper]`` is a ``deviation`` (also when we have no cost for the call);
unmatched calls are ``only_ours`` / ``only_theirs``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from ratelab.fx import base_currency
from ratelab.money import MoneyLike, to_decimal
from ratelab.reports.common import ReportError, When, check_party, load_sql, period

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse

__all__ = ["THEIR_COLUMNS", "TheirFileError", "read_their_cdrs", "reconcile",
           "reconcile_summary"]

#: Canonical column of their file -> accepted header spellings (normalised: lower case, "_").
THEIR_COLUMNS: dict[str, tuple[str, ...]] = {
    "callee": ("callee", "callee_e164", "number", "dst", "destination_number"),
    "start_time": ("start_time", "start", "connect_time", "start_ts"),
    "duration_s": ("duration_s", "duration", "billsec"),
    "amount": ("amount", "cost", "charge"),
}

_THEIRS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "line": pl.Int64, "callee": pl.String, "their_start": pl.Datetime("us"),
    "their_duration_s": pl.Decimal(18, 3), "their_amount": pl.Decimal(18, 6)}
_DIGITS = re.compile(r"\d{1,17}")


class TheirFileError(ReportError):
    """Their CDR file was rejected; ``problems`` lists every (file, line, reason)."""

    def __init__(self, file: str, problems: list[tuple[str, int, str]]) -> None:
        self.file = file
        self.problems = problems
        listing = "\n".join(f"{f}:{line}: {reason}" for f, line, reason in problems)
        super().__init__(f"{len(problems)} problem(s) in {file}; nothing was reconciled:\n"
                         f"{listing}")


@dataclass(frozen=True)
class _Row:
    line: int
    callee: str
    their_start: datetime
    their_duration_s: Decimal
    their_amount: Decimal


def _header(cell: str) -> str:
    return re.sub(r"[\s\-]+", "_", cell.strip().strip('"').lstrip("\ufeff").strip().lower())


def _number(text: str, field: str, places: int) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{field} {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{field} {text!r} is not a number")
    if value < 0:
        raise ValueError(f"negative {field} {text.strip()}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValueError(f"{field} {text.strip()} has more than {places} decimal places")
    return value


def _start(text: str) -> datetime:
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ValueError(f"start_time {raw!r} is not an ISO 8601 time "
                         "(e.g. 2026-11-02T10:00:00Z)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _parse(line: int, cells: list[str], where: dict[str, int]) -> tuple[_Row | None, list[str]]:
    problems: list[str] = []
    values: dict[str, object] = {}
    for name, index in where.items():
        text = cells[index].strip() if index < len(cells) else ""
        if not text:
            problems.append(f"empty {name}")
            continue
        try:
            if name == "callee":
                number = re.sub(r"[\s\-]", "", text).removeprefix("+")
                if not _DIGITS.fullmatch(number):
                    raise ValueError(f"callee {text!r} is not an E.164 number (1-17 digits)")
                values[name] = number
            elif name == "start_time":
                values[name] = _start(text)
            elif name == "duration_s":
                values[name] = _number(text, name, 3)
            else:
                values[name] = _number(text, name, 6)
        except ValueError as bad:
            problems.append(str(bad))
    if problems:
        return None, problems
    # values holds what the readers above returned for each column: str, datetime, Decimal.
    return _Row(line, values["callee"], values["start_time"],  # type: ignore[arg-type]
                values["duration_s"], values["amount"]), []  # type: ignore[arg-type]


def read_their_cdrs(path: str | Path) -> pl.DataFrame:
    """Read and check a vendor CDR file: line, callee, their_start, their_duration_s,
    their_amount. Raises :class:`TheirFileError` listing every bad row.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "theirs.csv")
    >>> _ = open(path, "w").write("Number;Connect Time;Billsec;Charge\\n"
    ...                           "+44 7700 900001;2026-11-02 10:00:00;61;0.0244\\n"
    ...                           "447700900002;yesterday;-3;0.01\\n")
    >>> try:
    ...     read_their_cdrs(path)
    ... except TheirFileError as err:
    ...     for _, line, reason in err.problems:
    ...         print(line, reason)
    3 start_time 'yesterday' is not an ISO 8601 time (e.g. 2026-11-02T10:00:00Z)
    3 negative duration_s -3
    """
    file = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise ReportError(f"cannot read {file}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TheirFileError(file, [(file, 1, "not UTF-8 text; save it as UTF-8")]) from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",;\t|", key=lambda d: first.count(d))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    previous = 0
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((previous + 1, cells))
            previous = reader.line_num
    except csv.Error as err:
        raise TheirFileError(file, [(file, previous + 1, f"unreadable CSV: {err}")]) from None
    if not records:
        raise TheirFileError(file, [(file, 1, "empty file: no header row")])
    (header_line, header), data = records[0], records[1:]
    where: dict[str, int] = {}
    problems: list[tuple[str, int, str]] = []
    for index, cell in enumerate(header):
        name = _header(cell)
        for column, spellings in THEIR_COLUMNS.items():
            if name in spellings:
                if column in where:
                    problems.append((file, header_line, f"two columns for {column}: "
                                     f"{header[where[column]]!r} and {cell!r}"))
                where[column] = index
    for column, spellings in THEIR_COLUMNS.items():
        if column not in where:
            problems.append((file, header_line, f"missing column {column} (one of "
                             f"{', '.join(spellings)}; found: {', '.join(header)})"))
    if problems:
        raise TheirFileError(file, problems)
    rows: list[_Row] = []
    for line, cells in data:
        row, reasons = _parse(line, cells, where)
        problems.extend((file, line, reason) for reason in reasons)
        if row is not None:
            rows.append(row)
    if problems:
        raise TheirFileError(file, problems)
    return pl.DataFrame([r.__dict__ for r in rows], schema=_THEIRS_SCHEMA, orient="row")


def _queries() -> dict[str, str]:
    parts = re.split(r"^-- name: (\w+)\n", load_sql("reconcile"), flags=re.M)
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2],
                                                                 strict=True)}


def _seconds(value: MoneyLike | float, name: str) -> Decimal:
    try:   # seconds, not money: a float such as 2.5 is taken as written
        seconds = to_decimal(str(value) if isinstance(value, float) else value)
    except (TypeError, ValueError) as err:
        raise ReportError(f"{name}: {err}") from None
    if seconds < 0:
        raise ReportError(f"{name} must not be negative, got {seconds}")
    return seconds


def reconcile(
    wh: Warehouse,
    vendor: str,
    their_csv: str | Path,
    start: When,
    end: When,
    *,
    time_tolerance_s: MoneyLike | float = 2,
    duration_tolerance_s: MoneyLike | float = 1,
    amount_lower: MoneyLike = "-0.01",
    amount_upper: MoneyLike = "0.01",
) -> pl.DataFrame:
    """Compare ``vendor``'s CDR file with our calls through them in [start, end).

    Returns status (matched | deviation | only_ours | only_theirs), callee, our_start,
    their_start, our_duration_s, their_duration_s, duration_diff_s (Decimal(18,3) seconds,
    theirs minus ours), our_amount, their_amount, amount_diff (theirs minus ours), then cdr_id
    (ours), their_line (line in their file) and currency (of every amount: the currency of the
    vendor table that priced the calls; a period priced in two currencies is refused, as an
    invoice is in one); sorted by start, callee. See the module
    docstring for the file format and the rules.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> theirs = wh.path.parent / "theirs.csv"
    >>> _ = theirs.write_text("callee,start_time,duration_s,amount\\n")
    >>> frame = reconcile(wh, "carrier_x", theirs, "2026-11-02", "2026-11-03")
    >>> reconcile_summary(frame)["status"].to_list()
    ['matched', 'deviation', 'only_ours', 'only_theirs']
    """
    begin, finish = period(start, end)
    if not isinstance(vendor, str):
        raise ReportError(f"vendor must be a name (a string), got {vendor!r}")
    check_party(wh, "vendor", vendor)
    tolerance = _seconds(time_tolerance_s, "time_tolerance_s")
    duration_tolerance = _seconds(duration_tolerance_s, "duration_tolerance_s")
    try:
        lower, upper = to_decimal(amount_lower), to_decimal(amount_upper)
    except (TypeError, ValueError) as err:
        raise ReportError(f"amount bounds: {err}") from None
    if lower > upper:
        raise ReportError(f"amount_lower {lower} is above amount_upper {upper}")
    theirs = read_their_cdrs(their_csv)
    margin = timedelta(microseconds=int(tolerance * 1_000_000))
    lo, hi = begin - margin, finish + margin
    theirs = theirs.filter((pl.col("their_start") >= lo) & (pl.col("their_start") <= hi))
    sql = _queries()
    with wh.connection() as con:
        ours = con.sql(sql["ours"], params={"vendor": vendor, "lo": lo, "hi": hi}).pl()
        base = base_currency(con)
    unrated = ours.filter(~pl.col("rated") & (pl.col("our_start") >= begin)
                          & (pl.col("our_start") < finish)).height
    if unrated:
        raise ReportError(f"{unrated} answered call(s) of {vendor} in the period are not rated "
                          "yet: rate them first (`ratelab rate` or Warehouse.rate)")
    currencies = sorted(ours["our_currency"].drop_nulls().unique().to_list())
    if len(currencies) > 1:
        raise ReportError(f"{vendor}'s calls in the period were priced in "
                          f"{' and '.join(currencies)}: an invoice is in one currency, so "
                          "reconcile the part of the period priced in each on its own")
    currency = currencies[0] if currencies else base
    ours = ours.drop("our_currency")
    scratch = duckdb.connect()
    try:
        scratch.execute("SET TimeZone = 'UTC'")
        scratch.register("ours", ours)
        scratch.register("theirs", theirs)
        candidates = scratch.execute(sql["candidates"],
                                     {"tolerance_us": int(tolerance * 1_000_000)}).fetchall()
        used_ours: set[int] = set()
        used_theirs: set[int] = set()
        pairs: list[tuple[int, int]] = []
        for seq, line, _gap in candidates:   # nearest first: greedy one-to-one
            if seq in used_ours or line in used_theirs:
                continue
            used_ours.add(seq)
            used_theirs.add(line)
            pairs.append((seq, line))
        scratch.register("pairs", pl.DataFrame(pairs, schema={"cdr_seq": pl.Int64,
                                                              "line": pl.Int64}, orient="row"))
        result: pl.DataFrame = scratch.sql(sql["result"], params={  # .pl() is typed Any
            "duration_tolerance_s": duration_tolerance, "amount_lower": lower,
            "amount_upper": upper, "start": begin, "end": finish, "currency": currency}).pl()
        return result
    finally:
        scratch.close()


def reconcile_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per status (all four, in order): calls, amount (theirs minus ours, a missing side
    counting 0), our_amount, their_amount and currency (the frame's).

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> theirs = wh.path.parent / "theirs.csv"
    >>> _ = theirs.write_text("dst,start,billsec,cost\\n")
    >>> summary = reconcile_summary(reconcile(wh, "carrier_x", theirs, "2026-11-02",
    ...                                       "2026-11-03"))
    >>> summary.filter(pl.col("status") == "only_ours")["calls"].item() > 0
    True
    """
    scratch = duckdb.connect()
    try:
        scratch.register("frame", frame)
        summary: pl.DataFrame = scratch.sql(_queries()["summary"]).pl()  # .pl() is typed Any
        return summary
    finally:
        scratch.close()
