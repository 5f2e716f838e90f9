"""The scheduling examples of docs/operations.md, run as written: the ingest-and-rate cycle
script, the daily report's crontab line and its systemd service. They rely on exit statuses
(``set -e``, cron's log, systemd's failed state), so each runs for a good and a bad run.

The commands are taken from the page itself; only the machine's folders are moved under
pytest's tmp_path (``/srv/ratelab`` -> a fake install whose ``.venv/bin/ratelab`` is this
venv's console script, ``/srv/reports``, ``/var/log``, ``/var/spool/ratelab``).
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import ratelab
from ratelab.examples import CUSTOMER_DECK, VENDOR_DECK
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs

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

    def moved(self, text: str) -> str:
        return (text.replace("/srv/ratelab", str(self.install))
                .replace("/srv/reports", str(self.tmp / "srv" / "reports"))
                .replace("/var/log", str(self.tmp / "var" / "log"))
                .replace("/var/spool/ratelab", str(self.spool))
                .replace("/usr/local/bin/ratelab-cycle", str(self.tmp / "ratelab-cycle")))

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

    def run_service(self) -> subprocess.CompletedProcess[str]:
        service = report_service()
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
