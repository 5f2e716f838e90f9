"""``ratelab watch`` end to end: a warehouse with planted fraud (a night burst to a satellite
range, a destination acme never called), the command as a subprocess, the e-mail delivered to
a real SMTP server (aiosmtpd) on 127.0.0.1, the JSON lines, the exit statuses, and the second
run that raises nothing new and sends nothing.
"""

from __future__ import annotations

import email
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

import ratelab
from tests.helpers import contract_cdr, count, ok, write_jsonl
from tests.helpers import ratelab as run_cli

NOW = "2026-11-02T04:05"
#: The planted hour: acme's calls to the Iridium range and to the USA, never called before.
HOUR = datetime(2026, 11, 2, 3)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.000000Z"


def build_warehouse(root: Path, *, planted: bool = True) -> Path:
    """Four weeks of acme's ordinary UK traffic (daytime), then, when ``planted``, in the night
    hour 03:00-04:00 of 2026-11-02: 40 short calls to +8816 (Iridium, on the shipped high-risk
    list) and 12 calls to the USA, a destination acme never called."""
    wh = ratelab.sample_warehouse(cdrs=0, directory=root)   # the sample decks, no calls yet
    records = []
    for day in range(28, 0, -1):
        for n in range(4):
            start = HOUR.replace(hour=10) - timedelta(days=day) + timedelta(minutes=7 * n)
            records.append(contract_cdr(f"hist-{day}-{n}", f"4420794{day:02d}{n:03d}",
                                        _iso(start), 95_000))
    if planted:
        for n in range(40):
            records.append(contract_cdr(f"irsf-{n}", f"88163{n:07d}",
                                        _iso(HOUR + timedelta(seconds=80 * n)), 4_000))
        for n in range(12):
            records.append(contract_cdr(f"usa-{n}", f"1212555{n:04d}",
                                        _iso(HOUR + timedelta(minutes=4 * n)), 60_000))
    write_jsonl(root / "spool" / "cdr-test.jsonl", records)
    wh.ingest(root / "spool")
    wh.rate()
    return wh.path


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        message = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def planted_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("planted"))


