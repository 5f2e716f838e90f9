"""Tests for ratelab.finance, including the worked examples from the VOS3000 articles."""

import dataclasses
import decimal
from decimal import Decimal

import pytest

from ratelab.finance import (
    BreakEven,
    auto_create_rate,
    billable_seconds,
    billed_seconds,
    break_even,
    call_charge,
    margin,
    markup,
)
from ratelab.money import money_context, quantize

# --- margin and markup ---------------------------------------------------------------


def test_article_margin_example() -> None:
    # Price 0.015 over cost 0.010 is a 33.33% margin.
    assert quantize(margin("0.015", "0.010"), 4) == Decimal("0.3333")


def test_margin_is_unrounded() -> None:
    result = margin("0.015", "0.010")
    assert result != Decimal("0.3333")
    assert str(result) == "0." + "3" * 50


@pytest.mark.parametrize(
    ("price", "cost", "expected_margin", "expected_markup"),
    [
        ("0.02", "0.015", "0.25", "0.3333"),
        ("0.0125", "0.010", "0.2", "0.25"),
        ("0.010", "0.010", "0", "0"),
        ("0.008", "0.010", "-0.25", "-0.2"),
        (2, 1, "0.5", "1"),
    ],
)
def test_margin_and_markup(
    price: str | int, cost: str | int, expected_margin: str, expected_markup: str
) -> None:
    assert quantize(margin(price, cost), 4) == Decimal(expected_margin)
    assert quantize(markup(price, cost), 4) == Decimal(expected_markup)


def test_margin_zero_price() -> None:
    with pytest.raises(ValueError, match="price is zero: margin is undefined"):
        margin("0", "0.010")
    with pytest.raises(ValueError, match="price is zero"):
        margin(Decimal("0.000"), 0)


def test_markup_zero_cost() -> None:
    with pytest.raises(ValueError, match="cost is zero: markup is undefined"):
        markup("0.010", "0")


@pytest.mark.parametrize("func", [margin, markup])
def test_margin_markup_reject_float(func: object) -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        func(0.015, "0.010")  # type: ignore[operator]
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        func("0.015", 0.010)  # type: ignore[operator]


def test_margin_ignores_caller_context() -> None:
    with decimal.localcontext(prec=2, rounding=decimal.ROUND_FLOOR):
        result = margin("0.015", "0.010")
    assert str(result) == "0." + "3" * 50


# --- auto_create_rate ----------------------------------------------------------------


def test_article_auto_create_rate_margin() -> None:
    # Cost 0.008 at a 25% margin: 0.008 / 0.75 = 0.0106666..., rounded up at 6 places.
    rate = auto_create_rate("0.008", margin="0.25")
    assert rate == Decimal("0.010667")
    assert str(rate) == "0.010667"
    assert quantize(margin(rate, "0.008"), 4) == Decimal("0.2500")


