"""Fixtures for the switch tests that need SIPp on the machine."""

from __future__ import annotations

import shutil

import pytest

from tests.switch.sipp_runner import INSTALL_HINT


@pytest.fixture
def sipp_installed() -> None:
    """Fail (never skip) when SIPp is missing: say which Debian package to install.

    Modules that drive SIPp use it with ``pytestmark = pytest.mark.usefixtures("sipp_installed")``.
    """
    if shutil.which("sipp") is None:
        pytest.fail(INSTALL_HINT)
