"""Alerts that reach someone: the new findings of a watch run, by e-mail or as JSON lines.

A target is one of

- ``smtp://HOST[:PORT]`` (port 25), ``smtps://HOST[:PORT]`` (TLS from the start, port 465)
  or ``smtp+starttls://HOST[:PORT]`` (STARTTLS, port 587): one e-mail per run, plain text and
  HTML, both with every finding and its numbers. When ``RATELAB_SMTP_USER`` is set in the
  environment, a TLS connection (smtps, smtp+starttls) to a server that offers AUTH logs in
  with it and ``RATELAB_SMTP_PASSWORD``; plain ``smtp://`` never sends them;
- ``file:PATH``: one JSON object per finding appended to PATH (created if missing; its folder
  must exist), written in one go and fsync'd.

What goes out: the findings of a run that are new at or above a severity (:func:`to_send`):
raised for the first time, or found again in the same window at a higher severity that now
reaches it (an hour that started with one unanswered call to a satellite range and then
filled up with answered ones keeps its id; it is sent when it turns critical). A run with
none sends no mail and writes no line. A target that cannot be
reached does not stop the others; :func:`notify` returns one :class:`Delivery` per target,
with the error, and ``ratelab watch`` exits 1 naming it. The findings are stored in the
warehouse either way, and the next run does not send them again (they are no longer new):
``ratelab watch findings --since TIME`` lists them, ``--notify`` on it sends them again.

>>> parse_target("smtp://127.0.0.1:2525").port, parse_target("smtps://mail.example.com").port
(2525, 465)
>>> try:
...     parse_target("mailto:noc@example.com")
... except ValueError as err:
...     print(err)  # doctest: +NORMALIZE_WHITESPACE
--notify 'mailto:noc@example.com' is not a target: use smtp://HOST[:PORT],
smtps://HOST[:PORT], smtp+starttls://HOST[:PORT] or file:PATH
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from ratelab.watch.model import Finding, FindingKind, Severity, WatchResult

__all__ = [
    "ACCEPTED",
    "Before",
    "Delivery",
    "Target",
    "build_message",
    "check_targets",
    "default_sender",
    "escalated_from",
    "finding_record",
    "headline",
    "notify",
    "parse_target",
    "stored_result",
    "to_send",
]

ACCEPTED = ("smtp://HOST[:PORT], smtps://HOST[:PORT], smtp+starttls://HOST[:PORT] "
            "or file:PATH")
_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


@dataclass(frozen=True)
class Target:
    """Where findings go: an SMTP server (``scheme`` smtp, smtps or smtp+starttls, ``host``,
    ``port``) or a file (``scheme`` file, ``path``). ``text`` is what the user wrote."""

    text: str
    scheme: str
    host: str = ""
    port: int = 0
    path: Path | None = None

    @property
    def is_mail(self) -> bool:
        """Whether this target sends e-mail."""
        return self.scheme in _PORTS

    def __str__(self) -> str:
        return self.text


def parse_target(text: str) -> Target:
    """A ``--notify`` target; ValueError naming the accepted forms otherwise. A file's folder
    must exist (a typo fails here, before the run, rather than losing the alert).

    >>> target = parse_target("smtp+starttls://mail.example.com")
    >>> target.scheme, target.host, target.port, target.is_mail
    ('smtp+starttls', 'mail.example.com', 587, True)
    >>> parse_target("file:/tmp/watch.jsonl").path
    PosixPath('/tmp/watch.jsonl')
    """
    raw = text.strip()
    bad = f"--notify {text!r} is not a target: use {ACCEPTED}"
    if raw.startswith("file:"):
        name = raw[len("file:"):]
        if name.startswith("//"):   # file:///var/log/x.jsonl, as a URL would have it
            name = name[2:]
        if not name:
            raise ValueError(bad)
        path = Path(name)
        if path.is_dir():
            raise ValueError(f"--notify {text!r}: {path} is a folder; name a file in it")
        if not path.parent.is_dir():
            raise ValueError(f"--notify {text!r}: the folder {path.parent} does not exist; "
                             "create it first")
        return Target(raw, "file", path=path)
    parts = urlsplit(raw)
    if parts.scheme not in _PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(bad)
    if parts.username or parts.password:
        raise ValueError(f"--notify {text!r}: put no credentials in the target; set "
                         "RATELAB_SMTP_USER and RATELAB_SMTP_PASSWORD instead")
    try:
        port = parts.port or _PORTS[parts.scheme]
    except ValueError:
        raise ValueError(bad) from None
    return Target(raw, parts.scheme, host=parts.hostname, port=port)


def check_targets(targets: Sequence[str], mail_to: Sequence[str]) -> list[Target]:
    """Every target parsed; ValueError when one is bad, or an e-mail target has no recipient.

    >>> try:
    ...     check_targets(["smtp://localhost"], [])
    ... except ValueError as err:
    ...     print(err)
    --notify smtp://localhost sends e-mail: give at least one --mail-to ADDRESS
    """
    parsed = [parse_target(t) for t in targets]
    for target in parsed:
        if target.is_mail and not [a for a in mail_to if a.strip()]:
            raise ValueError(f"--notify {target} sends e-mail: give at least one "
                             "--mail-to ADDRESS")
    return parsed


def _sample() -> WatchResult:
    """A run with two new findings, for the examples."""
    hour = datetime(2026, 11, 2, 3)
    seen = datetime(2026, 11, 2, 4, 5)

    def finding(kind: FindingKind, severity: Severity, destination: str | None, summary: str,
                numbers: dict[str, str]) -> Finding:
        return Finding(f"{kind}/acme/{destination or numbers.get('prefix')}/2026-11-02T03",
                       kind, severity, "acme", destination, hour, hour.replace(hour=4),
                       summary, numbers, seen, True)

    return WatchResult(seen, (hour, hour.replace(hour=5)), [
        finding(FindingKind.HIGH_RISK, Severity.CRITICAL, None,
                "high-risk range: acme -> 8816 (Iridium satellite): 40 calls",
                {"calls": "40", "prefix": "8816"}),
        finding(FindingKind.NEW_DESTINATION, Severity.INFO, "USA",
                "new destination: acme -> USA: 12 calls", {"calls": "12"})])


@dataclass(frozen=True)
class Delivery:
    """What one target got: ``findings`` sent (0: nothing new to send), or the ``error``.

    >>> Delivery("file:/tmp/x.jsonl", 2).ok, Delivery("smtp://mail", 0, "refused").ok
    (True, False)
    """

    target: str
    findings: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the target got what it should (also when there was nothing to send)."""
        return self.error is None


