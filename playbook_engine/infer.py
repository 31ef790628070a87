"""Types of expressions: what a condition or value is, and what is wrong with it.

`infer(expr, scope)` walks an expression once and returns its `Type`; when the scope
has a `report` callback, every problem met on the way (an unknown name, a value of the
wrong type, a missing window) is reported as a `Diagnostic` with the span of the
offending token. The checker calls it with a callback; the compiler can call it
without one, to learn types.

Name resolution is the language's (LANGUAGE.md), and the compiler's:

- `account.x` is the account's field `x`; `event.x` is the event's field `x` (or its
  `type` and `at`), where there is an event: in a rule that starts with `on`, and in
  the `where` filter of an aggregate (there, the event being counted);
- a bare name is, in order: a field of the event in scope, a field of the account
  (every account has `id`, `name` and `tags`), a segment, a metric;
- a `user` has `.name` and `.email`;
- on the right of `is`, `=`, `changes to/from`, a bare name that resolves to nothing
  is a literal: an enum value (checked against the enum) or a mistake for a quoted text.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from . import nodes as n
from .errors import Diagnostic, did_you_mean, error
from .program import Program

__all__ = [
    "Kind",
    "Scope",
    "Symbols",
    "Type",
    "check_condition",
    "check_value",
    "children",
    "infer",
    "resolve",
    "subexpressions",
]


class Kind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    YESNO = "yes/no"
    ENUM = "enum"
    USER = "user"
    TAGS = "tags"
    LIST = "list"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Type:
    """The type of a value; an enum knows its field (for messages) and its values."""

    kind: Kind
    field: str = ""
    values: tuple[str, ...] = ()

    @property
    def noun(self) -> str:
        """The type in words: "a number", "one of high-touch, low-touch"."""
        if self.kind is Kind.ENUM:
            return "one of " + ", ".join(self.values)
        return {
            Kind.NUMBER: "a number",
            Kind.TEXT: "a text",
            Kind.DATE: "a date",
            Kind.YESNO: "yes/no",
            Kind.USER: "a user",
            Kind.TAGS: "the account's tags",
            Kind.LIST: "a list",
            Kind.UNKNOWN: "of unknown type",
        }[self.kind]

    @property
    def known(self) -> bool:
        return self.kind is not Kind.UNKNOWN


NUMBER = Type(Kind.NUMBER)
TEXT = Type(Kind.TEXT)
DATE = Type(Kind.DATE)
YESNO = Type(Kind.YESNO)
USER = Type(Kind.USER)
TAGS = Type(Kind.TAGS)
LIST = Type(Kind.LIST)
UNKNOWN = Type(Kind.UNKNOWN)

_SIMPLE = {"number": NUMBER, "text": TEXT, "date": DATE, "yes/no": YESNO, "user": USER}
# Fields every account has, declared or not; and every event's own fields.
ACCOUNT_BUILTINS: Mapping[str, Type] = {"id": TEXT, "name": TEXT, "tags": TAGS}
EVENT_BUILTINS: Mapping[str, Type] = {"type": TEXT, "at": DATE}
USER_PARTS = ("name", "email")


def field_type(decl: n.FieldDecl) -> Type:
    """The type a schema declaration gives a field."""
    if decl.type.kind == "enum":
        return Type(Kind.ENUM, decl.name.text, tuple(v.text for v in decl.type.values))
    return _SIMPLE[decl.type.kind]


class Symbols:
    """The names a program defines, in dictionaries built once (look-ups are O(1))."""

    def __init__(self, program: Program) -> None:
        self.program = program
        schema = program.schema
        self.fields: dict[str, Type] = dict(ACCOUNT_BUILTINS)
        self.events: dict[str, dict[str, Type]] = {}
        self.milestones: dict[str, n.MilestoneDecl] = {}
        self.roles: tuple[str, ...] = ()
        if schema is not None:
            for decl in schema.fields:
                self.fields.setdefault(decl.name.text, field_type(decl))
            for event in schema.events:
                fields: dict[str, Type] = {}
                for decl in event.fields:
                    fields.setdefault(decl.name.text, field_type(decl))
                self.events.setdefault(event.name.text, fields)
            for milestone in schema.milestones:
                self.milestones.setdefault(milestone.name.text, milestone)
            self.roles = tuple(dict.fromkeys(r.text for r in schema.roles))
        self.segments: Mapping[str, n.Segment] = program.segments
        self.metrics: Mapping[str, n.Metric] = program.metrics
        self._metric_types: dict[str, Type] = {}

    @property
    def has_schema(self) -> bool:
        return self.program.schema is not None

    def metric_type(self, name: str) -> Type:
        """The type of a metric's value (unknown while it is being worked out: a cycle)."""
        if name not in self._metric_types:
            self._metric_types[name] = UNKNOWN
            metric = self.metrics[name]
            self._metric_types[name] = infer(metric.value, Scope(self, context="a metric"))
        return self._metric_types[name]

    def event_field(self, event: str, name: str) -> Type | None:
        fields = self.events.get(event)
        if fields is None:
            return None
        return fields.get(name) or EVENT_BUILTINS.get(name)


