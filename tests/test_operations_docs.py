"""The scheduling examples of docs/operations.md, run as written: the ingest-and-rate cycle
script, the daily report's crontab line and its systemd service, the watch's crontab line and
its systemd service (mailing a real SMTP server the test starts). They rely on exit statuses
(``set -e``, cron's log, systemd's failed state), so each runs for a good and a bad run.

The commands are taken from the page itself; only the machine's folders are moved under
pytest's tmp_path (``/srv/ratelab`` -> a fake install whose ``.venv/bin/ratelab`` is this
venv's console script, ``/srv/reports``, ``/var/log``, ``/var/spool/ratelab``).
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import ratelab
from ratelab.examples import CUSTOMER_DECK, VENDOR_DECK
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
from tests.helpers import contract_cdr, write_jsonl
from tests.test_watch_cli import Inbox, free_port

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "operations.md").read_text()
CONSOLE_SCRIPT = Path(sys.prefix) / "bin" / "ratelab"


def blocks(language: str) -> list[str]:
    """The fenced blocks of the page in ``language`` ('' for plain fences)."""
    found: list[str] = []
    current: list[str] | None = None
    kind = ""
    for line in PAGE.splitlines():
        if current is None and line.startswith("```"):
            current, kind = [], line[3:].strip()
        elif current is not None and line.strip() == "```":
            if kind == language:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def cycle_script() -> str:
    [script] = [b for b in blocks("sh") if "/usr/local/bin/ratelab-cycle" in b]
    assert script.startswith("#!/bin/sh") and "set -e" in script
    return script


def report_cron_command() -> str:
    [line] = [line for b in blocks("") for line in b.splitlines()
              if line.startswith("15 6 * * *")]
    command = line.split(maxsplit=5)[5]  # minute hour day month weekday, then the command
    assert "ratelab report daily_report" in command
    return command


def report_service() -> configparser.SectionProxy:
    [unit] = [b for b in blocks("ini") if "ratelab-daily-report.service" in b.splitlines()[0]]
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit)
    service = parser["Service"]
    assert service["Type"] == "oneshot"
    return service


def watch_cron_command() -> str:
    [line] = [line for b in blocks("") for line in b.splitlines()
              if line.startswith("2-59/15 * * * *")]
    command = line.split(maxsplit=5)[5]
    assert "ratelab watch" in command
    return command


def watch_unit(name: str) -> configparser.ConfigParser:
    [unit] = [b for b in blocks("ini") if f"/etc/systemd/system/{name}" in b.splitlines()[0]]
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit)
    return parser


class Machine:
    """The page's folders under ``tmp``: an install at srv/ratelab, reports, logs, spool."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.install = tmp / "srv" / "ratelab"
        (self.install / ".venv" / "bin").mkdir(parents=True)
        (self.install / ".venv" / "bin" / "ratelab").symlink_to(CONSOLE_SCRIPT)
        (self.install / "data").mkdir()
        (tmp / "var" / "log").mkdir(parents=True)
        self.spool = tmp / "var" / "spool" / "ratelab"
        self.spool.mkdir(parents=True)
        self.warehouse = self.install / "data" / "warehouse.duckdb"
        self.smtp = "localhost:25"   # the mail server the page names; a test's own instead

    def moved(self, text: str) -> str:
        return (text.replace("/srv/ratelab", str(self.install))
                .replace("/srv/reports", str(self.tmp / "srv" / "reports"))
                .replace("/var/log", str(self.tmp / "var" / "log"))
                .replace("/var/spool/ratelab", str(self.spool))
                .replace("/usr/local/bin/ratelab-cycle", str(self.tmp / "ratelab-cycle"))
                .replace("/tmp/ratelab-watch.lock", str(self.tmp / "ratelab-watch.lock"))
                .replace("smtp://localhost:25", f"smtp://{self.smtp}"))

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items()
                if k not in ("RATELAB_WAREHOUSE", "COLUMNS")}

    def log(self, name: str) -> str:
        path = self.tmp / "var" / "log" / name
        return path.read_text() if path.exists() else ""

    def reports(self) -> list[Path]:
        return sorted((self.tmp / "srv" / "reports" / "daily").glob("*.html"))

    def priced(self) -> None:
        """The warehouse with a customer and a vendor deck assigned (as after `ratelab init`,
        `deck import` and `assign`)."""
        wh = ratelab.connect(self.warehouse, create=True)
        for name, side, text in (("cust_std", "customer", CUSTOMER_DECK),
                                 ("vend_x", "vendor", VENDOR_DECK)):
            deck = self.tmp / f"{name}.csv"
            deck.write_text(text)
            wh.import_deck(deck, name, side)
        wh.assign("cust_std", customer="acme")
        wh.assign("vend_x", vendor="carrier_x")

    def calls_yesterday(self, count: int = 80) -> None:
        midnight = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0,
                                             microsecond=0)
        spec = SyntheticSpec(["acme"], ["carrier_x"], ["44", "447", "1"],
                             midnight - timedelta(days=1), midnight - timedelta(minutes=1))
        write_synthetic_cdrs(self.spool, count, spec, batch="yesterday")

    def run_cycle(self) -> subprocess.CompletedProcess[str]:
        script = self.tmp / "ratelab-cycle"
        script.write_text(self.moved(cycle_script()))
        script.chmod(0o755)
        return subprocess.run([str(script)], capture_output=True, text=True, timeout=300,
                              env=self.env())

    def run_cron(self) -> subprocess.CompletedProcess[str]:
        # cron runs the command with /bin/sh
        return subprocess.run(["/bin/sh", "-c", self.moved(report_cron_command())],
                              capture_output=True, text=True, timeout=600, env=self.env())

    def run_watch_cron(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", "-c", self.moved(watch_cron_command())],
                              capture_output=True, text=True, timeout=300, env=self.env())

    def run_watch_service(self) -> subprocess.CompletedProcess[str]:
        return self.run_service(watch_unit("ratelab-watch.service")["Service"])

    def calls_to_satellites_just_now(self, count: int = 40) -> None:
        """acme's answered short calls to +8816 (Iridium, on the shipped high-risk list) over
        the last half hour: what IRSF looks like."""
        now = datetime.now(UTC).replace(tzinfo=None)
        records = [contract_cdr(f"irsf-{n}", f"88163{n:07d}",
                                f"{now - timedelta(seconds=30 + 40 * n):%Y-%m-%dT%H:%M:%S}"
                                ".000000Z", 5_000) for n in range(count)]
        write_jsonl(self.spool / "cdr-irsf.jsonl", records)

    def run_service(self, service: configparser.SectionProxy | None = None
                    ) -> subprocess.CompletedProcess[str]:
        service = service if service is not None else report_service()
        env = self.env()
        for assignment in shlex.split(service["Environment"]):
            key, _, value = assignment.partition("=")
            env[key] = self.moved(value)
        return subprocess.run(shlex.split(self.moved(service["ExecStart"])),
                              cwd=self.moved(service["WorkingDirectory"]), capture_output=True,
                              text=True, timeout=600, env=env)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_the_page_still_has_the_examples() -> None:
    assert "ratelab ingest /var/spool/ratelab" in cycle_script()
    assert "--out /srv/reports/daily" in report_cron_command()
    assert report_service()["ExecStart"].startswith("/srv/ratelab/.venv/bin/ratelab report")


