"""Three-valued logic and exact arithmetic, as in SQL: `None` is unknown (or missing).

A comparison with a missing value is unknown; `and`/`or`/`not` propagate it; a rule
fires only on True. Numbers are `Decimal`, so `90% * 70` is exactly 63.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

Truth = bool | None


def and3(a: Truth, b: Truth) -> Truth:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a: Truth, b: Truth) -> Truth:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def not3(a: Truth) -> Truth:
    return None if a is None else not a


def truth(value: Any) -> Truth:
    """A value used as a condition: yes/no fields and segments; anything else is unknown."""
    if value is None or isinstance(value, bool):
        return value
    return None


def to_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return None


def arith(op: str, a: Any, b: Any) -> Decimal | None:
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        return None
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if y == 0:
            return None  # dividing by zero has no answer: unknown, never a crash
        return x / y
    except (InvalidOperation, DivisionByZero):
        return None


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if a is None or b is None:
        return None
    na, nb = to_number(a), to_number(b)
    if na is not None and nb is not None:
        return na, nb
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, bool) and isinstance(b, bool):
        return a, b
    return None


def compare(op: str, a: Any, b: Any) -> Truth:
    ta, tb = type(a), type(b)
    if (ta is Decimal and tb is Decimal) or (ta is str and tb is str):
        x, y = a, b  # what `_comparable` gives for these, found without its tests
    else:
        pair = _comparable(a, b)
        if pair is None:
            return None
        x, y = pair
    if op == "=":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    try:
        if op == "<":
            return bool(x < y)
        if op == "<=":
            return bool(x <= y)
        if op == ">":
            return bool(x > y)
        if op == ">=":
            return bool(x >= y)
    except TypeError:
        return None
    return None


def equal(a: Any, b: Any) -> Truth:
    return compare("=", a, b)
