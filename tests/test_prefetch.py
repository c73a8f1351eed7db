"""digiq.prefetch: inputs prepared ahead on threads come back in order, bounded, with errors."""

from __future__ import annotations

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


def test_no_more_than_ahead_items_are_taken_beyond_the_one_consumed() -> None:
    """Items are taken from the source only when submitted, so counting what was taken shows
    how far ahead the work runs, without timing: exactly ``ahead`` beyond the one consumed."""
    taken = 0

    def source():
        nonlocal taken
        for i in range(20):
            taken += 1
            yield i

    for value in prefetched(lambda i: i * 10, source(), ahead=2, workers=2):
        assert value % 10 == 0
        assert taken == min(value // 10 + 1 + 2, 20)


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
