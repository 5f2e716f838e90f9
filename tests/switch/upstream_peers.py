"""The carrier side of the upstream-registration tests: SIPp's message log read back as
requests and answers, configs with ``register_out``, a Python UAC that drives the SIPp
registrar scenario, and a registrar written from RFC 7616 (hashlib only, not switch.sip).

Not a test module; import as ``from tests.switch.upstream_peers import ...``.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from switch.__main__ import main
from tests.switch.live import LiveSwitch, vendor, wait_until
from tests.switch.sipp_runner import SippUas

SCENARIO = "uas_upstream_registrar.xml"
USER, PASSWORD = "ratelab", "secret"
REGISTER_OUT = (f'register_out = true\nregister_user = "{USER}"\n'
                f'register_password = "{PASSWORD}"\n')


# --- the wire, from SIPp's message log ---------------------------------------------------------

@dataclass
class Wire:
    """One SIP message SIPp received or sent, with the time SIPp logged it."""

    at: float  # seconds since the epoch, from the log's timestamp (local time of SIPp)
    received: bool
    start: str
    headers: list[tuple[str, str]]

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    @property
    def cseq(self) -> int:
        return int((self.get("CSeq") or "0").split()[0])

    @property
    def expires(self) -> int | None:
        value = self.get("Expires")
        return None if value is None else int(value)

    @property
    def status(self) -> int | None:
        return int(self.start.split()[1]) if self.start.startswith("SIP/2.0 ") else None

    @property
    def branch(self) -> str:
        found = re.search(r"branch=([^;,\s]+)", self.get("Via") or "")
        return found.group(1) if found else ""

    def describe(self) -> str:
        return "\n".join([self.start, *(f"{n}: {v}" for n, v in self.headers)])


_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)\s*$")


def wire(uas: SippUas) -> list[Wire]:
    """Every message in the UAS's messages.log, in order."""
    path = uas.workdir / "messages.log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out: list[Wire] = []
    k = 0
    while k < len(lines):
        m = _STAMP.match(lines[k])
        if not m or k + 1 >= len(lines):
            k += 1
            continue
        at = datetime.strptime(m.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        received = "received" in lines[k + 1]
        k += 2
        while k < len(lines) and not lines[k].strip():
            k += 1
        body: list[str] = []
        while k < len(lines) and lines[k].strip() and not _STAMP.match(lines[k]):
            body.append(lines[k])
            k += 1
        if not body:
            continue
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in body[1:])]
        out.append(Wire(at, received, body[0], headers))
    return out


def registers(uas: SippUas) -> list[Wire]:
    """The REGISTERs SIPp received, retransmissions (same CSeq and branch) left out."""
    seen: set[tuple[str, int, str]] = set()
    out = []
    for w in wire(uas):
        if w.received and w.start.startswith("REGISTER "):
            key = (w.get("Call-ID") or "", w.cseq, w.branch)
            if key not in seen:
                seen.add(key)
                out.append(w)
    return out


def answers(uas: SippUas) -> list[Wire]:
    """The responses SIPp sent, in order (a retransmitted one once)."""
    seen: set[tuple[str, int, str]] = set()
    out = []
    for w in wire(uas):
        if not w.received and w.status is not None:
            key = (w.get("Call-ID") or "", w.cseq, w.branch)
            if key not in seen:
                seen.add(key)
                out.append(w)
    return out


def answered(uas: SippUas, code: int) -> int:
    """How many REGISTERs the scenario answered with ``code`` (its own log)."""
    return sum(1 for line in uas.snapshot().logged("answer") if line.endswith(f" code={code}"))


def registrar(tmp: Path, name: str = "uas", **variables: str | int) -> SippUas:
    return SippUas(SCENARIO, variables={"user": USER, "password": PASSWORD, **variables},
                   trace_msg=True, stop_timeout=1.0, workdir=tmp / name)


