"""A fast per-account path for flat-attribute rules: one generated function for many rules.

`compile.py` turns each condition into a tree of closures: exact, traced for explain, and
general (events, history, time). For the common case — rules that only look at the
account's own attributes, like `tier is high-touch and mrr >= 100000` — that is a dozen
Python calls per rule per account. Here a whole set of such rules is compiled once into
ONE Python function whose body is straight-line code: each field is read from the row
once, each rule is a few comparisons on local variables, and the three-valued logic is
written out inline. Nothing walks a tree or calls a closure per account.

    fast = FastRules.from_program(engine.program)      # the flat state rules' `when`
    fast.evaluate({"tier": "high-touch", "mrr": 120000})   # (True, None, False, ...)

The result, for each rule in order, is what `compile.py` gives: True, False, or None for
unknown (a value it needs is missing). `tests/test_fastpath.py` holds the two against each
other on generated rules and rows, missing values included.

**Flat** means: `and`, `or`, `not`, parentheses; comparisons, `is`/`is not`, `in`/`not
in`, `is missing`/`is present`, `contains`/`starts with`/`ends with`, `has tag`;
arithmetic on numbers; account fields of type number, text, one-of and yes/no (any type
for `is missing`/`is present`); numbers, texts and enum values; and segments and metrics
that are themselves flat (inlined). No events, aggregates, dates, history or time: those
rules keep the closures (`FastRules.skipped` lists them with the reason).

**The row** is a mapping from field name to value, typed as `facts.py` says: numbers as
`int` or `Decimal` (a `float` is taken as the decimal it prints as, as `logic.to_number`
does), text and enum values as `str`, yes/no as `bool`, `tags` an iterable of tags, and
`id`/`name` under those keys. A field that is absent or None is missing. A row holding a
value of another type than its field's (a text in a number field, a NaN, ...) is handed to
the closures as a whole, so the answer is the reference answer in every case; only
typed rows take the fast lane.

**Exactness.** Numbers compare exactly, as decimals: `90% * 70` is 63. Constants are
folded at compile time with `logic.arith` itself; whole-number constants become `int`
(comparing an `int` or `Decimal` with an `int` is exact in Python; `decimal_rows=True`
keeps them `Decimal`, faster against Decimal values), others stay `Decimal`. Arithmetic
on fields is done in `Decimal` in the thread's decimal context, as `logic.arith` does,
except where integers give the same number: `+ - *` on integer fields below 10**16 with
results under 28 digits (`90% * seats >= active` is `9 * seats >= active * 10`). Division
by zero is unknown; any other decimal trouble sends the row to the closures.

**Shape of the function** (`FastRules.source` shows it): each field read once and
type-checked; then, when every field the rules compare is present — the common case —
one block where each rule is a plain Python expression (`and`/`or` on bools, tests that
several rules share computed once) returned as a tuple; otherwise each rule under its
own "fields present" test, falling back to the three-valued code written out inline.

**Safety.** The generated source never contains anything a playbook author wrote: local
names are generated (`f0`, `t3`, `r12`), and every constant, field name included, is a
placeholder string (`'@k7'`) swapped for its value in the compiled code object's
constants. The function is built from that code object with a namespace holding only its
helpers and empty builtins; no module-level code is executed.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from . import logic
from . import nodes as n
from .compile import Compiler, Fn, Frame
from .facts import Account
from .program import Program

__all__ = ["FastRules", "NotFlat", "compile_fast", "flat_reason", "is_flat"]

Truth = bool | None
RowFn = Callable[[Mapping[str, Any]], tuple[Truth, ...]]

# Field kinds the fast path reads, and the value kinds it computes with.
_NUM, _STR, _BOOL, _ANY = "num", "str", "bool", "any"
_KIND_OF_FIELD = {"number": _NUM, "text": _STR, "enum": _STR, "yes/no": _BOOL}
# Where no result type can be had: `tier < 5` is unknown whatever the row holds.
_NONE_CODE = "None"
_ZERO = Decimal(0)
_AT = datetime(2000, 1, 1, tzinfo=UTC)  # flat rules do not depend on time


class NotFlat(ValueError):
    """The expression needs more than the account's own attributes."""


class _Maybe(Exception):
    """Part of a condition may be unknown even with its fields present."""


class _Foreign(Exception):
    """A row value not of its field's type: the row goes to the closures."""


# ------------------------------------------------------------------ row normalisation


def _num(value: object) -> object:
    """A number field's value that is not an `int`, `Decimal` or None, for arithmetic."""
    if value.__class__ is float:
        if value.is_integer() and -_EXACT < value < _EXACT:
            return int(value)  # 63.0 is 63, exactly
        return Decimal(repr(value))  # the decimal it prints as, as logic.to_number
    raise _Foreign


def _num_compared(value: object) -> object:
    """The same for a field that is only compared: a float whose binary value is the
    decimal it prints as (49.5, 0.25: sixteenths below 2**30) stays a float, since
    Python compares floats with ints and Decimals exactly, and hashes equal numbers
    alike (`in`)."""
    if value.__class__ is float:
        if value.is_integer() and -_EXACT < value < _EXACT:
            return int(value)
        if (value * 16.0).is_integer() and -_SIXTEENTHS < value < _SIXTEENTHS:
            return value
        return Decimal(repr(value))
    raise _Foreign


_MARKER = re.compile("\x00[0-9]+\x00")

