"""Non-UTF-8 header bytes in CDRs: the escaping rule, the writer's isolation, and ingest.

A byte that is not UTF-8 in a From user or Call-ID reaches the CDR as a lone surrogate (the SIP
parser decodes with surrogateescape). Before records were isolated, one such record failed the
whole group commit, and the other calls of the group lost their CDRs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ratelab
from switch.b2bua import Finish, Transmit
from switch.b2bua.build import uri_of, user_of
from switch.b2bua.cdr import CallRecord
from switch.cdrlog import CdrLog, CdrWriter, Outcome, recover_spool
from switch.config import load_config_text
from switch.contract import (
    ESCAPED_FIELD,
    escape_record,
    escape_text,
    needs_escape,
    unescape_record,
    unescape_text,
)
from switch.server import Switch
from switch.sip import parse_message
from tests.helpers import contract_cdr

START = "2026-03-01T10:00:00.000000Z"

# Every code point, surrogates included, with the characters the rule treats specially made
# common enough that hypothesis combines them (backslashes next to 'x', 'u' and hex digits).
_SPECIAL = st.sampled_from(["\\", "x", "u", "d", "c", "8", "f", "0", "\udc80", "\udcff",
                            "\udc7f", "\ud800", "\udbff", "\udfff", "\udd00"])
_ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.text(st.one_of(_SPECIAL, _ANY_CHAR), max_size=40)


# -- the rule -------------------------------------------------------------------------------


@given(TEXT)
def test_unescape_of_escape_gives_back_every_string(s: str) -> None:
    escaped = escape_text(s)
    assert unescape_text(escaped) == s
    escaped.encode("utf-8")  # always writable as UTF-8
    assert not needs_escape(escaped)


@given(st.binary(max_size=40))
def test_the_wire_bytes_come_back_from_an_escaped_header(raw: bytes) -> None:
    header = raw.decode("utf-8", "surrogateescape")  # as the SIP parser reads a header
    escaped = escape_text(header)
    assert unescape_text(escaped).encode("utf-8", "surrogateescape") == raw


@given(TEXT)
def test_an_escaped_string_has_one_reading(s: str) -> None:
    # Whatever unescape accepts, escape writes back exactly: no two texts mean the same string.
    try:
        original = unescape_text(s)
    except ValueError:
        return
    assert escape_text(original) == s


@pytest.mark.parametrize("text", ["\\", "a\\", "\\q", "\\x41", "\\x7f", "\\xf", "\\xFF",
                                  "\\udc80", "\\udcff", "\\u0041", "\\ue000", "\\uD800"])
def test_unescape_refuses_what_escape_never_writes(text: str) -> None:
    with pytest.raises(ValueError, match="bad escape"):
        unescape_text(text)


def test_unescape_refuses_raw_surrogates() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        unescape_text("1\udcff")


def test_the_escaped_forms() -> None:
    assert escape_text("155\udcff9") == "155\\xff9"
    assert escape_text("a\\b") == "a\\\\b"
    assert escape_text("\ud800\udc00") == "\\ud800\\udc00"  # a pair, still two code points
    assert unescape_text("\\ud800\\udc00") == "\ud800\udc00"
    assert unescape_text("155\\xff9") == "155\udcff9"
    assert escape_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"  # UTF-8 stays


def test_escape_record_flags_only_the_fields_it_escaped() -> None:
    record = {"cdr_id": "x", "caller": "1\udcff", "callee": "a\\b",
              "attempts": [{"vendor": "v1"}, {"vendor": "v\udc80"}], "rtp": {"leg": "\udcfe"}}
    out = escape_record(record)
    assert out[ESCAPED_FIELD] == ["caller", "attempts.1.vendor", "rtp.leg"]
    assert out["callee"] == "a\\b", "a field that needed nothing is written verbatim"
    assert unescape_record(out) == record
    assert record["attempts"][1]["vendor"] == "v\udc80", "the caller's record is not changed"
    assert escape_record({"cdr_id": "x", "caller": "155"}) == {"cdr_id": "x", "caller": "155"}


# -- the writer: one bad record never fails another ------------------------------------------


def _hostile_invite() -> tuple[str, str]:
    """Caller and Call-ID as the real parser hands them over for bytes that are not UTF-8."""
    raw = (b"INVITE sip:4477@198.51.100.1 SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1\r\n"
           b"From: <sip:155\xff\xfe@198.51.100.7>;tag=1\r\n"
           b"To: <sip:4477@198.51.100.1>\r\n"
           b"Call-ID: bad\xc3(\\id@198.51.100.7\r\n"
           b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    msg = parse_message(raw)
    caller = user_of(uri_of(msg.headers.get("from") or ""))
    call_id = msg.headers.get("call-id") or ""
    assert needs_escape(caller) and needs_escape(call_id)
    return caller, call_id


def _poisoned(cdr_id: str) -> dict[str, Any]:
    caller, call_id = _hostile_invite()
    rec = CallRecord(cdr_id, "sw1", call_id, caller, "4477", "4477", "acme", "198.51.100.7",
                     5060, start=1_770_000_000.0)
    rec.end(1_770_000_000.5, 404, "no_route")
    return rec.as_dict()


class _NotJson:
    """A value json cannot encode: a record holding it cannot be repaired."""

    def __repr__(self) -> str:
        return "<NotJson>"


def _group_of(writer: CdrWriter, records: list[dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        # all writes are queued before the flusher first runs: one group, one sync
        got = await asyncio.gather(*(writer.write(r) for r in records), return_exceptions=True)
        await writer.close()
        return got

    before = writer.syncs
    got = asyncio.run(run())
    assert writer.syncs == before + 1, "the records were committed as one group"
    return got


def _lines(spool: Path, pattern: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(spool.glob(pattern)):
        data = path.read_bytes()
        assert data.endswith(b"\n")
        found += [json.loads(line) for line in data.decode("utf-8").splitlines()]
    return found


def test_a_poisoned_record_in_a_group_is_escaped_and_every_good_one_is_durable(
    tmp_path: Path,
) -> None:
    good = [contract_cdr(f"good{i}", "447700900001", START, 60_000) for i in range(6)]
    poisoned = _poisoned("poison1")
    records = [*good[:3], poisoned, *good[3:]]
    writer = CdrWriter(CdrLog(tmp_path, "sw1", boot="b1"))

    got = _group_of(writer, records)

    assert got == [Outcome.WRITTEN] * 3 + [Outcome.ESCAPED] + [Outcome.WRITTEN] * 3
    lines = _lines(tmp_path, "cdr-*.jsonl")
    assert [line["cdr_id"] for line in lines] == [r["cdr_id"] for r in records]
    assert lines[:3] + lines[4:] == good, "the good CDRs are written as they were given"
    written = lines[3]
    assert written[ESCAPED_FIELD] == ["call_id", "caller"]
    assert written["caller"] == "155\\xff\\xfe"
    assert written["call_id"] == "bad\\xc3(\\\\id@198.51.100.7"
    assert unescape_record(written) == poisoned
    assert unescape_text(written["caller"]).encode("utf-8", "surrogateescape") == b"155\xff\xfe"
    assert (writer.repaired, writer.rejected) == (1, 0)
    assert not list(tmp_path.glob("rejects-*"))


def test_an_unrepairable_record_goes_to_the_reject_file_and_its_group_is_durable(
    tmp_path: Path,
) -> None:
    good = [contract_cdr(f"good{i}", "447700900001", START, 60_000) for i in range(4)]
    poisoned = _poisoned("poison1")
    broken = contract_cdr("broken1", "447700900001", START, 0)
    broken["codec"] = _NotJson()
    broken["caller"] = "9\udcff"  # escaping alone does not save it
    records = [good[0], poisoned, good[1], broken, good[2], good[3]]
    writer = CdrWriter(CdrLog(tmp_path, "sw1", boot="b1"))

    got = _group_of(writer, records)

    assert got == [Outcome.WRITTEN, Outcome.ESCAPED, Outcome.WRITTEN, Outcome.REJECTED,
                   Outcome.WRITTEN, Outcome.WRITTEN]
    lines = _lines(tmp_path, "cdr-*.jsonl")
    assert [line["cdr_id"] for line in lines] == ["good0", "poison1", "good1", "good2", "good3"]
    rejects = _lines(tmp_path, "rejects-sw1-b1.jsonl")
    assert len(rejects) == 1
    assert rejects[0]["cdr_id"] == "broken1"
    assert "not JSON serializable" in rejects[0]["reason"]
    assert "<NotJson>" in rejects[0]["record"] and "'broken1'" in rejects[0]["record"]
    assert (writer.repaired, writer.rejected) == (1, 1)


def test_records_that_are_not_cdrs_are_rejected_alone(tmp_path: Path) -> None:
    class Loud:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    circular: dict[str, Any] = {"cdr_id": "loop"}
    circular["self"] = circular
    log = CdrLog(tmp_path, "sw1", boot="b1")
    outcomes = log.append([{"cdr_id": "a"}, circular, {"cdr_id": "nan", "x": float("nan")},
                           ["not", "a", "dict"], {"cdr_id": "loud", "x": Loud()},
                           {"\udcff": 1}, {"cdr_id": "z"}])
    assert outcomes == [Outcome.WRITTEN] + [Outcome.REJECTED] * 5 + [Outcome.WRITTEN]
    assert [r["cdr_id"] for r in _lines(tmp_path, "cdr-*.jsonl")] == ["a", "z"]
    rejects = _lines(tmp_path, "rejects-*.jsonl")
    assert [r["cdr_id"] for r in rejects] == ["loop", "nan", None, "loud", None]
    assert "Circular reference" in rejects[0]["reason"]
    assert "not JSON compliant" in rejects[1]["reason"]
    assert rejects[3]["record"] == "<unprintable: RuntimeError>"
    assert "a CDR key that is not UTF-8" in rejects[4]["reason"]
    assert log.rejected == 5


def test_an_io_error_on_the_cdr_file_fails_its_group_but_not_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the writer passes on these per-record errors: see the switch tests below)
    log = CdrLog(tmp_path, "sw1", boot="b1")
    log.append([{"cdr_id": "before"}])

    class FullDisk:
        """The active file: part of the group's data reaches it, then the disk is full."""

        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            self.fh.write(bytes(data[:5]))
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            self.fh.close()

    monkeypatch.setattr(log, "_fh", FullDisk(log._fh))
    got = log.commit([{"cdr_id": "g1"}, {"cdr_id": "p", "caller": "\udcff"}])
    assert all(isinstance(r, OSError) for r in got), "not durable, so not acknowledged"
    assert (log.repaired, log.rejected) == (0, 0)

    # the space is back: the next CDR must not run into the torn fragment
    assert log.append([{"cdr_id": "after"}]) == [Outcome.WRITTEN]
    log.close()
    recover_spool(tmp_path)
    assert [r["cdr_id"] for r in _lines(tmp_path, "cdr-*.jsonl")] == ["before", "after"]


