"""Currencies: exchange rates, conversion to the base currency, refusal when a rate is missing.

The golden case is tests/golden/fx/conversions.json (input decks, rates and CDRs; expected
rows, computed by hand): a EUR vendor deck under a USD base, rates changing on UTC day
boundaries, half-up rounding at the 7th decimal, and a day with no rate refused.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import ratelab
from ratelab import fx, reports
from ratelab.reports import MissingRateError
from tests.helpers import contract_cdr, write_jsonl
from tests.reports_fixtures import plain, same

GOLDEN = json.loads((Path(__file__).parent / "golden" / "fx" / "conversions.json").read_text())


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> ratelab.Warehouse:
    root = tmp_path_factory.mktemp("fx")
    warehouse = ratelab.connect(root / "w.duckdb", create=True)
    for deck in GOLDEN["decks"]:
        path = root / f"{deck['name']}.csv"
        path.write_text(deck["csv"])
        warehouse.import_deck(path, deck["name"], deck["side"], currency=deck["currency"])
        warehouse.assign(deck["name"], **deck["assign"])
    rates = root / "fx.csv"
    rates.write_text(GOLDEN["fx"])
    warehouse.import_fx(rates)
    write_jsonl(root / "spool" / "c.jsonl", [
        contract_cdr(c["id"], "441234567890", c["start"] + "Z", 60_000, customer="acme",
                     vendor="carrier_eu") for c in GOLDEN["cdrs"]])
    assert warehouse.ingest(root / "spool").added == len(GOLDEN["cdrs"])
    warehouse.rate()
    return warehouse


def _rows(frame) -> list[dict]:
    return [{k: plain(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _check(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w), list(g)
        for column in w:
            assert same(g[column], w[column]), (column, g, w)


def test_rated_base_converts_at_the_rate_of_the_calls_day(wh) -> None:
    columns = ", ".join(GOLDEN["rated_base"][0])
    frame = wh.sql(f"SELECT {columns} FROM rated_base r JOIN cdrs c USING (cdr_seq) "
                   "ORDER BY r.start_ts")
    _check(_rows(frame), GOLDEN["rated_base"])


def test_margin_by_is_in_the_base_currency(wh) -> None:
    case = GOLDEN["margin_by"]
    _check(_rows(reports.margin_by(wh, case["start"], case["end"], by=case["by"])), case["rows"])


def test_a_missing_rate_is_refused_naming_currency_and_days(wh) -> None:
    case = GOLDEN["refused"]
    for call in (lambda: reports.margin_by(wh, case["start"], case["end"]),
                 lambda: wh.margin_summary("customer"),
                 lambda: wh.headline(),
                 lambda: reports.margin_by_day(wh, case["start"], case["end"]),
                 lambda: reports.break_even(wh, case["start"], case["end"], "1"),
                 lambda: reports.rate_deviation(wh, case["start"], case["end"])):
        with pytest.raises(MissingRateError) as caught:
            call()
        assert case["message"] in str(caught.value)
        assert caught.value.missing == {
            case["currency"]: [date.fromisoformat(d) for d in case["days"]]}
        assert "ratelab fx set EUR RATE --date 2026-10-31" in str(caught.value)


def test_settlement_stays_per_currency_unconverted(wh) -> None:
    case = GOLDEN["settlement_summary"]
    frame = reports.settlement_summary(wh, case["start"], case["end"], period=case["period"])
    _check(_rows(frame), case["rows"])


def test_setting_the_missing_rate_lets_the_summary_run(tmp_path) -> None:
    warehouse = ratelab.sample_warehouse(cdrs=5, rated=True, directory=tmp_path / "s")
    assert warehouse.headline()["currency"].to_list() == ["USD"]


def test_python_convert_matches_duckdb(wh) -> None:
    # The documented rule (half up to 6 places, once per call) in Python and in the view agree
    # on random amounts and rates, including exact halves.
    rng = random.Random(13)
    cases = []
    for _ in range(300):
        amount = Decimal(rng.randrange(0, 10**9)).scaleb(-6)
        rate = Decimal(rng.randrange(1, 10**12)).scaleb(-10)
        cases.append((amount, rate))
    cases.append((Decimal("0.000001"), Decimal("0.5")))
    got = wh.sql(
        "SELECT CAST(round(CAST(a AS DECIMAL(38, 6)) * CAST(r AS DECIMAL(38, 10)), 6) "
        "AS DECIMAL(18, 6)) AS v FROM (SELECT unnest($a) AS a, unnest($r) AS r)",
        {"a": [str(c[0]) for c in cases], "r": [str(c[1]) for c in cases]})["v"].to_list()
    assert got == [fx.convert(a, r) for a, r in cases]


def test_fx_file_problems_are_reported_and_nothing_imported(tmp_path) -> None:
    warehouse = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    bad = tmp_path / "fx.csv"
    bad.write_text("date,currency,rate\n2026-11-01,EUR,1.08\n2026-13-01,EUR,1.1\n"
                   "2026-11-02,EURO,1.1\n2026-11-03,GBP,-1\n2026-11-04,GBP,1,27\n")
    with pytest.raises(fx.FxError) as caught:
        warehouse.import_fx(bad)
    assert [str(p) for p in caught.value.problems] == [
        f"{bad}:3: date '2026-13-01' is not YYYY-MM-DD",
        f"{bad}:4: currency 'EURO' is not a three-letter code such as EUR",
        f"{bad}:5: rate '-1' is not above 0",
        f"{bad}:6: expected 3 columns, found 4 (a decimal comma? write rates with a dot: 1.27)",
    ]
    assert warehouse.fx_rates().height == 0


def test_set_one_rate_and_replace_it(tmp_path) -> None:
    warehouse = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    warehouse.set_fx("EUR", "1.08", date(2026, 11, 1))
    warehouse.set_fx("EUR", Decimal("1.09"), date(2026, 11, 1))
    assert warehouse.fx_rates().select("currency", "rate").rows() == [
        ("EUR", Decimal("1.0900000000"))]
    with pytest.raises(ValueError, match="base currency"):
        warehouse.set_fx("USD", "1", date(2026, 11, 1))
    with pytest.raises(TypeError):
        warehouse.set_fx("EUR", 1.1, date(2026, 11, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot change"):
        warehouse.set_base_currency("EUR")


def test_cli_fx_group(tmp_path) -> None:
    # The group as the CLI registers it (`ratelab fx ...`), invoked with the CLI's state.
    from click.testing import CliRunner

    from ratelab.cli import _State
    from ratelab.cli.fx import fx as fx_group

    warehouse = ratelab.sample_warehouse(cdrs=1, directory=tmp_path / "s")
    state = _State(warehouse.path)
    runner = CliRunner()
    done = runner.invoke(fx_group, ["set", "eur", "1.08", "--date", "2026-11-01"], obj=state)
    assert done.exit_code == 0, done.output
    assert "1 EUR = 1.08 USD from 2026-11-01 (UTC)" in done.output
    rates = tmp_path / "rates.csv"
    rates.write_text("date,currency,rate\n2026-11-02,GBP,1.27\n")
    done = runner.invoke(fx_group, ["import", str(rates)], obj=state)
    assert done.exit_code == 0 and "1 exchange rates (1 new, 0 replaced)" in done.output
    bad = tmp_path / "bad.csv"
    bad.write_text("date,currency,rate\n2026-11-02,GBP,x\n")
    done = runner.invoke(fx_group, ["import", str(bad)], obj=state)
    assert done.exit_code == 2
    assert f"{bad}:2: rate 'x' is not a number" in done.output
    listed = runner.invoke(fx_group, ["list"], obj=state)
    assert listed.exit_code == 0 and "1.08" in listed.output and "GBP" in listed.output
    assert warehouse.fx_rates().height == 2
    shown = runner.invoke(fx_group, ["base"], obj=state)
    assert (shown.exit_code, shown.output) == (0, "USD\n")
    refused = runner.invoke(fx_group, ["base", "EUR"], obj=state)   # rates are quoted in USD
    assert refused.exit_code != 0 and warehouse.base_currency() == "USD"


def test_cli_sets_the_base_currency_before_any_rate(tmp_path) -> None:
    from tests.helpers import ratelab as run_cli

    warehouse = ratelab.sample_warehouse(cdrs=5, rated=True, directory=tmp_path / "s")
    done = run_cli("fx", "base", "eur", warehouse=warehouse.path)
    assert done.returncode == 0 and "base currency EUR (was USD)" in done.stdout
    assert warehouse.base_currency() == "EUR"
    # the sample decks are USD: with a EUR base, a summary needs a USD rate and says so
    summary = run_cli("summary", warehouse=warehouse.path)
    assert summary.returncode == 1 and "USD" in summary.stderr
    bad = run_cli("fx", "base", "euro", warehouse=warehouse.path)
    assert bad.returncode == 2 and "three-letter code" in bad.stderr


def test_rate_summary_never_adds_currencies(wh) -> None:
    summary = wh.rate()      # the golden CDRs include a day without a EUR rate
    assert summary.by_currency == {"EUR": (Decimal("0"), Decimal("0.060000")),
                                   "USD": (Decimal("0.120000"), Decimal("0"))}
    assert summary.missing_fx == ["EUR"] and summary.currency == "USD"
    assert summary.revenue is None and summary.cost is None and summary.profit is None
    assert ("revenue 0.000000 EUR + 0.120000 USD, cost 0.060000 EUR + 0.000000 USD "
            "(not converted: no USD rate for EUR on some days") in str(summary)


def test_rate_summary_converts_like_the_reports(wh) -> None:
    # the days that have rates: the summary's base amounts are margin_summary's, to the digit
    summary = wh.rate(since=datetime(2026, 11, 1), until=datetime(2026, 11, 6))
    assert summary.missing_fx == [] and summary.currency == "USD"
    frame = reports.margin_by(wh, "2026-11-01", "2026-11-06", by="customer")
    assert (summary.revenue, summary.cost) == (frame["revenue"].sum(), frame["cost"].sum())
    assert summary.cost == Decimal("0.054002")            # the what-if golden's "before"
    assert str(summary).startswith(f"rated {summary.cdrs} CDRs: revenue {summary.revenue} USD")
    assert "(converted from EUR, USD)" in str(summary)


def test_what_if_compares_in_the_base_currency(wh) -> None:
    # carrier_eu's EUR costs, +10 %: 0.0100 -> 0.0110 EUR per minute. In USD at each day's rate:
    # before 0.011 + 0.011 + 0.012 + 0.010001 + 0.010001 = 0.054002; after 0.0121 + 0.0121 +
    # 0.0132 + 0.01100055 -> 0.011001 (half up) twice = 0.059402.
    frame = reports.what_if(wh, "2026-11-01", "2026-11-06", vendor="carrier_eu", change_pct="10")
    row = frame.row(0, named=True)
    assert (row["revenue"], row["cost_before"], row["cost_after"]) == (
        Decimal("0.100000"), Decimal("0.054002"), Decimal("0.059402"))
    assert frame["currency"].to_list() == ["USD"]         # every money column says its currency
    with pytest.raises(MissingRateError):
        reports.what_if(wh, "2026-10-31", "2026-11-06", vendor="carrier_eu", change_pct="10")
