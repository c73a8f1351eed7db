"""Peak resident memory of one pipeline stage, rather than of the process so far.

Why: ``digiq train all`` runs its stages in one process, and ``getrusage``'s ``ru_maxrss``
only ever grows, so every stage after the feature extraction recorded that stage's peak
(2,541 MiB for a critic and a policy step that need far less). Linux lets a process reset its
own high-water mark (writing ``5`` to ``/proc/self/clear_refs``; the kernel's proc(5)), after
which ``VmHWM`` in ``/proc/self/status`` is the peak since the reset. Child processes (the
candidate stage's workers) cannot be reset: their ``RUSAGE_CHILDREN`` peak counts for a stage
only when it rose during that stage.

Where the reset is refused (macOS, a read-only ``/proc``) the record falls back to the
process's peak so far and says so: :attr:`StagePeak.scope` is ``"stage"`` or ``"process"``.

A stage's peak still counts what earlier stages left resident: the process keeps the heap it
freed (``android/allocator.py``), so after the features (2,353 MiB in qgs31) the critic and
policy stages recorded 2,200 MiB, memory the process really held while they ran.
"""

from __future__ import annotations

import logging
import resource
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_KIB = 1024.0


def _rusage_mb(who: int) -> float:
    """``ru_maxrss`` in MiB (bytes on macOS, KiB on Linux)."""
    scale = 1.0 if sys.platform == "darwin" else _KIB
    return resource.getrusage(who).ru_maxrss * scale / 2**20


def _vm_hwm_mb() -> float | None:
    """``VmHWM`` of this process in MiB, or None where ``/proc`` does not report it."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / _KIB  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_high_water_mark() -> bool:
    """Reset this process's peak resident memory; False where the kernel refuses."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError as exc:
        log.debug("cannot reset the peak resident memory (%s): stage peaks are cumulative", exc)
        return False
    return _vm_hwm_mb() is not None


class StagePeak:
    """Started when a stage starts; :meth:`mb` is that stage's peak resident memory (MiB):
    this process's since the start and, if a child process peaked higher during the stage,
    that child's. ``scope`` says which measurement was possible."""

    def __init__(self) -> None:
        self._children_before = _rusage_mb(resource.RUSAGE_CHILDREN)
        self.scope = "stage" if _reset_high_water_mark() else "process"

    def mb(self) -> float:
        own = _vm_hwm_mb() if self.scope == "stage" else None
        if own is None:
            own = _rusage_mb(resource.RUSAGE_SELF)
        children = _rusage_mb(resource.RUSAGE_CHILDREN)
        if self.scope == "stage" and children <= self._children_before:
            children = 0.0  # no child of this stage peaked above an earlier stage's child
        return round(max(own, children), 1)