Report = Callable[[Diagnostic], None]


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an expression stands: the event in scope, and where problems go."""

    symbols: Symbols
    # The event type whose fields bare names and `event.x` reach first; None: no event.
    event: str | None = None
    # Where problems go; None: infer silently.
    report: Report | None = None
    # What the expression belongs to, in words, for "there is no event in a 'when' rule".
    context: str = "a 'when' rule"

    def with_event(self, event: str) -> Scope:
        return replace(self, event=event)

    @property
    def event_fields(self) -> dict[str, Type] | None:
        """The fields of the event in scope; None when there is none or it is unknown."""
        return self.symbols.events.get(self.event) if self.event is not None else None

    def problem(self, message: str, span: n.Span, code: str) -> None:
        if self.report is not None:
            self.report(error(message, span, code))


# --------------------------------------------------------------------------- the walk


def infer(expr: n.Expr, scope: Scope) -> Type:
    """The type of `expr` in `scope`, reporting each problem found to `scope.report`."""
    found: Type = _INFER[type(expr)](expr, scope)
    return found


def check_condition(expr: n.Expr, scope: Scope, where: str) -> None:
    """Infer `expr` and report it unless it is a condition (yes/no); `where` names the spot."""
    found = infer(expr, scope)
    if found.kind in (Kind.YESNO, Kind.UNKNOWN):
        return
    scope.problem(_not_a_condition(expr, found, where), expr.span, "not-a-condition")


def _not_a_condition(expr: n.Expr, found: Type, where: str) -> str:
    subject = f"'{expr.text}' is" if isinstance(expr, n.Name) else "this is"
    head = f"{where} needs a condition, but {subject} {found.noun}"
    label = expr.text if isinstance(expr, n.Name) else "..."
    hint = {
        Kind.NUMBER: f"compare it, e.g. {label} > 0",
        Kind.TEXT: f'test it, e.g. {label} is "..."',
        Kind.DATE: f"use it in a date test, e.g. 14 days after {label}",
        Kind.USER: f"test it, e.g. {label} is present",
        Kind.TAGS: 'test a tag, e.g. has tag "vip"',
        Kind.LIST: f"test a value against it, e.g. tier in {label}",
    }.get(found.kind)
    if found.kind is Kind.ENUM:
        hint = f"test it, e.g. {label} is {found.values[0] if found.values else '...'}"
    return f"{head}; {hint}" if hint else head


def _number(e: n.Number, scope: Scope) -> Type:
    return NUMBER


def _string(e: n.String, scope: Scope) -> Type:
    return TEXT


def _list(e: n.ListValue, scope: Scope) -> Type:
    return LIST


def _paren(e: n.Paren, scope: Scope) -> Type:
    return infer(e.inner, scope)


# -- names


def _part_span(name: n.Name, index: int) -> n.Span:
    """The span of `name.parts[index]` alone, when the name is written on one line."""
    s = name.span
    if s.line != s.end_line or s.end_column - s.column != len(name.text):
        return s
    start = s.column + sum(len(p) + 1 for p in name.parts[:index])
    return n.Span(s.file, s.line, start, s.line, start + len(name.parts[index]))


def _name(e: n.Name, scope: Scope) -> Type:
    head = e.parts[0]
    if head == "account" and len(e.parts) > 1:
        return _parts(e, 2, _account_field(e, 1, scope), scope)
    if head == "event" and len(e.parts) > 1:
        return _parts(e, 2, _event_field(e, scope), scope)
    return _parts(e, 1, _bare(e, scope), scope)


def resolve(name: str, scope: Scope) -> Type | None:
    """The type of a bare name, or None when it names nothing a value can be."""
    fields = scope.event_fields
    if fields is not None and name in fields:
        return fields[name]
    symbols = scope.symbols
    if name in symbols.fields:
        return symbols.fields[name]
    if name in symbols.segments:
        return YESNO
    if name in symbols.metrics:
        return symbols.metric_type(name)
    return None


def _bare(e: n.Name, scope: Scope) -> Type:
    name = e.parts[0]
    found = resolve(name, scope)
    if found is not None:
        return found
    symbols = scope.symbols
    if not symbols.has_schema or (scope.event is not None and scope.event_fields is None):
        # No schema, or an unknown event (reported where it is named): nothing to hold
        # the name against without a cascade of guesses.
        return UNKNOWN
    message, code = _unknown_name(name, scope)
    scope.problem(message, _part_span(e, 0), code)
    return UNKNOWN


def _unknown_name(name: str, scope: Scope) -> tuple[str, str]:
    """The message and code for a bare name that resolves to nothing."""
    symbols = scope.symbols
    if name in symbols.milestones:
        message = (
            f"'{name}' is a milestone, not a value: "
            f"write '{name} complete' or '{name} incomplete'"
        )
        return message, "not-a-value"
    if name in symbols.events:
        message = f"'{name}' is an event, not a value: count it, e.g. count {name} in last 30 days"
        return message, "not-a-value"
    if name in symbols.roles:
        message = f"'{name}' is a contact role: roles receive emails, they are not values"
        return message, "not-a-value"
    subtraction = _subtraction(name, scope)
    if subtraction is not None:
        message = (
            f"unknown name '{name}': names may contain '-', so to subtract put spaces "
            f"around the minus sign: {subtraction}"
        )
        return message, "unknown-name"
    kinds: dict[str, str] = {}
    for candidate in symbols.metrics:
        kinds[candidate] = "metric"
    for candidate in symbols.segments:
        kinds[candidate] = "segment"
    for candidate in [*symbols.fields, *(scope.event_fields or ())]:
        kinds[candidate] = "field"
    close = closest(name, kinds)
    if close is not None:
        kind = kinds[close]
        return f"unknown {kind} '{name}'{did_you_mean(name, [close])}", f"unknown-{kind}"
    message = f"unknown name '{name}': it is not a field in the schema, a segment or a metric"
    return message, "unknown-name"


def _subtraction(name: str, scope: Scope) -> str | None:
    """`seats-1` as "seats - 1" when that is a subtraction of known values, else None."""
    pieces = name.split("-")
    for cut in range(1, len(pieces)):
        left, right = "-".join(pieces[:cut]), "-".join(pieces[cut:])
        if resolve(left, scope) is not None and (
            right.isdigit() or resolve(right, scope) is not None
        ):
            return f"{left} - {right}"
    return None


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate `did_you_mean` would suggest, or None."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _account_field(e: n.Name, index: int, scope: Scope) -> Type:
    name = e.parts[index]
    symbols = scope.symbols
    if name in symbols.fields:
        return symbols.fields[name]
    if symbols.has_schema:
        message = f"unknown field '{name}'{did_you_mean(name, symbols.fields)}"
        scope.problem(message, _part_span(e, index), "unknown-field")
    return UNKNOWN


def _event_field(e: n.Name, scope: Scope) -> Type:
    name = e.parts[1]
    if scope.event is None:
        scope.problem(
            f"there is no event in {scope.context}: '{e.text}' can be used only in a rule "
            "that starts with 'on', or in the 'where' of count, distinct, sum, ...",
            e.span,
            "no-event",
        )
        return UNKNOWN
    found = scope.symbols.event_field(scope.event, name)
    if found is not None:
        return found
    fields = scope.event_fields
    if fields is not None:
        candidates = [*fields, *EVENT_BUILTINS]
        message = f"unknown field '{name}' of {scope.event} events{did_you_mean(name, candidates)}"
        scope.problem(message, _part_span(e, 1), "unknown-event-field")
    return UNKNOWN


def _parts(e: n.Name, index: int, base: Type, scope: Scope) -> Type:
    """The type of `base` followed by `e.parts[index:]` (`csm.email`)."""
    rest = e.parts[index:]
    if not rest or not base.known:
        return base if not rest else UNKNOWN
    owner = ".".join(e.parts[:index])
    if base.kind is Kind.USER:
        if rest[0] not in USER_PARTS:
            message = f"'{owner}' is a user: it has .name and .email, not .{rest[0]}"
            message += did_you_mean(rest[0], USER_PARTS)
            scope.problem(message, _part_span(e, index), "unknown-part")
            return UNKNOWN
        if len(rest) == 1:
            return TEXT
        return _parts(e, index + 1, TEXT, scope)
    message = f"'{owner}' ({base.noun}) has no parts: only user fields have .name and .email"
    scope.problem(message, _part_span(e, index), "unknown-part")
    return UNKNOWN


# -- values


def _label(expr: n.Expr, found: Type) -> str:
    """"'plan' is a text", "this is a condition": the subject of a type message."""
    if isinstance(expr, n.Paren):
        return _label(expr.inner, found)
    if isinstance(expr, n.Name):
        return f"'{expr.text}' is {found.noun}"
    if isinstance(expr, n.String):
        return f'"{expr.value}" is {found.noun}'
    if isinstance(expr, n.Number) and not expr.percent:
        return f"{expr.value} is {found.noun}"
    return f"this is {noun_of(expr, found)}"


def noun_of(expr: n.Expr, found: Type) -> str:
    """The type in words, "a condition" for a yes/no that is not a name."""
    if found.kind is Kind.YESNO and not isinstance(expr, n.Name | n.Paren):
        return "a condition"
    return found.noun


def _expect(expr: n.Expr, scope: Scope, wanted: Kind, needs: str, code: str = "type") -> Type:
    """Infer `expr` and report it unless it is of kind `wanted`; `needs` says who wants it."""
    found = infer(expr, scope)
    if found.known and found.kind is not wanted:
        scope.problem(f"{needs}, but {_label(expr, found)}", expr.span, code)
    return found


def _arith(e: n.Arith, scope: Scope) -> Type:
    _expect(e.left, scope, Kind.NUMBER, f"'{e.op}' needs numbers")
    _expect(e.right, scope, Kind.NUMBER, f"'{e.op}' needs numbers")
    return NUMBER


def _negate(e: n.Negate, scope: Scope) -> Type:
    _expect(e.operand, scope, Kind.NUMBER, "'-' needs a number")
    return NUMBER


def _event_known(event: n.Name, scope: Scope) -> bool:
    """Whether `event` is declared, reporting it when it is not."""
    symbols = scope.symbols
    if event.text in symbols.events:
        return True
    if symbols.has_schema:
        scope.problem(unknown_event_message(event.text, symbols), event.span, "unknown-event")
    return False


def unknown_event_message(name: str, symbols: Symbols) -> str:
    hint = did_you_mean(name, symbols.events)
    if hint or symbols.events:
        return f"unknown event type '{name}'{hint}"
    return f"unknown event type '{name}': declare it in the schema, e.g. event {name}"


def _window(e: n.Count | n.Aggregate, func: str, scope: Scope) -> None:
    if e.window is None:
        scope.problem(
            f"{func} needs a window, such as 'in last 30 days'", e.span, "missing-window"
        )


def _count(e: n.Count, scope: Scope) -> Type:
    known = _event_known(e.event, scope)
    if e.where is not None:
        check_condition(e.where, _filter_scope(e.event, known, scope), "'where'")
    _window(e, "count", scope)
    return NUMBER


def _filter_scope(event: n.Name, known: bool, scope: Scope) -> Scope:
    """The scope of an aggregate's `where`: that event's fields first.

    For an unknown event (reported already), names are not held against anything.
    """
    return scope.with_event(event.text if known else "\0unknown")


def _event_field_of(fld: n.Name, event: n.Name, known: bool, scope: Scope) -> Type:
    if not known:
        return UNKNOWN
    found = scope.symbols.event_field(event.text, fld.text)
    if found is None:
        fields = [*scope.symbols.events[event.text], *EVENT_BUILTINS]
        hint = did_you_mean(fld.text, fields)
        message = f"unknown field '{fld.text}' of {event.text} events{hint}"
        scope.problem(message, fld.span, "unknown-event-field")
        return UNKNOWN
    return found


def _aggregate(e: n.Aggregate, scope: Scope) -> Type:
    known = _event_known(e.event, scope)
    found = _event_field_of(e.field, e.event, known, scope)
    if e.func != "distinct" and found.known and found.kind is not Kind.NUMBER:
        message = (
            f"{e.func} needs a number field, but '{e.field.text}' of {e.event.text} events "
            f"is {found.noun}"
        )
        scope.problem(message, e.field.span, "type")
    if e.where is not None:
        check_condition(e.where, _filter_scope(e.event, known, scope), "'where'")
    _window(e, e.func, scope)
    return NUMBER


def _last(e: n.Last, scope: Scope) -> Type:
    known = _event_known(e.event, scope)
    return _event_field_of(e.field, e.event, known, scope)


def _days_since_last(e: n.DaysSinceLast, scope: Scope) -> Type:
    _event_known(e.event, scope)
    return NUMBER


def _days_between(e: n.DaysBetween, scope: Scope) -> Type:
    _expect(e.operand, scope, Kind.DATE, f"'days {e.direction}' needs a date")
    return NUMBER


# -- conditions


_ORDERING = ("<", "<=", ">", ">=")


def _describe(expr: n.Expr, found: Type) -> str:
    """"tier (one of a, b)", "a number": one side of a comparison, in words."""
    while isinstance(expr, n.Paren):
        expr = expr.inner
    if isinstance(expr, n.Name):
        return f"{expr.text} ({found.noun})"
    if found.kind is Kind.YESNO:
        return "a condition"
    return found.noun


def _compatible(a: Type, b: Type) -> bool:
    if not a.known or not b.known or a.kind is b.kind:
        return True
    text_like = (Kind.TEXT, Kind.ENUM)
    return a.kind in text_like and b.kind in text_like


Verb = Literal["compare", "set"]


def _cannot(verb: Verb, left: str, right: str) -> str:
    """"cannot compare seats (a number) with a text", "cannot set seats (...) to a text"."""
    return f"cannot {verb} {left} {'with' if verb == 'compare' else 'to'} {right}"


def _mismatch(
    left: n.Expr, lt: Type, right: n.Expr, rt: Type, span: n.Span, scope: Scope,
    verb: Verb = "compare",
) -> None:
    message = _cannot(verb, _describe(left, lt), _describe(right, rt))
    if lt.kind is Kind.NUMBER and isinstance(right, n.String) and _is_numeric(right.value):
        message += f": write the number without quotes, {right.value}"
    scope.problem(message, span, "type")


def _is_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _compare(e: n.Compare, scope: Scope) -> Type:
    if e.op in ("=", "!="):
        _equality(e.left, e.right, e.span, scope)
        return YESNO
    lt = infer(e.left, scope)
    if literal_side(e.right, scope) and lt.kind in (Kind.ENUM, Kind.TEXT):
        rt = lt  # `tier > high-touch`: the word is a value of tier; the operator is wrong
    else:
        rt = infer(e.right, scope)
    if not lt.known or not rt.known:
        return YESNO
    if lt.kind is rt.kind and lt.kind in (Kind.NUMBER, Kind.DATE):
        return YESNO
    if lt.kind is rt.kind or _compatible(lt, rt):
        side = e.left if lt.kind not in (Kind.NUMBER, Kind.DATE) else e.right
        found = lt if side is e.left else rt
        message = f"'{e.op}' compares numbers or dates, but {_label(side, found)}"
        if found.kind in (Kind.ENUM, Kind.TEXT):
            message += "; test it with 'is' or 'in'"
        scope.problem(message, e.span, "type")
        return YESNO
    _mismatch(e.left, lt, e.right, rt, e.span, scope)
    return YESNO


def literal_side(right: n.Expr, scope: Scope) -> bool:
    """Whether the right of `is` is a literal word: a bare name that names nothing."""
    return isinstance(right, n.Name) and len(right.parts) == 1 and (
        resolve(right.parts[0], scope) is None
    )


def _equality(left: n.Expr, right: n.Expr, span: n.Span, scope: Scope) -> None:
    """`left is right`, `left = right`, `left changes to right`."""
    lt = infer(left, scope)
    check_value(left, lt, right, span, scope)


def check_value(
    left: n.Expr, lt: Type, right: n.Expr, span: n.Span, scope: Scope, verb: Verb = "compare"
) -> None:
    """Report unless `right` is a value `left` (of type `lt`) can equal, or be set to.

    A bare word that names nothing is a literal: an enum value, checked against the
    enum, or a text that needs quotes. `span` is where a type mismatch is reported.
    """
    if isinstance(right, n.Name) and literal_side(right, scope):
        _literal_word(left, lt, right, scope, verb)
        return
    if isinstance(right, n.String) and lt.kind is Kind.ENUM:
        _enum_value(lt, right.value, right.span, scope)
        return
    rt = infer(right, scope)
    if not _compatible(lt, rt):
        _mismatch(left, lt, right, rt, span, scope, verb)


def _literal_word(
    left: n.Expr, lt: Type, word: n.Name, scope: Scope, verb: Verb = "compare"
) -> None:
    """A bare word on the right of `is`: an enum value, or a text that needs quotes."""
    if lt.kind is Kind.ENUM:
        _enum_value(lt, word.text, word.span, scope)
    elif lt.kind is Kind.TEXT:
        subject = left.text if isinstance(left, n.Name) else "this"
        message = f"'{word.text}' needs quotes: {subject} is a text, so write \"{word.text}\""
        scope.problem(message, word.span, "unquoted-text")
    elif lt.kind is Kind.YESNO and word.text in ("yes", "no", "true", "false"):
        subject = left.text if isinstance(left, n.Name) else "it"
        message = f"{subject} is yes/no, a condition itself: write {subject} or not {subject}"
        if verb == "set":
            message = (
                f"there is no '{word.text}' value: set {subject} to a condition, "
                "and it takes that condition's yes or no"
            )
        scope.problem(message, word.span, "yes-no-literal")
    elif lt.known and scope.symbols.has_schema:
        candidates = [*scope.symbols.fields, *(scope.event_fields or ())]
        message = _cannot(verb, _describe(left, lt), f"'{word.text}', which is not a field")
        message += did_you_mean(word.text, candidates)
        scope.problem(message, word.span, "unknown-name")


def _enum_value(lt: Type, value: str, span: n.Span, scope: Scope) -> None:
    if value in lt.values:
        return
    message = (
        f"'{value}' is not a {lt.field}; {lt.field} is {lt.noun}"
        f"{did_you_mean(value, lt.values)}"
    )
    scope.problem(message, span, "unknown-enum-value")


def _is(e: n.Is, scope: Scope) -> Type:
    _equality(e.left, e.right, e.span, scope)
    return YESNO


def _in(e: n.In, scope: Scope) -> Type:
    lt = infer(e.left, scope)
    for item in e.items.items:
        if isinstance(item, n.Name):
            _literal_word(e.left, lt, item, scope)
        elif isinstance(item, n.String) and lt.kind is Kind.ENUM:
            _enum_value(lt, item.value, item.span, scope)
        else:
            _in_item(e.left, lt, item, NUMBER if isinstance(item, n.Number) else TEXT, scope)
    return YESNO


def _in_item(left: n.Expr, lt: Type, item: n.Expr, it: Type, scope: Scope) -> None:
    if lt.known and not _compatible(lt, it):
        _mismatch(left, lt, item, it, item.span, scope)


def _missing(e: n.Missing, scope: Scope) -> Type:
    infer(e.operand, scope)
    return YESNO


def _text_test(e: n.TextTest, scope: Scope) -> Type:
    lt = infer(e.left, scope)
    if e.op == "contains" and lt.kind is Kind.TAGS:
        _expect(e.right, scope, Kind.TEXT, "a tag is a text")
        return YESNO
    if lt.known and lt.kind is not Kind.TEXT:
        message = f"'{e.op}' works on texts, but {_label(e.left, lt)}"
        if lt.kind is Kind.ENUM:
            message += "; test it with 'is' or 'in'"
        scope.problem(message, e.left.span, "type")
    _expect(e.right, scope, Kind.TEXT, f"'{e.op}' needs a text to look for")
    return YESNO


def _has_tag(e: n.HasTag, scope: Scope) -> Type:
    return YESNO


def _chain(e: n.And | n.Or, scope: Scope) -> Type:
    """`a and b and c`: a chain is a left-deep tree, walked in a loop, not recursion."""
    kind, word = type(e), "'and'" if isinstance(e, n.And) else "'or'"
    operands: list[n.Expr] = []
    node: n.Expr = e
    while isinstance(node, kind):
        operands.append(node.right)
        node = node.left
    operands.append(node)
    for operand in reversed(operands):
        check_condition(operand, scope, word)
    return YESNO


def _not(e: n.Not, scope: Scope) -> Type:
    check_condition(e.operand, scope, "'not'")
    return YESNO


def _relative(e: n.Relative, scope: Scope) -> Type:
    _expect(e.operand, scope, Kind.DATE, f"'{e.direction}' needs a date")
    return YESNO


def _milestone(e: n.MilestoneState, scope: Scope) -> Type:
    symbols = scope.symbols
    name = e.milestone.text
    if name not in symbols.milestones and symbols.has_schema:
        hint = did_you_mean(name, symbols.milestones)
        message = f"unknown milestone '{name}'{hint}"
        if not hint:
            message += (
                "; declare it in the schema: milestone "
                f"{name} / starts at <date field> / done at <date field>"
            )
        scope.problem(message, e.milestone.span, "unknown-milestone")
    return YESNO


def _crossing(e: n.Crossing, scope: Scope) -> Type:
    words = f"'{'drops below' if e.direction == 'below' else 'rises above'}' compares numbers"
    _expect(e.operand, scope, Kind.NUMBER, words)
    _expect(e.threshold, scope, Kind.NUMBER, words)
    return YESNO


def _changes(e: n.Changes, scope: Scope) -> Type:
    lt = infer(e.operand, scope)
    for value in (e.from_value, e.to_value):
        if value is not None:
            check_value(e.operand, lt, value, value.span, scope)
    return YESNO


def _for(e: n.For, scope: Scope) -> Type:
    check_condition(e.condition, scope, "'for'")
    return YESNO


# Each function takes its own node type: the table is keyed by that type.
_INFER: dict[type, Callable[..., Type]] = {
    n.Name: _name,
    n.Number: _number,
    n.String: _string,
    n.ListValue: _list,
    n.Arith: _arith,
    n.Negate: _negate,
    n.Count: _count,
    n.Aggregate: _aggregate,
    n.Last: _last,
    n.DaysSinceLast: _days_since_last,
    n.DaysBetween: _days_between,
    n.Compare: _compare,
    n.Is: _is,
    n.In: _in,
    n.Missing: _missing,
    n.TextTest: _text_test,
    n.HasTag: _has_tag,
    n.And: _chain,
    n.Or: _chain,
    n.Not: _not,
    n.Relative: _relative,
    n.MilestoneState: _milestone,
    n.Crossing: _crossing,
    n.Changes: _changes,
    n.For: _for,
    n.Paren: _paren,
}


def subexpressions(expr: n.Expr) -> Iterator[n.Expr]:
    """`expr` and every expression inside it, parents first (filters included)."""
    stack: list[n.Expr] = [expr]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(reversed(children(e)))


def children(e: n.Expr) -> list[n.Expr]:
    """The expressions directly inside `e`, in source order."""
    found = _CHILDREN.get(type(e))
    return found(e) if found is not None else []


def _two(e: Any) -> list[n.Expr]:
    return [e.left, e.right]


def _operand(e: Any) -> list[n.Expr]:
    return [e.operand]


def _where(e: Any) -> list[n.Expr]:
    return [e.where] if e.where is not None else []


# By exact type (nodes are final): several checks walk every expression, and a chain of
# isinstance tests, each building its union of types anew, cost more than the walk.
_CHILDREN: dict[type, Callable[[Any], list[n.Expr]]] = {
    n.Arith: _two,
    n.Compare: _two,
    n.And: _two,
    n.Or: _two,
    n.TextTest: _two,
    n.Is: _two,
    n.In: lambda e: [e.left, e.items],
    n.Negate: _operand,
    n.Not: _operand,
    n.Missing: _operand,
    n.DaysBetween: _operand,
    n.Relative: _operand,
    n.Count: _where,
    n.Aggregate: _where,
    n.Crossing: lambda e: [e.operand, e.threshold],
    n.Changes: lambda e: [x for x in (e.operand, e.from_value, e.to_value) if x is not None],
    n.For: lambda e: [e.condition],
    n.Paren: lambda e: [e.inner],
}