def upstream(name: str, port: int, extra: str = "") -> str:
    """A [[routing_gateway]] that registers to 127.0.0.1:port."""
    return vendor(name, port, prefixes='"44"', extra=REGISTER_OUT + extra)


def live(root: Path, routing: str, sip: str = "") -> LiveSwitch:
    return LiveSwitch(root, routing=routing,
                      sip="invite_timeout = 2\ncall_progress_timeout = 10\n" + sip)


def table(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """``python -m switch registrations`` output."""
    capsys.readouterr()
    assert main(["registrations", "--config", str(config)]) == 0
    return capsys.readouterr().out


def upstream_row(config: Path, capsys: pytest.CaptureFixture[str], gateway: str) -> str:
    """The upstream section's row of ``gateway`` ('' when there is none)."""
    text = table(config, capsys)
    _, _, section = text.partition("\nupstream ")
    for line in section.splitlines()[1:]:
        if line.split()[:1] == [gateway]:
            return line
    return ""


def wait_registered(uas: SippUas, count: int = 1, timeout: float = 10.0) -> None:
    assert wait_until(lambda: answered(uas, 200) >= count, timeout=timeout), (
        f"no {count} x 200 from the registrar in {timeout} s; on the wire:\n"
        + "\n\n".join(w.describe() for w in wire(uas)) + "\n" + uas.describe())


def auth_params(value: str) -> dict[str, str]:
    return {k.lower(): a or b for k, a, b in re.findall(r'([\w-]+)=(?:"([^"]*)"|([^\s,]+))', value)}


def assert_one_dialog(regs: list[Wire], contact: str) -> None:
    """One Call-ID and From tag, CSeq +1 per request, a new branch each, the same Contact."""
    assert len({r.get("Call-ID") for r in regs}) == 1, [r.get("Call-ID") for r in regs]
    assert len({(r.get("From") or "").partition(";tag=")[2] for r in regs}) == 1
    first = regs[0].cseq
    assert [r.cseq for r in regs] == list(range(first, first + len(regs))), \
        [r.cseq for r in regs]
    assert all((r.get("CSeq") or "").split()[1:] == ["REGISTER"] for r in regs)
    assert len({r.branch for r in regs}) == len(regs), [r.branch for r in regs]
    assert [r.get("Contact") for r in regs] == [contact] * len(regs)


# --- the scenario itself, against a few lines of Python (no switch) ----------------------------

class PyUac:
    """REGISTERs over UDP with one Call-ID, MD5 digest (qop=auth) computed here."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)
        self.server = ("127.0.0.1", port)
        self.me = self.sock.getsockname()[1]
        self.cseq = 0
        self.challenge: tuple[str, dict[str, str]] | None = None  # (header to answer, params)

    def close(self) -> None:
        self.sock.close()

    def register(self, expires: int, *, password: str | None = None) -> Wire:
        self.cseq += 1
        uri = f"sip:127.0.0.1:{self.server[1]}"
        lines = [f"REGISTER {uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.me};branch=z9hG4bKpy{self.cseq}",
                 "From: <sip:ratelab@127.0.0.1>;tag=py", "To: <sip:ratelab@127.0.0.1>",
                 "Call-ID: py-self-check", f"CSeq: {self.cseq} REGISTER",
                 f"Contact: <sip:ratelab@127.0.0.1:{self.me}>", f"Expires: {expires}",
                 "Max-Forwards: 70"]
        if password is not None and self.challenge is not None:
            name, c = self.challenge
            ha1 = hashlib.md5(f"{USER}:{c['realm']}:{password}".encode()).hexdigest()
            ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
            tail = f"{c['nonce']}:00000001:c0ffee:auth"
            resp = hashlib.md5(f"{ha1}:{tail}:{ha2}".encode()).hexdigest()
            lines.append(f'{name}: Digest username="{USER}", realm="{c["realm"]}", '
                         f'nonce="{c["nonce"]}", uri="{uri}", response="{resp}", '
                         'algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"')
        self.sock.sendto(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode(),
                         self.server)
        text = self.sock.recv(65535).decode()
        head = text.split("\r\n\r\n")[0].split("\r\n")
        answer = Wire(time.time(), True, head[0],
                      [(n.strip(), v.strip()) for n, _, v in (h.partition(":") for h in head[1:])])
        for got, send in (("WWW-Authenticate", "Authorization"),
                          ("Proxy-Authenticate", "Proxy-Authorization")):
            if answer.get(got):
                self.challenge = (send, auth_params(answer.get(got) or ""))
        return answer



# --- SHA-256, against a registrar written from RFC 7616 -----------------------------------------

class Rfc7616Registrar:
    """A UDP registrar on 127.0.0.1: challenges with SHA-256 / qop=auth, checks the answer per
    RFC 7616 3.4.1 with hashlib, answers 200 (right) or 403 (wrong). ``silent = True`` makes
    it drop everything (an upstream gone away)."""

    REALM = "carrier.example"

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.peers: list[tuple[str, int]] = []  # where each REGISTER came from
        self.verdicts: list[tuple[int, bool, str]] = []  # (cseq, valid, why)
        self.silent = False
        self._nonces: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Rfc7616Registrar:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    @staticmethod
    def _h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def verify(self, method: str, uri: str, value: str) -> tuple[bool, str]:
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "digest":
            return False, "not Digest"
        p = auth_params(rest)
        checks = [
            (p.get("algorithm", "").upper() == "SHA-256", "algorithm"),
            (p.get("realm") == self.REALM, "realm"),
            (p.get("username") == USER, "username"),
            (p.get("nonce") in self._nonces, "nonce"),
            (p.get("uri") == uri, "uri"),
            (p.get("qop") == "auth", "qop"),
            (re.fullmatch(r"[0-9a-fA-F]{8}", p.get("nc", "")) is not None, "nc"),
            (bool(p.get("cnonce")), "cnonce"),
            (p.get("opaque") == "op4que", "opaque"),
        ]
        for good, what in checks:
            if not good:
                return False, f"bad {what}: {value}"
        ha1 = self._h(f"{USER}:{self.REALM}:{PASSWORD}")
        ha2 = self._h(f"{method}:{p['uri']}")
        expected = self._h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
        return p.get("response") == expected, f"response {p.get('response')} != {expected}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            if not text.startswith("REGISTER "):
                continue
            self.requests.append(text)
            self.peers.append(peer)
            if self.silent:
                continue
            self.sock.sendto(self._answer(text).encode(), peer)

    def _answer(self, text: str) -> str:
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        method, uri, _ = head[0].split(" ", 2)
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in head[1:])]
        get = {n.lower(): v for n, v in reversed(headers)}
        echo = "".join(f"{n}: {v}\r\n" for n, v in headers
                       if n.lower() in ("via", "from", "call-id", "cseq"))
        echo += f"To: {get.get('to', '')};tag=r7616\r\n"
        cseq = int(get.get("cseq", "0").split()[0])
        creds = get.get("authorization")
        if creds is None:
            nonce = f"n{len(self._nonces)}x{time.monotonic_ns()}"
            self._nonces[nonce] = cseq
            return ("SIP/2.0 401 Unauthorized\r\n" + echo +
                    f'WWW-Authenticate: Digest realm="{self.REALM}", nonce="{nonce}", '
                    'algorithm=SHA-256, qop="auth", opaque="op4que"\r\n'
                    "Content-Length: 0\r\n\r\n")
        valid, why = self.verify(method, uri, creds)
        self.verdicts.append((cseq, valid, why))
        if not valid:
            return "SIP/2.0 403 Forbidden\r\n" + echo + "Content-Length: 0\r\n\r\n"
        contact = get.get("contact", "")
        expires = get.get("expires", "3600")
        return ("SIP/2.0 200 OK\r\n" + echo +
                (f"Contact: {contact};expires={expires}\r\n" if expires != "0" else "") +
                "Content-Length: 0\r\n\r\n")
