"""Checks of templates: emails named exist and compile, message strings compile."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from .. import nodes as n
from ..errors import Diagnostic
from ..infer import Kind
from ..templates import KnownNames
from .context import Context

__all__ = ["messages_compile", "templates_known"]


def _known_names(ctx: Context, event: str | None) -> KnownNames:
    """What a message of a rule on `event` (None: a `when` rule) may name."""
    symbols = ctx.symbols
    if not symbols.has_schema:
        return KnownNames()
    event_fields: frozenset[str] | None = frozenset()  # a `when` rule has no event
    if event is not None:
        # An unknown event is reported where it is named; its fields are not checked.
        fields = symbols.events.get(event)
        event_fields = frozenset(fields) if fields is not None else None
    return KnownNames(
        account_fields=frozenset(symbols.fields),
        user_fields=frozenset(f for f, t in symbols.fields.items() if t.kind is Kind.USER),
        event_fields=event_fields,
        extra_names=frozenset([*symbols.segments, *symbols.metrics]),
    )


def templates_known(ctx: Context) -> Iterator[Diagnostic]:
    """Every template named exists, and every template compiles against the schema."""
    store = ctx.templates
    if store is None:
        return
    for _, rule in ctx.program.rules():
        for action in rule.actions:
            if isinstance(action, n.SendEmail):
                yield from store.check_reference(action.template.value, action.template.span)
    known = _known_names(ctx, None)
    # An email template may serve rules of any event: `event.x` is not held to one.
    yield from store.compile_all(replace(known, event_fields=None))


def messages_compile(ctx: Context) -> Iterator[Diagnostic]:
    """Task titles, notifications and webhook texts are templates: each must compile."""
    store = ctx.templates
    if store is None:
        return
    known: dict[str | None, KnownNames] = {}
    # The same title is often written in many rules: check each text once per event type.
    done: dict[tuple[str, str | None], tuple[n.Span, list[Diagnostic]]] = {}
    for _, rule in ctx.program.rules():
        event = rule.event.text if rule.event is not None else None
        if event not in known:
            known[event] = _known_names(ctx, event)
        for text in _messages(rule):
            if "{" not in text.value:  # every template construct starts with a brace
                continue
            first = done.get((text.value, event))
            if first is not None and all(d.span == first[0] for d in first[1]):
                # Problems of an inline message are reported at its string: move them here.
                yield from (replace(d, span=text.span) for d in first[1])
                continue
            found = store.compile_inline(text.value, text.span, known[event])
            done[(text.value, event)] = (text.span, found)
            yield from found


def _messages(rule: n.Rule) -> Iterator[n.String]:
    for action in rule.actions:
        if isinstance(action, n.CreateTask):
            yield action.title
        elif isinstance(action, n.Notify):
            yield action.message
        elif isinstance(action, n.PostWebhook):
            for _, value in action.payload or ():
                if isinstance(value, n.String):
                    yield value