#: The severity each stored finding had before a run (id -> severity): what tells a finding
#: that became more severe from one that was already sent.
Before = Mapping[str, Severity]


def to_send(result: WatchResult, severity: Severity = Severity.WARNING,
            before: Before | None = None) -> list[Finding]:
    """The findings a run notifies, most severe first: those at or above ``severity`` that
    are new, or whose severity ``before`` the run was below it (they got worse in the same
    window, under the same id).

    >>> [str(f.kind) for f in to_send(_sample(), Severity.WARNING)]
    ['high_risk']
    >>> len(to_send(_sample(), Severity.INFO))
    2
    >>> from dataclasses import replace
    >>> seen = WatchResult(_sample().now, _sample().window,
    ...                    [replace(f, new=False) for f in _sample().findings])
    >>> to_send(seen, Severity.WARNING, {"high_risk/acme/8816/2026-11-02T03": Severity.WARNING})
    []
    >>> [f.id for f in to_send(seen, Severity.CRITICAL,
    ...                        {"high_risk/acme/8816/2026-11-02T03": Severity.WARNING})]
    ['high_risk/acme/8816/2026-11-02T03']
    """
    known = before or {}
    return [f for f in result.at_least(severity, new_only=False)
            if f.new or (f.id in known and known[f.id] < severity)]


