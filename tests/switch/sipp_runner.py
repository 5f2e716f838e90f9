"""Run SIPp (Debian package sip-tester, tested with 3.6.1) from tests and benchmarks.

The scenarios live in tests/switch/sipp/ (each file's header says what it plays and which
``-set`` variables it reads). Two entry points:

- ``SippUas``: a context manager running a SIPp UAS (a vendor) in the foreground as a
  subprocess, in its own temp directory, until the ``with`` block ends.
- ``run_uac(...)``: runs a SIPp UAC (a customer) to completion and returns a ``SippResult``.

SIPp exit codes (``SippResult.returncode``)::

    0    all calls were successful
    1    at least one call failed
    97   exit on internal command (e.g. -timeout with -timeout_error); calls may have run
    99   normal exit without any call processed
    255  (-1) fatal error (bad scenario, bad option, <error> action, ...)
    254  (-2) fatal error binding a socket

Quirks of SIPp 3.6.1 worth knowing (found while writing these scenarios):

- Stopping a UAS: SIGUSR1 is the graceful stop (no new calls, waits for the calls in
  progress, writes the final statistics line, exits 0). SIGINT/SIGTERM exit at once and the
  last statistics line may not count the calls in progress. ``SippUas`` sends SIGUSR1, then
  SIGINT, then SIGKILL.
- Every instance binds the SIP port, a media echo port pair (-mp P and P+2) and a UDP
  control port (-cp, default 8888): parallel instances must get their own ports, which the
  helpers here pick.
- A status line cannot hold a variable ("Response codes must be in the range of 100-700"),
  so uas_reject.xml branches to one <send> per code.
- Final codes are captured by <log message="final=NNN call=..."/> actions (-trace_logs),
  see uac_expect_fail.xml; an unexpected response shows up in the error log as
  "received 'SIP/2.0 NNN ...".
- SIPp absorbs a retransmission of the last message it received before the scenario sees it
  (a hash of the whole message): it only shows in the -trace_counts column <n>_<msg>_Retrans
  (``SippResult.count("200", "Retrans")``), unless -nr turns the detection off.
- SIPp sends nothing else while a message it sent with retrans= is still being
  retransmitted: a <pause> followed by a <send> waits for the ACK or the retransmission limit.
- A variable that is assigned but never used stops SIPp ("Variable $x is referenced 1
  times!"): log it.
- A UAS that loops (<send next="...">) must not have a <nop> between a <send> and the next
  <recv>: an answer arriving before SIPp has run the <nop> is "unexpected ... while in message
  type 5" and aborts the call. Put next= on the <send> itself (uas_upstream_registrar.xml).
- <verifyauth> needs the received message: in a <nop> it has none (3.6.1 crashes). It checks
  only an ``Authorization`` header (never ``Proxy-Authorization``) and only MD5 in 3.6.1; an
  <ereg> that does not match leaves its variable as it was (reset it first).

Every run writes, in its workdir: stat.csv (-trace_stat, the cumulative counters, every
200 ms and at exit), <scenario>_<pid>_counts.csv (-trace_counts: per scenario message Sent /
Recv / Retrans / Timeout / Unexp, same rhythm; a retransmission SIPp absorbed counts as Retrans,
not Recv), errors.log, logs.log (the <log> actions, written at once) and, with trace_msg=True,
messages.log (every message, written at once).
``SippUas.snapshot()`` reads them while the UAS runs, so a test can wait for an event (a
message received, a log line) instead of sleeping.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
INSTALL_HINT = (
    "SIPp is not on PATH: install the Debian package sip-tester (apt-get install sip-tester)"
)

EXIT_CODES = {
    0: "all calls successful",
    1: "at least one call failed",
    97: "exit on internal command (e.g. global -timeout); calls may have been processed",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
}

_FINAL_RE = re.compile(r"^final=(\d{3}) call=(\S+)", re.MULTILINE)
_BYE_AFTER_RE = re.compile(r"^bye_after_ms=([0-9.]+) call=(\S+)", re.MULTILINE)
_UNEXPECTED_RE = re.compile(r"unexpected message for Call-Id '[^']*'.*?received 'SIP/2\.0 (\d{3})",
                            re.DOTALL)


def sipp_binary() -> str:
    """The sipp executable; raises RuntimeError with the install hint when it is missing."""
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    return path


def scenario_path(scenario: str | Path) -> Path:
    """A scenario by file name (looked up in tests/switch/sipp/) or by path."""
    p = Path(scenario)
    if not p.suffix:
        p = p.with_suffix(".xml")
    if not p.is_absolute() and not p.exists():
        p = SCENARIO_DIR / p
    if not p.exists():
        raise FileNotFoundError(f"no SIPp scenario {scenario!r} (looked in {SCENARIO_DIR})")
    return p


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()) -> int:
    """A port that is free for both UDP and TCP on host right now, not in ``exclude``: the
    ports already chosen for the same SIPp, which nothing binds yet, so the kernel may hand
    one of them out again (a SIP port equal to the control port made SIPp exit 254)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in exclude and _port_free(port, host):
            return port
    raise RuntimeError("no free port found")


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A free UDP (and TCP) port; same as free_port()."""
    return free_port(host)


def _free_media_port(host: str = "127.0.0.1", exclude: frozenset[int] = frozenset()) -> int:
    """An even port P with P and P+2 free (SIPp binds audio at -mp and video at -mp+2)."""
    for _ in range(200):
        port = free_port(host, exclude) & ~1
        if (1024 < port < 65000 and not {port, port + 2} & exclude
                and _port_free(port, host) and _port_free(port + 2, host)):
            return port
    raise RuntimeError("no free media port pair found")


def _listening(port: int, transport: str) -> bool:
    """Whether something has bound port (UDP) / listens on it (TCP), from /proc/net."""
    table, state = ("/proc/net/udp", "07") if transport == "udp" else ("/proc/net/tcp", "0A")
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except OSError:
        return True  # no /proc (not Linux): nothing to wait on
    want = f"{port:04X}"
    for line in lines:
        parts = line.split()
        if len(parts) > 3 and parts[1].split(":")[1] == want and parts[3] == state:
            return True
    return False


def _transport_flag(transport: str) -> str:
    flags = {"udp": "u1", "tcp": "t1"}
    try:
        return flags[transport]
    except KeyError:
        raise ValueError(f"transport must be 'udp' or 'tcp', not {transport!r}") from None


def _set_args(variables: dict[str, str | int] | None) -> list[str]:
    out: list[str] = []
    for name, value in (variables or {}).items():
        out += ["-set", name, str(value)]
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def parse_stat_csv(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat or -trace_counts CSV (';'-separated) as {column: value}.

    A last line still being written (no newline yet) is left out, so the file can be read
    while SIPp runs.
    """
    text = _read_text(path)
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines = lines[:-1]
    rows = [r for r in csv.reader(lines, delimiter=";") if r]
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return dict(zip(header, last, strict=False))


