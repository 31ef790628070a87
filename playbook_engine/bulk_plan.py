"""Conditions as polars expressions over a table of every account: the bulk plan.

`Planner` compiles a rule's condition (and its playbook's `applies to`, and the segments
and metrics they use) once into polars expressions over the table `bulk.py` builds for a
moment: the account's fields as columns, history-aware (`health#3` is `health` as of the
third moment the plan needs), and one column per event aggregate and moment. It mirrors
`compile.py` construct by construct; a construct it cannot reproduce exactly raises
`Unsupported`, and the rule then goes through the per-account path for every account.

**What a condition gives.** A yes/no expression in three-valued logic: polars Booleans,
whose `&`, `|` and `~` are Kleene's (checked: `null & false` is false, `null | true` is
true, `~null` is null), and comparisons with null give null, as `logic.py` does.

**Numbers.** Decimals as people write them, and `90% * 70` is exactly 63. We measured the
two ways to keep that in polars 2.1: its Decimal type rounds a product to the larger
operand scale (0.25 * 0.25 gives 0.06) and a quotient likewise, so it is not exact; scaled
integers are exact for `+ - *` but cannot hold a quotient (`login-rate` is a division) and
overflow silently. So numbers are Float64 *with a bound on their error*, and the bulk
path only *selects candidates*: a rule's accounts are those whose condition comes out
true, and the per-account path, in exact `Decimal`, then decides each of them. For that,
a comparison must never call false or unknown what is true:

- every number carries `err`, an upper bound of its distance to the exact value (None
  when it is exact: whole numbers below 2**52 in a float are, and so are their sums,
  differences and products while bounded below 2**52, which the planner proves from the
  data's largest magnitudes);
- a comparison whose two sides are closer than their errors allow is *undecided*: null
  in the result, with the row marked in `x`, the rows where a value is uncertain;
- `x` travels with every value and condition. Kleene logic is monotone (replacing an
  input by unknown can only turn the result unknown), so a row is a candidate when its
  result is true, or null with `x` set. Constructs that are not monotone (`is missing`
  on an uncertain value) give null there too.

Integer-valued data (counts, days, whole-number fields) never gets an error, so almost
every comparison is decided exactly and only true rows go on; a tie like `63 >= 90% * 70`
is undecided and goes on to be decided exactly. Two cheaper cases, both exact:

- where both errors are 0 (the values are exact), a comparison is the float comparison,
  ties included: no tolerance;
- a field whose values are not all whole but none lies within its error of a whole
  number (`steps`: `48.5`, `0.1`, `99.99`; checked on the data once per column, like
  `number_stats`) compares with an exact whole number (`health < 50`, `seats in [10,
  20]`) as a plain float comparison: the exact value lies between the same two whole
  numbers as the float. Those are plain boolean kernels, with no bound columns.

**Time.** Dates are microseconds since the epoch (UTC). Moments are computed in Python as
`compile.py` computes them (`at - interval * k`), so windows and earlier evaluations fall
on the same instants. `compile.py` adds durations to aware datetimes in wall-clock time;
in a time zone with daylight-saving time that differs from exact arithmetic, so `after`,
`before` and `incomplete after` are only planned when the fixture's zone keeps one offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl

from . import nodes as n
from .bulk_frames import TAGS, Frames, history_key_column, micros, user_columns
from .compile import duration_delta
from .program import Program

__all__ = ["AggSpec", "Ctx", "Planner", "Unsupported", "Val", "maybe_true"]

# Relative slack per arithmetic step: covers a float's rounding (2**-53), Python's
# 28-digit decimal rounding (1e-28) and the rounding of the error sums themselves.
SLACK = 2.0**-50
# Below this, whole numbers and their sums and products are exact in a float.
EXACT_LIMIT = 2.0**52
# Numbers below this are `steps` if their fractions are clear of 0 and 1 (`_off_steps`).
STEPS_LIMIT = 2.0**44
DAY_US = 86_400_000_000
# Whole days between two dates Python can hold (years 1 to 9999) are fewer than this.
DAYS_BOUND = 4_000_000.0
ACCOUNT_PREFIX = "a:"
# Plans up to this many levels and stages are computed in one lazy query (`select`): on
# deeper ones (generated playbooks), polars' optimiser ran for minutes.
_LAZY_LEVELS = 8
_LAZY_STAGES = 400


class Unsupported(Exception):
    """A construct the bulk plan does not reproduce exactly: per-account for that rule."""


@dataclass(frozen=True)
class Val:
    """A value (or a condition, kind "bool") for every row, as polars expressions.

    `v` is the value (null: missing or unknown); for a user, `v` says a user is there
    and `email`/`uname` hold its parts. Numbers carry `err` (None: exact), `integral`
    (always a whole number) and `bound` (no row's magnitude exceeds it); `steps` says
    that no row's value is within its error of a whole number (or the value is whole and
    exact), so that against an exact whole number the float comparison is the exact one
    (`compare`). `x` marks the rows where the value is uncertain; `v` is null there.
    """

    kind: str
    v: pl.Expr
    err: pl.Expr | None = None
    integral: bool = False
    bound: float = math.inf
    steps: bool = False
    x: pl.Expr | None = None
    email: pl.Expr | None = None
    uname: pl.Expr | None = None


def _null(kind: str = "null") -> Val:
    return Val(kind, pl.lit(None, dtype=pl.Boolean if kind == "bool" else pl.Null))


def _either(a: pl.Expr | None, b: pl.Expr | None) -> pl.Expr | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _blank(v: pl.Expr, x: pl.Expr | None) -> pl.Expr:
    """`v`, null where `x` is set."""
    return v if x is None else pl.when(x).then(None).otherwise(v)


def maybe_true(c: Val) -> pl.Expr:
    """Rows where the exact condition may be true: true, or unknown and uncertain."""
    sure = c.v.fill_null(False)
    if c.x is None:
        return sure
    return sure | (c.v.is_null() & c.x.fill_null(False))


@dataclass(frozen=True)
class Ctx:
    """Where an expression is compiled: the moment, the event type in scope (a `where`
    filter's), and whether the rows are events (`on_events`), with the account's own
    columns joined under `a:`."""

    moment: datetime
    event: str | None = None
    on_events: bool = False


@dataclass
class AggSpec:
    """One event aggregate at one moment, computed in one grouped pass with the others."""

    column: str
    func: str
    event: str
    value_col: str | None
    value_kind: str
    where: Val | None
    start: int | None
    end: int

    def mask(self) -> pl.Expr:
        """Events this aggregate reads: its type, in its window, its filter true."""
        m = (pl.col("type") == self.event) & (pl.col("at") <= self.end)
        if self.start is not None:
            m = m & (pl.col("at") > self.start)
        if self.where is not None:
            m = m & self.where.v.fill_null(False)
        return m

    @property
    def uncertain(self) -> bool:
        """Whether some accounts' value is uncertain (column `<column>#x`)."""
        return self.func == "last" or (self.where is not None and self.where.x is not None)

    def aggregations(self) -> list[pl.Expr]:
        """The per-account expressions of `group_by(__idx).agg(...)`."""
        c, m = self.column, self.mask()
        out: list[pl.Expr] = []
        if self.where is not None and self.where.x is not None:
            reach = (pl.col("type") == self.event) & (pl.col("at") <= self.end)
            if self.start is not None:
                reach = reach & (pl.col("at") > self.start)
            out.append((reach & self.where.x.fill_null(False)).any().alias(c + "#x"))
        if self.func == "last":
            # Several events at the last moment: which one `last` reads is the reference's
            # choice (compile.event_order); such accounts go to the per-account path.
            at = pl.col("at").filter(m)
            out.append(((at == at.max()).sum() > 1).alias(c + "#x"))
        func = self.func
        if func == "count":
            out.append(m.sum().alias(c))
        elif func == "distinct":
            assert self.value_col is not None
            if self.value_kind == "user":
                present, _, email = user_columns(self.value_col)
                out.append(pl.col(email).filter(m & pl.col(present).is_not_null()).n_unique()
                           .alias(c))
            else:
                col = pl.col(self.value_col)
                out.append(col.filter(m & col.is_not_null()).n_unique().alias(c))
        elif func in ("sum", "average"):
            assert self.value_col is not None
            col = pl.col(self.value_col)
            out += [
                col.filter(m).sum().alias(c + "#sum"),
                col.abs().filter(m).sum().alias(c + "#abs"),
                (m & col.is_not_null()).sum().alias(c + "#n"),
            ]
        elif func in ("min", "max"):
            assert self.value_col is not None
            col = pl.col(self.value_col).filter(m)
            out.append((col.min() if func == "min" else col.max()).alias(c))
        elif func == "last":
            assert self.value_col is not None
            if self.value_kind == "user":
                for part, name in zip(user_columns(self.value_col), user_columns(c), strict=True):
                    out.append(pl.col(part).filter(m).last().alias(name))
            else:
                out.append(pl.col(self.value_col).filter(m).last().alias(c))
        elif func == "days_since":
            out.append(pl.col("at").filter(m).max().alias(c))
        return out

    def split(self) -> tuple[list[pl.Expr], list[pl.Expr]] | None:
        """The aggregations in two steps: columns computed over the events, row by row,
        then plain per-account aggregations of those columns (`group_by(__idx).agg`):
        the same values as `aggregations`, without a filter per account and aggregate.
        None for `sum`, `average` (a float sum in another order) and `last`."""
        if self.func not in ("count", "distinct", "min", "max", "days_since"):
            return None
        c, m = self.column, self.mask()
        flat, out = self.uncertain_parts()
        if self.func == "count":
            flat.append(m.alias(c + "~m"))
            out.append(pl.col(c + "~m").sum().alias(c))
        elif self.func == "days_since":
            flat.append(pl.when(m).then(pl.col("at")).alias(c + "~v"))
            out.append(pl.col(c + "~v").max().alias(c))
        elif self.func in ("min", "max"):
            assert self.value_col is not None
            flat.append(pl.when(m).then(pl.col(self.value_col)).alias(c + "~v"))
            v = pl.col(c + "~v")
            out.append((v.min() if self.func == "min" else v.max()).alias(c))
        else:  # distinct: the values read, null elsewhere; null is not counted...
            assert self.value_col is not None
            if self.value_kind == "user":
                present, _, email = user_columns(self.value_col)
                read = m & pl.col(present).is_not_null()
                value = pl.col(email)
            else:
                value = pl.col(self.value_col)
                read = m & value.is_not_null()
            flat.append(pl.when(read).then(value).alias(c + "~v"))
            v = pl.col(c + "~v")
            distinct = v.n_unique().cast(pl.UInt32) - (v.null_count() > 0).cast(pl.UInt32)
            if self.value_kind == "user":  # ...but a user without an email is a value
                flat.append((read & value.is_null()).alias(c + "~n"))
                distinct = distinct + pl.col(c + "~n").any().cast(pl.UInt32)
            out.append(distinct.alias(c))
        return flat, out

    def uncertain_parts(self) -> tuple[list[pl.Expr], list[pl.Expr]]:
        """`split` for column `<column>#x` alone, when the filter may be uncertain."""
        if self.where is None or self.where.x is None:
            return [], []
        reach = (pl.col("type") == self.event) & (pl.col("at") <= self.end)
        if self.start is not None:
            reach = reach & (pl.col("at") > self.start)
        c = self.column
        return ([(reach & self.where.x.fill_null(False)).alias(c + "~x")],
                [pl.col(c + "~x").any().alias(c + "#x")])

    def values_read(self) -> tuple[str, pl.Expr]:
        """For `distinct`: the column whose values it counts and the events it reads. The
        count per account is that of the (account, value) pairs among the events read: a
        user counts by its email, and one without an email counts too (null is a value
        to `n_unique`); other values are read only where present."""
        assert self.func == "distinct" and self.value_col is not None
        m = self.mask()
        if self.value_kind == "user":
            present, _, email = user_columns(self.value_col)
            return email, m & pl.col(present).is_not_null()
        return self.value_col, m & pl.col(self.value_col).is_not_null()

    def defaults(self) -> dict[str, object]:
        """Values for accounts without any event read (the grouped pass leaves them out)."""
        fills: dict[str, object] = {}
        if self.func in ("count", "distinct"):
            fills[self.column] = 0
        if self.func in ("sum", "average"):
            fills.update({self.column + "#sum": 0.0, self.column + "#abs": 0.0,
                          self.column + "#n": 0})
        if self.uncertain:
            fills[self.column + "#x"] = False
        return fills


@dataclass
class Planner:
    """Compiles conditions for one program, one set of frames, one moment and interval."""

    program: Program
    frames: Frames
    at: datetime
    interval: timedelta
    zone_fixed: bool
    moments: dict[int, datetime] = field(default_factory=dict)
    # (field, moment index) -> needed history-aware column
    history_needs: set[tuple[str, int]] = field(default_factory=set)
    aggregates: dict[tuple[object, ...], AggSpec] = field(default_factory=dict)
    # Intermediate results as named columns (name, expression, level): a level's
    # expressions read only columns of lower levels. Naming them keeps every expression
    # small: polars expands a shared sub-expression into a copy per use.
    stages: list[tuple[str, pl.Expr, int]] = field(default_factory=list)
    _levels: dict[str, int] = field(default_factory=dict)
    _memo: dict[tuple[n.Expr, Ctx], Val] = field(default_factory=dict)
    _named: dict[tuple[n.Expr, Ctx], Val] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)
    _steps: dict[tuple[str, str], bool] = field(default_factory=dict)

    def fixer(self, ctx: Ctx) -> Callable[[pl.Expr], pl.Expr]:
        """Names an expression as a column of the account table (not over events)."""
        if ctx.on_events:
            return lambda expr: expr
        return self.temp

    def temp(self, expr: pl.Expr) -> pl.Expr:
        if expr.meta.is_column() or expr.meta.is_literal():
            return expr  # nothing to compute
        name = f"__t{len(self.stages)}"
        level = 1 + max((self._levels.get(c, 0) for c in expr.meta.root_names()), default=0)
        self._levels[name] = level
        self.stages.append((name, expr, level))
        return pl.col(name)

    def number_stats(self, table: str, column: str) -> tuple[bool, float, bool]:
        """`Frames.number_stats` (every value whole and exact, the largest magnitude) and
        whether the column's values are `steps` (`Val`): none is within its error of a
        whole number but the exact whole ones (`_off_steps`)."""
        exact, bound = self.frames.number_stats(table, column)
        if exact:
            return exact, bound, True
        key = (table, column)
        if key not in self._steps:
            frames = self.frames
            frame = frames.accounts if table == "accounts" else frames.events
            if table.startswith("history:"):
                frame = frames.history[table.split(":", 1)[1]]
            self._steps[key] = bound < STEPS_LIMIT and (column not in frame.columns or not (
                frame.select(_off_steps(pl.col(column), bound).any()).item()))
        return exact, bound, self._steps[key]

    def staged(self, table: pl.DataFrame) -> pl.DataFrame:
        """`table` with the intermediate columns (`stages`), a level at a time.

        Each level is computed before the next reads it. One lazy query over every level
        is faster on paper, but its optimiser ran for minutes on some generated playbooks
        (a deep plan whose levels read each other's columns): the levels are stages
        precisely so that no expression is expanded into the next.
        """
        levels: dict[int, list[pl.Expr]] = {}
        for name, expr, level in self.stages:
            levels.setdefault(level, []).append(expr.alias(name))
        for level in sorted(levels):
            table = table.with_columns(levels[level])
        return table

    def select(self, table: pl.DataFrame, exprs: Sequence[pl.Expr]) -> pl.DataFrame:
        """`exprs` over `table` and the intermediate columns; within the one `select`,
        polars computes a sub-expression that several expressions share once.

        A small, shallow plan (`_LAZY_LEVELS`, `_LAZY_STAGES`: that of a few dozen rules)
        goes as one lazy query, a level after another, which computes only the columns
        read and runs levels side by side; a bigger one a level at a time (`staged`).
        """
        levels = {level for _, _, level in self.stages}
        if len(levels) > _LAZY_LEVELS or len(self.stages) > _LAZY_STAGES:
            return self.staged(table).select(exprs)
        query = table.lazy()
        for level in sorted(levels):
            query = query.with_columns(expr.alias(name) for name, expr, at in self.stages
                                       if at == level)
        return query.select(exprs).collect()

    def maybe(self, c: Val) -> pl.Expr:
        """`maybe_true`, over named columns."""
        return maybe_true(Val("bool", self.temp(c.v), x=None if c.x is None else self.temp(c.x)))

    # -- entry points

    def condition(self, expr: n.Expr, ctx: Ctx) -> Val:
        """A condition as `Compiler.condition` reads it: a bare name is taken as yes/no."""
        value = self.value(expr, ctx)
        if _is_value_name(expr):
            if value.kind in ("bool", "null"):
                return value if value.kind == "bool" else _null("bool")
            return _null("bool")  # `logic.truth`: anything but yes/no is unknown
        if value.kind == "null":
            return _null("bool")
        if value.kind != "bool":
            raise Unsupported("a value used as a condition")
        return value

    def named_condition(self, expr: n.Expr, ctx: Ctx) -> Val:
        """`condition`, its value and uncertain rows as named columns (not over events):
        for a condition read at several moments (`for`), computed once per moment."""
        if ctx.on_events:
            return self.condition(expr, ctx)
        key = (expr, ctx)
        if key not in self._named:
            c = self.condition(expr, ctx)
            self._named[key] = replace(c, v=self.temp(c.v),
                                       x=None if c.x is None else self.temp(c.x))
        return self._named[key]

    def timeless(self, expr: n.Expr) -> bool:
        """Whether the expression has one value at every moment for every account: no
        event, no date against the moment, no field with history, no earlier evaluation.
        """
        if isinstance(expr, (n.Count, n.Aggregate, n.Last, n.DaysSinceLast, n.DaysBetween,
                             n.Relative, n.MilestoneState, n.Crossing, n.Changes, n.For)):
            return False
        if isinstance(expr, n.Name):
            head = expr.parts[1] if expr.parts[0] == "account" and len(expr.parts) > 1 \
                else expr.parts[0]
            if head in self.frames.history:
                return False
            p = self.program
            if p.field_kind(head) is None and head not in self.frames.fields:
                if head in p.segments:
                    return self._timeless_defined(head, p.segments[head].condition)
                if head in p.metrics:
                    return self._timeless_defined(head, p.metrics[head].value)
            return True
        children = [v for v in vars_of(expr) if isinstance(v, _EXPR_TYPES)]
        return all(self.timeless(c) for c in children)

    def _timeless_defined(self, name: str, expr: n.Expr) -> bool:
        if name in self._stack:
            return False
        self._stack.append(name)
        try:
            return self.timeless(expr)
        finally:
            self._stack.pop()

    def moment_index(self, moment: datetime) -> int:
        key = micros(moment)
        self.moments.setdefault(key, moment)
        return list(self.moments).index(key)

    # -- values

    def value(self, e: n.Expr, ctx: Ctx) -> Val:
        key = (e, ctx)
        if key not in self._memo:
            method: Callable[[n.Expr, Ctx], Val] | None = getattr(
                self, "_v_" + type(e).__name__, None)
            if method is None:
                raise Unsupported(f"{type(e).__name__} as a value")
            self._memo[key] = method(e, ctx)
        return self._memo[key]

    def _v_Paren(self, e: n.Paren, ctx: Ctx) -> Val:
        return self.value(e.inner, ctx)

    def _v_Number(self, e: n.Number, ctx: Ctx) -> Val:
        return _number_literal(e.value)

    def _v_String(self, e: n.String, ctx: Ctx) -> Val:
        return Val("text", pl.lit(e.value, dtype=pl.String))

    def _v_Name(self, e: n.Name, ctx: Ctx) -> Val:
        return self.name(e.parts, ctx)

    def name(self, parts: tuple[str, ...], ctx: Ctx) -> Val:
        head, rest = parts[0], parts[1:]
        p = self.program
        if head == "account" and rest:
            return _attrs(self.account_field(rest[0], ctx), rest[1:])
        if head == "event" and rest:
            return _attrs(self.event_field(rest[0], ctx), rest[1:])
        if ctx.event is not None and p.event_field_kind(ctx.event, head) is not None:
            return _attrs(self.event_field(head, ctx), rest)
        if p.field_kind(head) is None:
            if head in p.segments:
                return self._defined(head, p.segments[head].condition, ctx, True)
            if head in p.metrics:
                return self._defined(head, p.metrics[head].value, ctx, False)
        return _attrs(self.account_field(head, ctx), rest)

    def _defined(self, name: str, expr: n.Expr, ctx: Ctx, segment: bool) -> Val:
        """A segment or metric, inlined; as `compile.py` does, outside any event."""
        if name in self._stack:
            raise Unsupported(f"'{name}' refers to itself")
        self._stack.append(name)
        try:
            inner = Ctx(ctx.moment, None, ctx.on_events)
            return self.condition(expr, inner) if segment else self.value(expr, inner)
        finally:
            self._stack.pop()

    def _col(self, name: str, ctx: Ctx) -> pl.Expr:
        return pl.col(ACCOUNT_PREFIX + name if ctx.on_events else name)

    def account_field(self, name: str, ctx: Ctx) -> Val:
        """The field's value at the moment: its history before the fixture's now."""
        frames = self.frames
        kind = frames.field_kind(name)
        if kind == "mixed":
            raise Unsupported(f"field '{name}' holds values of different types")
        if kind == "null":
            return _null()
        suffix = ""
        if name in frames.history and ctx.moment < frames.as_of:
            j = self.moment_index(ctx.moment)
            self.history_needs.add((name, j))
            suffix = f"#{j}"
        if kind == "user":
            present, uname, email = (self._col(c + suffix, ctx) for c in user_columns(name))
            return Val("user", present, email=email, uname=uname)
        col = self._col(name + suffix, ctx)
        if kind != "number":
            return Val(kind, col)
        exact, bound, steps = self.number_stats("accounts", name)
        if suffix:
            h_exact, h_bound, h_steps = self.number_stats("history:" + name, name)
            exact, bound, steps = exact and h_exact, max(bound, h_bound), steps and h_steps
        return _number_column(col, exact, bound, steps)

    def event_field(self, name: str, ctx: Ctx) -> Val:
        if ctx.event is None:
            return _null()  # `event.x` outside an event rule: there is no event
        if name == "type":
            return Val("text", pl.lit(ctx.event, dtype=pl.String))
        if name == "at":
            return Val("date", pl.col("at"))
        found = self.frames.event_column(ctx.event, name)
        if found is None:
            return _null()
        column, kind = found
        if kind == "mixed":
            raise Unsupported(f"event field '{name}' holds values of different types")
        if kind == "user":
            present, uname, email = (pl.col(c) for c in user_columns(column))
            return Val("user", present, email=email, uname=uname)
        if kind == "number":
            exact, bound, steps = self.number_stats("events", column)
            return _number_column(pl.col(column), exact, bound, steps)
        return Val(kind, _as_text(pl.col(column)) if kind == "text" else pl.col(column))

    def _rhs(self, rhs: n.Expr, ctx: Ctx) -> Val:
        """The right of `is` / `changes to`: a bare unknown name is an enum value."""
        if isinstance(rhs, n.Name) and len(rhs.parts) == 1 and not self._known(rhs.parts[0],
                                                                                 ctx):
            return Val("text", pl.lit(rhs.parts[0], dtype=pl.String))
        return self.value(rhs, ctx)

    def _known(self, name: str, ctx: Ctx) -> bool:
        p = self.program
        return (
            p.field_kind(name) is not None
            or name in p.segments
            or name in p.metrics
            or (ctx.event is not None and p.event_field_kind(ctx.event, name) is not None)
        )

    # -- arithmetic

    def _v_Arith(self, e: n.Arith, ctx: Ctx) -> Val:
        return arith(e.op, self.value(e.left, ctx), self.value(e.right, ctx), self.fixer(ctx))

    def _v_Negate(self, e: n.Negate, ctx: Ctx) -> Val:
        operand = self.value(e.operand, ctx)
        if operand.kind != "number":
            return _null()
        return replace(operand, v=-operand.v)

    # -- conditions

    def _v_Compare(self, e: n.Compare, ctx: Ctx) -> Val:
        return compare(e.op, self.value(e.left, ctx), self.value(e.right, ctx), self.fixer(ctx))

    def _v_Is(self, e: n.Is, ctx: Ctx) -> Val:
        # `is not` as `!=`: the same three values as `not (=)`, one kernel
        return same(self.value(e.left, ctx), self._rhs(e.right, ctx), self.fixer(ctx),
                    "!=" if e.negated else "=")

    def _v_In(self, e: n.In, ctx: Ctx) -> Val:
        left = self.value(e.left, ctx)
        if left.kind == "null":
            return _null("bool")
        fix = self.fixer(ctx)
        literals: list[Val] = []
        for item in e.items.items:
            if isinstance(item, n.Name):
                literals.append(Val("text", pl.lit(item.text, dtype=pl.String)))
            elif isinstance(item, n.String):
                literals.append(Val("text", pl.lit(item.value, dtype=pl.String)))
            else:
                literals.append(_number_literal(item.value))
        if left.kind == "number" and left.err is not None and not (
                left.steps and all(_whole_exact(i) for i in literals if i.kind == "number")):
            left = replace(left, v=fix(left.v), err=fix(left.err))  # read by every item
        if not literals:  # `in []`: false, unknown when the value is missing
            return Val("bool", pl.when(left.v.is_not_null()).then(not e.negated))
        # Each test is null where the value is (a comparison with null is unknown, and
        # so is an undecided one), so their Kleene `or` is too: no presence test needed.
        found = same(left, literals[0], fix)
        for literal in literals[1:]:
            found = _or(found, same(left, literal, fix))
        if left.kind == "user":  # a user stands for its email, which may be missing
            found = replace(found, v=pl.when(left.v.is_not_null()).then(found.v))
        return _not(found) if e.negated else found

    def _v_Missing(self, e: n.Missing, ctx: Ctx) -> Val:
        operand = self.value(e.operand, ctx)
        if operand.kind == "null":
            return Val("bool", pl.lit(not e.negated))
        result = operand.v.is_not_null() if e.negated else operand.v.is_null()
        return Val("bool", _blank(result, operand.x), x=operand.x)

    def _v_TextTest(self, e: n.TextTest, ctx: Ctx) -> Val:
        a, b = self.value(e.left, ctx), self.value(e.right, ctx)
        if a.kind != "text" or b.kind != "text":
            return _null("bool")
        if e.op == "contains":
            result = a.v.str.contains(b.v, literal=True)
        elif e.op == "starts with":
            result = a.v.str.starts_with(b.v)
        else:
            result = a.v.str.ends_with(b.v)
        return Val("bool", result)

    def _v_HasTag(self, e: n.HasTag, ctx: Ctx) -> Val:
        return Val("bool", self._col(TAGS, ctx).list.contains(pl.lit(e.tag.value)))

    def _v_And(self, e: n.And, ctx: Ctx) -> Val:
        return _and(self.condition(e.left, ctx), self.condition(e.right, ctx))

    def _v_Or(self, e: n.Or, ctx: Ctx) -> Val:
        return _or(self.condition(e.left, ctx), self.condition(e.right, ctx))

    def _v_Not(self, e: n.Not, ctx: Ctx) -> Val:
        return _not(self.condition(e.operand, ctx))

    def _exact_durations(self) -> None:
        if not self.zone_fixed:
            raise Unsupported("durations after a date in a zone with daylight-saving time")

    def _v_Relative(self, e: n.Relative, ctx: Ctx) -> Val:
        self._exact_durations()
        moment = self.value(e.operand, ctx)
        if moment.kind != "date":
            return _null("bool")
        delta = duration_delta(e.duration) // timedelta(microseconds=1)
        now = micros(ctx.moment)
        if e.direction == "after":
            return Val("bool", pl.lit(now) >= moment.v + delta)
        return Val("bool", (moment.v - delta <= now) & (pl.lit(now) < moment.v))

    def _v_MilestoneState(self, e: n.MilestoneState, ctx: Ctx) -> Val:
        decl = self.program.milestone(e.milestone.text)
        starts = decl.starts_at.text if decl else e.milestone.text + "_started_at"
        done_name = decl.done_at.text if decl else e.milestone.text + "_done_at"
        done = self.account_field(done_name, ctx)
        now = micros(ctx.moment)
        is_done = (done.v <= now).fill_null(False) if done.kind == "date" else pl.lit(False)
        if e.complete:
            return Val("bool", is_done)
        if e.after is None:
            return Val("bool", ~is_done)
        self._exact_durations()
        start = self.account_field(starts, ctx)
        if start.kind != "date":
            return Val("bool", pl.when(is_done).then(False).otherwise(None))
        after = duration_delta(e.after) // timedelta(microseconds=1)
        return Val("bool", pl.when(is_done).then(False).otherwise(pl.lit(now) >= start.v + after))

    def _v_Crossing(self, e: n.Crossing, ctx: Ctx) -> Val:
        below = e.direction == "below"
        before = replace(ctx, moment=ctx.moment - self.interval)
        fix = self.fixer(ctx)
        now_cmp = compare("<" if below else ">", self.value(e.operand, ctx),
                          self.value(e.threshold, ctx), fix)
        then_cmp = compare(">=" if below else "<=", self.value(e.operand, before),
                           self.value(e.threshold, before), fix)
        return _and(now_cmp, then_cmp)

    def _v_Changes(self, e: n.Changes, ctx: Ctx) -> Val:
        before = replace(ctx, moment=ctx.moment - self.interval)
        fix = self.fixer(ctx)
        now_value, then_value = self.value(e.operand, ctx), self.value(e.operand, before)
        if now_value.kind == "null" or then_value.kind == "null":
            return _null("bool")
        now_value, then_value = _named(now_value, fix), _named(then_value, fix)
        result = _not(same(now_value, then_value, fix))
        if e.to_value is not None:
            result = _and(result, same(now_value, self._rhs(e.to_value, ctx), fix))
        if e.from_value is not None:
            result = _and(result, same(then_value, self._rhs(e.from_value, before), fix))
        both = now_value.v.is_not_null() & then_value.v.is_not_null()
        x = _either(_either(now_value.x, then_value.x), result.x)
        return Val("bool", pl.when(both).then(result.v).otherwise(None), x=x)

    def _v_For(self, e: n.For, ctx: Ctx) -> Val:
        span = duration_delta(e.duration)
        result = self.named_condition(e.condition, ctx)
        k = 1
        while self.interval * k <= span:
            shifted = replace(ctx, moment=ctx.moment - self.interval * k)
            result = _and(result, self.named_condition(e.condition, shifted))
            k += 1
        return result

    # -- aggregates

    def _aggregate(
        self, key: n.Expr, func: str, event: str, value_name: str | None,
        where: n.Expr | None, window: n.Duration | None, ctx: Ctx,
    ) -> AggSpec:
        if ctx.on_events:
            raise Unsupported("an aggregate inside an event filter")
        j = self.moment_index(ctx.moment)
        cache_key = (key, j)
        if cache_key in self.aggregates:
            return self.aggregates[cache_key]
        value_col, value_kind = None, "null"
        if value_name is not None:
            found = self.frames.event_column(event, value_name)
            if found is not None:
                value_col, value_kind = found
        if value_kind == "mixed":
            raise Unsupported(f"event field '{value_name}' holds values of different types")
        filt = None
        if where is not None:
            filt = self.condition(where, Ctx(ctx.moment, event, on_events=True))
        start = None
        if window is not None:
            start = micros(ctx.moment - duration_delta(window))
        spec = AggSpec(f"agg{len(self.aggregates)}", func, event, value_col, value_kind, filt,
                       start, micros(ctx.moment))
        self.aggregates[cache_key] = spec
        return spec

    def _uncertain(self, spec: AggSpec, val: Val) -> Val:
        if not spec.uncertain:
            return val
        x = pl.col(spec.column + "#x")
        email = _blank(val.email, x) if val.email is not None else None
        uname = _blank(val.uname, x) if val.uname is not None else None
        return replace(val, v=_blank(val.v, x), x=x, email=email, uname=uname)

    def _v_Count(self, e: n.Count, ctx: Ctx) -> Val:
        spec = self._aggregate(e, "count", e.event.text, None, e.where, e.window, ctx)
        bound = float(self.frames.max_events(e.event.text))
        val = Val("number", pl.col(spec.column).cast(pl.Float64), integral=True, bound=bound)
        return self._uncertain(spec, val)

    def _v_Aggregate(self, e: n.Aggregate, ctx: Ctx) -> Val:
        event = e.event.text
        found = self.frames.event_column(event, e.field.text)
        kind = found[1] if found else "null"
        if e.func in ("sum", "average", "min", "max") and kind != "number":
            # `logic.to_number` takes nothing else: the sum of no numbers is 0.
            return _number_literal(Decimal(0)) if e.func == "sum" else _null()
        if e.func == "distinct" and kind == "null":
            return _number_literal(Decimal(0))
        exact, bound, steps = (True, 0.0, True)
        if kind == "number" and found is not None:
            exact, bound, steps = self.number_stats("events", found[0])
        if e.func == "distinct" and kind == "number" and not exact:
            raise Unsupported("distinct over numbers that are not whole")
        spec = self._aggregate(e, e.func, event, e.field.text, e.where, e.window, ctx)
        count = float(self.frames.max_events(event))
        c = spec.column
        if e.func == "distinct":
            val = Val("number", pl.col(c).cast(pl.Float64), integral=True, bound=count)
        elif e.func in ("min", "max"):  # one of the values
            val = _number_column(pl.col(c), exact, bound, steps)
        else:
            total, n_values = pl.col(c + "#sum"), pl.col(c + "#n").cast(pl.Float64)
            sum_exact = exact and bound * count < EXACT_LIMIT
            sum_err = None if sum_exact else pl.col(c + "#abs") * (n_values + 2) * SLACK
            if e.func == "sum":
                val = Val("number", total, sum_err, integral=exact, bound=bound * count)
            else:
                mean = pl.when(n_values > 0).then(total / n_values).otherwise(None)
                err = mean.abs() * SLACK
                if sum_err is not None:
                    err = err + sum_err / n_values
                val = Val("number", mean, err, bound=bound)
        return self._uncertain(spec, val)

    def _v_Last(self, e: n.Last, ctx: Ctx) -> Val:
        found = self.frames.event_column(e.event.text, e.field.text)
        if found is None:
            return _null()
        column, kind = found
        spec = self._aggregate(e, "last", e.event.text, e.field.text, None, None, ctx)
        c = spec.column
        if kind == "user":
            present, uname, email = (pl.col(x) for x in user_columns(c))
            val = Val("user", present, email=email, uname=uname)
        elif kind == "number":
            exact, bound, steps = self.number_stats("events", column)
            val = _number_column(pl.col(c), exact, bound, steps)
        else:
            val = Val(kind, _as_text(pl.col(c)) if kind == "text" else pl.col(c))
        return self._uncertain(spec, val)

    def _v_DaysSinceLast(self, e: n.DaysSinceLast, ctx: Ctx) -> Val:
        spec = self._aggregate(e, "days_since", e.event.text, None, None, None, ctx)
        days = ((pl.lit(spec.end) - pl.col(spec.column)) // DAY_US).cast(pl.Float64)
        return Val("number", days, integral=True, bound=DAYS_BOUND)

    def _v_DaysBetween(self, e: n.DaysBetween, ctx: Ctx) -> Val:
        moment = self.value(e.operand, ctx)
        if moment.kind != "date":
            return _null()
        now = pl.lit(micros(ctx.moment))
        span = now - moment.v if e.direction == "since" else moment.v - now
        return Val("number", (span // DAY_US).cast(pl.Float64), integral=True, bound=DAYS_BOUND)


# --------------------------------------------------------------------------- numbers


def _as_text(col: pl.Expr) -> pl.Expr:
    """Event texts may be stored as categories (`bulk_load`): read them as text."""
    return col.cast(pl.String)


def _number_literal(value: Decimal) -> Val:
    as_float = float(value)
    if not math.isfinite(as_float):
        raise Unsupported(f"the number {value} is out of range")
    exact = Decimal(as_float) == value
    err = None if exact else pl.lit(abs(as_float) * SLACK)
    integral = value == value.to_integral_value() and abs(as_float) < EXACT_LIMIT
    return Val("number", pl.lit(as_float, dtype=pl.Float64), err,
               integral=integral and exact, bound=abs(as_float))


def _number_column(col: pl.Expr, exact: bool, bound: float, steps: bool = False) -> Val:
    """A number column: exact when every value is whole and small (known from the data);
    `steps` when no value is near a whole number (`_off_steps`, known from the data)."""
    if exact:
        return Val("number", col, None, integral=True, bound=bound, steps=True)
    whole = (col.floor() == col) & (col.abs() < EXACT_LIMIT)
    err = pl.when(whole).then(0.0).otherwise(col.abs() * SLACK)
    return Val("number", col, err, bound=bound, steps=steps)


def _off_steps(col: pl.Expr, bound: float) -> pl.Expr:
    """Values whose exact value may be a whole number, or lie past one, though the float
    is not, or does not (`bound` exceeds every magnitude: below `STEPS_LIMIT`).

    Whole values are exact (`_number_column`); the exact value of another is within
    `|v| * SLACK <= bound * SLACK` of it, so when its fraction `f = v - floor(v)` is
    more than twice that (and 2**-50 for the rounding of `f` and of `margin`) from 0
    and from 1, the exact value lies strictly between the same two whole numbers as the
    float. Compared with any exact whole number, float and exact value then give the
    same answer: those are the values that are not flagged here.
    """
    margin = bound * (2 * SLACK) + 2.0**-50
    frac = col - col.floor()  # exact, but for v in (-1, 0): rounded (up to 1.0 at most)
    return (frac != 0) & ((frac <= margin) | (frac >= 1 - margin))


def _err(val: Val) -> pl.Expr:
    return val.err if val.err is not None else pl.lit(0.0)


Fix = Callable[[pl.Expr], pl.Expr]


def _named(val: Val, fix: Fix) -> Val:
    """The value with its parts named (each is then read many times, but computed once)."""
    if val.kind == "number" and val.err is not None:
        return replace(val, v=fix(val.v), err=fix(val.err))
    if val.kind == "user":
        return val
    return replace(val, v=fix(val.v))


def arith(op: str, a: Val, b: Val, fix: Fix) -> Val:
    """`logic.arith` over columns: None when either side is not a number or y is 0."""
    if a.kind != "number" or b.kind != "number":
        return _null()
    x = _either(a.x, b.x)
    exact = a.err is None and b.err is None and a.integral and b.integral
    if op in ("+", "-"):
        r = a.v + b.v if op == "+" else a.v - b.v
        bound = a.bound + b.bound
        if exact and bound < EXACT_LIMIT:
            return Val("number", r, None, integral=True, bound=bound, x=x)
        r = fix(r)
        err = fix(_err(a) + _err(b) + r.abs() * SLACK)
        return Val("number", r, err, integral=a.integral and b.integral, bound=bound, x=x)
    if op == "*":
        bound = a.bound * b.bound
        if exact and bound < EXACT_LIMIT:
            return Val("number", a.v * b.v, None, integral=True, bound=bound, x=x)
        av, bv = fix(a.v), fix(b.v)
        r = fix(av * bv)
        err = fix(av.abs() * _err(b) + bv.abs() * _err(a) + _err(a) * _err(b) + r.abs() * SLACK)
        return Val("number", r, err, integral=a.integral and b.integral, bound=bound, x=x)
    # Division: dividing by zero is unknown; by a divisor within its error of zero, we
    # cannot tell, so the row is uncertain.
    bv = fix(b.v)
    if b.err is None:
        r = fix(pl.when(bv == 0).then(None).otherwise(a.v / bv))
        err = r.abs() * SLACK
        if a.err is not None:
            err = err + a.err / bv.abs()
        return Val("number", r, fix(err), x=x)
    be = fix(b.err)
    near = fix((bv.abs() <= be).fill_null(False))
    x = _either(x, near)
    r = fix(pl.when(near).then(None).otherwise(a.v / bv))
    err = fix((_err(a) + r.abs() * be) / (bv.abs() - be) + r.abs() * SLACK)
    return Val("number", _blank(r, x), err, x=x)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def compare(op: str, a: Val, b: Val, fix: Fix) -> Val:
    """`logic.compare`: numbers, dates, texts or yes/no of one kind; else unknown."""
    if a.kind == "null" or b.kind == "null" or a.kind != b.kind:
        return _null("bool")
    if a.kind not in ("number", "date", "text", "bool"):
        return _null("bool")
    x = _either(a.x, b.x)
    if x is not None:
        x = fix(x)
    if a.kind == "number" and (a.err is not None or b.err is not None) \
            and not (_whole_exact(a) and b.steps) and not (_whole_exact(b) and a.steps):
        return _approximate(op, a, b, x, fix)
    left, right = a.v, b.v
    if a.kind == "bool":
        left, right = left.cast(pl.Int8), right.cast(pl.Int8)
    result = {
        "<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right,
        "=": left == right, "!=": left != right,
    }[op]
    return Val("bool", _blank(result, x), x=x)


def _whole_exact(val: Val) -> bool:
    """Every value an exact whole number (below 2**52: `integral` says so)."""
    return val.kind == "number" and val.err is None and val.integral


def _approximate(op: str, a: Val, b: Val, x: pl.Expr | None, fix: Fix) -> Val:
    """A comparison of numbers known up to an error: true, false, or undecided (null, x).

    Where both errors are 0 the values are exact and so is the float comparison (the
    sign of `av - bv` is exact, and it is 0 only when they are equal): no tolerance.
    """
    av, bv = fix(a.v), fix(b.v)
    d = fix(av - bv)
    errors = _err(a) + _err(b)
    tol = fix(pl.when(errors == 0).then(0.0).otherwise(
        errors + (av.abs() + bv.abs()) * SLACK))
    zero = (d == 0) & (tol == 0)
    if op == "<":
        yes, no = d + tol < 0, d - tol >= 0
    elif op == "<=":
        yes, no = d + tol <= 0, d - tol > 0
    elif op == ">":
        yes, no = d - tol > 0, d + tol <= 0
    elif op == ">=":
        yes, no = d - tol >= 0, d + tol < 0
    elif op == "=":
        yes, no = zero, d.abs() > tol
    else:
        yes, no = d.abs() > tol, zero
    # `d` and `tol` are named columns: what follows is small, whatever the operands.
    finite = d.is_finite() & tol.is_finite()
    yes, no = (yes & finite).fill_null(False), (no & finite).fill_null(False)
    result = pl.when(yes).then(True).when(no).then(False).otherwise(None)
    undecided = (~yes & ~no & d.is_not_null()).fill_null(False)
    return Val("bool", result, x=_either(x, undecided))


def same(a: Val, b: Val, fix: Fix, op: str = "=") -> Val:
    """`compile._same`: equality (or `!=`, its negation), a user standing for its email."""
    if a.kind == "user":
        a = Val("text", a.email if a.email is not None else pl.lit(None, dtype=pl.String))
    if b.kind == "user":
        b = Val("text", b.email if b.email is not None else pl.lit(None, dtype=pl.String))
    return compare(op, a, b, fix)


def _and(a: Val, b: Val) -> Val:
    return Val("bool", a.v & b.v, x=_either(a.x, b.x))


def _or(a: Val, b: Val) -> Val:
    return Val("bool", a.v | b.v, x=_either(a.x, b.x))


def _not(a: Val) -> Val:
    return Val("bool", ~a.v, x=a.x)


def _attrs(base: Val, rest: tuple[str, ...]) -> Val:
    """`compile._attrs`: `csm.email`, `csm.name`; anything else past a value is missing."""
    if not rest:
        return base
    if base.kind != "user" or len(rest) > 1 or rest[0] not in ("name", "email"):
        return _null()
    part = base.email if rest[0] == "email" else base.uname
    assert part is not None
    return Val("text", part)


_EXPR_TYPES = (n.Name, n.Number, n.String, n.ListValue, n.Arith, n.Negate, n.Count,
               n.Aggregate, n.Last, n.DaysSinceLast, n.DaysBetween, n.Compare, n.Is, n.In,
               n.Missing, n.TextTest, n.HasTag, n.And, n.Or, n.Not, n.Relative,
               n.MilestoneState, n.Crossing, n.Changes, n.For, n.Paren)


def vars_of(expr: n.Expr) -> list[object]:
    """The direct children of a node (its fields, lists flattened)."""
    out: list[object] = []
    for name in expr.__dataclass_fields__:
        value = getattr(expr, name)
        if isinstance(value, tuple):
            out.extend(value)
        else:
            out.append(value)
    return out


def _is_value_name(expr: n.Expr) -> bool:
    inner = expr
    while isinstance(inner, n.Paren):
        inner = inner.inner
    return isinstance(inner, n.Name)


def history_key(name: str) -> str:
    return history_key_column(name)
