"""Nodes to closures: each condition and value compiles once into a Python function.

A compiled expression takes a `Frame` (one account, one moment, maybe one event) and
returns a value: `Decimal`, `str`, `datetime`, `bool`, `User`, or None for missing and
unknown. Compiling with `traced=True` gives functions that also record each node's
value in `frame.trace`, so that explain shows exactly what the evaluator saw: the same
code path with a recorder, never a second interpreter that could disagree.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from . import logic
from . import nodes as n
from .facts import Account, Event, User
from .program import Program
from .timeutil import shift, whole_days_between

Fn = Callable[["Frame"], Any]

# Memo keys are unique in the process: frames never mix functions of two compilers, but
# a key cannot collide even if they did.
_MEMO_KEYS = itertools.count()

_DAY = timedelta(days=1)


def duration_delta(d: n.Duration) -> timedelta:
    """An exact duration: 14 days is 14 × 24 hours from the instant."""
    hours = {"day": 24, "hour": 1, "week": 24 * 7}[d.unit]
    return timedelta(hours=float(d.amount * hours))


@dataclass(slots=True)
class Frame:
    """One account at one moment (and, in an event rule or a filter, one event)."""

    account: Account
    at: datetime
    interval: timedelta = _DAY
    event: Event | None = None
    # Explain's record: (node, value, details); details is a dict for the nodes that look
    # at other moments (crossings, `for`) or at milestones, else empty.
    trace: list[tuple[n.Expr, Any, dict[str, Any]]] | None = None
    # Values kept by `Compiler.memo`, keyed by what was computed and the moment: shared
    # by frames of the same account, interval and event (None included), and only by them.
    cache: dict[Any, Any] = field(default_factory=dict)
    # The cache of this account's frames without an event, when known (for `with_event`).
    plain: dict[Any, Any] | None = None

    def shifted(self, at: datetime) -> Frame:
        """The same account at another moment; the cache is shared, keys hold the time."""
        return Frame(self.account, at, self.interval, self.event, None, self.cache, self.plain)

    def with_event(self, event: Event | None) -> Frame:
        plain = self.cache if self.event is None else self.plain
        if event is None:
            return Frame(self.account, self.at, self.interval, None, None,
                         plain if plain is not None else {}, plain)
        return Frame(self.account, self.at, self.interval, event, None, {}, plain)


_UNSET = object()
_NOTHING = timedelta(0)


class _Window:
    """The values of a `for`'s inner condition over its span at one evaluation `end`.

    `values[k]` is the value at `end - k * interval` (k = 0 .. K, K >= 1). Only the result
    matters for the next or previous evaluation, whose span shares all moments but one:
    `for` there is false if any value in its span is false, else unknown if any is
    unknown, else true (and3 over the span, as `sustained` computes it).
    """

    __slots__ = ("back", "end", "false", "interval", "reach", "unknown", "values")

    def __init__(self, end: datetime, interval: timedelta, values: list[Any]) -> None:
        self.end = end
        self.interval = interval
        self.values = values
        self.false = sum(1 for v in values if v is False)
        self.unknown = sum(1 for v in values if v is None)
        # The steps back to the previous evaluation and to the span's first moment, made
        # once: `shift` keeps its sums by delta, and the same delta object hashes once.
        self.back = -interval
        self.reach = -interval * (len(values) - 1)

    def slide(
        self, f: Frame, seen_at: Callable[[Frame, datetime], Any], condition: Fn
    ) -> Any:
        """`for` at `f.at` when that is one evaluation before or after `end`, else _UNSET."""
        at, interval, values = f.at, self.interval, self.values
        before = shift(self.end, self.back)
        if _same_moment(at, before):
            dropped = values.pop(0)
            added = seen_at(f, shift(at, self.reach))
            values.append(added)
        else:
            after = shift(self.end, interval)
            if not _same_moment(at, after):
                return _UNSET
            added = condition(f)
            dropped = values.pop()
            values.insert(0, added)
        self.end = at
        self.false += (added is False) - (dropped is False)
        self.unknown += (added is None) - (dropped is None)
        if self.false:
            return False
        return None if self.unknown else True


def _same_moment(a: datetime, b: datetime) -> bool:
    """The same datetime, as the frame caches tell them apart (zone and fold included)."""
    return a == b and a.tzinfo is b.tzinfo and a.fold == b.fold


def _memo(key: int, fn: Fn) -> Fn:
    """`fn`, computed once per frame cache and moment (and again when explaining)."""

    def memo(f: Frame) -> Any:
        at = f.at
        # The zone and fold too: instants that compare equal may differ in wall-clock
        # arithmetic (`at - 1 day`), which depends on the zone.
        slot = (key, at, at.tzinfo, at.fold)
        if f.trace is None:
            value = f.cache.get(slot, _UNSET)
            if value is not _UNSET:
                return value
        value = f.cache[slot] = fn(f)
        return value

    return memo


class Compiler:
    """Compiles expressions against a program; `event` is the event type in scope."""

    def __init__(self, program: Program, traced: bool = False) -> None:
        self.program = program
        self.traced = traced
        self._segments: dict[str, Fn] = {}
        self._metrics: dict[str, Fn] = {}
        self._memo_keys: dict[Any, int] = {}

    def memo(self, what: Any, fn: Fn) -> Fn:
        """`fn`, its value kept in the frame's cache per moment (`Frame.cache`).

        `what` says what `fn` computes, as a hashable value (nodes compare by structure):
        two functions with the same `what` must give the same value for every frame,
        and then share their cached values. Explaining (a frame with a trace) always
        computes, so that the trace is complete.
        """
        return _memo(self.memo_key(what), fn)

    def memo_key(self, what: Any) -> int:
        """The cache key of `what` (see `memo`)."""
        key = self._memo_keys.get(what)
        if key is None:
            key = self._memo_keys[what] = next(_MEMO_KEYS)
        return key

    # -- entry points

    def condition(self, expr: n.Expr, event: str | None = None) -> Fn:
        fn = self.expr(expr, event)
        if isinstance(expr, (n.Name, n.Paren)) and _is_value_name(expr):
            return lambda f: logic.truth(fn(f))
        return fn

    def expr(self, expr: n.Expr, event: str | None = None) -> Fn:
        fn = self._compile(expr, event)
        if not self.traced:
            return fn
        inner = fn

        def traced(f: Frame) -> Any:
            value = inner(f)
            if f.trace is not None:
                f.trace.append((expr, value, {}))
            return value

        return traced

    # -- dispatch

    def _compile(self, e: n.Expr, ev: str | None) -> Fn:
        method = getattr(self, "_c_" + type(e).__name__)
        fn: Fn = method(e, ev)
        return fn

    def _c_Number(self, e: n.Number, ev: str | None) -> Fn:
        value = e.value
        return lambda f: value

    def _c_String(self, e: n.String, ev: str | None) -> Fn:
        value = e.value
        return lambda f: value

    def _c_ListValue(self, e: n.ListValue, ev: str | None) -> Fn:
        items = tuple(_literal(i) for i in e.items)
        return lambda f: items

    def _c_Paren(self, e: n.Paren, ev: str | None) -> Fn:
        return self.expr(e.inner, ev)

    def _c_Name(self, e: n.Name, ev: str | None) -> Fn:
        return self.name(e.parts, ev)

    def name(self, parts: tuple[str, ...], ev: str | None) -> Fn:
        head, rest = parts[0], parts[1:]
        if head == "account" and rest:
            return _attrs(_field(rest[0]), rest[1:])
        if head == "event" and rest:
            return _attrs(_event_field(rest[0]), rest[1:])
        if ev is not None and self.program.event_field_kind(ev, head) is not None:
            return _attrs(_event_field(head), rest)
        if self.program.field_kind(head) is None:
            if head in self.program.segments:
                return self._segment(head)
            if head in self.program.metrics:
                return self._metric(head)
        return _attrs(_field(head), rest)

    def _segment(self, name: str) -> Fn:
        if name not in self._segments:
            # Compiled lazily and by reference, so segments may use metrics in any order.
            self._segments[name] = lambda f: None
            self._segments[name] = self.condition(self.program.segments[name].condition)
        table = self._segments
        value = self.memo(("segment", name), lambda f: table[name](f))
        return lambda f: value(f.with_event(None) if f.event is not None else f)

    def _metric(self, name: str) -> Fn:
        if name not in self._metrics:
            self._metrics[name] = lambda f: None
            self._metrics[name] = self.expr(self.program.metrics[name].value)
        table = self._metrics
        value = self.memo(("metric", name), lambda f: table[name](f))
        return lambda f: value(f.with_event(None) if f.event is not None else f)

    def _c_Arith(self, e: n.Arith, ev: str | None) -> Fn:
        left, right, op = self.expr(e.left, ev), self.expr(e.right, ev), e.op
        return lambda f: logic.arith(op, left(f), right(f))

    def _c_Negate(self, e: n.Negate, ev: str | None) -> Fn:
        operand = self.expr(e.operand, ev)
        return lambda f: logic.arith("-", Decimal(0), operand(f))

    def _c_Compare(self, e: n.Compare, ev: str | None) -> Fn:
        left, right, op = self.expr(e.left, ev), self.expr(e.right, ev), e.op
        return lambda f: logic.compare(op, left(f), right(f))

    def _rhs(self, rhs: n.Expr, ev: str | None) -> Fn:
        """The right of `is`/`changes to`: a bare enum value is a literal, not a field."""
        if isinstance(rhs, n.Name) and len(rhs.parts) == 1 and not self._known(rhs.parts[0], ev):
            value = rhs.parts[0]
            return lambda f: value
        return self.expr(rhs, ev)

    def _known(self, name: str, ev: str | None) -> bool:
        p = self.program
        return (
            p.field_kind(name) is not None
            or name in p.segments
            or name in p.metrics
            or (ev is not None and p.event_field_kind(ev, name) is not None)
        )

    def _c_Is(self, e: n.Is, ev: str | None) -> Fn:
        left, right = self.expr(e.left, ev), self._rhs(e.right, ev)
        if e.negated:
            return lambda f: logic.not3(_same(left(f), right(f)))
        return lambda f: _same(left(f), right(f))

    def _c_In(self, e: n.In, ev: str | None) -> Fn:
        left = self.expr(e.left, ev)
        items = tuple(_literal(i) for i in e.items.items)
        negated = e.negated
        # A text is equal to a text item or not, and unknown against a number: the loop
        # below in one look-up.
        texts = frozenset(i for i in items if type(i) is str)
        if_not_text: logic.Truth = None if any(type(i) is not str for i in items) else False

        def member(f: Frame) -> Any:
            value = left(f)
            if value is None:
                return None
            found: logic.Truth
            if type(value) is str:
                found = True if value in texts else if_not_text
                return logic.not3(found) if negated else found
            found = False
            for item in items:
                found = logic.or3(found, _same(value, item))
            return logic.not3(found) if negated else found

        return member

    def _c_Missing(self, e: n.Missing, ev: str | None) -> Fn:
        operand, present = self.expr(e.operand, ev), e.negated
        return lambda f: (operand(f) is not None) == present

    def _c_TextTest(self, e: n.TextTest, ev: str | None) -> Fn:
        left, right = self.expr(e.left, ev), self.expr(e.right, ev)
        tests: dict[str, Callable[[str, str], bool]] = {
            "contains": lambda a, b: b in a,
            "starts with": lambda a, b: a.startswith(b),
            "ends with": lambda a, b: a.endswith(b),
        }
        test = tests[e.op]

        def text(f: Frame) -> Any:
            a, b = left(f), right(f)
            if not isinstance(a, str) or not isinstance(b, str):
                return None
            return test(a, b)

        return text

    def _c_HasTag(self, e: n.HasTag, ev: str | None) -> Fn:
        tag = e.tag.value
        return lambda f: tag in f.account.tags

    def _c_And(self, e: n.And, ev: str | None) -> Fn:
        left, right = self.condition(e.left, ev), self.condition(e.right, ev)

        def both(f: Frame) -> Any:
            a = left(f)
            if a is False and f.trace is None:
                return False  # short-circuit, except when explaining every part
            return logic.and3(a, right(f))

        return both

    def _c_Or(self, e: n.Or, ev: str | None) -> Fn:
        left, right = self.condition(e.left, ev), self.condition(e.right, ev)

        def either(f: Frame) -> Any:
            a = left(f)
            if a is True and f.trace is None:
                return True
            return logic.or3(a, right(f))

        return either

    def _c_Not(self, e: n.Not, ev: str | None) -> Fn:
        operand = self.condition(e.operand, ev)
        return lambda f: logic.not3(operand(f))

    def _c_Relative(self, e: n.Relative, ev: str | None) -> Fn:
        operand, delta = self.expr(e.operand, ev), duration_delta(e.duration)
        after = e.direction == "after"

        def relative(f: Frame) -> Any:
            moment = operand(f)
            if not isinstance(moment, datetime):
                return None
            if after:
                return f.at >= shift(moment, delta)
            return shift(moment, -delta) <= f.at < moment

        return relative

    def _c_MilestoneState(self, e: n.MilestoneState, ev: str | None) -> Fn:
        decl = self.program.milestone(e.milestone.text)
        starts = _field(decl.starts_at.text if decl else e.milestone.text + "_started_at")
        done = _field(decl.done_at.text if decl else e.milestone.text + "_done_at")
        after = duration_delta(e.after) if e.after else None
        complete = e.complete

        def milestone(f: Frame) -> Any:
            finished = done(f)
            is_done = isinstance(finished, datetime) and finished <= f.at
            if f.trace is not None:
                f.trace.append((e, None, {"started": starts(f), "done": finished}))
            if complete:
                return is_done
            if is_done:
                return False
            if after is None:
                return True
            start = starts(f)
            if not isinstance(start, datetime):
                return None
            return f.at >= shift(start, after)

        return milestone

    def _c_Crossing(self, e: n.Crossing, ev: str | None) -> Fn:
        operand, threshold = self.expr(e.operand, ev), self.expr(e.threshold, ev)
        below = e.direction == "below"

        def crossing(f: Frame) -> Any:
            now_cmp = logic.compare("<" if below else ">", operand(f), threshold(f))
            before = f.shifted(shift(f.at, -f.interval))
            previous = operand(before)
            then_cmp = logic.compare(">=" if below else "<=", previous, threshold(before))
            if f.trace is not None:
                f.trace.append((e, None, {"previous": previous, "previous_at": before.at}))
            return logic.and3(now_cmp, then_cmp)

        return crossing

    def _c_Changes(self, e: n.Changes, ev: str | None) -> Fn:
        operand = self.expr(e.operand, ev)
        old = self._rhs(e.from_value, ev) if e.from_value is not None else None
        new = self._rhs(e.to_value, ev) if e.to_value is not None else None

        def changes(f: Frame) -> Any:
            now_value = operand(f)
            before = f.shifted(shift(f.at, -f.interval))
            then_value = operand(before)
            if f.trace is not None:
                f.trace.append((e, None, {"previous": then_value, "previous_at": before.at}))
            if now_value is None or then_value is None:
                return None
            result = logic.not3(_same(now_value, then_value))
            if new is not None:
                result = logic.and3(result, _same(now_value, new(f)))
            if old is not None:
                result = logic.and3(result, _same(then_value, old(before)))
            return result

        return changes

    def _c_For(self, e: n.For, ev: str | None) -> Fn:
        inner = self.condition(e.condition, ev)
        # The inner condition's value is kept per moment: `for` at consecutive evaluations
        # (re-arming looks back at each) asks for the same earlier moments again.
        key = self.memo_key(("for", e.condition, ev))
        condition = _memo(key, inner)
        span = duration_delta(e.duration)
        window_key = ("for-window", key)

        def seen_at(f: Frame, moment: datetime) -> Any:
            """`condition(f.shifted(moment))`, the cache read here (as `_memo` would: a
            shifted frame has no trace)."""
            slot = (key, moment, moment.tzinfo, moment.fold)
            seen = f.cache.get(slot, _UNSET)
            if seen is _UNSET:
                seen = f.cache[slot] = inner(f.shifted(moment))
            return seen

        def sustained(f: Frame) -> Any:
            if f.trace is None and f.interval > _NOTHING and f.interval <= span:
                window = f.cache.get(window_key)
                if window is not None and window.interval == f.interval:
                    slid = window.slide(f, seen_at, condition)
                    if slid is not _UNSET:
                        return slid
            result: Any = condition(f)
            k = 1
            broke: datetime | None = None if result is True else f.at
            at, interval = f.at, f.interval
            values = [result]
            back = interval  # interval * k
            while result is not False and back <= span:
                moment = shift(at, -back)
                seen = seen_at(f, moment)
                values.append(seen)
                if seen is not True and broke is None:
                    broke = moment
                if seen is not True or (result is not True and result is not None):
                    result = logic.and3(result, seen)
                k += 1
                back += interval
            if f.trace is not None:
                f.trace.append((e, None, {"evaluations": k, "broke_at": broke}))
            elif back > span and len(values) > 1:
                # Every moment of the span looked at: the next evaluation's (or the
                # previous one's) span differs by one moment (`_Window.slide`).
                f.cache[window_key] = _Window(at, interval, values)
            return result

        return sustained

    # -- aggregates over events

    def _events(self, event: str, where: n.Expr | None, window: n.Duration | None) -> Callable[
        [Frame], list[Event]
    ]:
        keep = self.condition(where, event) if where is not None else None
        reach = duration_delta(window) if window is not None else None

        def select(f: Frame) -> list[Event]:
            start = shift(f.at, -reach) if reach is not None else None
            found = events_of(f.account, event, f.plain if f.plain is not None else f.cache)
            if found is not None:
                candidates: Iterable[Event] = found.between(start, f.at)
            else:
                candidates = f.account.events
            chosen = []
            for item in candidates:
                if item.type != event or item.at > f.at:
                    continue
                if start is not None and item.at <= start:
                    continue
                if keep is not None and keep(f.with_event(item)) is not True:
                    continue
                chosen.append(item)
            return chosen

        # The same events are selected for each rule, count and aggregate that names
        # them at that moment (the list is read, never changed).
        return self.memo(("events", event, where, window), select)

    def _c_Count(self, e: n.Count, ev: str | None) -> Fn:
        select = self._events(e.event.text, e.where, e.window)
        return lambda f: Decimal(len(select(f)))

    def _c_Aggregate(self, e: n.Aggregate, ev: str | None) -> Fn:
        select = self._events(e.event.text, e.where, e.window)
        name, func = e.field.text, e.func

        def aggregate(f: Frame) -> Any:
            values = [x.fields.get(name) for x in select(f)]
            present = [v for v in values if v is not None]
            if func == "distinct":
                return Decimal(len({_hashable(v) for v in present}))
            numbers = [x for x in (logic.to_number(v) for v in present) if x is not None]
            if func == "sum":
                return sum(numbers, Decimal(0))
            if not numbers:
                return None
            if func == "average":
                return sum(numbers, Decimal(0)) / len(numbers)
            return min(numbers) if func == "min" else max(numbers)

        return aggregate

    def _c_Last(self, e: n.Last, ev: str | None) -> Fn:
        select = self._events(e.event.text, None, None)
        name = e.field.text

        def last(f: Frame) -> Any:
            chosen = select(f)
            if not chosen:
                return None
            # Several events at the last moment: the same one whatever their file order.
            first = len(chosen) - 1
            while first > 0 and chosen[first - 1].at == chosen[-1].at:
                first -= 1
            return max(chosen[first:], key=event_order).fields.get(name)

        return last

    def _c_DaysSinceLast(self, e: n.DaysSinceLast, ev: str | None) -> Fn:
        event = e.event.text
        select = self._events(event, None, None)

        def days_since_last(f: Frame) -> Any:
            found = events_of(f.account, event, f.plain if f.plain is not None else f.cache)
            if found is not None:
                last = found.last(f.at)  # the last of `select(f)`, without the list
                if last is None:
                    return None
                return Decimal(whole_days_between(last.at, f.at))
            chosen = select(f)
            if not chosen:
                return None
            return Decimal(whole_days_between(chosen[-1].at, f.at))

        return days_since_last

    def _c_DaysBetween(self, e: n.DaysBetween, ev: str | None) -> Fn:
        operand, since = self.expr(e.operand, ev), e.direction == "since"

        def days(f: Frame) -> Any:
            moment = operand(f)
            if not isinstance(moment, datetime):
                return None
            if since:
                return Decimal(whole_days_between(moment, f.at))
            return Decimal(whole_days_between(f.at, moment))

        return days


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class _Timeline:
    """One account's events of one type, in time order, with their moments to bisect."""

    times: list[datetime]
    events: list[Event]

    def between(self, start: datetime | None, end: datetime) -> list[Event]:
        """The events with `start < at <= end` (no `start`: every one up to `end`)."""
        lo = 0 if start is None else bisect.bisect_right(self.times, start)
        return self.events[lo:bisect.bisect_right(self.times, end)]

    def last(self, end: datetime) -> Event | None:
        """The last of `between(None, end)`, if any."""
        hi = bisect.bisect_right(self.times, end)
        return self.events[hi - 1] if hi else None