def test_a_good_day_exits_0_everywhere(machine: Machine) -> None:
    machine.priced()
    machine.calls_yesterday()
    cycle = machine.run_cycle()
    assert cycle.returncode == 0, cycle.stderr
    assert "ingested 80 CDRs" in cycle.stdout and "rated 80 CDRs" in cycle.stdout
    cron = machine.run_cron()
    assert cron.returncode == 0, machine.log("ratelab-report.log")
    assert "error:" not in machine.log("ratelab-report.log")
    assert len(machine.reports()) == 1
    service = machine.run_service()
    assert service.returncode == 0, service.stderr
    assert len(machine.reports()) == 2


def test_a_missing_warehouse_fails_the_cycle_the_cron_job_and_the_service(
        machine: Machine) -> None:
    machine.calls_yesterday()
    cycle = machine.run_cycle()
    assert cycle.returncode == 2
    assert "error: no warehouse at" in cycle.stderr
    assert "rated" not in cycle.stdout, "set -e stopped the script before rating"
    assert not machine.warehouse.exists(), "nothing created a warehouse by accident"
    cron = machine.run_cron()
    assert cron.returncode == 2
    log = machine.log("ratelab-report.log")
    assert f"error: report daily_report could not show its figures: no warehouse at " \
           f"{machine.warehouse}" in log
    [page] = machine.reports()          # the page that explains it is still written
    assert "This report cannot run" in page.read_text()
    service = machine.run_service()
    assert service.returncode == 2
    assert "no warehouse at" in service.stderr