def test_article_margin_is_not_markup() -> None:
    cost = Decimal("0.008")
    by_margin = auto_create_rate(cost, margin="0.25")
    by_markup = auto_create_rate(cost, markup="0.25")
    assert by_markup == Decimal("0.010000")
    assert by_markup != by_margin
    # The markup behind a 25% margin is a third, not a quarter.
    assert quantize(markup("0.02", "0.015"), 4) == Decimal("0.3333")
    assert quantize(markup(by_margin, cost), 3) == Decimal("0.333")
    # And a 25% markup is only a 20% margin.
    assert margin(by_markup, cost) == Decimal("0.2")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"margin": "0.25"}, "0.010667"),
        ({"margin": "0.25", "rounding": "half_up"}, "0.010667"),
        ({"margin": "0.25", "rounding": "down"}, "0.010666"),
        ({"margin": "0.25", "places": 4}, "0.0107"),
        ({"margin": "0"}, "0.008000"),
        ({"margin": "-0.25"}, "0.006400"),
        ({"markup": "0.25"}, "0.010000"),
        ({"markup": 1}, "0.016000"),
        ({"markup": "0.3333333"}, "0.010667"),
        ({"fixed": "0.002"}, "0.010000"),
        ({"fixed": "0.0000001"}, "0.008001"),
        ({"fixed": 0}, "0.008000"),
    ],
)
def test_auto_create_rate_policies(kwargs: dict[str, object], expected: str) -> None:
    rate = auto_create_rate("0.008", **kwargs)  # type: ignore[arg-type]
    assert rate == Decimal(expected)
    assert str(rate) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"margin": "0.25", "min_rate": "0.012"}, "0.012000"),
        ({"margin": "0.25", "min_rate": "0.010"}, "0.010667"),
        ({"margin": "0.25", "max_rate": "0.0105"}, "0.010500"),
        ({"margin": "0.25", "max_rate": "0.011"}, "0.010667"),
        ({"margin": "0.25", "min_rate": "0.010667", "max_rate": "0.010667"}, "0.010667"),
        ({"fixed": "0.002", "min_rate": 0, "max_rate": "0.0095"}, "0.009500"),
    ],
)
def test_auto_create_rate_clamps(kwargs: dict[str, object], expected: str) -> None:
    rate = auto_create_rate("0.008", **kwargs)  # type: ignore[arg-type]
    assert str(rate) == expected


def test_auto_create_rate_clamps_after_rounding() -> None:
    # Rounding up would give 0.010667; the cap applies afterwards.
    assert auto_create_rate("0.008", margin="0.25", max_rate="0.010666") == Decimal("0.010666")


def test_auto_create_rate_zero_cost() -> None:
    assert auto_create_rate(0, margin="0.3") == Decimal("0")
    assert auto_create_rate(0, margin="0.3", min_rate="0.001") == Decimal("0.001")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of margin, markup or fixed; got none"),
        ({"margin": "0.25", "markup": "0.25"}, "got margin and markup"),
        ({"margin": "0.25", "fixed": "0.001"}, "got margin and fixed"),
        ({"margin": "0.1", "markup": "0.1", "fixed": "0.1"}, "got margin and markup and fixed"),
        ({"margin": "1"}, "margin must be below 1"),
        ({"margin": "1.5"}, "margin must be below 1"),
        ({"margin": 25}, "margin must be below 1"),
        ({"markup": "-2"}, "negative rate"),
        ({"fixed": "-0.009"}, "negative rate"),
        ({"margin": "0.25", "min_rate": "0.02", "max_rate": "0.01"}, "above max_rate"),
        ({"margin": "0.25", "min_rate": "0.0100001"}, "more than 6 decimal places"),
        ({"margin": "0.25", "max_rate": "0.0100001"}, "more than 6 decimal places"),
        ({"margin": "0.25", "rounding": "ceiling"}, "rounding must be one of"),
    ],
)
def test_auto_create_rate_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auto_create_rate("0.008", **kwargs)  # type: ignore[arg-type]


