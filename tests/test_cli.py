"""The ``ratelab`` console script, run for real in a subprocess against a temporary warehouse.

One module-scoped warehouse goes through the whole day of an analyst: import decks, assign
them, generate synthetic CDRs, ingest (twice), rate, report. Each test checks one step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ratelab.cli import SYNTHETIC_BANNER, _iter_commands, cli
from tests.helpers import DECKS, count, ok, query, ratelab

FIXTURES = Path(__file__).parent / "fixtures" / "decks"
TOP_COMMANDS = ("init", "deck", "assign", "calendar", "ingest", "quarantine", "rate", "summary",
                "routing", "generate", "demo", "report", "table", "fx", "check", "watch")


# -- help -----------------------------------------------------------------------------------

def test_help_lists_every_command() -> None:
    out = ok(ratelab("--help"))
    for name in TOP_COMMANDS:
        assert f"  {name} " in out, name
    assert set(cli.commands) == set(TOP_COMMANDS)
    deck_out = ok(ratelab("deck", "--help"))
    for name in ("import", "diff", "list"):
        assert f"  {name} " in deck_out


@pytest.mark.parametrize("path", [p for p in _iter_commands(cli) if p != "deck"])
def test_every_command_has_help_with_examples(path: str) -> None:
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


# -- a warehouse going through a day --------------------------------------------------------

@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with tollgate (vendor) and the standard price list (customer) imported."""
    path = tmp_path_factory.mktemp("cli") / "warehouse.duckdb"
    ok(ratelab("init", path))
    out = ok(ratelab("deck", "import", DECKS / "vendor_tollgate.csv", "--name", "vendor_tollgate",
                     "--side", "vendor", warehouse=path))
    assert "vendor_tollgate: imported 43 rows" in out
    assert "hint: vendor_tollgate prices nobody yet" in out
    ok(ratelab("deck", "import", DECKS / "customer_standard.csv", "--name", "standard",
               "--side", "customer", warehouse=path))
    return path


