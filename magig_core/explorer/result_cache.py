"""Finished runs by (image, settings), so repeated requests (examples in a talk) replay instantly."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import torch

from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.explorer.settings import RunSettings

CachedRun = tuple[RunContext, list[MethodResult]]


def run_key(image01: torch.Tensor, settings: RunSettings) -> str:
    """Content hash of the resized input plus every setting that changes the result."""
    digest = hashlib.sha256(image01.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return f"{digest}:{settings.key()}"


class ResultCache:
    """A small thread-safe LRU of complete runs (cancelled runs are never stored)."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedRun] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedRun | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: str, run: CachedRun) -> None:
        with self._lock:
            self._entries[key] = run
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