def escalated_from(finding: Finding, before: Before | None) -> Severity | None:
    """The lower severity a finding had before this run, when it got worse (None when it is
    new, or as severe as before)."""
    if finding.new or not before or finding.id not in before:
        return None
    was = before[finding.id]
    return was if was < finding.severity else None


# -- what the alerts say --------------------------------------------------------------------

def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


def _window(finding: Finding) -> str:
    start, end = finding.window_start, finding.window_end
    shown = f"{end:%H:%M}" if end.date() == start.date() else _when(end)
    return f"{_when(start)} to {shown} UTC"


def _counts(findings: Sequence[Finding]) -> str:
    by = Counter(str(f.severity) for f in findings)
    return ", ".join(f"{by[str(s)]} {s}" for s in sorted(Severity, reverse=True) if by[str(s)])


def _subject_of(finding: Finding) -> str:
    who = finding.customer or "-"
    return f"{who} / {finding.destination}" if finding.destination else who


def _numbers(finding: Finding) -> str:
    return ", ".join(f"{key} {value}" for key, value in finding.numbers.items())


def _what(findings: Sequence[Finding], before: Before | None, stored: bool) -> str:
    """"2 new findings", "1 new and 1 more severe findings", "3 stored findings"."""
    noun = "finding" if len(findings) == 1 else "findings"
    if stored:
        return f"{len(findings)} stored {noun}"
    worse = sum(1 for f in findings if escalated_from(f, before) is not None)
    fresh = len(findings) - worse
    parts = ([f"{fresh} new"] if fresh else []) + ([f"{worse} more severe"] if worse else [])
    return f"{' and '.join(parts) or '0 new'} {noun}"


def headline(result: WatchResult, findings: Sequence[Finding], severity: Severity, *,
             before: Before | None = None, stored: bool = False) -> str:
    """The first line of a mail: when, over which data, how many new (or more severe)
    findings of each severity; ``stored``: findings sent again from the store.

    >>> print(headline(_sample(), _sample().findings, Severity.INFO))
    ... # doctest: +NORMALIZE_WHITESPACE
    ratelab watch at 2026-11-02 04:05 UTC (calls 2026-11-02 03:00 to 2026-11-02 05:00 UTC):
    2 new findings at or above info: 1 critical, 1 info
    """
    start, end = result.window
    what = _what(findings, before, stored)
    if stored:
        return (f"ratelab watch: {what} sent again, windows {_when(start)} to {_when(end)} "
                f"UTC: {_counts(findings)}")
    return (f"ratelab watch at {_when(result.now)} UTC (calls {_when(start)} to {_when(end)} "
            f"UTC): {what} at or above {severity}: {_counts(findings)}")


def finding_record(finding: Finding, run: datetime | None = None,
                   before: Before | None = None) -> dict[str, Any]:
    """A finding as a JSON object (the ``file:`` target's lines): times ISO 8601 naive UTC,
    the numbers as the exact text the engine wrote; ``escalated_from`` the severity it had
    before the run when it got worse (else null).

    >>> record = finding_record(_sample().findings[0], datetime(2026, 11, 2, 4, 5))
    >>> record["run"], record["severity"], record["numbers"]
    ('2026-11-02T04:05:00', 'critical', {'calls': '40', 'prefix': '8816'})
    """
    record: dict[str, Any] = {} if run is None else {"run": run.isoformat()}
    record.update({
        "id": finding.id, "kind": str(finding.kind), "severity": str(finding.severity),
        "customer": finding.customer, "destination": finding.destination,
        "window_start": finding.window_start.isoformat(),
        "window_end": finding.window_end.isoformat(), "summary": finding.summary,
        "numbers": dict(finding.numbers), "first_seen": finding.first_seen.isoformat(),
        "new": finding.new,
    })
    was = escalated_from(finding, before)
    record["escalated_from"] = None if was is None else str(was)
    return record


