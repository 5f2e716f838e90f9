"""Watch benchmark: ``run_watch`` on the 10M-CDR warehouse of the rating benchmark.

Prints, against the targets of issue 14 (full run <= 10 s, incremental run <= 2 s):

* the first run after a full re-rate: every hour is stale (rating marks the hours it changes;
  the watch aggregates the stale hours it reads), so this run aggregates its 90 days of history
  before the detectors run;
* the full run: a first run (no run before it, so a 24-hour window), every detector and the
  loss makers over 1, 7 and 30 days, on fresh aggregates (best of ``--repeat``);
* the incremental run: 15 minutes of new CDRs ingested and rated, then the next run, which
  aggregates the hour those CDRs made stale;
* a refresh of every hour, for comparison with what rating used to add.

The warehouse is ``data/bench/warehouse.duckdb`` from ``bench/rating.py`` (built first when
missing, with ``--cdrs``); the benchmark works on a copy (``watch.duckdb``), so the rating
and report benchmarks keep their warehouse as it was.

    .venv/bin/python bench/watch.py                  # 10M CDRs (builds the warehouse if needed)
    .venv/bin/python bench/watch.py --cdrs 1000000   # a quicker build, in its own folder
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rating import CUSTOMERS, VENDORS, make_prefixes  # noqa: E402

from ratelab import SyntheticSpec, connect, write_synthetic_cdrs  # noqa: E402
from ratelab.watch import refresh_hourly, run_watch  # noqa: E402

T = TypeVar("T")
END = datetime(2026, 11, 1)   # the bench's CDRs cover October 2026


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=10_000_000,
                        help="CDRs of the warehouse to build when it is missing")
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None,
                        help="default data/bench (10M) or data/bench-<N> for other sizes")
    parser.add_argument("--repeat", type=int, default=3, help="full runs to take the best of")
    args = parser.parse_args()
    work: Path = args.dir or (ROOT / "data" / ("bench" if args.cdrs == 10_000_000
                                               else f"bench-{args.cdrs}"))
    source = work / "warehouse.duckdb"
    if not source.exists():
        print(f"building {source} with bench/rating.py --cdrs {args.cdrs} ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "rating.py"), "--cdrs",
                        str(args.cdrs), "--prefixes", str(args.prefixes), "--dir", str(work)],
                       check=True)
    load = os.getloadavg()[0]
    copy = work / "watch.duckdb"
    for stale in (copy, copy.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, copy)

    t_open, wh = timed(lambda: connect(copy))   # migrates (back-fills) an older warehouse
    cdrs = wh.sql("SELECT count(*) AS n FROM rated")["n"][0]
    rows = wh.sql("SELECT count(*) AS n FROM watch_hourly")["n"][0]
    print(f"ratelab watch benchmark: {cdrs:,} rated CDRs, {rows:,} hourly aggregate rows "
          f"(1-minute load average at start {load:.2f}; 2 cores)")
    print(f"  open the copy (migrates / back-fills if older than 004): {t_open:.2f} s")

    stale = wh.sql("SELECT count(*) AS n FROM watch_stale")["n"][0]
    t_first, result = timed(lambda: run_watch(wh, now=END - timedelta(minutes=10)))
    print(f"  first run after the full re-rate ({stale} stale ranges; aggregates the hours it "
          f"reads): {t_first:.2f} s  (target <= 10 s); {len(result.findings)} findings")

    with wh.connection() as con:
        t_all, _ = timed(lambda: refresh_hourly(con, None, None))
    print(f"  aggregate refresh of every hour (what rating used to add to a full re-rate): "
          f"{t_all:.2f} s")

    fulls = []
    for _ in range(args.repeat):
        with wh.connection() as con:
            con.execute("DELETE FROM watch_findings; DELETE FROM watch_runs")
        t, result = timed(lambda: run_watch(wh, now=END - timedelta(minutes=10)))
        fulls.append(t)
    print(f"  full run (24 h window, every detector, losses over 1/7/30 days): "
          f"{min(fulls):.2f} s best of {args.repeat}  (target <= 10 s); "
          f"{len(result.findings)} findings")

    # the run before the new CDRs, then 15 minutes of traffic at the bench's rate
    run_watch(wh, now=END)
    per_15 = max(1, round(cdrs / (31 * 24 * 4)))
    spool = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    spec = SyntheticSpec(CUSTOMERS, VENDORS, make_prefixes(args.prefixes, seed=7), END,
                         END + timedelta(minutes=15), seed=15)
    write_synthetic_cdrs(spool, per_15, spec, batch="w15")
    t_ingest, _ = timed(lambda: wh.ingest(spool))
    t_rate, _ = timed(lambda: wh.rate(since=END))
    t_inc, result = timed(lambda: run_watch(wh, now=END + timedelta(minutes=15)))
    shutil.rmtree(spool)
    print(f"  15 minutes of new CDRs ({per_15:,}): ingest {t_ingest:.2f} s, rate "
          f"{t_rate:.2f} s")
    print(f"  incremental run (aggregates the stale hour first): {t_inc:.2f} s  "
          f"(target <= 2 s); {len(result.findings)} findings, {len(result.new)} new")
    print(f"  1-minute load average at the end: {os.getloadavg()[0]:.2f}")
    copy.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
