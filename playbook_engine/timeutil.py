"""Time helpers for the engine: parsing moments, exact durations, business days, formats.

Everything here is pure. Instants are timezone-aware `datetime`s; a `tz` argument says
which local calendar to use where a calendar matters (a date without a time, business
days, the date a task is due). Durations are exact: `14 days` is 14 x 24 hours from
the instant, whatever daylight-saving time does to wall clocks in between.
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Literal

from .errors import did_you_mean

__all__ = [
    "UTC",
    "DurationUnit",
    "add_business_days",
    "add_duration",
    "due_date",
    "format_date",
    "format_moment",
    "get_zone",
    "parse_moment",
    "shift",
    "whole_days_between",
]

DurationUnit = Literal["day", "hour", "week"]

_UNIT_SECONDS: dict[str, int] = {"hour": 3600, "day": 86400, "week": 7 * 86400}
_ONE_DAY = timedelta(days=1)
_MOMENT_EXAMPLE = "2026-03-15T09:00:00+09:00"
# `+09:00`, `-0530`, `UTC+9`: fixed offsets people write instead of a zone name.
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


# --------------------------------------------------------------------------- zones


def get_zone(name: str | None = "UTC") -> tzinfo:
    """The time zone called `name`: an IANA name, `UTC`, or a fixed offset like `+09:00`.

    None or an empty name means UTC. An unknown name raises ValueError with a
    did-you-mean when a known zone is close.
    """
    if not isinstance(name, (str, type(None))):
        raise ValueError(f"a time zone is a name like Asia/Tokyo, got {_shown(name)}")
    return _zone(name.strip() if name else "")


@functools.lru_cache(maxsize=256)
def _zone(text: str) -> tzinfo:
    """`get_zone` for a stripped name, cached: fixtures name the same zone many times."""
    if not text or text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    offset = _OFFSET.match(text)
    if offset is not None:
        return _fixed_offset(text, offset)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory such as "Asia" or an unreadable file; ValueError: a
        # malformed key. All mean the same thing to the person who wrote it.
        hint = did_you_mean(text, _zone_names())
        raise ValueError(f"unknown time zone '{text}'{hint}") from None


def _fixed_offset(text: str, match: re.Match[str]) -> tzinfo:
    """A fixed-offset zone from a matched `+09:00`-like text."""
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"unknown time zone '{text}': offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows, read once (only needed for hints)."""
    return frozenset(zoneinfo.available_timezones())


# --------------------------------------------------------------------------- parsing


def parse_moment(value: object, tz: tzinfo) -> datetime:
    """A timezone-aware instant from a datetime, a date or an ISO-8601 string.

    A date without a time is midnight in `tz`; a naive date-time is read in `tz`.
    Anything else raises ValueError with a message fit to show the person who wrote it.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if isinstance(value, str):
        return _parse_moment_text(value, tz)
    raise ValueError(_not_a_moment(value))


def _parse_moment_text(text: str, tz: tzinfo) -> datetime:
    """Parse ISO-8601 text (`2026-03-15`, `2026-03-15T09:00`, `...Z`, `...+09:00`)."""
    stripped = text.strip()
    # fromisoformat also takes compact and week-date forms (20260315, 2026-W11-1);
    # people do not write those in fixtures, so requiring `YYYY-MM-DD` first keeps
    # an accidental number-like string from being read as a date.
    if len(stripped) < 10 or stripped[4] != "-" or stripped[7] != "-":
        raise ValueError(_not_a_moment(text))
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError as exc:
        reason = str(exc)
        detail = f" ({reason})" if "out of range" in reason or "must be in" in reason else ""
        raise ValueError(_not_a_moment(text) + detail) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _not_a_moment(value: object) -> str:
    return f"expected a date or date-time like {_MOMENT_EXAMPLE}, got {_shown(value)}"


def _shown(value: object) -> str:
    """How a bad value reads in a message: strings quoted, containers by kind."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


# --------------------------------------------------------------------------- arithmetic


def add_duration(moment: datetime, amount: Decimal | int, unit: DurationUnit) -> datetime:
    """The instant `amount` units after `moment`, exactly (a day is always 24 hours).

    The result is in `moment`'s time zone. Python adds timedeltas to aware datetimes
    in wall-clock time, which is off by an hour across a DST change, so the sum is
    taken in UTC.
    """
    delta = _duration(amount, unit)
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


