"""Terminal tables never lie: at 60, 80 and 120 columns no number is cut, no column dropped, no
line wider than the terminal; text wraps, columns go into panels one under the other (each
repeating the first column), or each row becomes a block of ``key: value`` lines.

The printed tables are parsed back (columns from the dashes line, wrapped text joined; or the
blocks) and compared cell by cell with the frame's exact values, formatted by the documented
rules (money rounded half-up to 2 places in ``summary``; exact in ``ratelab table``).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

import ratelab
from ratelab.cli.output import _count, _percent, format_money, render_table
from ratelab.cli.tables import frame_rows
from tests.helpers import ratelab as run_cli

WIDTHS = (60, 80, 120)
SUMMARY_HEADERS = ["Destination", "Calls", "Answered", "ASR", "Minutes", "Revenue", "Cost",
                   "Profit", "Margin", "Rated margin", "Markup", "Flagged", "Flagged revenue"]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    return ratelab.sample_warehouse(cdrs=300, rated=True,
                                    directory=tmp_path_factory.mktemp("tables"))


def _parse_columns(lines: list[str], dashes: int, headers: list[str]) -> list[list[str]]:
    """The rows of one column layout: ``lines[dashes]`` is its dashes line, the lines above
    it (from the top) its headers, the lines below it its rows."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[dashes])]
    assert len(spans) == len(headers), f"a column was dropped: {lines[dashes]!r}"

    def cells(line: str) -> list[str]:
        return [line[a:b + (len(line) if k == len(spans) - 1 else 0)].strip()
                for k, (a, b) in enumerate(spans)]

    titles = [i for i, line in enumerate(lines[:dashes]) if line.startswith("Margin by")]
    top = titles[-1] + 1 if titles else 0  # below the banner and the title
    header_cells = [cells(line) for line in lines[top:dashes]]
    joined = [" ".join(c[k] for c in header_cells if c[k]) for k in range(len(headers))]
    assert joined == headers, "every header, whole (wrapped at spaces only)"
    first_number = next(k for k, (a, b) in enumerate(spans) if k > 0)
    parsed: list[list[str]] = []
    for line in lines[dashes + 1:]:
        if line.startswith("Total:"):
            break
        row = cells(line)
        if row[first_number]:          # a new row: its numbers are on its first line
            parsed.append(row)
        else:                          # a continuation: wrapped text
            for k, cell in enumerate(row):
                if cell:
                    parsed[-1][k] = f"{parsed[-1][k]} {cell}".strip()
    return parsed


