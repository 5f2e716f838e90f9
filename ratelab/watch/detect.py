"""The detectors: each one a named query in ``ratelab/sql/watch/`` over the hourly aggregates
(the high-risk one over the window's rated calls), turned into findings with a severity, the
numbers that triggered it, a stable id and a summary line (docs/watch.md).

>>> from ratelab.examples import sample_warehouse
>>> result = run_watch(sample_warehouse(cdrs=20, rated=True), now=datetime(2026, 11, 2, 12))
>>> result.window
(datetime.datetime(2026, 11, 1, 13, 0), datetime.datetime(2026, 11, 2, 13, 0))
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb

from ratelab.watch.aggregates import HOUR, hour_floor, load_watch_sql, refresh_days, refresh_stale
from ratelab.watch.config import WatchConfig
from ratelab.watch.model import Draft, FindingKind, Severity, WatchResult
from ratelab.watch.ranges import HIGH_RISK_DEFAULT, load_ranges, read_ranges
from ratelab.watch.store import store_findings

if TYPE_CHECKING:  # importing Warehouse at run time would be circular
    from ratelab.warehouse import Warehouse

__all__ = ["Draft", "detect", "history_start", "run_watch", "watch_window"]


def run_watch(wh: Warehouse, *, now: datetime | None = None,
              config: WatchConfig | None = None,
              high_risk: str | Path | None = None) -> WatchResult:
    """Run every detector over the window before ``now`` (naive UTC, default the clock), store
    the findings in the warehouse (so the same finding is never new twice) and return them.

    The window is whole UTC hours up to and including the current (partial) one: it starts
    where the previous run's hour started (at least the previous hour, at most
    ``catch_up_hours`` back), so runs every 15 minutes see new traffic within 15 minutes and
    a finding keeps its id as its hour fills up. ``high_risk`` is a CSV ``prefix,label`` (default
    the sample list :data:`HIGH_RISK_DEFAULT`). Needs a read-write warehouse.

    >>> from ratelab.examples import sample_warehouse
    >>> wh = sample_warehouse(cdrs=20, rated=True)
    >>> first = run_watch(wh, now=datetime(2026, 11, 2, 12))
    >>> again = run_watch(wh, now=datetime(2026, 11, 2, 12, 15))
    >>> again.new
    []
    """
    wh._write()
    config = config or WatchConfig()
    ranges = read_ranges(high_risk if high_risk is not None else HIGH_RISK_DEFAULT)
    started = datetime.now(UTC).replace(tzinfo=None)
    now = now if now is not None else started
    with wh.connection() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            window = watch_window(con, now, config)
            refresh_stale(con, since=history_start(window, config))   # what rating marked
            load_ranges(con, ranges)
            drafts = detect(con, now, window, config)
            found = store_findings(con, drafts, seen_at=started)
            con.execute(
                """INSERT INTO watch_runs
                   SELECT coalesce(max(run_id), 0) + 1, $now, $lo, $hi, $started,
                          $finished, $n, $new FROM watch_runs""",
                {"now": now, "lo": window[0], "hi": window[1], "started": started,
                 "finished": datetime.now(UTC).replace(tzinfo=None), "n": len(found),
                 "new": sum(f.new for f in found)})
            con.execute("DROP TABLE IF EXISTS watch_window")
            con.execute("DROP TABLE IF EXISTS watch_risk")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return WatchResult(now=now, window=window, findings=found)


def watch_window(con: duckdb.DuckDBPyConnection, now: datetime,
                 config: WatchConfig) -> tuple[datetime, datetime]:
    """The hours a run at ``now`` looks at: [start, end of the current hour).

    >>> con = duckdb.connect(); from ratelab.migrations import migrate; _ = migrate(con)
    >>> watch_window(con, datetime(2026, 11, 2, 10, 15), WatchConfig())
    (datetime.datetime(2026, 11, 1, 11, 0), datetime.datetime(2026, 11, 2, 11, 0))
    """
    current = hour_floor(now)
    earliest = current - (config.catch_up_hours - 1) * HOUR
    rows = con.execute("SELECT now FROM watch_runs ORDER BY run_id DESC LIMIT 1").fetchall()
    start = earliest
    if rows:
        start = max(earliest, min(current - HOUR, hour_floor(rows[0][0])))
    return start, current + HOUR


def history_start(window: tuple[datetime, datetime], config: WatchConfig) -> datetime:
    """The first hour a run over ``window`` reads: the same hours of past weeks, the days a
    destination counts as new, the longest loss period.

    >>> history_start((datetime(2026, 11, 2), datetime(2026, 11, 3)), WatchConfig())
    datetime.datetime(2026, 8, 4, 0, 0)
    """
    lo, hi = window
    return min(lo - timedelta(days=max(7 * config.weeks, config.new_destination_days)),
               hi - timedelta(days=max(config.loss_days)))


def detect(con: duckdb.DuckDBPyConnection, now: datetime, window: tuple[datetime, datetime],
           config: WatchConfig) -> list[Draft]:
    """Every detector's findings for ``window`` (temp table ``watch_risk`` must be loaded).

    Builds the temp table ``watch_window`` (window_stats.sql), then runs each named query.
    """
    lo, hi = window
    con.execute(load_watch_sql("window_stats"), {"win_lo": lo, "win_hi": hi,
                                                 "weeks": config.weeks})
    zone = ZoneInfo(config.night_time_zone)
    hours = []
    hour = lo
    while hour < hi:
        if config.is_night(hour.replace(tzinfo=UTC).astimezone(zone).hour):
            hours.append(hour)
        hour += HOUR
    c = config
    drafts: list[Draft] = []
    for name, params, build in (
        ("traffic_spike", {"min_calls": c.spike_min_calls, "factor": c.spike_factor},
         _spike),
        ("new_destination", {"min_calls": c.new_destination_min_calls,
                             "days": c.new_destination_days, "win_lo": lo}, _new_destination),
        ("asr_drop", {"min_calls": c.ratio_min_calls, "drop": c.asr_drop}, _asr),
        ("acd_drop", {"min_answered": c.ratio_min_answered, "drop": c.acd_drop}, _acd),
        ("short_calls", {"min_answered": c.ratio_min_answered, "rise": c.short_call_rise},
         _short),
        ("night_burst", {"min_calls": c.night_min_calls, "factor": c.night_factor,
                         "night_hours": hours}, _night),
        ("high_risk", {"win_lo": lo, "win_hi": hi}, _high_risk),
    ):
        for row in _rows(con, load_watch_sql(name), params):
            drafts.append(build(row, c))
    drafts.extend(_losses(con, now, hi, c))
    return drafts


def _rows(con: duckdb.DuckDBPyConnection, sql: str,
          params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- building findings ---------------------------------------------------------------------


def _who(customer: str) -> str:
    return customer or "(no customer)"


def _dest(destination: str) -> str:
    return destination or "(unrated)"


def _hour_id(kind: FindingKind, customer: str, subject: str, hour: datetime) -> str:
    return f"{kind}/{_who(customer)}/{_dest(subject)}/{hour:%Y-%m-%dT%H}"


def _span(hour: datetime) -> str:
    return f"{hour:%Y-%m-%d %H:00}-{hour + HOUR:%H:00} UTC"


def _ratio(num: float | int | Decimal, den: float | int | Decimal) -> str:
    """A ratio as exact-looking text with 3 places ("0.412"); "-" when undefined."""
    if not den:
        return "-"
    value = Decimal(num) / Decimal(den)
    return str(value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _avg(total: int | Decimal, weeks: int) -> Decimal:
    """The per-week average at 2 places (weeks of 0 count as 1: no history means 0)."""
    return (Decimal(total) / max(weeks, 1)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _hour_draft(kind: FindingKind, severity: Severity, row: dict[str, Any], summary: str,
                numbers: dict[str, str], subject: str | None = None) -> Draft:
    hour: datetime = row["hour"]
    return Draft(id=_hour_id(kind, row["customer"], subject or row["destination"], hour),
                 kind=kind, severity=severity, customer=row["customer"] or None,
                 destination=row["destination"] or None, window_start=hour,
                 window_end=hour + HOUR, summary=summary, numbers=numbers)


def _volume(kind: FindingKind, row: dict[str, Any], min_calls: int, factor: float,
            critical: float, what: str) -> Draft:
    calls, weeks = int(row["calls"]), int(row["base_weeks"])
    baseline = _avg(row["base_calls"], weeks)
    threshold = max(Decimal(min_calls), Decimal(str(factor)) * baseline)
    severity = (Severity.CRITICAL if calls >= max(Decimal(min_calls),
                                                  Decimal(str(critical)) * baseline)
                else Severity.WARNING)
    summary = (f"{what}: {_who(row['customer'])} -> {_dest(row['destination'])}: {calls} calls "
               f"in {_span(row['hour'])} vs {baseline} a week at this hour over {weeks} "
               f"week{'s' if weeks != 1 else ''} (threshold {threshold.normalize():f})")
    return _hour_draft(kind, severity, row, summary, {
        "calls": str(calls), "baseline": str(baseline), "threshold": f"{threshold.normalize():f}",
        "history_calls": str(int(row["base_calls"])), "history_weeks": str(weeks),
        "factor": str(factor)})


def _spike(row: dict[str, Any], c: WatchConfig) -> Draft:
    return _volume(FindingKind.TRAFFIC_SPIKE, row, c.spike_min_calls, c.spike_factor,
                   c.spike_critical_factor, "traffic spike")


def _night(row: dict[str, Any], c: WatchConfig) -> Draft:
    return _volume(FindingKind.NIGHT_BURST, row, c.night_min_calls, c.night_factor,
                   c.night_critical_factor, "night burst")


def _new_destination(row: dict[str, Any], c: WatchConfig) -> Draft:
    calls = int(row["calls"])
    severity = Severity.WARNING if calls >= c.new_destination_warning_calls else Severity.INFO
    summary = (f"new destination: {_who(row['customer'])} -> {row['destination']}: {calls} "
               f"calls ({int(row['answered'])} answered) in {_span(row['hour'])}, none in the "
               f"{c.new_destination_days} days before")
    return _hour_draft(FindingKind.NEW_DESTINATION, severity, row, summary, {
        "calls": str(calls), "answered": str(int(row["answered"])),
        "history_days": str(c.new_destination_days), "history_calls": "0"})


def _asr(row: dict[str, Any], c: WatchConfig) -> Draft:
    asr = _ratio(row["answered"], row["calls"])
    base = _ratio(row["base_answered"], row["base_calls"])
    drop = Decimal(base) - Decimal(asr)
    severity = Severity.CRITICAL if drop >= Decimal(str(2 * c.asr_drop)) else Severity.WARNING
    summary = (f"ASR drop: {_who(row['customer'])} -> {_dest(row['destination'])}: ASR {asr} "
               f"({int(row['answered'])}/{int(row['calls'])}) in {_span(row['hour'])} vs {base} "
               f"at this hour in the last {c.weeks} weeks (drop {drop}, threshold {c.asr_drop})")
    return _hour_draft(FindingKind.ASR_DROP, severity, row, summary, {
        "asr": asr, "baseline_asr": base, "drop": str(drop), "threshold": str(c.asr_drop),
        "calls": str(int(row["calls"])), "answered": str(int(row["answered"])),
        "history_calls": str(int(row["base_calls"])),
        "history_answered": str(int(row["base_answered"]))})


def _seconds(duration_ms: int | Decimal, answered: int | Decimal) -> Decimal:
    return (Decimal(duration_ms) / Decimal(answered) / 1000).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)


def _acd(row: dict[str, Any], c: WatchConfig) -> Draft:
    acd = _seconds(row["duration_ms"], row["answered"])
    base = _seconds(row["base_duration_ms"], row["base_answered"])
    share = Decimal(row["duration_ms"]) * Decimal(row["base_answered"]) / (
        Decimal(row["answered"]) * Decimal(row["base_duration_ms"]))
    severity = (Severity.CRITICAL if share <= Decimal(str((1 - c.acd_drop) ** 2))
                else Severity.WARNING)
    summary = (f"ACD drop: {_who(row['customer'])} -> {_dest(row['destination'])}: ACD {acd} s "
               f"over {int(row['answered'])} answered calls in {_span(row['hour'])} vs {base} s "
               f"at this hour in the last {c.weeks} weeks (threshold: {c.acd_drop:.0%} lower)")
    return _hour_draft(FindingKind.ACD_DROP, severity, row, summary, {
        "acd_s": str(acd), "baseline_acd_s": str(base),
        "ratio": _ratio(Decimal(row["duration_ms"]) * Decimal(row["base_answered"]),
                        Decimal(row["answered"]) * Decimal(row["base_duration_ms"])),
        "threshold": str(c.acd_drop), "answered": str(int(row["answered"])),
        "history_answered": str(int(row["base_answered"]))})


def _short(row: dict[str, Any], c: WatchConfig) -> Draft:
    share = _ratio(row["short_calls"], row["answered"])
    base = _ratio(row["base_short_calls"], row["base_answered"])
    rise = Decimal(share) - Decimal(base)
    severity = (Severity.CRITICAL if rise >= Decimal(str(2 * c.short_call_rise))
                else Severity.WARNING)
    summary = (f"short calls: {_who(row['customer'])} -> {_dest(row['destination'])}: "
               f"{share} of {int(row['answered'])} answered calls under 10 s in "
               f"{_span(row['hour'])} vs {base} at this hour in the last {c.weeks} weeks "
               f"(rise {rise}, threshold {c.short_call_rise})")
    return _hour_draft(FindingKind.SHORT_CALLS, severity, row, summary, {
        "short_share": share, "baseline_short_share": base, "rise": str(rise),
        "threshold": str(c.short_call_rise), "short_calls": str(int(row["short_calls"])),
        "answered": str(int(row["answered"])),
        "history_short_calls": str(int(row["base_short_calls"])),
        "history_answered": str(int(row["base_answered"]))})


def _high_risk(row: dict[str, Any], c: WatchConfig) -> Draft:
    calls = int(row["calls"])
    # Attempts that nobody answered have cost nothing yet; answered ones are the revenue share.
    severity = (Severity.CRITICAL if calls >= c.high_risk_critical_calls
                else Severity.WARNING if row["answered"] else Severity.INFO)
    minutes = (Decimal(int(row["duration_ms"] or 0)) / 60000).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)
    summary = (f"high-risk range: {_who(row['customer'])} -> {row['prefix']} ({row['label']}): "
               f"{calls} calls, {int(row['answered'])} answered, {minutes} min in "
               f"{_span(row['hour'])} (listed range; critical from "
               f"{c.high_risk_critical_calls} calls, info while none is answered)")
    return _hour_draft(FindingKind.HIGH_RISK, severity, row, summary, {
        "calls": str(calls), "answered": str(int(row["answered"])), "minutes": str(minutes),
        "prefix": row["prefix"], "label": row["label"],
        "critical_calls": str(c.high_risk_critical_calls)}, subject=row["prefix"])


def _losses(con: duckdb.DuckDBPyConnection, now: datetime, end: datetime,
            c: WatchConfig) -> list[Draft]:
    """Loss makers over each trailing period, and one finding per currency whose missing
    exchange rates kept pairs out of the check (rather than refuse the whole watch)."""
    longest = max(c.loss_days)
    stale = [row[0] for row in con.execute(
        load_watch_sql("stale_fx_days"),
        {"lo": end - timedelta(days=longest), "hi": end}).fetchall()]
    if stale:  # exchange rates set or changed since these hours were aggregated
        refresh_days(con, stale)
    base = con.execute("SELECT value FROM settings WHERE key = 'base_currency'").fetchall()[0][0]
    drafts = []
    day = f"{now:%Y-%m-%d}"
    periods = sorted(c.loss_days)
    for row in _rows(con, load_watch_sql("loss_maker"), {"end": end, "periods": periods}):
        days = int(row["days"])
        start = end - timedelta(days=days)
        loss = -row["profit"]
        severity = (Severity.CRITICAL if loss >= c.loss_critical
                    else Severity.WARNING if loss >= c.loss_warning else Severity.INFO)
        who, dest = _who(row["customer"]), _dest(row["destination"])
        drafts.append(Draft(
            id=f"{FindingKind.LOSS_MAKER}/{who}/{dest}/{days}d/{day}",
            kind=FindingKind.LOSS_MAKER, severity=severity,
            customer=row["customer"] or None, destination=row["destination"] or None,
            window_start=start, window_end=end,
            summary=(f"loss maker: {who} -> {dest}: profit {row['profit']} {base} over the "
                     f"last {days} day{'s' if days > 1 else ''} (revenue {row['revenue']}, "
                     f"cost {row['cost']}, {int(row['calls'])} calls)"),
            numbers={"profit": str(row["profit"]), "revenue": str(row["revenue"]),
                     "cost": str(row["cost"]), "currency": base, "days": str(days),
                     "calls": str(int(row["calls"])),
                     "answered": str(int(row["answered"]))}))
    for row in _rows(con, load_watch_sql("loss_fx_missing"), {"end": end, "days": longest}):
        missing_days = [f"{d:%Y-%m-%d}" for d in row["days"]]
        shown = ", ".join(missing_days[:5]) + (" ..." if len(missing_days) > 5 else "")
        drafts.append(Draft(
            id=f"{FindingKind.LOSS_MAKER}/fx_missing/{row['currency']}/{day}",
            kind=FindingKind.LOSS_MAKER, severity=Severity.WARNING, customer=None,
            destination=None, window_start=end - timedelta(days=longest), window_end=end,
            summary=(f"loss makers not checked for {int(row['pairs'])} customer x destination "
                     f"pairs: no exchange rate {row['currency']} -> {base} on {shown}; set one "
                     f"with `ratelab fx set {row['currency']} RATE --date {missing_days[0]}`"),
            numbers={"currency": row["currency"], "base_currency": base,
                     "days": ",".join(missing_days), "pairs": str(int(row["pairs"]))}))
    return drafts

