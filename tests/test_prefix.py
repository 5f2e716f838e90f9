import bisect
import itertools
import random

import duckdb
import pytest

from ratelab.prefix import NUMBER_KEY_SQL, longest_prefix, number_key, prefix_range, segments


def match(number: str, segs) -> str | None:
    """What the SQL ASOF join does: the last segment with lo <= key, then key < hi."""
    key = number_key(number)
    i = bisect.bisect_right([s.lo for s in segs], key) - 1
    return segs[i].prefix if i >= 0 and key < segs[i].hi else None


def test_mixed_depth_deck_matches_longest_prefix():
    segs = list(segments(["34", "346", "3462", "44", "1"]))
    assert match("34621234567", segs) == "3462"
    assert match("34631234567", segs) == "346"
    assert match("34112345", segs) == "34"
    assert match("3", segs) is None
    assert match("346", segs) == "346"
    assert match("99", segs) is None


def test_short_number_does_not_match_longer_prefix_padded_with_zeros():
    segs = list(segments(["44", "440"]))
    assert match("44", segs) == "44"
    assert match("440", segs) == "440"
    assert match("4401", segs) == "440"


def test_segments_are_disjoint_and_ordered():
    segs = list(segments(["9", "99", "999", "1", "12", "19"]))
    for a, b in itertools.pairwise(segs):
        assert a.lo < a.hi <= b.lo


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_reference_on_random_decks(seed):
    rng = random.Random(seed)
    prefixes = {
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6))) for _ in range(300)
    }
    segs = list(segments(prefixes))
    for _ in range(3000):
        number = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
        assert match(number, segs) == longest_prefix(number, prefixes), number


def test_edges_of_the_key_space():
    lo, hi = prefix_range("99999999999999999")
    # a full-length prefix covers only itself
    assert lo == number_key("99999999999999999") and hi == lo + 2
    assert hi < 2**63
    with pytest.raises(ValueError, match="digits"):
        number_key("+44")
    with pytest.raises(ValueError, match="digits"):
        prefix_range("")


@pytest.mark.parametrize("number", ["", "0", "44", "4" * 17, "4" * 18, "+44", " 44", "44 ",
                                    "4\n", "\u0664\u0664", "4a4", None])
def test_the_sql_key_is_the_python_key(number: str | None) -> None:
    """Ingest keys numbers in SQL, decks in Python: both must agree, NULL for a non-number."""
    try:
        want = number_key(number) if number is not None else None
    except ValueError:
        want = None
    got = duckdb.sql(f"SELECT {NUMBER_KEY_SQL.format(n='$n')}", params={"n": number}).fetchall()
    assert got == [(want,)]
