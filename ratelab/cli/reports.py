"""`ratelab report`: run a report notebook with papermill and write it as HTML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ratelab.cli.output import _fail, print_table

if TYPE_CHECKING:
    from ratelab.cli import _State


@click.command(short_help="Run a report notebook; write .ipynb and .html (no code).")
@click.argument("name", required=False)
@click.option("--param", "-p", "params", type=(str, str), multiple=True, metavar="KEY VALUE",
              help="A notebook parameter (repeatable). Values stay strings: prefixes, ids.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
              show_default=True, help="Folder for NAME-<timestamp>.ipynb and .html.")
@click.option("--list", "list_only", is_flag=True,
              help="List the reports; with NAME, that report's parameters and what they mean.")
@click.pass_obj
def report(state: _State, name: str | None, params: tuple[tuple[str, str], ...], out: Path,
           list_only: bool) -> None:
    """Run report NAME (a notebook shipped in ratelab/notebooks/) and write it to --out as an
    executed notebook and a self-contained HTML page without code (the charts work offline).

    The warehouse is the global --warehouse unless `--param warehouse PATH` is given. Start
    and end are ISO dates (end exclusive); without them most reports cover yesterday (UTC).

    The HTML is written even when the report cannot show its figures; it explains why, and
    the same reason goes to stderr with a non-zero exit status: 2 for a bad parameter name
    or value (unknown vendor, malformed date) or a missing warehouse, 1 for a period without
    calls, a busy or unusable warehouse, or a notebook that broke.

    \b
    Examples:
      ratelab report --list
      ratelab report vendor_scorecard --list
      ratelab report daily_report
      ratelab report vendor_scorecard -p vendor carrier_x -p start 2026-11-01 -p end 2026-11-08
      ratelab report break_even --param fixed_costs 2500 --out /srv/reports
    """
    from ratelab.report_runner import ReportRunError, list_reports, report_info, run_report

    if list_only and name is not None:
        info = report_info(name)
        click.echo(f"{info.name}: {info.title}. {info.summary}")
        print_table(["Parameter", "Default", "Meaning"],
                    [[key, repr(value), info.help.get(key, "")]
                     for key, value in info.parameters.items()], title="Parameters")
        return
    if list_only:
        rows = []
        for info in list_reports():
            shown = ", ".join(f"{key}={value!r}" for key, value in info.parameters.items()
                              if key != "warehouse")
            rows.append([info.name, info.title, shown])
        print_table(["Report", "Title", "Parameters (defaults)"], rows, title="Reports")
        return
    if name is None:
        raise click.UsageError("name a report (see `ratelab report --list`)")
    values = dict(params)
    values.setdefault("warehouse", str(state.path))
    try:
        paths = run_report(name, values, out)
    except ReportRunError as err:
        _fail(str(err), 1)
    click.echo(f"wrote {paths.html}")
    click.echo(f"wrote {paths.notebook}")
    if paths.problem is not None:
        _fail(f"report {name} could not show its figures: {paths.problem} "
              f"(explained in {paths.html})", paths.exit_code)
