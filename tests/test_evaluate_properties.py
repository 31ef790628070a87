"""Properties of evaluation over random accounts (hypothesis).

- The order of an account's events in the fixture does not matter: the same actions,
  in the same order.
- The order of rules within a playbook does not matter: the same actions as a multiset
  (the output follows rule order, so only the order may change).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from evalkit import AT, build, moment, multiset, rules, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RULES = [
    '''rule "Low"
  when health < 50 and count login in last 7 days < 3
  then
    create task "Low {{ health }}" for csm due in 2 business days priority high
    wait 3 days
    notify "c" "still low"
  stop when vip''',
    '''rule "Quiet"
  when days since last login > 5
  then send email "hello" to admin, champion cc csm
  at most once every 30 days
  unless has tag "dnc"''',
    '''rule "Drop"
  when health drops below 50
  then notify "c" "drop {{ health }}"''',
    '''rule "Sustained"
  when health < 60 for 7 days
  then add tag "sustained"
  repeat every 7 days''',
    'rule "Last"\n'
    "  when last score of nps_submitted <= 6 or max minutes of login in last 10 days > 50\n"
    '  then post webhook "crm" with {score: last score of nps_submitted,'
    " users: distinct user of login in last 30 days,"
    " minutes: sum minutes of login in last 30 days,"
    " avg: average minutes of login in last 30 days,"
    " low: min minutes of login in last 30 days, quiet: days since last login}",
    '''rule "Detractor"
  on nps_submitted where score <= 6
  then create task "NPS {{ event.score }}" for csm due in 1 business day
  at most once every 30 days''',
    '''rule "Any answer"
  on nps_submitted
  then notify "c" "nps {{ event.score }} {{ event.at }}"
  once per account''',
    '''rule "Every answer"
  on nps_submitted where count login in last 3 days >= 1
  then notify "c" "answer {{ event.score }}"''',
]

SECOND = [
    '''rule "Long login"
  on login where minutes > 30
  then notify "c" "long {{ event.user }} {{ event.minutes }}"''',
    '''rule "Stage"
  when stage changes to renewal
  then set plan to "renewing"''',
]


def playbooks(order: list[int], order2: list[int]) -> tuple[str, str]:
    first = rules("\n\n".join(RULES[i] for i in order), header="applies to stage is not churned",
                  name="Props")
    second = rules("\n\n".join(SECOND[i] for i in order2), name="Second")
    return first, second


ENGINE = build(*playbooks(list(range(len(RULES))), list(range(len(SECOND)))))

# Times on a coarse grid (six-hour steps over 40 days) so that events share moments and
# land exactly on evaluation boundaries.
# Half of them in the last two days, where event rules look.
offsets = (st.integers(min_value=-4, max_value=160) | st.integers(min_value=-1, max_value=8)).map(
    lambda k: timedelta(hours=6 * k))


def stamp(offset: timedelta) -> str:
    return (moment(AT) - offset).isoformat()


login = st.builds(
    lambda at, user, minutes: {"type": "login", "at": stamp(at), "user": user,
                               **({"minutes": minutes} if minutes is not None else {})},
    offsets, st.sampled_from(["u1", "u2", "u3"]),
    st.none() | st.integers(min_value=0, max_value=90),
)
answer = st.builds(
    lambda at, score: {"type": "nps_submitted", "at": stamp(at), "score": score},
    offsets, st.integers(min_value=0, max_value=10),
)
maybe_health = st.none() | st.integers(min_value=30, max_value=70)


@st.composite
def accounts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "acc", "name": "Acme"}
    health = draw(maybe_health)
    if health is not None:
        data["health"] = health
    history = sorted(draw(st.lists(st.tuples(offsets, maybe_health), max_size=4)),
                     key=lambda e: -e[0])
    if history:
        data["history"] = {"health": [{"at": stamp(o), "value": v} for o, v in history]}
    data["stage"] = draw(st.sampled_from(["adoption", "renewal", "churned"]))
    if draw(st.booleans()):
        data["history"] = {**data.get("history", {}), "stage": [
            {"at": stamp(draw(offsets)), "value": draw(st.sampled_from(["adoption", "renewal"]))}
        ]}
    if draw(st.booleans()):
        data["vip"] = draw(st.booleans())
    if draw(st.booleans()):
        data["tags"] = ["dnc"]
    data["csm"] = {"name": "Sato", "email": "sato@example.com"}
    data["contacts"] = [{"name": "Ann", "email": "ann@x.example", "role": "admin"},
                        {"name": "Cid", "email": "cid@x.example", "role": "champion"}]
    data["events"] = draw(st.lists(login | answer, max_size=12))
    rule_names = ["Low", "Quiet", "Drop", "Sustained", "Detractor", "Any answer"]
    data["fired"] = [
        {"playbook": "Props", "rule": name, "at": stamp(offset)}
        for name, offset in draw(st.lists(st.tuples(st.sampled_from(rule_names), offsets),
                                          max_size=3))
    ]
    return data


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(accounts(), st.randoms(use_true_random=False))
def test_the_order_of_events_does_not_matter(account: dict[str, Any], rnd: random.Random) -> None:
    shuffled = {**account, "events": rnd.sample(account["events"], len(account["events"]))}
    first = run(ENGINE, [account])
    second = run(ENGINE, [shuffled])
    assert first.actions == second.actions
    assert [(o.rule, o.fired, o.reason) for o in first.outcomes] == [
        (o.rule, o.fired, o.reason) for o in second.outcomes]


@SETTINGS
@given(accounts(), st.permutations(range(len(RULES))), st.permutations(range(len(SECOND))))
def test_the_order_of_rules_does_not_matter(
    account: dict[str, Any], order: list[int], order2: list[int]
) -> None:
    shuffled = build(*playbooks(order, order2))
    first = run(ENGINE, [account])
    second = run(shuffled, [account])
    assert multiset(first.actions) == multiset(second.actions)


def test_same_moment_events_in_either_order() -> None:
    engine = build(rules('''
rule "Last"
  when last score of nps_submitted is present
  then post webhook "crm" with {score: last score of nps_submitted}

rule "Once"
  on nps_submitted
  then notify "c" "{{ event.score }}"
  once per account
'''))
    when = stamp(timedelta(hours=2))
    events = [{"type": "nps_submitted", "at": when, "score": s} for s in (3, 9)]
    forward = run(engine, [{"id": "a", "events": events}]).actions
    backward = run(engine, [{"id": "a", "events": events[::-1]}]).actions
    assert forward == backward