def _was(finding: Finding, before: Before | None) -> str:
    was = escalated_from(finding, before)
    return "" if was is None else f" (was {was})"


def _text_body(result: WatchResult, findings: Sequence[Finding], severity: Severity,
               before: Before | None, stored: bool) -> str:
    lines = [headline(result, findings, severity, before=before, stored=stored), ""]
    for n, f in enumerate(findings, 1):
        lines += [f"{n}. [{str(f.severity).upper()}]{_was(f, before)} {f.kind}: "
                  f"{_subject_of(f)}, {_window(f)}",
                  f"   {f.summary}",
                  f"   numbers: {_numbers(f)}",
                  f"   id: {f.id}", ""]
    lines.append("List them again: ratelab watch findings --since "
                 f"{result.now:%Y-%m-%dT%H:%M}")
    return "\n".join(lines) + "\n"


_CELL = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"
_COLOURS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#2471a3"}


def _html_body(result: WatchResult, findings: Sequence[Finding], severity: Severity,
               before: Before | None, stored: bool) -> str:
    head = "".join(f'<th style="{_CELL};background:#f4f6f7">{escape(h)}</th>' for h in (
        "Severity", "Kind", "Customer", "Destination", "Window", "Summary", "Numbers", "Id"))
    rows = []
    for f in findings:
        numbers = "<br>".join(f"{escape(k)}: <b>{escape(v)}</b>" for k, v in f.numbers.items())
        colour = _COLOURS.get(str(f.severity), "#000")
        cells = [f'<b style="color:{colour}">{escape(str(f.severity))}</b>'
                 f"{escape(_was(f, before))}", escape(str(f.kind)),
                 escape(f.customer or "-"), escape(f.destination or "-"), escape(_window(f)),
                 escape(f.summary), numbers, f"<code>{escape(f.id)}</code>"]
        rows.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
    return ("<html><body style=\"font-family:sans-serif;font-size:13px\">"
            f"<p>{escape(headline(result, findings, severity, before=before, stored=stored))}"
            "</p>"
            f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'
            "<p>List them again: <code>ratelab watch findings --since "
            f"{result.now:%Y-%m-%dT%H:%M}</code></p></body></html>\n")


def build_message(result: WatchResult, findings: Sequence[Finding], *, mail_from: str,
                  mail_to: Sequence[str], subject_prefix: str = "[ratelab watch]",
                  severity: Severity = Severity.WARNING, before: Before | None = None,
                  stored: bool = False) -> EmailMessage:
    """The e-mail of a run: plain text, and an HTML alternative with the same findings in a
    table; the subject counts them by severity. A finding more severe than ``before`` the run
    says what it was; ``stored``: findings sent again from the store.

    >>> run = _sample()
    >>> mail = build_message(run, run.findings, mail_from="ratelab@example.com",
    ...                      mail_to=["noc@example.com"])
    >>> mail["Subject"], [part.get_content_type() for part in mail.iter_parts()]
    ('[ratelab watch] 2 new findings: 1 critical, 1 info', ['text/plain', 'text/html'])
    """
    message = EmailMessage()
    # short enough not to be folded (the time is in the body)
    message["Subject"] = (f"{subject_prefix} {_what(findings, before, stored)}: "
                          f"{_counts(findings)}").strip()
    message["From"] = mail_from
    message["To"] = ", ".join(a.strip() for a in mail_to if a.strip())
    message.set_content(_text_body(result, findings, severity, before, stored))
    message.add_alternative(_html_body(result, findings, severity, before, stored),
                            subtype="html")
    return message


# -- delivery -------------------------------------------------------------------------------

def _append_lines(path: Path, lines: Sequence[str]) -> None:
    # one write then fsync: a crash leaves the file with whole lines of earlier runs
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


