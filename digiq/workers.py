"""Share a stage's independent tasks between this process and worker processes.

Why: on a small CPU box one process with two torch threads samples candidates only 1.4x faster
than with one thread (small matrices, Python at every decoding step), and two one-thread
processes sample 1.3x faster than one two-thread process (2,503 states x 8 candidates: 108
against 141 s on 2 cores). :func:`run_tasks` hands tasks (the candidates stage's batches) to
``workers - 1`` spawned processes and computes tasks itself at the same time; every result
comes back to the caller's ``on_result`` in THIS process, so the stage's writer (Parquet parts
numbered in order) stays single-writer and resumable exactly as without workers. (The
features stage gained nothing from it on 2 cores: 250 against 243 s; its text encoder and
screenshot decoding already keep both cores busy.)

A worker builds its own compute function from a picklable ``factory`` + ``factory_args`` (a
module-level function: it loads the models from their saved folders), computes the tasks the
parent sends it, two in flight at a time, and sends back each result or the traceback of its
failure. Workers are started without the caller's ``__main__`` module, so a script without an
``if __name__ == "__main__"`` guard is not re-run in them.

An exception in a worker stops the run with :class:`WorkerError` carrying the worker's
traceback (the results already handed to ``on_result`` are kept: the stage resumes); a worker
that dies without one (killed for memory) loses nothing either: its tasks are computed here.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import sys
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch

log = logging.getLogger(__name__)

__all__ = ["WorkerError", "run_tasks", "one_thread"]

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT = 2  # tasks queued per worker, so it never waits for the parent between two tasks
POLL_S = 2.0


class WorkerError(RuntimeError):
    """A worker process failed or died; the message names the unfinished tasks."""


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Hide ``__main__`` while workers start, so that spawn does not re-run the caller's script
    in them (an unguarded script would run its top level, deleting or writing what the stage
    uses); workers need only library modules, where the factories live."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block (the parent while workers run)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _worker_main(
    factory: Callable[..., Callable[[Any], Any]],
    factory_args: tuple[Any, ...],
    tasks: Any,
    results: Any,
) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    try:
        compute = factory(*factory_args)
    except BaseException:
        results.put(("init-error", None, traceback.format_exc()))
        return
    while True:
        item = tasks.get()
        if item is None:
            return
        index, task = item
        try:
            results.put(("ok", index, compute(task)))
        except BaseException:
            results.put(("error", index, traceback.format_exc()))
            return


def run_tasks(
    tasks: Sequence[T],
    compute: Callable[[T], R],
    on_result: Callable[[T, R], None],
    *,
    workers: int,
    factory: Callable[..., Callable[[T], R]],
    factory_args: tuple[Any, ...] = (),
    what: str = "task",
) -> None:
    """Compute every task and hand ``(task, result)`` to ``on_result`` (in any order).

    ``compute`` runs tasks in this process; ``factory(*factory_args)``, called once in each
    worker, returns the worker's equivalent. ``workers`` counts this process: 1 computes
    everything here, in order, with the caller's thread settings (no process is started).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    spawned = min(workers - 1, max(0, len(tasks) - 1))
    if spawned == 0:
        for task in tasks:
            on_result(task, compute(task))
        return
    ctx = mp.get_context("spawn")  # fork would copy torch's thread pools and open files
    results = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(spawned)]
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(factory, factory_args, inbox, results),
            name=f"{what}-worker-{k + 1}",
            daemon=True,
        )
        for k, inbox in enumerate(inboxes)
    ]
    todo = list(range(len(tasks)))
    todo.reverse()  # pop() from the end hands out tasks in their order
    owner: dict[int, int] = {}  # task index -> worker slot, for tasks sent to workers
    done = 0

    def send(slot: int) -> None:
        if todo:
            index = todo.pop()
            owner[index] = slot
            inboxes[slot].put((index, tasks[index]))

    def receive(block: bool) -> bool:
        nonlocal done
        try:
            status, index, payload = results.get(timeout=POLL_S) if block else results.get_nowait()
        except queue.Empty:
            if block:
                _take_back_from_dead(procs, owner, todo, what)
            return False
        if status != "ok":
            unfinished = len(owner) + len(todo)
            where = "starting" if status == "init-error" else f"computing {what} {tasks[index]!r}"
            raise WorkerError(
                f"a {what} worker failed while {where}; {unfinished} {what}(s) not finished "
                f"(the results so far are kept; re-run to resume):\n{payload}"
            )
        slot = owner.pop(index)
        on_result(tasks[index], payload)
        done += 1
        if procs[slot].exitcode is None:
            send(slot)
        return True

    try:
        with _without_main_module():
            for proc in procs:
                proc.start()
        for slot in range(spawned):
            for _ in range(IN_FLIGHT):
                send(slot)
        with one_thread():
            while todo or owner:
                while receive(block=False):
                    pass
                if todo:
                    index = todo.pop()
                    on_result(tasks[index], compute(tasks[index]))
                    done += 1
                elif owner:
                    receive(block=True)
        for inbox in inboxes:
            inbox.put(None)
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    log.debug("%d %s(s) computed with %d worker process(es)", done, what, spawned)


def _take_back_from_dead(
    procs: list[Any], owner: dict[int, int], todo: list[int], what: str
) -> None:
    """Tasks held by a worker that exited (killed for memory, say) go back to this process."""
    for slot, proc in enumerate(procs):
        lost = sorted(i for i, s in owner.items() if s == slot)
        if proc.exitcode is not None and lost:
            log.warning(
                "%s worker %s (pid %s) exited with code %s holding %d %s(s); computing them here",
                what,
                proc.name,
                proc.pid,
                proc.exitcode,
                len(lost),
                what,
            )
            for index in lost:
                del owner[index]
            todo.extend(reversed(lost))
