"""Per-account evaluation throughput and latency (issue 3).

    .venv/bin/python bench/evaluate_bench.py [--accounts 100000] [--events 10]
        [--bulk [--bulk-accounts N]] [--dir playbooks/examples] [--repeat 20000]
        [--profile] [--json FILE]

1. Throughput: generated accounts (`bench/generate.py`, written as a JSON Lines fixture
   and loaded as `playbook dry-run` loads one; `bench/accounts.py` when generate.py is
   absent) evaluated one by one through `Evaluator.evaluate` (what
   `Engine.evaluate` calls) against the example playbooks — every rule, firing
   semantics, actions rendered — in one process. Accounts/s and rule evaluations/s.
   With `--bulk`, the same fixture through the bulk path (`bulk.evaluate_bulk` on
   `bulk.load_frames`), which must fire the same rules for the same accounts.
2. Latency of one account against 100 rules, with `time.perf_counter_ns` around each call,
   p50 and p99 over `--repeat` calls:
     - examples x100   the example rules, repeated (renamed) up to 100 rules,
                       through `Evaluator.evaluate`
     - flat x100       100 flat-attribute rules (`bench/flat.py`) through
                       `Evaluator.evaluate`
     - fastpath x100   the same 100 flat rules through `fastpath` (one generated
                       function; target p50 < 5 us)
   Each is measured on one account repeated, and across 1,000 accounts in turn.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flat
from accounts import AccountMaker

from playbook_engine import nodes as n
from playbook_engine.engine import Engine
from playbook_engine.evaluate import Evaluator
from playbook_engine.facts import Account
from playbook_engine.fastpath import compile_fast
from playbook_engine.program import Program

AT = datetime(2026, 3, 16, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def playbook_dir(given: Path | None) -> Path:
    """playbooks/examples when it checks clean, else the spec's directory."""
    if given is not None:
        return given
    examples = flat.EXAMPLES
    if examples.is_dir() and Engine.load(examples).ok:
        return examples
    return flat.SPEC


def make_accounts(
    engine: Engine, count: int, seed: int, events: int, folder: Path
) -> tuple[list[Account], datetime, str, Path | None]:
    """Accounts from bench/generate.py (a JSON Lines fixture in `folder`, loaded as
    `playbook dry-run` loads it), else from bench/accounts.py; the moment to evaluate
    them at; and the fixture file (for the bulk path), if there is one."""
    try:
        from generate import write_fixture
    except ImportError:
        made = AccountMaker(engine.program, AT, seed).make(count)
        return made, AT, "bench/accounts.py", None
    path = write_fixture(folder / "accounts.jsonl", engine, count, events, seed)
    fixture = engine.load_fixture(path)
    assert fixture.as_of is not None
    origin = f"bench/generate.py, {events} events each, seed {seed}"
    return list(fixture.accounts), fixture.as_of, origin, path


def throughput(evaluator: Evaluator, accounts: Sequence[Account], at: datetime) -> dict[str, Any]:
    warm = accounts[: min(200, len(accounts))]
    for account in warm:
        evaluator.evaluate(account, at)
    fired = actions = outcomes = 0
    keys: set[tuple[Any, ...]] = set()
    gc.collect()
    begin = time.perf_counter()
    cpu = time.process_time()
    for account in accounts:
        found = evaluator.evaluate(account, at)
        outcomes += len(found)
        for outcome in found:
            if outcome.fired:
                fired += 1
                actions += len(outcome.actions)
                keys.add(_key(outcome))
    seconds = time.perf_counter() - begin
    cpu = time.process_time() - cpu
    FIRED["per-account"] = keys
    rules = len(evaluator.rules)
    return {
        "accounts": len(accounts), "rules": rules, "seconds": seconds, "cpu_seconds": cpu,
        "accounts_per_s": len(accounts) / seconds,
        "rule_evaluations_per_s": len(accounts) * rules / seconds,
        "outcomes": outcomes, "fired": fired, "actions": actions,
    }


