"""The watch engine (docs/watch.md): hourly aggregates (rating marks hours stale, the watch
aggregates them), each detector on a golden warehouse with planted cases and clean look-alikes,
findings stored once, thresholds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import ratelab
from ratelab import fx
from ratelab.watch import (
    HIGH_RISK_DEFAULT,
    FindingKind,
    Severity,
    WatchConfig,
    findings,
    read_ranges,
    refresh_hourly,
    refresh_stale,
    run_watch,
)
from ratelab.watch.aggregates import load_watch_sql
from tests.helpers import contract_cdr, write_jsonl

GOLDEN = Path(__file__).parent / "golden" / "watch"

CUSTOMER_DECK = """prefix,destination,rate,increment,effective_from
44,United Kingdom,0.0200,60/60,2026-01-01
49,Germany,0.0200,60/60,2026-01-01
33,France,0.0200,60/60,2026-01-01
34,Spain,0.0200,60/60,2026-01-01
39,Italy,0.0100,60/60,2026-01-01
882,International Networks,0.5000,60/60,2026-01-01
886,Taiwan,0.0500,60/60,2026-01-01
"""

VENDOR_DECK = """prefix,destination,rate,increment,effective_from
44,United Kingdom,0.0100,60/60,2026-01-01
49,Germany,0.0100,60/60,2026-01-01
33,France,0.0100,60/60,2026-01-01
34,Spain,0.0100,60/60,2026-01-01
39,Italy,0.0500,60/60,2026-01-01
882,International Networks,0.4000,60/60,2026-01-01
886,Taiwan,0.0300,60/60,2026-01-01
"""

CUSTOMERS = ["ivan", "asra", "lowe", "nova", "olga", "spik", "nite", "acdy", "shrt", "loss",
             "olda"]
NUMBER = {"44": "442071234", "49": "493012345", "33": "331234567", "34": "341234567",
          "39": "390612345", "882": "882134567", "886": "886212345"}

#: Mondays: the window's (2026-11-02) and the 4 weeks of history before it.
WINDOW_DAY = datetime(2026, 11, 2)
HISTORY = [WINDOW_DAY - timedelta(weeks=k) for k in (1, 2, 3, 4)]
NOW = datetime(2026, 11, 2, 14, 20)


def calls(customer: str, prefix: str, at: datetime, count: int, *, answered: int | None = None,
          seconds: int = 60, short: int = 0) -> list[tuple[str, str, datetime, int]]:
    """``count`` calls in the hour starting ``at``: the first ``answered`` (default all) last
    ``seconds`` (the first ``short`` of them 5 s), the rest are unanswered."""
    answered = count if answered is None else answered
    out = []
    for n in range(count):
        ms = 0 if n >= answered else (5_000 if n < short else seconds * 1000)
        out.append((customer, prefix, at + timedelta(seconds=n * 7), ms))
    return out


def planted_calls() -> list[tuple[str, str, datetime, int]]:
    """Who calls what and when (docs in tests/golden/watch/planted.json)."""
    at2, at14 = timedelta(hours=2), timedelta(hours=14)
    rows = []
    for day in [*HISTORY, WINDOW_DAY]:
        rows += calls("ivan", "44", day + at2, 2)                  # ivan's usual, at night
        rows += calls("nite", "44", day + at2, 40)                 # high at night, every week
        rows += calls("lowe", "33", day + at14, 30, answered=6)    # low ASR, always
        rows += calls("nova", "34", day + at14, 2)
        rows += calls("olga", "34", day + at14, 2)
    for day in HISTORY:
        rows += calls("asra", "49", day + at14, 30, answered=24)
        rows += calls("spik", "44", day + at14, 10)
        rows += calls("acdy", "44", day + at14, 20, seconds=120)
        rows += calls("shrt", "44", day + at14, 20)
    # the planted cases, in the window
    rows += calls("ivan", "882", WINDOW_DAY + at2, 25, seconds=30)   # night burst, listed range
    rows += calls("asra", "49", WINDOW_DAY + at14, 30, answered=6)   # ASR 0.8 -> 0.2
    rows += calls("spik", "44", WINDOW_DAY + at14, 40)               # 10 a week -> 40
    rows += calls("acdy", "44", WINDOW_DAY + at14, 20, seconds=20)   # ACD 120 s -> 20 s
    rows += calls("shrt", "44", WINDOW_DAY + at14, 20, short=8)      # 8 of 20 under 10 s
    rows += calls("nova", "886", WINDOW_DAY + at14, 3)               # new; 886 is not listed
    # a destination last called 5 weeks ago is not new (history: 90 days)
    rows += calls("olga", "33", WINDOW_DAY - timedelta(weeks=5) + at14, 1)
    rows += calls("olga", "33", WINDOW_DAY + at14, 3)
    # losses: within the last 30 days (not 7), and one 43 days ago (outside every period)
    rows += calls("loss", "39", datetime(2026, 10, 20, 10), 50)
    rows += calls("olda", "39", datetime(2026, 9, 20, 10), 50)
    return rows


def write_calls(folder: Path, rows: list[tuple[str, str, datetime, int]], tag: str) -> Path:
    records = [contract_cdr(f"{tag}-{n}", NUMBER[prefix] + f"{n % 100:02d}",
                            at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), ms, customer=customer)
               for n, (customer, prefix, at, ms) in enumerate(rows)]
    return write_jsonl(folder / f"{tag}.jsonl", records)


def make_warehouse(tmp_path: Path, deck, rows) -> ratelab.Warehouse:  # type: ignore[no-untyped-def]
    wh = ratelab.connect(tmp_path / "warehouse.duckdb", create=True)
    wh.import_deck(deck(CUSTOMER_DECK, "cust.csv"), "cust", "customer")
    wh.import_deck(deck(VENDOR_DECK, "vend.csv"), "vend", "vendor")
    for customer in CUSTOMERS:
        wh.assign("cust", customer=customer)
    wh.assign("vend", vendor="carrier_x")
    write_calls(tmp_path / "spool", rows, "planted")
    wh.ingest(tmp_path / "spool")
    wh.rate()
    return wh


@pytest.fixture
def planted(tmp_path: Path, deck) -> ratelab.Warehouse:  # type: ignore[no-untyped-def]
    return make_warehouse(tmp_path, deck, planted_calls())


def fresh_group_by(wh: ratelab.Warehouse) -> pl.DataFrame:
    """The hourly aggregates computed independently from the rated calls, for comparison."""
    return wh.sql("""
        SELECT date_trunc('hour', r.start_ts) AS hour, coalesce(r.customer, '') AS customer,
               coalesce(r.destination, '') AS destination,
               count(*) AS calls, count(*) FILTER (WHERE r.answered) AS answered,
               sum(c.duration_ms) AS duration_ms,
               count(*) FILTER (WHERE r.answered AND c.duration_ms < 10000) AS short_calls,
               sum(r.revenue) AS revenue, sum(r.cost) AS cost,
               sum(r.revenue_base) AS revenue_base, sum(r.cost_base) AS cost_base,
               count(*) FILTER (WHERE r.revenue_fx_missing OR r.cost_fx_missing) AS fx_missing
        FROM rated_base r JOIN cdrs c USING (cdr_seq)
        GROUP BY ALL ORDER BY ALL""")


def stored_aggregates(wh: ratelab.Warehouse) -> pl.DataFrame:
    """The aggregates as the watch reads them: the stale hours aggregated first."""
    with wh.connection() as con:
        refresh_stale(con)
    return wh.sql("""
        SELECT hour, customer, destination, sum(calls) AS calls, sum(answered) AS answered,
               sum(duration_ms) AS duration_ms, sum(short_calls) AS short_calls,
               sum(revenue) AS revenue, sum(cost) AS cost, sum(revenue_base) AS revenue_base,
               sum(cost_base) AS cost_base, sum(fx_missing) AS fx_missing
        FROM watch_hourly GROUP BY ALL ORDER BY ALL""")


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return [tuple(map(str, r)) for r in a.rows()] == [tuple(map(str, r)) for r in b.rows()]


# -- the golden warehouse ---------------------------------------------------------------------


def test_planted_cases_are_found_and_look_alikes_are_not(planted: ratelab.Warehouse) -> None:
    golden = json.loads((GOLDEN / "planted.json").read_text())
    result = run_watch(planted, now=NOW)
    assert result.window == tuple(datetime.fromisoformat(t) for t in golden["window"])
    got = {f.id: f for f in result.findings}
    assert sorted(got) == sorted(g["id"] for g in golden["findings"])
    for expected in golden["findings"]:
        finding = got[expected["id"]]
        assert str(finding.severity) == expected["severity"], finding.id
        assert finding.numbers == expected["numbers"], finding.id
        assert finding.new and finding.first_seen <= datetime.now(UTC).replace(tzinfo=None)
    # most severe first, then by kind
    order = [(-f.severity, list(FindingKind).index(f.kind)) for f in result.findings]
    assert order == sorted(order)
    # nothing about the clean look-alikes
    assert not {f.customer for f in result.findings} & {"nite", "lowe", "olga", "olda"}


def test_findings_say_who_what_and_against_what(planted: ratelab.Warehouse) -> None:
    result = {f.id: f for f in run_watch(planted, now=NOW).findings}
    spike = result["traffic_spike/spik/United Kingdom/2026-11-02T14"]
    assert spike.summary == (
        "traffic spike: spik -> United Kingdom: 40 calls in 2026-11-02 14:00-15:00 UTC vs "
        "10.00 a week at this hour over 4 weeks (threshold 30)")
    assert (spike.customer, spike.destination, spike.window_start, spike.window_end) == (
        "spik", "United Kingdom", datetime(2026, 11, 2, 14), datetime(2026, 11, 2, 15))
    loss = result["loss_maker/loss/Italy/30d/2026-11-02"]
    assert loss.window_start == datetime(2026, 10, 3, 15)
    assert "profit -2.000000 USD over the last 30 days" in loss.summary


def test_a_second_run_raises_nothing_new_and_keeps_first_seen(
        planted: ratelab.Warehouse) -> None:
    first = run_watch(planted, now=NOW)
    second = run_watch(planted, now=NOW + timedelta(minutes=15))
    assert second.new == []
    assert second.window == (datetime(2026, 11, 2, 13), datetime(2026, 11, 2, 15))
    before = {f.id: f.first_seen for f in first.findings}
    for f in second.findings:   # the 14:00 hour and the loss maker are still current
        assert f.first_seen == before[f.id]
    assert {f.kind for f in second.findings} >= {FindingKind.TRAFFIC_SPIKE,
                                                 FindingKind.LOSS_MAKER}
    stored = findings(planted)
    assert stored.height == len(first.findings)
    assert stored["id"].n_unique() == stored.height
    assert stored.filter(pl.col("id") == "traffic_spike/spik/United Kingdom/2026-11-02T14")[
        "last_seen"][0] >= stored["first_seen"].min()


def test_new_traffic_in_the_hour_updates_a_finding_without_raising_it_again(
        planted: ratelab.Warehouse, tmp_path: Path) -> None:
    run_watch(planted, now=NOW)
    more = calls("spik", "44", datetime(2026, 11, 2, 14, 40), 70)   # 110 calls: critical
    write_calls(tmp_path / "spool", more, "later")
    planted.ingest(tmp_path / "spool")
    planted.rate(since=datetime(2026, 11, 2, 14, 40))
    result = run_watch(planted, now=datetime(2026, 11, 2, 14, 50))
    spike = next(f for f in result.findings if f.kind == FindingKind.TRAFFIC_SPIKE)
    assert not spike.new
    assert (spike.severity, spike.numbers["calls"]) == (Severity.CRITICAL, "110")
    assert findings(planted).filter(pl.col("id") == spike.id)["severity"].to_list() == [
        "critical"]


def test_traffic_seen_within_15_minutes(planted: ratelab.Warehouse, tmp_path: Path) -> None:
    run_watch(planted, now=NOW)
    # nova starts calling the listed range at 14:25: the 14:30 run sees it
    write_calls(tmp_path / "spool", calls("nova", "882", datetime(2026, 11, 2, 14, 25), 2),
                "fresh")
    planted.ingest(tmp_path / "spool")
    planted.rate(since=datetime(2026, 11, 2, 14))
    result = run_watch(planted, now=datetime(2026, 11, 2, 14, 30))
    assert [f.id for f in result.new] == ["high_risk/nova/882/2026-11-02T14",
                                          "new_destination/nova/International Networks/"
                                          "2026-11-02T14"]


def test_traffic_late_in_an_hour_is_seen_by_the_next_hours_run(
        planted: ratelab.Warehouse, tmp_path: Path) -> None:
    run_watch(planted, now=datetime(2026, 11, 2, 16, 50))
    # 16:55: nova calls the listed range; the next run is at 17:05, in the next hour
    write_calls(tmp_path / "spool", calls("nova", "882", datetime(2026, 11, 2, 16, 55), 1),
                "late")
    planted.ingest(tmp_path / "spool")
    planted.rate(since=datetime(2026, 11, 2, 16))
    result = run_watch(planted, now=datetime(2026, 11, 2, 17, 5))
    assert result.window == (datetime(2026, 11, 2, 16), datetime(2026, 11, 2, 18))
    assert "high_risk/nova/882/2026-11-02T16" in [f.id for f in result.new]


def test_a_read_only_warehouse_cannot_run_the_watch(planted: ratelab.Warehouse) -> None:
    reader = ratelab.connect(planted.path, read_only=True)
    with pytest.raises(PermissionError, match="read-only"):
        run_watch(reader, now=NOW)
    assert findings(reader).height == 0   # reading findings is fine


def test_findings_filters(planted: ratelab.Warehouse) -> None:
    run_watch(planted, now=NOW)
    critical = findings(planted, severity=Severity.CRITICAL)
    assert sorted(critical["kind"].to_list()) == ["acd_drop", "asr_drop", "high_risk",
                                                  "night_burst"]
    assert findings(planted, since=datetime(2999, 1, 1)).height == 0
    numbers = json.loads(critical.filter(pl.col("kind") == "asr_drop")["numbers"][0])
    assert numbers["asr"] == "0.200"


def test_thresholds_change_what_is_found(planted: ratelab.Warehouse) -> None:
    strict = WatchConfig(spike_factor=5, asr_drop=0.7, night_time_zone="Asia/Tokyo")
    ids = {f.id for f in run_watch(planted, now=NOW, config=strict).findings}
    assert "traffic_spike/spik/United Kingdom/2026-11-02T14" not in ids   # 40 < 5 x 10
    assert "asr_drop/asra/Germany/2026-11-02T14" not in ids               # drop 0.6 < 0.7
    # 02:00 UTC is 11:00 in Tokyo: not night there
    assert "night_burst/ivan/International Networks/2026-11-02T02" not in ids


def test_another_high_risk_list(planted: ratelab.Warehouse, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("prefix,label\n886,Taiwan premium (our list)\n")
    result = run_watch(planted, now=NOW, high_risk=mine)
    risky = [f for f in result.findings if f.kind == FindingKind.HIGH_RISK]
    # 3 answered calls: a warning (critical from 5 calls); 882 is not on this list
    assert [(f.id, f.severity, f.numbers["calls"]) for f in risky] == [
        ("high_risk/nova/886/2026-11-02T14", Severity.WARNING, "3")]


# -- money and exchange rates -------------------------------------------------------------------


def test_missing_exchange_rate_is_a_finding_and_a_later_rate_is_used(
        tmp_path: Path, deck) -> None:  # type: ignore[no-untyped-def]
    wh = ratelab.connect(tmp_path / "warehouse.duckdb", create=True)
    wh.import_deck(deck(CUSTOMER_DECK, "cust.csv"), "cust", "customer", currency="EUR")
    wh.import_deck(deck(VENDOR_DECK, "vend.csv"), "vend", "vendor")
    wh.assign("cust", customer="loss")
    wh.assign("vend", vendor="carrier_x")
    write_calls(tmp_path / "spool", calls("loss", "44", datetime(2026, 11, 1, 10), 10), "eur")
    wh.ingest(tmp_path / "spool")
    wh.rate()
    first = run_watch(wh, now=NOW)
    [missing] = [f for f in first.findings if f.kind == FindingKind.LOSS_MAKER]
    assert missing.id == "loss_maker/fx_missing/EUR/2026-11-02"
    assert missing.numbers == {"currency": "EUR", "base_currency": "USD",
                               "days": "2026-11-01", "pairs": "1"}
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))
    # revenue 10 x 0.02 EUR; cost 10 x 0.01 USD. At 0.4444444444 USD per EUR that is a loss,
    # converted per call as rated_base does: 10 x round(0.008888888888, 6) = 0.088890, where
    # converting the hour's sum would give 0.088889.
    with wh.connection() as con:
        fx.set_rate(con, "EUR", "0.4444444444", datetime(2026, 11, 1).date())
    second = run_watch(wh, now=NOW + timedelta(minutes=15))
    losses = {f.id: f for f in second.findings if f.kind == FindingKind.LOSS_MAKER}
    # 10:00 on Nov 1 is before the last day ([Nov 1 15:00, Nov 2 15:00)): 7 and 30 days only
    assert sorted(losses) == ["loss_maker/loss/United Kingdom/30d/2026-11-02",
                              "loss_maker/loss/United Kingdom/7d/2026-11-02"]
    assert losses["loss_maker/loss/United Kingdom/7d/2026-11-02"].numbers["profit"] == \
        "-0.011110"   # 0.088890 - 0.1
    assert wh.sql("SELECT DISTINCT revenue_fx FROM watch_hourly")["revenue_fx"].to_list() == [
        Decimal("0.4444444444")]
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))


# -- the aggregates ------------------------------------------------------------------------------


def test_aggregates_follow_rating_rerating_and_reingest(
        tmp_path: Path, deck) -> None:  # type: ignore[no-untyped-def]
    rows = calls("spik", "44", datetime(2026, 11, 2, 9, 50), 30, short=4)
    rows += calls("asra", "49", datetime(2026, 11, 2, 11), 12, answered=5)
    wh = make_warehouse(tmp_path, deck, rows)
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))
    assert stored_aggregates(wh)["calls"].sum() == 42
    # a new price for Germany from 11:00, re-rating a range that cuts an hour in two
    wh.import_deck(deck("prefix,destination,rate,increment,effective_from\n"
                        "49,Germany,0.0700,60/60,2026-11-02 11:00\n", "de.csv"),
                   "cust", "customer", mode="update")
    wh.rate(since=datetime(2026, 11, 2, 10, 30), until=datetime(2026, 11, 2, 11, 1))
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))
    germany = wh.sql("SELECT sum(revenue) AS r FROM watch_hourly "
                     "WHERE destination = 'Germany'")["r"][0]
    assert germany == Decimal("0.350000")   # 5 answered minutes at 0.07
    # a CDR that was quarantined, fixed and ingested again
    bad = tmp_path / "spool" / "fixed.jsonl"
    good = contract_cdr("fixed-1", "4420712345", "2026-11-02T12:10:00.000000Z", 3000,
                        customer="spik")
    bad.write_text(json.dumps(good)[:-2] + "\n")
    assert wh.ingest(tmp_path / "spool").quarantined == 1
    bad.write_text(json.dumps(good) + "\n")
    wh.ingest(tmp_path / "spool")
    wh.rate(since=datetime(2026, 11, 2, 12), until=datetime(2026, 11, 2, 13))
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))
    assert wh.sql("SELECT short_calls FROM watch_hourly WHERE hour = '2026-11-02 12:00'")[
        "short_calls"].to_list() == [1]


def test_rating_marks_hours_stale_and_the_watch_aggregates_what_it_reads(
        tmp_path: Path, deck) -> None:  # type: ignore[no-untyped-def]
    """Rating aggregates nothing itself; a run aggregates the stale hours its detectors read
    (its window and their history) and leaves older stale hours listed for a later reader."""
    old = calls("spik", "44", datetime(2026, 6, 1, 9), 3)   # months before the history
    wh = make_warehouse(tmp_path, deck, planted_calls() + old)
    assert wh.sql("SELECT count(*) AS n FROM watch_hourly")["n"][0] == 0
    assert wh.sql("SELECT min(lo) AS lo, max(hi) AS hi FROM watch_stale").row(0) == (
        datetime(2026, 6, 1, 9), hour_after(max(c[2] for c in planted_calls())))
    run_watch(wh, now=NOW)
    hours = wh.sql("SELECT min(hour) AS first, sum(calls) AS n FROM watch_hourly").row(0)
    assert hours[0] > datetime(2026, 6, 1, 10)             # the June call was not aggregated
    assert hours[1] == len(planted_calls())
    assert wh.sql("SELECT lo, hi FROM watch_stale").rows() == [
        (datetime(2026, 6, 1, 9), history_start_of(NOW))]  # listed, for whoever reads it
    assert same_rows(stored_aggregates(wh), fresh_group_by(wh))   # all of it, on request
    assert wh.sql("SELECT count(*) AS n FROM watch_stale")["n"][0] == 0
    # re-rating one hour marks only that hour
    wh.rate(since=datetime(2026, 11, 2, 14, 10), until=datetime(2026, 11, 2, 14, 20))
    assert wh.sql("SELECT lo, hi FROM watch_stale").rows() == [
        (datetime(2026, 11, 2, 14), datetime(2026, 11, 2, 15))]


def hour_after(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def history_start_of(now: datetime) -> datetime:
    """Where the first run's history starts (no run before it)."""
    import duckdb

    from ratelab.migrations import migrate
    from ratelab.watch.detect import history_start, watch_window
    con = duckdb.connect()
    migrate(con)
    return history_start(watch_window(con, now, WatchConfig()), WatchConfig())


