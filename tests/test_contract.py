"""switch/contract.py is the one home of what switch and ratelab share: everything else that
writes or reads a CDR, a spool file or a routing snapshot agrees with it."""

from __future__ import annotations

import ast
import json
import re
import sys
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import duckdb

import ratelab.routing
import switch.contract
import switch.routing
from ratelab.ingest import CDR_COLUMNS, ingest_spool
from ratelab.migrations import migrate
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
from ratelab.widgets.spool import SpoolTail
from switch.b2bua.cdr import Attempt, CallRecord
from switch.cdrlog import CdrLog, recover_spool
from switch.contract import (
    CDR_FIELDS,
    CDR_FILE_GLOB,
    REJECT_FILE_GLOB,
    RTP_COUNTERS,
    RTP_ENCRYPTION,
    RTP_LEGS,
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    CdrField,
    DisconnectReason,
    FieldKind,
    all_cdr_fields,
    cdr_file_name,
    reject_file_name,
)
from tests.helpers import contract_cdr

ROOT = Path(__file__).resolve().parent.parent
NAMES = [f.name for f in CDR_FIELDS]
ALL_NAMES = [f.name for f in all_cdr_fields()]

#: Columns the warehouse adds to a CDR at ingest (not in the contract): the dense key, the hash
#: of cdr_id for re-ingest checks, the rating key of callee_e164, where and when it was read.
WAREHOUSE_EXTRA_COLUMNS = {"cdr_seq", "id_hash", "callee_key", "source_file", "ingested_at"}

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def answered_record() -> CallRecord:
    rec = CallRecord("sw1-b-1", "sw1", "c1@h", "155", "9004477", "4477", "acme",
                     "127.0.0.1", 5071, start=10.0)
    rec.attempts.append(Attempt("v1", 10.1, 503))
    rec.attempts.append(Attempt("v2", 10.2, 200, first_answer=11.0))
    rec.first_answer = 11.0
    rec.answer = 12.0
    rec.codec = "PCMA"
    rec.end(75.5, 200, DisconnectReason.CALLER_BYE)
    return rec


def assert_kind(field: CdrField, value: Any) -> None:
    if value is None:
        assert not field.required, field.name
        return
    match field.kind:
        case FieldKind.STRING:
            assert isinstance(value, str), field.name
        case FieldKind.INT:
            assert isinstance(value, int) and not isinstance(value, bool), field.name
        case FieldKind.TIMESTAMP:
            assert isinstance(value, str) and _TIMESTAMP.fullmatch(value), field.name
        case FieldKind.OBJECT:
            assert isinstance(value, dict), field.name
        case FieldKind.LIST:
            assert isinstance(value, list), field.name
            for item in value:
                if isinstance(field.items, tuple):
                    assert list(item) == [f.name for f in field.items], field.name
                    for sub in field.items:
                        assert_kind(sub, item[sub.name])
                else:
                    assert field.items is not None
                    assert_kind(CdrField(field.name, field.items), item)


# --- the CDR -------------------------------------------------------------------------------


def test_the_switch_writes_exactly_the_contract_fields_with_their_kinds() -> None:
    for rec in (answered_record(), CallRecord("i", "s", "c", "1", "2", "2", "acme", "::1", 1,
                                              start=1.0)):
        record = rec.as_dict()
        assert list(record) == NAMES
        for field in CDR_FIELDS:
            assert_kind(field, record[field.name])
    record = answered_record().as_dict()
    assert [a["vendor"] for a in record["attempts"]] == ["v1", "v2"]
    assert {leg: list(counters) for leg, counters in record["rtp"].items()} == {
        leg: [*RTP_COUNTERS, RTP_ENCRYPTION] for leg in RTP_LEGS}
    assert record["disconnect_reason"] in set(DisconnectReason)


