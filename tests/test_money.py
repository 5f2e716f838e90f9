"""Tests for ratelab.money: the Decimal money type and its rounding."""

import decimal
from decimal import Decimal

import pytest

from ratelab.money import MONEY_PLACES, MONEY_SQL, money_context, quantize, to_decimal


def test_constants() -> None:
    assert MONEY_PLACES == 6
    assert MONEY_SQL == "DECIMAL(18,6)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.010", Decimal("0.010")),
        (" 0.5 ", Decimal("0.5")),
        ("-1.25", Decimal("-1.25")),
        ("1E-7", Decimal("0.0000001")),
        (0, Decimal(0)),
        (42, Decimal(42)),
        (Decimal("0.010667"), Decimal("0.010667")),
    ],
)
def test_to_decimal_accepts_int_str_decimal(value: Decimal | int | str, expected: Decimal) -> None:
    result = to_decimal(value)
    assert type(result) is Decimal
    assert result == expected


def test_to_decimal_keeps_string_exact_beyond_caller_precision() -> None:
    with decimal.localcontext(prec=3):
        assert to_decimal("0.0106666666") == Decimal("0.0106666666")


@pytest.mark.parametrize("value", [0.1, 1.0, float("nan")])
def test_to_decimal_rejects_float(value: float) -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        to_decimal(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, False])
def test_to_decimal_rejects_bool(value: bool) -> None:
    with pytest.raises(TypeError, match="bool"):
        to_decimal(value)


@pytest.mark.parametrize("value", [None, [1], b"1"])
def test_to_decimal_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="Decimal, int or str"):
        to_decimal(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "abc", "1,000", "0.01 USD", "1.2.3"])
def test_to_decimal_rejects_unparseable_strings(value: str) -> None:
    with pytest.raises(ValueError, match="not a decimal number") as info:
        to_decimal(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-inf", Decimal("NaN")])
def test_to_decimal_rejects_non_finite(value: str | Decimal) -> None:
    with pytest.raises(ValueError, match="finite") as info:
        to_decimal(value)
    assert repr(value) in str(info.value)


def test_to_decimal_parse_errors_ignore_caller_traps() -> None:
    # With InvalidOperation untrapped, Decimal("abc") would silently be NaN.
    with decimal.localcontext(traps=[]), pytest.raises(ValueError):
        to_decimal("abc")


@pytest.mark.parametrize(
    ("value", "places", "rounding", "expected"),
    [
        ("0.0106665", 6, "half_up", "0.010667"),
        ("0.0106664", 6, "half_up", "0.010666"),
        ("-0.0000005", 6, "half_up", "-0.000001"),
        ("0.0106661", 6, "up", "0.010667"),
        ("0.010666", 6, "up", "0.010666"),
        ("-0.0106661", 6, "up", "-0.010667"),
        ("0.0106669", 6, "down", "0.010666"),
        ("-0.0106669", 6, "down", "-0.010666"),
        ("0.0000025", 6, "half_even", "0.000002"),
        ("0.0000035", 6, "half_even", "0.000004"),
        ("0.33333", 4, "half_up", "0.3333"),
        ("333333.5", 0, "half_up", "333334"),
        ("1", 6, "half_up", "1.000000"),
    ],
)
def test_quantize(value: str, places: int, rounding: str, expected: str) -> None:
    result = quantize(value, places, rounding)  # type: ignore[arg-type]
    assert result == Decimal(expected)
    assert str(result) == expected  # exactly `places` decimal places


def test_quantize_defaults_to_six_places_half_up() -> None:
    assert str(quantize("0.0000005")) == "0.000001"


def test_quantize_never_returns_negative_zero() -> None:
    assert str(quantize("-0.0000001")) == "0.000000"
    assert str(quantize("-0.4", 0, "down")) == "0"


def test_quantize_ignores_caller_context() -> None:
    with decimal.localcontext(prec=2, rounding=decimal.ROUND_FLOOR):
        assert str(quantize("123.4567895")) == "123.456790"


@pytest.mark.parametrize("rounding", ["ceiling", "HALF_UP", "", None])
def test_quantize_rejects_unknown_rounding(rounding: object) -> None:
    with pytest.raises(ValueError, match="'half_up', 'up', 'down', 'half_even'"):
        quantize("1", 6, rounding)  # type: ignore[arg-type]


def test_quantize_rejects_bad_places() -> None:
    with pytest.raises(ValueError, match="places"):
        quantize("1", -1)
    with pytest.raises(TypeError, match="places"):
        quantize("1", 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="places"):
        quantize("1", True)


def test_quantize_rejects_float() -> None:
    with pytest.raises(TypeError, match="pass a str or Decimal"):
        quantize(0.5)  # type: ignore[arg-type]


def test_quantize_too_many_digits_is_value_error() -> None:
    with pytest.raises(ValueError, match="too many digits"):
        quantize("1E+60")


def test_money_context_is_fixed() -> None:
    with decimal.localcontext(prec=3), money_context() as ctx:
        assert ctx.prec == 50
        assert Decimal(2) / Decimal(3) == Decimal("0." + "6" * 49 + "7")
        with pytest.raises(decimal.DivisionByZero):
            Decimal(1) / Decimal(0)
