"""Checks of conditions, values and recipients, through `infer`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .. import nodes as n
from ..errors import Diagnostic, did_you_mean, error
from ..infer import (
    Kind,
    Scope,
    check_condition,
    check_value,
    closest,
    infer,
    resolve,
    unknown_event_message,
)
from .context import Context

__all__ = ["expressions_typed", "recipients_known", "rule_scope"]


def rule_scope(ctx: Context, rule: n.Rule, report: Callable[[Diagnostic], None]) -> Scope:
    if rule.event is not None:
        return Scope(ctx.symbols, rule.event.text, report, "an 'on' rule")
    return Scope(ctx.symbols, None, report, "a 'when' rule")


def expressions_typed(ctx: Context) -> Iterator[Diagnostic]:
    """Every name known, every value of the right type, conditions where conditions go."""
    found: list[Diagnostic] = []
    report = found.append
    symbols = ctx.symbols
    for segment in symbols.segments.values():
        check_condition(segment.condition, Scope(symbols, None, report, "a segment"), "a segment")
    for metric in symbols.metrics.values():
        scope = Scope(symbols, None, report, "a metric")
        if infer(metric.value, scope).kind is Kind.YESNO and not isinstance(metric.value, n.Name):
            message = (
                f"a metric is a value, but this is a condition: define it as a segment, "
                f"segment {metric.name.text}: ..."
            )
            report(error(message, metric.value.span, "condition-as-value"))
    for playbook in ctx.program.playbooks:
        if playbook.applies_to is not None:
            scope = Scope(symbols, None, report, "'applies to'")
            check_condition(playbook.applies_to, scope, "'applies to'")
        for rule in playbook.rules:
            scope = rule_scope(ctx, rule, report)
            event = rule.event
            if event is not None and event.text not in symbols.events and symbols.has_schema:
                message = unknown_event_message(event.text, symbols)
                report(error(message, event.span, "unknown-event"))
            for clause, expr in (
                ("'when'", rule.when),
                ("'where'", rule.where),
                ("'unless'", rule.unless),
                ("'stop when'", rule.stop_when),
            ):
                if expr is not None:
                    check_condition(expr, scope, clause)
            for action in rule.actions:
                _action_values(action, scope)
    yield from found


def _action_values(action: n.Action, scope: Scope) -> None:
    if isinstance(action, n.SetField):
        _set_field(action, scope)
    elif isinstance(action, n.PostWebhook):
        seen: set[str] = set()
        for key, value in action.payload or ():
            if key in seen:
                message = f"'{key}' is given twice in this webhook"
                scope.problem(message, value.span, "duplicate-key")
            seen.add(key)
            if not isinstance(value, n.String):
                infer(value, scope)


def _set_field(action: n.SetField, scope: Scope) -> None:
    target = action.field
    parts = target.parts
    if parts[0] == "account" and len(parts) > 1:
        parts = parts[1:]
    symbols = scope.symbols
    if len(parts) != 1:
        scope.problem(
            f"set changes a whole field of the account; '{target.text}' is not one",
            target.span,
            "set-target",
        )
        return
    name = parts[0]
    if name in ("id", "tags"):
        hint = "use add tag or remove tag" if name == "tags" else "it identifies the account"
        scope.problem(f"'{name}' cannot be set: {hint}", target.span, "set-target")
        return
    wanted = symbols.fields.get(name)
    if wanted is None:
        if symbols.has_schema:
            message = f"unknown field '{name}'{did_you_mean(name, symbols.fields)}"
            scope.problem(message, target.span, "unknown-field")
        infer(action.value, scope)
        return
    check_value(target, wanted, action.value, action.value.span, scope, "set")


def recipients_known(ctx: Context) -> Iterator[Diagnostic]:
    """Emails go to contact roles, user fields or addresses; tasks to a person."""
    found: list[Diagnostic] = []
    symbols = ctx.symbols
    for _, rule in ctx.program.rules():
        scope = rule_scope(ctx, rule, found.append)
        for action in rule.actions:
            if isinstance(action, n.SendEmail):
                for recipient in (*action.to, *action.cc):
                    _recipient(recipient, scope)
                if action.default_recipient and symbols.has_schema:
                    found.extend(_default_recipient(action, ctx))
            elif isinstance(action, n.CreateTask) and action.assignee is not None:
                _recipient(action.assignee, scope)
    yield from found


def _recipient(recipient: n.Recipient, scope: Scope) -> None:
    symbols = scope.symbols
    if isinstance(recipient, n.String):
        if "@" in recipient.value:
            return
        if recipient.value in symbols.roles:
            message = f"a role is written without quotes: {recipient.value}"
        else:
            message = (
                f"\"{recipient.value}\" is not an email address; a quoted recipient is an "
                'address such as "cs@example.com"'
            )
        scope.problem(message, recipient.span, "bad-address")
        return
    if len(recipient.parts) == 1 and recipient.text in symbols.roles:
        return
    if len(recipient.parts) == 1 and resolve(recipient.text, scope) is None:
        if not symbols.has_schema:
            return
        users = [f for f, t in symbols.fields.items() if t.kind is Kind.USER]
        candidates = [*symbols.roles, *users]
        close = closest(recipient.text, candidates)
        if close is not None:
            kind = "contact role" if close in symbols.roles else "user field"
            message = f"unknown {kind} '{recipient.text}'{did_you_mean(recipient.text, [close])}"
        else:
            message = (
                f"unknown recipient '{recipient.text}': write a contact role "
                f"({', '.join(symbols.roles) or 'none declared'}), a user field or a quoted address"
            )
        scope.problem(message, recipient.span, "unknown-role")
        return
    found = infer(recipient, scope)
    if found.known and found.kind not in (Kind.USER, Kind.TEXT):
        message = (
            f"a recipient is a contact role, a user field or an address, "
            f"but '{recipient.text}' is {found.noun}"
        )
        scope.problem(message, recipient.span, "bad-recipient")


def _default_recipient(action: n.SendEmail, ctx: Context) -> Iterator[Diagnostic]:
    role = ctx.settings.default_recipient_role
    roles = ctx.symbols.roles
    if role is None and not roles:
        yield error(
            "'send template' goes to the default recipients, the schema's first contact "
            "role, but the schema declares none: add 'to <role>' or declare contact roles",
            action.span,
            "no-recipient",
        )
    elif role is not None and role not in roles:
        message = (
            f"'send template' goes to the default recipient role '{role}' (from the "
            f"settings), which is not a contact role in the schema{did_you_mean(role, roles)}"
        )
        yield error(message, action.span, "no-recipient")
