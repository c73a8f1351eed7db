"""Screens decoded once at the VLM's work size, shared by the repr and features stages.

Why: the representation stage decodes every screenshot at full resolution to label it, then
again at the work size (0.25x) to render its training inputs, and the features stage decodes
it a third time. Decoding and resizing a 1080x2280 frame costs about 20 ms, about a minute per
pass over the quickstart's 2,600 states on 2 cores. The labelling pass, which must decode at
full resolution anyway, now also writes each state's work-size frame to
``RUN/cache/work-frames-<side>/`` (:class:`WorkFramesWriter`; ``frames.u8``, raw RGB bytes,
about 0.46 MB per 1080x2280 state, and ``index.npz``), and the later passes read them from
there (:class:`WorkFrames`).

Memory: frames go to the file as they are produced and are read back one at a time with
``os.pread``, so no process holds them all (the operating system's page cache does, while it
has room); a run's largest process stays as large as without the cache.

A kept frame is exactly what :meth:`trajectories.ReplayBuffer.image` returns for that row and
size (the same PIL resize of the same pixels), so features and training inputs do not change;
the index records the dataset's fingerprint and a folder of other data, or a damaged one, is
ignored with a warning; any row or size it lacks is decoded as before. The folder is a cache:
deleting it only costs time.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

__all__ = ["WorkFrames", "WorkFramesWriter", "work_frames_path"]

FORMAT = "digiq-work-frames-2"
INDEX = "index.npz"
FRAMES = "frames.u8"


def work_frames_path(cache_dir: str | Path, image_side: int) -> Path:
    """The folder where a run keeps the work-size frames for a VLM of input side ``image_side``."""
    return Path(cache_dir) / f"work-frames-{int(image_side)}"


class WorkFrames:
    """Read-only work-size frames by internal step row of one dataset (see the module doc)."""

    def __init__(self, root: Path, index: dict[int, tuple[int, int, int]]) -> None:
        self.root = root
        self._index = index
        # kept open for os.pread; closed by close() or when the object goes
        self._file = open(root / FRAMES, "rb")  # noqa: SIM115
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()

    def get(self, row: int, size: tuple[int, int]) -> np.ndarray | None:
        """The frame of ``row`` if kept at ``size`` = (width, height), else None. Thread-safe."""
        entry = self._index.get(int(row))
        if entry is None or (entry[2], entry[1]) != (int(size[0]), int(size[1])):
            self.misses += 1
            return None
        offset, height, width = entry
        data = os.pread(self._file.fileno(), height * width * 3, offset)
        self.hits += 1
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)

    @classmethod
    def open(cls, root: str | Path, fingerprint: str) -> WorkFrames | None:
        """The frames kept in ``root`` for the dataset ``fingerprint``; None (with a warning
        naming the folder) when it is missing, damaged or of other data."""
        root = Path(root)
        if not (root / INDEX).is_file():
            return None
        try:
            with np.load(root / INDEX, allow_pickle=False) as npz:
                if str(npz["format"]) != FORMAT:
                    raise ValueError(f"format {str(npz['format'])!r}, expected {FORMAT!r}")
                saved = str(npz["fingerprint"])
                rows, shapes, offsets = npz["rows"], npz["shapes"], npz["offsets"]
            size = (root / FRAMES).stat().st_size
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable work-frame cache %s (%s)", root, exc)
            return None
        if saved != fingerprint:
            log.warning("ignoring work-frame cache %s: it was written for other data", root)
            return None
        ends = offsets + shapes[:, 0] * shapes[:, 1] * 3 if len(rows) else np.zeros(0, np.int64)
        if len(ends) and int(ends.max()) > size:
            log.warning("ignoring work-frame cache %s: %s is truncated", root, FRAMES)
            return None
        index = {
            row: (offset, height, width)
            for row, (height, width), offset in zip(
                rows.tolist(), shapes.tolist(), offsets.tolist(), strict=True
            )
        }
        return cls(root, index)


class WorkFramesWriter:
    """Writes the work-size copy of full-resolution frames as a labelling pass decodes them.

    ``size_of(width, height)`` gives a frame's work size. :meth:`add` is thread-safe (the
    labelling pass runs on worker threads) and writes the frame out at once; :meth:`finish`
    writes the index and puts the folder in place (until then ``root`` is untouched, so a
    stopped pass leaves no half-written cache).
    """

    def __init__(self, root: str | Path, size_of: Callable[[int, int], tuple[int, int]]) -> None:
        self.root = Path(root)
        self.size_of = size_of
        self._tmp = self.root.with_name(self.root.name + ".tmp")
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir(parents=True)
        self._file = open(self._tmp / FRAMES, "wb")  # noqa: SIM115 - closed by finish()
        self._index: dict[int, tuple[int, int, int]] = {}
        self._offset = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def add(self, row: int, full: np.ndarray) -> None:
        height, width = full.shape[:2]
        size = self.size_of(width, height)
        if size == (width, height):
            small = np.ascontiguousarray(full)
        else:
            # The resize ReplayBuffer.image (trajectories.images.decode_image) applies.
            image = Image.fromarray(full).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            small = np.asarray(image)
        data = small.tobytes()
        with self._lock:
            if int(row) in self._index:
                return
            self._file.write(data)
            self._index[int(row)] = (self._offset, small.shape[0], small.shape[1])
            self._offset += len(data)

    def finish(self, fingerprint: str) -> Path:
        """Write the index, then replace ``root`` with the new folder; returns ``root``."""
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            rows = np.array(sorted(self._index), np.int64)
            entries = np.array([self._index[r] for r in rows.tolist()], np.int64).reshape(-1, 3)
            np.savez(
                self._tmp / INDEX,
                format=np.array(FORMAT),
                fingerprint=np.array(fingerprint),
                rows=rows,
                shapes=entries[:, 1:],
                offsets=entries[:, 0],
            )
        if self.root.exists():
            shutil.rmtree(self.root)
        self._tmp.replace(self.root)
        return self.root

    def abort(self) -> None:
        """Drop the half-written folder (the pass stopped)."""
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
