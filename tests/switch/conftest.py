"""Fixtures for the switch tests that need real peers on the machine: SIPp, rtpengine."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.media import NgClient, NgTimeoutError
from tests.switch.sipp_runner import INSTALL_HINT


@pytest.fixture
def sipp_installed() -> None:
    """Fail (never skip) when SIPp is missing: say which Debian package to install.

    Modules that drive SIPp use it with ``pytestmark = pytest.mark.usefixtures("sipp_installed")``.
    """
    if shutil.which("sipp") is None:
        pytest.fail(INSTALL_HINT)


#: rtpengine's media ports in the tests: no other test's, below the kernel's ephemeral ports.
RTPENGINE_PORTS = (30000, 30099)
RTPENGINE_HINT = ("rtpengine is not installed: these tests drive a real rtpengine. On "
                  "Debian/Ubuntu: apt-get install rtpengine-daemon (.ci/run installs it)")


@pytest.fixture
def rtpengine(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A userspace rtpengine on 127.0.0.1 (``--table=-1``), stopped after the test; yields its
    ng address. Fails (never skips) when rtpengine is missing or does not answer ping."""
    binary = shutil.which("rtpengine")
    if binary is None:
        pytest.fail(RTPENGINE_HINT)
    from tests.switch.media_peers import rtpengine_command
    from tests.switch.sipp_runner import free_port

    port = free_port()
    workdir = tmp_path / "rtpengine"
    workdir.mkdir()
    log_path = workdir / "rtpengine.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            rtpengine_command(binary, ("127.0.0.1", port), RTPENGINE_PORTS, workdir),
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        if not asyncio.run(_answers_ping(("127.0.0.1", port), process)):
            pytest.fail(f"rtpengine did not answer ping; its log:\n{log_path.read_text()[-3000:]}")
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _answers_ping(address: tuple[str, int], process: subprocess.Popen[bytes]) -> bool:
    async with NgClient(address, timeout=0.5, attempts=1) as client:
        for _ in range(40):  # up to ~20 s for a slow start (DTLS certificate generation)
            if process.poll() is not None:
                return False
            try:
                await client.ping()
                return True
            except NgTimeoutError:
                continue
    return False