_TIMELINES = object()


def events_of(account: Account, event: str, store: dict[Any, Any]) -> _Timeline | None:
    """The account's events of type `event`, indexed for `between`, or None.

    None when those events are not in time order or a moment is in a zone other than a
    fixed offset: moments in a named zone compare by its wall clock when both have that
    zone, so bisecting could disagree with comparing them one by one. `store` is a frame
    cache of the account, where the index of each type is kept once built.
    """
    kept = store.get(_TIMELINES)
    if kept is None or kept[0] is not account.events:
        kept = store[_TIMELINES] = (account.events, {})
    timelines: dict[str, _Timeline | None] = kept[1]
    try:
        return timelines[event]
    except KeyError:
        found = timelines[event] = _timeline(account.events, event)
        return found


def _timeline(events: Sequence[Event], event: str) -> _Timeline | None:
    chosen = [item for item in events if item.type == event]
    times = [item.at for item in chosen]
    if any(type(at.tzinfo) is not timezone for at in times):
        return None
    if any(later < earlier for earlier, later in itertools.pairwise(times)):
        return None
    return _Timeline(times, chosen)


def _field(name: str) -> Fn:
    return lambda f: f.account.value(name, f.at)


def event_order(event: Event) -> tuple[Any, ...]:
    """A sort key: time order, and events of one moment in a fixed order of their type and
    fields, so that no result depends on the order the events were written in."""
    fields = sorted((k, type(v).__name__, str(v)) for k, v in event.fields.items())
    return (event.at, event.type, fields)


