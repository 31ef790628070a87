"""Explain: why a rule fires or not, in words a reviewer reads without the code.

The outcome's `reason` says what decided; its `explanation` lines show each part of the
condition with its truth value and the values behind it, the scope, `unless`, and who
the actions reach.
"""

from __future__ import annotations

from datetime import timedelta

from evalkit import AT, build, moment, one, rules

ENGINE = build(rules('''
rule "Low health"
  when health < 50 and tier is high-touch
  then send email "hello" to admin, champion cc csm
  at most once every 30 days
  unless has tag "do-not-contact"

rule "Flag"
  when vip
  then create task "VIP {{ account.name }}" for csm
''', header="applies to stage is adoption"))


def ago(**kw: float) -> str:
    return (moment(AT) - timedelta(**kw)).isoformat()


IN_SCOPE = {"stage": "adoption", "tier": "high-touch"}


def test_unknown_names_the_missing_value() -> None:
    result = one(ENGINE, IN_SCOPE, explain=True)
    outcome = result.outcome("Low health")
    assert not outcome.fired and outcome.condition is None
    assert "unknown" in outcome.reason
    text = result.explanation("Low health")
    assert "when health < 50 and tier is high-touch → unknown" in text
    assert "health < 50 → unknown" in text
    assert "health is missing" in text
    assert "tier is high-touch → true" in text


def test_unknown_bare_yes_no_field_names_the_missing_value() -> None:
    text = one(ENGINE, IN_SCOPE, explain=True).explanation("Flag")
    assert "when vip → unknown" in text
    assert "vip is missing" in text


def test_values_seen_are_shown() -> None:
    text = one(ENGINE, {**IN_SCOPE, "health": 48}, explain=True).explanation("Low health")
    assert "health = 48" in text
    assert "→ true" in text


def test_scope_failures_are_explained() -> None:
    result = one(ENGINE, {"stage": "churned", "tier": "high-touch", "health": 10}, explain=True)
    assert "out of the playbook's scope ('applies to' is false)" in result.reason("Low health")
    text = result.explanation("Low health")
    assert "applies to stage is adoption → false" in text
    assert "stage = churned" in text
    unknown = one(ENGINE, {"tier": "high-touch", "health": 10}, explain=True)
    assert "('applies to' is unknown)" in unknown.reason("Low health")
    assert "stage is missing" in unknown.explanation("Low health")


def test_cool_downs_are_explained() -> None:
    data = {**IN_SCOPE, "health": 10,
            "history": {"health": [{"at": ago(days=60), "value": 10},
                                   {"at": ago(days=5), "value": 90},
                                   {"at": ago(days=4), "value": 10}]},
            "fired": [{"playbook": "P", "rule": "Low health", "at": ago(days=10)}]}
    reason = one(ENGINE, data, explain=True).reason("Low health")
    assert reason.startswith("at most once every 30 days")
    assert "last fired on 2026-03-06" in reason


def test_already_fired_is_explained() -> None:
    data = {**IN_SCOPE, "health": 10,
            "fired": [{"playbook": "P", "rule": "Low health", "at": ago(days=40)}]}
    reason = one(ENGINE, data, explain=True).reason("Low health")
    assert reason.startswith("already fired on 2026-02-04")
    assert "has not been false at any evaluation since" in reason
    once = build(rules('rule "R"\n  when health < 50\n  then notify "c" "m"\n  once per account\n'))
    data = {"health": 10, "fired": [{"playbook": "P", "rule": "R", "at": ago(days=400)}]}
    assert one(once, data, explain=True).reason("R").startswith("once per account: it already")


def test_unless_is_explained() -> None:
    data = {**IN_SCOPE, "health": 10, "tags": ["do-not-contact"]}
    result = one(ENGINE, data, explain=True)
    assert result.reason("Low health") == "its 'unless' condition is true"
    assert 'unless has tag "do-not-contact" → true' in result.explanation("Low health")
    quiet = one(ENGINE, {**IN_SCOPE, "health": 10}, explain=True)
    assert 'unless has tag "do-not-contact" → false' in quiet.explanation("Low health")


def test_recipients_are_explained() -> None:
    data = {**IN_SCOPE, "health": 10, "name": "Acme",
            "csm": {"name": "Sato", "email": "sato@example.com"},
            "contacts": [{"name": "Ann", "email": "ann@x.example", "role": "admin"},
                         {"name": "Cid", "email": "cid@x.example", "role": "champion"},
                         {"name": "Ann", "email": "ann@x.example", "role": "champion"}]}
    result = one(ENGINE, data, explain=True)
    assert result.fired("Low health")
    assert "recipients: ann@x.example, cid@x.example" in result.explanation("Low health")
    assert "recipients: sato@example.com" in result.explanation("Flag") or not result.fired("Flag")


def test_no_recipient_is_explained() -> None:
    result = one(ENGINE, {**IN_SCOPE, "health": 10}, explain=True)
    assert result.fired("Low health")
    reason = result.reason("Low health")
    assert "no recipient" in reason and "admin, champion: none on this account" in reason


def test_event_rules_are_explained_per_event() -> None:
    engine = build(rules('''
rule "Detractor"
  on nps_submitted where score <= 6
  then notify "c" "{{ event.score }}"
'''))
    data = {"events": [{"type": "nps_submitted", "at": ago(hours=5), "score": 9},
                       {"type": "nps_submitted", "at": ago(hours=2)}]}
    result = one(engine, data, explain=True)
    first, second = result.of("Detractor")
    assert "on nps_submitted at" in first.explanation[0]
    assert "score = 9" in "\n".join(first.explanation)
    assert "score is missing" in "\n".join(second.explanation)
    nothing = one(engine, {}, explain=True)
    assert "no 'nps_submitted' event since the previous evaluation" in nothing.reason("Detractor")


def test_explain_does_not_change_the_outcome() -> None:
    for data in ({**IN_SCOPE, "health": 10}, IN_SCOPE, {"stage": "churned"},
                 {**IN_SCOPE, "health": 10, "tags": ["do-not-contact"], "vip": True}):
        plain = one(ENGINE, data)
        explained = one(ENGINE, data, explain=True)
        assert plain.actions == explained.actions
        assert [(o.fired, o.reason) for o in plain.outcomes] == [
            (o.fired, o.reason) for o in explained.outcomes]
