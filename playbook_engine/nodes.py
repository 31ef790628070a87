"""The typed tree of a playbook directory: frozen nodes, each carrying its source span.

The parser builds these; every later stage (check, format, compile, explain) reads them
and none changes them. Conditions and values share one expression tree: the checker
decides which expressions are conditions (yes/no) and which are values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node stands in its file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        if self.line < 1:
            return self.file  # a whole file (unreadable, say): no position to give
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span("<generated>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Name:
    """A reference by name: `tier`, `account.csm`, `event.score`, a segment or metric."""

    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Number:
    """A number as written; `30%` has value 0.3 and `percent` set."""

    value: Decimal
    percent: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Duration:
    """`14 days`, `2 business days`; unit is day, hour or week."""

    amount: Decimal
    unit: Literal["day", "hour", "week"] = "day"
    business: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ListValue:
    """`[high-touch, low-touch]`: items are names (enum values), strings or numbers."""

    items: tuple[Name | String | Number, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Arith:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Count:
    """`count login [where ...] in last 7 days`."""

    event: Name
    where: Expr | None
    window: Duration | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`distinct user of login ...`, `sum minutes of session ...`, average, min, max."""

    func: Literal["distinct", "sum", "average", "min", "max"]
    field: Name
    event: Name
    where: Expr | None
    window: Duration | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Last:
    """`last score of nps_submitted`: that field of the most recent such event."""

    field: Name
    event: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DaysSinceLast:
    event: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DaysBetween:
    """`days since signed_at` (direction "since") or `days until renewal_date`."""

    direction: Literal["since", "until"]
    operand: Expr
    span: Span = _span()


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Compare:
    op: Literal["<", "<=", ">", ">=", "=", "!="]
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Is:
    """`tier is tech-touch`, `tier is not churned`, `plan is "standard"`."""

    left: Expr
    right: Expr
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class In:
    left: Expr
    items: ListValue
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Missing:
    """`nps is missing` (negated=False) or `nps is present` (negated=True)."""

    operand: Expr
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TextTest:
    op: Literal["contains", "starts with", "ends with"]
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class HasTag:
    tag: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Relative:
    """`14 days after signed_at` (true from then on) or `90 days before renewal_date`."""

    direction: Literal["after", "before"]
    duration: Duration
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class MilestoneState:
    """`onboarding complete`, `onboarding incomplete [after 14 days]`."""

    milestone: Name
    complete: bool
    after: Duration | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Crossing:
    """`health drops below 50` (direction "below") or `health rises above 80`."""

    direction: Literal["below", "above"]
    operand: Expr
    threshold: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Changes:
    """`stage changes [from X] [to Y]`."""

    operand: Expr
    from_value: Expr | None = None
    to_value: Expr | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class For:
    """`health < 50 for 14 days`: true now and at every earlier evaluation in the span."""

    condition: Expr
    duration: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Paren:
    """Parentheses as written, kept so that the formatter and explain show them."""

    inner: Expr
    span: Span = _span()


Expr = (
    Name | Number | String | ListValue | Arith | Negate | Count | Aggregate | Last |
    DaysSinceLast | DaysBetween | Compare | Is | In | Missing | TextTest | HasTag | And | Or |
    Not | Relative | MilestoneState | Crossing | Changes | For | Paren
)


# --------------------------------------------------------------------------- actions


Recipient = Name | String


@dataclass(frozen=True, slots=True)
class SendEmail:
    """`send email "t" to admin, champion cc csm`; `send template "t"` has `to` empty."""

    template: String
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...] = ()
    default_recipient: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class CreateTask:
    title: String
    assignee: Recipient | None = None
    due: Duration | None = None
    priority: Name | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class PostWebhook:
    endpoint: String
    payload: tuple[tuple[str, Expr], ...] | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Notify:
    channel: String
    message: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetField:
    field: Name
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TagChange:
    op: Literal["add", "remove"]
    tag: String
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Wait:
    duration: Duration
    span: Span = _span()


Action = SendEmail | CreateTask | PostWebhook | Notify | SetField | TagChange | Wait


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """A `when` (state) rule, or an `on` (event) rule when `event` is set."""

    name: String
    when: Expr | None
    event: Name | None
    where: Expr | None
    actions: tuple[Action, ...]
    once_per_account: bool = False
    at_most_every: Duration | None = None
    repeat_every: Duration | None = None
    unless: Expr | None = None
    priority: Name | None = None
    stop_when: Expr | None = None
    # True when `then` was left out (the one-line form); the formatter keeps the form.
    inline: bool = False
    span: Span = _span()

    @property
    def is_event_rule(self) -> bool:
        return self.event is not None


@dataclass(frozen=True, slots=True)
class Playbook:
    name: String
    rules: tuple[Rule, ...]
    description: String | None = None
    owner: String | None = None
    status: Name | None = None
    applies_to: Expr | None = None
    span: Span = _span()

    @property
    def status_value(self) -> str:
        return self.status.text if self.status is not None else "active"


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class FieldType:
    """`text`, `number`, `yes/no`, `date`, `user`, or `one of a, b, c` (kind "enum")."""

    kind: Literal["text", "number", "yes/no", "date", "user", "enum"]
    values: tuple[Name, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: Name
    type: FieldType
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EventDecl:
    name: Name
    fields: tuple[FieldDecl, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class MilestoneDecl:
    name: Name
    starts_at: Name
    done_at: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Schema:
    fields: tuple[FieldDecl, ...]
    roles: tuple[Name, ...]
    events: tuple[EventDecl, ...]
    milestones: tuple[MilestoneDecl, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Segment:
    name: Name
    condition: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Metric:
    name: Name
    value: Expr
    span: Span = _span()


Item = Schema | Segment | Metric | Playbook


@dataclass(frozen=True, slots=True)
class Comment:
    """A `#` comment; `trailing` when code stands before it on its line."""

    text: str
    line: int
    column: int
    trailing: bool


@dataclass(frozen=True, slots=True)
class File:
    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    span: Span = _span()