FIRED: dict[str, set[tuple[Any, ...]]] = {}


def _key(outcome: Any) -> tuple[Any, ...]:
    return (outcome.account, outcome.playbook, outcome.rule, outcome.event_at,
            len(outcome.actions))


def bulk(engine: Engine, path: Path, at: datetime, count: int) -> dict[str, Any]:
    """The same fixture (its first `count` accounts) through the columnar bulk path
    (playbook_engine.bulk), end to end: the same firings must come out."""
    from playbook_engine.bulk import BulkStats, evaluate_bulk, load_frames

    with path.open(encoding="utf-8") as source:
        head = [next(source) for _ in range(count + 1)]  # JSON Lines: a header, then accounts
    path = path.with_name("bulk.jsonl")
    path.write_text("".join(head), encoding="utf-8")
    gc.collect()
    begin = time.perf_counter()
    frames = load_frames(path, engine)
    loaded = time.perf_counter() - begin
    stats = BulkStats()
    begin = time.perf_counter()
    evaluation = evaluate_bulk(engine, frames, at, stats=stats, progress=False)
    seconds = time.perf_counter() - begin
    keys = {_key(o) for o in evaluation.outcomes if o.fired}
    ids = set(frames.account_ids)
    same = keys == {k for k in FIRED.get("per-account", set()) if k[0] in ids}
    return {
        "accounts": stats.accounts, "rules": stats.rules, "seconds": seconds,
        "load_seconds": loaded, "accounts_per_s": stats.accounts / seconds,
        "rule_evaluations_per_s": stats.accounts * stats.rules / seconds,
        "phases": stats.phases, "candidates": stats.candidates,
        "per_account": stats.per_account, "fired": len(keys), "same_firings": same,
        "fallback": stats.fallback,
    }


def latency(call: Callable[[Any], Any], inputs: Sequence[Any], repeat: int) -> dict[str, float]:
    """p50/p99 in microseconds of `call(x)`, x cycling through `inputs`."""
    for x in inputs[:100]:
        call(x)
    samples = []
    clock = time.perf_counter_ns
    size = len(inputs)
    gc.collect()
    gc.disable()
    try:
        for k in range(repeat):
            x = inputs[k % size]
            start = clock()
            call(x)
            samples.append(clock() - start)
    finally:
        gc.enable()
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
        "calls": repeat,
    }


def hundred_example_rules(program: Program) -> Program:
    """The example playbooks, copied under new names until there are 100 rules."""
    playbooks: list[n.Playbook] = []
    total = 0
    copy = 0
    while total < 100:
        for playbook in program.playbooks:
            if playbook.status_value == "paused" or total >= 100:
                continue
            rules = playbook.rules[: 100 - total]
            name = dataclasses.replace(playbook.name, value=f"{playbook.name.value} #{copy}")
            playbooks.append(dataclasses.replace(playbook, name=name, rules=rules))
            total += len(rules)
        copy += 1
    return dataclasses.replace(program, playbooks=tuple(playbooks))


