"""The ``>>>`` examples of docs/*.md run as doctests, so a page cannot drift from the code.

Each page is one doctest (its examples share names, top to bottom, as a reader would type
them), run from the repository root (examples read files such as tests/fixtures/decks/...).
Markdown fences are blanked out first: doctest ends an expected output at a blank line, and
a closing ```` ``` ```` right after an output would otherwise be read as part of it. Line
numbers are kept, so a failure points at the page's own line.

A page gets doctested as soon as it has a ``>>>`` line: there is no list to keep up to date.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if re.search(r"^\s*>>>", p.read_text(), re.M))
FENCE = re.compile(r"^\s*(```|~~~)")
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _doctest_text(page: Path) -> str:
    """The page with its fence lines blanked (same line count)."""
    return "\n".join("" if FENCE.match(line) else line for line in page.read_text().split("\n"))


def test_pages_with_examples_are_found() -> None:
    # The pages that had examples when this test was written; more may join, none may vanish
    # without this test being told (a glob that finds nothing would pass every page).
    assert {"decks.md", "rating.md", "reports.md"} <= {p.name for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_page_examples(page: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    text = _doctest_text(page)
    test = doctest.DocTestParser().get_doctest(
        text, {"__name__": f"docs_{page.stem}"}, page.name, str(page), 0)
    # every `>>>` line of the page is an example's first line: none is hidden from the parser
    # (for instance by sitting in an expected output with no blank line before it)
    # (a `>>>` line holding only a comment is not an example)
    prompts = sum(1 for line in text.split("\n") if re.match(r"^\s*>>>(?!\s*(#|$))", line))
    assert len(test.examples) == prompts, f"{page.name}: {prompts} '>>>' lines, " \
        f"{len(test.examples)} examples parsed"
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    try:
        with pl.Config():  # a page may set how frames print; put it back afterwards
            result = runner.run(test, out=report.append)
    finally:
        test.globs.clear()
    assert result.failed == 0, "".join(report)
    assert result.attempted == prompts
