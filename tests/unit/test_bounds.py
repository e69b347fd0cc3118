"""The bounds every outside value must keep (domain/bounds.py), each at its edge."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from collabdesk.domain import bounds
from collabdesk.domain.bounds import (
    check_cents,
    check_id,
    check_instant,
    control_character_problem,
    date_problem,
    instant_problem,
    is_valid_id,
)
from collabdesk.domain.errors import ValidationFailed


def test_the_limits_are_a_signed_64_bit_integer_and_the_years_1970_to_9998() -> None:
    assert bounds.MAX_CENTS == 9_223_372_036_854_775_807
    assert (bounds.MIN_YEAR, bounds.MAX_YEAR) == (1970, 9998)
    assert datetime(1970, 1, 1, 0, 0, 0, tzinfo=UTC) == bounds.EARLIEST
    assert datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC) == bounds.LATEST
    assert bounds.MAX_ADVANCE_SECONDS == 316_224_000  # ten years of 366 days
    assert bounds.ID_MAX == 64


# ---- money -----------------------------------------------------------------------------------


def test_cents_from_0_to_2_pow_63_minus_1_are_accepted() -> None:
    assert check_cents(0, "amount_cents") == 0
    assert check_cents(1, "amount_cents") == 1
    assert check_cents(9_223_372_036_854_775_807, "amount_cents") == 9_223_372_036_854_775_807


@pytest.mark.parametrize("value", [-1, 9_223_372_036_854_775_808])
def test_cents_below_0_or_past_2_pow_63_minus_1_are_refused(value: int) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_cents(value, "amount_cents")
    assert info.value.detail == (
        "amount_cents must be between 0 and 9223372036854775807 cents")


# ---- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A-1_b.c:d", "x" * 64, "店铺1"])
def test_ids_of_1_to_64_letters_digits_dot_underscore_colon_or_dash_are_valid(
        value: str) -> None:
    assert is_valid_id(value) is True
    assert check_id(value, "store_id") == value


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "a/b", "a?b", "a\n", "a\x00b", "é#"])
def test_other_ids_are_refused_naming_the_field(value: str) -> None:
    assert is_valid_id(value) is False
    with pytest.raises(ValidationFailed) as info:
        check_id(value, "order_id")
    assert info.value.detail == (
        "order_id must be 1-64 letters, digits, '.', '_', ':' or '-'")


def test_the_id_pattern_is_the_one_published_in_the_schemas() -> None:
    assert bounds.ID_PATTERN == r"^[\w.:-]{1,64}$"


# ---- text ------------------------------------------------------------------------------------


def test_single_line_text_refuses_every_control_character() -> None:
    assert control_character_problem("plain text, 中文", multiline=False) is None
    assert control_character_problem("a\tb", multiline=False) == (
        "control character U+0009 is not allowed")
    assert control_character_problem("a\nb", multiline=False) == (
        "control character U+000A is not allowed")
    assert control_character_problem("a\x9fb", multiline=False) == (
        "control character U+009F is not allowed")


def test_multi_line_text_keeps_tab_line_feed_and_carriage_return_only() -> None:
    assert control_character_problem("a\tb\nc\r\n", multiline=True) is None
    assert control_character_problem("a\x00", multiline=True) == (
        "control character U+0000 is not allowed")
    assert control_character_problem("a\x0bb", multiline=True) == (
        "control character U+000B is not allowed")
    assert control_character_problem("a\x0cb", multiline=True) == (
        "control character U+000C is not allowed")
    assert control_character_problem("a\x7fb", multiline=True) == (
        "control character U+007F is not allowed")
    assert control_character_problem("a\x85b", multiline=True) == (
        "control character U+0085 is not allowed")
    assert control_character_problem("\xa0", multiline=True) is None


@pytest.mark.parametrize(("text", "single", "multi"), [
    ("ok", True, True), ("a\tb", False, True), ("a\nb", False, True), ("a\rb", False, True),
    ("a\x00b", False, False), ("a\x1fb", False, False), ("a\x7fb", False, False),
    ("a\x80b", False, False), ("a\x9fb", False, False), ("a\xa0b", True, True),
])
def test_the_published_text_patterns_agree_with_the_checks(text: str, single: bool,
                                                           multi: bool) -> None:
    assert (re.fullmatch(bounds.SINGLE_LINE_PATTERN, text) is not None) is single
    assert (re.fullmatch(bounds.MULTI_LINE_PATTERN, text) is not None) is multi
    assert (control_character_problem(text, multiline=False) is None) is single
    assert (control_character_problem(text, multiline=True) is None) is multi


# ---- instants and dates ----------------------------------------------------------------------


def test_instants_with_an_offset_from_1970_to_9998_are_usable() -> None:
    first = datetime(1970, 1, 1, tzinfo=UTC)
    last = datetime(9998, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))
    assert instant_problem(first) is None
    assert instant_problem(last) is None
    assert check_instant(first, "paid_at") == first


def test_an_instant_without_an_offset_is_refused() -> None:
    naive = datetime(2026, 11, 28, 8, 0)
    assert instant_problem(naive) == "needs a UTC offset"
    with pytest.raises(ValidationFailed) as info:
        check_instant(naive, "paid_at")
    assert info.value.detail == "paid_at needs a UTC offset"


@pytest.mark.parametrize("year", [1969, 9999])
def test_an_instant_outside_1970_to_9998_is_refused(year: int) -> None:
    moment = datetime(year, 6, 1, tzinfo=UTC)
    assert instant_problem(moment) == "must be between the years 1970 and 9998"
    with pytest.raises(ValidationFailed) as info:
        check_instant(moment, "contacted_at")
    assert info.value.detail == "contacted_at must be between the years 1970 and 9998"


def test_dates_from_1970_to_9998_are_usable() -> None:
    assert date_problem(date(1970, 1, 1)) is None
    assert date_problem(date(9998, 12, 31)) is None
    assert date_problem(date(1969, 12, 31)) == "must be between the years 1970 and 9998"
    assert date_problem(date(9999, 1, 1)) == "must be between the years 1970 and 9998"