def shift(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta` in elapsed time, in `moment`'s time zone (`add_duration`'s rule).

    In a zone with daylight-saving time, Python's `moment + delta` moves the wall clock,
    an hour off across a change; the sum is taken in UTC instead. A fixed offset (or no
    zone) has nothing to be off by: the plain sum is the same instant.
    """
    zone = moment.tzinfo
    if zone is None or type(zone) is timezone:
        return moment + delta
    if type(moment) is not datetime:
        return _shift_in_zone(moment, zone, delta)  # a subclass: the result keeps its type
    # The zone and fold are part of the key: equal instants may be written differently.
    # The zone by identity, as the result must be in this very zone object (the moment in
    # the key keeps it alive, so its id is not reused while the entry is kept).
    key = (moment, id(zone), moment.fold, delta)
    found = _SHIFTED.get(key)
    if found is None:
        if len(_SHIFTED) >= _SHIFTED_KEPT:
            _SHIFTED.clear()
        found = _SHIFTED[key] = _shift_in_zone(moment, zone, delta)
    return found


def _shift_in_zone(moment: datetime, zone: tzinfo, delta: timedelta) -> datetime:
    # Not the wall-clock sum even where the offset is the same at both ends: a sum in a
    # skipped hour (02:30 on the day clocks go forward) is written differently.
    return (moment.astimezone(UTC) + delta).astimezone(zone)


# Results of `shift` in zones that are not a fixed offset, by moment, zone, fold and delta.
# Evaluations step through the same moments for every account (the evaluation, one
# interval before it, ...); a look-up costs a fifth of converting to UTC and back.
# Bounded: cleared when full.
_SHIFTED: dict[tuple[datetime, int, int, timedelta], datetime] = {}
_SHIFTED_KEPT = 8192


def _duration(amount: Decimal | int, unit: DurationUnit) -> timedelta:
    """A timedelta for `amount` units, exact to the microsecond."""
    try:
        seconds = _UNIT_SECONDS[unit]
    except KeyError:
        raise ValueError(f"unknown duration unit '{unit}'") from None
    try:
        micros = Decimal(amount) * seconds * 1_000_000
        return timedelta(microseconds=int(micros.to_integral_value()))
    except (InvalidOperation, OverflowError, ValueError):
        raise ValueError(f"duration out of range: {amount} {unit}") from None


def add_business_days(
    moment: datetime, n: int | Decimal, holidays: frozenset[date], tz: tzinfo
) -> date:
    """The local date (in `tz`) `n` business days after `moment`'s local date.

    Steps forward a day at a time, counting only Monday to Friday dates not in
    `holidays`: one business day after a Sunday is Monday, after a Friday the next
    Monday. Zero business days is the local date itself.
    """
    count = _whole_count(n)
    day = moment.astimezone(tz).date()
    while count > 0:
        day += _ONE_DAY
        if day.weekday() < 5 and day not in holidays:
            count -= 1
    return day


def _whole_count(n: int | Decimal) -> int:
    """`n` as a non-negative whole number of days, or ValueError."""
    if isinstance(n, bool) or not isinstance(n, (int, Decimal)):
        raise ValueError(f"business days must be a whole number, got {n!r}")
    if isinstance(n, Decimal) and (not n.is_finite() or n != n.to_integral_value()):
        raise ValueError(f"business days must be a whole number, got {n}")
    if n < 0:
        raise ValueError(f"business days cannot be negative, got {n}")
    return int(n)


def due_date(
    moment: datetime,
    duration_amount: Decimal | int,
    unit: DurationUnit,
    business: bool,
    holidays: frozenset[date],
    tz: tzinfo,
) -> date:
    """The local date (in `tz`) a task is due, `duration_amount` units after `moment`.

    Business days count as `add_business_days` does; otherwise the due date is the
    local date of the exact instant `moment + duration` (`due in 7 days` from Monday
    09:00 is the next Monday).
    """
    if business:
        if unit != "day":
            raise ValueError(f"business durations count days, not {unit}s")
        return add_business_days(moment, duration_amount, holidays, tz)
    return add_duration(moment, duration_amount, unit).astimezone(tz).date()


def whole_days_between(a: datetime, b: datetime) -> int:
    """Whole days elapsed from `a` to `b`, rounded down (negative, still down, if b < a)."""
    # Subtracting two datetimes that share a tzinfo object gives the wall-clock
    # difference; converting to UTC first makes it the elapsed time.
    return (b.astimezone(UTC) - a.astimezone(UTC)) // _ONE_DAY


# --------------------------------------------------------------------------- formats


def format_date(d: date) -> str:
    """`YYYY-MM-DD`; a datetime gives its own local date."""
    if isinstance(d, datetime):
        d = d.date()
    return d.isoformat()


def format_moment(dt: datetime) -> str:
    """ISO-8601 with its offset, like `2026-04-15T09:00:00+09:00` (fractions kept if any)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"cannot format a moment without a time zone: {dt.isoformat()}")
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
