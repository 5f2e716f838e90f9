"""Rate-plan leak check benchmark: how long ``reports.rate_leaks`` takes on decks of real size.

Builds a warehouse of ``--vendors`` vendor decks and ``--customers`` customer decks (one
``account`` table each, plus an ``account_private`` table of ``--private`` prefixes for every
tenth customer), each of ``--prefixes`` prefixes of mixed depth (2 to 7 digits, drawn from the
same pool, so the decks overlap as real ones do), with a few per cent of the customer prices set
below cost so there are leaks to rank. Then it times ``rate_leaks`` (decks only) and prints the
figures: ranges checked, leaks found, seconds. No CDRs: the decks are what the check compares.

    .venv/bin/python bench/leaks.py                           # 5 vendors, 20 customers, 20,000
    .venv/bin/python bench/leaks.py --prefixes 2000 --customers 5

Prints figures, no assertions.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import ratelab
from ratelab import reports


def _deck(path: Path, prefixes: list[str], rng: random.Random, low: float, high: float) -> Path:
    lines = ["prefix,destination,rate,increment,effective_from"]
    for prefix in prefixes:
        lines.append(f"{prefix},D{prefix[:2]},{rng.uniform(low, high):.4f},60/60,2026-01-01")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendors", type=int, default=5)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--prefixes", type=int, default=20_000)
    parser.add_argument("--private", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pool = sorted({str(rng.randrange(10, 99)) + "".join(
        str(rng.randrange(10)) for _ in range(rng.randrange(0, 6)))
        for _ in range(args.prefixes * 2)})
    root = Path(tempfile.mkdtemp(prefix="bench-leaks-"))
    wh = ratelab.connect(root / "w.duckdb", create=True)
    began = time.perf_counter()
    for v in range(args.vendors):
        chosen = rng.sample(pool, min(args.prefixes, len(pool)))
        wh.import_deck(_deck(root / f"v{v}.csv", chosen, rng, 0.005, 0.02), f"v{v}", "vendor")
        wh.assign(f"v{v}", vendor=f"vendor{v}")
    for c in range(args.customers):
        chosen = rng.sample(pool, min(args.prefixes, len(pool)))
        wh.import_deck(_deck(root / f"c{c}.csv", chosen, rng, 0.012, 0.03), f"c{c}", "customer")
        wh.assign(f"c{c}", customer=f"customer{c}")
        if c % 10 == 0:
            private = rng.sample(pool, args.private)
            wh.import_deck(_deck(root / f"p{c}.csv", private, rng, 0.004, 0.01), f"p{c}",
                           "customer")
            wh.assign(f"p{c}", customer=f"customer{c}", kind="account_private")
    print(f"decks: {args.vendors} vendors and {args.customers} customers of {args.prefixes:,} "
          f"prefixes, imported in {time.perf_counter() - began:.1f} s")
    for _ in range(2):
        began = time.perf_counter()
        leaks = reports.rate_leaks(wh, at="2026-06-01")
        seconds = time.perf_counter() - began
        ranges = leaks.select("customer", "prefix").unique().height
        print(f"rate_leaks: {leaks.height:,} leak rows in {ranges:,} ranges, {seconds:.2f} s")


if __name__ == "__main__":
    main()