def _send(target: Target, message: EmailMessage, timeout: float) -> None:
    user = os.environ.get("RATELAB_SMTP_USER", "")
    password = os.environ.get("RATELAB_SMTP_PASSWORD", "")
    smtp: smtplib.SMTP
    if target.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
    with smtp:
        if target.scheme == "smtp+starttls":
            smtp.starttls(context=ssl.create_default_context())
        # the password only ever travels encrypted, and only to a server that asks for one
        # (a local relay behind smtps:// may take mail without it)
        if user and target.scheme != "smtp":
            smtp.ehlo_or_helo_if_needed()
            if smtp.has_extn("auth"):
                smtp.login(user, password)
        refused = smtp.send_message(message)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def stored_result(frame: pl.DataFrame, now: datetime | None = None) -> WatchResult:
    """The findings of a :func:`ratelab.watch.findings` frame as a result to send again:
    every finding with ``new`` False, the window spanning theirs, ``now`` their latest
    ``last_seen`` unless given.

    >>> from ratelab.examples import sample_warehouse
    >>> from ratelab.watch import findings
    >>> stored_result(findings(sample_warehouse(cdrs=1))).findings
    []
    """
    found = [Finding(id=r["id"], kind=FindingKind(r["kind"]),
                     severity=Severity.parse(r["severity"]), customer=r["customer"],
                     destination=r["destination"], window_start=r["window_start"],
                     window_end=r["window_end"], summary=r["summary"],
                     numbers=dict(json.loads(r["numbers"] or "{}")),
                     first_seen=r["first_seen"], new=False)
             for r in frame.iter_rows(named=True)]
    if found:
        window = (min(f.window_start for f in found), max(f.window_end for f in found))
        latest = frame["last_seen"].max()
    else:
        window = (now or datetime.min, now or datetime.min)
        latest = None
    moment = now or (latest if isinstance(latest, datetime) else window[1])
    return WatchResult(now=moment, window=window, findings=found)


def default_sender() -> str:
    """``ratelab@<this host's name>``: the From of the mails when ``--mail-from`` is not
    given.

    >>> default_sender().startswith("ratelab@")
    True
    """
    return f"ratelab@{socket.getfqdn() or 'localhost'}"


def notify(result: WatchResult, targets: Sequence[str], *, mail_from: str | None = None,
           mail_to: Sequence[str] = (), subject_prefix: str = "[ratelab watch]",
           severity: Severity = Severity.WARNING, timeout: float = 30.0,
           findings: Sequence[Finding] | None = None,
           before: Before | None = None) -> list[Delivery]:
    """Send the run's new findings at or above ``severity`` (:func:`to_send`, with the
    severities stored ``before`` the run), or the given ``findings`` (sending stored ones
    again, :func:`stored_result`), to each target:
    one e-mail per ``smtp``-like target, one JSON line per finding to each ``file:`` target.
    Nothing new: nothing is sent. Returns one :class:`Delivery` per target, in order; a target
    that fails (refused connection, rejected login or recipients, unwritable file) says why
    and does not stop the others. Bad targets raise ValueError before anything is sent.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "findings.jsonl"
    >>> notify(_sample(), [f"file:{path}"], severity=Severity.INFO)[0].findings
    2
    >>> [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    ['high_risk', 'new_destination']
    """
    parsed = check_targets(targets, mail_to)
    stored = findings is not None
    if findings is None:
        findings = to_send(result, severity, before)
    done: list[Delivery] = []
    for target in parsed:
        if not findings:
            done.append(Delivery(str(target), 0))
            continue
        try:
            if target.path is not None:
                _append_lines(target.path, [json.dumps(finding_record(f, result.now, before))
                                            for f in findings])
            else:
                _send(target, build_message(
                    result, findings, mail_from=mail_from or default_sender(),
                    mail_to=mail_to, subject_prefix=subject_prefix, severity=severity,
                    before=before, stored=stored),
                    timeout)
        except (OSError, smtplib.SMTPException) as err:
            reason = str(err) or type(err).__name__
            done.append(Delivery(str(target), 0, f"{type(err).__name__}: {reason}"))
            continue
        done.append(Delivery(str(target), len(findings)))
    return done
