"""Outcomes and actions built from trusted values are the models validation builds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from playbook_engine.decisions import (
    EmailAction,
    NotifyAction,
    RuleOutcome,
    SetAction,
    TagAction,
    TaskAction,
    WebhookAction,
    trusted,
)

BASE: dict[str, Any] = {"account": "a1", "playbook": "Health", "rule": "Red", "scheduled_at": None}
LATER = {**BASE, "scheduled_at": "2026-03-18T09:00:00+09:00"}
ACTIONS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (EmailAction, {**BASE, "template": "t", "to": ["a@x.example"], "cc": [], "subject": "Hi",
                   "text": "Hello", "html": None}),
    (TaskAction, {**LATER, "title": "Call", "assignee": None, "due": "2026-03-20",
                  "priority": "high"}),
    (WebhookAction, {**BASE, "endpoint": "crm", "payload": {"n": 1, "when": "2026-03-16"}}),
    (NotifyAction, {**BASE, "channel": "cs", "message": "Red"}),
    (SetAction, {**BASE, "field": "stage", "value": "adoption"}),
    (TagAction, {**BASE, "tag": "vip", "op": "add"}),
]


def outcome(actions: list[Any], condition: bool | None) -> dict[str, Any]:
    return {"account": "a1", "playbook": "Health", "rule": "Red", "at": "2026-03-16T09:00:00+09:00",
            "fired": bool(actions), "condition": condition, "reason": "fired",
            "event_at": None, "actions": actions, "recipients": ["a@x.example"],
            "explanation": [], "errors": []}


def same(a: BaseModel, b: BaseModel) -> None:
    assert a == b
    assert repr(a) == repr(b)
    assert a.model_dump() == b.model_dump()
    assert a.model_dump_json() == b.model_dump_json()
    assert a.model_dump(mode="json", exclude_none=True) == b.model_dump(mode="json",
                                                                         exclude_none=True)
    assert a.model_fields_set == b.model_fields_set
    assert hashed(a) == hashed(b)


def hashed(model: BaseModel) -> int | None:
    """The hash of a frozen model, or None when a field holds a list."""
    try:
        return hash(model)
    except TypeError:
        return None


@pytest.mark.parametrize(("model", "values"), ACTIONS)
def test_a_trusted_action_is_the_validated_one(
    model: type[BaseModel], values: dict[str, Any]
) -> None:
    same(trusted(model, **values), model(**values))


@pytest.mark.parametrize("condition", [True, False, None])
def test_a_trusted_outcome_is_the_validated_one(condition: bool | None) -> None:
    actions = [model(**values) for model, values in ACTIONS]
    same(trusted(RuleOutcome, **outcome(actions, condition)),
         RuleOutcome(**outcome(actions, condition)))
    same(trusted(RuleOutcome, **outcome([], condition)), RuleOutcome(**outcome([], condition)))


def test_omitted_fields_take_their_defaults() -> None:
    values = {**BASE, "channel": "cs", "message": "Red"}
    del values["scheduled_at"]
    same(trusted(NotifyAction, **values), NotifyAction(**values))


def test_a_trusted_model_stays_frozen() -> None:
    built = trusted(NotifyAction, **ACTIONS[3][1])
    with pytest.raises(ValueError, match="frozen"):
        built.channel = "other"  # type: ignore[misc]
