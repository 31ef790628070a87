"""The per-account pass on several processes: the same results, in order, whatever fails."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from test_bulk import RULES, _engine, _many, _write, cli_setup
from typer.testing import CliRunner

from playbook_engine import bulk, workers
from playbook_engine.bulk import BulkStats, evaluate_bulk
from playbook_engine.cli import app
from playbook_engine.errors import ConfigError
from playbook_engine.workers import Split, available_workers, run_split

pytestmark = pytest.mark.skipif(not workers._can_fork(), reason="forking is used on Linux only")


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _square(k: int) -> int:
    return k * k


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_results_come_back_in_task_order(count: int) -> None:
    here = os.getpid()

    def task(k: int) -> tuple[int, int]:
        time.sleep(0.02)  # long enough for every process to take some
        return k * k, os.getpid()

    done: list[int] = []
    results = run_split([lambda k=k: task(k) for k in range(11)], count, done.append)
    assert [r[0] for r in results] == [k * k for k in range(11)]
    assert sorted(done) == list(range(11))
    pids = {pid for _, pid in results}
    assert here in pids and len(pids) == count
    assert _no_children_left()


def test_this_process_can_work_while_the_workers_start() -> None:
    here = os.getpid()
    tasks = [lambda: (time.sleep(0.05), os.getpid())[1] for _ in range(4)]
    with Split(tasks, 2) as split:
        time.sleep(0.3)  # the worker takes every task meanwhile
        results = split.finish()
    assert here not in results
    assert _no_children_left()


def test_a_worker_that_raises_has_its_tasks_run_here() -> None:
    here = os.getpid()

    def task(k: int) -> int:
        if os.getpid() != here:
            raise RuntimeError("only in the worker")
        return k

    assert run_split([lambda k=k: task(k) for k in range(6)], 2) == list(range(6))
    assert _no_children_left()


def test_a_worker_killed_by_a_signal_has_its_tasks_run_here() -> None:
    here = os.getpid()

    def task(k: int) -> int:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return k

    assert run_split([lambda k=k: task(k) for k in range(4)], 2) == list(range(4))
    assert _no_children_left()


def test_an_error_everywhere_is_raised_as_in_one_process() -> None:
    def task(k: int) -> int:
        if k == 1:
            raise ValueError(f"task {k} is broken")
        return k

    with pytest.raises(ValueError, match="task 1 is broken"):
        run_split([lambda k=k: task(k) for k in range(4)], 2)
    assert _no_children_left()


def test_this_process_failing_stops_the_workers() -> None:
    def task(k: int) -> int:
        if k == 0:
            raise KeyError("here")
        return k

    with pytest.raises(KeyError):
        run_split([lambda k=k: task(k) for k in range(4)], 2)
    assert _no_children_left()


def test_workers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOK_WORKERS", "3")
    assert available_workers() == 3
    for bad in ("0", "many", "-2", "1.5"):
        monkeypatch.setenv("PLAYBOOK_WORKERS", bad)
        with pytest.raises(ConfigError, match=r"PLAYBOOK_WORKERS=.*whole number"):
            available_workers()
    monkeypatch.delenv("PLAYBOOK_WORKERS")
    assert available_workers() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("name", ["big.json", "big.jsonl"])
def test_the_bulk_pass_decides_the_same_on_several_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Small chunks, so that 600 accounts make many tasks over several rounds.
    monkeypatch.setattr(bulk, "_CHUNK", 7)
    monkeypatch.setattr(bulk, "_GROWTH", 2)
    engine = _engine(RULES)
    frames = engine.load_frames(_write(tmp_path, name, {"now": "2026-03-16T09:00:00+09:00",
                                                        "accounts": _many(600)}))
    one = evaluate_bulk(engine, frames, workers=1)
    stats = BulkStats()
    several = [evaluate_bulk(engine, frames, workers=k, stats=stats) for k in (2, 3)]
    assert stats.per_account > 4 * 7  # several rounds of tasks
    assert one.outcomes and any(o.fired for o in one.outcomes)
    for other in several:
        assert other.outcomes == one.outcomes
        assert other.as_json() == one.as_json()
    assert _no_children_left()


def test_cli_dry_run_on_several_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_CHUNK", 50)
    root, path = cli_setup(tmp_path)
    outputs = []
    for count in ("1", "2"):
        result = CliRunner().invoke(app, ["dry-run", str(root), "--fixtures", str(path),
                                          "--format", "json", "--workers", count])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] and json.loads(outputs[0])["actions"]
    refused = CliRunner().invoke(app, ["dry-run", str(root), "--fixtures", str(path),
                                       "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output
    monkeypatch.setenv("PLAYBOOK_WORKERS", "lots")
    refused = CliRunner().invoke(app, ["dry-run", str(root), "--fixtures", str(path)])
    assert refused.exit_code == 2 and "PLAYBOOK_WORKERS='lots'" in refused.output
    assert "Traceback" not in refused.output
    assert _no_children_left()


def test_rounds_grow_and_stay_bounded() -> None:
    chunks = [[k] for k in range(2_000)]
    rounds = bulk._rounds(chunks, 2)
    assert [len(r) for r in rounds[:5]] == [2, 8, 32, 128, 500]
    assert max(len(r) for r in rounds) == bulk._LARGEST_ROUND
    assert [c for r in rounds for c in r] == chunks
    assert len(bulk._rounds(chunks, 5_000)[0]) == bulk._LARGEST_ROUND


def test_a_queue_holds_at_most_1024_tasks() -> None:
    assert run_split([lambda k=k: k for k in range(1_024)], 2)[-1] == 1_023
    with pytest.raises(ValueError, match="1,024"):
        run_split([lambda: 0] * 1_025, 2)
    assert _no_children_left()
