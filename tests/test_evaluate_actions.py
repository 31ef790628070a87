"""What a firing rule does: emails and their recipients, tasks and due dates, webhooks,
notifications, field and tag changes, sequences; the dry-run's shape and order
(LANGUAGE.md, "Actions" and "The dry-run contract").
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from evalkit import AT, build, one, rules, run

from playbook_engine.settings import Settings

CSM = {"name": "Sato", "email": "sato@example.com"}


def email_rule(recipients: str, template: str = "hello") -> str:
    return rules(f'rule "R"\n  when health < 50\n  then send email "{template}" to {recipients}\n')


def contacts(*triples: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"name": n, "email": e, "role": r} for n, e, r in triples]


# --------------------------------------------------------------------------- emails


def test_one_email_per_recipient_each_rendered_for_that_person() -> None:
    engine = build(email_rule("admin, champion"))
    data = {"name": "Acme", "health": 40, "contacts": contacts(
        ("Ann", "ann@acme.example", "admin"), ("Bob", "bob@acme.example", "admin"),
        ("Cid", "cid@acme.example", "champion"), ("Dee", "dee@acme.example", "billing"))}
    result = one(engine, data)
    emails = result.actions
    assert [e["to"] for e in emails] == [["ann@acme.example"], ["bob@acme.example"],
                                         ["cid@acme.example"]]
    assert [e["subject"] for e in emails] == [
        "Hello Ann of Acme", "Hello Bob of Acme", "Hello Cid of Acme"]
    assert all(e["kind"] == "email" and e["template"] == "hello" for e in emails)
    texts = [getattr(a, "text", None) for o in result.outcomes for a in o.actions]
    assert texts[0] == "Dear Ann,\nhealth is 40.\n"


def test_an_address_reached_through_two_roles_gets_one_email() -> None:
    engine = build(email_rule('admin, champion, "ann@acme.example", csm'))
    data = {"health": 40, "csm": {"name": "Ann", "email": "Ann@Acme.example"},
            "contacts": contacts(("Ann", "ann@acme.example", "admin"),
                                 ("Ann", "ann@acme.example", "champion"))}
    result = one(engine, data)
    assert [e["to"] for e in result.actions] == [["ann@acme.example"]]


def test_recipients_may_be_user_fields_and_quoted_addresses() -> None:
    engine = build(email_rule('csm, "ops@example.com"'))
    result = one(engine, {"health": 40, "csm": CSM})
    assert [e["to"] for e in result.actions] == [["sato@example.com"], ["ops@example.com"]]
    assert result.actions[0]["subject"] == "Hello Sato of"


def test_cc_adds_copies_to_each_email_and_is_never_an_email_of_its_own() -> None:
    engine = build(email_rule("admin cc csm, billing"))
    data = {"health": 40, "csm": CSM, "contacts": contacts(
        ("Ann", "ann@acme.example", "admin"), ("Bob", "bob@acme.example", "admin"),
        ("Bill", "bill@acme.example", "billing"))}
    result = one(engine, data)
    assert [(e["to"], e["cc"]) for e in result.actions] == [
        (["ann@acme.example"], ["sato@example.com", "bill@acme.example"]),
        (["bob@acme.example"], ["sato@example.com", "bill@acme.example"]),
    ]


def test_cc_is_not_a_copy_to_the_recipient_and_lists_an_address_once() -> None:
    engine = build(email_rule('admin cc billing, csm, "SATO@example.com"'))
    data = {"health": 40, "csm": CSM, "contacts": contacts(
        ("Ann", "ann@acme.example", "admin"), ("Ann", "ann@acme.example", "billing"),
        ("Sato", "sato@example.com", "billing"))}
    result = one(engine, data)
    assert [(e["to"], e["cc"]) for e in result.actions] == [
        (["ann@acme.example"], ["sato@example.com"])]


def test_cc_without_any_recipient_sends_nothing() -> None:
    engine = build(email_rule("admin cc csm"))
    result = one(engine, {"health": 40, "csm": CSM})
    assert result.fired("R")
    assert result.actions == []


def test_a_role_with_no_contacts_sends_no_email_and_says_so() -> None:
    engine = build(rules('''
rule "R"
  when health < 50
  then
    send email "hello" to champion
    notify "c" "still here"
'''))
    result = one(engine, {"health": 40, "contacts": contacts(("Ann", "ann@x.example", "admin"))})
    assert result.fired("R")
    assert [a["kind"] for a in result.actions] == ["notify"]
    reason = result.reason("R")
    assert "'hello' has no recipient" in reason and "champion" in reason
    explained = one(engine, {"health": 40}, explain=True)
    assert "champion: none on this account" in explained.reason("R")


def test_send_template_goes_to_the_first_contact_role() -> None:
    engine = build(rules('rule "R"\n  when health < 50\n  then send template "hello"\n'))
    data = {"health": 40, "contacts": contacts(
        ("Cid", "cid@x.example", "champion"), ("Ann", "ann@x.example", "admin"))}
    assert [e["to"] for e in one(engine, data).actions] == [["ann@x.example"]]


def test_send_template_goes_to_the_configured_default_role() -> None:
    engine = build(rules('rule "R"\n  when health < 50\n  then send template "hello"\n'),
                   settings=Settings(default_recipient_role="champion"))
    data = {"health": 40, "contacts": contacts(
        ("Cid", "cid@x.example", "champion"), ("Ann", "ann@x.example", "admin"))}
    assert [e["to"] for e in one(engine, data).actions] == [["cid@x.example"]]


# --------------------------------------------------------------------------- tasks


TASKS = build(rules('''
rule "R"
  when health < 50
  then
    create task "Call {{ account.name }} ({{ health }})" for csm
    create task "Backup" for backup due in 3 days priority low
    create task "Admin" for admin due in 1 business day priority high
'''))


def test_tasks_assignee_title_due_and_priority() -> None:
    data = {"name": "Acme", "health": 48, "csm": CSM,
            "contacts": contacts(("Ann", "ann@x.example", "admin"))}
    result = one(TASKS, data)
    assert result.actions == [
        {"account": "a", "playbook": "P", "rule": "R", "kind": "task",
         "title": "Call Acme (48)", "assignee": "sato@example.com", "priority": "normal"},
        {"account": "a", "playbook": "P", "rule": "R", "kind": "task",
         "title": "Backup", "due": "2026-03-19", "priority": "low"},
        {"account": "a", "playbook": "P", "rule": "R", "kind": "task",
         "title": "Admin", "assignee": "ann@x.example", "due": "2026-03-17", "priority": "high"},
    ]


def test_a_task_whose_assignee_is_missing_is_still_created_without_one() -> None:
    result = one(TASKS, {"health": 40})
    assert [a["title"] for a in result.actions] == ["Call  (40)", "Backup", "Admin"]
    assert all("assignee" not in a for a in result.actions)
    assert all(not o.errors for o in result.outcomes)


BUSINESS = build(rules('''
rule "R"
  when health < 50
  then
    create task "one" for csm due in 1 business day
    create task "three" for csm due in 3 business days
    create task "seven" for csm due in 7 days
'''))


@pytest.mark.parametrize(
    ("at", "one_day", "three_days"),
    [
        ("2026-03-16T09:00:00+00:00", "2026-03-17", "2026-03-19"),  # Monday
        ("2026-03-13T09:00:00+00:00", "2026-03-16", "2026-03-18"),  # Friday
        ("2026-03-14T09:00:00+00:00", "2026-03-16", "2026-03-18"),  # Saturday
        ("2026-03-15T23:59:59+00:00", "2026-03-16", "2026-03-18"),  # Sunday
        ("2026-03-18T09:00:00+00:00", "2026-03-19", "2026-03-23"),  # Wednesday
    ],
)
def test_business_days_count_monday_to_friday(at: str, one_day: str, three_days: str) -> None:
    result = one(BUSINESS, {"health": 40}, at=at)
    assert [a["due"] for a in result.actions[:2]] == [one_day, three_days]


def test_plain_days_are_exact_durations() -> None:
    result = one(BUSINESS, {"health": 40}, at="2026-03-16T23:30:00+00:00")
    assert result.actions[2]["due"] == "2026-03-23"


def test_holidays_are_not_business_days() -> None:
    engine = build(rules('''
rule "R"
  when health < 50
  then create task "one" for csm due in 1 business day
'''), settings=Settings(holidays=(date(2026, 3, 17), date(2026, 3, 18))))
    assert one(engine, {"health": 40}).actions[0]["due"] == "2026-03-19"
    # Friday before a holiday Monday.
    engine = build(rules('''
rule "R"
  when health < 50
  then create task "one" for csm due in 1 business day
'''), settings=Settings(holidays=(date(2026, 3, 16),)))
    friday = one(engine, {"health": 40}, at="2026-03-13T09:00:00+00:00")
    assert friday.actions[0]["due"] == "2026-03-17"


# --------------------------------------------------------------------------- other actions


def test_webhook_payload_values_as_json() -> None:
    engine = build(rules(
        'rule "R"\n  when health < 50\n  then post webhook "crm" with {'
        'event: "low {{ account.name }}", account: id, health: health, share: 90% * seats, '
        "plan: plan, nps: nps, csm: csm.email}\n"
    ))
    result = one(engine, {"name": "Acme", "health": 48, "seats": 70, "csm": CSM})
    (hook,) = result.actions
    assert hook["kind"] == "webhook" and hook["endpoint"] == "crm"
    assert hook["payload"] == {"event": "low Acme", "account": "a", "health": 48, "share": 63,
                               "plan": None, "nps": None, "csm": "sato@example.com"}
    assert isinstance(hook["payload"]["share"], int)
    half = one(engine, {"name": "Acme", "health": 48, "seats": 5, "csm": CSM}).actions[0]
    assert half["payload"]["share"] == 4.5


def test_notify_renders_whole_numbers_and_dates_as_people_write_them() -> None:
    engine = build(rules(
        'rule "R"\n  when health < 50\n  then notify "cs-alerts" "{{ account.name }}: '
        'health {{ health }}, mrr {{ mrr }}, since {{ account.signed_at }}"\n'
    ))
    data = {"name": "株式会社 Acme", "health": 48.0, "mrr": 1234.5, "signed_at": "2026-02-20"}
    (note,) = one(engine, data).actions
    assert note == {"account": "a", "playbook": "P", "rule": "R", "kind": "notify",
                    "channel": "cs-alerts",
                    "message": "株式会社 Acme: health 48, mrr 1234.5, since 2026-02-20"}


def test_set_and_tag_changes() -> None:
    engine = build(rules('''
rule "R"
  when health < 50
  then
    set stage to renewal
    set plan to "gold"
    set seats to seats + 1
    add tag "at-risk"
    remove tag "healthy"
'''))
    result = one(engine, {"health": 40, "seats": 9})
    assert [{k: v for k, v in a.items() if k not in ("account", "playbook", "rule")}
            for a in result.actions] == [
        {"kind": "set", "field": "stage", "value": "renewal"},
        {"kind": "set", "field": "plan", "value": "gold"},
        {"kind": "set", "field": "seats", "value": 10},
        {"kind": "tag", "tag": "at-risk", "op": "add"},
        {"kind": "tag", "tag": "healthy", "op": "remove"},
    ]


def test_a_wait_in_an_event_rule_counts_from_the_event() -> None:
    engine = build(rules('''
rule "R"
  on nps_submitted
  then
    notify "c" "now"
    wait 2 days
    create task "later" for csm due in 1 business day
'''))
    data = {"events": [{"type": "nps_submitted", "at": "2026-03-15T15:00:00+09:00", "score": 3}]}
    result = run(engine, {"timezone": "Asia/Tokyo", "accounts": [{"id": "a", **data}]})
    later = result.actions[1]
    assert later["scheduled_at"] == "2026-03-17T15:00:00+09:00"
    assert later["due"] == "2026-03-18"


# --------------------------------------------------------------------------- time zones


def test_a_fixture_in_plus_nine_against_a_utc_engine() -> None:
    engine = build(rules('''
rule "R"
  when 14 days after signed_at
  then
    create task "t" for csm due in 1 business day
    create task "u" for csm due in 1 day
    wait 1 day
    notify "c" "{{ account.signed_at }}"
'''))
    assert engine.settings.timezone == "UTC"
    accounts = [{"id": "a", "signed_at": "2026-03-02"}]
    # Sunday 15 March 15:00 UTC is Monday 16 March 00:00 in +09:00: exactly 14 days after
    # midnight of 2 March there; due dates and scheduled_at are in that zone too.
    result = run(engine, {"now": "2026-03-16T00:00:00+09:00", "timezone": "+09:00",
                          "accounts": accounts}, at=None)
    assert result.evaluation.at == "2026-03-16T00:00:00+09:00"
    assert [a.get("due") for a in result.actions] == ["2026-03-17", "2026-03-17", None]
    assert result.actions[2]["scheduled_at"] == "2026-03-17T00:00:00+09:00"
    assert result.actions[2]["message"] == "2026-03-02"
    # One second earlier: not yet.
    early = run(engine, {"timezone": "+09:00", "accounts": accounts},
                at="2026-03-15T23:59:59+09:00")
    assert early.actions == []
    # The same fixture in the engine's zone (UTC): 2 March starts nine hours later.
    utc = run(engine, {"timezone": "UTC", "accounts": accounts}, at="2026-03-16T00:00:00+09:00")
    assert utc.actions == []


# --------------------------------------------------------------------------- shape and order


def test_every_action_carries_account_playbook_rule_and_kind() -> None:
    engine = build(rules('''
rule "R"
  when health < 50
  then
    send email "hello" to admin
    create task "t" for csm
    post webhook "crm"
    notify "c" "m"
    set stage to renewal
    add tag "x"
'''))
    data = {"health": 40, "contacts": contacts(("Ann", "ann@x.example", "admin"))}
    actions = one(engine, data).actions
    assert [a["kind"] for a in actions] == ["email", "task", "webhook", "notify", "set", "tag"]
    for action in actions:
        assert {"account", "playbook", "rule", "kind"} <= action.keys()
        assert all(v is not None for v in action.values())
    assert actions[0]["to"] == ["ann@x.example"]


def test_actions_come_in_the_stable_order() -> None:
    # Accounts in fixture order, then playbooks by file name (not by their own name),
    # then rules and steps in file order.
    rule = 'rule "{0}"\n  when health < 50\n  then\n    notify "c" "{1} {0} 1"\n' \
           '    notify "c" "{1} {0} 2"\n'
    engine = build(files={
        "b.playbook": rules(rule.format("R2", "A") + rule.format("R1", "A"), name="A"),
        "a.playbook": rules(rule.format("R9", "Z"), name="Z")
        + "\n" + rules(rule.format("R0", "M"), name="M"),
    })
    accounts: list[dict[str, Any]] = [{"id": "z", "health": 1}, {"id": "b", "health": 60},
                                      {"id": "a", "health": 2}]
    result = run(engine, accounts)
    messages = [(a["account"], a["message"]) for a in result.actions]
    order = ["Z R9 1", "Z R9 2", "M R0 1", "M R0 2", "A R2 1", "A R2 2", "A R1 1", "A R1 2"]
    assert messages == [("z", m) for m in order] + [("a", m) for m in order]
    assert result.evaluation.at == "2026-03-16T00:00:00+00:00"


def test_the_dry_run_defaults_to_the_fixtures_now() -> None:
    engine = build(rules('rule "R"\n  when 1 day after signed_at\n  then notify "c" "m"\n'))
    fixture = {"now": "2026-03-16T09:00:00+09:00", "timezone": "Asia/Tokyo",
               "accounts": [{"id": "a", "signed_at": "2026-03-15"}]}
    result = run(engine, fixture, at=None)
    assert result.evaluation.at == "2026-03-16T09:00:00+09:00"
    assert result.fired("R")
    assert not run(engine, fixture, at="2026-03-15T23:59:59+09:00").fired("R")
    assert AT == "2026-03-16T09:00:00+09:00"


def test_keywords_are_field_names_where_they_cannot_start_a_clause() -> None:
    schema = (
        "schema\n  account\n    owner: user\n    status: text\n    priority: number\n"
        "    event: text\n  contact roles: admin\n  event ping\n    status: text\n"
        "    priority: number\n"
    )
    engine = build('''
playbook "P"
  rule "R"
    when status is "open" and priority > 2 and event is "x" and account.owner is present
    then
      create task "t {{ account.status }}" for owner priority low
      post webhook "w" with {status: status, priority: priority, event: event}
  rule "E"
    on ping where status is "up" and account.status is "open" and event.priority = 1
    then notify "c" "{{ event.status }} {{ account.status }}"
''', schema=schema, base_templates=False)
    data = {"owner": {"name": "O", "email": "o@x.example"}, "status": "open", "priority": 3,
            "event": "x", "events": [{"type": "ping", "at": AT, "status": "up", "priority": 1}]}
    actions = [{k: v for k, v in a.items() if k not in ("account", "playbook")}
               for a in one(engine, data).actions]
    assert actions == [
        {"rule": "R", "kind": "task", "title": "t open", "assignee": "o@x.example",
         "priority": "low"},
        {"rule": "R", "kind": "webhook", "endpoint": "w",
         "payload": {"status": "open", "priority": 3, "event": "x"}},
        {"rule": "E", "kind": "notify", "channel": "c", "message": "up open"},
    ]


def test_templates_see_playbook_rule_contact_and_event() -> None:
    engine = build(rules('''
rule "Answer"
  on nps_submitted
  then send email "seen" to admin
'''), templates={"templates/seen.txt": '---\nsubject: "{{ playbook }}/{{ rule }}: '
                 '{{ contact.name }} gave {{ event.score }}"\n---\nbody\n'})
    data = {"contacts": contacts(("Ann", "ann@x.example", "admin")),
            "events": [{"type": "nps_submitted", "at": AT, "score": 7}]}
    assert one(engine, data).actions[0]["subject"] == "P/Answer: Ann gave 7"


def test_without_a_fixture_zone_dates_are_in_the_engines_zone() -> None:
    engine = build(rules('''
rule "R"
  when 14 days after signed_at
  then
    create task "t" for csm due in 1 business day
    wait 1 day
    notify "c" "{{ account.signed_at }}"
'''), settings=Settings(timezone="Asia/Tokyo"))
    accounts = [{"id": "a", "signed_at": "2026-03-02"}]
    result = run(engine, accounts, at="2026-03-15T15:00:00+00:00")
    assert result.evaluation.at == "2026-03-16T00:00:00+09:00"
    assert result.actions[0]["due"] == "2026-03-17"
    assert result.actions[1]["scheduled_at"] == "2026-03-17T00:00:00+09:00"
    assert run(engine, accounts, at="2026-03-15T14:59:59+00:00").actions == []
