"""When rules fire: the default semantics over earlier evaluations, the modifiers, event
rules, scope, draft and paused playbooks, and the snapshot every rule of an evaluation
sees (LANGUAGE.md, "Modifiers" and "The dry-run contract").

Evaluations are one interval apart (a day unless said otherwise), ending at `AT`. A
state rule's earlier firings come from the account's `fired` list.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from evalkit import AT, build, moment, one, rules, run

DAY = timedelta(days=1)


def ago(**kw: float) -> str:
    return (moment(AT) - timedelta(**kw)).isoformat()


def fired(rule: str, when: str, playbook: str = "P") -> dict[str, str]:
    return {"playbook": playbook, "rule": rule, "at": when}


def low_health(*changes: tuple[str, int | None], now: int | None = 40,
               **extra: Any) -> dict[str, Any]:
    """An account whose health history is `changes`; health < 50 is the condition."""
    data: dict[str, Any] = {"history": {"health": [{"at": a, "value": v} for a, v in changes]}}
    if now is not None:
        data["health"] = now
    return {**data, **extra}


def state_rule(modifiers: str = "", condition: str = "health < 50", header: str = "") -> str:
    body = f'rule "R"\n  when {condition}\n  then notify "c" "fired"\n'
    body += "".join(f"  {m}\n" for m in modifiers.strip().splitlines())
    return rules(body, header=header)


DEFAULT = build(state_rule())


# --------------------------------------------------------------------------- the default


def test_a_true_rule_with_no_firing_record_fires() -> None:
    result = one(DEFAULT, low_health((ago(days=100), 40)))
    assert result.fired("R")
    assert result.actions == [{"account": "a", "playbook": "P", "rule": "R", "kind": "notify",
                               "channel": "c", "message": "fired"}]


def test_false_and_unknown_do_not_fire() -> None:
    assert not one(DEFAULT, {"health": 60}).fired("R")
    assert not one(DEFAULT, {}).fired("R")


def test_condition_that_stayed_true_since_the_firing_is_not_rearmed() -> None:
    data = low_health((ago(days=100), 40), fired=[fired("R", ago(days=10))])
    result = one(DEFAULT, data)
    assert not result.fired("R")
    assert "already fired" in result.reason("R")


def test_false_at_an_evaluation_after_the_firing_rearms() -> None:
    data = low_health((ago(days=100), 40), (ago(days=4), 60), (ago(days=3), 40),
                      fired=[fired("R", ago(days=10))])
    assert one(DEFAULT, data).fired("R")


def test_false_at_the_previous_evaluation_rearms() -> None:
    data = low_health((ago(days=100), 40), (ago(days=1), 60), (ago(hours=1), 40),
                      fired=[fired("R", ago(days=10))])
    assert one(DEFAULT, data).fired("R")


def test_false_only_before_or_at_the_firing_does_not_rearm() -> None:
    # False at the evaluation of the firing moment itself (not strictly after it).
    data = low_health((ago(days=100), 60), (ago(days=5, seconds=-1), 40),
                      fired=[fired("R", ago(days=5))])
    assert not one(DEFAULT, data).fired("R")
    # False long before the firing.
    data = low_health((ago(days=100), 60), (ago(days=50), 40), fired=[fired("R", ago(days=10))])
    assert not one(DEFAULT, data).fired("R")


def test_false_only_between_evaluations_does_not_rearm() -> None:
    # Healthy for a few hours between two daily evaluations: no evaluation saw it.
    data = low_health((ago(days=100), 40), (ago(days=2, hours=13), 60),
                      (ago(days=2, hours=11), 40), fired=[fired("R", ago(days=10))])
    assert not one(DEFAULT, data).fired("R")
    # Evaluations every 12 hours see it (at - 2.5 days).
    assert one(DEFAULT, data, interval=timedelta(hours=12)).fired("R")


def test_unknown_does_not_rearm() -> None:
    data = low_health((ago(days=100), 40), (ago(days=4), None), (ago(days=2), 40),
                      fired=[fired("R", ago(days=10))])
    result = one(DEFAULT, data)
    assert not result.fired("R")


def test_scope_does_not_rearm() -> None:
    engine = build(state_rule(header="applies to stage is adoption"))
    data = low_health(
        (ago(days=100), 40), fired=[fired("R", ago(days=10))], stage="adoption",
    )
    data["history"]["stage"] = [{"at": ago(days=100), "value": "adoption"},
                                {"at": ago(days=4), "value": "churned"},
                                {"at": ago(days=2), "value": "adoption"}]
    assert not one(engine, data).fired("R")


def test_unless_does_not_rearm() -> None:
    engine = build(state_rule("unless vip"))
    data = low_health((ago(days=100), 40), fired=[fired("R", ago(days=10))], vip=False)
    data["history"]["vip"] = [{"at": ago(days=100), "value": False},
                              {"at": ago(days=4), "value": True},
                              {"at": ago(days=2), "value": False}]
    assert not one(engine, data).fired("R")


def test_only_the_last_firing_counts() -> None:
    # Re-armed after the first firing, but not since the second.
    data = low_health((ago(days=100), 40), (ago(days=8), 60), (ago(days=7), 40),
                      fired=[fired("R", ago(days=10)), fired("R", ago(days=5))])
    assert not one(DEFAULT, data).fired("R")


def test_firings_of_other_rules_or_playbooks_do_not_count() -> None:
    data = low_health((ago(days=100), 40),
                      fired=[fired("Other", ago(days=2)), fired("R", ago(days=2), "Q")])
    assert one(DEFAULT, data).fired("R")


# --------------------------------------------------------------------------- once per account


def test_once_per_account_never_fires_twice() -> None:
    engine = build(state_rule("once per account"))
    fresh = low_health((ago(days=100), 40))
    assert one(engine, fresh).fired("R")
    # Re-armed many times since, still never again.
    data = low_health((ago(days=400), 40), (ago(days=300), 60), (ago(days=200), 40),
                      (ago(days=3), 60), (ago(days=2), 40), fired=[fired("R", ago(days=365))])
    result = one(engine, data)
    assert not result.fired("R")
    assert "once per account" in result.reason("R")


# --------------------------------------------------------------------------- at most once every


COOL = build(state_rule("at most once every 30 days"))


@pytest.mark.parametrize(("days", "fires"), [(10, False), (29, False), (30, True), (45, True)])
def test_at_most_once_every_holds_even_when_rearmed(days: int, fires: bool) -> None:
    data = low_health((ago(days=100), 40), (ago(days=3), 60), (ago(days=2), 40),
                      fired=[fired("R", ago(days=days))])
    result = one(COOL, data)
    assert result.fired("R") is fires
    if not fires:
        assert "at most once every 30 days" in result.reason("R")


def test_at_most_once_every_is_on_top_of_the_default() -> None:
    # 45 days since the firing, but never re-armed: still not.
    data = low_health((ago(days=100), 40), fired=[fired("R", ago(days=45))])
    assert not one(COOL, data).fired("R")


def test_at_most_once_every_one_second_short() -> None:
    data = low_health((ago(days=100), 40), (ago(days=3), 60), (ago(days=2), 40),
                      fired=[fired("R", ago(days=30, seconds=-1))])
    assert not one(COOL, data).fired("R")


# --------------------------------------------------------------------------- repeat every


REPEAT = build(state_rule("repeat every 7 days"))


@pytest.mark.parametrize(("since", "fires"), [
    ({"days": 7}, True),
    ({"days": 8}, True),
    ({"days": 6}, False),
    ({"days": 7, "seconds": -1}, False),
])
def test_repeat_every_fires_again_while_true(since: dict[str, int], fires: bool) -> None:
    data = low_health((ago(days=100), 40), fired=[fired("R", ago(**since))])
    result = one(REPEAT, data)
    assert result.fired("R") is fires
    if not fires:
        assert "repeats once 7 days have passed" in result.reason("R")


def test_repeat_every_needs_the_condition_now() -> None:
    data = low_health((ago(days=100), 40), now=60, fired=[fired("R", ago(days=20))])
    assert not one(REPEAT, data).fired("R")


def test_repeat_every_still_fires_on_rearm() -> None:
    data = low_health((ago(days=100), 40), (ago(days=3), 60), (ago(days=2), 40),
                      fired=[fired("R", ago(days=4))])
    assert one(REPEAT, data).fired("R")


# --------------------------------------------------------------------------- unless


UNLESS = build(state_rule("unless vip"))


@pytest.mark.parametrize(("vip", "fires"), [(True, False), (False, True), (None, True)])
def test_unless_blocks_only_when_true(vip: bool | None, fires: bool) -> None:
    data: dict[str, Any] = {"health": 40}
    if vip is not None:
        data["vip"] = vip
    result = one(UNLESS, data)
    assert result.fired("R") is fires
    if not fires:
        assert "unless" in result.reason("R")


def test_unless_with_an_unknown_comparison_does_not_block() -> None:
    engine = build(state_rule("unless nps > 8"))
    assert one(engine, {"health": 40}).fired("R")
    assert not one(engine, {"health": 40, "nps": 9}).fired("R")


# --------------------------------------------------------------------------- scope


SCOPED = build(state_rule(header="applies to stage is adoption"))


@pytest.mark.parametrize(("stage", "fires"), [("adoption", True), ("churned", False),
                                              (None, False)])
def test_accounts_outside_the_scope_are_never_acted_on(stage: str | None, fires: bool) -> None:
    data: dict[str, Any] = {"health": 40}
    if stage:
        data["stage"] = stage
    result = one(SCOPED, data)
    assert result.fired("R") is fires
    if not fires:
        assert "scope" in result.reason("R")


# --------------------------------------------------------------------------- stop when / wait


SEQUENCE = build(rules('''
rule "R"
  when health < 50
  then
    create task "first" for csm due in 2 days
    notify "c" "also first"
    wait 30 days
    create task "second" for csm due in 7 days
    wait 1 day
    notify "c" "third"
  stop when vip
'''))


def test_steps_after_a_wait_carry_scheduled_at_and_count_their_due_from_then() -> None:
    result = one(SEQUENCE, {"health": 40, "csm": {"name": "C", "email": "c@x.example"}})
    actions = result.actions
    assert [a.get("title") or a.get("message") for a in actions] == [
        "first", "also first", "second", "third"]
    assert "scheduled_at" not in actions[0] and "scheduled_at" not in actions[1]
    assert actions[0]["due"] == "2026-03-18"  # dates in the engine's zone (UTC): 16 March 00:00
    assert actions[2]["scheduled_at"] == "2026-04-15T00:00:00+00:00"
    assert actions[2]["due"] == "2026-04-22"
    assert actions[3]["scheduled_at"] == "2026-04-16T00:00:00+00:00"


@pytest.mark.parametrize(("vip", "count"), [(True, 2), (False, 4), (None, 4)])
def test_stop_when_already_true_runs_only_the_steps_before_the_first_wait(
    vip: bool | None, count: int
) -> None:
    data: dict[str, Any] = {"health": 40, "csm": {"name": "C", "email": "c@x.example"}}
    if vip is not None:
        data["vip"] = vip
    result = one(SEQUENCE, data)
    assert result.fired("R")
    assert len(result.actions) == count
    assert all("scheduled_at" not in a for a in result.actions[:2])


# --------------------------------------------------------------------------- event rules


NPS = build(rules('''
rule "Detractor"
  on nps_submitted where score <= 6
  then create task "NPS {{ event.score }} from {{ account.name }}" for csm due in 1 business day
'''))


def nps(when: str, score: int, **fields: Any) -> dict[str, Any]:
    return {"type": "nps_submitted", "at": when, "score": score, **fields}


def titles(result: Any) -> list[str]:
    return [a["title"] for a in result.actions]


def test_event_rule_fires_once_per_matching_event_in_the_interval() -> None:
    events = [
        nps(ago(days=1), 1),  # exactly at the previous evaluation: already seen then
        nps(ago(days=1, seconds=-1), 2),  # just after it
        nps(ago(hours=5), 9),  # does not match
        nps(ago(hours=3), 3),
        nps(AT, 4),  # exactly at `at`: included
        nps(ago(seconds=-1), 5),  # after `at`: not yet
    ]
    result = one(NPS, {"name": "Acme", "events": events})
    assert titles(result) == ["NPS 2 from Acme", "NPS 3 from Acme", "NPS 4 from Acme"]
    assert result.firings("Detractor") == 3


def test_event_rule_window_follows_the_interval() -> None:
    events = [nps(ago(hours=13), 1), nps(ago(hours=11), 2)]
    result = one(NPS, {"name": "Acme", "events": events}, interval=timedelta(hours=12))
    assert titles(result) == ["NPS 2 from Acme"]


def test_event_rule_without_events_does_not_fire_and_says_why() -> None:
    result = one(NPS, {"name": "Acme"})
    assert not result.fired("Detractor")
    assert "no 'nps_submitted' event" in result.reason("Detractor")


def test_event_rule_is_not_subject_to_the_state_default() -> None:
    # A firing yesterday morning does not stop the rule firing for today's answer.
    data = {"events": [nps(ago(hours=2), 1)], "fired": [fired("Detractor", ago(hours=20))]}
    assert one(NPS, data).fired("Detractor")


def test_event_rule_times_count_from_the_event() -> None:
    # Answer given on Sunday afternoon, evaluated on Monday: one business day after the
    # answer is Monday (the time of the evaluation would give Tuesday).
    events = [nps("2026-03-15T15:00:00+09:00", 4)]
    result = run(NPS, {"timezone": "Asia/Tokyo", "accounts": [{"id": "a", "events": events}]})
    assert result.actions[0]["due"] == "2026-03-16"


def test_event_rule_scope_and_condition_are_as_of_the_event() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted where score <= 6 and days since signed_at < 10
  then notify "c" "{{ event.score }}"
''', header="applies to stage is adoption"))
    stage = [{"at": ago(days=50), "value": "adoption"}, {"at": ago(hours=2), "value": "renewal"}]
    data = {
        "stage": "renewal",  # now; it was adoption when the first answer came
        "signed_at": ago(days=10, hours=-10),  # 10 whole days by now; 9 at the first answer
        "history": {"stage": stage},
        "events": [nps(ago(hours=12), 1), nps(ago(hours=1), 2)],
    }
    result = one(engine, data)
    assert [a["message"] for a in result.actions] == ["1"]
    second = [o for o in result.outcomes if o.event_at and not o.fired]
    assert len(second) == 1 and "scope" in second[0].reason


def test_event_rule_unless_and_aggregates_as_of_the_event() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted where count login in last 1 day = 0
  then notify "c" "{{ event.score }}"
  unless has tag "quiet"
'''))
    events = [nps(ago(hours=12), 1), {"type": "login", "at": ago(hours=6)}, nps(ago(hours=1), 2)]
    assert [a["message"] for a in one(engine, {"events": events}).actions] == ["1"]
    assert one(engine, {"events": events, "tags": ["quiet"]}).actions == []


def test_event_rule_bare_names_are_the_events_fields_first() -> None:
    # `nps_submitted` has a text field `tier`; the account has an enum field `tier`.
    engine = build(rules('''
rule "Event tier"
  on nps_submitted where tier is "gold"
  then notify "c" "event"

rule "Account tier"
  on nps_submitted where account.tier is high-touch
  then notify "c" "account"

rule "Both"
  on nps_submitted where event.tier is "gold" and account.tier is high-touch
  then notify "c" "both"
'''))
    data = {"tier": "high-touch", "events": [nps(ago(hours=1), 9, tier="gold")]}
    assert [a["message"] for a in one(engine, data).actions] == ["event", "account", "both"]
    data = {"tier": "low-touch", "events": [nps(ago(hours=1), 9, tier="silver")]}
    assert one(engine, data).actions == []


def test_event_rule_at_most_once_every_counts_firings_earlier_in_the_run() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted where score >= 9
  then notify "c" "{{ event.score }}"
  at most once every 30 days
'''))
    events = [nps(ago(hours=20), 9), nps(ago(hours=10), 10)]
    result = one(engine, {"events": events})
    assert [a["message"] for a in result.actions] == ["9"]
    assert result.firings("R") == 1
    blocked = [o for o in result.of("R") if not o.fired]
    assert "at most once every 30 days" in blocked[0].reason
    # And firings from the fixture's record.
    data = {"events": events, "fired": [fired("R", ago(days=29))]}
    assert one(engine, data).actions == []
    data = {"events": events, "fired": [fired("R", ago(days=30, hours=15))]}
    assert [a["message"] for a in one(engine, data).actions] == ["10"]


def test_event_rule_once_per_account_counts_firings_earlier_in_the_run() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted
  then notify "c" "{{ event.score }}"
  once per account
'''))
    events = [nps(ago(hours=20), 3), nps(ago(hours=10), 4)]
    assert [a["message"] for a in one(engine, {"events": events}).actions] == ["3"]
    data = {"events": events, "fired": [fired("R", ago(days=400))]}
    assert one(engine, data).actions == []


# --------------------------------------------------------------------------- draft, paused


def test_draft_playbooks_run_in_a_dry_run_and_paused_ones_do_not() -> None:
    engine = build(
        rules('rule "A"\n  when health < 50\n  then notify "c" "active"\n', name="Active"),
        rules('rule "D"\n  when health < 50\n  then notify "c" "draft"\n',
              header="status draft", name="Draft"),
        rules('rule "Z"\n  when health < 50\n  then notify "c" "paused"\n',
              header="status paused", name="Paused"),
    )
    result = one(engine, {"health": 10})
    assert [a["message"] for a in result.actions] == ["active", "draft"]
    assert {o.playbook for o in result.outcomes} == {"Active", "Draft"}


# --------------------------------------------------------------------------- snapshot


def test_every_rule_of_one_evaluation_sees_the_same_snapshot() -> None:
    engine = build(rules('''
rule "Tag it"
  when health < 50
  then
    add tag "watch"
    remove tag "fine"
    set stage to renewal

rule "Tagged"
  when has tag "watch"
  then notify "c" "tagged"

rule "Untagged"
  when not has tag "fine"
  then notify "c" "untagged"

rule "Stage"
  when stage is renewal
  then notify "c" "renewal"

rule "Stage before"
  when stage is adoption
  then notify "c" "adoption"
'''))
    result = one(engine, {"health": 10, "stage": "adoption", "tags": ["fine"]})
    assert [a["kind"] for a in result.actions_of("Tag it")] == ["tag", "tag", "set"]
    assert not result.fired("Tagged")
    assert not result.fired("Untagged")
    assert not result.fired("Stage")
    assert result.fired("Stage before")


def test_event_rules_see_the_snapshot_too() -> None:
    engine = build(rules('''
rule "Tag it"
  on nps_submitted
  then add tag "asked"

rule "Ask once"
  on nps_submitted where not has tag "asked"
  then notify "c" "{{ event.score }}"
'''))
    events = [nps(ago(hours=20), 3), nps(ago(hours=10), 4)]
    result = one(engine, {"events": events})
    assert [a["message"] for a in result.actions_of("Ask once")] == ["3", "4"]


def test_event_rule_unless_stop_when_and_account_values_as_of_the_event() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted where account.health < 50
  then
    notify "c" "{{ event.score }} now"
    wait 1 day
    notify "c" "{{ event.score }} later"
  unless score = 0
  stop when score >= 5
'''))
    history = {"health": [{"at": ago(days=30), "value": 40}, {"at": ago(hours=6), "value": 90}]}
    events = [nps(ago(hours=20), 3), nps(ago(hours=16), 0), nps(ago(hours=12), 7),
              nps(ago(hours=2), 1)]  # health was 90 by then
    result = one(engine, {"health": 90, "history": history, "events": events})
    assert [a["message"] for a in result.actions] == ["3 now", "3 later", "7 now"]
    assert result.actions[1]["scheduled_at"] == "2026-03-16T04:00:00+00:00"
    reasons = [o.reason for o in result.of("R")]
    assert reasons[1] == "its 'unless' condition is true"
    assert reasons[3] == "the condition is false"


def test_a_firing_recorded_at_the_moment_itself_counts() -> None:
    data = low_health((ago(days=100), 40), fired=[fired("R", AT)])
    assert not one(DEFAULT, data).fired("R")
    # A record later than the moment evaluated is not an earlier firing.
    data = low_health((ago(days=100), 40), fired=[fired("R", ago(days=-1))])
    assert one(DEFAULT, data).fired("R")
