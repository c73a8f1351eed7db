"""Prepare the next batches' inputs on worker threads while the model runs on this one.

The learner's stages spend much of their CPU time outside the model: decoding 1080x2280
WebP screenshots, resizing them and drawing the cursor (57% of the tiny preset's repr training
time, measured with py-spy on a 300-episode General dataset). PIL and numpy release the GIL
there, so that work overlaps the model's forward and backward passes when it runs a few
batches ahead on threads. Results come back in order and are what a serial loop computes, so
training is unchanged; only the wall time differs.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["prefetched", "prefetch_workers"]

T = TypeVar("T")
R = TypeVar("R")


def prefetch_workers() -> int:
    """Worker threads for input preparation: the machine's cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def prefetched(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    ahead: int = 2,
    workers: int | None = None,
) -> Iterator[R]:
    """``fn(item)`` for each item, in order, with up to ``ahead`` items computed in advance
    on ``workers`` threads (default :func:`prefetch_workers`). An exception of ``fn`` is
    raised where its result is consumed; closing the iterator early cancels what is queued.
    """
    if ahead < 1:
        raise ValueError(f"ahead must be >= 1, got {ahead}")
    pending: deque[Future[R]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(
        max_workers=workers or prefetch_workers(), thread_name_prefix="prefetch"
    ) as pool:
        try:
            for item in source:
                pending.append(pool.submit(fn, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
