"""What evaluation decides: typed actions (pydantic models) and the reasons behind them.

These are the engine's output boundary: the dry-run prints them as JSON (the contract
in LANGUAGE.md), the runtime hands them to delivery adapters, tests compare them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    playbook: str
    rule: str
    # When the step is due to run: set for steps after a `wait` (ISO-8601).
    scheduled_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The dry-run contract's object: no empty optional keys."""
        return self.model_dump(mode="json", exclude_none=True)


class EmailAction(_Action):
    kind: Literal["email"] = "email"
    template: str
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    subject: str = ""
    text: str | None = Field(default=None, exclude=True)
    html: str | None = Field(default=None, exclude=True)


class TaskAction(_Action):
    kind: Literal["task"] = "task"
    title: str
    assignee: str | None = None
    due: str | None = None
    priority: str = "normal"


class WebhookAction(_Action):
    kind: Literal["webhook"] = "webhook"
    endpoint: str
    payload: dict[str, Any] = Field(default_factory=dict)


class NotifyAction(_Action):
    kind: Literal["notify"] = "notify"
    channel: str
    message: str


class SetAction(_Action):
    kind: Literal["set"] = "set"
    field: str
    value: Any


class TagAction(_Action):
    kind: Literal["tag"] = "tag"
    tag: str
    op: Literal["add", "remove"]


Action = Annotated[
    EmailAction | TaskAction | WebhookAction | NotifyAction | SetAction | TagAction,
    Field(discriminator="kind"),
]


class RuleOutcome(BaseModel):
    """Whether one rule fired for one account at one moment, and why (or why not)."""

    model_config = ConfigDict(frozen=True)

    account: str
    playbook: str
    rule: str
    at: str
    fired: bool
    condition: bool | None
    reason: str
    event_at: str | None = None
    actions: list[Action] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list)
    explanation: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


class Evaluation(BaseModel):
    """Every rule's outcome for a set of accounts at one moment."""

    at: str
    outcomes: list[RuleOutcome]

    @property
    def actions(self) -> list[Action]:
        return [a for o in self.outcomes if o.fired for a in o.actions]

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "actions": [a.as_json() for a in self.actions]}
