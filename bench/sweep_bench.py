"""The decision pass of a sweep: N accounts with M events each against a playbook directory.

    .venv/bin/python bench/sweep_bench.py [--accounts 1000000] [--events 30]
        [--dir playbooks/examples] [--steady] [--seed 7] [--json FILE]

The accounts are generated straight into the bulk path's tables (`generate.generate_frames`:
no JSON in between, so the figure is the decision pass alone, "from loaded data to the
list of actions"), then `bulk.evaluate_bulk` runs once at the fixture's moment. Prints the
time of each phase, the firings and actions, and the process's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import NOW, generate_frames
from playbook_engine.bulk import evaluate_bulk
from playbook_engine.bulk_stats import BulkStats
from playbook_engine.engine import Engine

ROOT = Path(__file__).resolve().parent.parent


def _peak_gib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=30, help="events per account")
    parser.add_argument("--dir", type=Path, default=ROOT / "playbooks" / "examples")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steady", action="store_true",
                        help="add yesterday's firings, as after a daily run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    engine = Engine.load(args.dir)
    engine.raise_for_errors()
    started = time.perf_counter()
    frames = generate_frames(engine, args.accounts, args.events, seed=args.seed,
                             steady=args.steady)
    generated = time.perf_counter() - started
    print(f"generated {args.accounts:,} accounts x {args.events} events "
          f"({frames.events.height:,} events) in {generated:.1f}s; "
          f"peak so far {_peak_gib():.2f} GiB", file=sys.stderr)

    stats = BulkStats()
    started = time.perf_counter()
    evaluation = evaluate_bulk(engine, frames, NOW, stats=stats, progress=False)
    elapsed = time.perf_counter() - started
    actions = sum(len(o.actions) for o in evaluation.outcomes if o.fired)
    for line in stats.lines():
        print(line)
    peak = _peak_gib()
    print(f"decision pass: {elapsed:.2f}s for {args.accounts:,} accounts "
          f"({args.accounts / elapsed:,.0f} accounts/s); {actions:,} actions; "
          f"peak memory {peak:.2f} GiB")
    if args.json:
        args.json.write_text(json.dumps({
            "accounts": args.accounts, "events": args.events, "steady": args.steady,
            "seconds": round(elapsed, 3), "phases": stats.phases,
            "candidates": stats.candidates, "per_account": stats.per_account,
            "fired": stats.fired, "actions": actions, "peak_gib": round(peak, 2),
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
