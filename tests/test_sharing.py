"""A notebook and an ingest job share one warehouse file by taking turns (docs/operations.md).

A second process ingests batch after batch while this one keeps reading: every read succeeds
(it waits for the writer's short turn instead of failing) and sees a count that only grows.
Between two batches (two cron runs) the writer says so on its stdout and waits for this
process to answer on its stdin: the read made there sees exactly the batches ingested so far,
so "reads happened while the ingest ran" rests on that handshake, not on how long a pause is.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import ratelab
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs

WRITER = """
import sys
from pathlib import Path
import ratelab
wh = ratelab.connect(sys.argv[1], lock_timeout=60)
for k, spool in enumerate(sorted(Path(sys.argv[2]).iterdir())):
    wh.ingest(spool)
    print(f"ingested {k + 1}", flush=True)
    sys.stdin.readline()  # between cron runs: the reader has had its turn, go on
print("writer done", flush=True)
"""

BATCHES, PER_BATCH = 8, 20_000


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.strip())
    out.put(None)  # the writer closed its stdout (it ended)


def test_reads_take_turns_with_a_running_ingest(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    ratelab.connect(path, create=True)
    spec = SyntheticSpec(["acme"], ["carrier_x"], ["44"], datetime(2026, 11, 1),
                         datetime(2026, 11, 2))
    batches = tmp_path / "batches"
    for k in range(BATCHES):
        write_synthetic_cdrs(batches / f"{k:02d}", PER_BATCH, spec, batch=str(k))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(batches)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    news: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(writer.stdout, news), daemon=True).start()
    reader = ratelab.Warehouse(path, lock_timeout=60)

    def count() -> int:
        return reader.sql("SELECT count(*) AS n FROM cdrs")["n"][0]

    seen, between, said = [], [], []
    try:
        hang_guard = time.monotonic() + 600  # only stops a hung loop; nothing is timed
        while time.monotonic() < hang_guard:
            seen.append(count())  # may run during an ingest: waits for the writer's turn
            try:
                line = news.get(timeout=0.02)  # a notebook between cells, or the writer's news
            except queue.Empty:
                continue
            said.append(line)
            if line is None or line == "writer done":
                break
            # "ingested k": the writer waits for us, so this read sees exactly k batches
            between.append(count())
            writer.stdin.write("go\n")
            writer.stdin.flush()
        assert writer.wait(timeout=120) == 0
    finally:
        writer.kill()
        writer.wait()
    assert said == [f"ingested {k}" for k in range(1, BATCHES + 1)] + ["writer done"]
    assert between == [k * PER_BATCH for k in range(1, BATCHES + 1)]
    assert seen == sorted(seen), "a reader never sees CDRs disappear"
    assert count() == BATCHES * PER_BATCH
