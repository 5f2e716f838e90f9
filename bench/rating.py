"""Rating benchmark: ingest and rate synthetic CDRs against 100k-prefix decks, both sides.

Prints CDRs per second for ingest and for rating, peak memory, and in the same run two
baselines on the same data: a bare ``CREATE TABLE AS SELECT * FROM read_json(...)`` and a bare
interval-plus-ASOF longest-prefix lookup of the same numbers (one side, no charging).

    .venv/bin/python bench/rating.py                 # 10M CDRs, 100k prefixes (the issue's size)
    .venv/bin/python bench/rating.py --cdrs 1000000  # quicker

Everything generated is synthetic and lives under data/bench/ (ignored by git).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ratelab import SyntheticSpec, connect, write_synthetic_cdrs  # noqa: E402
from ratelab.ingest import spool_files  # noqa: E402

CUSTOMERS = [f"cust{i:02d}" for i in range(20)]
VENDORS = [f"vend{i:02d}" for i in range(8)]


def make_prefixes(count: int, seed: int) -> list[str]:
    """Mixed-depth prefixes: country codes of 1-3 digits, then areas and mobile ranges."""
    rng = random.Random(seed)
    countries = sorted({str(rng.randint(1, 999)) for _ in range(220)})
    prefixes: set[str] = set(countries)
    while len(prefixes) < count:
        base = rng.choice(countries)
        prefixes.add(base + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 5))))
    return sorted(prefixes)


def write_deck(path: Path, prefixes: list[str], seed: int, scale: float) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        fh.write("prefix,destination,rate,increment,effective_from\n")
        for p in prefixes:
            rate = rng.randint(500, 150_000) / 1_000_000 * scale
            inc = rng.choice(["60/60", "30/6", "1/1", "6/6"])
            fh.write(f"{p},Dest {p[:3]},{rate:.6f},{inc},2026-01-01\n")


def cpu_seconds() -> float:
    """This process's CPU time (user + system): steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"  {label}: {elapsed:.2f} s (CPU {cpu_seconds() - cpu:.2f} s)", flush=True)
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=10_000_000)
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--keep", action="store_true", help="reuse generated CDR files")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the bare lookup and of the rating (best of each)")
    args = parser.parse_args()

    work: Path = args.dir
    spool = work / "spool"
    if not args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"ratelab rating benchmark: {args.cdrs:,} synthetic CDRs, {args.prefixes:,} prefixes")

    prefixes = make_prefixes(args.prefixes, seed=7)
    write_deck(work / "customer.csv", prefixes, seed=1, scale=1.25)
    write_deck(work / "vendor.csv", prefixes, seed=1, scale=1.0)
    if not (args.keep and spool.exists()):
        spec = SyntheticSpec(CUSTOMERS, VENDORS, prefixes, datetime(2026, 10, 1),
                             datetime(2026, 11, 1))
        timed("generate CDR files (not measured)",
              lambda: write_synthetic_cdrs(spool, args.cdrs, spec, files=args.files))
    files = spool_files(spool)

    for name in ("baseline.duckdb", "baseline.duckdb.wal", "warehouse.duckdb",
                 "warehouse.duckdb.wal"):
        (work / name).unlink(missing_ok=True)

    # Both the baseline and ingest read the files: read them once first (not measured), so
    # neither pays the disk while the other finds them in the page cache.
    for path in files:
        with path.open("rb") as fh:
            while fh.read(1 << 24):
                pass

    print("baselines:")
    base = duckdb.connect(str(work / "baseline.duckdb"))
    file_list = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    ctas = f"CREATE TABLE raw AS SELECT * FROM read_json({file_list})"
    _, t_read = timed("bare CREATE TABLE AS SELECT * FROM read_json",
                      lambda: base.execute(ctas))
    base.close()

    wh = connect(work / "warehouse.duckdb", create=True)
    print("ratelab:")
    timed("import customer deck", lambda: wh.import_deck(work / "customer.csv", "cust", "customer"))
    timed("import vendor deck", lambda: wh.import_deck(work / "vendor.csv", "vend", "vendor"))
    for c in CUSTOMERS:
        wh.assign("cust", customer=c)
    for v in VENDORS:
        wh.assign("vend", vendor=v)
    ingest, t_ingest = timed("ingest", lambda: wh.ingest(spool))
    print(f"    {ingest}")

    # The lookup and the rating alternate, --repeat times each, best of each compared: on 2
    # shared cores one run of either swings by +-10 %.
    with wh.connection() as con:
        grp = con.execute(
            "SELECT min(grp) FROM rate_groups WHERE table_name = 'vend'").fetchall()[0][0]
    lookups, rates = [], []
    for _ in range(args.repeat):
        with wh.connection() as con:
            _, t = timed(
                "bare interval+ASOF longest-prefix lookup (one side)",
                lambda: con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE lookup AS
                        SELECT c.cdr_id, s.prefix FROM (SELECT cdr_id, callee_key FROM cdrs) c
                        ASOF JOIN (SELECT * FROM rate_segments WHERE grp = {grp}) s
                          ON c.callee_key >= s.lo
                        WHERE c.callee_key < s.hi"""
                ),
            )
            lookups.append(t)
        summary, t = timed("rate both sides", lambda: wh.rate())
        rates.append(t)
    print(f"    {summary}")
    t_lookup, t_rate = min(lookups), min(rates)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024

    n = ingest.added
    print("figures:")
    print(f"  bare read_json:     {n / t_read:>12,.0f} CDRs/s")
    print(f"  ingest:             {n / t_ingest:>12,.0f} CDRs/s  "
          f"({t_ingest / t_read:.2f}x bare read_json; target <= 1.2x)")
    print(f"  bare ASOF lookup:   {n / t_lookup:>12,.0f} CDRs/s  (best of {len(lookups)})")
    print(f"  rating both sides:  {n / t_rate:>12,.0f} CDRs/s  "
          f"({t_rate / t_lookup:.2f}x bare lookup; targets >= 2M/s and <= 2x; best of "
          f"{len(rates)}, slowest {n / max(rates):,.0f} CDRs/s)")
    print(f"  peak memory (RSS):  {peak:>12.2f} GiB  (target <= 4 GiB)")


if __name__ == "__main__":
    main()