def test_an_io_error_on_the_reject_file_fails_only_the_rejected_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = CdrLog(tmp_path, "sw1", boot="b1")

    def broken(data: bytes) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(log, "_write_rejects", broken)
    got = _group_of(CdrWriter(log), [{"cdr_id": "g1"}, {"cdr_id": "r", "x": {1, 2}},
                                     {"cdr_id": "g2"}])
    assert got[0] is Outcome.WRITTEN and got[2] is Outcome.WRITTEN
    assert isinstance(got[1], OSError)
    assert [r["cdr_id"] for r in _lines(tmp_path, "cdr-*.jsonl")] == ["g1", "g2"]
    assert log.rejected == 0, "only durable rejects are counted"


def test_recovery_cuts_a_torn_reject_line(tmp_path: Path) -> None:
    path = tmp_path / "rejects-sw1-a.jsonl"
    path.write_bytes(b'{"cdr_id":"x","reason":"r","record":"{}"}\n{"cdr_id":"y","rea')
    assert recover_spool(tmp_path).files == 1
    assert path.read_bytes() == b'{"cdr_id":"x","reason":"r","record":"{}"}\n'


# -- the switch acknowledges a call once its record is durable, wherever it went -------------


def _switch_finishing(tmp_path: Path) -> tuple[Switch, list[Any]]:
    config = load_config_text('[switch]\nid = "sw1"\nsip_listen = ["udp:127.0.0.1:0"]\n')
    switch = Switch(config)
    switch.writer = CdrWriter(CdrLog(tmp_path, "sw1", boot="b1"))
    sent: list[Any] = []
    switch._send = lambda message, peer: sent.append(message)  # type: ignore[method-assign]
    return switch, sent


