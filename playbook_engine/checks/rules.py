"""Checks of playbooks and the shape of their rules: triggers, actions, modifiers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from .. import nodes as n
from ..errors import Diagnostic, did_you_mean, error, warning
from ..infer import subexpressions
from .context import Context, expressions, keyword_span

__all__ = ["PRIORITIES", "STATUSES", "durations_valid", "playbooks_valid", "rules_shape"]

STATUSES = ("active", "draft", "paused")
PRIORITIES = ("high", "normal", "low")


def playbooks_valid(ctx: Context) -> Iterator[Diagnostic]:
    """Known playbook statuses and rule and task priorities."""
    for playbook in ctx.program.playbooks:
        if playbook.status is not None and playbook.status.text not in STATUSES:
            yield _not_one_of(playbook.status, "status", STATUSES, "unknown-status")
        for rule in playbook.rules:
            if rule.priority is not None and rule.priority.text not in PRIORITIES:
                yield _not_one_of(rule.priority, "priority", PRIORITIES, "unknown-priority")
            for action in rule.actions:
                if (
                    isinstance(action, n.CreateTask)
                    and action.priority is not None
                    and action.priority.text not in PRIORITIES
                ):
                    yield _not_one_of(action.priority, "priority", PRIORITIES, "unknown-priority")


def _not_one_of(name: n.Name, what: str, allowed: tuple[str, ...], code: str) -> Diagnostic:
    choices = ", ".join(allowed[:-1]) + " or " + allowed[-1]
    message = f"unknown {what} '{name.text}'; it is {choices}{did_you_mean(name.text, allowed)}"
    return error(message, name.span, code)


_CLAUSE = re.compile(r"[ \t]*([A-Za-z_]+)")
# The clauses that messages point at (`then` is also counted).
_CLAUSE_WORDS = ("when", "on", "then", "repeat", "stop")


def _clauses(rule: n.Rule, ctx: Context) -> list[tuple[str, n.Span]] | None:
    """The clause lines of a rule as (keyword, span of the line), from its source text.

    The parser reports a clause given twice, but the actions of two `then` lines are
    one list in the tree, so a second `then` can only be seen in the text: the lines
    indented like the rule's first line. The spans also point messages at a clause.
    """
    lines = ctx.lines(rule.span.file)
    if lines is None or rule.span.line < 1:
        return None
    found: list[tuple[str, n.Span]] = []
    indent: int | None = None
    for number in range(rule.span.line + 1, len(lines) + 1):
        text = lines[number - 1]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        width = len(text) - len(text.lstrip(" \t"))
        if indent is None:
            indent = width
        if width < indent:
            break
        match = _CLAUSE.match(text)
        if width == indent and match and match.group(1) in _CLAUSE_WORDS:
            code = text if '"' in text else text.split("#", 1)[0]
            span = n.Span(rule.span.file, number, width + 1, number, len(code.rstrip()) + 1)
            found.append((match.group(1), span))
    return found


def rules_shape(ctx: Context) -> Iterator[Diagnostic]:
    """A trigger, actions, and modifiers that make sense together."""
    for _, rule in ctx.program.rules():
        clauses = _clauses(rule, ctx)
        spans = _spans_of(clauses)
        if rule.when is None and rule.event is None:
            message = (
                f'rule "{rule.name.value}" has no trigger: start it with '
                "'when <condition>' (a state rule) or 'on <event>' (an event rule)"
            )
            yield error(message, rule.name.span, "no-trigger")
        elif rule.when is not None and rule.event is not None:
            yield _two_triggers(rule.when.span, rule.event.span, spans)
        if not rule.actions:
            message = (
                f'rule "{rule.name.value}" has no actions: add \'then\' and what to do, '
                'such as then send email "onboarding/welcome" to admin'
            )
            yield error(message, rule.name.span, "no-actions")
        yield from _thens(rule, clauses or [])
        yield from _modifiers(rule, spans)
        yield from _sequence(rule, spans)


def _spans_of(clauses: list[tuple[str, n.Span]] | None) -> dict[str, n.Span]:
    spans: dict[str, n.Span] = {}
    for word, span in clauses or ():
        spans.setdefault(word, span)
    return spans


def _two_triggers(when: n.Span, on: n.Span, spans: Mapping[str, n.Span]) -> Diagnostic:
    """A rule with both `when` and `on`: point at the later of the two."""
    when = keyword_span(spans["when"], "when") if "when" in spans else when
    on = keyword_span(spans["on"], "on") if "on" in spans else on
    if (on.line, on.column) > (when.line, when.column):
        later, other, first = on, "when", when
    else:
        later, other, first = when, "on", on
    message = (
        "a rule starts with either 'when' (a state rule) or 'on' (an event rule), "
        f"not both ('{other}' is on line {first.line}); write a rule for each"
    )
    return error(message, later, "two-triggers")


def _thens(rule: n.Rule, clauses: list[tuple[str, n.Span]]) -> Iterator[Diagnostic]:
    """A second list of actions: `then` twice, or `then` after actions on the `when` line."""
    thens = [keyword_span(span, "then") for word, span in clauses if word == "then"]
    if rule.inline and thens:
        message = (
            "this rule has actions on its first line already; put all of them "
            "under one 'then', one per line"
        )
        yield error(message, thens[0], "two-thens")
    for span in thens[1:]:
        message = (
            f"a second 'then' (the first is on line {thens[0].line}): a rule has one list "
            "of actions; put all of them under one 'then', one per line"
        )
        yield error(message, span, "two-thens")


def _modifiers(rule: n.Rule, spans: Mapping[str, n.Span]) -> Iterator[Diagnostic]:
    if rule.repeat_every is not None and rule.once_per_account:
        yield error(
            "'repeat every' and 'once per account' contradict each other: once per account "
            "never fires again; keep the one you mean",
            spans.get("repeat", rule.repeat_every.span),
            "contradiction",
        )
    if rule.repeat_every is not None and rule.event is not None:
        yield error(
            "'repeat every' is for 'when' rules: an 'on' rule fires once for each event; "
            "use 'at most once every' to space its firings out",
            spans.get("repeat", rule.repeat_every.span),
            "repeat-on-event",
        )


def _sequence(rule: n.Rule, spans: Mapping[str, n.Span]) -> Iterator[Diagnostic]:
    if rule.actions and isinstance(rule.actions[-1], n.Wait):
        yield warning(
            "nothing comes after this 'wait': remove it, or add the actions that should "
            "run after the wait below it",
            rule.actions[-1].span,
            "wait-last",
        )
    if rule.stop_when is not None and not any(isinstance(a, n.Wait) for a in rule.actions):
        yield warning(
            "'stop when' cancels the steps after a 'wait', but this rule has no 'wait': "
            "remove it, or use 'unless' to keep the rule from firing",
            spans.get("stop", rule.stop_when.span),
            "stop-without-wait",
        )


def durations_valid(ctx: Context) -> Iterator[Diagnostic]:
    """Business days are whole days, and count only in a task's `due in`."""
    for duration, due in _durations(ctx):
        if not duration.business:
            continue
        if duration.unit != "day":
            message = f"business time is counted in days: write '{duration.amount} business days'"
            yield error(message, duration.span, "business-unit")
        elif duration.amount != duration.amount.to_integral_value():
            message = "business days are whole days: write a whole number, such as 2 business days"
            yield error(message, duration.span, "business-fraction")
        elif not due:
            message = (
                "business days count only in a task's 'due in'; "
                f"here write '{duration.amount} days'"
            )
            yield error(message, duration.span, "business-elsewhere")


def _durations(ctx: Context) -> Iterator[tuple[n.Duration, bool]]:
    """Every duration written, with whether it is a task's `due in`."""
    for _, rule in ctx.program.rules():
        for action in rule.actions:
            if isinstance(action, n.CreateTask) and action.due is not None:
                yield action.due, True
            elif isinstance(action, n.Wait):
                yield action.duration, False
        for modifier in (rule.at_most_every, rule.repeat_every):
            if modifier is not None:
                yield modifier, False
    for expr in expressions(ctx.program):
        for e in subexpressions(expr):
            if isinstance(e, n.Count | n.Aggregate) and e.window is not None:
                yield e.window, False
            elif isinstance(e, n.For | n.Relative):
                yield e.duration, False
            elif isinstance(e, n.MilestoneState) and e.after is not None:
                yield e.after, False