# Integer arithmetic stands for Decimal while results have at most this many digits
# (the default context's precision) and integer fields stay below 10**_FIELD_DIGITS.
_DIGITS = 28
_FIELD_DIGITS = 16

# Whole floats below 2**53 are exact integers; beyond, repr and the binary value differ.
_EXACT = 2.0**53
# Sixteenths below 2**30 print as their exact value (at most 14 significant digits, while
# the next float is 2**-22 away): Decimal(repr(x)) == x.
_SIXTEENTHS = 2.0**30


def _str(value: object) -> object:
    raise _Foreign


_NUM_OK = frozenset({int, Decimal, type(None)})
_STR_OK = frozenset({str, type(None)})
_BOOL_OK = frozenset({bool, type(None)})


# ------------------------------------------------------------------ the result


@dataclass
class FastRules:
    """Flat conditions compiled into one function; `evaluate(row)` gives each one's truth."""

    keys: tuple[Any, ...]
    conditions: tuple[n.Expr, ...]
    evaluate: RowFn
    # The same conditions through compile.py's closures: the fallback, and the reference.
    reference: RowFn
    source: str
    fields: tuple[str, ...]
    skipped: list[tuple[Any, str]] = field(default_factory=list)
    _fallbacks: list[int] = field(default_factory=lambda: [0], repr=False)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def fallbacks(self) -> int:
        """How many rows went to the closures (a value not of its field's type)."""
        return self._fallbacks[0]

    def true_keys(self, row: Mapping[str, Any]) -> list[Any]:
        """The keys of the conditions that are true for `row`."""
        return [k for k, t in zip(self.keys, self.evaluate(row), strict=True) if t is True]

    @classmethod
    def from_program(
        cls, program: Program, include_paused: bool = False, *, decimal_rows: bool = False
    ) -> FastRules:
        """Every flat state rule's `when`, keyed (playbook, rule); the rest in `skipped`."""
        keys: list[Any] = []
        conditions: list[n.Expr] = []
        skipped: list[tuple[Any, str]] = []
        for playbook, rule in program.rules():
            key = (playbook.name.value, rule.name.value)
            if playbook.status_value == "paused" and not include_paused:
                continue
            if rule.when is None:
                skipped.append((key, "an event rule"))
                continue
            reason = flat_reason(program, rule.when)
            if reason is not None:
                skipped.append((key, reason))
                continue
            keys.append(key)
            conditions.append(rule.when)
        fast = compile_fast(program, conditions, keys, decimal_rows=decimal_rows)
        fast.skipped = skipped
        return fast


def is_flat(program: Program, expr: n.Expr) -> bool:
    return flat_reason(program, expr) is None


def flat_reason(program: Program, expr: n.Expr) -> str | None:
    """Why `expr` cannot take the fast path, or None when it can."""
    try:
        _Gen(program).rule(expr, 0)
    except NotFlat as exc:
        return str(exc)
    return None


def compile_fast(
    program: Program,
    conditions: Sequence[n.Expr],
    keys: Sequence[Any] | None = None,
    *,
    decimal_rows: bool = False,
) -> FastRules:
    """Compile `conditions` into one function of a row (NotFlat if one is not flat).

    `decimal_rows` says the rows' numbers are mostly `Decimal` (accounts from fixtures
    or `facts`), not `int` or `float` (tables, JSON): whole-number constants are then
    kept as Decimal, which a Decimal compares with twice as fast as with an int. The
    answers are the same either way.
    """
    gen = _Gen(program, decimal_rows)
    for number, expr in enumerate(conditions):
        gen.rule(expr, number)
    reference = _reference(program, conditions)
    fallbacks = [0]

    def slow(row: Mapping[str, Any]) -> tuple[Truth, ...]:
        fallbacks[0] += 1
        return reference(row)

    source, consts = gen.source(len(conditions))
    function = _build(source, consts, slow)
    return FastRules(
        keys=tuple(keys if keys is not None else range(len(conditions))),
        conditions=tuple(conditions),
        evaluate=function,
        reference=reference,
        source=source,
        fields=tuple(gen.fields),
        _fallbacks=fallbacks,
    )


def _reference(program: Program, conditions: Sequence[n.Expr]) -> RowFn:
    """The closures of compile.py over the same row: the fallback and the reference."""
    compiler = Compiler(program)
    closures: tuple[Fn, ...] = tuple(compiler.condition(c) for c in conditions)

    def slow(row: Mapping[str, Any]) -> tuple[Truth, ...]:
        frame = Frame(row_account(row), _AT)
        return tuple(c(frame) for c in closures)

    return slow


def row_account(row: Mapping[str, Any], at: datetime = _AT) -> Account:
    """A row as the `Account` compile.py reads (fields at `at`, no history or events)."""
    tags = row.get("tags")
    return Account(
        id=row.get("id"),  # type: ignore[arg-type]
        name=row.get("name"),
        fields=dict(row),
        as_of=at,
        tags=frozenset(tags) if tags is not None else frozenset(),
    )


# ------------------------------------------------------------------ code generation