def parse_counts_csv(path: Path | None) -> dict[str, int]:
    """The last row of a -trace_counts CSV: {"<index>_<message>_<column>": count}.

    Columns are named after the scenario's messages: "0_INVITE_Recv", "3_200_Retrans",
    "7_ACK_Sent", ... (hidden ones left out).
    """
    if path is None:
        return {}
    out: dict[str, int] = {}
    for name, value in parse_stat_csv(path).items():
        if name.count("_") >= 2 and value.strip().isdigit():
            out[name] = int(value)
    return out


def _counts_file(workdir: Path) -> Path | None:
    found = sorted(workdir.glob("*_counts.csv"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@dataclass
class SippResult:
    """What one SIPp run did. Counters are the cumulative ones of the last statistics row."""

    returncode: int | None
    successful: int
    failed: int
    final_codes: Counter[int] = field(default_factory=Counter)
    unexpected_codes: Counter[int] = field(default_factory=Counter)
    bye_after_ms: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    workdir: Path | None = None
    stat_file: Path | None = None
    error_file: Path | None = None
    log_file: Path | None = None
    message_file: Path | None = None
    stdout: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def meaning(self) -> str:
        return EXIT_CODES.get(self.returncode if self.returncode is not None else -999,
                              f"killed or unknown exit code {self.returncode}")

    @property
    def errors(self) -> str:
        return _read_text(self.error_file) if self.error_file else ""

    @property
    def logs(self) -> str:
        return _read_text(self.log_file) if self.log_file else ""

    def count(self, message: str | int, column: str = "Recv") -> int:
        """A -trace_counts counter summed over the scenario steps of one message.

        ``message`` is a method ("INVITE", "ACK") or a status code (200); ``column`` is one of
        Sent, Recv, Retrans, Timeout, Unexp. ``count(200, "Retrans")`` is how many copies of
        an already received 200 SIPp absorbed as retransmissions.
        """
        suffix = f"_{message}_{column}"
        return sum(v for k, v in self.counts.items()
                   if k.endswith(suffix) and k[: -len(suffix)].isdigit())

    def logged(self, event: str) -> list[str]:
        """The lines a scenario's <log message="EVENT ..."/> actions wrote, in order."""
        return [line for line in self.logs.splitlines() if line.split(" ", 1)[0] == event]

    def describe(self) -> str:
        """A multi-line summary for assertion messages (includes the error log)."""
        errors = self.errors.strip()
        if len(errors) > 4000:
            errors = errors[:4000] + "\n... (truncated)"
        return (
            f"sipp exit {self.returncode} ({self.meaning}); successful={self.successful} "
            f"failed={self.failed} final_codes={dict(self.final_codes)} "
            f"unexpected={dict(self.unexpected_codes)}\n"
            f"message counts: {({k: v for k, v in self.counts.items() if v}) or '(none)'}\n"
            f"command: {' '.join(self.command)}\nworkdir: {self.workdir}\n"
            f"error log:\n{errors or '(empty)'}"
        )


def _collect(returncode: int | None, workdir: Path, command: list[str], stdout: str) -> SippResult:
    stat = workdir / "stat.csv"
    err = workdir / "errors.log"
    log = workdir / "logs.log"
    msg = workdir / "messages.log"
    row = parse_stat_csv(stat)
    logs = _read_text(log)
    return SippResult(
        returncode=returncode,
        successful=int(row.get("SuccessfulCall(C)", "0") or 0),
        failed=int(row.get("FailedCall(C)", "0") or 0),
        final_codes=Counter(int(c) for c, _ in _FINAL_RE.findall(logs)),
        unexpected_codes=Counter(int(c) for c in _UNEXPECTED_RE.findall(_read_text(err))),
        bye_after_ms=[float(ms) for ms, _ in _BYE_AFTER_RE.findall(logs)],
        counts=parse_counts_csv(_counts_file(workdir)),
        workdir=workdir,
        stat_file=stat,
        error_file=err,
        log_file=log,
        message_file=msg if msg.exists() else None,
        stdout=stdout,
        command=command,
    )


def _common_args(workdir: Path, *, trace_msg: bool, sip_port: int,
                 control_port: int | None = None) -> list[str]:
    control = control_port or free_port(exclude=frozenset({sip_port}))
    args = [
        "-nostdin",
        "-mp", str(_free_media_port(exclude=frozenset({sip_port, control}))),
        "-cp", str(control),
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "200ms",
        "-trace_counts",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_logs", "-log_file", str(workdir / "logs.log"),
    ]
    if trace_msg:
        args += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    return args


def run_uac(
    scenario: str | Path,
    target: str = "127.0.0.1:5060",
    *,
    calls: int = 1,
    rate: float = 10.0,
    limit: int | None = None,
    local_port: int | None = None,
    transport: str = "udp",
    duration_ms: int = 1000,
    service: str = "15551230000",
    variables: dict[str, str | int] | None = None,
    auth: tuple[str, str] | None = None,
    extra: list[str] | None = None,
    timeout: float = 60.0,
    trace_msg: bool = False,
    local_ip: str = "127.0.0.1",
    workdir: Path | None = None,
) -> SippResult:
    """Run a SIPp UAC scenario to completion against target ("host:port").

    calls (-m) calls at rate (-r, calls per second, -rp 1000) with at most limit (-l)
    simultaneous calls; duration_ms is -d (the <pause/> of the scenarios); service is -s
    (the dialled number); variables become -set NAME VALUE; auth is (-au, -ap). SIPp's own
    -timeout is `timeout` seconds; the subprocess is killed 15 s after that.
    trace_msg=True keeps every SIP message in messages.log (slow under load).
    """
    binary = sipp_binary()
    path = scenario_path(scenario)
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"sipp-{path.stem}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sip_port = local_port or free_port()
    cmd = [
        binary, target, "-sf", str(path),
        "-i", local_ip,
        "-p", str(sip_port),
        "-t", _transport_flag(transport),
        "-s", service,
        "-m", str(calls), "-r", f"{rate:g}", "-rp", "1000",
        "-l", str(limit if limit is not None else max(calls, 1)),
        "-d", str(duration_ms),
        "-timeout", f"{max(int(timeout), 1)}s", "-timeout_error",
        *_common_args(workdir, trace_msg=trace_msg, sip_port=sip_port),
        *_set_args(variables),
    ]
    if auth is not None:
        cmd += ["-au", auth[0], "-ap", auth[1]]
    cmd += list(extra or [])
    try:
        proc = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout + 15)
        returncode: int | None = proc.returncode
        stdout = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = None
        stdout = str(exc.stdout or "")
    return _collect(returncode, workdir, cmd, stdout[-20000:])


class SippUas:
    """A SIPp UAS (vendor) running for the duration of a ``with`` block.

    Usage::

        with SippUas("uas_answer.xml") as uas:
            result = run_uac("uac_basic.xml", uas.address, calls=3)
        assert uas.result.successful == 3, uas.result.describe()

    ``calls`` (-m) makes SIPp exit by itself after that many calls; leave it None to serve
    any number. On exit the UAS is stopped with SIGUSR1 (graceful: calls in progress finish),
    then SIGINT and SIGKILL if it does not exit within ``stop_timeout`` seconds; ``result``
    then holds its counters and trace files.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        port: int | None = None,
        transport: str = "udp",
        calls: int | None = None,
        duration_ms: int = 1000,
        variables: dict[str, str | int] | None = None,
        extra: list[str] | None = None,
        trace_msg: bool = False,
        start_timeout: float = 5.0,
        stop_timeout: float = 10.0,
        workdir: Path | None = None,
    ) -> None:
        self.scenario = scenario_path(scenario)
        self.port = port or free_port()
        self.transport = transport
        self.host = "127.0.0.1"
        self.calls = calls
        self.duration_ms = duration_ms
        self.variables = variables
        self.extra = list(extra or [])
        self.trace_msg = trace_msg
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"sipp-{self.scenario.stem}-"))
        self.control_port = free_port(exclude=frozenset({self.port}))
        self.proc: subprocess.Popen[str] | None = None
        self.result: SippResult | None = None
        self.command: list[str] = []

    @property
    def address(self) -> str:
        """host:port, the target for run_uac or a switch's vendor config."""
        return f"{self.host}:{self.port}"

    def start(self) -> SippUas:
        binary = sipp_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.command = [
            binary, "-sf", str(self.scenario),
            "-i", self.host, "-p", str(self.port),
            "-t", _transport_flag(self.transport),
            "-d", str(self.duration_ms),
            *_common_args(self.workdir, trace_msg=self.trace_msg, sip_port=self.port,
                          control_port=self.control_port),
            *_set_args(self.variables),
        ]
        if self.calls is not None:
            self.command += ["-m", str(self.calls)]
        self.command += self.extra
        self._out = open(self.workdir / "stdout.txt", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT, text=True)
        # SIPp 3.6.1 binds the SIP socket, then the media ports, then the UDP control socket
        # (-cp), and then enters its traffic loop: the control socket is the last sign of
        # life before it reads SIP messages (earlier ones wait in the socket's buffer).
        deadline = time.monotonic() + self.start_timeout
        while not (_listening(self.port, self.transport)
                   and _listening(self.control_port, "udp")):
            if self.proc.poll() is not None:
                self._finish()
                raise RuntimeError(f"SIPp UAS exited at start:\n{self.describe()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SIPp UAS did not bind {self.address}:\n{self.describe()}")
            time.sleep(0.02)
        return self

    def stop(self) -> SippResult:
        """Stop SIPp (SIGUSR1, then SIGINT, then SIGKILL) and collect its result."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGUSR1, self.stop_timeout), (signal.SIGINT, 3.0)):
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                proc.kill()
                proc.wait()
        return self._finish()

    def wait(self, timeout: float = 30.0) -> SippResult:
        """Wait for a UAS started with calls=N to exit by itself."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.stop()
        return self._finish()

    def _finish(self) -> SippResult:
        out = getattr(self, "_out", None)
        if out is not None and not out.closed:
            out.close()
        rc = self.proc.returncode if self.proc is not None else None
        self.result = _collect(rc, self.workdir, self.command,
                               _read_text(self.workdir / "stdout.txt")[-20000:])
        return self.result

    def snapshot(self) -> SippResult:
        """What the running UAS has done so far (counters, logs, messages), without stopping it.

        Counters (``successful``, ``count()``) are as of SIPp's last statistics dump (every
        200 ms); logs (``logged()``) and messages.log as of now. Use it to wait for an event:
        ``wait_until(lambda: uas.snapshot().count("ACK") >= 6)``.
        """
        return _collect(None, self.workdir, self.command, "")

    def describe(self) -> str:
        result = self.result or _collect(None, self.workdir, self.command, "")
        return result.describe()

    def __enter__(self) -> SippUas:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def digest_ok(authorization: str, *, password: str, method: str = "INVITE") -> bool:
    """Check an MD5 digest credential (no qop, or qop=auth) as logged by uas_challenge.xml.

    >>> ha1 = hashlib.md5(b"u:r:pw").hexdigest()
    >>> ha2 = hashlib.md5(b"INVITE:sip:x").hexdigest()
    >>> resp = hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
    >>> digest_ok(f'Digest username="u",realm="r",uri="sip:x",nonce="n",response="{resp}"',
    ...           password="pw")
    True
    """
    params = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))',
                                                    authorization)}
    try:
        ha1 = hashlib.md5(f"{params['username']}:{params['realm']}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{params['uri']}".encode()).hexdigest()
        if "qop" in params:
            tail = f"{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}"
        else:
            tail = params["nonce"]
        expected = hashlib.md5(f"{ha1}:{tail}:{ha2}".encode()).hexdigest()
    except KeyError:
        return False
    return expected == params.get("response")


def proxy_authorizations(logs: str) -> list[str]:
    """The Proxy-Authorization values logged by uas_challenge.xml, in call order."""
    found = re.findall(r"^proxy_authorization call=\S+ (.*)$", logs, re.MULTILINE)
    return [m.strip() for m in found]


__all__ = [
    "EXIT_CODES",
    "INSTALL_HINT",
    "SCENARIO_DIR",
    "SippResult",
    "SippUas",
    "digest_ok",
    "free_port",
    "free_udp_port",
    "parse_counts_csv",
    "parse_stat_csv",
    "proxy_authorizations",
    "run_uac",
    "scenario_path",
    "sipp_binary",
]


def ok(result: SippResult | None, calls: int) -> None:
    """Assert SIPp completed ``calls`` calls and failed none (its own description if not)."""
    assert result is not None
    assert result.successful == calls and result.failed == 0, result.describe()