def test_the_contract_matches_docs_cdr_md() -> None:
    doc = (ROOT / "docs" / "cdr.md").read_text()
    table = doc[doc.index("| field |"):doc.index("Changing this contract")]
    documented = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", table, re.MULTILINE)
    assert [n for pair in documented for n in pair if n] == ALL_NAMES
    required = {f.name for f in CDR_FIELDS if f.required}
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)`.*$", table, re.MULTILINE)}
    assert {name for name, row in rows.items() if "**Required" in row} == required
    reasons = re.findall(r"`(\w+)`", rows["disconnect_reason"].split("|")[3])
    assert reasons == [r.value for r in DisconnectReason]


# Where the B2BUA names why a call ended: calls that end a record or a call, the failure
# tuples, and the functions that return a reason.
_REASON_CALLS = {"end", "_fail_call", "_end_by_switch", "hangup_all"}
_REASON_FUNCTIONS = {"reason_for_status", "admit", "failure"}


def _strings(node: ast.AST) -> set[str]:
    """The string values an expression can give: a constant, a ``DisconnectReason`` member,
    either branch of ``x if c else y`` (not the condition), the items of a tuple."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) else set()
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id == "DisconnectReason":
        return {DisconnectReason[node.attr].value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.Tuple):
        return set().union(*(_strings(item) for item in node.elts))
    return set()


def reasons_in(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in _REASON_CALLS:
                for arg in node.args:
                    found |= _strings(arg)
            for keyword in node.keywords:
                if keyword.arg == "reason" and name in _REASON_CALLS:
                    found |= _strings(keyword.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "failure" for t in targets) \
                    and node.value is not None:
                found |= _strings(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name in _REASON_FUNCTIONS:
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and ret.value is not None:
                        found |= _strings(ret.value)
            args = node.args.args[len(node.args.args) - len(node.args.defaults):]
            for arg, default in zip(args, node.args.defaults, strict=True):
                if arg.arg == "reason":
                    found |= _strings(default)
    return found


def test_every_reason_the_switch_gives_is_in_the_contract() -> None:
    sources = [*sorted((ROOT / "switch" / "b2bua").glob("*.py")), ROOT / "switch" / "routing.py"]
    used = set().union(*(reasons_in(p) for p in sources))
    # the scan must still see the engine's reasons (a rename would otherwise pass vacuously)
    assert used >= {"no_route", "auth_failed", "cps_limit", "concurrency_limit", "busy",
                    "no_answer", "rejected", "caller_bye", "callee_bye", "profit_limit",
                    "invite_timeout", "max_duration", "shutdown", "error"}, used
    assert used <= set(DisconnectReason), used - set(DisconnectReason)


def test_ratelab_writers_and_readers_use_the_contract_fields() -> None:
    assert list(CDR_COLUMNS) == ALL_NAMES
    assert list(contract_cdr("a", "44", "2026-11-01T00:00:00Z", 0)) == NAMES   # test helper


def test_synthetic_cdrs_have_the_contract_fields(tmp_path: Path) -> None:
    spec = SyntheticSpec(["acme"], ["v"], ["44"], datetime(2026, 11, 1), datetime(2026, 11, 2))
    [path] = write_synthetic_cdrs(tmp_path, 3, spec)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert set(record) == set(NAMES)
        for field in CDR_FIELDS:
            assert_kind(field, record[field.name])


_DUCKDB_KINDS = {
    FieldKind.STRING: {"VARCHAR"},
    FieldKind.INT: {"INTEGER", "BIGINT"},
    FieldKind.TIMESTAMP: {"TIMESTAMP"},
}


def _struct_members(column_type: str) -> list[tuple[str, str]] | None:
    """``STRUCT(a T, b STRUCT(...))`` as [(name, type)], split at its top-level commas."""
    match = re.fullmatch(r"STRUCT\((.*)\)", column_type)
    if match is None:
        return None
    parts, depth, start, body = [], 0, 0, match.group(1)
    for i, char in enumerate(body + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
    return [(name, kind) for name, kind in (part.split(" ", 1) for part in parts)]


def _column_matches(field: CdrField, column_type: str) -> bool:
    if isinstance(field.items, tuple):   # an object, or a list of objects: a STRUCT of the fields
        if field.kind is FieldKind.LIST:
            if not column_type.endswith("[]"):
                return False
            column_type = column_type[:-2]
        members = _struct_members(column_type)
        return members is not None and [name for name, _ in members] == [
            f.name for f in field.items] and all(
            _column_matches(f, kind) for f, (_, kind) in zip(field.items, members, strict=True))
    if field.kind is not FieldKind.LIST:
        return column_type in _DUCKDB_KINDS[field.kind]
    if not column_type.endswith("[]"):
        return False
    assert field.items is not None
    return column_type[:-2] in _DUCKDB_KINDS[field.items]


def test_the_migrated_warehouse_stores_every_contract_field(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        migrate(con)
        columns = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'cdrs' ORDER BY ordinal_position").fetchall())
    finally:
        con.close()
    assert set(columns) - WAREHOUSE_EXTRA_COLUMNS == set(ALL_NAMES), (
        "the cdrs table and the CDR contract differ: add a migration (or a contract field)")
    wrong = {f.name: columns[f.name] for f in all_cdr_fields()
             if not _column_matches(f, columns[f.name])}
    assert not wrong


# --- the spool -----------------------------------------------------------------------------


def test_file_names_match_their_globs() -> None:
    assert fnmatch(cdr_file_name("sw1", "b1", 1), CDR_FILE_GLOB)
    assert fnmatch(reject_file_name("sw1", "b1"), REJECT_FILE_GLOB)
    assert not fnmatch(reject_file_name("sw1", "b1"), CDR_FILE_GLOB)


def test_writer_and_every_reader_agree_on_names_and_the_torn_line(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    log = CdrLog(spool, "sw1", boot="b1")
    log.append([answered_record().as_dict()])
    log.close()
    assert log.path.name == cdr_file_name("sw1", "b1", 1)
    torn = b'{"cdr_id": "sw1-b1-2", "start_'
    with log.path.open("ab") as fh:
        fh.write(torn)

    tail = SpoolTail(spool)
    assert tail.poll() == 1 and tail.pending_bytes == len(torn)   # the live monitor
    con = duckdb.connect()
    migrate(con)
    summary = ingest_spool(con, spool)                             # ingest
    assert (summary.added, summary.pending) == (1, 1)
    assert recover_spool(spool).truncated_bytes == len(torn)       # the switch's recovery


# --- the routing snapshot ------------------------------------------------------------------


def test_one_snapshot_format_and_one_prefix_lookup() -> None:
    assert (ratelab.routing.SNAPSHOT_FORMAT, ratelab.routing.SNAPSHOT_VERSION) == (
        SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
    assert switch.routing.PrefixTable is switch.contract.PrefixTable
    assert switch.routing.longest_match is switch.contract.longest_match
    con = duckdb.connect()
    migrate(con)
    snapshot = ratelab.routing.routing_snapshot(con)
    assert (snapshot["format"], snapshot["version"]) == (SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
    switch.routing.parse_snapshot(json.loads(json.dumps(snapshot)))   # the switch takes it


def test_the_contract_uses_the_standard_library_only() -> None:
    # ratelab and the switch both import it; it must not pull either side (or a package) in
    tree = ast.parse((ROOT / "switch" / "contract.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= sys.stdlib_module_names | {"__future__"}, imported
