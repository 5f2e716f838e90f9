"""CDR ingest from JSON-lines spool files into a real DuckDB warehouse (CDR contract v1)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

import ratelab
from tests.helpers import contract_cdr, write_jsonl

START = "2026-03-01T10:00:00.000000Z"


def cdrs(*ids: str) -> list[dict]:
    return [contract_cdr(i, "447700900001", START, 60_000) for i in ids]


def count(warehouse: ratelab.Warehouse, sql: str = "SELECT count(*) AS n FROM cdrs") -> int:
    return warehouse.sql(sql)["n"][0]


def cdr_ids(warehouse: ratelab.Warehouse) -> list[str]:
    return warehouse.sql("SELECT cdr_id FROM cdrs ORDER BY cdr_id")["cdr_id"].to_list()


# -- idempotence -----------------------------------------------------------------------------


def test_second_ingest_of_unchanged_spool_skips_the_files(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_jsonl(spool / "a.jsonl", cdrs("a1", "a2", "a3"))
    write_jsonl(spool / "b.jsonl", cdrs("b1", "b2"))

    first = warehouse.ingest(spool)
    assert first == ratelab.IngestSummary(files=2, skipped_files=0, lines=5, added=5,
                                          duplicates=0, quarantined=0, pending=0)

    second = warehouse.ingest(spool)
    assert second == ratelab.IngestSummary(files=0, skipped_files=2, lines=0, added=0,
                                           duplicates=0, quarantined=0, pending=0)
    assert count(warehouse) == 5


def test_forced_reingest_counts_duplicates_and_adds_nothing(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_jsonl(spool / "a.jsonl", cdrs("a1", "a2", "a3"))
    write_jsonl(spool / "b.jsonl", cdrs("b1", "b2"))
    warehouse.ingest(spool)

    forced = warehouse.ingest(spool, force=True)
    assert forced == ratelab.IngestSummary(files=2, skipped_files=0, lines=5, added=0,
                                           duplicates=5, quarantined=0, pending=0)
    assert cdr_ids(warehouse) == ["a1", "a2", "a3", "b1", "b2"]


def test_a_grown_file_is_read_again_and_only_its_new_lines_added(warehouse,
                                                                 tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = write_jsonl(spool / "a.jsonl", cdrs("a1", "a2"))
    warehouse.ingest(spool)
    with path.open("a") as fh:
        fh.write(json.dumps(cdrs("a3")[0]) + "\n")

    summary = warehouse.ingest(spool)
    assert (summary.files, summary.skipped_files, summary.lines) == (1, 0, 3)
    assert (summary.added, summary.duplicates) == (1, 2)
    assert cdr_ids(warehouse) == ["a1", "a2", "a3"]


def test_same_cdr_id_in_two_files_is_added_once(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_jsonl(spool / "a.jsonl", cdrs("x1", "shared"))
    write_jsonl(spool / "b.jsonl", cdrs("shared", "x2"))

    summary = warehouse.ingest(spool)
    assert (summary.lines, summary.added, summary.duplicates) == (4, 3, 1)
    assert cdr_ids(warehouse) == ["shared", "x1", "x2"]
    assert count(warehouse, "SELECT count(*) AS n FROM cdrs WHERE cdr_id = 'shared'") == 1


def test_same_cdr_id_in_a_later_run_from_another_file_is_not_added(warehouse,
                                                                   tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_jsonl(spool / "a.jsonl", cdrs("x1", "shared"))
    warehouse.ingest(spool)
    write_jsonl(spool / "b.jsonl", cdrs("shared", "x2"))

    summary = warehouse.ingest(spool)
    assert (summary.files, summary.skipped_files, summary.added, summary.duplicates) == (
        1, 1, 1, 1)
    assert cdr_ids(warehouse) == ["shared", "x1", "x2"]


# -- a last line still being written -------------------------------------------------------


def test_truncated_last_line_is_pending_until_the_writer_finishes_it(warehouse,
                                                                     tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = spool / "live.jsonl"
    last = json.dumps(cdrs("c3")[0])
    cut = len(last) // 2
    write_jsonl(path, cdrs("c1", "c2"))
    with path.open("a") as fh:
        fh.write(last[:cut])  # the switch is mid-write: no newline, JSON cut in half

    summary = warehouse.ingest(spool)
    assert (summary.files, summary.lines, summary.added) == (1, 3, 2)
    assert summary.pending == 1
    assert summary.quarantined == 0, "a half-written line is pending, not bad data"
    assert "truncated" in str(summary)
    assert cdr_ids(warehouse) == ["c1", "c2"]
    q = warehouse.quarantine()
    assert q.height == 1
    entry = q.row(0, named=True)
    assert entry["file"] == str(path)
    assert entry["line"] == 3
    assert entry["reason"].startswith("truncated")
    assert entry["content"] == last[:cut]

    with path.open("a") as fh:
        fh.write(last[cut:] + "\n")  # the writer finished the line

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.duplicates, summary.pending) == (1, 2, 0)
    assert cdr_ids(warehouse) == ["c1", "c2", "c3"]
    assert warehouse.quarantine().height == 0, "the truncated entry is cleared"


def test_completed_line_clears_truncation_even_when_the_file_has_a_bad_line(
    warehouse, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    path = spool / "live.jsonl"
    last = json.dumps(cdrs("c3")[0])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(cdrs("c1")[0]) + "\n" + "not json\n" + last[:10])

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.quarantined, summary.pending) == (1, 1, 1)

    with path.open("a") as fh:
        fh.write(last[10:] + "\n")
    summary = warehouse.ingest(spool)
    assert (summary.added, summary.pending) == (1, 0)
    assert cdr_ids(warehouse) == ["c1", "c3"]
    q = warehouse.quarantine()
    assert q.select("line", "reason").rows() == [(2, "not valid JSON")]


# -- bad lines go to quarantine ------------------------------------------------------------


_DROP = object()


def _bad_lines() -> list[tuple[str, str]]:
    """(line text, expected reason substring), one per kind of bad line."""

    def broken(ident: str, /, **changes: object) -> str:
        record = contract_cdr(ident, "447700900001", START, 60_000)
        for key, value in changes.items():
            if value is _DROP:
                del record[key]
            else:
                record[key] = value
        return json.dumps(record)

    return [
        ('{"cdr_id": "x",', "not valid JSON"),
        (json.dumps([contract_cdr("arr", "447700900001", START, 60_000)]), "not a JSON object"),
        (broken("no-id", cdr_id=_DROP), "missing cdr_id"),
        (broken("bad-ts", start_ts="yesterday"), "start_ts"),
        (broken("neg", duration_ms=-1000), "negative duration_ms"),
        (broken("unanswered", answer_ts=None), "duration_ms > 0 but answer_ts is null"),
        (broken("backwards", end_ts="2026-03-01T09:59:59.999999Z"), "end_ts before start_ts"),
        (broken("no-cust", customer=_DROP), "missing customer"),
        (broken("sip42", sip_code=42), "sip_code"),
        # a garbage port means a broken writer: quarantined, never stored as a null port
        (broken("port", src_port="abc"), 'invalid src_port: "abc"'),
        (broken("flag", escaped="caller"), 'invalid escaped: "caller"'),
    ]


def test_bad_lines_are_quarantined_with_line_and_reason(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = spool / "mixed.jsonl"
    bad = _bad_lines()
    lines: list[str] = []
    expected: dict[int, str] = {}
    good: list[str] = []
    for k, (text, reason) in enumerate(bad):
        good_id = f"good{k}"
        lines.append(json.dumps(cdrs(good_id)[0]))
        good.append(good_id)
        lines.append(text)
        expected[len(lines)] = reason
    lines.append(json.dumps(cdrs("good-last")[0]))
    good.append("good-last")
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")

    summary = warehouse.ingest(spool)
    assert summary.lines == len(lines)
    assert summary.quarantined == len(bad)
    assert summary.added == len(good)
    assert summary.pending == 0
    assert cdr_ids(warehouse) == sorted(good)

    q = warehouse.quarantine()
    assert q.height == len(bad)
    assert set(q["file"]) == {str(path)}
    got = {row["line"]: row for row in q.iter_rows(named=True)}
    assert sorted(got) == sorted(expected)
    for line, reason in expected.items():
        assert reason in got[line]["reason"], (line, got[line]["reason"])
        assert got[line]["content"] == lines[line - 1]
    assert all(r["quarantined_at"] is not None for r in got.values())

    again = warehouse.ingest(spool, force=True)
    assert again.added == 0 and again.duplicates == len(good)
    assert warehouse.quarantine().height == len(bad), "force=True must not duplicate quarantine"
    assert count(warehouse) == len(good)


@pytest.mark.parametrize(("text", "reason"), _bad_lines(),
                         ids=["invalid-json", "array", "no-id", "bad-ts", "neg-duration",
                              "duration-unanswered", "end-before-start", "no-customer", "sip42",
                              "port-type", "escaped-type"])
def test_each_bad_line_alone_in_the_middle_of_a_file(warehouse, tmp_path: Path, text: str,
                                                      reason: str) -> None:
    spool = tmp_path / "spool"
    path = spool / "one.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([json.dumps(cdrs("g1")[0]), text,
                               json.dumps(cdrs("g2")[0])]) + "\n")

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.quarantined, summary.pending) == (2, 1, 0)
    q = warehouse.quarantine()
    assert q.select("file", "line").rows() == [(str(path), 2)]
    assert reason in q["reason"][0]


def test_a_line_that_is_not_utf8_is_quarantined_not_read_with_replacements(
    warehouse, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    path = spool / "raw.jsonl"
    path.parent.mkdir(parents=True)
    raw = json.dumps(cdrs("raw")[0]).replace("15551234567", "155@@").encode()
    raw = raw.replace(b"@@", b"\xff\xfe")  # what a writer that does not escape would write
    path.write_bytes(b"\n".join([json.dumps(cdrs("g1")[0]).encode(), raw,
                                 json.dumps(cdrs("g2")[0]).encode()]) + b"\n")

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.quarantined) == (2, 1)
    assert cdr_ids(warehouse) == ["g1", "g2"]
    q = warehouse.quarantine().row(0, named=True)
    assert (q["line"], q["reason"]) == (2, "not valid UTF-8")
    assert '"caller": "155\\xff\\xfe"' in q["content"], "the bytes stay visible"


def test_a_last_line_cut_inside_a_utf8_character_is_still_pending(warehouse,
                                                                   tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = spool / "live.jsonl"
    record = cdrs("c2")[0]
    record["caller"] = "caf\u00e9"
    last = json.dumps(record, ensure_ascii=False).encode()
    cut = last.index("\u00e9".encode()) + 1  # between the two bytes of the e-acute
    write_jsonl(path, cdrs("c1"))
    with path.open("ab") as fh:
        fh.write(last[:cut])

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.pending, summary.quarantined) == (1, 1, 0)
    with path.open("ab") as fh:
        fh.write(last[cut:] + b"\n")
    summary = warehouse.ingest(spool)
    assert (summary.added, summary.pending) == (1, 0)
    assert warehouse.sql("SELECT caller FROM cdrs WHERE cdr_id = 'c2'")["caller"][0] == "caf\u00e9"


def test_blank_lines_keep_physical_line_numbers(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = spool / "gaps.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(cdrs("g1")[0]) + "\n\n\n" + "[1, 2]\n")

    summary = warehouse.ingest(spool)
    assert (summary.added, summary.quarantined) == (1, 1)
    assert warehouse.quarantine()["line"].to_list() == [4]


# -- what is stored ------------------------------------------------------------------------


def test_stored_cdr_keeps_its_fields(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    digits = contract_cdr("digits", "447700900001", "2026-03-01T10:00:00.123456Z", 61_500,
                          vendor="carrier_y")
    digits["attempts"] = [
        {"vendor": "carrier_x", "start_ts": "2026-03-01T10:00:00.200000Z", "sip_code": 503,
         "pdd_ms": 120},
        {"vendor": "carrier_y", "start_ts": "2026-03-01T10:00:01.000000Z", "sip_code": 200,
         "pdd_ms": 800},
    ]
    spaced = contract_cdr("spaced", "+44 20", "2026-03-01T11:00:00.000001Z", 0)
    write_jsonl(spool / "cdrs.jsonl", [digits, spaced])
    assert warehouse.ingest(spool).added == 2

    rows = {r["cdr_id"]: r for r in warehouse.sql(
        "SELECT cdr_id, start_ts, attempts, callee_e164, callee_key, duration_ms, customer, "
        "vendor, sip_code, source_file, ingested_at FROM cdrs").iter_rows(named=True)}
    d = rows["digits"]
    assert d["start_ts"] == datetime(2026, 3, 1, 10, 0, 0, 123456)
    assert d["duration_ms"] == 61_500
    assert (d["customer"], d["vendor"], d["sip_code"]) == ("acme", "carrier_y", 200)
    assert d["source_file"] == str(spool / "cdrs.jsonl")
    assert d["ingested_at"] is not None
    assert isinstance(d["attempts"], list) and len(d["attempts"]) == 2
    assert [(a["vendor"], a["sip_code"], a["pdd_ms"]) for a in d["attempts"]] == [
        ("carrier_x", 503, 120), ("carrier_y", 200, 800)]
    assert d["attempts"][0]["start_ts"] == datetime(2026, 3, 1, 10, 0, 0, 200000)
    assert d["callee_e164"] == "447700900001"
    assert d["callee_key"] is not None

    s = rows["spaced"]
    assert s["start_ts"] == datetime(2026, 3, 1, 11, 0, 0, 1)
    assert s["callee_e164"] == "+44 20"
    assert s["callee_key"] is None
    assert s["attempts"][0]["vendor"] == "carrier_x"

    types = dict(warehouse.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'cdrs'").rows())
    assert types["start_ts"] == "TIMESTAMP"
    assert types["attempts"].startswith("STRUCT(")
    assert types["attempts"].endswith("[]")


def test_values_that_convert_to_their_type_are_converted(warehouse, tmp_path: Path) -> None:
    record = cdrs("conv")[0]
    record.update(duration_ms="61000", src_port="5070", codec=5)
    write_jsonl(tmp_path / "spool" / "a.jsonl", [record])
    summary = warehouse.ingest(tmp_path / "spool")
    assert (summary.added, summary.quarantined) == (1, 0)
    row = warehouse.sql("SELECT duration_ms, src_port, codec FROM cdrs").row(0)
    assert row == (61_000, 5070, "5")


def test_callee_keys_order_like_the_prefix_matcher(warehouse, tmp_path: Path) -> None:
    from ratelab.prefix import number_key

    spool = tmp_path / "spool"
    write_jsonl(spool / "cdrs.jsonl", [
        contract_cdr("k1", "44", START, 0), contract_cdr("k2", "4400", START, 0),
        contract_cdr("k3", "12345678901234567", START, 0),
        contract_cdr("k4", "123456789012345678", START, 0),
    ])
    warehouse.ingest(spool)
    keys = dict(warehouse.sql("SELECT cdr_id, callee_key FROM cdrs").rows())
    assert keys["k1"] == number_key("44")
    assert keys["k2"] == number_key("4400")
    assert keys["k3"] == number_key("12345678901234567")
    assert keys["k4"] is None, "more than 17 digits has no key"


# -- spool directories ---------------------------------------------------------------------


def test_empty_spool_directory(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    assert warehouse.ingest(spool) == ratelab.IngestSummary()
    assert count(warehouse) == 0
    assert warehouse.quarantine().height == 0


def test_missing_spool_directory(warehouse, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "spool"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        warehouse.ingest(missing)
    with pytest.raises(FileNotFoundError) as err:
        warehouse.ingest(missing)
    assert str(missing) in str(err.value)


def test_spool_subdirectories_and_other_files(warehouse, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_jsonl(spool / "sw1" / "2026-03-01.jsonl", cdrs("s1"))
    write_jsonl(spool / "sw2" / "2026-03-01.json", cdrs("s2"))
    (spool / "notes.txt").write_text("not a CDR file\n")
    summary = warehouse.ingest(spool)
    assert (summary.files, summary.added, summary.quarantined) == (2, 2, 0)
    assert cdr_ids(warehouse) == ["s1", "s2"]


def test_a_time_with_an_offset_is_converted_to_utc(warehouse, tmp_path):
    record = contract_cdr("tz-1", "447700900001", "2026-03-01T10:00:00.000000+02:00", 60000)
    record["attempts"][0]["start_ts"] = "2026-03-01T10:00:00+02:00"
    write_jsonl(tmp_path / "spool" / "a.jsonl", [record])
    assert warehouse.ingest(tmp_path / "spool").added == 1
    row = warehouse.sql("SELECT start_ts, answer_ts, attempts[1].start_ts AS a FROM cdrs").row(0)
    assert row == (datetime(2026, 3, 1, 8, 0),) * 3


@pytest.mark.parametrize("bad", [False, True], ids=["clean file", "a bad line: line by line"])
def test_times_are_utc_whatever_the_session_time_zone(tmp_path, bad: bool) -> None:
    """Both ingest paths store the instant as naive UTC, not as the session's local time."""
    import duckdb

    from ratelab.ingest import ingest_spool
    from ratelab.migrations import migrate

    record = contract_cdr("tz-2", "447700900001", "2026-03-01T10:00:00.000000+02:00", 60000)
    record["attempts"].append({"vendor": "late", "start_ts": None, "sip_code": 503})
    lines = [json.dumps(record)] + (['{"cdr_id": "broken"'] if bad else [])
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "a.jsonl").write_text("\n".join(lines) + "\n")
    con = duckdb.connect()
    migrate(con)
    con.execute("SET TimeZone = 'America/New_York'")
    summary = ingest_spool(con, tmp_path / "spool")
    assert (summary.added, summary.quarantined) == (1, int(bad))
    assert con.execute("SELECT start_ts, end_ts FROM cdrs").fetchall() == [
        (datetime(2026, 3, 1, 8, 0), datetime(2026, 3, 1, 8, 0))]
    attempts = con.execute("SELECT attempts FROM cdrs").fetchone()[0]
    assert [(a["vendor"], a["start_ts"], a["sip_code"]) for a in attempts] == [
        ("carrier_x", datetime(2026, 3, 1, 8, 0), 200), ("late", None, 503)]
