"""Tests of the time helpers: parsing, exact durations, business days, formats."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook_engine.timeutil import (
    UTC,
    add_business_days,
    add_duration,
    due_date,
    format_date,
    format_moment,
    get_zone,
    parse_moment,
    shift,
    whole_days_between,
)

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
PLUS9 = timezone(timedelta(hours=9))
NO_HOLIDAYS: frozenset[date] = frozenset()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------- get_zone


def test_get_zone_names_and_default() -> None:
    assert get_zone() is UTC
    assert get_zone(None) is UTC
    assert get_zone("") is UTC
    assert get_zone("UTC") is UTC
    assert get_zone("Asia/Tokyo") == TOKYO
    assert get_zone(" Asia/Tokyo ") == TOKYO


def test_get_zone_fixed_offsets() -> None:
    assert get_zone("+09:00") == PLUS9
    assert get_zone("-0530") == timezone(-timedelta(hours=5, minutes=30))
    assert get_zone("UTC+9") == PLUS9


def test_get_zone_unknown_name_suggests() -> None:
    expected = r"^unknown time zone 'Asia/Tokio' \(did you mean 'Asia/Tokyo'\?\)$"
    with pytest.raises(ValueError, match=expected):
        get_zone("Asia/Tokio")


@pytest.mark.parametrize("name", ["Nowhere/Land", "Asia", "../etc/passwd", "+25:00", "a\x00b"])
def test_get_zone_rejects_bad_names_with_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        get_zone(name)


# --------------------------------------------------------------------------- parse_moment


def test_parse_date_only_string_is_midnight_in_tz() -> None:
    assert parse_moment("2026-03-15", TOKYO) == datetime(2026, 3, 15, tzinfo=TOKYO)


def test_parse_date_object_is_midnight_in_tz() -> None:
    result = parse_moment(date(2026, 3, 15), TOKYO)
    assert result == datetime(2026, 3, 15, tzinfo=TOKYO)
    assert result.utcoffset() == timedelta(hours=9)


def test_parse_naive_datetime_is_in_tz() -> None:
    assert parse_moment(datetime(2026, 3, 15, 9), TOKYO) == datetime(2026, 3, 15, 9, tzinfo=TOKYO)
    assert parse_moment("2026-03-15T09:00", TOKYO) == datetime(2026, 3, 15, 9, tzinfo=TOKYO)


def test_parse_keeps_an_explicit_offset() -> None:
    result = parse_moment("2026-03-15T09:00:00+09:00", UTC)
    assert result.utcoffset() == timedelta(hours=9)
    assert result == datetime(2026, 3, 15, 0, tzinfo=UTC)


def test_parse_accepts_z_and_space_separator() -> None:
    assert parse_moment("2026-03-15T00:00:00Z", TOKYO) == datetime(2026, 3, 15, tzinfo=UTC)
    assert parse_moment("2026-03-15 09:00:00+09:00", UTC) == datetime(2026, 3, 15, tzinfo=UTC)


def test_parse_aware_datetime_is_unchanged() -> None:
    moment = datetime(2026, 3, 15, 9, tzinfo=PLUS9)
    assert parse_moment(moment, UTC) is moment


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("yesterday", '"yesterday"'),
        ("", '""'),
        ("20260315", '"20260315"'),
        (5, "5"),
        (None, "nothing"),
        (True, "yes"),
        ([1], "a list"),
    ],
)
def test_parse_rejects_non_moments_plainly(value: object, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_moment(value, UTC)
    assert str(info.value) == (
        f"expected a date or date-time like 2026-03-15T09:00:00+09:00, got {shown}"
    )


def test_parse_explains_an_impossible_date() -> None:
    with pytest.raises(ValueError, match=r'got "2026-02-30" \(day is out of range for month\)$'):
        parse_moment("2026-02-30", UTC)


@given(st.text(max_size=40))
def test_parse_any_text_gives_a_moment_or_value_error(text: str) -> None:
    try:
        result = parse_moment(text, TOKYO)
    except ValueError:
        return
    assert result.tzinfo is not None


# --------------------------------------------------------------------------- durations


def test_add_duration_is_exact() -> None:
    start = at("2026-03-16T09:00:00+09:00")
    assert add_duration(start, Decimal(14), "day") == start + timedelta(hours=14 * 24)
    assert add_duration(start, Decimal(3), "hour") == at("2026-03-16T12:00:00+09:00")
    assert add_duration(start, Decimal(2), "week") == at("2026-03-30T09:00:00+09:00")
    assert add_duration(start, Decimal("1.5"), "day") == at("2026-03-17T21:00:00+09:00")


def test_add_duration_keeps_the_offset() -> None:
    result = add_duration(at("2026-03-16T09:00:00+09:00"), Decimal(30), "day")
    assert format_moment(result) == "2026-04-15T09:00:00+09:00"


def test_add_duration_across_dst_is_24_hours_per_day() -> None:
    # Berlin springs forward on 2026-03-29: noon + 1 day is 13:00 local, 24 h later.
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    result = add_duration(start, Decimal(1), "day")
    assert (result.hour, result.day) == (13, 29)
    assert result.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)


def test_shift_across_dst_is_elapsed_time_every_time() -> None:
    # Asked twice (the second answer is a kept one): the same exact sum both times.
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    for _ in range(2):
        result = shift(start, timedelta(days=1))
        assert (result.hour, result.day, result.fold) == (13, 29, 0)
        assert shift(result, -timedelta(days=1)) == start


def test_shift_tells_folds_and_zones_apart() -> None:
    # 01:30 happens twice in New York on 2026-11-01: equal wall clocks, different instants.
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = first.replace(fold=1)
    hour = timedelta(hours=1)
    assert format_moment(shift(first, hour)) == "2026-11-01T01:30:00-05:00"
    assert format_moment(shift(second, hour)) == "2026-11-01T02:30:00-05:00"
    # The same instant in another zone is written in that zone, and in that zone object.
    assert format_moment(shift(first.astimezone(BERLIN), hour)) == "2026-11-01T07:30:00+01:00"
    twin = ZoneInfo.no_cache("America/New_York")
    assert shift(first.replace(tzinfo=twin), hour).tzinfo is twin


def test_shift_keeps_a_datetime_subclass() -> None:
    class Moment(datetime):
        pass

    hour = timedelta(hours=1)
    shift(datetime(2026, 3, 28, 12, tzinfo=BERLIN), hour)  # the plain datetime's sum is kept
    assert type(shift(Moment(2026, 3, 28, 12, tzinfo=BERLIN), hour)) is Moment


def test_add_duration_rejects_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unknown duration unit"):
        add_duration(at("2026-03-16T09:00:00+09:00"), Decimal(1), "month")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- business days


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        ("2026-03-15T15:00:00+09:00", 1, "2026-03-16"),  # Sunday NPS answer -> Monday
        ("2026-03-16T09:00:00+09:00", 2, "2026-03-18"),  # acme, Monday
        ("2026-03-16T09:00:00+09:00", 3, "2026-03-19"),  # umbrella, health dropped
        ("2026-03-16T09:00:00+09:00", 5, "2026-03-23"),  # across a weekend
        ("2026-03-16T09:00:00+09:00", 10, "2026-03-30"),  # renewal plan
        ("2026-04-15T09:00:00+09:00", 5, "2026-04-22"),  # after a 30-day wait
        ("2026-03-14T09:00:00+09:00", 1, "2026-03-16"),  # Saturday -> Monday
        ("2026-03-13T09:00:00+09:00", 1, "2026-03-16"),  # Friday -> Monday
        ("2026-03-16T09:00:00+09:00", 0, "2026-03-16"),
    ],
)
def test_business_days_spec_examples(start: str, n: int, due: str) -> None:
    assert add_business_days(at(start), n, NO_HOLIDAYS, TOKYO) == date.fromisoformat(due)


def test_business_days_skip_holidays() -> None:
    holidays = frozenset({date(2026, 3, 17), date(2026, 3, 20)})
    monday = at("2026-03-16T09:00:00+09:00")
    assert add_business_days(monday, 2, holidays, TOKYO) == date(2026, 3, 19)
    assert add_business_days(monday, 3, holidays, TOKYO) == date(2026, 3, 23)


def test_business_days_count_from_the_local_date_in_tz() -> None:
    # Monday 08:00 in Tokyo is still Sunday in UTC.
    moment = at("2026-03-16T08:00:00+09:00")
    assert add_business_days(moment, 1, NO_HOLIDAYS, UTC) == date(2026, 3, 16)
    assert add_business_days(moment, 1, NO_HOLIDAYS, TOKYO) == date(2026, 3, 17)


def test_business_days_accept_whole_decimals_only() -> None:
    moment = at("2026-03-16T09:00:00+09:00")
    assert add_business_days(moment, Decimal(2), NO_HOLIDAYS, TOKYO) == date(2026, 3, 18)
    with pytest.raises(ValueError, match="whole number"):
        add_business_days(moment, Decimal("1.5"), NO_HOLIDAYS, TOKYO)
    with pytest.raises(ValueError, match="negative"):
        add_business_days(moment, -1, NO_HOLIDAYS, TOKYO)


# --------------------------------------------------------------------------- due_date


def test_due_date_plain_days_is_the_local_date_of_the_instant() -> None:
    moment = at("2026-03-16T09:00:00+09:00")
    assert due_date(moment, Decimal(7), "day", False, NO_HOLIDAYS, TOKYO) == date(2026, 3, 23)
    # Against a UTC engine zone the same instant is 00:00 UTC: still the 23rd.
    assert due_date(moment, Decimal(7), "day", False, NO_HOLIDAYS, UTC) == date(2026, 3, 23)


def test_due_date_plus9_offsets_against_a_utc_zone() -> None:
    # 08:00 +09:00 is 23:00 UTC the day before.
    moment = at("2026-03-16T08:00:00+09:00")
    assert due_date(moment, Decimal(7), "day", False, NO_HOLIDAYS, UTC) == date(2026, 3, 22)
    assert due_date(moment, Decimal(7), "day", False, NO_HOLIDAYS, TOKYO) == date(2026, 3, 23)


def test_due_date_business_days() -> None:
    moment = at("2026-03-15T15:00:00+09:00")
    assert due_date(moment, Decimal(1), "day", True, NO_HOLIDAYS, TOKYO) == date(2026, 3, 16)
    with pytest.raises(ValueError, match="business durations count days"):
        due_date(moment, Decimal(1), "week", True, NO_HOLIDAYS, TOKYO)


def test_due_date_across_dst_does_not_crash() -> None:
    moment = datetime(2026, 3, 7, 23, 30, tzinfo=NY)  # DST starts 2026-03-08 in New York
    assert due_date(moment, Decimal(1), "day", False, NO_HOLIDAYS, NY) == date(2026, 3, 9)
    assert due_date(moment, Decimal(1), "day", True, NO_HOLIDAYS, NY) == date(2026, 3, 9)


# --------------------------------------------------------------------------- whole days


@pytest.mark.parametrize(
    ("a", "b", "days"),
    [
        ("2026-03-16T09:00:00+09:00", "2026-03-16T09:00:00+09:00", 0),
        ("2026-03-16T09:00:00+09:00", "2026-03-17T08:59:59+09:00", 0),
        ("2026-03-16T09:00:00+09:00", "2026-03-17T09:00:00+09:00", 1),
        ("2026-02-20T10:00:00+09:00", "2026-03-16T09:00:00+09:00", 23),  # hooli
        ("2026-03-16T09:00:00+09:00", "2026-03-16T08:00:00+09:00", -1),
        ("2026-03-16T09:00:00+09:00", "2026-03-14T09:00:00+09:00", -2),
        ("2026-03-16T00:00:00+00:00", "2026-03-16T09:00:00+09:00", 0),
    ],
)
def test_whole_days_between_rounds_down(a: str, b: str, days: int) -> None:
    assert whole_days_between(at(a), at(b)) == days


def test_whole_days_between_counts_elapsed_time_across_dst() -> None:
    # Same tzinfo object on both sides: 2026-03-28 12:00 -> 2026-03-29 12:00 Berlin is
    # only 23 hours, so not a whole day.
    a = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    b = datetime(2026, 3, 29, 12, tzinfo=BERLIN)
    assert whole_days_between(a, b) == 0
    assert whole_days_between(a, b + timedelta(hours=1)) == 1


# --------------------------------------------------------------------------- formats


def test_format_date() -> None:
    assert format_date(date(2026, 3, 5)) == "2026-03-05"
    assert format_date(datetime(2026, 3, 5, 23, tzinfo=TOKYO)) == "2026-03-05"


def test_format_moment() -> None:
    assert format_moment(datetime(2026, 4, 15, 9, tzinfo=TOKYO)) == "2026-04-15T09:00:00+09:00"
    assert format_moment(datetime(2026, 4, 15, tzinfo=UTC)) == "2026-04-15T00:00:00+00:00"
    assert format_moment(datetime(2026, 4, 15, 0, 0, 0, 5000, tzinfo=UTC)).endswith(".005000+00:00")


def test_format_moment_rejects_naive() -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        format_moment(datetime(2026, 4, 15))


@given(st.datetimes(timezones=st.sampled_from([UTC, TOKYO, BERLIN, NY, PLUS9])))
def test_format_moment_round_trips(moment: datetime) -> None:
    # Compared as text and as UTC: PEP 495 makes times in a DST gap unequal to
    # every time in another zone, and hypothesis does generate those.
    text = format_moment(moment)
    parsed = parse_moment(text, UTC)
    assert format_moment(parsed) == text
    assert parsed.astimezone(UTC) == moment.astimezone(UTC)
