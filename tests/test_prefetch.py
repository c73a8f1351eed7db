"""digiq.prefetch: inputs prepared ahead on threads come back in order, bounded, with errors."""

from __future__ import annotations

import threading
import time

import pytest

from digiq.prefetch import prefetched


def test_results_come_back_in_order_whatever_finishes_first() -> None:
    delays = [0.03, 0.0, 0.02, 0.0, 0.01, 0.0]

    def slow_square(i: int) -> int:
        time.sleep(delays[i])
        return i * i

    assert list(prefetched(slow_square, range(len(delays)), ahead=3, workers=3)) == [
        i * i for i in range(len(delays))
    ]


def test_no_more_than_ahead_items_run_beyond_the_one_consumed() -> None:
    lock = threading.Lock()
    started: list[int] = []
    consumed = 0
    worst = 0

    def record(i: int) -> int:
        with lock:
            started.append(i)
        return i

    for value in prefetched(record, range(20), ahead=2, workers=2):
        time.sleep(0.002)  # let the workers run as far as they are allowed
        with lock:
            worst = max(worst, len(started) - consumed)
        consumed += 1
        assert value == consumed - 1
    assert sorted(started) == list(range(20))
    assert 1 <= worst <= 3  # the item being consumed and at most `ahead` more


def test_an_error_is_raised_where_its_item_is_consumed() -> None:
    def fail_on_three(i: int) -> int:
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    seen = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for value in prefetched(fail_on_three, range(6)):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_closing_early_leaves_the_rest_unstarted() -> None:
    calls: list[int] = []

    def note(i: int) -> int:
        calls.append(i)
        return i

    stream = prefetched(note, range(1000), ahead=2, workers=1)
    assert next(stream) == 0
    stream.close()
    assert len(calls) <= 4


def test_ahead_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ahead must be >= 1"):
        list(prefetched(lambda i: i, range(3), ahead=0))
