"""`ratelab table NAME`: the frame of any report function, as a table or an export.

NAME is one of the functions of :mod:`ratelab.reports` that take the warehouse first and return
a frame (``margin_by``, ``settlement_summary``, ``gateway_bill``, ...). Their parameters are
given as ``-p KEY VALUE``, exactly as in Python (``-p start 2026-11-01 -p by vendor``); values
are strings, whole numbers where the function's default is one (``-p n 5``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import polars as pl

from ratelab.cli.exports import FORMATS, guess_format, write_export
from ratelab.cli.output import print_table, render_table, table_width
from ratelab.report_page import RATIO_COLUMNS

if TYPE_CHECKING:
    from ratelab.cli import _State

__all__ = ["display_value", "frame_rows", "print_frame", "report_tables", "table"]



def display_value(column: str, value: Any) -> tuple[str, bool]:
    """One value as a terminal table shows it, and whether it is a number (right-aligned).

    Money (Decimal) is shown exactly: thousands separated, trailing zeros beyond two places
    dropped, never rounded. Ratios are percentages with one decimal; other floats one decimal.

    >>> display_value("cost", Decimal("1779.050000")), display_value("rate", Decimal("0.034500"))
    (('1,779.05', True), ('0.0345', True))
    >>> display_value("margin", 0.33712), display_value("calls", 12345)
    (('33.7%', True), ('12,345', True))
    """
    if value is None:
        return "-", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, Decimal):
        text = f"{value:,f}"
        if "." in text:
            whole, frac = text.split(".")
            frac = frac.rstrip("0").ljust(2, "0")
            text = f"{whole}.{frac}"
        return text, True
    if isinstance(value, float):
        if column in RATIO_COLUMNS:
            return f"{value:.1%}", True
        return f"{value:,.1f}", True
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}" + (f":{value:%S}" if value.second else ""), False
    if isinstance(value, date):
        return value.isoformat(), False
    return str(value), False


def frame_rows(frame: pl.DataFrame) -> tuple[list[str], list[list[str]], list[int]]:
    """Headers, display rows and the indexes of the number columns of ``frame``."""
    numeric = {i for i, dtype in enumerate(frame.dtypes) if dtype.is_numeric()}
    rows = []
    for row in frame.iter_rows():
        cells = []
        for i, (column, value) in enumerate(zip(frame.columns, row, strict=True)):
            text, number = display_value(column, value)
            if number:
                numeric.add(i)
            cells.append(text)
        rows.append(cells)
    return list(frame.columns), rows, sorted(numeric)


def print_frame(frame: pl.DataFrame, *, title: str | None = None,
                output: Path | None = None) -> None:
    """Print ``frame`` as a terminal table (or write it to ``output`` as plain text)."""
    headers, rows, right = frame_rows(frame)
    if output is not None:
        output.write_text(render_table(headers, rows, right=right, title=title) + "\n",
                          encoding="utf-8")
        return
    print_table(headers, rows, right=right, title=title, width=table_width())


def report_tables() -> dict[str, Callable[..., pl.DataFrame]]:
    """The report functions that take the warehouse first and return a frame, by name.

    >>> "margin_by" in report_tables(), "reconcile_summary" in report_tables()
    (True, False)
    """
    from ratelab import reports

    found: dict[str, Callable[..., pl.DataFrame]] = {}
    for name in sorted(reports.__all__):
        func = getattr(reports, name)
        if not inspect.isfunction(func):
            continue
        signature = inspect.signature(func)
        params = list(signature.parameters)
        if params[:1] == ["wh"] and "DataFrame" in str(signature.return_annotation):
            found[name] = func
    return found


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(func).parameters.values())[1:]


def _convert(param: inspect.Parameter, value: str) -> Any:
    default = param.default
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise click.BadParameter(f"{param.name} {value!r} is not true or false",
                                 param_hint="--param")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise click.BadParameter(f"{param.name} {value!r} is not a whole number",
                                     param_hint="--param") from None
    return value


def call_report(name: str, func: Callable[..., pl.DataFrame], wh: Any,
                params: Sequence[tuple[str, str]]) -> pl.DataFrame:
    """Call report ``func`` with ``-p KEY VALUE`` strings; usage errors name what it takes."""
    accepted = {p.name: p for p in _parameters(func)}
    given = dict(params)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise click.UsageError(f"unknown parameter(s) {', '.join(unknown)} for {name}; it "
                               f"takes: {_signature_text(func)}")
    missing = [p for p, spec in accepted.items()
               if spec.default is inspect.Parameter.empty and p not in given]
    if missing:
        raise click.UsageError(f"{name} needs {', '.join('-p ' + p + ' VALUE' for p in missing)}"
                               f"; it takes: {_signature_text(func)}")
    args = {key: _convert(accepted[key], value) for key, value in given.items()}
    return func(wh, **args)


def _signature_text(func: Callable[..., Any]) -> str:
    parts = []
    for p in _parameters(func):
        if p.default is inspect.Parameter.empty:
            parts.append(p.name)
        else:
            parts.append(f"{p.name}={p.default!r}")
    return ", ".join(parts)


def _summary(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return " ".join(doc.split("\n\n")[0].split())


@click.command(short_help="Print a report function's table (or export it: csv, json, xlsx).")
@click.argument("name", required=False)
@click.option("--param", "-p", "params", type=(str, str), multiple=True, metavar="KEY VALUE",
              help="A parameter of the report function (repeatable), as in Python.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="table (default), csv, json or xlsx; guessed from --output's suffix.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE instead of the terminal (xlsx needs it).")
@click.option("--list", "list_only", is_flag=True,
              help="List the report functions; with NAME, its parameters.")
@click.pass_obj
def table(state: _State, name: str | None, params: tuple[tuple[str, str], ...],
          fmt: str | None, output: Path | None, list_only: bool) -> None:
    """Print the frame of report function NAME (ratelab.reports, see docs/reports.md) as a
    table, or export it exactly (--format csv|json|xlsx, --output FILE): money as decimal text
    such as "0.034500", never floats.

    Parameters are the function's, as -p KEY VALUE: start and end are ISO dates (end
    exclusive). A bad value exits 2 with the reason; an empty frame prints "(no rows)".

    \b
    Examples:
      ratelab table --list
      ratelab table margin_by -p start 2026-11-01 -p end 2026-12-01 -p by vendor
      ratelab table gateway_bill -p start 2026-11-01 -p end 2026-12-01 \\
          -p party acme -p side customer --output acme-2026-11.xlsx
      ratelab table settlement_summary -p start 2026-11-01 -p end 2026-12-01 --format csv
    """
    tables = report_tables()
    if list_only and name is None:
        print_table(["Table", "Parameters", "What"],
                    [[n, _signature_text(f), _summary(f)] for n, f in tables.items()],
                    title="Report functions (ratelab.reports)")
        return
    if name is None:
        raise click.UsageError("name a report function (see `ratelab table --list`)")
    if name not in tables:
        raise click.UsageError(f"unknown table {name!r}; known: {', '.join(tables)}")
    func = tables[name]
    if list_only:
        click.echo(f"{name}({_signature_text(func)})")
        click.echo(_summary(func))
        return
    fmt = guess_format(fmt, output)
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE.xlsx")
    wh = state.open(read_only=True)
    frame = call_report(name, func, wh, params)
    if fmt == "table":
        print_frame(frame, output=output)
    else:
        text = write_export(frame, fmt, output)
        if text is not None:
            click.echo(text, nl=False)
    if output is not None:
        click.echo(f"wrote {output} ({frame.height:,} rows, {fmt})", err=True)
    if frame.height == 0:
        click.echo(f"(no rows): {name} found nothing for these parameters", err=True)
