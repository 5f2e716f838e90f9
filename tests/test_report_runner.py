"""The report runner: the catalogue read from the notebooks, periods, the kernel, running a
report (Python API and `ratelab report`), and how a broken notebook is reported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import ratelab
from ratelab.charts import table_html
from ratelab.cli import cli
from ratelab.report_page import decimal_param, int_param, report_period, text_param
from ratelab.report_runner import (
    KERNEL_NAME,
    ReportError,
    ReportRunError,
    _stamped,
    ensure_kernel,
    list_reports,
    report_info,
    run_report,
)

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ["auto_create_rates", "break_even", "compare", "daily_report", "margin_by_destination",
           "rate_deviation", "reconciliation", "vendor_scorecard", "watch", "what_if"]


# -- the catalogue ---------------------------------------------------------------------------

def test_list_reports_reads_titles_and_parameters_from_the_notebooks() -> None:
    reports = list_reports()
    assert [info.name for info in reports] == REPORTS
    for info in reports:
        assert info.title and info.summary, info.name
        assert info.parameters.get("warehouse") == "data/warehouse.duckdb", info.name
        # every default is a string: papermill passes strings, prefixes and ids stay strings
        assert all(isinstance(v, str) for v in info.parameters.values()), info.name
        assert all(info.help[key] for key in info.parameters), info.name
    daily = report_info("daily_report")
    assert daily.title == "Daily report"
    assert daily.parameters == {"warehouse": "data/warehouse.duckdb", "start": "", "end": "",
                                "tz": "UTC"}
    assert "yesterday" in daily.help["start"]
    assert report_info("break_even").parameters["fixed_costs"] == "1000"
    assert report_info("vendor_scorecard").parameters["vendor"] == ""
    assert {"their_csv", "vendor"} <= set(report_info("reconciliation").parameters)
    assert {"change_pct", "vendor", "deck", "table"} <= set(report_info("what_if").parameters)


def test_papermill_reads_the_same_parameters() -> None:
    import papermill

    for info in list_reports():
        assert list(papermill.inspect_notebook(str(info.path))) == list(info.parameters)


def test_every_notebook_is_thin_and_tagged() -> None:
    for info in list_reports():
        nb = json.loads(info.path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, info.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] for c in code), f"{info.name} is saved with outputs"
        source = "".join("".join(c["source"]) for c in code)
        assert 'pio.renderers.default = "notebook"' in source
        assert "page.guard()" in source
        assert len(source.splitlines()) < 80, f"{info.name} is not thin"


def test_unknown_report_and_parameter_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="unknown report 'daily'; known: auto_create_rates"):
        report_info("daily")
    with pytest.raises(ReportError, match=r"unknown parameter.* customer for report break_even"):
        run_report("break_even", {"customer": "acme"}, tmp_path)
    assert not list(tmp_path.iterdir())


# -- periods and parameters --------------------------------------------------------------------

def test_report_period_defaults_to_yesterday_in_the_time_zone() -> None:
    assert report_period("", "", today=date(2026, 11, 3)) == (datetime(2026, 11, 2),
                                                               datetime(2026, 11, 3))
    # Berlin's 3 November starts at 23:00 UTC on the 2nd (CET, UTC+1)
    assert report_period("", "", "Europe/Berlin", today=date(2026, 11, 3)) == (
        datetime(2026, 11, 1, 23), datetime(2026, 11, 2, 23))
    assert report_period("", "", default_days=7, today=date(2026, 11, 8))[0] == datetime(
        2026, 11, 1)
    assert report_period("2026-11-02", "")[1] == datetime(2026, 11, 3)
    assert report_period("", "2026-11-03")[0] == datetime(2026, 11, 2)
    assert report_period("2026-11-02T10:00+02:00", "2026-11-02T12:00", "UTC") == (
        datetime(2026, 11, 2, 8), datetime(2026, 11, 2, 12))


@pytest.mark.parametrize("start, end, tz, message", [
    ("2026-11-31", "", "UTC", "start '2026-11-31' is not a date"),
    ("2026-11-02", "tomorrow", "UTC", "end 'tomorrow' is not a date"),
    ("2026-11-03", "2026-11-02", "UTC", "the period is empty"),
    ("", "", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
])
def test_bad_periods_are_report_errors(start: str, end: str, tz: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        report_period(start, end, tz)


def test_parameter_helpers() -> None:
    assert text_param(" 0044 ", "prefix") == "0044"
    assert text_param("", "vendor") is None
    with pytest.raises(ReportError, match="the parameter their_csv is required"):
        text_param(" ", "their_csv", required=True)
    assert str(decimal_param("0.25", "margin")) == "0.25"
    with pytest.raises(ReportError, match="margin '25%' is not a number"):
        decimal_param("25%", "margin")
    assert int_param("", "places") is None
    with pytest.raises(ReportError, match=r"places .4\.5. is not a whole number"):
        int_param("4.5", "places")


def test_page_tables_are_for_people_and_ratios_are_percentages() -> None:
    import polars as pl

    frame = pl.DataFrame({"day": [date(2026, 11, 2)], "bucket": [datetime(2026, 11, 2, 10)],
                          "vendor": ["0044"], "calls": [3], "revenue": [Decimal("0.120000")],
                          "margin": [0.18432], "acd_s": [61.25], "pdd_ms": [None]},
                         schema_overrides={"revenue": pl.Decimal(18, 6),
                                           "pdd_ms": pl.Float64})
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table_html(frame))
    assert cells == ["2026-11-02", "2026-11-02 10:00", "0044", "3", "0.12", "18.4%", "61.2", ""]
    assert "<th>revenue</th>" in table_html(frame)
    many = pl.DataFrame({"n": list(range(60))})
    assert table_html(many, rows=5).count("<tr>") == 6  # header + 5


def test_report_page_table_shows_the_people_table_not_raw_decimals() -> None:
    import polars as pl
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from ratelab.report_page import ReportPage

    frame = pl.DataFrame({"revenue": [Decimal("1234.500000")], "margin_ok": [0.3371]},
                         schema_overrides={"revenue": pl.Decimal(18, 6)})
    InteractiveShell.instance()   # display() publishes to a shell, which capture_output reads
    try:
        with capture_output() as captured:
            ReportPage.table(frame)
    finally:
        InteractiveShell.clear_instance()   # later tests print outside a shell
    html = "".join(o.data.get("text/html", "") for o in captured.outputs)
    assert re.findall(r"<td[^>]*>(.*?)</td>", html) == ["1,234.50", "33.7%"]
    assert "1234.500000" not in html


# -- kernel and output files -------------------------------------------------------------------

def test_ensure_kernel_registers_a_kernel_that_runs_this_python() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    assert ensure_kernel() == KERNEL_NAME
    assert ensure_kernel() == KERNEL_NAME  # idempotent
    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    assert spec.argv[0] in ("python", sys.executable)
    assert Path(spec.resource_dir).is_relative_to(Path(sys.prefix)) or spec.argv[0] != "python"


def test_output_names_never_overwrite(tmp_path: Path) -> None:
    first = _stamped(tmp_path, "daily_report")
    first.with_suffix(".html").write_text("x")
    second = _stamped(tmp_path, "daily_report")
    assert first != second
    assert second.name.startswith(first.name)
    assert first.name.startswith("daily_report-20") and first.name.endswith("Z")


def test_a_failing_notebook_raises_with_the_cell_and_keeps_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = {"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Broken\n", "\n",
                                                                         "It fails."]},
        {"cell_type": "code", "id": "b", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "execution_count": None, "source": ['answer = "42"  # a string']},
        {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["assert isinstance(answer, str), type(answer)\n",
                    "raise RuntimeError(f'boom {answer}')"]},
    ], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}, "ratelab": {"report": True}},
          "nbformat": 4, "nbformat_minor": 5}
    (folder / "broken.ipynb").write_text(json.dumps(nb))
    (folder / "scratch.ipynb").write_text(json.dumps({**nb, "metadata": {}}))
    assert [(i.name, i.title, i.parameters) for i in list_reports(folder)] == [
        ("broken", "Broken", {"answer": "42"})]
    with pytest.raises(ReportRunError, match=r"report broken failed in cell \d+: "
                                             r"RuntimeError: boom 0042"):
        run_report("broken", {"answer": "0042"}, tmp_path / "out", notebooks_dir=folder)
    written = sorted(p.suffix for p in (tmp_path / "out").iterdir())
    assert written == [".html", ".ipynb"]


# -- the command line --------------------------------------------------------------------------

def test_report_list_shows_every_report_and_its_defaults() -> None:
    result = CliRunner().invoke(cli, ["report", "--list"])
    assert result.exit_code == 0, result.output
    for name in REPORTS:
        assert name in result.output
    assert "fixed_costs='1000'" in result.output
    result = CliRunner().invoke(cli, ["report", "vendor_scorecard", "--list"])
    assert result.exit_code == 0, result.output
    assert "Vendor scorecard" in result.output
    assert "vendor gateway name; empty: all vendors" in result.output


def test_report_without_a_name_or_with_an_unknown_one_fails_clearly() -> None:
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2
    assert "name a report" in result.output
    result = CliRunner().invoke(cli, ["report", "daily"])
    assert result.exit_code == 2
    assert "unknown report 'daily'" in result.output


def test_ratelab_report_runs_a_notebook_on_the_global_warehouse(tmp_path: Path) -> None:
    wh = ratelab.sample_warehouse(cdrs=30, rated=True, directory=tmp_path / "wh")
    env = {k: v for k, v in os.environ.items() if k != "RATELAB_WAREHOUSE"}
    result = subprocess.run(
        [sys.executable, "-m", "ratelab.cli", "--warehouse", str(wh.path), "report",
         "rate_deviation", "--param", "start", "2026-11-02", "-p", "end", "2026-11-03",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    html, notebook = (Path(line.removeprefix("wrote ")) for line in result.stdout.splitlines())
    assert html.suffix == ".html" and notebook.suffix == ".ipynb"
    assert html.name.startswith("rate_deviation-")
    text = html.read_text()
    assert "No call was sold below its cost in this period." in text
    assert str(wh.path) in text