def test_auto_create_rate_negative_cost() -> None:
    with pytest.raises(ValueError, match="cost must not be negative"):
        auto_create_rate("-0.008", margin="0.25")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"margin": 0.25},
        {"markup": 0.25},
        {"fixed": 0.002},
        {"margin": "0.25", "min_rate": 0.01},
        {"margin": "0.25", "max_rate": 0.02},
    ],
)
def test_auto_create_rate_rejects_float(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        auto_create_rate("0.008", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        auto_create_rate(0.008, margin="0.25")  # type: ignore[arg-type]


def test_auto_create_rate_policy_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        auto_create_rate("0.008", "0.25")  # type: ignore[misc]


# --- break_even ----------------------------------------------------------------------


def test_article_break_even() -> None:
    # 2,000 of fixed cost at 0.002 profit per minute, 3-minute calls, over 30 days.
    be = break_even("2000", "0.002", "3")
    assert be.period_days == 30
    assert be.minutes == Decimal(1_000_000)
    assert str(be.minutes) == "1000000"
    assert quantize(be.calls, 0, "down") == Decimal(333_333)
    assert quantize(be.cps, 2) == Decimal("0.13")
    assert str(be) == (
        "break-even over 30 days: 1,000,000 minutes, 333,333 calls, 0.13 calls per second"
    )


def test_break_even_keeps_full_precision() -> None:
    be = break_even("2000", "0.002", "3")
    assert be.calls != Decimal(333_333)
    assert str(be.calls).startswith("333333.33333333333333333333")
    with money_context():
        assert be.cps == be.calls / (30 * 86_400)


def test_break_even_period() -> None:
    be = break_even(1000, "0.01", 2, period_days=1)
    with money_context():
        cps = Decimal(50_000) / Decimal(86_400)
    assert be == BreakEven(minutes=Decimal(100_000), calls=Decimal(50_000), cps=cps, period_days=1)
    assert str(be).startswith("break-even over 1 day: 100,000 minutes, 50,000 calls, 0.58")


def test_break_even_is_frozen() -> None:
    be = break_even("2000", "0.002", "3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        be.minutes = Decimal(0)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("2000", "0", "3"), {}, "no break-even: each minute loses money or makes none"),
        (("2000", "-0.001", "3"), {}, "no break-even: each minute loses money or makes none"),
        (("2000", "0.002", "0"), {}, "avg_call_minutes"),
        (("2000", "0.002", "-3"), {}, "avg_call_minutes"),
        (("2000", "0.002", "3"), {"period_days": 0}, "period_days"),
        (("-1", "0.002", "3"), {}, "fixed_costs"),
    ],
)
def test_break_even_errors(args: tuple[str, ...], kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        break_even(*args, **kwargs)


def test_break_even_type_errors() -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        break_even(2000.0, "0.002", "3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="period_days"):
        break_even("2000", "0.002", "3", period_days=30.0)  # type: ignore[arg-type]


# --- billed_seconds and billable_seconds ---------------------------------------------


@pytest.mark.parametrize(
    ("duration_s", "first", "cycle", "expected"),
    [
        (32, 30, 6, 36),
        (57, 30, 6, 60),
        (75, 30, 6, 78),
        (1, 30, 6, 30),
        (30, 30, 6, 30),
        (31, 30, 6, 36),
        (36, 30, 6, 36),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (61, 60, 60, 120),
        (61, 1, 1, 61),
        (1, 1, 1, 1),
        (0, 30, 6, 0),
        (0, 60, 60, 0),
        (0, 1, 1, 0),
        (7, 0, 6, 12),
        (6, 0, 6, 6),
    ],
)
def test_billed_seconds(duration_s: int, first: int, cycle: int, expected: int) -> None:
    result = billed_seconds(duration_s, first, cycle)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 30, 6), "duration_s"),
        ((10, -1, 6), "first"),
        ((10, 30, 0), "cycle"),
        ((10, 30, -6), "cycle"),
    ],
)
def test_billed_seconds_errors(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        billed_seconds(*args)


@pytest.mark.parametrize("args", [(32.0, 30, 6), (32, 30.0, 6), (32, 30, True)])
def test_billed_seconds_type_errors(args: tuple[object, object, object]) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        billed_seconds(*args)  # type: ignore[arg-type]


def test_billed_seconds_large_durations_are_exact() -> None:
    # float division would lose the final second here; integer arithmetic must not.
    blocks = 10**20
    assert billed_seconds(30 + 6 * blocks + 1, 30, 6) == 30 + 6 * (blocks + 1)
    assert billed_seconds(30 + 6 * blocks, 30, 6) == 30 + 6 * blocks


@pytest.mark.parametrize(
    ("duration_ms", "expected"),
    [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_999, 60), (60_000, 60), (60_001, 61)],
)
def test_billable_seconds(duration_ms: int, expected: int) -> None:
    assert billable_seconds(duration_ms) == expected


def test_billable_seconds_errors() -> None:
    with pytest.raises(ValueError, match="duration_ms"):
        billable_seconds(-1)
    with pytest.raises(TypeError, match="duration_ms"):
        billable_seconds(1000.0)  # type: ignore[arg-type]