class _Gen:
    """Emits straight-line Python for conditions; every value is a local or a placeholder."""

    def __init__(self, program: Program, decimal_rows: bool = False) -> None:
        self.program = program
        self.decimal_rows = decimal_rows
        self.fields: dict[str, str] = {}  # field name -> local name
        self.field_kinds: dict[str, str] = {}  # field name -> _NUM / _STR / _BOOL / _ANY
        self.consts: dict[str, object] = {}  # placeholder -> value
        self._const_ids: dict[tuple[object, ...], str] = {}
        self.lines: list[str] = []
        self.indent = 0
        # Rows whose fields are all present: shared tests once, then one expression a rule.
        self.full_lines: list[str] = []
        self.full_results: list[str] = []
        self.full_guards: dict[str, None] = {}
        # Other rows: each rule's two-valued form under its own guard, else three-valued.
        self.partial_lines: list[str] = []
        self.leaves: dict[str, str] = {}  # code of a test -> its marker
        self.leaf_uses: dict[str, int] = {}
        self.presence: dict[str, tuple[str, bool]] = {}  # marker -> (local, `is present`)
        self.int_fields: dict[str, None] = {}  # locals read by integer arithmetic
        self.arith_fields: set[str] = set()  # number fields arithmetic reads: no floats
        self.temps = 0
        self.uses_tags = False
        self._inlining: list[str] = []

    # -- bookkeeping

    def rule(self, expr: n.Expr, number: int) -> None:
        """Generate one rule's code in both forms (see `source`)."""
        out = f"r{number}"
        guards: dict[str, None] = {}
        uses = dict(self.leaf_uses)
        try:
            fast: str | None = self.cond2(expr, guards)
        except _Maybe:
            # The tests counted before giving up are not used: counted, two such rules
            # would make a test "shared", computed up front on fields nothing guards.
            self.leaf_uses = uses
            fast = None
        if fast is None:
            full = self._chunk(lambda: self.emit(f"{out} = {self.condition(expr)}"))
            self.full_lines += full
            # The same code serves rows with missing fields (temporaries are renamed).
            self.partial_lines += self._chunk(
                lambda: self.emit(f"{out} = {self.condition(expr)}")
            )
            self.full_results.append(out)
            return
        self.full_results.append(fast)
        self.full_guards.update(guards)

        def partial() -> None:
            if not guards:
                self.emit(f"{out} = {fast}")
                return
            self.emit(f"if {' and '.join(f'{g} is not None' for g in guards)}:")
            self.emit(f"    {out} = {fast}")
            self.emit("else:")
            self.indent += 1
            self.emit(f"{out} = {self.condition(expr)}")
            self.indent -= 1

        self.partial_lines += self._chunk(partial)

    def _chunk(self, generate: Callable[[], None]) -> list[str]:
        """The lines `generate` emits, at indentation 0."""
        saved, self.lines, self.indent = self.lines, [], 0
        try:
            generate()
            return self.lines
        finally:
            self.lines = saved

    def leaf(self, code: str) -> str:
        """A yes/no test of the two-valued code; counted, so that a shared one is computed
        once per row."""
        marker = self.leaves.setdefault(code, f"\x00{len(self.leaves)}\x00")
        self.leaf_uses[marker] = self.leaf_uses.get(marker, 0) + 1
        return marker

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def const(self, value: object) -> str:
        """A placeholder literal standing for `value` in the source."""
        if value is None:
            return _NONE_CODE
        if value is True or value is False:
            return repr(value)
        if isinstance(value, frozenset):
            key: tuple[object, ...] = (frozenset, *sorted(map(_const_key, value), key=repr))
        else:
            key = _const_key(value)
        if key not in self._const_ids:
            name = f"@k{len(self._const_ids)}"
            self._const_ids[key] = name
            self.consts[name] = value
        return repr(self._const_ids[key])

    def field(self, name: str, kind: str) -> str:
        """The local holding field `name`, read once at the top of the function."""
        if name not in self.fields:
            self.fields[name] = f"f{len(self.fields)}"
            self.field_kinds[name] = kind
        elif kind != _ANY and self.field_kinds[name] == _ANY:
            self.field_kinds[name] = kind  # now used as a value: its type is checked
        return self.fields[name]

    # -- conditions: each returns the code of an atom (a local or a constant)

    def condition(self, e: n.Expr) -> str:
        inner = e
        while isinstance(inner, n.Paren):
            inner = inner.inner
        if isinstance(inner, n.Name):
            # compile.py takes a bare name as a condition through logic.truth.
            code, kind = self.value(inner)
            if code == _NONE_CODE or kind == _BOOL:
                return code
            return _NONE_CODE
        if isinstance(inner, n.And):
            return self._and(inner)
        if isinstance(inner, n.Or):
            return self._or(inner)
        if isinstance(inner, n.Not):
            operand = self.condition(inner.operand)
            return self._let(f"None if {operand} is None else not {operand}", operand)
        if isinstance(inner, (n.Compare, n.Is, n.In, n.Missing, n.TextTest, n.HasTag)):
            code, _ = self.value(inner)
            return code
        raise NotFlat(f"a {type(inner).__name__.lower()} is not a yes/no condition here")

    def _and(self, e: n.And) -> str:
        left = self.condition(e.left)
        if left == "False":
            return "False"
        out = self.temp()
        if left == "True" or left == _NONE_CODE:
            right = self.condition(e.right)
            if left == "True":
                self.emit(f"{out} = {right}")
            else:
                self.emit(f"{out} = False if {right} is False else None")
            return out
        self.emit(f"if {left} is False:")
        self.emit(f"    {out} = False")
        self.emit("else:")
        self.indent += 1
        right = self.condition(e.right)
        self.emit(f"{out} = {right} if {left} else (False if {right} is False else None)")
        self.indent -= 1
        return out

    def _or(self, e: n.Or) -> str:
        left = self.condition(e.left)
        if left == "True":
            return "True"
        out = self.temp()
        if left == "False" or left == _NONE_CODE:
            right = self.condition(e.right)
            if left == "False":
                self.emit(f"{out} = {right}")
            else:
                self.emit(f"{out} = True if {right} is True else None")
            return out
        self.emit(f"if {left} is True:")
        self.emit(f"    {out} = True")
        self.emit("else:")
        self.indent += 1
        right = self.condition(e.right)
        self.emit(
            f"{out} = {right} if {left} is False else (True if {right} is True else None)"
        )
        self.indent -= 1
        return out

    def _let(self, expression: str, *atoms: str) -> str:
        """A temporary holding `expression`, or a constant when every atom is None."""
        if atoms and all(a == _NONE_CODE for a in atoms) and expression.startswith("None if"):
            return _NONE_CODE
        out = self.temp()
        self.emit(f"{out} = {expression}")
        return out

    # -- values: (code of an atom, kind)

    def value(self, e: n.Expr) -> tuple[str, str]:
        method = getattr(self, "_v_" + type(e).__name__, None)
        if method is None:
            raise NotFlat(f"{_describe(e)} needs more than the account's own fields")
        result: tuple[str, str] = method(e)
        return result

    def _v_Paren(self, e: n.Paren) -> tuple[str, str]:
        return self.value(e.inner)

    def _v_Number(self, e: n.Number) -> tuple[str, str]:
        return self._number(e.value), _NUM

    def _v_String(self, e: n.String) -> tuple[str, str]:
        return self.const(e.value), _STR

    def _number(self, value: Decimal | None) -> str:
        if value is None:
            return _NONE_CODE
        if not self.decimal_rows and value.is_finite() and value == value.to_integral_value():
            return self.const(int(value))  # exact, and int against int is the fastest
        return self.const(value)

    def _v_Name(self, e: n.Name) -> tuple[str, str]:
        return self._name(e.parts, presence=False)

    def _name(self, parts: tuple[str, ...], presence: bool) -> tuple[str, str]:
        head, rest = parts[0], parts[1:]
        p = self.program
        if head == "event":
            raise NotFlat("an event field")
        if head == "account" and rest:
            head, rest = rest[0], rest[1:]
        elif p.field_kind(head) is None and (head in p.segments or head in p.metrics):
            if rest:
                raise NotFlat(f"'{'.'.join(parts)}' reads an attribute of a definition")
            return self._definition(head)
        if rest:
            raise NotFlat(f"'{'.'.join(parts)}' reads an attribute of a user")
        declared = p.field_kind(head)
        if declared is None:
            raise NotFlat(f"'{head}' is not a declared field")
        kind = _KIND_OF_FIELD.get(declared)
        if kind is None:
            if presence:
                return self.field(head, _ANY), _ANY
            raise NotFlat(f"'{head}' is a {declared} field")
        return self.field(head, kind), kind

    def _definition(self, name: str) -> tuple[str, str]:
        if name in self._inlining:
            raise NotFlat(f"'{name}' is defined in terms of itself")
        self._inlining.append(name)
        try:
            if name in self.program.segments:
                # A segment used as a value is its truth (compile.py: `condition`).
                return self.condition(self.program.segments[name].condition), _BOOL
            return self.value(self.program.metrics[name].value)
        finally:
            self._inlining.pop()

    def _v_Arith(self, e: n.Arith) -> tuple[str, str]:
        left, lk = self.value(e.left)
        right, rk = self.value(e.right)
        folded = self._fold(left, right, lambda a, b: logic.arith(e.op, a, b))
        if folded is not None:
            return folded[0], _NUM
        if lk != _NUM or rk != _NUM or _NONE_CODE in (left, right):
            return _NONE_CODE, _NUM
        if e.op == "/" and self._is_const(right) and self._const_value(right)[1] == 0:
            return _NONE_CODE, _NUM  # dividing by zero has no answer
        self._arithmetic(left, right)
        # logic.arith computes in Decimal, in the current context: a Decimal constant on
        # either side makes it so; two fields (maybe both int) get the left one converted.
        left, right = self._as_decimal(left), self._as_decimal(right)
        if not (self._is_const(left) or self._is_const(right)):
            left = f"_D({left})"
        guard = self._none_guard(left.removeprefix("_D(").removesuffix(")"), right)
        if e.op == "/" and not self._is_const(right):
            guard = f"{guard} or {right} == 0" if guard else f"{right} == 0"
        expression = f"{left} {e.op} {right}"
        return self._let(f"None if {guard} else {expression}" if guard else expression), _NUM

    def _as_decimal(self, code: str) -> str:
        """An int constant as the Decimal it stands for (arithmetic stays in Decimal)."""
        known, value = self._const_value(code)
        if known and isinstance(value, int) and not isinstance(value, bool):
            return self.const(Decimal(value))
        return code

    def _v_Negate(self, e: n.Negate) -> tuple[str, str]:
        operand, kind = self.value(e.operand)
        zero = self.const(_ZERO)
        folded = self._fold(zero, operand, lambda a, b: logic.arith("-", a, b))
        if folded is not None:
            return folded[0], _NUM
        if kind != _NUM or operand == _NONE_CODE:
            return _NONE_CODE, _NUM
        self._arithmetic(operand)
        return self._let(f"None if {operand} is None else {zero} - {operand}"), _NUM

    def _arithmetic(self, *codes: str) -> None:
        """Fields read by Decimal arithmetic get no float (Decimal refuses to mix)."""
        locals_ = set(self.fields.values())
        self.arith_fields.update(c for c in codes if c in locals_)

    def _v_Compare(self, e: n.Compare) -> tuple[str, str]:
        left, lk = self.value(e.left)
        right, rk = self.value(e.right)
        op = "==" if e.op == "=" else e.op
        return self._compare(left, lk, right, rk, op, lambda a, b: logic.compare(e.op, a, b))

    def _v_Is(self, e: n.Is) -> tuple[str, str]:
        left, lk = self.value(e.left)
        right, rk = self._rhs(e.right)
        code, kind = self._compare(left, lk, right, rk, "==", logic.equal)
        if not e.negated:
            return code, kind
        if code in ("True", "False"):
            return str(code == "False"), _BOOL
        return self._let(f"None if {code} is None else not {code}", code), _BOOL

    def _rhs(self, rhs: n.Expr) -> tuple[str, str]:
        """The right of `is`: a bare name that is no field or definition is a literal."""
        if isinstance(rhs, n.Name) and len(rhs.parts) == 1 and not self._known(rhs.parts[0]):
            return self.const(rhs.parts[0]), _STR
        return self.value(rhs)

    def _known(self, name: str) -> bool:
        p = self.program
        return p.field_kind(name) is not None or name in p.segments or name in p.metrics

    def _compare(
        self,
        left: str,
        lk: str,
        right: str,
        rk: str,
        op: str,
        fold: Callable[[Any, Any], Truth],
    ) -> tuple[str, str]:
        folded = self._fold(left, right, fold)
        if folded is not None:
            return folded[0], _BOOL
        if lk != rk or _NONE_CODE in (left, right):
            return _NONE_CODE, _BOOL  # incomparable kinds (or a missing side): unknown
        guard = self._none_guard(left, right)
        expression = f"{left} {op} {right}"
        return self._let(f"None if {guard} else {expression}" if guard else expression), _BOOL

    def _v_In(self, e: n.In) -> tuple[str, str]:
        left, kind = self.value(e.left)
        if left == _NONE_CODE:
            return _NONE_CODE, _BOOL
        matching: list[object] = []
        odd = False  # an item of another kind: not found then means unknown, not false
        for item in e.items.items:
            value = _literal(item)
            if _kind_of(value) == kind:
                matching.append(value)
            else:
                odd = True
        absent = "None" if odd else "False"
        known, constant = self._const_value(left)
        if known:
            result = self.const(_member(constant, [_literal(i) for i in e.items.items]))
        else:
            members = self.const(frozenset(matching))
            result = self._let(
                f"None if {left} is None else (True if {left} in {members} else {absent})"
            )
        if not e.negated:
            return result, _BOOL
        if result in ("True", "False"):
            return str(result == "False"), _BOOL
        if result == _NONE_CODE:
            return _NONE_CODE, _BOOL
        return self._let(f"None if {result} is None else not {result}"), _BOOL

    def _v_Missing(self, e: n.Missing) -> tuple[str, str]:
        operand = e.operand
        while isinstance(operand, n.Paren):
            operand = operand.inner
        if isinstance(operand, n.Name):
            code, _ = self._name(operand.parts, presence=True)
        else:
            code, _ = self.value(operand)
        if code == _NONE_CODE or self._is_const(code) or code in ("True", "False"):
            missing = code == _NONE_CODE
            return str(missing != e.negated), _BOOL
        test = "is not None" if e.negated else "is None"
        return self._let(f"{code} {test}"), _BOOL

    def _v_TextTest(self, e: n.TextTest) -> tuple[str, str]:
        left, lk = self.value(e.left)
        right, rk = self.value(e.right)
        tests: dict[str, Callable[[str, str], bool]] = {
            "contains": lambda a, b: b in a,
            "starts with": lambda a, b: a.startswith(b),
            "ends with": lambda a, b: a.endswith(b),
        }

        def fold(a: Any, b: Any) -> Truth:
            if not isinstance(a, str) or not isinstance(b, str):
                return None
            return tests[e.op](a, b)

        folded = self._fold(left, right, fold)
        if folded is not None:
            return folded[0], _BOOL
        if lk != _STR or rk != _STR or _NONE_CODE in (left, right):
            return _NONE_CODE, _BOOL
        expression = {
            "contains": f"{right} in {left}",
            "starts with": f"{left}.startswith({right})",
            "ends with": f"{left}.endswith({right})",
        }[e.op]
        guard = self._none_guard(left, right)
        return self._let(f"None if {guard} else {expression}" if guard else expression), _BOOL

    def _v_HasTag(self, e: n.HasTag) -> tuple[str, str]:
        self.uses_tags = True
        return self._let(f"{self.const(e.tag.value)} in tags"), _BOOL

    # -- helpers

    def _is_const(self, code: str) -> bool:
        return code.startswith("'@k")

    def _is_decimal_const(self, code: str) -> bool:
        return self._is_const(code) and isinstance(self.consts[code.strip("'")], Decimal)

    def _const_value(self, code: str) -> tuple[bool, object]:
        if code == _NONE_CODE:
            return True, None
        if code in ("True", "False"):
            return True, code == "True"
        if self._is_const(code):
            return True, self.consts[code.strip("'")]
        return False, None

    def _fold(
        self, left: str, right: str, op: Callable[[Any, Any], Any]
    ) -> tuple[str, str] | None:
        """Both sides constant: the result, computed by the reference's own function."""
        lc, a = self._const_value(left)
        rc, b = self._const_value(right)
        if not (lc and rc):
            return None
        value = op(a, b)
        if value is None or isinstance(value, bool):
            return self.const(value), _BOOL
        if isinstance(value, Decimal):
            return self._number(value), _NUM
        raise NotFlat("an unexpected constant")  # pragma: no cover

    def _none_guard(self, *atoms: str) -> str:
        maybe = [a for a in dict.fromkeys(atoms) if not self._const_value(a)[0]]
        return " or ".join(f"{a} is None" for a in maybe)

    # -- two-valued code: the rule's fields all present (the common case)
    #
    # When every field a rule reads as a value is present, no part of most conditions can
    # be unknown, and the rule is one Python expression with `and`/`or`/`not` on bools:
    #     if f0 is not None and f1 is not None:
    #         r3 = f0 == '@k0' and f1 >= '@k1'
    #     else:
    #         ... the three-valued code ...
    # `_Maybe` says a part could still be unknown (a division by a field, a kind that
    # does not match, a list with items of another kind): such a rule keeps only the
    # three-valued code.

    def cond2(self, e: n.Expr, guards: dict[str, None]) -> str:
        inner = e
        while isinstance(inner, n.Paren):
            inner = inner.inner
        if isinstance(inner, n.Name):
            code, kind = self.value2(inner, guards)
            if kind != _BOOL:
                raise _Maybe
            return code
        if isinstance(inner, (n.And, n.Or)):
            word = "and" if isinstance(inner, n.And) else "or"
            return f"({self.cond2(inner.left, guards)} {word} {self.cond2(inner.right, guards)})"
        if isinstance(inner, n.Not):
            return f"(not {self.cond2(inner.operand, guards)})"
        if isinstance(inner, n.Compare):
            op = "==" if inner.op == "=" else inner.op
            return self._compare2(inner.left, inner.right, op, guards, rhs=False)
        if isinstance(inner, n.Is):
            return self._compare2(
                inner.left, inner.right, "!=" if inner.negated else "==", guards, rhs=True
            )
        if isinstance(inner, n.In):
            left, kind = self.value2(inner.left, guards)
            items = [_literal(i) for i in inner.items.items]
            if any(_kind_of(v) != kind for v in items) or self._is_const(left):
                raise _Maybe
            word = "not in" if inner.negated else "in"
            return self.leaf(f"({left} {word} {self.const(frozenset(items))})")
        if isinstance(inner, n.Missing):
            operand = inner.operand
            while isinstance(operand, n.Paren):
                operand = operand.inner
            if not isinstance(operand, n.Name):
                raise _Maybe
            code, _ = self._name(operand.parts, presence=True)
            if not code.startswith("f"):
                raise _Maybe  # a segment or metric: its own unknowns
            marker = self.leaf(f"({code} is {'not ' if inner.negated else ''}None)")
            self.presence[marker] = (code, inner.negated)
            return marker
        if isinstance(inner, n.TextTest):
            left, lk = self.value2(inner.left, guards)
            right, rk = self.value2(inner.right, guards)
            if lk != _STR or rk != _STR or self._is_const(left):
                raise _Maybe
            return self.leaf({
                "contains": f"({right} in {left})",
                "starts with": f"{left}.startswith({right})",
                "ends with": f"{left}.endswith({right})",
            }[inner.op])
        if isinstance(inner, n.HasTag):
            self.uses_tags = True
            return self.leaf(f"({self.const(inner.tag.value)} in tags)")
        raise _Maybe

    def _compare2(
        self, left_e: n.Expr, right_e: n.Expr, op: str, guards: dict[str, None], rhs: bool
    ) -> str:
        left, lk = self.value2(left_e, guards)
        if rhs and isinstance(right_e, n.Name) and len(right_e.parts) == 1 and not self._known(
            right_e.parts[0]
        ):
            right, rk = self.const(right_e.parts[0]), _STR
        else:
            right, rk = self.value2(right_e, guards)
        if lk != rk or (self._is_const(left) and self._is_const(right)):
            raise _Maybe  # unknown, or constants (left to the three-valued folding)
        decimal = f"({left} {op} {right})"
        if lk == _NUM and not rhs and self._has_arithmetic(left_e, right_e):
            scaled = self._scaled_compare(left_e, right_e, op)
            if scaled is not None:
                return self.leaf(f"({scaled} if ints else {decimal})")
        return self.leaf(decimal)

    # -- arithmetic in integers
    #
    # Decimal arithmetic is slow next to int arithmetic (a Decimal multiply and compare
    # cost ~10 int operations). `+`, `-` and `*` on decimals are exact as long as the
    # result fits the context's precision, so with integer fields below 10**16 and the
    # constants scaled to integers (`90% * seats >= active_users` is
    # `9 * seats >= active_users * 10`), an expression whose every intermediate result
    # has at most `_DIGITS` digits gives exactly what Decimal gives. `ints` (computed once
    # per row) says the fields are such integers; otherwise the Decimal code runs.
    # Division rounds in Decimal, so it always stays there.

    def _has_arithmetic(self, *exprs: n.Expr) -> bool:
        for e in exprs:
            while isinstance(e, n.Paren):
                e = e.inner
            if isinstance(e, (n.Arith, n.Negate)):
                return True
            if isinstance(e, n.Name) and len(e.parts) == 1 and e.parts[0] in self.program.metrics:
                return True
        return False

    def _scaled_compare(self, left_e: n.Expr, right_e: n.Expr, op: str) -> str | None:
        before = dict(self.int_fields)
        try:
            left, ls, ld = self._scaled(left_e)
            right, rs, rd = self._scaled(right_e)
            scale = max(ls, rs)
            if max(ld + scale - ls, rd + scale - rs) > _DIGITS:
                raise _Maybe
        except _Maybe:
            self.int_fields = before
            return None
        if ls < scale:
            left = f"({left} * {self.const(10 ** (scale - ls))})"
        if rs < scale:
            right = f"({right} * {self.const(10 ** (scale - rs))})"
        return f"({left} {op} {right})"

    def _scaled(self, e: n.Expr) -> tuple[str, int, int]:
        """(code, scale, digits): the value is code / 10**scale, code an exact int."""
        if isinstance(e, n.Paren):
            return self._scaled(e.inner)
        if isinstance(e, n.Number):
            exponent = e.value.as_tuple().exponent
            if not isinstance(exponent, int):
                raise _Maybe
            scale = max(0, -exponent)
            number = int(e.value.scaleb(scale))
            return self.const(number), scale, len(str(abs(number)))
        if isinstance(e, n.Name):
            p = self.program
            name = e.parts[-1] if e.parts[0] == "account" and len(e.parts) == 2 else e.parts[0]
            if len(e.parts) == 1 and p.field_kind(name) is None and name in p.metrics:
                if name in self._inlining:
                    raise NotFlat(f"'{name}' is defined in terms of itself")
                self._inlining.append(name)
                try:
                    return self._scaled(p.metrics[name].value)
                finally:
                    self._inlining.pop()
            code, kind = self._name(e.parts, presence=False)
            if kind != _NUM:
                raise _Maybe
            self.int_fields[code] = None
            return code, 0, _FIELD_DIGITS
        if isinstance(e, n.Negate):
            code, scale, digits = self._scaled(e.operand)
            return f"(-{code})", scale, digits
        if isinstance(e, n.Arith) and e.op in "+-*":
            a, sa, da = self._scaled(e.left)
            b, sb, db = self._scaled(e.right)
            if e.op == "*":
                return f"({a} * {b})", sa + sb, da + db
            scale = max(sa, sb)
            if sa < scale:
                a, da = f"({a} * {self.const(10 ** (scale - sa))})", da + scale - sa
            if sb < scale:
                b, db = f"({b} * {self.const(10 ** (scale - sb))})", db + scale - sb
            return f"({a} {e.op} {b})", scale, max(da, db) + 1
        raise _Maybe

    def value2(self, e: n.Expr, guards: dict[str, None]) -> tuple[str, str]:
        """A value that is never None while the `guards` fields are present."""
        if isinstance(e, n.Paren):
            return self.value2(e.inner, guards)
        if isinstance(e, n.Number):
            return self._number(e.value), _NUM
        if isinstance(e, n.String):
            return self.const(e.value), _STR
        if isinstance(e, n.Name):
            head = e.parts[-1] if e.parts[0] == "account" and len(e.parts) == 2 else None
            name = head or e.parts[0]
            p = self.program
            if len(e.parts) == 1 and p.field_kind(name) is None and (
                name in p.segments or name in p.metrics
            ):
                if name in self._inlining:
                    raise NotFlat(f"'{name}' is defined in terms of itself")
                self._inlining.append(name)
                try:
                    if name in p.segments:
                        return self.cond2(p.segments[name].condition, guards), _BOOL
                    return self.value2(p.metrics[name].value, guards)
                finally:
                    self._inlining.pop()
            code, kind = self._name(e.parts, presence=False)
            guards[code] = None
            return code, kind
        if isinstance(e, n.Arith):
            left, lk = self.value2(e.left, guards)
            right, rk = self.value2(e.right, guards)
            if lk != _NUM or rk != _NUM or (self._is_const(left) and self._is_const(right)):
                raise _Maybe
            if e.op == "/" and not (self._is_const(right) and self._const_value(right)[1] != 0):
                raise _Maybe  # a field may be zero: unknown
            self._arithmetic(left, right)
            left, right = self._as_decimal(left), self._as_decimal(right)
            if not (self._is_const(left) or self._is_const(right)):
                left = f"_D({left})"
            return f"({left} {e.op} {right})", _NUM
        if isinstance(e, n.Negate):
            operand, kind = self.value2(e.operand, guards)
            if kind != _NUM or self._is_const(operand):
                raise _Maybe
            self._arithmetic(operand)
            return f"({self.const(_ZERO)} - {operand})", _NUM
        raise _Maybe

    # -- the function

    def source(self, count: int) -> tuple[str, dict[str, object]]:
        """The function: read and check the fields, then one of two blocks.

            def _fast(row):
                try:
                    f0 = get(...)                      # each field once, type-checked
                    if f0 is not None and ...:         # every field a rule reads present
                        c0 = (f0 == '@k0')             # tests shared by rules, once
                        return (c0 and (f1 >= '@k1'), ...)
                    if f0 is not None and f1 is not None:   # per rule
                        r0 = ...
                    else:
                        ... three-valued code ...
                    return (r0, ...)
                except _FALLBACK:                      # a value not of its field's type
                    return _slow(row)
        """
        head = ["def _fast(row):", "try:", "    get = row.get"]
        for name, local in self.fields.items():
            head.append(f"    {local} = get({self.const(name)})")
            number = "_num" if local in self.arith_fields else "_num_compared"
            check = {_NUM: (_NUM_OK, number), _STR: (_STR_OK, "_str"),
                     _BOOL: (_BOOL_OK, "_str")}.get(self.field_kinds[name])
            if check is not None:
                head.append(f"    if {local}.__class__ not in {self.const(check[0])}:")
                head.append(f"        {local} = {check[1]}({local})")
        if self.uses_tags:
            head.append(f"    tags = get({self.const('tags')})")
            head.append("    if tags is None:")
            head.append("        tags = ()")
        if self.int_fields:
            low, high = self.const(-(10**_FIELD_DIGITS)), self.const(10**_FIELD_DIGITS)
            head.append("    ints = " + " and ".join(
                f"{f}.__class__ in {self.const(frozenset({int}))} and {low} < {f} < {high}"
                for f in self.int_fields))
        guarded = set(self.full_guards)

        shared = {m: f"c{k}" for k, m in enumerate(
            m for m, uses in self.leaf_uses.items() if uses > 1)}
        inline = {m: code for code, m in self.leaves.items()}

        # In the full block a guarded field is present: `is missing` on it is constant.
        known = {m: str(negated) for m, (local, negated) in self.presence.items()
                 if local in guarded}
        shared = {m: name for m, name in shared.items() if m not in known}

        def resolve(text: str, names: Mapping[str, str]) -> str:
            """Markers replaced by a name or a constant, else by the test's code (which
            may hold markers of its own: a segment inlined in a comparison)."""
            while "\x00" in text:
                text = _MARKER.sub(lambda m: names.get(m[0]) or inline[m[0]], text)
            return text

        full_names = {**known, **shared}

        def full_code(text: str) -> str:
            return resolve(text, full_names)

        def partial_code(text: str) -> str:
            return resolve(text, {})

        full: list[str] = []
        if guarded:
            full.append(f"if {' and '.join(f'{g} is not None' for g in self.full_guards)}:")
            # Shared tests in the order they were made: inner ones before outer ones.
            block = []
            defined: dict[str, str] = dict(known)
            for marker, name in shared.items():
                block.append(f"{name} = {resolve(inline[marker], defined)}")
                defined[marker] = name
            block += self.full_lines
            block.append("return (" + ", ".join(full_code(r) for r in self.full_results) + ",)")
            full += ["    " + line for line in block]
        partial = [partial_code(line) for line in self.partial_lines]
        partial.append("return (" + "".join(f"r{k}, " for k in range(count)) + ")")
        body = [*head, *["    " + line for line in [*full, *partial]]]
        tail = ["except _FALLBACK:", "    return _slow(row)"]
        lines = [body[0], *["    " + line for line in [*body[1:], *tail]]]
        return "\n".join(lines) + "\n", dict(self.consts)


