"""`--format csv|json|xlsx` and `--output FILE` on `ratelab summary` and `ratelab table`: the
exports are read back and compared with the frames exactly (money as decimal text with the
column's scale, never a float)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

import ratelab
from ratelab import reports
from tests.helpers import ratelab as run_cli

PERIOD = ("-p", "start", "2026-11-02", "-p", "end", "2026-11-03")


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return ratelab.sample_warehouse(cdrs=120, rated=True,
                                    directory=tmp_path_factory.mktemp("exports"))


def text_of(value: Any) -> Any:
    """What an export must hold for a frame value, derived independently of ratelab's code."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        assert Decimal(text) == value
        return text
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, rows


def check_csv(text: str, frame: pl.DataFrame) -> None:
    header, rows = csv_rows(text)
    assert header == frame.columns
    assert len(rows) == frame.height
    for got, want in zip(rows, frame.iter_rows(), strict=True):
        for cell, value, dtype in zip(got, want, frame.dtypes, strict=True):
            if value is None:
                assert cell == ""
            elif dtype == pl.Decimal:
                assert cell == text_of(value) and Decimal(cell) == value
                assert "e" not in cell.lower()
            elif dtype == pl.Float64:
                assert float(cell) == value          # the same float, not a rounded one
            elif dtype == pl.Boolean:
                assert cell == ("true" if value else "false")
            else:
                assert cell == str(text_of(value))


def check_json(text: str, frame: pl.DataFrame) -> None:
    records = json.loads(text)
    assert [list(r) for r in records] == [frame.columns] * frame.height
    for record, want in zip(records, frame.iter_rows(named=True), strict=True):
        for column, dtype in frame.schema.items():
            got, value = record[column], want[column]
            if dtype == pl.Decimal:
                assert isinstance(got, str), f"{column} must be decimal text, not {got!r}"
                assert got == text_of(value)
            elif dtype == pl.Float64:
                assert got == value and (got is None or isinstance(got, float))
            else:
                assert got == text_of(value)


def check_xlsx(path: Path, frame: pl.DataFrame) -> None:
    book = openpyxl.load_workbook(path)
    rows = list(book.active.iter_rows())
    assert [c.value for c in rows[0]] == frame.columns
    assert len(rows) - 1 == frame.height
    for cells, want in zip(rows[1:], frame.iter_rows(), strict=True):
        for cell, value, dtype in zip(cells, want, frame.dtypes, strict=True):
            if value is None:
                assert cell.value is None
            elif dtype == pl.Decimal:
                assert cell.data_type == "s" and cell.value == text_of(value)
            elif dtype == pl.Float64:  # ratios: XLSX numbers hold 16 significant digits
                assert cell.data_type == "n"
                assert cell.value == pytest.approx(value, rel=1e-15, abs=0)
            elif dtype in (pl.Int64, pl.Int32, pl.UInt32, pl.Boolean):
                assert cell.value == value and not isinstance(cell.value, str)
            else:
                assert cell.value == text_of(value)


def test_summary_csv_to_stdout(wh: ratelab.Warehouse) -> None:
    result = run_cli("summary", "--by", "destination", "--format", "csv", warehouse=wh.path)
    assert result.returncode == 0, result.stderr
    frame = wh.margin_summary("destination")
    check_csv(result.stdout, frame)
    assert "SYNTHETIC DATA" in result.stderr and "SYNTHETIC" not in result.stdout
    # money keeps its six places: what finance reconciles against
    assert any(cell.endswith("000") for row in csv_rows(result.stdout)[1] for cell in row)


def test_summary_json_and_xlsx_files(wh: ratelab.Warehouse, tmp_path: Path) -> None:
    frame = wh.margin_summary("vendor")
    out = tmp_path / "margins.json"
    result = run_cli("summary", "--by", "vendor", "--output", out, warehouse=wh.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"wrote {out}" in result.stderr
    check_json(out.read_text(), frame)
    book = tmp_path / "margins.xlsx"
    ok = run_cli("summary", "--by", "vendor", "--format", "xlsx", "-o", book, warehouse=wh.path)
    assert ok.returncode == 0, ok.stderr
    check_xlsx(book, frame)


def test_summary_top_limits_the_export_rows(wh: ratelab.Warehouse) -> None:
    result = run_cli("summary", "--by", "destination", "--top", "2", "--format", "json",
                     warehouse=wh.path)
    assert result.returncode == 0
    check_json(result.stdout, wh.margin_summary("destination").head(2))


@pytest.mark.parametrize(("name", "params", "call"), [
    ("margin_by", ("-p", "by", "vendor"),
     lambda wh: reports.margin_by(wh, "2026-11-02", "2026-11-03", by="vendor")),
    ("revenue_details", ("-p", "customer", "acme"),
     lambda wh: reports.revenue_details(wh, "2026-11-02", "2026-11-03", customer="acme")),
    ("settlement_summary", (),
     lambda wh: reports.settlement_summary(wh, "2026-11-02", "2026-11-03")),
    ("traffic_quality", ("-p", "grain", "hour"),
     lambda wh: reports.traffic_quality(wh, "2026-11-02", "2026-11-03", grain="hour")),
    ("top_loss_makers", ("-p", "n", "3"),
     lambda wh: reports.top_loss_makers(wh, "2026-11-02", "2026-11-03", n=3)),
])
def test_table_exports_equal_the_report_frames(wh: ratelab.Warehouse, tmp_path: Path, name: str,
                                               params: tuple[str, ...], call: Any) -> None:
    frame = call(wh)
    as_csv = run_cli("table", name, *PERIOD, *params, "--format", "csv", warehouse=wh.path)
    assert as_csv.returncode == 0, as_csv.stderr
    check_csv(as_csv.stdout, frame)
    as_json = run_cli("table", name, *PERIOD, *params, "--format", "json", warehouse=wh.path)
    check_json(as_json.stdout, frame)
    book = tmp_path / f"{name}.xlsx"
    as_xlsx = run_cli("table", name, *PERIOD, *params, "--output", book, warehouse=wh.path)
    assert as_xlsx.returncode == 0, as_xlsx.stderr
    check_xlsx(book, frame)


def test_gateway_bill_money_is_exact_text(wh: ratelab.Warehouse) -> None:
    frame = reports.gateway_bill(wh, "2026-11-01", "2026-12-01", "acme", "customer")
    result = run_cli("table", "gateway_bill", "-p", "start", "2026-11-01", "-p", "end",
                     "2026-12-01", "-p", "party", "acme", "-p", "side", "customer",
                     "--format", "json", warehouse=wh.path)
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["amount"] == format(frame["amount"][0], "f")
    assert Decimal(record["amount"]) == frame["amount"].sum()
    assert record["day"] == "2026-11-02"


def test_xlsx_needs_an_output_file(wh: ratelab.Warehouse) -> None:
    for args in (("summary", "--format", "xlsx"), ("table", "margin_by", *PERIOD, "--format",
                                                   "xlsx")):
        result = run_cli(*args, warehouse=wh.path)
        assert result.returncode == 2
        assert "--format xlsx needs --output" in result.stderr
