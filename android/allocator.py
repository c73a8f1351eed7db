"""Keep freed heap memory in the process instead of handing it back to the kernel (glibc only).

Why: this toolkit's processes allocate and free large blocks all the time: a 1080x2280 RGB
screenshot is 7.4 MB, every decoded PNG, WebP and numpy frame of a rollout is one, and torch
frees and re-allocates its activations at every training step. glibc's malloc serves blocks
above its mmap threshold (128 KiB, raised dynamically up to 32 MiB) with a fresh ``mmap`` and
returns them on ``free``, and it trims the top of the heap once more than its trim threshold
is free. The next allocation of the same size then faults in and zeroes every 4 KiB page again,
in the kernel. Measured on the 2-core machine (benchmarks/bench_allocator.py,
benchmarks/RESULTS.md):
100 steps of ``digiq train bc`` on the tiny preset made 4.2-4.8 million minor page faults and
spent 10 s in the kernel, and a 60-episode ``digiq collect`` on two simulated phones 7.4-7.8
million and 21 s.

:func:`keep_freed_memory` raises both thresholds to 1 GiB with ``mallopt``, so freed blocks stay
in the heap and are reused. The price is that a process's resident memory stays at its
high-water mark instead of shrinking after a peak, which is what a peak-memory budget counts
anyway. It is called first thing by every ``digiq`` command and by each simulated device
process; library code never calls it.

Left alone (returns False) where it cannot apply or the user has chosen: not glibc (macOS,
musl), ``DIGIQ_MALLOC_TUNING=0``, or the user's own ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_`` or malloc ``GLIBC_TUNABLES`` in the environment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = ["DISABLE_ENV", "keep_freed_memory"]

# Set to 0 to leave malloc's defaults alone.
DISABLE_ENV = "DIGIQ_MALLOC_TUNING"

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _user_has_chosen(environ: Mapping[str, str]) -> str | None:
    for name in _USER_SETTINGS:
        if name in environ:
            return name
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold_bytes`` (see the module docstring).

    Returns True when both were set, False when left alone (the reason is logged at DEBUG).
    """
    if threshold_bytes < 1:
        raise ValueError(f"threshold_bytes must be >= 1, got {threshold_bytes}")
    if os.environ.get(DISABLE_ENV, "").strip() == "0":
        log.debug("malloc thresholds left alone: %s=0", DISABLE_ENV)
        return False
    chosen = _user_has_chosen(os.environ)
    if chosen is not None:
        log.debug("malloc thresholds left alone: %s is set", chosen)
        return False
    if not sys.platform.startswith("linux"):
        log.debug("malloc thresholds left alone: %s is not Linux", sys.platform)
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name)
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("malloc thresholds left alone: %s is not glibc", libc_name)
        return False
    gnu_get_libc_version.restype = ctypes.c_char_p
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = min(int(threshold_bytes), 2**31 - 1)
    # The mmap threshold first: setting either one stops glibc's dynamic adjustment, and a
    # trim threshold alone would leave the mmap threshold pinned at its 128 KiB start.
    if not mallopt(_M_MMAP_THRESHOLD, value):
        log.debug("malloc thresholds left alone: glibc refused an mmap threshold of %d", value)
        return False
    mallopt(_M_TRIM_THRESHOLD, value)
    log.debug(
        "glibc %s: mmap and trim thresholds set to %d bytes",
        gnu_get_libc_version().decode(),
        value,
    )
    return True