def _build(source: str, consts: Mapping[str, object], slow: RowFn) -> RowFn:
    """The function, its placeholders replaced by the constants they stand for."""
    module = compile(source, "<playbook fastpath>", "exec")
    (code,) = [c for c in module.co_consts if isinstance(c, types.CodeType)]
    values = tuple(_swap(c, consts) for c in code.co_consts)
    code = code.replace(co_consts=values)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_D": Decimal,
        "_num": _num,
        "_num_compared": _num_compared,
        "_str": _str,
        "_slow": slow,
        "_FALLBACK": (_Foreign, ArithmeticError, TypeError),
    }
    function: RowFn = types.FunctionType(code, namespace, "_fast")
    return function


def _swap(value: object, consts: Mapping[str, object]) -> object:
    if isinstance(value, str) and value.startswith("@k"):
        return consts[value]
    if isinstance(value, tuple) and any(isinstance(v, str) for v in value):
        return tuple(_swap(v, consts) for v in value)
    return value


def _member(value: object, items: Iterable[object]) -> Truth:
    """compile.py's `in`, for constants."""
    if value is None:
        return None
    found: Truth = False
    for item in items:
        found = logic.or3(found, logic.equal(value, item))
    return found


def _const_key(value: object) -> tuple[object, ...]:
    """Equal constants of one type share a placeholder; 1 and 1.0 stay apart."""
    return (type(value), str(value) if isinstance(value, Decimal) else value)


def _literal(item: n.Name | n.String | n.Number) -> object:
    if isinstance(item, n.Name):
        return item.text
    return item.value


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, (int, Decimal)):
        return _NUM
    if isinstance(value, str):
        return _STR
    return _ANY


def _describe(e: n.Expr) -> str:
    words = {
        "Count": "'count'", "Aggregate": "an aggregate", "Last": "'last'",
        "DaysSinceLast": "'days since last'", "DaysBetween": "'days since/until'",
        "Relative": "a date condition", "MilestoneState": "a milestone",
        "Crossing": "'drops below'/'rises above'", "Changes": "'changes'", "For": "'for'",
        "ListValue": "a list",
    }
    return words.get(type(e).__name__, type(e).__name__)