def parse_table(text: str, headers: list[str]) -> list[list[str]]:
    """The rows of a printed table, whatever its layout (columns, wrapped, panels, blocks).

    Panels (tables one under the other, separated by a blank line, each repeating the first
    column) are parsed one by one and joined on their row order, checking the first column.
    """
    panels = [p.splitlines() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(panels) > 1 and all(any(re.fullmatch(r"[- ]*-", line) for line in p)
                               for p in panels):
        joined: list[list[str]] | None = None
        seen: list[str] = []
        for lines in panels:
            dashes = next(i for i, line in enumerate(lines) if re.fullmatch(r"[- ]*-", line))
            spans = len(re.findall(r"-+", lines[dashes]))
            names = ([headers[0], *headers[len(seen):len(seen) + spans - 1]] if seen
                     else headers[:spans])
            rows = _parse_columns(lines, dashes, names)
            if joined is None:
                joined = rows
            else:
                assert [r[0] for r in rows] == [r[0] for r in joined], "panels share the key"
                joined = [[*a, *b[1:]] for a, b in zip(joined, rows, strict=True)]
            seen = names if not seen else [*seen, *names[1:]]
        assert seen == headers, f"every column in some panel: {seen}"
        return joined or []
    lines = [line for line in text.splitlines() if line.strip()]
    dashes = next((i for i, line in enumerate(lines) if re.fullmatch(r"[- ]*-", line)), None)
    if dashes is None:  # blocks of `key: value` lines
        rows: list[list[str]] = []
        record: dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition(":")
            if not sep or key.strip() not in headers:
                continue
            if key.strip() == headers[0] and record:
                rows.append([record[h] for h in headers])
                record = {}
            record[key.strip()] = value.strip()
        if record:
            rows.append([record[h] for h in headers])
        return rows
    return _parse_columns(lines, dashes, headers)


def summary_rows(frame: pl.DataFrame) -> list[list[str]]:
    """What `ratelab summary --by destination` must show for each row of the frame."""
    return [[r["destination"], _count(r["calls"]), _count(r["answered"]),
             _percent(r["answered"] / r["calls"] if r["calls"] else None),
             format_money(r["minutes"], 1), format_money(r["revenue"]), format_money(r["cost"]),
             format_money(r["profit"]), _percent(r["margin"]), _percent(r["margin_ok"]),
             _percent(r["markup"]), _count(r["flagged"]), format_money(r["flagged_revenue"])]
            for r in frame.iter_rows(named=True)]


@pytest.mark.parametrize("width", WIDTHS)
def test_summary_fits_the_terminal_and_shows_every_exact_value(wh: ratelab.Warehouse,
                                                               width: int) -> None:
    result = run_cli("summary", "--by", "destination", warehouse=wh.path,
                     env={"COLUMNS": str(width)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= width, out
    assert "…" not in out
    expected = summary_rows(wh.margin_summary("destination"))
    assert parse_table(out, SUMMARY_HEADERS) == expected
    total = " ".join(line for line in out.splitlines() if not line.startswith(
        ("Margin", "SYNTHETIC", "-")))
    assert "Total:" in total
    # the totals line wraps at spaces only: each money figure of it is whole
    frame = wh.margin_summary("destination")
    assert f"revenue {format_money(frame['revenue'].sum())} USD" in " ".join(
        out[out.index("Total:"):].split())


def test_the_layouts_differ_by_width(wh: ratelab.Warehouse) -> None:
    outs = {w: run_cli("summary", "--by", "destination", warehouse=wh.path,
                       env={"COLUMNS": str(w)}).stdout for w in (*WIDTHS, 200)}
    for narrow in (60, 80):                        # panels, each repeating the destination
        assert "Destination:" not in outs[narrow]
        assert len(re.findall(r"^United Kingdom - Mobile ", outs[narrow], re.M)) >= 2
        assert len(re.findall(r"^Destination ", outs[narrow], re.M)) >= 2
    narrowest = run_cli("summary", "--by", "destination", warehouse=wh.path,
                        env={"COLUMNS": "30"}).stdout                       # blocks
    assert re.search(r"^Destination: +United Kingdom - Mobile$", narrowest, re.M)
    assert re.search(r"^Flagged revenue: +0\.00$", narrowest, re.M)
    assert parse_table(narrowest, SUMMARY_HEADERS) == summary_rows(
        wh.margin_summary("destination"))
    assert "Destination:" not in outs[120]                                  # wrapped
    assert "United Kingdom - Mobile" not in outs[120]
    assert re.search(r"^Rated +$|^.* Rated .*$", outs[120], re.M)           # header wrapped
    wide = [line for line in outs[200].splitlines() if "United Kingdom - Mobile" in line]
    assert len(wide) == 1                                                   # one line a row
    assert "Rated margin" in outs[200] and "Flagged revenue" in outs[200]
    for out in outs.values():
        assert parse_table(out, SUMMARY_HEADERS) == summary_rows(
            wh.margin_summary("destination"))


@pytest.mark.parametrize("width", WIDTHS)
def test_report_tables_fit_and_keep_every_value(wh: ratelab.Warehouse, width: int) -> None:
    frame = ratelab.reports.revenue_details(wh, "2026-11-02", "2026-11-03")
    result = run_cli("table", "revenue_details", "-p", "start", "2026-11-02", "-p", "end",
                     "2026-11-03", warehouse=wh.path, env={"COLUMNS": str(width)})
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= width
    headers, rows, _ = frame_rows(frame)
    assert parse_table(result.stdout, headers) == rows
    # exact money: the frame's Decimal, trailing zeros beyond two places dropped
    revenue = [r[headers.index("revenue")] for r in rows]
    assert revenue == [f"{v:,f}".rstrip("0").ljust(len(f"{v:,.2f}"), "0")
                       for v in frame["revenue"]]


def test_a_number_wider_than_the_terminal_is_never_cut() -> None:
    big = "123,456,789,012.345678"
    text = render_table(["Customer", "Revenue"], [["acme", big]], right=[1], width=12)
    assert big in text.splitlines()[1]
    assert parse_table(text, ["Customer", "Revenue"]) == [["acme", big]]


def test_wrapped_text_keeps_every_character() -> None:
    name = "an exceptionally long destination name that wraps"
    text = render_table(["Destination", "Calls", "Revenue"], [[name, "7", "1,779.05"]],
                        right=[1, 2], width=30)
    assert max(len(line) for line in text.splitlines()) <= 30
    assert parse_table(text, ["Destination", "Calls", "Revenue"]) == [[name, "7", "1,779.05"]]


def test_pipes_get_one_line_per_row_without_a_width(wh: ratelab.Warehouse) -> None:
    result = run_cli("summary", "--by", "destination", warehouse=wh.path)
    assert result.returncode == 0
    assert parse_table(result.stdout, SUMMARY_HEADERS) == summary_rows(
        wh.margin_summary("destination"))
    assert "Destination:" not in result.stdout


def test_table_to_a_file_is_the_unwrapped_table(wh: ratelab.Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "summary.txt"
    result = run_cli("summary", "--by", "destination", "--output", out, warehouse=wh.path,
                     env={"COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert parse_table(out.read_text(), SUMMARY_HEADERS) == summary_rows(
        wh.margin_summary("destination"))


def test_flagged_calls_show_beside_the_fully_rated_margin(tmp_path: Path) -> None:
    from datetime import datetime

    from ratelab.reports.margins import headline
    from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs

    wh = ratelab.sample_warehouse(cdrs=100, rated=True, directory=tmp_path / "wh")
    spec = SyntheticSpec(["acme"], ["unpriced_vendor"], ["44"], datetime(2026, 11, 2),
                         datetime(2026, 11, 3), answer_ratio=1.0)
    write_synthetic_cdrs(tmp_path / "more", 30, spec, batch="unpriced")
    wh.ingest(tmp_path / "more")
    wh.rate()
    head = headline(wh).row(0, named=True)
    assert head["flagged"] > 0 and head["margin"] != head["margin_ok"]
    result = run_cli("summary", "--by", "vendor", warehouse=wh.path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    frame = wh.margin_summary("vendor")
    headers = ["Vendor", *SUMMARY_HEADERS[1:]]
    rows = [[r["vendor"], *row[1:]] for r, row in zip(
        frame.iter_rows(named=True), summary_rows(frame.rename({"vendor": "destination"})),
        strict=True)]
    assert parse_table(result.stdout, headers) == rows
    total = " ".join(result.stdout[result.stdout.index("Total:"):].split())
    assert f"{head['flagged']} calls flagged" in total
    assert f"revenue {format_money(head['flagged_revenue'])} USD" in total
    assert f"margin of the fully rated calls {_percent(head['margin_ok'])}" in total
    assert f"margin {_percent(head['margin'])}" in total