def _event_field(name: str) -> Fn:
    def get(f: Frame) -> Any:
        if f.event is None:
            return None
        if name == "type":
            return f.event.type
        if name == "at":
            return f.event.at
        return f.event.fields.get(name)

    return get


def _attrs(base: Fn, rest: tuple[str, ...]) -> Fn:
    if not rest:
        return base

    def attr(f: Frame) -> Any:
        value = base(f)
        for part in rest:
            if isinstance(value, User):
                value = getattr(value, part, None) if part in ("name", "email") else None
            else:
                return None
        return value

    return attr


def _literal(item: n.Name | n.String | n.Number) -> Any:
    if isinstance(item, n.Name):
        return item.text
    return item.value


def _same(a: Any, b: Any) -> logic.Truth:
    if type(a) is str and type(b) is str:
        return a == b  # what `logic.equal` says of two texts
    if a is None or b is None:
        return None
    if isinstance(a, User):
        a = a.email
    if isinstance(b, User):
        b = b.email
    return logic.equal(a, b)


def _hashable(value: Any) -> Any:
    return value.email if isinstance(value, User) else value


def _is_value_name(expr: n.Expr) -> bool:
    inner = expr
    while isinstance(inner, n.Paren):
        inner = inner.inner
    return isinstance(inner, n.Name)
