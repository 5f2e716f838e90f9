"""Report benchmark: every report function, and the daily report notebook end to end, on the
10M-CDR warehouse of the rating benchmark.

The warehouse is the one ``bench/rating.py`` leaves in ``data/bench/warehouse.duckdb`` (20
customers, 8 vendors, 100k-prefix decks, SYNTHETIC CDRs over October 2026); it is built first
when missing. Prints the seconds per report (best of ``--repeat``) against the targets: each
report function <= 2 s, the daily report under papermill <= 30 s.

    .venv/bin/python bench/reports.py                  # builds the 10M warehouse if needed
    .venv/bin/python bench/reports.py --cdrs 1000000   # a quicker build
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ratelab import connect, reports  # noqa: E402
from ratelab.report_runner import run_report  # noqa: E402

MONTH = (datetime(2026, 10, 1), datetime(2026, 11, 1))
DAY = (datetime(2026, 10, 15), datetime(2026, 10, 16))


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return min(times), result


def their_csv(wh, path: Path) -> Path:
    """A vendor's own CDR file for one day: our rated calls, a few changed, to reconcile."""
    frame = wh.sql("""SELECT c.callee_e164 AS callee, c.start_ts, c.duration_ms, r.cost
                      FROM rated r JOIN cdrs c USING (cdr_seq)
                      WHERE r.vendor = 'vend00' AND r.answered
                        AND r.start_ts >= $s AND r.start_ts < $e""",
                   {"s": DAY[0], "e": DAY[1]})
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["callee", "start_time", "duration_s", "amount"])
        for k, row in enumerate(frame.iter_rows(named=True)):
            duration = row["duration_ms"] / 1000 + (5 if k % 50 == 0 else 0)
            out.writerow([row["callee"], row["start_ts"].isoformat(), f"{duration:.3f}",
                          row["cost"]])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--cdrs", type=int, default=10_000_000,
                        help="CDRs for the warehouse when it has to be built")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = args.dir / "warehouse.duckdb"
    if not path.exists():
        print(f"building the rating benchmark's warehouse ({args.cdrs:,} CDRs) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "rating.py"), "--cdrs",
                        str(args.cdrs), "--dir", str(args.dir)], check=True)
    wh = connect(path, read_only=True)
    n = wh.sql("SELECT count(*) AS n FROM rated")["n"][0]
    print(f"report benchmark on {path} ({n:,} rated CDRs); best of {args.repeat}")
    scratch = Path(tempfile.mkdtemp(prefix="ratelab-bench-reports-"))
    theirs = their_csv(wh, scratch / "vend00.csv")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("revenue_details (month)", lambda: reports.revenue_details(wh, *MONTH)),
        ("clearing_details (month)", lambda: reports.clearing_details(wh, *MONTH)),
        ("gateway_bill cust00 (month)",
         lambda: reports.gateway_bill(wh, *MONTH, "cust00", "customer")),
        ("settlement_summary by day (month)", lambda: reports.settlement_summary(wh, *MONTH)),
        ("traffic_quality vendor x hour (day)",
         lambda: reports.traffic_quality(wh, *DAY, by="vendor", grain="hour")),
        ("traffic_quality destination x day (month)",
         lambda: reports.traffic_quality(wh, *MONTH, by="destination", grain="day")),
        ("failure_causes by vendor (month)", lambda: reports.failure_causes(wh, *MONTH)),
        ("margin_by destination (month)", lambda: reports.margin_by(wh, *MONTH)),
        ("compare customer x destination x vendor (week against week)",
         lambda: reports.compare(wh, (datetime(2026, 10, 8), datetime(2026, 10, 15)),
                                 (datetime(2026, 10, 15), datetime(2026, 10, 22)),
                                 by=["customer", "destination", "vendor"])),
        ("margin_by_day destination (month)", lambda: reports.margin_by_day(wh, *MONTH)),
        ("top_loss_makers (month)", lambda: reports.top_loss_makers(wh, *MONTH)),
        ("rate_deviation (month)", lambda: reports.rate_deviation(wh, *MONTH)),
        ("break_even (month)", lambda: reports.break_even(wh, *MONTH, "50000")),
        ("break_even_curve (month)", lambda: reports.break_even_curve(wh, *MONTH, "50000")),
        ("auto_create_rates vend (100k prefixes)",
         lambda: reports.auto_create_rates(wh, "vend", "0.2", at=MONTH[1])),
        ("reconcile vend00 (day)", lambda: reports.reconcile(wh, "vend00", theirs, *DAY)),
        ("what_if vend00 +5% (day)",
         lambda: reports.what_if(wh, *DAY, vendor="vend00", change_pct="5")),
        ("what_if vend00 +5% (month)",
         lambda: reports.what_if(wh, *MONTH, vendor="vend00", change_pct="5")),
    ]
    slowest = 0.0
    for label, fn in cases:
        seconds, frame = best(fn, args.repeat)
        slowest = max(slowest, seconds)
        rows = getattr(frame, "height", "?")
        flag = "" if seconds <= 2 else "  OVER 2 s"
        print(f"  {label:44} {seconds:7.3f} s  ({rows:,} rows){flag}", flush=True)
    print(f"slowest report function: {slowest:.3f} s (target <= 2 s: "
          f"{'met' if slowest <= 2 else 'MISSED'})")
    began = time.perf_counter()
    paths = run_report("daily_report", {"warehouse": str(path), "start": "2026-10-15",
                                        "end": "2026-10-16"}, out_dir=scratch)
    seconds = time.perf_counter() - began
    print(f"daily report notebook end to end (papermill + HTML): {seconds:.1f} s (target <= 30 s:"
          f" {'met' if seconds <= 30 else 'MISSED'}); {paths.html}")


if __name__ == "__main__":
    main()
