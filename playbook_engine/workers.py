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
from typing import IO, Any, TypeVar

__all__ = ["available_workers", "run_split"]

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
) -> list[T]:
    """Each task's result, in order; task k runs in worker k % workers (0: this one).

    `done(k)` is called here as task k's result is in (a worker's, when it is back).
    """
    workers = min(workers, len(tasks)) if _can_fork() else 1
    if workers <= 1:
        return [_run(task, k, done) for k, task in enumerate(tasks)]
    children: list[tuple[int, list[int], IO[bytes]]] = []
    results: list[Any] = [None] * len(tasks)
    try:
        for w in range(1, workers):
            share = list(range(w, len(tasks), workers))
            file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed when collected
            children.append((_fork(tasks, share, file), share, file))
        for k in range(0, len(tasks), workers):
            results[k] = _run(tasks[k], k, done)
        while children:
            pid, share, file = children.pop(0)
            got = _collect(pid, file, len(share))
            for k, result in zip(share, got if got is not None else [None] * len(share),
                                 strict=True):
                results[k] = result if got is not None else tasks[k]()
                done(k)
    finally:
        for pid, _, file in children:  # only when this process's own task failed
            _stop(pid)
            file.close()
    return results


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
        pickle.dump([tasks[k]() for k in share], out, protocol=pickle.HIGHEST_PROTOCOL)
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
        got = pickle.load(out)
    except Exception:
        return None
    finally:
        out.close()
    return got if isinstance(got, list) and len(got) == expected else None


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
