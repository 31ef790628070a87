"""Pure-Python work spread over several processes by `fork`: the per-account pass.

Deciding accounts one by one is Python code, which one process runs on one core at a
time. On a machine with more cores, `run_split` forks workers that inherit everything
this process holds (the evaluator, its compiled rules and templates, the lists the tasks
close over) without copying or pickling any of it; every process takes tasks from one
queue as it becomes free, and the workers' results come back pickled, in task order.
The results are exactly what running the tasks here one after another gives.

Rules for a task (`bulk_accounts` and `bulk.evaluate_bulk` keep them):
- it calls neither polars nor Arrow: their thread pools do not survive a fork, and a
  call in the child could wait forever for threads that are not there;
- it reads what was prepared before the fork and returns a picklable result; what it
  changes elsewhere (caches) stays in its own process.

A worker that fails in any way (an exception, a signal, a result that does not load) is
not trusted: the tasks it took run again here, so an error surfaces exactly as it would in one
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
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar

from .errors import ConfigError

__all__ = ["Split", "available_workers", "run_split"]

T = TypeVar("T")

# Read by `available_workers`: a whole number of processes, 1 for none forked.
WORKERS_ENV = "PLAYBOOK_WORKERS"


def available_workers() -> int:
    """How many processes the per-account pass may use: `PLAYBOOK_WORKERS` if set, else
    the cores this process may run on; 1 where forking is not used.

    Raises `ConfigError` when `PLAYBOOK_WORKERS` is not a whole number of at least 1.
    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(
                f"{WORKERS_ENV}={raw!r}: give a whole number of processes, 1 or more "
                f"(1 decides every account in this process)")
        count = int(raw)
    else:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return count if _can_fork() else 1


def _can_fork() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


def run_split(
    tasks: Sequence[Callable[[], T]],
    workers: int,
    done: Callable[[int], None] = lambda k: None,
) -> list[T]:
    """Each task's result, in order, from `workers` processes (this one included).

    The tasks (1,024 at most) wait in one queue, and each process takes the next as it
    becomes free, so that all finish about together. `done(k)` is called here as task
    k's result is in (a worker's, when it is back).
    """
    with Split(tasks, workers, done) as split:
        return split.finish()


class Split(Generic[T]):
    """`run_split` in two steps, so that this process can do other work (prepare the
    next tasks, say) while the workers start on the queue: they start on entering the
    `with`, and `finish` takes this process's part of the queue and collects theirs.
    Leaving the `with` early (an exception) stops the workers."""

    def __init__(self, tasks: Sequence[Callable[[], T]], workers: int,
                 done: Callable[[int], None] = lambda k: None) -> None:
        self.tasks, self.done = tasks, done
        self.workers = min(workers, len(tasks)) if _can_fork() else 1
        self.queue: _Queue | None = None
        self.children: list[tuple[int, IO[bytes]]] = []

    def __enter__(self) -> Split[T]:
        if self.workers <= 1:
            return self
        try:
            self.queue = _Queue(len(self.tasks))
            for _ in range(self.workers - 1):
                file: IO[bytes] = tempfile.TemporaryFile()
                self.children.append((_fork(self.tasks, self.queue, file), file))
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def finish(self) -> list[T]:
        tasks, done = self.tasks, self.done
        results: dict[int, Any] = {}
        for k in self.queue or range(len(tasks)):
            results[k] = tasks[k]()
            done(k)
        while self.children:
            pid, file = self.children.pop(0)
            for k, result in _collect(pid, file):
                results[k] = result
                done(k)
        for k in range(len(tasks)):
            if k not in results:  # a worker failed before or after taking it
                results[k] = tasks[k]()
                done(k)
        return [results[k] for k in range(len(tasks))]

    def _stop(self) -> None:
        while self.children:  # only when this process's work failed
            pid, file = self.children.pop()
            _kill(pid)
            file.close()
        if self.queue is not None:
            self.queue.close()


class _Queue:
    """Task numbers in a pipe, taken one at a time by whichever process is free: a
    read of a few bytes from a pipe is atomic, so no two processes take the same one."""

    SIZE = 4

    def __init__(self, count: int) -> None:
        # Written before any process reads: the pipe must hold them all. Its buffer is
        # at least a page (4 KiB, 1,024 numbers) everywhere, 64 KiB by default on Linux.
        if count * self.SIZE > 4096:
            raise ValueError(f"{count} tasks: at most 1,024 in one queue")
        self.read, write = os.pipe()
        try:
            os.write(write, b"".join(k.to_bytes(self.SIZE, "little") for k in range(count)))
        finally:
            os.close(write)  # the queue's end: a read finds nothing more

    def __iter__(self) -> Iterator[int]:
        while len(taken := os.read(self.read, self.SIZE)) == self.SIZE:
            yield int.from_bytes(taken, "little")

    def close(self) -> None:
        if self.read >= 0:
            os.close(self.read)
            self.read = -1


def _fork(tasks: Sequence[Callable[[], Any]], queue: _Queue, out: IO[bytes]) -> int:
    """Start a worker taking tasks from the queue; it writes (k, result) to `out`."""
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
        for k in queue:  # each result written as it is made, not all at the end
            pickle.dump((k, tasks[k]()), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        code = 0
    except BaseException:  # the parent runs the unfinished tasks again, and reports
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, out: IO[bytes]) -> list[tuple[int, Any]]:
    """The (k, result) a worker finished; none when it failed (its tasks then run here)."""
    got: list[tuple[int, Any]] = []
    try:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return []
        size = out.seek(0, os.SEEK_END)
        out.seek(0)
        while out.tell() < size:
            got.append(pickle.load(out))
    except Exception:
        return []
    finally:
        out.close()
    return got


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
