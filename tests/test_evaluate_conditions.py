"""Conditions and values, one construct at a time, at their boundaries (LANGUAGE.md).

Each test evaluates one condition or value for one account at one moment, through the
compiled closures the evaluator uses (`evalkit.truth` / `evalkit.value`). Moments are
written with their offset; `AT` is Monday 2026-03-16 09:00 in Tokyo.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from evalkit import AT, build, fixture, moment, truth, value

from playbook_engine.facts import Account
from playbook_engine.logic import and3, not3, or3

T, F, U = True, False, None
SECOND = timedelta(seconds=1)


def at_minus(**kw: float) -> str:
    return (moment(AT) - timedelta(**kw)).isoformat()


def at_plus(**kw: float) -> str:
    return (moment(AT) + timedelta(**kw)).isoformat()


def login(when: str, **fields: Any) -> dict[str, Any]:
    return {"type": "login", "at": when, **fields}


def nps(when: str, score: int) -> dict[str, Any]:
    return {"type": "nps_submitted", "at": when, "score": score}


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("condition", "data", "expected"),
    [
        ("health < 50", {"health": 49}, T),
        ("health < 50", {"health": 50}, F),
        ("health <= 50", {"health": 50}, T),
        ("health > 50", {"health": 50}, F),
        ("health >= 50", {"health": 50}, T),
        ("health = 50", {"health": 50}, T),
        ("health != 50", {"health": 50}, F),
        ("health = 50", {"health": 50.0}, T),
        ("tier is tech-touch", {"tier": "tech-touch"}, T),
        ("tier is tech-touch", {"tier": "low-touch"}, F),
        ("tier is not tech-touch", {"tier": "low-touch"}, T),
        ("tier in [high-touch, low-touch]", {"tier": "low-touch"}, T),
        ("tier in [high-touch, low-touch]", {"tier": "tech-touch"}, F),
        ("tier not in [high-touch, low-touch]", {"tier": "tech-touch"}, T),
        ("tier not in [high-touch, low-touch]", {"tier": "high-touch"}, F),
        ('plan is "standard"', {"plan": "standard"}, T),
        ('plan = "standard"', {"plan": "Standard"}, F),
        ('name contains "株式会社"', {"name": "Acme 株式会社"}, T),
        ('name contains "株式会社"', {"name": "Acme Inc"}, F),
        ('name starts with "Acme"', {"name": "Acme 株式会社"}, T),
        ('name starts with "株式会社"', {"name": "Acme 株式会社"}, F),
        ('name ends with "株式会社"', {"name": "Acme 株式会社"}, T),
        ('name ends with "Acme"', {"name": "Acme 株式会社"}, F),
        ('has tag "vip"', {"tags": ["vip", "x"]}, T),
        ('has tag "vip"', {"tags": ["x"]}, F),
        ('has tag "vip"', {}, F),
        ("vip", {"vip": True}, T),
        ("vip", {"vip": False}, F),
        ("not vip", {"vip": False}, T),
        ("low-health", {"health": 10}, T),
        ("low-health", {"health": 90}, F),
        ("usage >= 50%", {"active": 5, "seats": 10}, T),
        ("usage > 50%", {"active": 5, "seats": 10}, F),
        ("health - 10 > 30", {"health": 41}, T),
        ("health - 10 > 30", {"health": 40}, F),
        ("(health + 10) * 2 = 100", {"health": 40}, T),
        ("csm.email is \"s@x.example\"", {"csm": {"name": "S", "email": "s@x.example"}}, T),
        ("account.health < 50", {"health": 10}, T),
    ],
)
def test_comparisons_and_tests(condition: str, data: dict[str, Any], expected: bool) -> None:
    assert truth(condition, data) is expected


def test_percent_is_a_fraction() -> None:
    assert truth("30% = 0.3", {}) is True
    assert value("30%", {}) == Decimal("0.3")


# --------------------------------------------------------------------------- decimals


def test_ninety_percent_of_seventy_is_exactly_63() -> None:
    result = value("90% * 70", {})
    assert isinstance(result, Decimal)
    assert result == 63
    assert truth("90% * 70 = 63", {}) is True


@pytest.mark.parametrize(("active", "expected"), [(63, True), (62, False), (64, True)])
def test_63_active_of_70_seats_meets_ninety_percent(active: int, expected: bool) -> None:
    assert truth("active >= 90% * seats", {"active": active, "seats": 70}) is expected


def test_decimals_as_written() -> None:
    assert truth("0.1 + 0.2 = 0.3", {}) is True
    assert truth("mrr = 0.3", {"mrr": 0.3}) is True
    assert value("mrr * 3", {"mrr": 0.1}) == Decimal("0.3")
    assert truth("seats / 3 * 3 = seats", {"seats": 10}) in (True, False)  # never a crash


def test_division_by_zero_is_unknown_not_a_crash() -> None:
    assert value("active / seats", {"active": 5, "seats": 0}) is None
    assert truth("usage < 10%", {"active": 5, "seats": 0}) is None
    assert truth("usage is missing", {"active": 5, "seats": 0}) is True


# --------------------------------------------------------------------------- missing values

# Every operator with a missing operand: unknown (None), never false, never a crash.
UNKNOWN_WITH_MISSING = [
    "health < 50",
    "health <= 50",
    "health > 50",
    "health >= 50",
    "health = 50",
    "health != 50",
    "50 > health",
    "tier is tech-touch",
    "tier is not tech-touch",
    "tier in [high-touch, low-touch]",
    "tier not in [high-touch, low-touch]",
    'plan is "standard"',
    'plan contains "x"',
    'plan starts with "x"',
    'plan ends with "x"',
    "health + 10 > 0",
    "health - 10 < 100",
    "health * 2 >= 0",
    "health / 2 <= 100",
    "10 / health > 0",
    "-health < 0",
    "health drops below 50",
    "health rises above 80",
    "stage changes to adoption",
    "stage changes from onboarding to adoption",
    "health < 50 for 14 days",
    "days since signed_at > 3",
    "days until renewal_date < 30",
    "14 days after signed_at",
    "90 days before renewal_date",
    "onboarding incomplete after 14 days",
    "vip",
    "not vip",
    "low-health",
    "usage < 10%",
    "csm.email is \"x@y\"",
    "average minutes of login in last 7 days > 0",
    "min minutes of login in last 7 days > 0",
    "max minutes of login in last 7 days > 0",
    "last score of nps_submitted > 5",
    "days since last login > 3",
]


@pytest.mark.parametrize("condition", UNKNOWN_WITH_MISSING)
def test_missing_value_makes_every_operator_unknown(condition: str) -> None:
    assert truth(condition, {}) is None


@pytest.mark.parametrize("condition", UNKNOWN_WITH_MISSING)
def test_not_of_unknown_is_unknown(condition: str) -> None:
    assert truth(f"not ({condition})", {}) is None


@pytest.mark.parametrize(
    "operand",
    ["health", "tier", "plan", "signed_at", "csm", "vip", "health + 1", "active / seats",
     "usage", "average minutes of login in last 7 days", "last score of nps_submitted",
     "days since last login", "days since signed_at", "csm.email"],
)
def test_is_missing_and_is_present_are_never_unknown(operand: str) -> None:
    assert truth(f"{operand} is missing", {}) is True
    assert truth(f"{operand} is present", {}) is False


def test_is_present_with_values() -> None:
    data = {"health": 0, "tier": "low-touch", "vip": False, "plan": ""}
    for operand in ("health", "tier", "vip", "plan"):
        assert truth(f"{operand} is present", data) is True
        assert truth(f"{operand} is missing", data) is False


def test_missing_in_a_list_member_or_the_other_side() -> None:
    # The other side missing is just as unknown.
    assert truth("seats > health", {"seats": 3}) is None
    assert truth("health = seats", {"health": 3}) is None


# --------------------------------------------------------------------------- logic


def _case(v: bool | None) -> dict[str, Any]:
    """An account on which `health > 50` has truth value v."""
    return {} if v is None else {"health": 60 if v else 40}


def _case2(v: bool | None) -> dict[str, Any]:
    """An account on which `nps > 5` has truth value v."""
    return {} if v is None else {"nps": 9 if v else 1}


AND = {
    (T, T): T, (T, F): F, (T, U): U,
    (F, T): F, (F, F): F, (F, U): F,
    (U, T): U, (U, F): F, (U, U): U,
}
OR = {
    (T, T): T, (T, F): T, (T, U): T,
    (F, T): T, (F, F): F, (F, U): U,
    (U, T): T, (U, F): U, (U, U): U,
}


@pytest.mark.parametrize(("pair", "expected"), list(AND.items()))
def test_and_truth_table(pair: tuple[bool | None, bool | None], expected: bool | None) -> None:
    a, b = pair
    assert and3(a, b) is expected
    data = {**_case(a), **_case2(b)}
    assert truth("health > 50 and nps > 5", data) is expected
    assert truth("nps > 5 and health > 50", data) is expected


@pytest.mark.parametrize(("pair", "expected"), list(OR.items()))
def test_or_truth_table(pair: tuple[bool | None, bool | None], expected: bool | None) -> None:
    a, b = pair
    assert or3(a, b) is expected
    data = {**_case(a), **_case2(b)}
    assert truth("health > 50 or nps > 5", data) is expected
    assert truth("nps > 5 or health > 50", data) is expected


@pytest.mark.parametrize(("a", "expected"), [(T, F), (F, T), (U, U)])
def test_not_truth_table(a: bool | None, expected: bool | None) -> None:
    assert not3(a) is expected
    assert truth("not health > 50", _case(a)) is expected
    assert truth("not (health > 50)", _case(a)) is expected


def test_precedence_and_parentheses() -> None:
    data = {"health": 40, "nps": 1, "tier": "tech-touch"}
    # `and` binds tighter than `or`.
    assert truth("tier is tech-touch or health > 50 and nps > 5", data) is True
    assert truth("(tier is tech-touch or health > 50) and nps > 5", data) is False


# --------------------------------------------------------------------------- after / before


def test_days_after_is_true_from_exactly_that_instant() -> None:
    signed = "2026-03-02T09:00:00+09:00"  # AT is exactly 14 days later
    data = {"signed_at": signed}
    assert truth("14 days after signed_at", data, AT) is True
    assert truth("14 days after signed_at", data, at_minus(seconds=1)) is False
    assert truth("14 days after signed_at", data, at_plus(days=300)) is True


def test_days_are_exact_24_hours_not_calendar_dates() -> None:
    # Signed at 23:00 on 2 March: on 16 March at 09:00 only 13 days 10 hours have passed.
    data = {"signed_at": "2026-03-02T23:00:00+09:00"}
    assert truth("14 days after signed_at", data, AT) is False
    assert truth("14 days after signed_at", data, "2026-03-16T23:00:00+09:00") is True


def test_days_after_a_date_without_time_counts_from_midnight() -> None:
    # Dates without a time are midnight in the fixture's zone (here the engine's, UTC).
    data = {"signed_at": "2026-03-02"}
    assert truth("14 days after signed_at", data, "2026-03-16T00:00:00+00:00") is True
    assert truth("14 days after signed_at", data, "2026-03-15T23:59:59+00:00") is False


def test_days_before_is_a_window_ending_at_the_date() -> None:
    renewal = "2026-06-14T09:00:00+09:00"  # AT is exactly 90 days before
    data = {"renewal_date": renewal}
    assert truth("90 days before renewal_date", data, AT) is True
    assert truth("90 days before renewal_date", data, at_minus(seconds=1)) is False
    assert truth("90 days before renewal_date", data, at_plus(days=45)) is True
    assert truth("90 days before renewal_date", data, "2026-06-14T08:59:59+09:00") is True
    # On the date itself it is no longer "before" it, nor after.
    assert truth("90 days before renewal_date", data, renewal) is False
    assert truth("90 days before renewal_date", data, "2026-07-01T00:00:00+09:00") is False


# --------------------------------------------------------------------------- days since / until


@pytest.mark.parametrize(
    ("signed_at", "expected"),
    [
        (at_minus(days=3), 3),
        (at_minus(days=3, seconds=-1), 2),  # one second short of three days
        (at_minus(days=3, hours=23, minutes=59), 3),
        (at_minus(seconds=1), 0),
        (AT, 0),
    ],
)
def test_days_since_counts_whole_days_rounded_down(signed_at: str, expected: int) -> None:
    assert value("days since signed_at", {"signed_at": signed_at}) == expected


@pytest.mark.parametrize(
    ("renewal", "expected"),
    [(at_plus(days=2), 2), (at_plus(days=2, seconds=-1), 1), (at_plus(hours=23), 0)],
)
def test_days_until_counts_whole_days_rounded_down(renewal: str, expected: int) -> None:
    assert value("days until renewal_date", {"renewal_date": renewal}) == expected


def test_days_since_last_event() -> None:
    events = [login(at_minus(days=30)), login(at_minus(days=3, seconds=-1)), login(at_plus(days=1))]
    # The most recent login not after `at`; whole days, rounded down.
    assert value("days since last login", {"events": events}) == 2


# --------------------------------------------------------------------------- milestones


def test_milestone_incomplete_after_14_days_boundary() -> None:
    data = {"signed_at": "2026-03-02T09:00:00+09:00"}
    assert truth("onboarding incomplete after 14 days", data, AT) is True
    assert truth("onboarding incomplete after 14 days", data, at_minus(seconds=1)) is False


def test_milestone_done_is_never_unknown() -> None:
    done = {"signed_at": "2026-03-01T00:00:00+09:00", "onboarding_completed_at": at_minus(hours=1)}
    later = {**done, "onboarding_completed_at": at_plus(hours=1)}
    assert truth("onboarding complete", done) is True
    assert truth("onboarding incomplete", done) is False
    assert truth("onboarding incomplete after 14 days", done) is False
    # Done later than the evaluation time: not done yet.
    assert truth("onboarding complete", later) is False
    assert truth("onboarding incomplete after 14 days", later) is True
    # Done at exactly the evaluation time counts as done.
    exact = {**done, "onboarding_completed_at": AT}
    assert truth("onboarding complete", exact) is True
    # Nothing known at all: not complete, incomplete (never unknown) ...
    assert truth("onboarding complete", {}) is False
    assert truth("onboarding incomplete", {}) is True
    # ... but "after 14 days" needs the start: unknown without it.
    assert truth("onboarding incomplete after 14 days", {}) is None
    # Done even without a start: not incomplete.
    assert truth("onboarding incomplete after 14 days",
                 {"onboarding_completed_at": at_minus(days=1)}) is False


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("when", "counted"),
    [
        (at_minus(days=7), 0),  # the far end is excluded
        (at_minus(days=7, seconds=-1), 1),  # one second inside
        (at_minus(days=3), 1),
        (AT, 1),  # an event exactly at `at` is in
        (at_plus(seconds=1), 0),  # after `at`: not yet happened
    ],
)
def test_window_excludes_its_far_end_and_the_future(when: str, counted: int) -> None:
    assert value("count login in last 7 days", {"events": [login(when)]}) == counted


def test_count_with_a_filter() -> None:
    events = [login(at_minus(days=1), user="u1"), login(at_minus(days=2), user="u2"),
              login(at_minus(days=3), user="u1"), login(at_minus(days=9), user="u1")]
    data = {"events": events}
    assert value('count login where user is "u1" in last 7 days', data) == 2
    assert value('count login where user is not "u1" in last 7 days', data) == 1
    assert value("count login in last 7 days", data) == 3
    assert value("distinct user of login in last 7 days", data) == 2
    assert value("distinct user of login in last 30 days", data) == 2


def test_numeric_aggregates() -> None:
    events = [login(at_minus(days=1), minutes=10), login(at_minus(days=2), minutes=25),
              login(at_minus(days=3), minutes=4), login(at_minus(days=3)),  # no minutes
              login(at_minus(days=10), minutes=1000)]
    data = {"events": events}
    assert value("sum minutes of login in last 7 days", data) == 39
    assert value("average minutes of login in last 7 days", data) == 13
    assert value("min minutes of login in last 7 days", data) == 4
    assert value("max minutes of login in last 7 days", data) == 25
    assert value('sum minutes of login where minutes > 5 in last 7 days', data) == 35
    assert value("average minutes of login in last 30 days", data) == Decimal(1039) / 4


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("count login in last 7 days", 0),
        ("distinct user of login in last 7 days", 0),
        ("sum minutes of login in last 7 days", 0),
        ("average minutes of login in last 7 days", None),
        ("min minutes of login in last 7 days", None),
        ("max minutes of login in last 7 days", None),
        ("last score of nps_submitted", None),
        ("days since last login", None),
    ],
)
def test_aggregates_over_no_events(expression: str, expected: int | None) -> None:
    # Only events of other types, and one in the future: none count.
    data = {"events": [nps(at_minus(days=40), 3), login(at_plus(days=1), minutes=5, user="u")]}
    if expression.startswith("last score"):
        data = {"events": [login(at_minus(days=1)), nps(at_plus(days=1), 9)]}
    result = value(expression, data)
    if expected is None:
        assert result is None
    else:
        assert result == expected and isinstance(result, Decimal)


def test_aggregates_over_no_events_in_conditions() -> None:
    assert truth("count login in last 30 days = 0", {}) is True
    assert truth("sum minutes of login in last 30 days < 1", {}) is True
    assert truth("average minutes of login in last 30 days < 1", {}) is None
    assert truth("days since last login > 21", {}) is None


def test_last_takes_the_most_recent_event_up_to_at() -> None:
    events = [nps(at_minus(days=5), 3), nps(at_minus(days=1), 8), nps(at_plus(hours=1), 1)]
    data = {"events": events}
    assert value("last score of nps_submitted", data) == 8
    assert value("last score of nps_submitted", data, at_minus(days=2)) == 3


# --------------------------------------------------------------------------- history


def health_history(*entries: tuple[str, int | None], now: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"history": {"health": [{"at": a, "value": v} for a, v in entries]}}
    if now is not None:
        data["health"] = now
    return data


def test_history_value_holds_until_the_next_and_is_missing_before_the_first() -> None:
    data = health_history(("2026-03-01T00:00:00+09:00", 70), ("2026-03-10T00:00:00+09:00", 60),
                          now=48)
    assert value("health", data, AT) == 48
    assert value("health", data, "2026-03-12T00:00:00+09:00") == 60
    assert value("health", data, "2026-03-10T00:00:00+09:00") == 60
    assert value("health", data, "2026-03-09T23:59:59+09:00") == 70
    assert value("health", data, "2026-02-28T00:00:00+09:00") is None


def test_field_without_history_had_its_value_all_along() -> None:
    assert value("seats", {"seats": 5}, "2020-01-01T00:00:00+00:00") == 5


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [(62, 48, T), (50, 49, T), (49, 48, F), (62, 50, F), (None, 48, U), (62, None, U)],
)
def test_drops_below(before: int | None, now: int | None, expected: bool | None) -> None:
    data = health_history((at_minus(days=10), before), now=now)
    assert truth("health drops below 50", data) is expected


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [(80, 81, T), (70, 90, T), (81, 90, F), (70, 80, F), (None, 90, U)],
)
def test_rises_above(before: int | None, now: int | None, expected: bool | None) -> None:
    data = health_history((at_minus(days=10), before), now=now)
    assert truth("health rises above 80", data) is expected


def test_drops_below_compares_with_the_previous_evaluation_only() -> None:
    # 62 until 2 days ago, then 49 and now 48: the drop happened before the previous
    # evaluation (at - 1 day), so it is not a drop now.
    data = health_history((at_minus(days=10), 62), (at_minus(days=2), 49), now=48)
    assert truth("health drops below 50", data) is False
    # With evaluations three days apart, the previous one saw 62.
    assert truth("health drops below 50", data, interval=timedelta(days=3)) is True
    # The change exactly at the previous evaluation is already seen by it.
    data = health_history((at_minus(days=10), 62), (at_minus(days=1), 49), now=48)
    assert truth("health drops below 50", data) is False
    data = health_history((at_minus(days=10), 62), (at_minus(hours=23), 49), now=48)
    assert truth("health drops below 50", data) is True


def stage_history(before: str | None, now: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"history": {"stage": [{"at": at_minus(days=10), "value": before}]}}
    if now is not None:
        data["stage"] = now
    return data


@pytest.mark.parametrize(
    ("condition", "before", "now", "expected"),
    [
        ("stage changes to adoption", "onboarding", "adoption", T),
        ("stage changes to adoption", "adoption", "adoption", F),
        ("stage changes to adoption", "onboarding", "renewal", F),
        ("stage changes to adoption", None, "adoption", U),
        ("stage changes from onboarding to adoption", "onboarding", "adoption", T),
        ("stage changes from onboarding to adoption", "renewal", "adoption", F),
        ("stage changes from onboarding to adoption", "onboarding", "renewal", F),
        ("stage changes from onboarding to adoption", "onboarding", "onboarding", F),
    ],
)
def test_changes(condition: str, before: str | None, now: str, expected: bool | None) -> None:
    assert truth(condition, stage_history(before, now)) is expected


# --------------------------------------------------------------------------- for


def test_for_14_days_needs_every_daily_evaluation_back_to_14_days_ago() -> None:
    # Below 50 since exactly 14 days ago: true at all 15 daily evaluations.
    since = health_history((at_minus(days=30), 70), (at_minus(days=14), 40), now=40)
    assert truth("health < 50 for 14 days", since) is True
    # One second later: the evaluation 14 days ago still saw 70.
    later = health_history((at_minus(days=30), 70), (at_minus(days=14, seconds=-1), 40), now=40)
    assert truth("health < 50 for 14 days", later) is False
    # False now: false.
    assert truth("health < 50 for 14 days", {**since, "health": 60}) is False


def test_for_ignores_what_happens_between_evaluations() -> None:
    # Above 50 for a few hours between two daily evaluations: never seen.
    blip = health_history(
        (at_minus(days=30), 40), (at_minus(days=5, hours=-2), 70), (at_minus(days=5, hours=-8), 40),
        now=40,
    )
    assert truth("health < 50 for 14 days", blip) is True
    # Nor with evaluations every 12 hours (at - 5 days, at - 4.5 days); the next blip,
    # around at - 4.5 days, is seen by those only.
    assert truth("health < 50 for 14 days", blip, interval=timedelta(hours=12)) is True
    blip12 = health_history(
        (at_minus(days=30), 40), (at_minus(days=4, hours=13), 70), (at_minus(days=4, hours=11), 40),
        now=40,
    )
    assert truth("health < 50 for 14 days", blip12) is True
    assert truth("health < 50 for 14 days", blip12, interval=timedelta(hours=12)) is False


def test_for_with_unknown_at_one_evaluation_is_unknown() -> None:
    gap = health_history((at_minus(days=30), 40), (at_minus(days=6), None), (at_minus(days=5), 40),
                         now=40)
    assert truth("health < 50 for 14 days", gap) is None
    # ... but false anywhere makes it false.
    gap_and_false = health_history(
        (at_minus(days=30), 40), (at_minus(days=6), None), (at_minus(days=5), 70),
        (at_minus(days=4), 40), now=40,
    )
    assert truth("health < 50 for 14 days", gap_and_false) is False


def _evaluation_moments(monkeypatch: pytest.MonkeyPatch, condition: str, interval: timedelta
                        ) -> set[datetime]:
    seen: set[datetime] = set()
    original = Account.value

    def spy(self: Account, name: str, when: datetime) -> Any:
        if name == "health":
            seen.add(when)
        return original(self, name, when)

    monkeypatch.setattr(Account, "value", spy)
    assert truth(condition, {"health": 10}, interval=interval) is True
    monkeypatch.undo()
    return seen


def test_for_14_days_is_15_daily_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _evaluation_moments(monkeypatch, "health < 50 for 14 days", timedelta(days=1))
    assert seen == {moment(AT) - timedelta(days=k) for k in range(15)}


def test_for_14_days_with_a_12_hour_interval_is_29_evaluations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _evaluation_moments(monkeypatch, "health < 50 for 14 days", timedelta(hours=12))
    assert len(seen) == 29
    assert seen == {moment(AT) - timedelta(hours=12 * k) for k in range(29)}


def test_for_binds_to_the_one_condition_before_it() -> None:
    # tier changed two days ago; health has been low all along.
    data = {
        "tier": "high-touch",
        "health": 40,
        "history": {"tier": [{"at": at_minus(days=60), "value": "low-touch"},
                             {"at": at_minus(days=2), "value": "high-touch"}]},
    }
    assert truth("tier is high-touch and health < 50 for 14 days", data) is True
    assert truth("(tier is high-touch and health < 50) for 14 days", data) is False
    assert truth("tier is low-touch or health < 50 for 14 days", data) is True
    assert truth("tier is high-touch for 14 days or health > 50", data) is False


def test_segments_and_metrics_are_taken_as_of_earlier_moments() -> None:
    data = health_history((at_minus(days=30), 70), (at_minus(hours=20), 40), now=40)
    assert truth("low-health", data) is True
    assert truth("low-health for 1 day", data) is False
    # The metric `usage` (active / seats) too.
    active = {"seats": 10, "active": 2,
              "history": {"active": [{"at": at_minus(days=30), "value": 8},
                                     {"at": at_minus(hours=20), "value": 2}]}}
    assert truth("usage < 50%", active) is True
    assert truth("usage < 50% for 1 day", active) is False
    assert value("usage", active, at_minus(days=1)) == Decimal("0.8")


# --------------------------------------------------------------------------- time zones


def _tokyo_account(extra: dict[str, Any], now: str = AT) -> Account:
    """A fixture in +09:00 read by an engine whose own zone is UTC."""
    engine = build()
    assert engine.settings.timezone == "UTC"
    fx = fixture(engine, {"now": now, "timezone": "+09:00",
                          "accounts": [{"id": "a", **extra}]})
    return fx.accounts[0]


def test_dates_without_time_are_midnight_in_the_fixtures_zone() -> None:
    acc = _tokyo_account({"signed_at": "2026-03-02"})
    signed = acc.value("signed_at", moment(AT))
    assert isinstance(signed, datetime)
    assert signed == moment("2026-03-02T00:00:00+09:00")
    # 14 days later is 2026-03-16 00:00 in Tokyo, i.e. 15 March 15:00 UTC.
    assert truth("14 days after signed_at", acc, "2026-03-15T15:00:00+00:00") is True
    assert truth("14 days after signed_at", acc, "2026-03-15T14:59:59+00:00") is False
    assert value("days since signed_at", acc, "2026-03-16T14:59:59+00:00") == 14


def test_history_dates_without_time_are_in_the_fixtures_zone() -> None:
    acc = _tokyo_account({"health": 40, "history": {"health": [{"at": "2026-03-01", "value": 70},
                                                               {"at": "2026-03-15", "value": 40}]}})
    assert value("health", acc, "2026-03-14T14:59:59+00:00") == 70
    assert value("health", acc, "2026-03-14T15:00:00+00:00") == 40


# --------------------------------------------------------------------------- more values


def test_membership_of_numbers_and_dates_compared() -> None:
    assert truth("seats in [5, 10]", {"seats": 10}) is True
    assert truth("seats not in [5, 10]", {"seats": 10.0}) is False
    dates = {"signed_at": "2026-01-01T00:00:00+00:00", "renewal_date": "2027-01-01T00:00:00+09:00"}
    assert truth("signed_at < renewal_date", dates) is True
    assert truth("renewal_date - signed_at > 0", dates) in (None, False, True)  # no crash


def test_filters_reach_event_fields_by_bare_or_full_name() -> None:
    events = [login(at_minus(days=1), user="u1"), login(at_minus(days=2), user="u2")]
    assert value('count login where event.user is "u1" in last 7 days', {"events": events}) == 1
    assert value('count login where user is "u1" or user is "u2" in last 7 days',
                 {"events": events}) == 2
    # A filter that is unknown for an event does not count it.
    assert value('count login where minutes > 1 in last 7 days', {"events": events}) == 0


def test_crossing_against_a_computed_threshold() -> None:
    data = health_history((at_minus(days=10), 40), now=12)
    assert truth("health drops below seats * 2", {**data, "seats": 10}) is True
    assert truth("health drops below seats * 2", data) is None
