"""`playbook dry-run` end to end: a JSON fixture of N accounts with M events each.

    .venv/bin/python bench/dryrun_bench.py [--accounts 50000] [--events 12]
        [--dir /path/to/spec] [--format json|jsonl] [--steady] [--repeat 3] [--json FILE]

Writes the fixture once (`generate.write_fixture`, seeded), then runs the command a user
runs, in a fresh process each time:

    playbook dry-run DIR --fixtures FIXTURE --format json --stats > actions.json

and times the whole process (start-up, loading the fixture, deciding, writing the JSON):
best of `--repeat`, with the `--stats` breakdown of the best run. The playbooks default to
the spec's (`../shared/spec` beside the repository), else `playbooks/examples`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import write_fixture  # noqa: E402
from playbook_engine.engine import Engine  # noqa: E402


def default_dir() -> Path:
    spec = ROOT.parent / "shared" / "spec"
    return spec if (spec / "LANGUAGE.md").exists() else ROOT / "playbooks" / "examples"


def playbook_command() -> list[str]:
    found = Path(sys.executable).with_name("playbook")
    if found.exists():
        return [str(found)]
    return [shutil.which("playbook") or "playbook"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=12, help="events per account")
    parser.add_argument("--dir", type=Path, default=None, help="playbook directory")
    parser.add_argument("--format", choices=["json", "jsonl"], default="json")
    parser.add_argument("--steady", action="store_true",
                        help="add yesterday's firings, as after a daily run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    directory = args.dir or default_dir()

    with tempfile.TemporaryDirectory(prefix="dryrun-bench-") as tmp:
        fixture = Path(tmp) / f"accounts.{args.format}"
        engine = Engine.load(directory)
        engine.raise_for_errors()
        started = time.perf_counter()
        write_fixture(fixture, engine, accounts=args.accounts, events=args.events,
                      seed=args.seed, steady=args.steady)
        size = fixture.stat().st_size
        print(f"fixture: {args.accounts:,} accounts x {args.events} events, "
              f"{size / 1e6:,.0f} MB {args.format}, written in "
              f"{time.perf_counter() - started:.1f}s", file=sys.stderr)
        command = [*playbook_command(), "dry-run", str(directory), "--fixtures", str(fixture),
                   "--format", "json", "--stats"]
        runs: list[tuple[float, str, int]] = []
        for _ in range(args.repeat):
            out = Path(tmp) / "actions.json"
            with out.open("wb") as sink:
                begin = time.perf_counter()
                done = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, text=True,
                                      env=os.environ | {"NO_COLOR": "1"}, check=False)
                wall = time.perf_counter() - begin
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            actions = len(json.loads(out.read_text(encoding="utf-8"))["actions"])
            runs.append((wall, done.stderr, actions))
        best, stats, actions = min(runs)
    rate = args.accounts / best
    print(stats.rstrip())
    print(f"dry-run end to end: best {best:.2f}s of {args.repeat} "
          f"({', '.join(f'{r[0]:.2f}s' for r in runs)}); {rate:,.0f} accounts/s; "
          f"{actions:,} actions written; target >= 10,000 accounts/s: "
          f"{'OK' if rate >= 10_000 else 'MISSED'}; load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "accounts": args.accounts, "events": args.events, "format": args.format,
            "steady": args.steady, "fixture_bytes": size, "seconds": round(best, 3),
            "runs": [round(r[0], 3) for r in runs], "accounts_per_s": round(rate),
            "actions": actions, "stats": stats.strip().splitlines(),
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