# --- call_charge ---------------------------------------------------------------------


@pytest.mark.parametrize(("first", "cycle"), [(60, 60), (1, 1), (30, 6), (6, 6)])
def test_sixty_second_call_costs_one_minute(first: int, cycle: int) -> None:
    charge = call_charge(60, "0.05", first, "0.05", cycle)
    assert charge == Decimal("0.05")
    assert str(charge) == "0.050000"


@pytest.mark.parametrize(
    ("duration_s", "first_rate", "first", "rate", "cycle", "connect_fee", "expected"),
    [
        # 30/6: 75 s bills 78 s.
        (75, "0.012", 30, "0.012", 6, 0, "0.015600"),
        # 60/60: 61 s bills 120 s.
        (61, "0.05", 60, "0.05", 60, 0, "0.100000"),
        # Different first-increment rate: 30 s at 0.06 + 48 s at 0.012.
        (75, "0.06", 30, "0.012", 6, 0, "0.039600"),
        # Connect fee on an answered call.
        (60, "0.05", 60, "0.05", 60, "0.01", "0.060000"),
        (1, "0.05", 1, "0.05", 1, "0.01", "0.010833"),
        # Unanswered: nothing at all, not even the connect fee.
        (0, "0.05", 60, "0.05", 60, "0.01", "0.000000"),
        (0, "0.05", 1, "0.05", 1, 0, "0.000000"),
        # Per-second rounding: 1 s at 0.05/min = 0.000833333... -> 0.000833.
        (1, "0.05", 1, "0.05", 1, 0, "0.000833"),
    ],
)
def test_call_charge(
    duration_s: int,
    first_rate: str,
    first: int,
    rate: str,
    cycle: int,
    connect_fee: str | int,
    expected: str,
) -> None:
    charge = call_charge(duration_s, first_rate, first, rate, cycle, connect_fee)
    assert str(charge) == expected


@pytest.mark.parametrize(
    ("rate", "connect_fee", "half_up", "half_even"),
    [
        # 1 s at 0.01503/min = 0.0002505 exactly: the 7th digit is a 5.
        ("0.01503", "0", "0.000251", "0.000250"),
        # 60 s at 0.00003/min plus a fee of 0.0000005 = 0.0000305: 7th digit 5.
        ("0.00003", "0.0000005", "0.000031", "0.000030"),
    ],
)
def test_call_charge_rounds_half_up_at_sixth_place(
    rate: str, connect_fee: str, half_up: str, half_even: str
) -> None:
    duration = 1 if connect_fee == "0" else 60
    charge = call_charge(duration, rate, 1, rate, 1, connect_fee)
    assert str(charge) == half_up
    # The unrounded charge really is a tie that half-even would settle the other way.
    unrounded = Decimal(connect_fee) + Decimal(rate) * duration / 60
    assert quantize(unrounded, 6, "half_even") == Decimal(half_even)
    assert quantize(unrounded, 6, "half_even") != charge


def test_call_charge_rounds_once_at_the_end() -> None:
    # Rounding each part would give 0.000833 + 0.000833 = 0.001666; once gives 0.001667.
    assert str(call_charge(2, "0.05", 1, "0.05", 1)) == "0.001667"


def test_call_charge_ignores_caller_context() -> None:
    with decimal.localcontext(prec=3, rounding=decimal.ROUND_FLOOR):
        charge = call_charge(75, "0.0123456", 30, "0.0123456", 6, "0.0100001")
    assert str(charge) == "0.026049"


def test_call_charge_errors() -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        call_charge(60, 0.05, 60, "0.05", 60)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        call_charge(60, "0.05", 60, "0.05", 60, connect_fee=0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duration_s"):
        call_charge(-1, "0.05", 60, "0.05", 60)
    with pytest.raises(ValueError, match="cycle"):
        call_charge(60, "0.05", 60, "0.05", 0)
