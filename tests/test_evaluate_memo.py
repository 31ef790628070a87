"""Values kept while deciding one account (`Frame.cache`), and the indexed event look-ups.

The evaluator keeps what it computed for an account at a moment (scopes, segments,
metrics, event selections, the inner condition of `for`) and bisects events by type when
their moments allow it. None of it may change an answer: each test here compares with
the plain computation (a fresh frame, the events in a form the index refuses).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from playbook_engine.compile import Compiler, Frame, events_of
from playbook_engine.facts import Account, Event
from playbook_engine.parse import parse_expression
from playbook_engine.timeutil import shift
from tests.evalkit import AT, DAY, account, build, moment, one, rules, schema_engine

JST = timezone(timedelta(hours=9))


def _events(*days_ago: int, kind: str = "login", user: str = "u1") -> list[dict[str, object]]:
    at = moment(AT)
    return [{"type": kind, "at": (at - timedelta(days=d)).isoformat(), "user": user}
            for d in days_ago]


def _value(expression: str, acc: Account, at: datetime, cache: dict[object, object]) -> object:
    fn = Compiler(schema_engine().program).expr(parse_expression(expression))
    return fn(Frame(acc, at, DAY, None, None, cache))


EXPRESSIONS = [
    "count login in last 7 days",
    "count login in last 30 days",
    "count login where user is \"u1\" in last 30 days",
    "distinct user of login in last 30 days",
    "days since last login",
    "last user of login",
    "count login in last 7 days >= 2 for 5 days",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_shared_cache_gives_the_values_of_fresh_frames(expression: str) -> None:
    acc = account(schema_engine(), {"events": _events(0, 1, 3, 3, 8, 20, 40)})
    shared: dict[object, object] = {}
    for back in (0, 1, 2, 5, 9, 1, 0):  # some moments twice, in no particular order
        at = moment(AT) - DAY * back
        assert _value(expression, acc, at, shared) == _value(expression, acc, at, {})


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_events_the_index_refuses_give_the_same_values(expression: str) -> None:
    acc = account(schema_engine(), {"events": _events(0, 1, 3, 3, 8, 20, 40)})
    # Out of time order, or in a named zone: looked at one by one, as before.
    shuffled = dataclasses.replace(acc, events=tuple(reversed(acc.events)))
    tokyo = ZoneInfo("Asia/Tokyo")
    zoned = dataclasses.replace(acc, events=tuple(
        dataclasses.replace(e, at=e.at.astimezone(tokyo)) for e in acc.events))
    assert events_of(shuffled, "login", {}) is None
    assert events_of(zoned, "login", {}) is None
    assert events_of(acc, "login", {}) is not None
    for back in (0, 2, 6):
        at = moment(AT) - DAY * back
        expected = _value(expression, acc, at, {})
        assert _value(expression, zoned, at, {}) == expected
        if "last" not in expression.split()[:3]:  # `last` reads the events in their order
            assert _value(expression, shuffled, at, {}) == expected


def test_the_index_keeps_events_of_one_moment_in_their_order() -> None:
    at = datetime(2026, 3, 10, 9, tzinfo=JST)
    events = tuple(Event("login", at, {"user": u}) for u in ("b", "a", "c"))
    acc = Account("a", None, {}, moment(AT), events=events)
    timeline = events_of(acc, "login", {})
    assert timeline is not None
    assert [e.fields["user"] for e in timeline.between(None, at)] == ["b", "a", "c"]
    assert timeline.between(at, at + DAY) == []
    assert timeline.last(at - timedelta(microseconds=1)) is None
    assert timeline.last(at) is events[-1]
    assert events_of(acc, "logout", {}) is not None
    assert events_of(acc, "logout", {}).between(None, at) == []  # type: ignore[union-attr]


def test_in_a_list_of_texts_and_numbers() -> None:
    engine = schema_engine()
    fn = Compiler(engine.program).condition(parse_expression('plan in ["a", 5, "b"]'))
    only_texts = Compiler(engine.program).condition(parse_expression('plan in ["a", "b", "a"]'))
    negated = Compiler(engine.program).condition(parse_expression('plan not in ["a", 5]'))

    def frame(plan: str) -> Frame:
        return Frame(Account("a", None, {"plan": plan}, moment(AT)), moment(AT))

    assert fn(frame("a")) is True
    assert fn(frame("c")) is None  # a text against a number is unknown
    assert only_texts(frame("c")) is False
    assert negated(frame("a")) is False
    assert negated(frame("c")) is None


def test_rules_sharing_a_scope_and_a_metric_decide_as_one_would_alone() -> None:
    body = """
        rule "One"
          when count login in last 7 days >= 2
          then notify "c" "one {{ account.name }}"
        rule "Two"
          when count login in last 7 days >= 2 and health < 50
          then notify "c" "two {{ health }}"
        rule "Three"
          when count login in last 7 days >= 2 for 3 days
          then notify "c" "three"
    """
    header = "applies to tier is high-touch"
    together = build(rules(body, header=header))
    data = {"name": "Acme", "tier": "high-touch", "health": 40,
            "events": _events(0, 1, 2, 3, 4, 5)}
    result = one(together, data)
    for name in ("One", "Two", "Three"):
        alone = build(rules(body, header=header))
        assert result.outcome(name) == one(alone, data).outcome(name)
        assert result.fired(name)


def test_re_arming_with_a_sustained_condition() -> None:
    # Fired 10 days ago. A login 6 days ago makes the condition false 2 days ago (its
    # 3-day span then reaches back to 5 days ago, in the 2 days after the login); one
    # 14 days ago has no effect after the firing.
    body = """
        rule "Quiet"
          when count login in last 2 days = 0 for 3 days
          then notify "c" "quiet"
    """
    engine = build(rules(body))
    fired = (moment(AT) - DAY * 10).isoformat()
    armed = one(engine, {"events": _events(6), "fired": [{"playbook": "P", "rule": "Quiet",
                                                           "at": fired}]})
    held = one(engine, {"events": _events(14), "fired": [{"playbook": "P", "rule": "Quiet",
                                                          "at": fired}]})
    assert armed.fired("Quiet")
    assert not held.fired("Quiet")
    assert "has not been false" in held.reason("Quiet")


def test_numbers_in_memo_keys_do_not_mix_up_equal_looking_expressions() -> None:
    # Structurally equal nodes share a key; different windows do not.
    acc = account(schema_engine(), {"events": _events(0, 3, 10)})
    shared: dict[object, object] = {}
    at = moment(AT)
    assert _value("count login in last 7 days", acc, at, shared) == Decimal(2)
    assert _value("count login in last 30 days", acc, at, shared) == Decimal(3)
    assert _value("count login in last 7 days", acc, at, shared) == Decimal(2)


# --------------------------------------------------------------------------- exact durations

NEW_YORK = ZoneInfo("America/New_York")


def _ny(day: int, hour: int) -> datetime:
    # Clocks in New York went from 02:00 EST to 03:00 EDT on 2026-03-08.
    return datetime(2026, 3, day, hour, tzinfo=NEW_YORK)


def _ny_account(**fields: object) -> Account:
    events = tuple(Event("login", _ny(d, h), {"user": "u1"}) for d, h in ((7, 11), (7, 13)))
    return Account("a", None, dict(fields), _ny(9, 12), events=events)  # type: ignore[arg-type]


def test_days_after_a_moment_are_exact_across_a_daylight_saving_change() -> None:
    acc = _ny_account(signed_at=_ny(7, 12))  # 17:00 UTC; 24 hours later is 13:00 EDT
    after = Compiler(schema_engine().program).condition(parse_expression("1 day after signed_at"))
    assert after(Frame(acc, _ny(8, 12), DAY)) is False  # 23 hours have passed
    assert after(Frame(acc, _ny(8, 13), DAY)) is True
    before = Compiler(schema_engine().program).condition(
        parse_expression("1 day before signed_at"))
    assert before(Frame(acc, _ny(6, 12), DAY)) is True  # 24 hours before, both in EST


def test_windows_and_earlier_evaluations_are_exact_across_a_daylight_saving_change() -> None:
    acc = _ny_account()
    # The last day before 12:00 EDT on the 8th starts at 11:00 EST on the 7th (16:00 UTC)
    # and leaves out the login at that very moment.
    assert _value("count login in last 1 day", acc, _ny(8, 12), {}) == Decimal(1)
    assert _value("count login in last 25 hours", acc, _ny(8, 12), {}) == Decimal(2)
    assert shift(_ny(8, 12), -DAY) == _ny(7, 11)
    assert shift(_ny(8, 12), -DAY).utcoffset() == timedelta(hours=-5)


def test_a_wait_is_exact_across_a_daylight_saving_change() -> None:
    engine = build(rules("""
        rule "R"
          when health < 50
          then
            notify "c" "now"
            wait 1 day
            notify "c" "later"
    """))
    evaluator = engine.evaluator(NEW_YORK, DAY)
    acc = Account("a", None, {"health": Decimal(40)}, _ny(7, 12))
    outcome = evaluator.evaluate(acc, _ny(7, 12))[0]
    assert [a.scheduled_at for a in outcome.actions] == [None, "2026-03-08T13:00:00-04:00"]


@pytest.mark.parametrize("hours", [-49, -25, -24, -23, -1, 0, 1, 23, 24, 25, 49, 24 * 200])
@pytest.mark.parametrize("start", [_ny(8, 1), _ny(8, 3), _ny(7, 12),
                                   datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK),
                                   datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)])
def test_shift_is_the_utc_sum_written_in_the_zone(start: datetime, hours: int) -> None:
    delta = timedelta(hours=hours)
    expected = (start.astimezone(UTC) + delta).astimezone(NEW_YORK)
    got = shift(start, delta)
    assert (got.replace(tzinfo=None), got.tzinfo, got.fold) == (
        expected.replace(tzinfo=None), expected.tzinfo, expected.fold)


@pytest.mark.parametrize("seed", range(12))
def test_for_at_moments_in_any_order_with_a_shared_cache(seed: int) -> None:
    import random

    rng = random.Random(seed)
    at = moment(AT)
    entries = [{"at": (at - DAY * d).isoformat(), "value": rng.choice([40, 60, None])}
               for d in sorted(rng.sample(range(1, 40), 12), reverse=True)]
    acc = account(schema_engine(), {"health": rng.choice([40, 60]),
                                    "history": {"health": entries}})
    span = rng.choice(["1 day", "3 days", "7 days"])
    fn = Compiler(schema_engine().program).condition(parse_expression(f"health < 50 for {span}"))
    moments = [at - DAY * k for k in range(30)]
    orders = [moments, moments[::-1], rng.sample(moments, len(moments))]
    fresh = {m: fn(Frame(acc, m, DAY)) for m in moments}
    for order in orders:
        shared: dict[object, object] = {}
        assert {m: fn(Frame(acc, m, DAY, None, None, shared)) for m in order} == fresh
