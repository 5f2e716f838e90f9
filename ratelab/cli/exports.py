"""Frames out of the command line: ``--format table|csv|json|xlsx`` and ``--output FILE``.

Exports carry the frame's exact values, never the rounded ones of the terminal table:

- money (Decimal columns) is decimal text with the column's scale: ``"0.034500"`` in CSV and
  JSON (a JSON string, never a float), a text cell in XLSX;
- counts are integers, ratios (margin, markup, ASR: Float64 in the frame) plain numbers;
- dates and times are ISO 8601 text (``2026-11-02``, ``2026-11-02T10:00:00``), naive UTC;
- a missing value is an empty CSV field, JSON ``null``, an empty XLSX cell.

>>> import polars as pl
>>> from decimal import Decimal
>>> frame = pl.DataFrame({"vendor": ["carrier_x"], "calls": [3],
...                       "cost": [Decimal("0.034500")], "margin": [0.25]},
...                      schema_overrides={"cost": pl.Decimal(18, 6)})
>>> print(to_csv(frame), end="")
vendor,calls,cost,margin
carrier_x,3,0.034500,0.25
>>> print(to_json(frame))
[
 {"vendor": "carrier_x", "calls": 3, "cost": "0.034500", "margin": 0.25}
]
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["FORMATS", "export_value", "guess_format", "to_csv", "to_json", "write_export",
           "write_xlsx"]

FORMATS = ("table", "csv", "json", "xlsx")


def export_value(value: Any) -> Any:
    """One value as an export holds it: Decimal and times as exact text, the rest as is.

    >>> export_value(Decimal("1.500000")), export_value(date(2026, 11, 2)), export_value(None)
    ('1.500000', '2026-11-02', None)
    """
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _records(frame: pl.DataFrame) -> list[list[Any]]:
    return [[export_value(v) for v in row] for row in frame.iter_rows()]


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(frame: pl.DataFrame) -> str:
    """The frame as CSV text (comma-separated, a header line, ``\\n`` line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in _records(frame):
        writer.writerow([_csv_text(v) for v in row])
    return out.getvalue()


def to_json(frame: pl.DataFrame) -> str:
    """The frame as a JSON array of objects, one per line, keys in column order."""
    lines = [json.dumps(dict(zip(frame.columns, row, strict=True)), allow_nan=False)
             for row in _records(frame)]
    return "[\n" + ",\n".join(f" {line}" for line in lines) + ("\n]" if lines else "]")


def write_xlsx(frame: pl.DataFrame, path: str | Path, *, sheet: str = "ratelab") -> Path:
    """Write the frame to an XLSX workbook: a header row, then one row per frame row.

    Money and times are text cells (exact; a spreadsheet does not turn them into floats),
    counts and ratios numbers (ratios to 16 significant digits, more than a spreadsheet
    keeps), booleans booleans.
    """
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    assert ws is not None  # a new workbook has one sheet
    ws.title = sheet[:31]
    ws.append(list(frame.columns))
    for row in _records(frame):
        ws.append(row)
    for column, dtype in zip(ws.iter_cols(min_row=2), frame.dtypes, strict=False):
        if dtype == pl.Decimal or dtype.is_temporal():
            for cell in column:
                cell.number_format = "@"  # text: shown exactly as written
    target = Path(path)
    book.save(target)
    return target


def write_export(frame: pl.DataFrame, fmt: str, output: Path | None) -> str | None:
    """Write ``frame`` as ``fmt`` (csv, json, xlsx) to ``output``; return the text instead when
    ``output`` is None (csv and json only)."""
    if fmt == "xlsx":
        if output is None:
            raise ValueError("--format xlsx needs --output FILE.xlsx")
        write_xlsx(frame, output)
        return None
    text = to_csv(frame) if fmt == "csv" else to_json(frame) + "\n"
    if output is None:
        return text
    output.write_text(text, encoding="utf-8")
    return None


def guess_format(fmt: str | None, output: Path | None) -> str:
    """``--format`` as given, else from the ``--output`` suffix, else ``table``.

    >>> guess_format(None, Path("bill.xlsx")), guess_format(None, None), guess_format("csv", None)
    ('xlsx', 'table', 'csv')
    """
    if fmt:
        return fmt
    if output is not None and output.suffix.lower().lstrip(".") in FORMATS:
        return output.suffix.lower().lstrip(".")
    return "table"
