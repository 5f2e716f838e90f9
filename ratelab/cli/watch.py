"""``ratelab watch``: the loss and fraud watch, one run (for cron), and the stored findings.

A run evaluates the detectors of :mod:`ratelab.watch` up to ``--now``, stores what it finds
in the warehouse (so nothing is new twice), prints the findings, sends the new ones to the
``--notify`` targets (:mod:`ratelab.watch.notify`) and exits 1 when one of them is at or above
``--severity``: cron's mail and systemd's failed state then say so too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from ratelab.cli.exports import guess_format, write_export
from ratelab.cli.output import WHEN, _fail, echo_wrapped, print_table, render_table, table_width

if TYPE_CHECKING:
    from ratelab.cli import _State
    from ratelab.watch import Finding, WatchResult
    from ratelab.watch.notify import Before

__all__ = ["watch"]

SEVERITIES = ("info", "warning", "critical")
#: ``--format`` of the watch: xlsx is left out (findings go to scripts and logs, not sheets).
WATCH_FORMATS = ("table", "csv", "json")

_FINDING_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(), "severity": pl.String(), "kind": pl.String(), "customer": pl.String(),
    "destination": pl.String(), "window_start": pl.Datetime("us"),
    "window_end": pl.Datetime("us"), "summary": pl.String(), "numbers": pl.String(),
    "first_seen": pl.Datetime("us"), "new": pl.Boolean(), "escalated_from": pl.String(),
}


def findings_frame(findings: Sequence[Finding], before: Before | None = None) -> pl.DataFrame:
    """The findings of a run as a frame (the exports): ``numbers`` as JSON text of exact
    strings, times naive UTC; ``escalated_from`` the severity a finding had before the run
    when it got worse (:func:`ratelab.watch.notify.escalated_from`).

    >>> from ratelab.watch.notify import _sample
    >>> findings_frame(_sample().findings).select("severity", "kind", "numbers").rows()[0]
    ('critical', 'high_risk', '{"calls": "40", "prefix": "8816"}')
    """
    return pl.DataFrame([{
        "id": f.id, "severity": str(f.severity), "kind": str(f.kind), "customer": f.customer,
        "destination": f.destination, "window_start": f.window_start,
        "window_end": f.window_end, "summary": f.summary,
        "numbers": json.dumps(dict(f.numbers)), "first_seen": f.first_seen, "new": f.new,
        "escalated_from": _was(f, before),
    } for f in findings], schema=_FINDING_SCHEMA)


def _was(finding: Finding, before: Before | None) -> str | None:
    from ratelab.watch.notify import escalated_from

    was = escalated_from(finding, before)
    return None if was is None else str(was)


def _window(start: datetime, end: datetime) -> str:
    tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}-{tail}"


def _people(frame: pl.DataFrame, *, new_column: bool, seen: bool = False
            ) -> tuple[list[str], list[list[str]]]:
    headers = ["Severity", "Kind", "Customer", "Destination", "Window (UTC)", "Summary"]
    if seen:
        headers[5:5] = ["First seen", "Last seen"]
    if new_column:
        headers.insert(1, "New")
    rows = []
    for r in frame.iter_rows(named=True):
        severity = r["severity"]
        if r.get("escalated_from"):
            severity += f" (was {r['escalated_from']})"
        row = [severity, r["kind"], r["customer"] or "-", r["destination"] or "-",
               _window(r["window_start"], r["window_end"]), r["summary"]]
        if seen:
            row[5:5] = [f"{r['first_seen']:%Y-%m-%d %H:%M}", f"{r['last_seen']:%Y-%m-%d %H:%M}"]
        if new_column:
            row.insert(1, "new" if r["new"] else "")
        rows.append(row)
    return headers, rows


def _show(frame: pl.DataFrame, fmt: str, output: Path | None, *, title: str,
          new_column: bool = False, seen: bool = False) -> None:
    if fmt != "table":
        text = write_export(frame, fmt, output)
        if text is not None:
            click.echo(text, nl=False)
        else:
            click.echo(f"wrote {output} ({frame.height:,} rows, {fmt})", err=True)
        return
    if frame.height == 0:
        return
    headers, rows = _people(frame, new_column=new_column, seen=seen)
    if output is not None:
        output.write_text(render_table(headers, rows, title=title) + "\n", encoding="utf-8")
        click.echo(f"wrote {output} ({frame.height:,} rows)", err=True)
    else:
        print_table(headers, rows, title=title)


def summary_line(result: WatchResult, shown: Sequence[Finding], worse: int = 0) -> str:
    """One line for the log: when, over which calls, how many new findings of each severity.

    A run without findings says so (``no new findings``), so every cron log line is complete.
    ``worse``: findings seen before that became more severe in this run.

    >>> from ratelab.watch.notify import _sample
    >>> print(summary_line(_sample(), _sample().findings))  # doctest: +NORMALIZE_WHITESPACE
    watch at 2026-11-02 04:05 UTC over the calls of 2026-11-02 03:00-05:00 UTC:
    2 new findings (1 critical, 1 info), 2 current
    """
    start, end = result.window
    new = result.new
    by = Counter(str(f.severity) for f in new)
    counts = ", ".join(f"{by[s]} {s}" for s in reversed(SEVERITIES) if by[s])
    noun = "finding" if len(new) == 1 else "findings"
    text = (f"watch at {result.now:%Y-%m-%d %H:%M} UTC over the calls of "
            f"{_window(start, end)} UTC: ")
    text += f"{len(new)} new {noun} ({counts})" if new else "no new findings"
    if worse:
        text += f", {worse} more severe than before"
    text += f", {len(result.findings)} current"
    if len(shown) < len(result.findings):
        text += " (--all lists them)"
    return text


@click.group(invoke_without_command=True,
             short_help="Look for fraud and loss (spikes, new destinations, high-risk ranges, "
                        "...); alert.")
@click.option("--now", type=WHEN, default=None,
              help="Look at the calls up to this time (UTC); default: now.")
@click.option("--severity", type=click.Choice(SEVERITIES), default="warning", show_default=True,
              help="Exit 1, and notify, when a new finding is at or above this severity.")
@click.option("--notify", "targets", multiple=True, metavar="TARGET",
              help="Send the new findings to TARGET (repeatable): smtp://HOST[:PORT], "
                   "smtps://HOST[:PORT], smtp+starttls://HOST[:PORT] (one mail per run) or "
                   "file:PATH (JSON lines appended).")
@click.option("--mail-from", default=None, metavar="ADDRESS",
              help="From of the mails (default: ratelab@<this host>).")
@click.option("--mail-to", multiple=True, metavar="ADDRESS",
              help="A recipient of the mails (repeatable; needed with an smtp target).")
@click.option("--subject-prefix", default="[ratelab watch]", show_default=True,
              help="What the mail subjects start with.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              default=None, help="Thresholds (a WatchConfig TOML file, see docs/watch.md).")
@click.option("--high-risk", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The high-risk ranges (CSV prefix,label); default: the "
                                 "sample list shipped with ratelab.")
@click.option("--all", "show_all", is_flag=True,
              help="Also list the current findings raised by earlier runs.")
@click.option("--format", "fmt", type=click.Choice(WATCH_FORMATS), default=None,
              help="table (default), csv or json; guessed from --output's suffix.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the findings to FILE instead of the terminal.")
@click.pass_context
def watch(ctx: click.Context, now: datetime | None, severity: str, targets: tuple[str, ...],
          mail_from: str | None, mail_to: tuple[str, ...], subject_prefix: str,
          config_file: Path | None, high_risk: Path | None, show_all: bool, fmt: str | None,
          output: Path | None) -> None:
    """Run the loss and fraud watch once: per customer and destination against its own
    history, traffic spikes, new destinations, ASR, ACD and short-call shifts, calls to
    high-risk ranges, night bursts and loss makers (docs/watch.md). The findings are stored
    in the warehouse: a finding is new only once, so running every 15 minutes alerts once.

    Prints the new findings (with --all, every current one) and one summary line; sends the
    new ones at or above --severity to each --notify target.

    Exit status: 0 nothing new at or above --severity; 1 something new at or above it, or a
    target could not be reached (the findings are stored either way and are not sent again),
    or the warehouse is busy or unusable; 2 a bad option, target or file, or a missing
    warehouse.

    \b
    Examples:
      ratelab watch
      ratelab watch --severity critical --notify smtp://localhost:25 --mail-to noc@example.com
      ratelab watch --notify file:/var/log/ratelab/findings.jsonl --config watch.toml
      ratelab watch --now 2026-11-02T04:00 --all --format json
      ratelab watch findings --since 2026-11-01
    """
    if ctx.invoked_subcommand is not None:
        return
    from ratelab.watch import Severity, WatchConfig, findings, run_watch
    from ratelab.watch.notify import check_targets, notify, to_send

    state: _State = ctx.obj
    fmt = guess_format(fmt, output)
    if fmt not in WATCH_FORMATS:
        raise click.UsageError(f"--output {output}: write findings as .csv, .json or a table")
    # every mistake in the options is found before the run stores anything, so a corrected
    # command still sees its findings as new
    check_targets(targets, mail_to)
    level = Severity.parse(severity)
    config = WatchConfig.from_toml(config_file) if config_file is not None else None
    wh = state.open()
    # what was stored before: a finding found again at a higher severity (its hour filled up)
    # is sent when it reaches --severity, though it is not new
    stored = findings(wh).filter(pl.col("severity") != "critical").select("id", "severity")
    before = {i: Severity.parse(s) for i, s in stored.iter_rows()}
    result = run_watch(wh, now=now, config=config, high_risk=high_risk)
    alarming = to_send(result, level, before)
    shown = result.findings if show_all else result.new
    shown = shown + [f for f in alarming if f not in shown]
    _show(findings_frame(shown, before), fmt, output,
          title="Findings" if show_all else "New findings", new_column=show_all)
    width = table_width()
    line = summary_line(result, shown, worse=len([f for f in alarming if not f.new]))
    if fmt == "table" and output is None:
        echo_wrapped(line, width)
    else:
        click.echo(line, err=True)
    failed = []
    for delivery in notify(result, targets, mail_from=mail_from, mail_to=mail_to,
                           subject_prefix=subject_prefix, severity=level, before=before):
        if delivery.ok and delivery.findings:
            click.echo(f"notified {delivery.target}: {delivery.findings} finding(s)", err=True)
        elif not delivery.ok:
            failed.append(delivery)
    for delivery in failed[:-1]:
        click.echo(f"error: could not notify {delivery.target}: {delivery.error}", err=True)
    if failed:
        _fail(f"could not notify {failed[-1].target}: {failed[-1].error}; the findings are "
              f"stored and will not be sent again: `ratelab watch findings --since "
              f"{result.now:%Y-%m-%dT%H:%M} --severity {level} --notify TARGET` sends them", 1)
    if alarming:
        click.echo(f"found: {len(alarming)} new finding(s) at or above {level} "
                   "(exit status 1)", err=True)
        raise click.exceptions.Exit(1)


@watch.command("findings", short_help="List the stored findings (or send them again).")
@click.option("--since", type=WHEN, default=None,
              help="Findings seen at or after this time (UTC); default: the last 24 hours.")
@click.option("--severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Only findings at or above this severity.")
@click.option("--notify", "targets", multiple=True, metavar="TARGET",
              help="Send the listed findings to TARGET (repeatable), as `ratelab watch` does: "
                   "after a failed delivery.")
@click.option("--mail-from", default=None, metavar="ADDRESS", help="From of the mail.")
@click.option("--mail-to", multiple=True, metavar="ADDRESS", help="A recipient (repeatable).")
@click.option("--subject-prefix", default="[ratelab watch]", show_default=True,
              help="What the mail subject starts with.")
@click.option("--format", "fmt", type=click.Choice(WATCH_FORMATS), default=None,
              help="table (default), csv or json; guessed from --output's suffix.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE instead of the terminal.")
@click.pass_obj
def watch_findings(state: _State, since: datetime | None, severity: str,
                   targets: tuple[str, ...], mail_from: str | None, mail_to: tuple[str, ...],
                   subject_prefix: str, fmt: str | None, output: Path | None) -> None:
    """List the findings stored by earlier runs, newest first, with when each was first and
    last seen. Opens the warehouse read-only: it runs next to other readers and never raises
    anything new. With --notify, sends the listed findings again (one mail, JSON lines), for
    when a run could not reach a target.

    \b
    Examples:
      ratelab watch findings
      ratelab watch findings --since 2026-11-01 --severity critical --format csv
      ratelab watch findings --since 2026-11-02T04:00 --notify smtp://localhost \\
          --mail-to noc@example.com
    """
    from ratelab.watch import Severity, findings
    from ratelab.watch.notify import check_targets

    fmt = guess_format(fmt, output)
    if fmt not in WATCH_FORMATS:
        raise click.UsageError(f"--output {output}: write findings as .csv, .json or a table")
    check_targets(targets, mail_to)
    wh = state.open(read_only=True)
    if since is None:
        since = wh.sql("SELECT now()::TIMESTAMP AS t")["t"][0] - timedelta(days=1)
    frame = findings(wh, since=since, severity=Severity.parse(severity))
    _show(frame, fmt, output, title="Stored findings", seen=True)
    if frame.height == 0:
        click.echo(f"no findings at or above {severity} seen since {since:%Y-%m-%d %H:%M} UTC",
                   err=fmt != "table" or output is not None)
    elif fmt == "table" and output is None:
        click.echo(f"{frame.height:,} finding(s) seen since {since:%Y-%m-%d %H:%M} UTC")
    if targets:
        _resend(frame, targets, mail_from=mail_from, mail_to=mail_to,
                subject_prefix=subject_prefix)


def _resend(frame: pl.DataFrame, targets: Sequence[str], *, mail_from: str | None,
            mail_to: Sequence[str], subject_prefix: str) -> None:
    from ratelab.watch.notify import notify, stored_result

    result = stored_result(frame)
    failed = []
    for delivery in notify(result, targets, mail_from=mail_from, mail_to=mail_to,
                           subject_prefix=subject_prefix, findings=result.findings):
        if not delivery.ok:
            failed.append(delivery)
        elif delivery.findings:
            click.echo(f"notified {delivery.target}: {delivery.findings} finding(s)", err=True)
    for delivery in failed[:-1]:
        click.echo(f"error: could not notify {delivery.target}: {delivery.error}", err=True)
    if failed:
        _fail(f"could not notify {failed[-1].target}: {failed[-1].error}", 1)
