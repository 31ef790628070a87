"""Nodes to diagnostics: every problem in a playbook directory, found in one run.

Each check is a small function that takes the `Context` and yields diagnostics; `CHECKS`
runs them in order, like sqlglot's optimizer rules. A new check is one function in the
module of its concern, one entry in `CHECKS` and one case under `tests/check_cases/`.
Checks never stop at the first problem, and never raise on anything a user wrote.

    schema.py    one schema, names declared once, milestones on dates, no cycles
    rules.py     statuses, priorities; a rule's trigger, actions and modifiers
    values.py    conditions and values typed (through `infer`), recipients known
    messages.py  email templates exist and compile; message strings compile
    lint.py      warnings: conditions that can never hold, unused definitions

Expression types (unknown names, enum values, type mismatches) live in `infer.py`, so
that the compiler resolves names exactly as the checker does.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import nodes as n
from ..errors import Diagnostic, error, sort_diagnostics
from ..program import Program
from ..settings import Settings
from ..templates import TemplateStore
from .context import Check, Context
from .lint import never_true, unused_definitions
from .messages import messages_compile, templates_known
from .rules import durations_valid, playbooks_valid, rules_shape
from .schema import definitions_acyclic, names_unique, schema_single, schema_valid
from .values import expressions_typed, recipients_known

__all__ = ["CHECKS", "Check", "Context", "check"]


CHECKS: tuple[Check, ...] = (
    schema_single,
    schema_valid,
    names_unique,
    definitions_acyclic,
    playbooks_valid,
    rules_shape,
    durations_valid,
    expressions_typed,
    recipients_known,
    templates_known,
    messages_compile,
    never_true,
    unused_definitions,
)


def check(
    program: Program,
    templates: TemplateStore | None = None,
    settings: Settings | None = None,
    sources: Mapping[str, str] | None = None,
    incomplete: bool = False,
) -> list[Diagnostic]:
    """Every problem in `program`, sorted by file and position.

    `sources` (file name -> text) lets the checks see what the tree does not keep, such
    as a rule's second `when`; `incomplete` says some file had syntax errors, so that
    what is missing (the schema) may only be unparsed.
    """
    context = Context(program, templates, settings or Settings(), sources or {}, incomplete)
    found: list[Diagnostic] = []
    for rule in CHECKS:
        try:
            found.extend(rule(context))
        except RecursionError:
            # Only an absurdly nested expression gets here; say so rather than crash.
            first = program.files[0].path if program.files else "<playbooks>"
            message = (
                f"an expression is nested too deeply to check ({rule.__name__} stopped); "
                "split it into segments"
            )
            found.append(error(message, n.Span(first, 1, 1, 1, 1), "too-deep"))
    return sort_diagnostics(found)