def _finish_all(switch: Switch, records: list[dict[str, Any]]) -> None:
    async def run() -> None:
        await asyncio.gather(*(
            switch._finish(Finish(r, [Transmit(f"final answer {r['cdr_id']}",  # type: ignore
                                               ("udp", "127.0.0.1", 5060))]))
            for r in records))
        assert switch.writer is not None
        await switch.writer.close()

    asyncio.run(run())


def test_the_switch_answers_every_call_of_a_group_with_a_bad_record(tmp_path: Path) -> None:
    switch, sent = _switch_finishing(tmp_path)
    broken = {"cdr_id": "broken", "codec": _NotJson()}
    _finish_all(switch, [{"cdr_id": "a"}, _poisoned("poison"), broken, {"cdr_id": "b"}])
    assert sorted(sent) == ["final answer a", "final answer b", "final answer broken",
                            "final answer poison"]
    assert switch.cdr_errors == 0


def test_the_switch_answers_nothing_when_the_cdr_file_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    switch, sent = _switch_finishing(tmp_path)
    assert switch.writer is not None

    def failing(data: bytes) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(switch.writer.log, "_write_cdrs", failing)
    _finish_all(switch, [{"cdr_id": "a"}, {"cdr_id": "b"}])
    assert sent == []
    assert switch.cdr_errors == 2