def test_a_day_without_calls_fails_the_report(machine: Machine) -> None:
    machine.priced()                  # decks, but nothing was ingested or rated yesterday
    cycle = machine.run_cycle()
    assert cycle.returncode == 0, cycle.stderr   # nothing to ingest is not an error
    cron = machine.run_cron()
    assert cron.returncode == 1
    assert "no calls in this period" in machine.log("ratelab-report.log")
    service = machine.run_service()
    assert service.returncode == 1
    assert "no calls in this period" in service.stderr
    assert len(machine.reports()) == 2


def test_a_file_that_is_not_a_warehouse_fails_with_status_1(machine: Machine) -> None:
    machine.warehouse.write_bytes(b"not a warehouse\n" * 100)
    cycle = machine.run_cycle()
    assert cycle.returncode == 1
    assert "cannot open" in cycle.stderr and "Traceback" not in cycle.stderr
    service = machine.run_service()
    assert service.returncode == 1
    assert machine.warehouse.read_bytes() == b"not a warehouse\n" * 100


@pytest.fixture
def mail(machine: Machine) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 standing in for the page's localhost:25."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    machine.smtp = f"127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()


def test_the_page_has_the_watch_every_15_minutes() -> None:
    command = watch_cron_command()
    assert "--notify smtp://localhost:25" in command and "flock -n" in command
    service = watch_unit("ratelab-watch.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].startswith("/srv/ratelab/.venv/bin/ratelab watch")
    timer = watch_unit("ratelab-watch.timer")["Timer"]
    assert timer["OnCalendar"] == "*-*-* *:02/15:00 UTC" and timer["Persistent"] == "true"


def test_the_watch_mails_once_then_stays_quiet(machine: Machine, mail: Inbox) -> None:
    machine.priced()
    machine.calls_to_satellites_just_now()
    cycle = machine.run_cycle()
    assert cycle.returncode == 0, cycle.stderr
    # cron: new findings at or above warning -> one mail, JSON lines, exit 1, a log line
    cron = machine.run_watch_cron()
    log = machine.log("ratelab-watch.log")
    assert cron.returncode == 1, log
    [message] = mail.messages
    assert mail.envelopes[0][1] == ["noc@example.com"]
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "high_risk" in text and "8816 (Iridium satellite)" in text
    lines = [json.loads(x) for x in machine.log("ratelab-findings.jsonl").splitlines()]
    assert {"high_risk"} <= {x["kind"] for x in lines}
    assert all(x["id"] in text for x in lines)
    assert f"{len(lines)} new finding" in log and "found:" in log and "Traceback" not in log
    # the timer's service 15 minutes later: the same findings, nothing new, no mail, exit 0
    service = machine.run_watch_service()
    assert service.returncode == 0, service.stderr
    assert "no new findings" in service.stdout
    assert len(mail.messages) == 1
    assert len(machine.log("ratelab-findings.jsonl").splitlines()) == len(lines)


def test_the_watch_without_a_warehouse_fails_with_status_2(machine: Machine,
                                                             mail: Inbox) -> None:
    cron = machine.run_watch_cron()
    assert cron.returncode == 2
    assert f"error: no warehouse at {machine.warehouse}" in machine.log("ratelab-watch.log")
    service = machine.run_watch_service()
    assert service.returncode == 2 and "no warehouse at" in service.stderr
    assert mail.messages == [] and not machine.warehouse.exists()