def test_refresh_hourly_replaces_exactly_the_hours_it_is_given(
        planted: ratelab.Warehouse) -> None:
    before = stored_aggregates(planted)
    with planted.connection() as con:
        con.execute("UPDATE watch_hourly SET calls = calls + 1000")
        refresh_hourly(con, datetime(2026, 11, 2, 14, 30), datetime(2026, 11, 2, 14, 31))
        assert con.execute("SELECT count(*) FROM watch_hourly WHERE calls >= 1000 "
                           "AND hour = '2026-11-02 14:00'").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) = count(*) FILTER (WHERE calls >= 1000) "
                           "FROM watch_hourly WHERE hour <> '2026-11-02 14:00'"
                           ).fetchall() == [(True,)]
        refresh_hourly(con, None, None)
    assert same_rows(stored_aggregates(planted), before)


def test_migration_back_fills_a_warehouse_rated_before_004(
        tmp_path: Path, deck) -> None:  # type: ignore[no-untyped-def]
    """A warehouse an older ratelab left (schema 3: no aggregates, `rated` a table) gets its
    aggregates from the back-fill when it is opened, equal to a fresh GROUP BY."""
    import shutil

    import duckdb

    from ratelab.migrations import MIGRATIONS_DIR, available, current_version, migrate

    wh = make_warehouse(tmp_path / "new", deck, planted_calls())
    expected = fresh_group_by(wh)
    older = tmp_path / "migrations_1_to_3"
    older.mkdir()
    for migration in available()[:3]:
        shutil.copy(MIGRATIONS_DIR / migration.path.name, older)
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, older)
    con.execute(f"ATTACH '{wh.path}' AS src (READ_ONLY)")
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old' "
        "AND table_name <> 'schema_migrations'").fetchall()]
    for table in tables:   # the same data, in the old shape
        columns = ", ".join(c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'old' "
            "AND table_name = ? ORDER BY column_index", [table]).fetchall())
        con.execute(f"DELETE FROM old.main.{table}")   # rows a migration seeded (settings)
        con.execute(f"INSERT INTO old.main.{table} ({columns}) "
                    f"SELECT {columns} FROM src.main.{table}")
    assert con.execute("SELECT count(*) FROM old.main.rated").fetchall() == [
        (len(planted_calls()),)]
    con.execute("DETACH src")
    assert current_version(con) == 3
    con.close()
    reopened = ratelab.connect(path)               # migrations 004 and later run here
    assert reopened.schema_version() == available()[-1].version
    assert same_rows(stored_aggregates(reopened), expected)
    assert stored_aggregates(reopened)["calls"].sum() == len(planted_calls())


