"""A notebook and an ingest job share one warehouse file by taking turns (docs/operations.md).

A second process ingests batch after batch while this one keeps reading: every read succeeds
(it waits for the writer's short turn instead of failing) and sees a count that only grows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import ratelab
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs

WRITER = """
import sys, time
from pathlib import Path
import ratelab
wh = ratelab.connect(sys.argv[1], lock_timeout=60)
for spool in sorted(Path(sys.argv[2]).iterdir()):
    wh.ingest(spool)
    time.sleep(0.2)  # between cron runs: the reader must get its turns here
print("writer done", flush=True)
"""


def test_reads_take_turns_with_a_running_ingest(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path)
    spec = SyntheticSpec(["acme"], ["carrier_x"], ["44"], datetime(2026, 11, 1),
                         datetime(2026, 11, 2))
    batches = tmp_path / "batches"
    for k in range(8):
        write_synthetic_cdrs(batches / f"{k:02d}", 20_000, spec, batch=str(k))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(batches)],
                              stdout=subprocess.PIPE, text=True)
    try:
        reader = ratelab.Warehouse(path, lock_timeout=60)
        seen = []
        deadline = time.monotonic() + 120
        while writer.poll() is None and time.monotonic() < deadline:
            seen.append(reader.sql("SELECT count(*) AS n FROM cdrs")["n"][0])
            time.sleep(0.02)  # a notebook between cells, not a spin loop
        assert writer.wait(timeout=120) == 0
    finally:
        writer.kill()
        writer.wait()
    assert seen == sorted(seen), "a reader never sees CDRs disappear"
    assert reader.sql("SELECT count(*) AS n FROM cdrs")["n"][0] == 8 * 20_000
    assert any(0 < n < 8 * 20_000 for n in seen), "reads happened while the ingest ran"
