"""``python -m switch.loadgen`` in subprocesses: a uas and a uac talking over 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.switch.sipp_runner import free_port

ROOT = Path(__file__).resolve().parents[2]


def _loadgen(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switch.loadgen", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_uas_and_uac_subprocesses_print_their_summaries() -> None:
    uas = subprocess.Popen(
        [sys.executable, "-m", "switch.loadgen", "uas", "--listen", "127.0.0.1:0",
         "--seconds", "3", "--mix", "answer=0.5,486=0.25,503=0.25", "--seed", "4",
         "--name", "v1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert uas.stdout is not None
        banner = uas.stdout.readline()
        match = re.search(r"listening on udp:127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        uac = _loadgen("uac", "--target", f"127.0.0.1:{match.group(1)}", "--calls", "8",
                       "--rate", "80", "--durations", "0.1", "--numbers", "4477009,3460",
                       "--name", "c1")
        out, err = uas.communicate(timeout=10)
    finally:
        uas.kill()
    assert uac.returncode == 0, uac.stderr
    summary = uac.stdout.strip().splitlines()[-1]
    assert summary.startswith("c1: 8 calls placed at ")
    codes = {int(c): int(n) for c, n in re.findall(r"(\d{3}) x(\d+)", summary)}
    assert sum(codes.values()) == 8 and set(codes) <= {200, 486, 503}
    assert "outcomes: " in summary and "completed" in summary
    assert uas.returncode == 0, err
    vendor = out.strip().splitlines()[-1]
    assert vendor.startswith("v1: 8 INVITEs, ") and f"{codes.get(200, 0)} answered" in vendor
    assert f"{codes.get(200, 0)} BYEs received" in vendor


def test_help_and_argument_errors() -> None:
    help_text = _loadgen("--help")
    assert help_text.returncode == 0 and "uac" in help_text.stdout and "plan" in help_text.stdout
    uac_help = _loadgen("uac", "--help")
    assert "--cancel-after" in uac_help.stdout and "--local" in uac_help.stdout
    bad = _loadgen("uas", "--mix", "answer=0.9,486=0.3", "--seconds", "1")
    assert bad.returncode == 2
    assert "must sum to <= 1" in bad.stderr
    bad = _loadgen("uac", "--target", "127.0.0.1:5060", "--durations", "2:0.5")
    assert bad.returncode == 2 and "must sum to 1" in bad.stderr
    bad = _loadgen("uac", "--target", "nowhere")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_plan_command_runs_a_toml_plan(tmp_path: Path) -> None:
    port = free_port()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        "drain_seconds = 0.2\n"
        f'[[vendors]]\nname = "v1"\nport = {port}\n'
        "mix = { answer = 0.5, refuse = { 486 = 0.5 } }\nseed = 2\n"
        f'[[customers]]\nname = "c1"\ntarget = "127.0.0.1:{port}"\ncalls = 6\nrate = 60\n'
        'numbers = ["4477009", "3460"]\ndurations = { "0.1" = 1.0 }\n')
    result = _loadgen("plan", str(plan))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"v1: listening on udp:127.0.0.1:{port}"
    assert any(line.startswith("plan finished in") and "6 calls placed" in line
               for line in lines)
    assert any(line.startswith("c1: 6 calls placed at") for line in lines)
    assert any(line.startswith("v1: 6 INVITEs") for line in lines)


def test_plan_command_reports_a_bad_plan(tmp_path: Path) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text('[[customers]]\nname = "c1"\nrate = "fast"\n')
    result = _loadgen("plan", str(plan))
    assert result.returncode == 2
    assert "customers[0] (c1): rate: 'fast'; use a number >= 0" in result.stderr
