"""The bulk path: many accounts at one moment, the same answers as the per-account path.

    frames = load_frames("big.json", engine)          # columnar, no object per account
    evaluation = evaluate_bulk(engine, frames, at)    # an `Evaluation`, as dry_run gives

Three passes:

1. **plan** (`bulk_plan.Planner`): every state rule's condition and its playbook's
   `applies to` become polars expressions over one table of all accounts; the table's
   columns are the fields (history-aware at earlier moments), and event aggregates per
   account and moment. A rule whose condition uses a construct the plan cannot reproduce
   exactly is *per-account only* (`BulkStats.fallback` says which and why).
2. **scan**: history columns by an as-of lookup per field, every aggregate of every
   moment in one grouped pass per event type, the planner's intermediate columns, then
   one `select` of every rule's mask. An account is a *candidate* for a rule when the
   rule's condition and scope may be true (`bulk_plan.maybe_true`) and nothing surely
   holds it back: its `unless` surely true, or, going by the fixture's `fired` records,
   `once per account`, `at most once every`, or the default semantics (it fired before
   and its condition was surely not false at any evaluation since: planned again at those
   earlier moments, `_not_rearmed`). An event rule's candidates are the accounts with an
   event of its type since the previous evaluation.
3. **per-account**: `facts.Account` objects are built for candidates only, and
   `Evaluator.evaluate_rules` decides their candidate rules with the full semantics
   (re-arming, modifiers, actions, rendering); a condition the scan found surely true is
   handed over (`known`) rather than evaluated again. Non-candidates cannot fire: their
   outcomes ("condition false or unknown", "held back") are left out of the evaluation;
   its actions, the dry-run's output, are exactly the per-account path's, in order.

Only candidates cost Python time, so throughput depends on how many accounts may fire:
on a day after a daily run (a few percent of accounts), the scan dominates; on data where
most accounts fire, rendering their actions does.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field

from . import nodes as n
from .bulk_frames import (
    IDX,
    AccountSource,
    Frames,
    Reads,
    frames_from_accounts,
    micros,
    select_rows,
    zone_is_fixed,
)
from .bulk_load import load_frames
from .bulk_plan import ACCOUNT_PREFIX, AggSpec, Ctx, Planner, Unsupported, maybe_true
from .bulk_stats import BulkStats
from .compile import duration_delta
from .decisions import Evaluation, RuleOutcome
from .evaluate import CompiledRule, Evaluator
from .facts import Account
from .fixtures import Fixture
from .memory import collector_paused
from .timeutil import format_moment
from .workers import Split, available_workers

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "BulkEvaluation",
    "BulkStats",
    "Frames",
    "condition_table",
    "evaluate_bulk",
    "frames_from_fixture",
    "load_frames",
]

DAY = timedelta(days=1)
# Accounts built and decided per task of the per-account pass (and step of its progress
# bar); with several workers, how much larger each round of tasks is than the one before.
_CHUNK = 2_000
_GROWTH = 4
# Chunks in a round at most: what is prepared at once stays bounded (a million accounts).
_LARGEST_ROUND = 500


class BulkEvaluation(Evaluation):
    """An `Evaluation` from the bulk path: outcomes of candidates only, and every account.

    `account_ids` lists the accounts evaluated, in fixture order, so that a report can
    name those for which nothing fires (they have no outcome here).
    """

    account_ids: list[str] = Field(default_factory=list)


def frames_from_fixture(fixture: Fixture, engine: Engine) -> Frames:
    """Tables for a fixture already loaded as objects (YAML, small files, tests)."""
    as_of = fixture.as_of
    if as_of is None:  # no accounts and no `now`: nothing to evaluate
        as_of = datetime.now(fixture.timezone)
    return frames_from_accounts(
        fixture.accounts, engine.program, as_of=as_of, timezone=fixture.timezone,
        now=fixture.now, path=fixture.path,
    )


# --------------------------------------------------------------------------- evaluation


@dataclass
class _RulePlan:
    index: int
    mask: pl.Expr | None = None  # state rules the plan covers
    sure: pl.Expr | None = None  # rows where the condition is true (exactly)
    event: str | None = None  # event rules
    fallback: str | None = None  # per-account only, and why


def evaluate_bulk(
    engine: Engine | Evaluator,
    frames: Frames,
    at: datetime | None = None,
    interval: timedelta = DAY,
    *,
    accounts: Iterable[str] | None = None,
    rule: str | None = None,
    progress: bool | None = None,
    stats: BulkStats | None = None,
    workers: int | None = None,
) -> BulkEvaluation:
    """Every (or the chosen) account of `frames` at `at` (default: the fixture's now).

    `engine` is an `Engine` (its evaluator for the frames' time zone is used) or an
    `Evaluator`. `progress` shows a bar on stderr (default: when stderr is a terminal);
    `stats`, when given, is filled in. The accounts that may fire are decided on
    `workers` processes (default: `workers.available_workers()`; 1: this one only).
    """
    stats = stats if stats is not None else BulkStats()
    evaluator = engine if isinstance(engine, Evaluator) else engine.evaluator(
        frames.timezone, interval)
    moment = at or frames.as_of
    chosen = [i for i, cr in enumerate(evaluator.rules)
              if rule is None or cr.rule.name.value == rule]
    wanted = _wanted_rows(frames, accounts)
    stats.accounts = frames.accounts.height if wanted is None else len(wanted)
    stats.rules = len(chosen)
    stats.rule_checks = stats.accounts * stats.rules
    with stats.phase("plan"):
        plans, planner = _plan(evaluator, frames, moment, chosen)
    for p in plans:
        if p.fallback is not None:
            stats.fallback[_rule_name(evaluator.rules[p.index])] = p.fallback
    known: dict[int, dict[int, bool]] = {}
    rearmed: dict[int, set[int]] = {}
    with stats.phase("scan"):
        by_account = _candidates(frames, planner, plans, moment, evaluator, wanted, known,
                                 rearmed)
    stats.candidates = sum(len(v) for v in by_account.values())
    stats.per_account = len(by_account)
    with stats.phase("per-account"):
        rows = sorted(by_account)
        show = sys.stderr.isatty() if progress is None else progress
        count = available_workers() if workers is None else max(1, workers)
        with _progress(show, len(rows)) as advance, collector_paused():
            outcomes = _decide(evaluator, frames.source, moment, rows, by_account, known,
                               rearmed, count, advance)
    fired = [o for o in outcomes if o.fired]
    stats.fired = len(fired)
    stats.actions = sum(len(o.actions) for o in fired)
    ids = frames.account_ids
    if wanted is not None:
        ids = [ids[i] for i in wanted]
    return BulkEvaluation.model_construct(
        at=format_moment(moment.astimezone(evaluator.settings.tz)),
        outcomes=outcomes,
        account_ids=ids,
    )


def condition_table(
    engine: Engine | Evaluator,
    frames: Frames,
    at: datetime,
    conditions: Sequence[n.Expr],
    interval: timedelta = DAY,
) -> pl.DataFrame:
    """Each condition's value for every account at `at`: columns `__idx`, `c0`, `c1`, ...

    True, false or null (unknown), as `compile.py` evaluates the condition; a value the
    plan cannot decide exactly (`bulk_plan`: numbers too close to call) is null too, and
    a condition the plan does not handle raises `Unsupported`.
    """
    evaluator = engine if isinstance(engine, Evaluator) else engine.evaluator(
        frames.timezone, interval)
    planner = Planner(evaluator.program, frames, at, interval, zone_is_fixed(frames.timezone, at))
    # A true or false from the plan is exact; what it cannot decide is null already.
    columns = [planner.temp(planner.condition(c, Ctx(at)).v).alias(f"c{i}")
               for i, c in enumerate(conditions)]
    table = _with_aggregates(frames, planner, _with_history(frames, planner, frames.accounts))
    return planner.select(table, [pl.col(IDX), *columns])


def _decide(
    evaluator: Evaluator,
    source: AccountSource,
    at: datetime,
    rows: list[int],
    by_account: dict[int, list[int]],
    known: dict[int, dict[int, bool]],
    rearmed: dict[int, set[int]],
    workers: int,
    advance: Callable[[int], None],
) -> list[RuleOutcome]:
    """The outcomes of every candidate account's candidate rules, in account order.

    A chunk of accounts is one task: its tables are read here (`prepare`), then its
    accounts are built and decided, on this process or a forked worker (`workers`).
    With several workers, tasks go in rounds (`_rounds`), each prepared while the one
    before runs.
    """
    chunks = [rows[start:start + _CHUNK] for start in range(0, len(rows), _CHUNK)]
    workers = workers if len(chunks) > 1 else 1
    if workers == 1:
        batches = [[part] for part in chunks]
    else:
        batches = _rounds(chunks, workers)

    reads = _Reads(evaluator)

    def prepare(batch: list[list[int]]) -> list[Callable[[], list[RuleOutcome]]]:
        return [_task(evaluator, source.prepare(part, [reads(by_account[row]) for row in part]),
                      part, at, by_account, known, rearmed) for part in batch]

    outcomes: list[RuleOutcome] = []
    tasks = prepare(batches[0]) if batches else []
    for i, batch in enumerate(batches):
        with Split(tasks, workers, _advancing(advance, batch)) as split:
            # Tables are read here only: the next round is prepared while the workers
            # start on this one, then this process joins them.
            tasks = prepare(batches[i + 1] if i + 1 < len(batches) else [])
            for result in split.finish():
                outcomes.extend(result)
    return outcomes


class _Reads:
    """What deciding some rules reads of an account beyond its fields (`Reads`): their
    own earlier firings (the firing semantics of a rule look at its own only) and the
    events of the types their conditions, segments and metrics name (events are only
    ever looked up by type; templates read the account's fields and the triggering
    event only)."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.program = evaluator.program
        self.rules = evaluator.rules
        self.kept: dict[tuple[int, ...], Reads] = {}

    def __call__(self, indices: list[int]) -> Reads:
        key = tuple(indices)
        found = self.kept.get(key)
        if found is None:
            chosen = [self.rules[i] for i in indices]
            found = self.kept[key] = Reads(
                frozenset(cr.key for cr in chosen),
                frozenset().union(*(self._events(cr) for cr in chosen)))
        return found

    def _events(self, cr: CompiledRule) -> set[str]:
        found = {cr.event} if cr.event is not None else set()
        seen: set[str] = set()
        stack: list[object] = [cr.rule, cr.playbook.applies_to]
        while stack:
            node = stack.pop()
            if isinstance(node, tuple):
                stack.extend(node)
                continue
            if not dataclasses.is_dataclass(node):
                continue
            if isinstance(node, (n.Count, n.Aggregate, n.Last, n.DaysSinceLast)):
                found.add(node.event.text)
            elif isinstance(node, n.Name):
                head = node.parts[1] if node.parts[0] == "account" and len(node.parts) > 1 \
                    else node.parts[0]
                if head not in seen:  # a segment or metric: what its definition reads
                    seen.add(head)
                    if head in self.program.segments:
                        stack.append(self.program.segments[head].condition)
                    if head in self.program.metrics:
                        stack.append(self.program.metrics[head].value)
            stack.extend(getattr(node, f.name) for f in dataclasses.fields(node))
        return found


def _rounds(chunks: list[list[int]], workers: int) -> list[list[list[int]]]:
    """Chunks in rounds that grow `_GROWTH` times: a small first one, so that the workers
    start soon; then larger ones, each prepared while the one before runs. Every round
    forks its workers anew, and a fork costs both sides copies of the memory pages they
    then write to, so fewer rounds are cheaper."""
    rounds: list[list[list[int]]] = []
    size, start = min(workers, _LARGEST_ROUND), 0
    while start < len(chunks):
        rounds.append(chunks[start:start + size])
        start += size
        size = min(size * _GROWTH, _LARGEST_ROUND)
    return rounds


def _advancing(advance: Callable[[int], None], batch: list[list[int]]) -> Callable[[int], None]:
    """Advances the progress bar by task k's accounts."""
    return lambda k: advance(len(batch[k]))


def _task(
    evaluator: Evaluator,
    build: Callable[[], list[Account]],
    part: list[int],
    at: datetime,
    by_account: dict[int, list[int]],
    known: dict[int, dict[int, bool]],
    rearmed: dict[int, set[int]],
) -> Callable[[], list[RuleOutcome]]:
    def decide() -> list[RuleOutcome]:
        outcomes: list[RuleOutcome] = []
        for row, account in zip(part, build(), strict=True):
            outcomes.extend(evaluator.evaluate_rules(account, at, by_account[row],
                                                     known.get(row), rearmed.get(row, ())))
        return outcomes

    return decide


def _rule_name(cr: CompiledRule) -> str:
    return f"{cr.key[0]} / {cr.key[1]}"


def _wanted_rows(frames: Frames, accounts: Iterable[str] | None) -> list[int] | None:
    if accounts is None:
        return None
    ids = set(accounts)
    if not ids:
        return None
    found = frames.accounts.filter(pl.col("id").is_in(list(ids))).get_column(IDX)
    return sorted(found.to_list())


def _plan(
    evaluator: Evaluator, frames: Frames, at: datetime, chosen: Sequence[int]
) -> tuple[list[_RulePlan], Planner]:
    planner = Planner(evaluator.program, frames, at, evaluator.settings.interval,
                      zone_is_fixed(frames.timezone, at))
    plans: list[_RulePlan] = []
    for i in chosen:
        cr = evaluator.rules[i]
        if cr.event is not None:
            plans.append(_RulePlan(i, event=cr.event))
            continue
        # A rule given up halfway may leave aggregates and columns planned: they are
        # computed for nothing, but every one is complete, and others may share them.
        try:
            mask, sure = _rule_mask(planner, cr, at)
            plans.append(_RulePlan(i, mask=mask, sure=sure))
        except Unsupported as exc:
            plans.append(_RulePlan(i, fallback=str(exc)))
    return plans, planner


def _rule_mask(planner: Planner, cr: CompiledRule, at: datetime) -> tuple[pl.Expr, pl.Expr]:
    """Accounts for which the rule may fire: condition and scope may be true, and no
    fired record certainly holds it back; and those whose condition is surely true."""
    assert cr.rule.when is not None
    ctx = Ctx(at)
    when = planner.condition(cr.rule.when, ctx)
    sure = planner.temp(when.v).fill_null(False)  # a true is exact (bulk_plan)
    mask = planner.maybe(when)
    if cr.playbook.applies_to is not None:
        mask = mask & planner.maybe(planner.condition(cr.playbook.applies_to, ctx))
    if cr.rule.unless is not None:
        try:
            # `unless` true (surely: a true here is exact) holds the rule back.
            unless = planner.condition(cr.rule.unless, ctx).v
            mask = mask & ~planner.temp(unless.fill_null(False))
        except Unsupported:
            pass
    return mask, sure


def _held_back(cr: CompiledRule, at: datetime) -> pl.Expr:
    """Over a rule's candidates with their last earlier firing (`last`, at or before
    `at`): `once per account` after any firing, `at most once every D` within D of it."""
    rule = cr.rule
    held = pl.lit(False)
    if rule.once_per_account:
        held = held | pl.col("last").is_not_null()
    if rule.at_most_every is not None:
        # The evaluator compares `at - last < D` on datetimes; `at` and D are exact here.
        reach = duration_delta(rule.at_most_every) // timedelta(microseconds=1)
        held = held | (pl.lit(micros(at)) - pl.col("last") < reach).fill_null(False)
    return held


def _candidates(
    frames: Frames,
    planner: Planner,
    plans: list[_RulePlan],
    at: datetime,
    evaluator: Evaluator,
    wanted: list[int] | None,
    known: dict[int, dict[int, bool]],
    rearmed: dict[int, set[int]],
) -> dict[int, list[int]]:
    """For each account that may fire something, the rules it may fire (by index); in
    `known`, the rules whose condition is surely true for it; in `rearmed`, the state
    rules surely re-armed since their last firing (`_not_rearmed`)."""
    table = frames.accounts
    table = _with_history(frames, planner, table)
    table = _with_aggregates(frames, planner, table)
    masks = {p.index: p.mask for p in plans if p.mask is not None}
    sures = {p.index: p.sure for p in plans if p.sure is not None}
    by_account: dict[int, list[int]] = {}
    rows = wanted if wanted is not None else None
    if masks:
        # One query: polars computes what several rules share once.
        picked = planner.select(table, [pl.col(IDX), *[m.alias(f"r{i}") for i, m in masks.items()],
                                        *[m.alias(f"s{i}") for i, m in sures.items()]])
        del table
        if rows is not None:
            picked = picked.filter(pl.col(IDX).is_in(rows))
        founds = {i: picked.filter(pl.col(f"r{i}")).select(IDX, pl.col(f"s{i}").alias("sure"))
                  for i in masks}
        lasts = _last_fired(frames, {evaluator.rules[i].key: f.get_column(IDX)
                                     for i, f in founds.items()}, at)
        chosen: dict[int, pl.DataFrame] = {}
        for i, found in founds.items():
            last = lasts.get(evaluator.rules[i].key)
            if last is None:
                found = found.with_columns(pl.lit(None, dtype=pl.Int64).alias("last"))
            else:
                found = found.join(last, on=IDX, how="left", maintain_order="left")
            if planner.zone_fixed:  # elsewhere the evaluator compares wall-clock times
                found = found.filter(~_held_back(evaluator.rules[i], at))
            chosen[i] = found
        if planner.zone_fixed:
            held, armed = _not_rearmed(frames, evaluator, chosen, at)
            chosen = {i: c.filter(~pl.col(IDX).is_in(held[i])) if held.get(i) else c
                      for i, c in chosen.items()}
            for i, armed_rows in armed.items():
                for row in armed_rows:
                    rearmed.setdefault(row, set()).add(i)
        for i, found in chosen.items():
            for row, sure in found.select(IDX, "sure").iter_rows():
                by_account.setdefault(row, []).append(i)
                if sure:
                    known.setdefault(row, {})[i] = True
    since = micros(at - evaluator.settings.interval)
    now = micros(at)
    everyone = rows if rows is not None else range(frames.accounts.height)
    for p in plans:
        if p.fallback is not None:
            for row in everyone:
                by_account.setdefault(row, []).append(p.index)
        elif p.event is not None:
            events = frames.events.filter(
                (pl.col("type") == p.event) & (pl.col("at") > since) & (pl.col("at") <= now))
            hits = _event_hits(frames, planner, evaluator.rules[p.index], at, events)
            with_event = set(hits.to_list())
            if rows is not None:
                with_event &= set(rows)
            for row in sorted(with_event):
                by_account.setdefault(row, []).append(p.index)
    return by_account


def _event_hits(frames: Frames, planner: Planner, cr: CompiledRule, at: datetime,
                events: pl.DataFrame) -> pl.Series:
    """The accounts (`__idx`) with an event since the previous evaluation for which the
    event rule may fire.

    The rule is evaluated as of each event, so only the parts that are *timeless* (the
    same at every moment: event fields, account fields without history, segments of
    those) are planned here, at `at`: its `where`, its playbook's `applies to` and its
    `unless`. A part that is not timeless, or that the plan cannot reproduce, is left to
    the per-account path, which sees every event with its own moment.
    """
    ctx = Ctx(at, cr.event, on_events=True)
    masks: list[pl.Expr] = []
    rule = cr.rule
    try:
        if rule.where is not None and planner.timeless(rule.where):
            masks.append(maybe_true(planner.condition(rule.where, ctx)))
        applies = cr.playbook.applies_to
        if applies is not None and planner.timeless(applies):
            masks.append(maybe_true(planner.condition(applies, Ctx(at, None, on_events=True))))
        if rule.unless is not None and planner.timeless(rule.unless):
            unless = planner.condition(rule.unless, Ctx(at, cr.event, on_events=True))
            masks.append(~unless.v.fill_null(False))  # a true from the plan is exact
    except Unsupported:
        masks = []
    if masks:
        extra = _account_columns(frames.accounts, masks)
        if extra is not None:
            events = events.join(extra, on=IDX, how="left", maintain_order="left")
        events = events.filter(pl.all_horizontal(masks))
    return events.get_column(IDX).unique()


def _account_columns(accounts: pl.DataFrame, exprs: Sequence[pl.Expr]) -> pl.DataFrame | None:
    """The account columns that expressions over events read (named `a:<field>`), keyed
    by `__idx`, for joining onto the events; None when they read none."""
    wanted = {c for e in exprs for c in e.meta.root_names() if c.startswith(ACCOUNT_PREFIX)}
    if not wanted:
        return None
    return accounts.select(IDX, *[pl.col(c[len(ACCOUNT_PREFIX):]).alias(c) for c in sorted(wanted)])


# Earlier evaluations the re-arming check looks at, at most; an account whose last firing
# is older may be found re-armed at one of them, but is never held back here: the
# per-account path walks back as far as it needs.
_REARM_STEPS = 62


def _not_rearmed(
    frames: Frames, evaluator: Evaluator, chosen: dict[int, pl.DataFrame], at: datetime
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Candidates surely held back by the default firing semantics, and candidates surely
    re-armed since their last firing, by rule.

    A state rule that fired before (at `last`) fires again only when its condition was
    false at some evaluation strictly after `last` (`Evaluator._rearmed`), or, with
    `repeat every D`, once D has passed. Here the condition is planned at the earlier
    evaluations `at - k * interval` (k = 1, 2, ...) for the candidates with an earlier
    firing: where it is surely not false at every one after `last`, the rule cannot fire
    (unless D has passed); where it is surely false (a false from the plan is exact) at
    one of them, the rule is re-armed, and the evaluator need not look back.
    """
    step = evaluator.settings.interval
    moments = [at - step * k for k in range(1, _REARM_STEPS + 1)]
    stamps = [micros(m) for m in moments]
    now = micros(at)
    todo: dict[int, pl.DataFrame] = {}
    held_rows: dict[int, list[int]] = {}
    armed_rows: dict[int, list[int]] = {}
    free: dict[int, set[int]] = {}  # rows a `repeat every` lets fire: never held back
    for i, found in chosen.items():
        rule = evaluator.rules[i].rule
        if rule.once_per_account:
            continue  # held back already when it fired before
        fired = found.filter(pl.col("last").is_not_null())
        if rule.repeat_every is not None:
            reach = duration_delta(rule.repeat_every) // timedelta(microseconds=1)
            past = fired.filter(pl.lit(now) - pl.col("last") >= reach)
            if past.height:
                free[i] = set(past.get_column(IDX).to_list())
                fired = fired.with_columns(
                    (pl.lit(now) - pl.col("last") >= reach).alias("__free"))
        # How many earlier evaluations fall strictly after the last firing: none (it
        # fired at the previous evaluation, say) and the rule is surely held back. All
        # of them (`_REARM_STEPS`, or more): it may be re-armed at one of those, but
        # whether it is held back takes a longer look (the per-account path's).
        after = pl.sum_horizontal(*(pl.col("last") < t for t in stamps)).alias("k")
        fired = fired.with_columns(after)
        held_rows[i] = fired.filter(
            (pl.col("k") == 0) & ~pl.col("__free") if i in free else pl.col("k") == 0
        ).get_column(IDX).to_list()
        fired = fired.filter(pl.col("k") > 0)
        if fired.height:
            todo[i] = fired
    if not todo:
        return held_rows, armed_rows
    rows = sorted(set().union(*(set(f.get_column(IDX).to_list()) for f in todo.values())))
    sub = select_rows(frames, rows)
    planner = Planner(evaluator.program, sub, at, step, True)
    checks: dict[int, tuple[pl.Expr, pl.Expr]] = {}
    for i, fired in todo.items():
        cr = evaluator.rules[i]
        assert cr.rule.when is not None
        steps = int(fired.select(pl.col("k").max()).item() or 0)
        if planner.timeless(cr.rule.when):
            steps = 1  # the same at every evaluation: one earlier look stands for all
        k_col = pl.col(f"k{i}")
        sure_terms = [k_col < _REARM_STEPS]
        false_terms = [pl.lit(False)]
        try:
            for k in range(1, steps + 1):
                c = planner.condition(cr.rule.when, Ctx(moments[k - 1]))
                v = planner.temp(c.v)
                sure = v.fill_null(True)
                if c.x is not None:
                    sure = sure & ~(v.is_null() & planner.temp(c.x).fill_null(False))
                false = ~v.fill_null(True)  # a false from the plan is exact
                if steps > 1:
                    sure, false = sure | (k_col < k), false & (k_col >= k)
                sure_terms.append(sure)
                false_terms.append(false)
        except Unsupported:
            continue
        checks[i] = (pl.all_horizontal(sure_terms), pl.any_horizontal(false_terms))
    table = _with_aggregates(sub, planner, _with_history(sub, planner, sub.accounts))
    staged = planner.staged(table)
    mapping = pl.DataFrame({IDX: pl.Series(range(len(rows)), dtype=pl.UInt32),
                            "__row": pl.Series(rows, dtype=pl.UInt32)})
    staged = staged.join(mapping, on=IDX, how="left", maintain_order="left")
    ks = pl.concat([f.select(pl.col(IDX).alias("__row"), pl.col("k"),
                             pl.lit(f"k{i}").alias("__rule")) for i, f in todo.items()])
    wide = ks.pivot(on="__rule", index="__row", values="k")
    staged = staged.join(wide, on="__row", how="left", maintain_order="left")
    # Every rule's checks in one query, then a cheap filter on each finished column.
    verdicts = staged.lazy().select(
        "__row",
        *[(pl.col(f"k{i}").is_not_null() & held).alias(f"h{i}")
          for i, (held, _) in checks.items()],
        *[(pl.col(f"k{i}").is_not_null() & armed).alias(f"a{i}")
          for i, (_, armed) in checks.items()],
    ).collect()
    for i in checks:
        kept = verdicts.filter(pl.col(f"h{i}")).get_column("__row").to_list()
        held_rows[i] = held_rows.get(i, []) + [r for r in kept if r not in free.get(i, ())]
        armed_rows[i] = verdicts.filter(pl.col(f"a{i}")).get_column("__row").to_list()
    return held_rows, armed_rows


def _with_history(frames: Frames, planner: Planner, table: pl.DataFrame) -> pl.DataFrame:
    """Columns `F#j`: field F as of moment j, for fields with history (an as-of lookup:
    the last entry at or before the moment, in one grouped pass per field)."""
    moments = list(planner.moments)
    needs: dict[str, list[int]] = {}
    for name, j in sorted(planner.history_needs):
        needs.setdefault(name, []).append(j)
    for name, js in needs.items():
        hist = frames.history[name]
        columns = [c for c in hist.columns if c not in (IDX, "at") and not c.endswith("@off")]
        found = hist.group_by(IDX, maintain_order=True).agg(
            pl.col(c).filter(pl.col("at") <= moments[j]).last().alias(f"{c}#{j}")
            for j in js for c in columns
        )
        table = table.join(found, on=IDX, how="left", maintain_order="left")
        has = pl.col(f"__hk@{name}").fill_null(False)
        table = table.with_columns(
            pl.when(has).then(pl.col(f"{c}#{j}")).otherwise(pl.col(c)).alias(f"{c}#{j}")
            for j in js for c in columns
        )
    return table


def _with_aggregates(frames: Frames, planner: Planner, table: pl.DataFrame) -> pl.DataFrame:
    """Every aggregate of every moment: one grouped pass per event type and kind, over
    only the events its windows can reach (all of them up to the last moment for those
    without a window: `last`, `days since last`)."""
    specs: list[AggSpec] = list(planner.aggregates.values())
    if not specs:
        return table
    fills: dict[str, Any] = {}
    by_type: dict[tuple[str, bool], list[AggSpec]] = {}
    for s in specs:
        by_type.setdefault((s.event, s.start is None), []).append(s)
        fills.update(s.defaults())
    for (event, _), group in sorted(by_type.items()):
        reach = pl.col("at") <= max(s.end for s in group)
        if all(s.start is not None for s in group):
            reach = reach & (pl.col("at") > min(s.start for s in group if s.start is not None))
        # Most aggregates in two steps (`AggSpec.split`): columns over the events, then
        # plain aggregations of those (a filter per account and aggregate costs twice).
        # `distinct` counts (account, value) pairs: one grouping by both per value column.
        flat: list[pl.Expr] = []
        aggregations: list[pl.Expr] = []
        by_value: dict[str, list[tuple[str, pl.Expr]]] = {}
        for s in group:
            parts = s.uncertain_parts() if s.func == "distinct" else s.split()
            if parts is None:
                aggregations += s.aggregations()
                continue
            flat += parts[0]
            aggregations += parts[1]
            if s.func == "distinct":
                value, read = s.values_read()
                by_value.setdefault(value, []).append((s.column, read))
        reads = [read for pairs in by_value.values() for _, read in pairs]
        # Lazy, so that only the columns read are carried through the filter: the events
        # table is tens of millions of rows with a column per event field.
        events = frames.events.lazy().filter((pl.col("type") == event) & reach)
        extra = _account_columns(table, [*flat, *aggregations, *reads])
        if extra is not None:
            events = events.join(extra.lazy(), on=IDX, how="left", maintain_order="left")
        queries = []
        if aggregations:
            queries.append(events.with_columns(flat).group_by(IDX).agg(aggregations))
        for value, pairs in sorted(by_value.items()):
            queries.append(
                events.select(IDX, pl.col(value).alias("__value"),
                              *[read.alias(c) for c, read in pairs])
                .group_by(IDX, "__value").agg(pl.col(c).any() for c, _ in pairs)
                .group_by(IDX).agg(pl.col(c).sum().cast(pl.UInt32) for c, _ in pairs))
        # One plan: the filtered events are shared.
        for grouped in pl.collect_all(queries):
            table = table.join(grouped, on=IDX, how="left", maintain_order="left")
    return table.with_columns(pl.col(k).fill_null(v) for k, v in fills.items())


def _last_fired(
    frames: Frames, wanted: dict[tuple[str, str], pl.Series], at: datetime
) -> dict[tuple[str, str], pl.DataFrame]:
    """Per rule (playbook, rule): the last earlier firing at or before `at` (`__idx`,
    `last`) of the accounts `wanted[rule]` (its candidates), from the fixture's `fired`
    records."""
    keys = sorted(wanted)
    if not keys or frames.fired.height == 0:
        return {}
    fired = frames.fired
    # The names as stored (categories, when loaded from JSON): the join then compares
    # category codes; the records can number tens of millions.
    names = pl.DataFrame(
        {"playbook": [k[0] for k in keys], "rule": [k[1] for k in keys],
         "__kid": list(range(len(keys)))},
        schema={"playbook": pl.String, "rule": pl.String, "__kid": pl.UInt32},
    ).with_columns(  # a name not among an Enum's values becomes null and matches nothing
        pl.col("playbook").cast(fired.schema["playbook"], strict=False),
        pl.col("rule").cast(fired.schema["rule"], strict=False))
    # Only the (account, rule) pairs asked for: most records are of other pairs, and
    # grouping them all (one group each, nearly) costs more than leaving them out.
    pairs = pl.concat([
        pl.DataFrame({IDX: rows.cast(pl.UInt32),
                      "__kid": pl.Series([kid] * len(rows), dtype=pl.UInt32)})
        for kid, key in enumerate(keys) for rows in [wanted[key]]])
    rows = pairs.get_column(IDX).unique()
    last = (
        fired.lazy()
        .filter(pl.col(IDX).is_in(rows.implode()) & (pl.col("at") <= micros(at)))
        .join(names.lazy(), on=["playbook", "rule"], how="inner")
        .join(pairs.lazy(), on=[IDX, "__kid"], how="semi")
        .group_by("__kid", IDX)
        .agg(pl.col("at").max().alias("last"))
        .collect()
    )
    return {
        key: part.drop("__kid")
        for (kid,), part in last.partition_by("__kid", as_dict=True).items()
        for key in [keys[int(kid)]]
    }


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Any]:
    """A progress bar on stderr for the per-account pass; a no-op when not shown."""
    if not show or total < _CHUNK:
        yield lambda k: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("deciding candidate accounts", total=total)
        yield lambda k: bar.advance(task, k)