# -- ingest ---------------------------------------------------------------------------------


def test_ingest_stores_an_escaped_cdr_as_written(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    good = [contract_cdr(f"good{i}", "447700900001", START, 60_000) for i in range(3)]
    poisoned = contract_cdr("poison1", "447700900001", START, 0)
    caller, call_id = _hostile_invite()
    poisoned.update(caller=caller, call_id=call_id)
    log = CdrLog(spool, "sw1", boot="b1")
    assert log.append([good[0], poisoned, *good[1:]])[1] is Outcome.ESCAPED
    log.close()
    written = _lines(spool, "cdr-*.jsonl")[1]

    warehouse = ratelab.connect(tmp_path / "w.duckdb", create=True)
    summary = warehouse.ingest(spool)

    assert (summary.added, summary.quarantined, summary.pending) == (4, 0, 0)
    rows = {r["cdr_id"]: r for r in warehouse.sql(
        "SELECT cdr_id, caller, call_id, escaped FROM cdrs").iter_rows(named=True)}
    row = rows["poison1"]
    assert (row["caller"], row["call_id"]) == (written["caller"], written["call_id"])
    assert row["caller"] == "155\\xff\\xfe"
    assert row["escaped"] == ["call_id", "caller"]
    assert unescape_text(row["call_id"]) == call_id
    assert rows["good0"]["escaped"] is None
    assert rows["good0"]["caller"] == good[0]["caller"]


def test_ingest_quarantines_the_switch_rejects_with_their_reason(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    broken = contract_cdr("broken1", "447700900001", START, 0)
    broken["codec"] = _NotJson()
    log = CdrLog(spool, "sw1", boot="b1")
    log.append([contract_cdr("g1", "447700900001", START, 0), broken,
                contract_cdr("g2", "447700900001", START, 0)])
    log.close()

    warehouse = ratelab.connect(tmp_path / "w.duckdb", create=True)
    summary = warehouse.ingest(spool)

    assert (summary.files, summary.added, summary.quarantined) == (2, 2, 1)
    q = warehouse.quarantine().row(0, named=True)
    assert q["file"] == str(spool / "rejects-sw1-b1.jsonl") and q["line"] == 1
    assert q["reason"].startswith("rejected by the switch: TypeError")
    assert json.loads(q["content"])["cdr_id"] == "broken1"

    again = warehouse.ingest(spool, force=True)
    assert again.added == 0
    assert warehouse.quarantine().height == 1, "a re-read does not quarantine it twice"
    assert warehouse.ingest(spool).files == 0, "an unchanged reject file is skipped"
