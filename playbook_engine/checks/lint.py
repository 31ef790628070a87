"""Warnings about what is legal but surely not meant: conditions that never hold, unused names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

from .. import nodes as n
from ..errors import Diagnostic, warning
from ..infer import children, subexpressions
from .context import Context, conditions, expressions

__all__ = ["never_true", "unused_definitions"]


def never_true(ctx: Context) -> Iterator[Diagnostic]:
    """Warn about `a and b` that cannot both hold: `health < 10 and health > 20`."""
    for expr in conditions(ctx.program):
        for chain in _chains(expr):
            problem = _contradiction(_flatten(chain))
            if problem:
                message = f"this condition can never be true: {problem}"
                yield warning(message, chain.span, "never-true")


def _chains(expr: n.Expr) -> Iterator[n.And]:
    """Each maximal chain of `and`s in `expr` (its top node), filters included."""
    stack: list[tuple[n.Expr, bool]] = [(expr, False)]
    while stack:
        e, inside_and = stack.pop()
        if isinstance(e, n.And):
            if not inside_and:
                yield e
            stack += [(e.right, True), (e.left, True)]
        elif isinstance(e, n.Paren):
            stack.append((e.inner, inside_and))
        else:
            stack += [(child, False) for child in reversed(children(e))]


def _flatten(e: n.Expr) -> list[n.Expr]:
    """The parts of an `and` chain, through parentheses."""
    parts: list[n.Expr] = []
    stack = [e]
    while stack:
        e = stack.pop()
        if isinstance(e, n.Paren):
            stack.append(e.inner)
        elif isinstance(e, n.And):
            stack += [e.right, e.left]
        else:
            parts.append(e)
    return parts


def _number_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def _contradiction(parts: list[n.Expr]) -> str | None:
    """Why the parts of an `and` chain cannot all hold, or None."""
    lows: dict[str, tuple[Decimal, bool, str]] = {}
    highs: dict[str, tuple[Decimal, bool, str]] = {}
    equals: dict[str, tuple[str, str]] = {}
    differs: dict[str, dict[str, str]] = {}
    order: dict[str, int] = {}
    for part in parts:
        bound = _bound(part)
        if bound is not None:
            name, op, value, text = bound
            order.setdefault(text, len(order))
            if op in (">", ">=", "="):
                low = lows.get(name)
                strict = op == ">"
                if low is None or value > low[0] or (value == low[0] and strict):
                    lows[name] = (value, not strict, text)
            if op in ("<", "<=", "="):
                high = highs.get(name)
                strict = op == "<"
                if high is None or value < high[0] or (value == high[0] and strict):
                    highs[name] = (value, not strict, text)
            low, high = lows.get(name), highs.get(name)
            if low and high and (
                low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))
            ):
                return _both(low[2], high[2], order)
            continue
        same = _equality(part)
        if same is None:
            continue
        name, word, negated, text = same
        order.setdefault(text, len(order))
        if negated:
            differs.setdefault(name, {})[word] = text
        elif name in equals and equals[name][0] != word:
            return _both(equals[name][1], text, order)
        else:
            equals.setdefault(name, (word, text))
        if name in equals and equals[name][0] in differs.get(name, {}):
            return _both(equals[name][1], differs[name][equals[name][0]], order)
    return None


def _both(a: str, b: str, order: Mapping[str, int]) -> str:
    """"'x < 1' and 'x > 2' cannot both hold", the two in the order they are written."""
    first, second = sorted((a, b), key=lambda text: order.get(text, 0))
    return f"'{first}' and '{second}' cannot both hold"


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _bound(part: n.Expr) -> tuple[str, str, Decimal, str] | None:
    """`health < 10` as ("health", "<", 10, "health < 10"); None for anything else."""
    if not isinstance(part, n.Compare) or part.op == "!=":
        return None
    left, right = part.left, part.right
    op: str = part.op
    if isinstance(left, n.Number) and isinstance(right, n.Name):
        left, right, op = right, left, _FLIP[op]
    if isinstance(left, n.Name) and isinstance(right, n.Number):
        shown = _number_text(right.value)
        if right.percent:
            shown = f"{_number_text(right.value * 100)}%"
        return left.text, op, right.value, f"{left.text} {op} {shown}"
    return None


def _equality(part: n.Expr) -> tuple[str, str, bool, str] | None:
    """`tier is a` as ("tier", "a", False, "tier is a"); None for anything else."""
    if not isinstance(part, n.Is) or not isinstance(part.left, n.Name):
        return None
    right = part.right
    if isinstance(right, n.Name) and len(right.parts) == 1:
        value, shown = right.text, right.text
    elif isinstance(right, n.String):
        value, shown = right.value, f'"{right.value}"'
    else:
        return None
    words = "is not" if part.negated else "is"
    return part.left.text, value, part.negated, f"{part.left.text} {words} {shown}"


def unused_definitions(ctx: Context) -> Iterator[Diagnostic]:
    """Segments and metrics no playbook uses (only with `warn_unused_definitions`)."""
    if not ctx.settings.warn_unused_definitions:
        return
    symbols = ctx.symbols
    used: set[str] = set()
    for root in expressions(ctx.program):
        used.update(e.text for e in subexpressions(root) if isinstance(e, n.Name))
    for kind, table in (("segment", symbols.segments), ("metric", symbols.metrics)):
        for name, item in table.items():
            if name not in used:
                yield warning(f"{kind} '{name}' is never used", item.name.span, "unused")