@pytest.fixture
def planted(planted_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the planted warehouse: each test starts with no stored findings."""
    target = tmp_path / "warehouse.duckdb"
    target.write_bytes(planted_template.read_bytes())
    return target


def stored(warehouse: Path) -> int:
    return count(warehouse, "SELECT count(*) FROM watch_findings")


def watch(warehouse: Path, *args: object) -> object:
    return run_cli("watch", "--now", NOW, *args, warehouse=warehouse)


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, kind
    return str(part.get_content())


def test_found_mails_once_writes_json_lines_and_exits_1_then_nothing_new(
        planted: Path, smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp
    lines = tmp_path / "findings.jsonl"
    args = ("--severity", "info", "--notify", f"smtp://127.0.0.1:{port}",
            "--mail-to", "noc@example.com", "--mail-to", "fraud@example.com",
            "--mail-from", "ratelab@example.com", "--notify", f"file:{lines}")
    first = watch(planted, *args, "--format", "json")
    assert first.returncode == 1, first.stderr
    found = json.loads(first.stdout)
    kinds = {f["kind"] for f in found}
    assert {"high_risk", "new_destination"} <= kinds, kinds
    assert all(f["new"] for f in found)
    assert f"found: {len(found)} new finding(s) at or above info" in first.stderr
    assert f"notified smtp://127.0.0.1:{port}: {len(found)} finding(s)" in first.stderr

    # one e-mail, to both recipients, with every finding and its numbers in both parts
    [message] = inbox.messages
    assert inbox.envelopes == [("ratelab@example.com", ["noc@example.com", "fraud@example.com"])]
    assert str(message["Subject"]).strip().startswith(
        f"[ratelab watch] {len(found)} new findings: ")
    text, html = body(message, "plain"), body(message, "html")
    for finding in found:
        assert finding["id"] in text and finding["id"] in html
        assert finding["summary"] in text
        for key, value in json.loads(finding["numbers"]).items():
            assert f"{key} {value}" in text
            assert f"{key}: <b>{value}</b>" in html
    assert "8816" in text and "USA" in text

    # the JSON lines: one per finding, the run's time, numbers as exact text
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(f["id"] for f in found)
    assert {r["run"] for r in records} == {"2026-11-02T04:05:00"}
    assert all(isinstance(v, str) for r in records for v in r["numbers"].values())
    assert stored(planted) == len(found)

    # the next run finds the same things: nothing new, no mail, no line, exit 0
    second = watch(planted, *args)
    assert second.returncode == 0, second.stderr
    assert "no new findings" in second.stdout and f"{len(found)} current" in second.stdout
    assert len(inbox.messages) == 1
    assert len(lines.read_text().splitlines()) == len(found)
    assert stored(planted) == len(found)
    # --all lists them, marked as not new
    again = watch(planted, "--all", "--format", "json")
    assert again.returncode == 0
    assert sorted(f["id"] for f in json.loads(again.stdout)) == sorted(f["id"] for f in found)
    assert not any(f["new"] for f in json.loads(again.stdout))


def test_the_exit_status_follows_the_severity(planted: Path) -> None:
    result = watch(planted, "--severity", "critical", "--format", "json")
    found = json.loads(result.stdout)
    critical = [f for f in found if f["severity"] == "critical"]
    assert result.returncode == (1 if critical else 0), result.stderr
    # a table for people and one summary line
    table = watch(planted, "--all")
    assert table.returncode == 0, table.stderr
    assert "Severity" in table.stdout and "Destination" in table.stdout
    assert table.stdout.strip().splitlines()[-1].startswith("watch at 2026-11-02 04:05 UTC")


def test_nothing_found_exits_0_and_sends_nothing(tmp_path: Path,
                                                 smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    warehouse = build_warehouse(tmp_path, planted=False)
    lines = tmp_path / "findings.jsonl"
    result = watch(warehouse, "--severity", "info", "--notify", f"smtp://127.0.0.1:{port}",
                   "--mail-to", "noc@example.com", "--notify", f"file:{lines}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no new findings" in result.stdout
    assert inbox.messages == [] and not lines.exists()


@pytest.mark.parametrize("args, message", [
    (("--severity", "urgent"), "Invalid value for '--severity'"),
    (("--notify", "mailto:noc@example.com"), "use smtp://HOST[:PORT], smtps://HOST[:PORT], "
                                             "smtp+starttls://HOST[:PORT] or file:PATH"),
    (("--notify", "smtp://127.0.0.1:25"), "give at least one --mail-to ADDRESS"),
    (("--notify", "file:/no/such/folder/findings.jsonl"), "the folder /no/such/folder does not "
                                                          "exist"),
    (("--config", "/no/such/watch.toml"), "does not exist"),
])
def test_bad_options_exit_2_before_anything_is_stored(planted: Path, args: tuple[str, ...],
                                                      message: str) -> None:
    result = watch(planted, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    # nothing was stored: the corrected command still sees every finding as new
    assert stored(planted) == 0


def test_a_bad_config_value_or_high_risk_list_exits_2(planted: Path, tmp_path: Path) -> None:
    config = tmp_path / "watch.toml"
    config.write_text("no_such_threshold = 3\n")
    result = watch(planted, "--config", config)
    assert result.returncode == 2
    assert "no_such_threshold" in result.stderr and str(config) in result.stderr
    assert stored(planted) == 0
    ranges = tmp_path / "ranges.csv"
    ranges.write_text("prefix,label\n8816,Iridium\nabc,not a prefix\n")
    result = watch(planted, "--high-risk", ranges)
    assert result.returncode == 2
    assert f"{ranges}:3: prefix 'abc'" in result.stderr
    assert stored(planted) == 0


def test_a_missing_warehouse_exits_2(tmp_path: Path) -> None:
    result = watch(tmp_path / "typo.duckdb")
    assert result.returncode == 2
    assert f"error: no warehouse at {tmp_path / 'typo.duckdb'}" in result.stderr
    assert not (tmp_path / "typo.duckdb").exists()


def test_an_unreachable_mail_server_exits_1_and_findings_can_be_sent_again(
        planted: Path, smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp
    lines = tmp_path / "findings.jsonl"
    dead = free_port()   # nothing listens there
    result = watch(planted, "--severity", "critical", "--notify", f"smtp://127.0.0.1:{dead}",
                   "--mail-to", "noc@example.com", "--notify", f"file:{lines}",
                   "--format", "json")
    assert result.returncode == 1
    assert f"error: could not notify smtp://127.0.0.1:{dead}: ConnectionRefusedError" \
        in result.stderr
    assert "ratelab watch findings --since 2026-11-02T04:05 --severity critical --notify TARGET" \
        in result.stderr
    found = json.loads(result.stdout)
    sent = [f for f in found if f["severity"] == "critical"]
    # the file target still got its lines; every finding is stored
    assert len(lines.read_text().splitlines()) == len(sent)
    assert stored(planted) == len(found)
    # the next run does not send them again ...
    second = watch(planted, "--severity", "info", "--notify", f"smtp://127.0.0.1:{port}",
                   "--mail-to", "noc@example.com")
    assert second.returncode == 0 and inbox.messages == []
    # ... `watch findings --notify` does, from the store
    resend = run_cli("watch", "findings", "--since", "2026-11-02T04:00", "--notify",
                     f"smtp://127.0.0.1:{port}", "--mail-to", "noc@example.com",
                     warehouse=planted)
    assert resend.returncode == 0, resend.stderr
    [message] = inbox.messages
    assert f"{len(found)} stored finding" in message["Subject"]
    for finding in found:
        assert finding["id"] in body(message, "plain") and finding["id"] in body(message, "html")


def test_watch_findings_lists_the_stored_findings(planted: Path) -> None:
    found = json.loads(watch(planted, "--format", "json", "--severity", "info").stdout)
    listed = ok(run_cli("watch", "findings", "--since", "2026-11-01", warehouse=planted))
    assert "First seen" in listed and "Last seen" in listed
    assert listed.strip().splitlines()[-1] == \
        f"{len(found)} finding(s) seen since 2026-11-01 00:00 UTC"
    csv = ok(run_cli("watch", "findings", "--since", "2026-11-01", "--format", "csv",
                     warehouse=planted))
    assert csv.splitlines()[0].startswith("id,")
    assert sorted(line.split(",")[0] for line in csv.splitlines()[1:]) == \
        sorted(f["id"] for f in found)
    none = run_cli("watch", "findings", "--since", "2026-11-01", "--severity", "critical",
                   "--format", "json", warehouse=planted)
    critical = [f for f in found if f["severity"] == "critical"]
    assert none.returncode == 0
    assert len(json.loads(none.stdout)) == len(critical)


def test_a_finding_that_gets_worse_in_its_hour_is_sent_when_it_reaches_the_severity(
        tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    warehouse = build_warehouse(tmp_path, planted=False)
    lines = tmp_path / "findings.jsonl"
    args = ("--severity", "warning", "--notify", f"smtp://127.0.0.1:{port}",
            "--mail-to", "noc@example.com", "--notify", f"file:{lines}", "--format", "json")
    wh = ratelab.connect(warehouse)
    # 03:01: one attempt to the Iridium range, nobody answered: an info finding, no alert
    write_jsonl(tmp_path / "spool" / "cdr-0301.jsonl",
                [contract_cdr("probe", "881630000000", _iso(HOUR + timedelta(minutes=1)), 0)])
    wh.ingest(tmp_path / "spool")
    wh.rate()
    early = run_cli("watch", "--now", "2026-11-02T03:10", *args, warehouse=warehouse)
    assert early.returncode == 0, early.stderr
    [probe] = json.loads(early.stdout)
    assert (probe["kind"], probe["severity"], probe["new"]) == ("high_risk", "info", True)
    assert inbox.messages == [] and not lines.exists()
    # the same hour fills up with answered calls: the same id, now critical -> sent, exit 1
    write_jsonl(tmp_path / "spool" / "cdr-0315.jsonl",
                [contract_cdr(f"irsf-{n}", f"88163{n:07d}",
                              _iso(HOUR + timedelta(minutes=15, seconds=30 * n)), 5_000)
                 for n in range(40)])
    wh.ingest(tmp_path / "spool")
    wh.rate()
    late = run_cli("watch", "--now", "2026-11-02T03:55", *args, warehouse=warehouse)
    assert late.returncode == 1, late.stderr
    worse = [f for f in json.loads(late.stdout) if f["id"] == probe["id"]]
    assert len(worse) == 1 and worse[0]["severity"] == "critical"
    assert (worse[0]["new"], worse[0]["escalated_from"]) == (False, "info")
    assert "1 more severe than before" in late.stderr
    [message] = inbox.messages
    fresh = [f for f in json.loads(late.stdout) if f["new"]]   # the night burst, the spike
    assert str(message["Subject"]).strip() == \
        f"[ratelab watch] {len(fresh)} new and 1 more severe findings: {len(fresh) + 1} critical"
    assert "[CRITICAL] (was info) high_risk" in body(message, "plain")
    [record] = [json.loads(line) for line in lines.read_text().splitlines()
                if json.loads(line)["id"] == probe["id"]]
    assert record["escalated_from"] == "info" and record["numbers"]["calls"] == "41"
    # and it is not sent again by the next run
    again = run_cli("watch", "--now", "2026-11-02T03:58", *args, warehouse=warehouse)
    assert again.returncode == 0 and len(inbox.messages) == 1


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through SSL_CERT_FILE,
    which Python's default context reads) and its key."""
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_starttls_and_smtps_with_a_login_from_the_environment(
        planted: Path, tls_files: tuple[Path, Path]) -> None:
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: object, session: object, envelope: object, mechanism: str,
                      auth_data: object) -> AuthResult:
        login, password = auth_data.login, auth_data.password  # type: ignore[attr-defined]
        logins.append((login, password))
        return AuthResult(success=(login, password) == (b"ratelab", b"s3cret"))

    starttls, smtps = Inbox(), Inbox()
    servers = [
        Controller(starttls, hostname="127.0.0.1", port=free_port(), tls_context=context,
                   require_starttls=True, auth_required=True, authenticator=authenticator,
                   server_hostname="127.0.0.1"),
        Controller(smtps, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                   server_hostname="127.0.0.1"),
    ]
    for server in servers:
        server.start()
    try:
        env = {"SSL_CERT_FILE": str(cert), "RATELAB_SMTP_USER": "ratelab",
               "RATELAB_SMTP_PASSWORD": "s3cret"}
        targets = ("--notify", f"smtp+starttls://127.0.0.1:{servers[0].port}",
                   "--notify", f"smtps://127.0.0.1:{servers[1].port}")
        # (a wrong password is not tried: aiosmtpd answers a failed AUTH only after the
        # client's timeout; a target that fails is the refused-connection test above)
        right = run_cli("watch", "--now", NOW, *targets, "--mail-to", "noc@example.com",
                        warehouse=planted, env=env)
        assert right.returncode == 1 and "could not notify" not in right.stderr, right.stderr
        assert len(starttls.messages) == 1 and len(smtps.messages) == 1
        assert logins == [(b"ratelab", b"s3cret")]   # the login came from the environment
        assert "high_risk" in body(starttls.messages[0], "plain")
    finally:
        for server in servers:
            server.stop()


