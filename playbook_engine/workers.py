"""Pure-Python work spread over several processes by `fork`: the per-account pass.

Deciding accounts one by one is Python code, which one process runs on one core at a
time. On a machine with more cores, `run_split` forks workers that inherit everything
this process holds (the evaluator, its compiled rules and templates, the lists the tasks
close over) without copying or pickling any of it, runs a share of the tasks in each,
and brings their results back pickled, in task order. The results are exactly what
running the tasks here one after another gives.

Rules for a task (`bulk_accounts` and `bulk.evaluate_bulk` keep them):
- it calls neither polars nor Arrow: their thread pools do not survive a fork, and a
  call in the child could wait forever for threads that are not there;
- it reads what was prepared before the fork and returns a picklable result; what it
  changes elsewhere (caches) stays in its own process.

A worker that fails in any way (an exception, a signal, a result that does not load) is
not trusted: its tasks run again here, so an error surfaces exactly as it would in one
process. Forking is used only where `os.fork` is known to be sound (Linux); elsewhere,
and with `workers=1`, the tasks run here in turn.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import IO, Any, Generic, TypeVar

__all__ = ["Split", "available_workers", "run_split"]

T = TypeVar("T")

# Read by `available_workers`: a whole number of processes, 1 for none forked.
WORKERS_ENV = "PLAYBOOK_WORKERS"


def available_workers() -> int:
    """How many processes the per-account pass may use: `PLAYBOOK_WORKERS` if set, else
    the cores this process may run on; 1 where forking is not used."""
    if not _can_fork():
        return 1
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            return 1
    return max(1, len(os.sched_getaffinity(0)))


def _can_fork() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


def run_split(
    tasks: Sequence[Callable[[], T]],
    workers: int,
    done: Callable[[int], None] = lambda k: None,
    here: float | None = None,
) -> list[T]:
    """Each task's result, in order, from `workers` processes (this one included).

    This process runs about the fraction `here` of the tasks (default: an equal share),
    spread evenly among them; the forked workers share the rest in turn. `done(k)` is
    called here as task k's result is in (a worker's, when it is back).
    """
    with Split(tasks, workers, done, here) as split:
        return split.finish()


class Split(Generic[T]):
    """`run_split` in two steps, so that this process can do other work (prepare the
    next tasks, say) while the workers run theirs: the workers start on entering the
    `with`, and `finish` runs this process's share and collects theirs. Leaving the
    `with` early (an exception) stops the workers."""

    def __init__(self, tasks: Sequence[Callable[[], T]], workers: int,
                 done: Callable[[int], None] = lambda k: None,
                 here: float | None = None) -> None:
        self.tasks, self.done = tasks, done
        self.workers = min(workers, len(tasks)) if _can_fork() else 1
        self.mine, self.shares = _shares(
            len(tasks), self.workers, 1 / self.workers if here is None else here)
        self.children: list[tuple[int, list[int], IO[bytes]]] = []

    def __enter__(self) -> Split[T]:
        try:
            for share in self.shares:
                file: IO[bytes] = tempfile.TemporaryFile()
                self.children.append((_fork(self.tasks, share, file), share, file))
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def finish(self) -> list[T]:
        tasks, done = self.tasks, self.done
        results: list[Any] = [None] * len(tasks)
        for k in self.mine:
            results[k] = _run(tasks[k], k, done)
        while self.children:
            pid, share, file = self.children.pop(0)
            got = _collect(pid, file, len(share))
            for i, k in enumerate(share):
                results[k] = got[i] if got is not None else tasks[k]()
                done(k)
        return results

    def _stop(self) -> None:
        while self.children:  # only when this process's work failed
            pid, _, file = self.children.pop()
            _kill(pid)
            file.close()


def _shares(count: int, workers: int, here: float) -> tuple[list[int], list[list[int]]]:
    """Task numbers for this process (about `here` of them, evenly spread) and for each
    of the `workers - 1` others (the rest, in turn)."""
    if workers <= 1:
        return list(range(count)), []
    here = min(max(here, 0.0), 1.0)
    mine = [k for k in range(count) if int((k + 1) * here) > int(k * here)]
    taken = set(mine)
    rest = [k for k in range(count) if k not in taken]
    return mine, [rest[w::workers - 1] for w in range(workers - 1)]


def _run(task: Callable[[], T], k: int, done: Callable[[int], None]) -> T:
    result = task()
    done(k)
    return result


def _fork(tasks: Sequence[Callable[[], Any]], share: list[int], out: IO[bytes]) -> int:
    """Start a worker running `share` of the tasks; it writes their results to `out`."""
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads (polars' idle pool):
        # the child calls nothing that needs them (see the module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns to the caller's code
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for k in share:  # each result written as it is made, not all at the end
            pickle.dump(tasks[k](), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        code = 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, out: IO[bytes], expected: int) -> list[Any] | None:
    """A worker's results, or None when it failed (its tasks are then run here)."""
    try:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        out.seek(0)
        got = [pickle.load(out) for _ in range(expected)]
    except Exception:
        return None
    finally:
        out.close()
    return got


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
