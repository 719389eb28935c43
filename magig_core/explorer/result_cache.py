"""Finished runs by (image, settings), so repeated requests (examples in a talk) replay instantly.

The cache is bounded both in entries and in bytes: a run at 512 px with eight methods keeps its path
frames (about 20 MB per method), so a count alone would not bound the server's memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch

from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.explorer.settings import RunSettings

CachedRun = tuple[RunContext, list[MethodResult]]


def run_key(image01: torch.Tensor, settings: RunSettings) -> str:
    """Content hash of the resized input plus every setting that changes the result."""
    digest = hashlib.sha256(image01.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return f"{digest}:{settings.key()}"


def run_nbytes(run: CachedRun) -> int:
    """Bytes held by a run's arrays (the input picture, attributions, curves and path frames)."""
    context, results = run
    arrays = [context.image]
    for result in results:
        arrays += [result.attributions, result.path_t, result.path_probs, result.frames, result.frame_t,
                   result.frame_probs, result.distances]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


class ResultCache:
    """A small thread-safe LRU of complete runs (cancelled runs are never stored)."""

    def __init__(self, max_entries: int = 16, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[CachedRun, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedRun | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key][0]

    def put(self, key: str, run: CachedRun) -> None:
        size = run_nbytes(run)
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (run, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes
