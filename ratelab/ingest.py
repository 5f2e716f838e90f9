"""CDR ingest: JSON-lines spool files (CDR contract v1) into the warehouse.

* Idempotent on ``cdr_id``: a CDR already in the warehouse (or twice in one run) is not added.
* Nothing is silently dropped: a line that is not a valid v1 CDR goes to ``cdr_quarantine`` with
  its file, line number and reason, and the summary counts it.
* A last line without its newline is a CDR the switch was still writing when it stopped (or is
  writing now). It is held back as ``pending`` (and quarantined as ``truncated``) until the file
  grows; once the line is complete a later ingest takes it and clears that quarantine entry.
* Text that was not UTF-8 on the wire arrives escaped, its fields listed in ``escaped``
  (:mod:`switch.contract`); it is stored as written, with that list. A line that is itself not
  UTF-8 is quarantined rather than read with replacement characters.
* A switch's reject files (``rejects-*.jsonl``: records it could not write as CDRs) are not CDRs:
  each of their lines is quarantined with the switch's reason, so the call is not lost from view.

Clean files take the fast path: one strict, typed ``read_json`` per batch of files (about 1 GiB),
a transaction per batch. A file that the strict read refuses, or whose rows break a contract
rule, is read again line by line (still in DuckDB, with line numbers from Python) so every bad
line can be named; its good lines are ingested with the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ratelab.db import one, scalar
from ratelab.prefix import NUMBER_KEY_SQL
from switch.contract import REJECT_FILE_GLOB, CdrField, FieldKind, all_cdr_fields, split_complete

__all__ = ["CDR_COLUMNS", "IngestSummary", "ingest_spool", "resolve_quarantine", "spool_files"]

# DuckDB's type for each kind of CDR value. Times are read with their offset (TIMESTAMPTZ) and
# stored as naive UTC, so "+02:00" is converted rather than silently dropped. An object is a
# STRUCT of the fields the contract lists (typed once, at the read; migration 008).
_KIND_TYPES: dict[FieldKind, str] = {
    FieldKind.STRING: "VARCHAR",
    FieldKind.INT: "BIGINT",
    FieldKind.TIMESTAMP: "TIMESTAMPTZ",
}
# Integers the warehouse stores as INTEGER (a port, a SIP code, a 0-3 mode), read as stored so
# a value that does not fit is named on its line instead of failing the batch's insert.
_INTEGER_FIELDS = frozenset({"src_port", "sip_code", "rtp_encryption"})


def _duckdb_type(field: CdrField) -> str:
    """The DuckDB type ingest reads a contract field as.

    >>> from switch.contract import ATTEMPT_FIELDS, CDR_FIELDS, RTP_FIELDS
    >>> _duckdb_type(CDR_FIELDS[0]), _duckdb_type(ATTEMPT_FIELDS[2])
    ('VARCHAR', 'INTEGER')
    >>> _duckdb_type(RTP_FIELDS[0])[:42]
    'STRUCT(packets_in BIGINT, packets_out BIGI'
    """
    if field.kind in (FieldKind.LIST, FieldKind.OBJECT):
        if isinstance(field.items, tuple):
            parts = ", ".join(f"{item.name} {_duckdb_type(item)}" for item in field.items)
            struct = f"STRUCT({parts})"
            return struct if field.kind is FieldKind.OBJECT else f"{struct}[]"
        assert field.items is not None and field.kind is FieldKind.LIST, (
            f"the contract's {field.kind} {field.name} names its items")
        return f"{_KIND_TYPES[field.items]}[]"
    if field.kind is FieldKind.INT and field.name in _INTEGER_FIELDS:
        return "INTEGER"
    return _KIND_TYPES[field.kind]


#: The CDR contract (v1, :mod:`switch.contract`) as DuckDB types, in contract order, with the
#: optional ``escaped`` last.
CDR_COLUMNS: dict[str, str] = {field.name: _duckdb_type(field) for field in all_cdr_fields()}

_COLUMNS_SQL = "{" + ", ".join(f"'{k}': '{v}'" for k, v in CDR_COLUMNS.items()) + "}"
_JSON_STRUCTURE = "{" + ", ".join(f'"{k}": "{v}"' for k, v in CDR_COLUMNS.items()) + "}"

# The first rule a parsed CDR breaks, or NULL when it is a valid v1 CDR. One list for both paths.
_REASON_SQL = """CASE
    WHEN cdr_id IS NULL OR cdr_id = '' THEN 'missing cdr_id'
    WHEN start_ts IS NULL THEN 'missing or invalid start_ts (RFC 3339 UTC expected)'
    WHEN duration_ms IS NULL THEN 'missing or invalid duration_ms'
    WHEN duration_ms < 0 THEN 'negative duration_ms'
    WHEN duration_ms > 0 AND answer_ts IS NULL THEN 'duration_ms > 0 but answer_ts is null'
    WHEN end_ts IS NOT NULL AND end_ts < start_ts THEN 'end_ts before start_ts'
    WHEN customer IS NULL OR customer = '' THEN 'missing customer'
    WHEN sip_code IS NULL OR sip_code NOT BETWEEN 100 AND 699 THEN 'missing or invalid sip_code'
END"""


def _type_checks(fields: tuple[CdrField, ...], path: str = "") -> Iterator[str]:
    """Per field (and per field of an object, which the lenient read turns into a STRUCT of
    NULLs whatever it holds), the CASE branch naming a value that does not convert."""
    for field in fields:
        dotted = f"{path}{field.name}"
        shown = f"'invalid {dotted}: ' || left(json_extract(text, '$.{dotted}')::VARCHAR, 60)"
        if field.kind is FieldKind.OBJECT and isinstance(field.items, tuple):
            yield (f"WHEN json_type(text, '$.{dotted}') NOT IN ('NULL', 'OBJECT') "
                   f"THEN {shown}")
            yield from _type_checks(field.items, f"{dotted}.")
        else:
            yield (f"WHEN json_type(text, '$.{dotted}') <> 'NULL' AND j.{dotted} IS NULL "
                   f"THEN {shown}")


# A field present with a value that does not convert to its type (the strict read refuses the
# file; here the line is named): never stored as NULL.
_TYPE_CHECKS = "\n".join(_type_checks(all_cdr_fields()))

_STAGED_SQL = (
    "CREATE OR REPLACE TEMP TABLE staged ("
    + ", ".join(f"{k} {v}" for k, v in CDR_COLUMNS.items())
    + ", reason VARCHAR, source_file VARCHAR)"
)

#: Files read per read_json call: bounds the staging table's memory and paces progress.
BATCH_BYTES = 1 << 30


def _stored(field: CdrField, value: str) -> str:
    """The expression storing ``value`` (of ``field``): times as naive UTC computed from the
    instant itself, the same whatever the session's time zone and about 5x cheaper than a cast
    to TIMESTAMP, which goes through it; inside a list of objects too.

    >>> from switch.contract import ATTEMPT_FIELDS
    >>> _stored(ATTEMPT_FIELDS[1], "a.start_ts")
    'make_timestamp(epoch_us(a.start_ts))'
    """
    if field.kind is FieldKind.TIMESTAMP:
        return f"make_timestamp(epoch_us({value}))"
    if field.kind is FieldKind.LIST and isinstance(field.items, tuple) and any(
            item.kind is FieldKind.TIMESTAMP for item in field.items):
        members = ", ".join(f"{item.name} := {_stored(item, f'x.{item.name}')}"
                            for item in field.items)
        return f"list_transform({value}, lambda x: struct_pack({members}))"
    return value


_STORED_COLUMNS = ", ".join(f"{_stored(field, field.name)} AS {field.name}"
                            for field in all_cdr_fields())

# Idempotent on cdr_id: a CDR already stored is not added again.
_INSERT_SQL = f"""
INSERT INTO cdrs BY NAME
SELECT {_STORED_COLUMNS},
       {NUMBER_KEY_SQL.format(n="callee_e164")} AS callee_key,
       $base + staged.rowid + 1 AS cdr_seq,
       hash(cdr_id) AS id_hash,
       source_file, $now AS ingested_at
FROM staged
WHERE reason IS NULL {{present}}
{{dedupe}}
"""
# (No subquery around staged: measured, wrapping it halved the insert's speed. cdr_seq from
# the staging table's rowid, in read order like row_number() OVER (), which runs on one thread:
# 10 % of the ingest.)
# Stored CDRs whose id hash matches one being staged: scanning one integer column instead of
# every stored cdr_id string keeps re-ingest checks cheap as the warehouse grows. Usually empty.
_HASH_HITS_SQL = """
CREATE OR REPLACE TEMP TABLE hash_hits AS
SELECT id_hash FROM cdrs WHERE id_hash IN (SELECT hash(cdr_id) FROM staged WHERE reason IS NULL)
"""
_PRESENT = """AND cdr_id NOT IN (
        SELECT c.cdr_id FROM cdrs c SEMI JOIN hash_hits h ON c.id_hash = h.id_hash)"""
# Only when one batch holds the same cdr_id twice (a window over every row costs seconds).
_FIRST_OF_EACH_ID = "QUALIFY row_number() OVER (PARTITION BY cdr_id ORDER BY source_file) = 1"


@dataclass
class IngestSummary:
    """What one ingest run did."""

    files: int = 0
    skipped_files: int = 0
    lines: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    pending: int = 0
    resolved: int = 0

    def __str__(self) -> str:
        text = (
            f"ingested {self.added} CDRs from {self.files} files "
            f"({self.skipped_files} unchanged skipped); {self.duplicates} already present, "
            f"{self.quarantined} quarantined"
        )
        if self.pending:
            text += f", {self.pending} truncated last lines held until complete"
        if self.resolved:
            text += f"; {self.resolved} quarantine entries resolved by re-ingest"
        return text


def spool_files(spool_dir: str | Path) -> list[Path]:
    """The CDR files in a spool directory (``*.jsonl`` and ``*.json``, recursively), sorted.

    >>> import tempfile
    >>> spool = Path(tempfile.mkdtemp())
    >>> for name in ("b.jsonl", "a.jsonl", "notes.txt"):
    ...     _ = (spool / name).write_text("")
    >>> [p.name for p in spool_files(spool)]
    ['a.jsonl', 'b.jsonl']
    """
    root = Path(spool_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"spool directory {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix in (".jsonl", ".json") and p.is_file())


def ingest_spool(
    con: duckdb.DuckDBPyConnection,
    spool_dir: str | Path,
    *,
    force: bool = False,
    on_file: Callable[[Path], None] | None = None,
) -> IngestSummary:
    """Ingest the spool's new or grown files, a batch per transaction; return the summary.

    ``Warehouse.ingest`` is the usual way in; this takes an open connection.

    >>> import tempfile; from datetime import datetime
    >>> from ratelab.migrations import migrate
    >>> from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
    >>> con = duckdb.connect(); _ = migrate(con)
    >>> spool = tempfile.mkdtemp()
    >>> _ = write_synthetic_cdrs(spool, 5, SyntheticSpec(["acme"], ["carrier_x"], ["44"],
    ...                          datetime(2026, 11, 1), datetime(2026, 11, 2)))
    >>> print(ingest_spool(con, spool))
    ingested 5 CDRs from 1 files (0 unchanged skipped); 0 already present, 0 quarantined
    """
    summary = IngestSummary()
    now = datetime.now(UTC).replace(tzinfo=None)
    todo: list[tuple[Path, os.stat_result]] = []
    known = {f: (s, m) for f, s, m in
             con.execute("SELECT file, size, mtime_ns FROM spool_files").fetchall()}
    for path in spool_files(spool_dir):
        st = path.stat()
        if not force and known.get(str(path)) == (st.st_size, st.st_mtime_ns):
            summary.skipped_files += 1
            continue
        todo.append((path, st))
    summary.files = len(todo)
    rejects = [item for item in todo if item[0].match(REJECT_FILE_GLOB)]
    todo = [item for item in todo if not item[0].match(REJECT_FILE_GLOB)]
    # One transaction per batch: a batch lands whole or not at all, and an interrupted run
    # resumes where it stopped (ingest is idempotent). One transaction for the whole spool
    # was measured twice as slow at 10M CDRs.
    for batch in _batches(todo):
        paths = [p for p, _ in batch]
        # staging runs outside the transaction: a strict read that fails would abort it
        dirty = _stage(con, paths)
        con.execute("BEGIN TRANSACTION")
        try:
            _ingest_batch(con, paths, dirty, summary, now)
            con.executemany(
                "INSERT OR REPLACE INTO spool_files VALUES (?, ?, ?, ?)",
                [(str(p), st.st_size, st.st_mtime_ns, now) for p, st in batch],
            )
            con.execute("DROP TABLE IF EXISTS staged")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if on_file is not None:
            for path, _ in batch:
                on_file(path)
    for path, st in rejects:
        con.execute("BEGIN TRANSACTION")
        try:
            _quarantine_rejects(con, path, summary, now)
            con.execute("INSERT OR REPLACE INTO spool_files VALUES (?, ?, ?, ?)",
                        [str(path), st.st_size, st.st_mtime_ns, now])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if on_file is not None:
            on_file(path)
    return summary


def _batches(
    todo: list[tuple[Path, os.stat_result]],
) -> Iterator[list[tuple[Path, os.stat_result]]]:
    """Files in groups of about BATCH_BYTES, so memory stays bounded and progress moves."""
    batch: list[tuple[Path, os.stat_result]] = []
    size = 0
    for item in todo:
        batch.append(item)
        size += item[1].st_size
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _stage(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[Path]:
    """Stage the files that read cleanly; return the others (for the line-by-line path).

    The read is strict: any line that is not a complete v1 object of the right types fails the
    whole read, so a clean file needs no line counting and nothing is silently nulled. Only
    when a batch fails are its files read one at a time to find the culprits.
    """
    try:
        _read(con, paths, create=True)
        return []
    except duckdb.InvalidInputException:
        pass
    con.execute(_STAGED_SQL)
    dirty = []
    for path in paths:
        try:
            _read(con, [path], create=False)
        except duckdb.InvalidInputException:
            dirty.append(path)
    return dirty


def _read(con: duckdb.DuckDBPyConnection, paths: list[Path], *, create: bool) -> None:
    target = "CREATE OR REPLACE TEMP TABLE staged AS" if create else "INSERT INTO staged"
    con.execute(
        f"""{target}
            SELECT * EXCLUDE (filename), {_REASON_SQL} AS reason, filename AS source_file
            FROM read_json(?, format = 'newline_delimited', columns = {_COLUMNS_SQL},
                           filename = true)""",
        [[str(p) for p in paths]],
    )


def _ingest_batch(
    con: duckdb.DuckDBPyConnection, paths: list[Path], dirty: list[Path],
    summary: IngestSummary, now: datetime,
) -> None:
    counts = dict(con.execute("SELECT source_file, count(*) FROM staged GROUP BY ALL").fetchall())
    bad = {f for (f,) in con.execute(
        "SELECT DISTINCT source_file FROM staged WHERE reason IS NOT NULL").fetchall()}
    dirty = dirty + [p for p in paths if str(p) in bad]
    clean = [p for p in paths if p not in dirty]
    summary.lines += sum(counts.get(str(p), 0) for p in clean)
    if dirty:
        con.execute("DELETE FROM staged WHERE list_contains(?, source_file)",
                    [[str(p) for p in dirty]])
    if clean:
        # a clean file has no truncated line left: one held back earlier is now complete
        con.execute(
            "DELETE FROM cdr_quarantine WHERE reason LIKE 'truncated%' AND list_contains(?, file)",
            [[str(p) for p in clean]],
        )
    for path in dirty:
        _slow_path(con, path, summary, now)
    valid = _count(con, "SELECT count(*) FROM staged WHERE reason IS NULL")
    if not valid:
        return
    in_batch_dups = _count(
        con, "SELECT count(*) - count(DISTINCT cdr_id) FROM staged WHERE reason IS NULL")
    con.execute(_HASH_HITS_SQL)
    hits = _count(con, "SELECT count(*) FROM hash_hits")
    sql = _INSERT_SQL.format(dedupe=_FIRST_OF_EACH_ID if in_batch_dups else "",
                             present=_PRESENT if hits else "")
    base = _count(con, "SELECT coalesce(max(cdr_seq), 0) FROM cdrs")
    added = _count(con, sql, {"now": now, "base": base})
    summary.added += added
    summary.duplicates += valid - added
    summary.resolved += _count(con, _RESOLVE_SQL, {"now": now})


# A quarantined line whose CDR is now in the warehouse (the line was fixed and re-ingested, in
# place or in another file) is resolved, not deleted: the entry stays, with when and why.
_RESOLVE_SQL = r"""
WITH fixed AS (
    UPDATE cdr_quarantine q
    SET resolved_at = $now,
        resolution = 're-ingested as ' || regexp_extract(q.content, '"cdr_id"\s*:\s*"([^"]+)"', 1)
    WHERE q.resolved_at IS NULL AND q.reason NOT LIKE 'truncated%'
      AND regexp_extract(q.content, '"cdr_id"\s*:\s*"([^"]+)"', 1)
          IN (SELECT cdr_id FROM staged WHERE reason IS NULL)
    RETURNING 1)
SELECT count(*) FROM fixed
"""


def resolve_quarantine(con: duckdb.DuckDBPyConnection, entry_id: int,
                       note: str = "resolved by hand") -> None:
    """Mark quarantine entry ``entry_id`` resolved (kept, with the time and ``note``).

    Raises ValueError for an unknown id or one already resolved.
    """
    row = one(con, "SELECT resolved_at, resolution FROM cdr_quarantine WHERE id = ?",
              [entry_id])
    if row is None:
        raise ValueError(f"no quarantine entry {entry_id}")
    if row[0] is not None:
        raise ValueError(f"quarantine entry {entry_id} was already resolved at "
                         f"{row[0]:%Y-%m-%d %H:%M:%S} ({row[1]})")
    con.execute("UPDATE cdr_quarantine SET resolved_at = ?, resolution = ? WHERE id = ?",
                [datetime.now(UTC).replace(tzinfo=None), note or "resolved by hand", entry_id])


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> int:
    return int(scalar(con, sql, params) or 0)


def _quarantine_rejects(
    con: duckdb.DuckDBPyConnection, path: Path, summary: IngestSummary, now: datetime
) -> None:
    """Quarantine each complete line of a switch's reject file, with the switch's reason."""
    complete, _torn = split_complete(path.read_bytes())  # a torn line waits for its newline
    rows = []
    for number, raw in enumerate(complete.split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", "backslashreplace")
        try:
            reason = str(json.loads(text)["reason"])
        except (ValueError, TypeError, KeyError, IndexError):
            reason = "(no reason given)"
        rows.append((str(path), number, f"rejected by the switch: {reason}", text, now))
    summary.lines += len(rows)
    summary.quarantined += len(rows)
    con.executemany(
        """INSERT INTO cdr_quarantine (file, line, reason, content, quarantined_at)
           SELECT $1, $2, $3, $4, $5
           WHERE NOT EXISTS (SELECT 1 FROM cdr_quarantine q
                             WHERE q.file = $1 AND q.line = $2 AND q.content = $4)""",
        rows,
    )


def _slow_path(
    con: duckdb.DuckDBPyConnection, path: Path, summary: IngestSummary, now: datetime
) -> None:
    """Stage a file line by line so every bad line is quarantined with its number and reason."""
    complete, torn = split_complete(path.read_bytes())
    raw = complete.split(b"\n")[:-1]
    terminated = not torn
    if torn:
        # read too, so the line is named: quarantined as truncated until its newline arrives
        raw.append(torn)
    numbers, texts, utf8 = [], [], []
    for i, line in enumerate(raw, start=1):
        if line.strip():
            numbers.append(i)
            try:
                texts.append(line.decode("utf-8"))
                utf8.append(True)
            except UnicodeDecodeError:
                # Quarantined, not read with U+FFFD in place of the bytes: that would store a
                # caller or Call-ID that never was. Kept with the bytes visible (\xff).
                texts.append(line.decode("utf-8", errors="backslashreplace"))
                utf8.append(False)
    summary.lines += len(numbers)
    last = numbers[-1] if numbers and not terminated else None
    con.register("raw_lines", pa.table({"line": numbers, "text": texts, "utf8": utf8},
                                       schema=pa.schema([("line", pa.int64()),
                                                         ("text", pa.string()),
                                                         ("utf8", pa.bool_())])))
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE parsed AS
                SELECT line, text, utf8,
                       CASE WHEN json_valid(text) AND json_type(text) = 'OBJECT'
                            THEN json_transform(text, '{_JSON_STRUCTURE}') END AS j
                FROM raw_lines"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE checked AS
                SELECT line, text, j.*,
                       CASE WHEN j IS NULL AND line = $last
                                THEN 'truncated last line (the writer stopped mid-line)'
                            WHEN NOT utf8 THEN 'not valid UTF-8'
                            WHEN j IS NULL AND NOT json_valid(text) THEN 'not valid JSON'
                            WHEN j IS NULL THEN 'not a JSON object'
                            {_TYPE_CHECKS}
                       END AS parse_reason
                FROM parsed""",
            {"last": last},
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE checked2 AS
                SELECT *, coalesce(parse_reason, {_REASON_SQL}) AS why FROM checked"""
        )
        summary.pending += _count(
            con, "SELECT count(*) FROM checked2 WHERE why LIKE 'truncated%'")
        con.execute(
            """INSERT INTO cdr_quarantine (file, line, reason, content, quarantined_at)
               SELECT $file, line, why, text, $now FROM checked2 c
               WHERE why IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM cdr_quarantine q
                   WHERE q.file = $file AND q.line = c.line AND q.content = c.text)""",
            {"file": str(path), "now": now},
        )
        summary.quarantined += _count(
            con,
            "SELECT count(*) FROM checked2 WHERE why IS NOT NULL AND why NOT LIKE 'truncated%'",
        )
        # the truncated line, once complete, is ingested under the same line number: clear it
        con.execute(
            """DELETE FROM cdr_quarantine q WHERE q.file = $file AND q.reason LIKE 'truncated%'
               AND EXISTS (SELECT 1 FROM checked2 c WHERE c.line = q.line AND c.why IS NULL)""",
            {"file": str(path)},
        )
        cols = ", ".join(CDR_COLUMNS)
        con.execute(
            f"INSERT INTO staged SELECT {cols}, why, $file FROM checked2 WHERE why IS NULL",
            {"file": str(path)},
        )
    finally:
        con.unregister("raw_lines")
        for name in ("parsed", "checked", "checked2"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