def test_bad_deck_is_rejected_whole(warehouse: Path) -> None:
    rows = "SELECT count(*) FROM rates WHERE table_name = 'vendor_tollgate'"
    imports = "SELECT count(*) FROM deck_imports"
    before = count(warehouse, rows), count(warehouse, imports)
    result = ratelab("deck", "import", FIXTURES / "many_errors.csv", "--name", "vendor_tollgate",
                     "--side", "vendor", warehouse=warehouse)
    assert result.returncode == 2
    assert "many_errors.csv:4: prefix '4x' is not all digits" in result.stderr
    assert "many_errors.csv:7: negative rate" in result.stderr
    assert "many_errors.csv:12: duplicate prefix 44" in result.stderr
    assert "nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert (count(warehouse, rows), count(warehouse, imports)) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deck", "import", DECKS / "vendor_tollgate.csv", "--name", "vendor_tollgate",
          "--side", "customer"], "is a vendor table, not a customer table"),
        (["assign", "no_such_table", "--customer", "acme"], "no rate table 'no_such_table'"),
        (["assign", "standard", "--vendor", "tollgate"], "it cannot price a vendor"),
        (["rate", "--since", "01/11/2026"], "is not a date"),
        (["ingest", "/no/such/spool"], "does not exist"),
        (["deck", "diff", DECKS / "vendor_tollgate.csv", "--name", "nope"],
         "no rate table 'nope'"),
        (["deck", "import", DECKS / "vendor_tollgate.csv", "--name", "x", "--side", "vendor",
          "--time-zone", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(warehouse: Path, args: list[object],
                                             message: str) -> None:
    result = ratelab(*args, warehouse=warehouse)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_commands_need_an_existing_warehouse(tmp_path: Path) -> None:
    result = ratelab("summary", warehouse=tmp_path / "none.duckdb")
    assert result.returncode == 2
    assert "no warehouse at" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()


def test_warehouse_from_environment(warehouse: Path) -> None:
    out = ok(ratelab("deck", "list", env={"RATELAB_WAREHOUSE": str(warehouse)}))
    assert "vendor_tollgate" in out and "standard" in out


@pytest.fixture(scope="module")
def assigned(warehouse: Path) -> Path:
    out = ok(ratelab("assign", "vendor_tollgate", "--vendor", "tollgate", warehouse=warehouse))
    assert "vendor_tollgate prices vendor tollgate" in out
    for customer in ("acme", "globex"):
        ok(ratelab("assign", "standard", "--customer", customer, "--from", "2026-01-01",
                   warehouse=warehouse))
    return warehouse


def test_assign(assigned: Path) -> None:
    rows = query(assigned, "SELECT table_name, party, side, kind, valid_from FROM assignments "
                           "ORDER BY party")
    assert [(t, p, s, k) for t, p, s, k, _ in rows] == [
        ("standard", "acme", "customer", "account"),
        ("standard", "globex", "customer", "account"),
        ("vendor_tollgate", "tollgate", "vendor", "account"),
    ]
    assert str(rows[0][4]).startswith("2026-01-01")
    out = ok(ratelab("deck", "list", warehouse=assigned))
    assert "acme, globex" in out
    assert "vendor_tollgate" in out and "43" in out


@pytest.fixture(scope="module")
def ingested(assigned: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    spool = tmp_path_factory.mktemp("spool")
    outputs = {"generate": ok(ratelab(
        "generate", spool, "--count", 3000, "--files", 3, "--seed", 11,
        "--prefixes-from", DECKS / "customer_standard.csv", warehouse=assigned))}
    outputs["first"] = ok(ratelab("ingest", spool, warehouse=assigned))
    outputs["second"] = ok(ratelab("ingest", spool, warehouse=assigned))
    outputs["rate"] = ok(ratelab("rate", warehouse=assigned))
    outputs["spool"] = str(spool)
    return outputs


def test_generate_and_ingest_is_idempotent(ingested: dict[str, str], assigned: Path) -> None:
    assert "wrote 3,000 SYNTHETIC CDRs" in ingested["generate"]
    assert "2 customers, 1 vendors, 51 prefixes" in ingested["generate"]
    assert "ingested 3000 CDRs from 3 files" in ingested["first"]
    assert "ingested 0 CDRs from 0 files (3 unchanged skipped)" in ingested["second"]
    assert count(assigned, "SELECT count(*) FROM cdrs") == 3000
    forced = ok(ratelab("ingest", ingested["spool"], "--force", warehouse=assigned))
    assert "ingested 0 CDRs from 3 files" in forced and "3000 already present" in forced
    assert count(assigned, "SELECT count(*) FROM cdrs") == 3000


def test_rate(ingested: dict[str, str], assigned: Path) -> None:
    assert "rated 3000 CDRs: revenue " in ingested["rate"]
    assert "none flagged" in ingested["rate"]
    assert count(assigned, "SELECT count(*) FROM rated WHERE status = 'ok'") == 3000
    again = ok(ratelab("rate", "--since", "2000-01-01", "--customer", "acme",
                       warehouse=assigned))
    acme = count(assigned, "SELECT count(*) FROM cdrs WHERE customer = 'acme'")
    assert f"rated {acme} CDRs" in again


def test_summary_shows_the_synthetic_banner(ingested: dict[str, str], assigned: Path) -> None:
    out = ok(ratelab("summary", warehouse=assigned))
    lines = out.splitlines()
    assert lines[0] == SYNTHETIC_BANNER
    assert lines[1] == "Margin by customer, USD"
    assert lines[2].split()[:4] == ["Customer", "Calls", "Answered", "ASR"]
    assert any(line.startswith("acme ") for line in lines)
    assert any(line.startswith("globex ") for line in lines)
    assert lines[-1].startswith("Total: 3,000 calls")
    by_vendor = ok(ratelab("summary", "--by", "vendor", warehouse=assigned))
    assert SYNTHETIC_BANNER in by_vendor and "tollgate" in by_vendor
    top = ok(ratelab("summary", "--by", "destination", "--top", 3, warehouse=assigned))
    assert "(top 3 of " in top


def test_quarantine(ingested: dict[str, str], assigned: Path) -> None:
    bad = Path(ingested["spool"]) / "broken.jsonl"
    bad.write_text('{"cdr_id": "x1"}\nnot json\n')
    out = ok(ratelab("ingest", ingested["spool"], warehouse=assigned))
    assert "2 quarantined" in out and "ratelab quarantine" in out
    listing = ok(ratelab("quarantine", warehouse=assigned))
    assert f"{bad}:1: missing or invalid start_ts" in listing
    assert f"{bad}:2: not valid JSON" in listing
    assert "2 quarantined line(s)" in listing
    one = ok(ratelab("quarantine", "--limit", 1, warehouse=assigned))
    assert "showing 1" in one


def test_deck_diff_shows_statuses(warehouse: Path) -> None:
    out = ok(ratelab("deck", "diff", DECKS / "vendor_tollgate_update.csv",
                     "--name", "vendor_tollgate", "--as-of", "2026-11-28", warehouse=warehouse))
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isdigit()}
    assert " increase " in rows["447"] and "SHORT NOTICE" in rows["447"]
    assert " increase " in rows["2348"] and "SHORT NOTICE" not in rows["2348"]
    assert " decrease " in rows["1"]
    assert " new " in rows["9111"]
    assert " closed " in rows["337"]
    assert "44" not in rows  # unchanged rows are listed only with --all
    assert "2 new, 4 increase, 2 decrease, 36 unchanged, 1 closed" in out
    assert "WARNING: 2 increase(s) on short notice" in out and "447 (2026-12-01)" in out
    everything = ok(ratelab("deck", "diff", DECKS / "vendor_tollgate_update.csv", "--name",
                            "vendor_tollgate", "--as-of", "2026-11-28", "--all",
                            warehouse=warehouse))
    assert any(line.startswith("44 ") and " unchanged " in line
               for line in everything.splitlines())


def test_deck_diff_of_a_bad_deck(warehouse: Path) -> None:
    result = ratelab("deck", "diff", FIXTURES / "bad_number.csv", "--name", "vendor_tollgate",
                     warehouse=warehouse)
    assert result.returncode == 2
    assert "bad_number.csv:4:" in result.stderr
    assert "not compared" in result.stderr


def test_assign_says_when_a_replacement_starts(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    ok(ratelab("init", wh))
    for name in ("vendor_tollgate", "vendor_meridian"):
        ok(ratelab("deck", "import", DECKS / f"{name}.csv", "--name", name, "--side", "vendor",
                   warehouse=wh))
    first = ok(ratelab("assign", "vendor_tollgate", "--vendor", "v", warehouse=wh))
    assert "from the beginning on" in first
    second = ok(ratelab("assign", "vendor_meridian", "--vendor", "v", warehouse=wh))
    assert "the beginning" not in second  # it takes over from now, history kept
    assert count(wh, "SELECT count(*) FROM assignments WHERE party = 'v'") == 2


def test_calendar_show_and_day(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    ok(ratelab("init", wh))
    ok(ratelab("deck", "import", DECKS / "vendor_tollgate.csv", "--name", "v", "--side", "vendor",
               warehouse=wh))
    out = ok(ratelab("calendar", "show", warehouse=wh))
    assert "Mon" in out and "08:00" in out and "20:00" in out and "24:00" in out
    out = ok(ratelab("calendar", "day", "2026-12-25", "--band", "weekend", "--note", "Christmas",
                     warehouse=wh))
    assert "2026-12-25 is priced as weekend" in out
    assert "Christmas" in ok(ratelab("calendar", "show", warehouse=wh))
    bad = ratelab("calendar", "show", "nope", warehouse=wh)
    assert bad.returncode == 2 and "no work calendar 'nope'" in bad.stderr
