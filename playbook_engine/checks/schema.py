"""Checks of the schema and of the names the directory defines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import nodes as n
from ..errors import Diagnostic, did_you_mean, error
from ..infer import Kind, subexpressions
from .context import Context, first_at, keyword_span

__all__ = ["definitions_acyclic", "names_unique", "schema_single", "schema_valid"]


def schema_single(ctx: Context) -> Iterator[Diagnostic]:
    """One schema per directory: none is an error, and so is a second one."""
    schemas = [i for f in ctx.program.files for i in f.items if isinstance(i, n.Schema)]
    if not schemas and ctx.program.files and not ctx.incomplete:
        first = ctx.program.files[0]
        yield error(
            "no schema in this directory: add a file such as schema.playbook that starts "
            "with 'schema' and declares the account's fields, so that rules can be checked",
            n.Span(first.path, 1, 1, 1, 1),
            "no-schema",
        )
    for extra in schemas[1:]:
        yield error(
            f"a second schema: a playbook directory has one, and the first is at "
            f"{schemas[0].span.file}:{schemas[0].span.line}; merge the two",
            keyword_span(extra.span, "schema"),
            "duplicate-schema",
        )


def schema_valid(ctx: Context) -> Iterator[Diagnostic]:
    """Names declared once each, enum values once each, milestones on date fields."""
    schema = ctx.program.schema
    if schema is None:
        return
    yield from _unique_names([f.name for f in schema.fields], "field", "duplicate-field")
    for decl in schema.fields:
        if decl.name.text == "tags":
            yield error(
                "every account has 'tags' already (use has tag, add tag, remove tag); "
                "choose another name for this field",
                decl.name.span,
                "builtin-field",
            )
        values = decl.type.values
        yield from _unique_names(values, f"{decl.name.text} value", "duplicate-value", "listed")
    yield from _unique_names(list(schema.roles), "contact role", "duplicate-role", "listed")
    yield from _unique_names([e.name for e in schema.events], "event", "duplicate-event")
    for event in schema.events:
        yield from _unique_names(
            [f.name for f in event.fields], f"{event.name.text} field", "duplicate-field"
        )
        for decl in event.fields:
            what = f"{decl.name.text} value"
            yield from _unique_names(decl.type.values, what, "duplicate-value", "listed")
    milestones = [m.name for m in schema.milestones]
    yield from _unique_names(milestones, "milestone", "duplicate-milestone")
    fields = ctx.symbols.fields
    for milestone in schema.milestones:
        for clause, name in (("starts at", milestone.starts_at), ("done at", milestone.done_at)):
            found = fields.get(name.text)
            if found is None:
                message = f"unknown field '{name.text}'{did_you_mean(name.text, fields)}"
                yield error(message, name.span, "unknown-field")
            elif found.kind is not Kind.DATE:
                message = f"'{clause}' needs a date field, but '{name.text}' is {found.noun}"
                yield error(message, name.span, "type")


def _unique_names(
    names: Iterable[n.Name], what: str, code: str, verb: str = "declared"
) -> Iterator[Diagnostic]:
    seen: dict[str, n.Name] = {}
    for name in names:
        first = seen.setdefault(name.text, name)
        if first is not name:
            where = first_at(first.span, name.span)
            message = f"{what} '{name.text}' is {verb} twice (first at {where})"
            yield error(message, name.span, code)


def names_unique(ctx: Context) -> Iterator[Diagnostic]:
    """Segments, metrics and playbooks have distinct names; so do a playbook's rules."""
    seen: dict[str, tuple[str, n.Name]] = {}
    fields = ctx.symbols.fields
    for file in ctx.program.files:
        for item in file.items:
            if not isinstance(item, n.Segment | n.Metric):
                continue
            kind = "segment" if isinstance(item, n.Segment) else "metric"
            name = item.name
            if name.text in seen:
                first_kind, first = seen[name.text]
                where = first_at(first.span, name.span)
                message = f"there is already a {first_kind} named '{name.text}' (at {where})"
                yield error(message, name.span, "duplicate-definition")
                continue
            seen[name.text] = (kind, name)
            if name.text in fields:
                message = (
                    f"{kind} '{name.text}' has the name of a field, and the field wins "
                    "wherever the name is used: rename the " + kind
                )
                yield error(message, name.span, "shadowed-definition")
    playbooks: dict[str, n.String] = {}
    for playbook in ctx.program.playbooks:
        first_name = playbooks.setdefault(playbook.name.value, playbook.name)
        if first_name is not playbook.name:
            where = first_at(first_name.span, playbook.name.span)
            message = (
                f"there is already a playbook named \"{playbook.name.value}\" (at {where}); "
                "playbook names are unique across the directory"
            )
            yield error(message, playbook.name.span, "duplicate-playbook")
        rules: dict[str, n.String] = {}
        for rule in playbook.rules:
            first_rule = rules.setdefault(rule.name.value, rule.name)
            if first_rule is not rule.name:
                where = first_at(first_rule.span, rule.name.span)
                message = (
                    f"this playbook already has a rule named \"{rule.name.value}\" "
                    f"(at {where}); rule names are unique within a playbook"
                )
                yield error(message, rule.name.span, "duplicate-rule")


def definitions_acyclic(ctx: Context) -> Iterator[Diagnostic]:
    """A segment or metric may not be defined through itself."""
    symbols = ctx.symbols
    uses: dict[str, list[str]] = {}
    definitions: dict[str, n.Segment | n.Metric] = {**symbols.metrics, **symbols.segments}
    for name, item in definitions.items():
        expr = item.condition if isinstance(item, n.Segment) else item.value
        uses[name] = [
            e.text
            for e in subexpressions(expr)
            if isinstance(e, n.Name)
            and len(e.parts) == 1
            and e.text in definitions
            and e.text not in symbols.fields
        ]
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start in definitions:
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            name, i = stack.pop()
            if i == 0:
                if state.get(name) == 2:
                    continue
                state[name] = 1
                path.append(name)
            if i < len(uses[name]):
                stack.append((name, i + 1))
                nxt = uses[name][i]
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    item = definitions[nxt]
                    message = (
                        f"'{nxt}' is defined through itself ({' → '.join(cycle)}); "
                        "a definition may use others, but not in a circle"
                    )
                    yield error(message, item.name.span, "cycle")
                elif state.get(nxt) != 2:
                    stack.append((nxt, 0))
            else:
                state[name] = 2
                path.pop()