def test_the_back_fill_and_refresh_queries_agree(planted: ratelab.Warehouse) -> None:
    migration = (Path(ratelab.__file__).parent / "migrations" / "004_watch.sql").read_text()
    back_fill = migration[migration.index("INSERT INTO watch_hourly BY NAME"):]
    with planted.connection() as con:
        refresh_stale(con)
        by_refresh = con.execute("SELECT * FROM watch_hourly ORDER BY ALL").fetchall()
        con.execute("DELETE FROM watch_hourly")
        con.execute(back_fill)
        assert con.execute("SELECT * FROM watch_hourly ORDER BY ALL").fetchall() == by_refresh


# -- configuration and the high-risk list ---------------------------------------------------------


def test_config_from_toml(tmp_path: Path) -> None:
    good = tmp_path / "watch.toml"
    good.write_text('weeks = 6\nloss_days = [1, 7]\nloss_warning = "5.00"\n'
                    'night_start = 22\nnight_end = 5\nnight_time_zone = "Europe/Madrid"\n')
    config = WatchConfig.from_toml(good)
    assert (config.weeks, config.loss_days, config.loss_warning) == (6, (1, 7), Decimal("5.00"))
    assert config.is_night(23) and config.is_night(4) and not config.is_night(5)
    for text, message in (
        ("weks = 6\n", "unknown key 'weks'"),
        ("weeks = 0\n", "weeks: must be at least 1, got 0"),
        ("weeks = true\n", "weeks: must be a whole number"),
        ("loss_critical = 100.5\n", "loss_critical: give money as a string"),
        ('night_time_zone = "Mars/Olympus"\n', "night_time_zone: not an IANA time zone"),
        ("weeks = \n", "not valid TOML"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ValueError) as err:
            WatchConfig.from_toml(bad)
        assert str(err.value).startswith(str(bad)) and message in str(err.value), err.value


def test_severity_parse() -> None:
    assert Severity.parse("CRITICAL") is Severity.CRITICAL
    assert str(Severity.WARNING) == "warning"
    with pytest.raises(ValueError, match="choose info, warning or critical"):
        Severity.parse("loud")


def test_the_shipped_list_is_a_sample_and_valid() -> None:
    text = HIGH_RISK_DEFAULT.read_text()
    assert "SAMPLE" in text and "replace it" in text
    ranges = read_ranges(HIGH_RISK_DEFAULT)
    assert len(ranges) >= 20 and {"882", "881", "53"} <= {r.prefix for r in ranges}


def test_bad_high_risk_list_names_file_and_line(planted: ratelab.Warehouse,
                                                tmp_path: Path) -> None:
    bad = tmp_path / "risk.csv"
    bad.write_text("# ours\nprefix,label\n882,ok\n88a,typo\n883\n")
    with pytest.raises(ValueError) as err:
        run_watch(planted, now=NOW, high_risk=bad)
    assert f"{bad}:4: prefix '88a' is not 1-17 digits" in str(err.value)
    assert f"{bad}:5: expected 2 columns" in str(err.value)
    assert findings(planted).height == 0   # nothing stored


# -- each detector query on hand-made aggregates ----------------------------------------------


@pytest.mark.parametrize("query", ["traffic_spike", "new_destination", "asr_drop", "acd_drop",
                                   "short_calls", "night_burst", "loss_maker"])
def test_detector_query_golden(warehouse: ratelab.Warehouse, query: str) -> None:
    golden = json.loads((GOLDEN / "detectors.json").read_text())
    w = datetime(2026, 11, 2, 10)
    with warehouse.connection() as con:
        con.executemany(
            "INSERT INTO watch_hourly (hour, customer, destination, revenue_currency, "
            "cost_currency, calls, answered, duration_ms, short_calls, revenue_base, cost_base, "
            "revenue_fx, cost_fx, fx_missing) VALUES (?, ?, ?, 'USD', 'USD', ?, ?, ?, ?, ?, ?, "
            "1, 1, 0)",
            [[w + timedelta(hours=r[0]), *r[1:]] for r in golden["rows"]])
        con.execute(load_watch_sql("window_stats"),
                    {"win_lo": w, "win_hi": w + timedelta(hours=1), "weeks": 4})
        spec = golden["queries"][query]
        params = {**spec["params"], "win_lo": w, "night_hours": [w], "end": w + timedelta(hours=1)}
        sql = load_watch_sql(query)
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        got = con.execute(sql, used).fetchall()
    expected = [[r[0] if query == "loss_maker" else w + timedelta(hours=r[0]), *r[1:]]
                for r in spec["rows"]]
    assert [[str(v) for v in row] for row in got] == [[str(v) for v in row] for row in expected]
