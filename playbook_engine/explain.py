"""Explain: a rule's conditions as written, with the values the evaluator saw.

The evaluator runs traced closures when asked to explain; each node's value lands in
`frame.trace`. This module turns that record into lines a reviewer reads without
opening any code: every part of the condition with true/false/unknown, the values
behind it ("health is missing"), the scope, and the recipients.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import nodes as n
from .facts import User
from .program import Program

if TYPE_CHECKING:
    from .compile import Frame
    from .evaluate import CompiledRule

_STRUCTURE = (n.And, n.Or, n.Not, n.Paren)
_LITERALS = (n.Number, n.String, n.ListValue, n.Duration)


def show_value(value: Any) -> str:
    """A value as a reviewer reads it: 63 not 63.0, dates as YYYY-MM-DD, None as missing."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, User):
        return value.name or value.email or "a user"
    if isinstance(value, tuple):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value)


def show_truth(value: Any) -> str:
    return {True: "true", False: "false"}.get(value, "unknown") if value in (True, False, None) \
        else show_value(value)


class Explainer:
    """Renders traced evaluations; `sources` maps file names to text for quoting."""

    def __init__(self, program: Program, sources: dict[str, str]) -> None:
        self.program = program
        self.sources = sources

    def text(self, expr: n.Expr) -> str:
        """The expression as the author wrote it."""
        span = expr.span
        source = self.sources.get(span.file)
        if source is None or span.line < 1:
            return _unparse(expr)
        lines = source.split("\n")
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1 : span.end_column - 1]
        parts = [lines[span.line - 1][span.column - 1 :]]
        parts.extend(lines[i].strip() for i in range(span.line, span.end_line - 1))
        parts.append(lines[span.end_line - 1][: span.end_column - 1].strip())
        return " ".join(p.strip() for p in parts if p.strip())

    def explain(
        self, cr: CompiledRule, frame: Frame, condition: Any, recipients: list[str]
    ) -> list[str]:
        trace = frame.trace or []
        seen: dict[int, Any] = {id(expr): value for expr, value, extra in trace if not extra}
        extra = {id(expr): x for expr, _, x in trace if x}
        lines: list[str] = []
        rule = cr.rule
        if rule.event is not None:
            lines.append(f"on {rule.event.text} at {show_value(frame.at)}")
            if rule.where is not None:
                lines.extend(self._condition("where", rule.where, condition, seen, extra))
        elif rule.when is not None:
            lines.extend(self._condition("when", rule.when, condition, seen, extra))
        if cr.scope is not None and cr.playbook.applies_to is not None:
            scope = cr.scope(frame)
            seen.update({id(e): v for e, v, x in frame.trace or [] if not x})
            lines.extend(
                self._condition("applies to", cr.playbook.applies_to, scope, seen, extra)
            )
        if cr.unless is not None and rule.unless is not None:
            unless = cr.unless(frame)
            seen.update({id(e): v for e, v, x in frame.trace or [] if not x})
            lines.extend(self._condition("unless", rule.unless, unless, seen, extra))
        if recipients:
            lines.append("recipients: " + ", ".join(dict.fromkeys(recipients)))
        return lines

    def _condition(
        self,
        label: str,
        expr: n.Expr,
        value: Any,
        seen: dict[int, Any],
        extra: dict[int, dict[str, Any]],
    ) -> list[str]:
        lines = [f"{label} {self.text(expr)} → {show_truth(value)}"]
        parts = list(_predicates(expr))
        if len(parts) == 1 and parts[0] is expr:
            details = self._details(expr, seen, extra)
            if details:
                lines[0] += f"   ({details})"
            return lines
        for part in parts:
            value = seen.get(id(part))
            mark = "✓" if value is True else "✗" if value is False else "?"
            if id(part) not in seen:
                lines.append(f"  - {self.text(part)} → not evaluated (already decided)")
                continue
            line = f"  {mark} {self.text(part)} → {show_truth(seen[id(part)])}"
            details = self._details(part, seen, extra)
            if details:
                line += f"   ({details})"
            lines.append(line)
        return lines

    def _details(
        self, expr: n.Expr, seen: dict[int, Any], extra: dict[int, dict[str, Any]]
    ) -> str:
        """The values inside a predicate: `health = 48`, `health is missing`."""
        shown = []
        found = extra.get(id(expr))
        for value_node in _values(expr):
            if id(value_node) not in seen:
                continue
            value = seen[id(value_node)]
            text = self.text(value_node)
            shown.append(f"{text} is missing" if value is None else f"{text} = {show_value(value)}")
        if (
            isinstance(expr, n.Name)
            and id(expr) in seen
            and seen[id(expr)] is None
            and expr.parts[0] not in self.program.segments
        ):
            shown.append(f"{self.text(expr)} is missing")  # a bare yes/no field: `when vip`
        if found:
            shown.extend(self._extra_details(expr, found))
        return ", ".join(dict.fromkeys(shown))

    def _extra_details(self, expr: n.Expr, extra: dict[str, Any]) -> list[str]:
        """What a crossing, a `for` or a milestone saw at other moments."""
        if "previous_at" in extra:
            operand = getattr(expr, "operand", None)
            text = self.text(operand) if operand is not None else "the value"
            return [
                f"{text} was {show_value(extra['previous'])} at the previous evaluation "
                f"({show_value(extra['previous_at'])})"
            ]
        if "evaluations" in extra:
            count = extra["evaluations"]
            broke = extra["broke_at"]
            if broke is None:
                return [f"held at all {count} evaluations"]
            return [f"not true at {show_value(broke)}"]
        if "started" in extra:
            started, done = extra["started"], extra["done"]
            parts = [f"started {show_value(started)}" if started else "no start date"]
            parts.append(f"done {show_value(done)}" if done else "not done")
            return parts
        return []


def _predicates(expr: n.Expr) -> list[n.Expr]:
    if isinstance(expr, (n.And, n.Or)):
        return _predicates(expr.left) + _predicates(expr.right)
    if isinstance(expr, n.Not):
        return _predicates(expr.operand)
    if isinstance(expr, n.Paren):
        return _predicates(expr.inner)
    return [expr]


def _values(expr: n.Expr) -> list[n.Expr]:
    """The non-literal values a predicate compares, outermost first."""
    children: list[n.Expr] = []
    for name in ("left", "right", "operand", "threshold", "condition"):
        child = getattr(expr, name, None)
        if child is not None and not isinstance(child, str):
            children.append(child)
    found: list[n.Expr] = []
    for child in children:
        if isinstance(child, (*_LITERALS, *_STRUCTURE)):
            continue
        if isinstance(child, (n.Compare, n.Is, n.In, n.Missing, n.Crossing, n.Changes)):
            found.extend(_values(child))
            continue
        found.append(child)
    return found


def _unparse(expr: n.Expr) -> str:
    """Text for a node that has no source at hand (built in code, not read from a file)."""
    return type(expr).__name__
