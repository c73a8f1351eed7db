"""digiq.workers.run_tasks: tasks shared with spawned processes, results written here."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import pytest
import torch

from digiq.workers import WorkerError, run_tasks


def square_with_pid(task: int) -> tuple[int, int, int]:
    """(task, task squared, pid of the process that computed it, torch threads there)."""
    return task * task, os.getpid(), torch.get_num_threads()


def make_square(offset: int) -> Callable[[int], tuple[int, int, int]]:
    def compute(task: int) -> tuple[int, int, int]:
        value, pid, threads = square_with_pid(task)
        return value + offset, pid, threads

    return compute


def make_failing(bad: int) -> Callable[[int], int]:
    def compute(task: int) -> int:
        if task == bad:
            raise ValueError(f"cannot do task {task}")
        return task

    return compute


def make_dying(bad: int) -> Callable[[int], int]:
    def compute(task: int) -> int:
        if task == bad:
            os._exit(3)  # killed, as the kernel's OOM killer would: no exception, no result
        return task

    return compute


def test_tasks_are_shared_and_every_result_reaches_the_caller_once() -> None:
    seen: dict[int, tuple[int, int, int]] = {}
    caller = os.getpid()

    def on_result(task: int, result: tuple[int, int, int]) -> None:
        assert os.getpid() == caller  # results are written by the calling process only
        assert task not in seen
        seen[task] = result

    tasks = list(range(12))
    run_tasks(
        tasks,
        make_square(0),
        on_result,
        workers=2,
        factory=make_square,
        factory_args=(0,),
        what="square",
    )
    assert sorted(seen) == tasks
    assert all(seen[t][0] == t * t for t in tasks)
    pids = {pid for _, pid, _ in seen.values()}
    assert caller in pids and len(pids) == 2  # the worker computed some, this process others
    assert {threads for _, _, threads in seen.values()} == {1}  # one torch thread each


def test_one_worker_computes_everything_here_in_order() -> None:
    order: list[int] = []
    run_tasks(
        [3, 1, 2],
        make_square(0),
        lambda task, result: order.append(task),
        workers=1,
        factory=make_square,
    )
    assert order == [3, 1, 2]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_tasks([1], make_square(0), lambda t, r: None, workers=0, factory=make_square)


def test_a_worker_exception_stops_the_run_with_its_traceback_and_keeps_results() -> None:
    kept: list[int] = []
    # The worker fails on task 0 (sent to it first); this process computes the rest fine.
    with pytest.raises(
        WorkerError, match=r"(?s)square worker failed while computing square 0.*cannot do task 0"
    ):
        run_tasks(
            list(range(6)),
            make_failing(-1),
            lambda task, result: kept.append(task),
            workers=2,
            factory=make_failing,
            factory_args=(0,),
            what="square",
        )
    assert 0 not in kept  # the failed task is not reported as done


def test_a_worker_that_dies_loses_no_task(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []
    with caplog.at_level(logging.WARNING, logger="digiq.workers"):
        run_tasks(
            list(range(5)),
            make_dying(-1),
            lambda task, result: seen.append(result),
            workers=2,
            factory=make_dying,
            factory_args=(0,),
            what="square",
        )
    assert sorted(seen) == list(range(5))
    assert "exited with code 3" in caplog.text and "computing them here" in caplog.text