def test_output_files_hold_the_findings_and_the_log_line_goes_to_stderr(
        planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "findings.csv"
    result = watch(planted, "--severity", "critical", "--output", out)
    assert result.returncode == 1 and result.stdout == ""
    assert f"wrote {out} (" in result.stderr and "watch at 2026-11-02 04:05 UTC" in result.stderr
    header, *rows = out.read_text().splitlines()
    assert header == ("id,severity,kind,customer,destination,window_start,window_end,summary,"
                      "numbers,first_seen,new,escalated_from")
    assert rows and all(row.split(",")[-2:] == ["true", ""] for row in rows)
    assert stored(planted) == len(rows)
    # a table to a file: the people table, every finding with --all (none is new any more)
    text = tmp_path / "findings.txt"
    again = watch(planted, "--all", "--output", text)
    assert again.returncode == 0
    lines = text.read_text().splitlines()
    assert lines[0] == "Findings" and lines[1].split()[:3] == ["Severity", "New", "Kind"]
    column = lines[1].index("New")
    assert len(lines) == 3 + len(rows)
    assert all(line[column:column + 3] == "   " for line in lines[3:])
    # xlsx is not a watch format: a usage error before anything runs
    bad = watch(planted, "--output", tmp_path / "findings.xlsx")
    assert bad.returncode == 2 and "write findings as .csv, .json or a table" in bad.stderr
