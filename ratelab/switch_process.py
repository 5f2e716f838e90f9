"""The softswitch as a subprocess, from Python: for notebooks, tests and the demo.

ratelab never imports the switch (DESIGN.md): it starts ``python -m switch run`` and talks to it
the way an operator would, over signals, SIP and its files. The context manager returns once the
switch has printed its ready line *and* answered a SIP OPTIONS on its UDP address, and stops it
gracefully (SIGTERM: drain, flush CDRs, exit 0) on the way out.

>>> SwitchProcess("data/switch.toml").running
False
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

__all__ = ["SwitchError", "SwitchProcess"]


class SwitchError(RuntimeError):
    """The switch did not start, answer or stop as expected; the message quotes its log."""


class SwitchProcess:
    """Run the switch with ``config_path`` in a subprocess.

    ``addresses`` lists what it listens on as ``(transport, host, port)`` (ports resolved when
    the config asks for port 0). ``log_path`` is its stderr log.
    """

    def __init__(self, config_path: str | Path, *, python: str = sys.executable,
                 cwd: str | Path | None = None, start_timeout: float = 20.0,
                 stop_timeout: float = 60.0, log_level: str = "INFO",
                 env: dict[str, str] | None = None) -> None:
        self.config_path = Path(config_path)
        self.python = python
        self.cwd = Path(cwd) if cwd is not None else None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_level = log_level
        self.env = env
        self.addresses: list[tuple[str, str, int]] = []
        self.stdout_lines: list[str] = []
        self.returncode: int | None = None
        self.log_path = Path(tempfile.mkdtemp(prefix="ratelab-switch-")) / "switch.log"
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The switch's process id."""
        if self._proc is None:
            raise SwitchError("the switch is not started")
        return self._proc.pid

    @property
    def udp_address(self) -> tuple[str, int]:
        """(host, port) of the first UDP listener: where customers send calls."""
        for transport, host, port in self.addresses:
            if transport == "udp":
                return host, port
        raise SwitchError("the switch has no UDP listener")

    def start(self) -> SwitchProcess:
        """Start the switch and wait until it answers SIP; SwitchError if it does not."""
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.returncode = None
        self._ready.clear()
        log = self.log_path.open("a")
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", "switch", "run", "--config", str(self.config_path),
                 "--log-level", self.log_level],
                cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            log.close()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._fail_start("did not report ready")
        while not self._answers_options():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._fail_start("did not answer SIP OPTIONS")
        return self

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            self.stdout_lines.append(line)
            if " ready: " in line and not self._ready.is_set():
                self.addresses = [_parse_listen(item) for item in line.split(" ready: ", 1)[1]
                                  .split()]
                self._ready.set()

    def _answers_options(self) -> bool:
        host, port = self.udp_address
        call_id = uuid.uuid4().hex
        probe = (f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP {host}:{{port}};branch=z9hG4bK{call_id}\r\n"
                 f"From: <sip:ratelab@{host}>;tag={call_id[:8]}\r\nTo: <sip:ping@{host}>\r\n"
                 f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                 "Content-Length: 0\r\n\r\n")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                           socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            sock.settimeout(0.3)
            sock.sendto(probe.replace("{port}", str(sock.getsockname()[1])).encode(),
                        (host, port))
            try:
                data = sock.recv(65535)
            except OSError:
                return False
        return data.startswith(b"SIP/2.0 200")

    def _fail_start(self, what: str) -> None:
        self.kill()
        raise SwitchError(f"the switch {what} within {self.start_timeout:g} s "
                          f"(config {self.config_path}). Its log:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        """The switch's stderr log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def reload(self) -> None:
        """Ask the switch to re-read its config and routing snapshot (SIGHUP)."""
        self._signal(signal.SIGHUP)

    def terminate(self) -> None:
        """Begin the graceful stop (SIGTERM) without waiting: new calls get 503 from now on,
        calls in progress get the config's ``shutdown_grace``. :meth:`stop` waits for the end."""
        self._signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> int:
        """Stop gracefully (SIGTERM: drain, flush CDRs); return the exit status."""
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self._proc.wait(timeout or self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise SwitchError(f"the switch did not stop within {timeout or self.stop_timeout:g}"
                              f" s and was killed. Its log:\n{self.log_text()[-4000:]}") from None
        self._join()
        return self.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would (the next start recovers the spool)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self.returncode = self._proc.wait()
        self._join()

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _signal(self, sig: int) -> None:
        if not self.running:
            raise SwitchError("the switch is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def __enter__(self) -> SwitchProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.running:
            self.stop()


def _parse_listen(text: str) -> tuple[str, str, int]:
    transport, rest = text.split(":", 1)
    host, _, port = rest.rpartition(":")
    return transport, host, int(port)