def flat_rows(accounts: Sequence[Account]) -> list[dict[str, Any]]:
    return [{"id": a.id, "name": a.name, "tags": a.tags, **a.fields} for a in accounts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="playbook directory (default: the examples)")
    parser.add_argument("--repeat", type=int, default=20_000, help="calls per latency figure")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--events", type=int, default=10, help="events per account")
    parser.add_argument("--bulk", action="store_true",
                        help="also run the bulk path end to end (young: watch its memory)")
    parser.add_argument("--bulk-accounts", type=int, default=0,
                        help="accounts for the bulk path (default: all)")
    parser.add_argument("--profile", action="store_true", help="profile 2,000 accounts")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    directory = playbook_dir(args.dir)
    engine = Engine.load(directory)
    engine.raise_for_errors()
    folder = Path(tempfile.mkdtemp(prefix="evaluate-bench-"))
    begin = time.perf_counter()
    accounts, at, origin, fixture = make_accounts(engine, args.accounts, args.seed,
                                                  args.events, folder)
    made = time.perf_counter() - begin
    evaluator = engine.evaluator(at.tzinfo)
    print(f"evaluate_bench: {len(accounts):,} accounts ({origin}, made in {made:.1f}s), "
          f"{directory} ({len(evaluator.rules)} rules), load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for account in accounts[:2000]:
            evaluator.evaluate(account, at)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False), file=sys.stderr)

    figures: dict[str, Any] = {"directory": str(directory), "origin": origin}
    figures["throughput"] = t = throughput(evaluator, accounts, at)
    print(f"  throughput   {t['accounts_per_s']:>10,.0f} accounts/s "
          f"{t['rule_evaluations_per_s']:>12,.0f} rule evaluations/s  "
          f"({t['seconds']:.1f}s for {t['accounts']:,} accounts x {t['rules']} rules; "
          f"{t['fired']:,} firings, {t['actions']:,} actions)", flush=True)

    if fixture is not None and args.bulk:
        try:
            b = bulk(engine, fixture, at, min(args.bulk_accounts or len(accounts),
                                               len(accounts)))
        except Exception as exc:  # the bulk API is young: report it, go on
            print(f"  bulk         failed: {type(exc).__name__}: {exc}", flush=True)
        else:
            figures["bulk"] = b
            phases = ", ".join(f"{k} {v:.1f}s" for k, v in b["phases"].items())
            print(f"  bulk ({b['accounts']:,} accounts, end to end) "
                  f"{b['accounts_per_s']:>10,.0f} accounts/s "
                  f"{b['rule_evaluations_per_s']:>12,.0f} rule evaluations/s  "
                  f"({b['seconds']:.1f}s: {phases}; fixture read into tables in "
                  f"{b['load_seconds']:.1f}s; {b['per_account']:,} accounts decided one by "
                  f"one; same firings as per-account: {'yes' if b['same_firings'] else 'NO'})",
                  flush=True)
    shutil.rmtree(folder, ignore_errors=True)

    sample = accounts[:1000]
    examples = Evaluator(hundred_example_rules(engine.program), engine.templates,
                         evaluator.settings, engine.sources)
    flat_engine = Engine.from_sources(flat.program_sources(flat.rules(100)))
    flat_engine.raise_for_errors()
    flat_evaluator = flat_engine.evaluator(at.tzinfo)
    conditions = [r.when for r in flat_engine.program.playbooks[0].rules if r.when is not None]
    fast = compile_fast(flat_engine.program, conditions, decimal_rows=True)  # facts: Decimal
    rows = flat_rows(sample)
    cases: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
        ("examples x100", lambda a: examples.evaluate(a, at), list(sample)),
        ("flat x100", lambda a: flat_evaluator.evaluate(a, at), list(sample)),
        ("fastpath x100", fast.evaluate, rows),
    ]
    figures["latency"] = {}
    print(f"  latency of one account against 100 rules ({args.repeat:,} calls each, "
          "perf_counter_ns):")
    for name, call, inputs in cases:
        # The account with most fields present: the fast path's common case.
        one = max(inputs[:50], key=lambda x: sum(v is not None for v in _values(x)))
        same = latency(call, [one], args.repeat)
        spread = latency(call, inputs, args.repeat)
        figures["latency"][name] = {"one_account": same, "across_accounts": spread}
        print(f"    {name:<14} one account: p50 {same['p50_us']:8.2f} us  p99 "
              f"{same['p99_us']:8.2f} us   across 1,000 accounts: p50 "
              f"{spread['p50_us']:8.2f} us  p99 {spread['p99_us']:8.2f} us", flush=True)
    figures["fastpath_fallbacks"] = fast.fallbacks
    figures["load_average"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _values(x: Any) -> list[Any]:
    if isinstance(x, Account):
        return list(x.fields.values())
    return list(x.values())


if __name__ == "__main__":
    sys.exit(main())
