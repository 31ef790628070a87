"""What evaluation decides: typed actions (pydantic models) and the reasons behind them.

These are the engine's output boundary: the dry-run prints them as JSON (the contract
in LANGUAGE.md), the runtime hands them to delivery adapters, tests compare them.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

_M = TypeVar("_M", bound=BaseModel)


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


def trusted(model: type[_M], **values: Any) -> _M:
    """`model(**values)` for values that validation would return unchanged: each exactly of
    its field's type (`str`, not a subclass; `list[str]` of texts; actions already built).

    The evaluator builds tens of thousands of outcomes and actions from its own typed
    values; validating them again is a good part of its time. This sets what pydantic's
    `model_construct` sets, which is slower than validating in pydantic 2.14 (it looks
    for aliases of every field in Python). Omitted fields take their default, and must
    have one that is not a factory's.
    """
    defaults, needed = _layout(model)
    assert needed <= values.keys() <= defaults.keys(), sorted(values.keys() ^ defaults.keys())
    data = dict(defaults)  # every field, in order, as validation fills __dict__
    data.update(values)
    built = model.__new__(model)
    object.__setattr__(built, "__dict__", data)
    object.__setattr__(built, "__pydantic_fields_set__", set(values))
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", None)
    return built


@functools.cache
def _layout(model: type[BaseModel]) -> tuple[dict[str, Any], frozenset[str]]:
    """A model's fields in order with their plain defaults, and those that must be given
    to `trusted` (required, or defaulting to a factory's new value)."""
    defaults: dict[str, Any] = {}
    needed = set()
    for name, info in model.model_fields.items():
        if info.is_required() or info.default_factory is not None:
            needed.add(name)
            defaults[name] = None
        else:
            defaults[name] = info.default
    return defaults, frozenset(needed)
