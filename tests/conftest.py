"""Shared fixtures: real DuckDB files and real spool files under pytest's tmp_path.

Helpers (CDR records, spool files, the ``ratelab`` command) are in ``tests/helpers.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ratelab


@pytest.fixture
def warehouse(tmp_path: Path) -> ratelab.Warehouse:
    return ratelab.connect(tmp_path / "warehouse.duckdb", create=True)


@pytest.fixture
def deck(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write deck text to a CSV file and return its path."""

    def make(text: str, name: str = "deck.csv") -> Path:
        path = tmp_path / "decks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return make
