"""The high-risk range list: CSV ``prefix,label`` (``#`` comment lines), read into disjoint key
segments with :mod:`ratelab.prefix` (the one prefix matcher).

>>> [r.prefix for r in read_ranges(HIGH_RISK_DEFAULT)][:3]
['881', '8816', '870']
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import duckdb

from ratelab.prefix import segments

__all__ = ["HIGH_RISK_DEFAULT", "HighRiskRange", "load_ranges", "read_ranges"]

#: The sample list shipped with ratelab (replace it with your own; docs/watch.md).
HIGH_RISK_DEFAULT = Path(__file__).resolve().parent.parent / "data" / "high_risk_ranges.csv"


class HighRiskRange(NamedTuple):
    """One listed prefix (E.164 digits) and what it is."""

    prefix: str
    label: str


def read_ranges(path: str | Path) -> list[HighRiskRange]:
    """Read and check a high-risk list. Every bad row is reported as ``file:line: reason`` in
    one ValueError, and nothing is used.

    >>> import tempfile, os
    >>> bad = os.path.join(tempfile.mkdtemp(), "risk.csv")
    >>> _ = open(bad, "w").write("prefix,label\\n882,ok\\n+44,x\\n882,again\\n")
    >>> try:
    ...     read_ranges(bad)
    ... except ValueError as err:
    ...     print(str(err).replace(bad, "risk.csv"))
    risk.csv: 2 bad rows in the high-risk list:
      risk.csv:3: prefix '+44' is not 1-17 digits (E.164 without +)
      risk.csv:4: prefix '882' is listed twice (first on line 2)
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the high-risk list: {exc.strerror or exc}") \
            from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the high-risk list is not UTF-8 text") from None
    problems: list[str] = []
    found: list[HighRiskRange] = []
    seen: dict[str, int] = {}
    header = False
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in row]
        if not header:
            if [c.lower() for c in cells[:2]] != ["prefix", "label"] or len(cells) != 2:
                problems.append(f"{path}:{number}: the first row must be the header "
                                f"'prefix,label', got {','.join(row)!r}")
                break
            header = True
            continue
        if len(cells) != 2:
            problems.append(f"{path}:{number}: expected 2 columns (prefix,label), "
                            f"got {len(cells)}")
            continue
        prefix, label = cells
        if not (1 <= len(prefix) <= 17 and prefix.isascii() and prefix.isdigit()):
            problems.append(f"{path}:{number}: prefix {prefix!r} is not 1-17 digits "
                            "(E.164 without +)")
        elif prefix in seen:
            problems.append(f"{path}:{number}: prefix {prefix!r} is listed twice "
                            f"(first on line {seen[prefix]})")
        elif not label:
            problems.append(f"{path}:{number}: prefix {prefix!r} has no label")
        else:
            seen[prefix] = number
            found.append(HighRiskRange(prefix, label))
    if not header and not problems:
        problems.append(f"{path}: no header 'prefix,label' (an empty list?)")
    if problems:
        raise ValueError(f"{path}: {len(problems)} bad row{'s' if len(problems) > 1 else ''} "
                         "in the high-risk list:\n  " + "\n  ".join(problems))
    return found


def load_ranges(con: duckdb.DuckDBPyConnection, ranges: list[HighRiskRange]) -> int:
    """Fill the temp table ``watch_risk`` (lo, hi, prefix, label) that high_risk.sql joins
    with; return the number of segments.

    >>> con = duckdb.connect()
    >>> load_ranges(con, [HighRiskRange("882", "a"), HighRiskRange("8821", "b")])
    3
    """
    labels = {r.prefix: r.label for r in ranges}
    rows = [(s.lo, s.hi, s.prefix, labels[s.prefix]) for s in segments(labels)]
    con.execute("CREATE OR REPLACE TEMP TABLE watch_risk "
                "(lo BIGINT, hi BIGINT, prefix VARCHAR, label VARCHAR)")
    if rows:
        con.executemany("INSERT INTO watch_risk VALUES (?, ?, ?, ?)", rows)
    return len(rows)
