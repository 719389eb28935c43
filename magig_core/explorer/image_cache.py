"""Uploads decoded once: the working-size tensor of each image file, in a small LRU bounded in bytes.

One visit touches the same upload several times (top-5 preview, cache lookup, the run, storing the
result). Decoding is the one step that costs full-resolution memory and hundreds of milliseconds for big
files, so it happens once per file version; only the small working-size tensor is kept, never the
full-resolution image. A file is identified by its resolved path, modification time and size, so a
rewritten file is decoded again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from magig_core.images import ImageSource, load_image, to_tensor

FileKey = tuple[str, int, int, tuple[int, int]]  # (resolved path, mtime in ns, bytes, working size)


class DecodedImages:
    """Thread-safe LRU of (tensor [1,3,H,W] in [0,1], conversion notes) per image file and working size."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[FileKey, tuple[torch.Tensor, tuple[str, ...]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.decodes = 0  # files actually decoded (the rest were served from memory)

    def tensor(self, source: ImageSource, size: tuple[int, int]) -> tuple[torch.Tensor, list[str]]:
        """The image at ``size`` = (H, W) and its notes; files are decoded at most once per version."""
        key = _file_key(source, size)
        if key is not None:
            with self._lock:
                hit = self._entries.get(key)
                if hit is not None:
                    self._entries.move_to_end(key)
                    return hit[0].clone(), list(hit[1])
        loaded = load_image(source)
        self.decodes += 1
        tensor, notes = to_tensor(loaded.image, size), loaded.notes
        del loaded  # the decoded picture goes now: only the working-size tensor is kept
        if key is not None:
            self._put(key, tensor.clone(), tuple(notes))
        return tensor, notes

    def _put(self, key: FileKey, tensor: torch.Tensor, notes: tuple[str, ...]) -> None:
        size = tensor.numel() * tensor.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[0].numel() * previous[0].element_size()
            self._entries[key] = (tensor, notes)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (old, _) = self._entries.popitem(last=False)
                self._bytes -= old.numel() * old.element_size()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes


def _file_key(source: ImageSource, size: tuple[int, int]) -> FileKey | None:
    """The cache key of a file path; None for in-memory sources and missing files (which load_image reports)."""
    if not isinstance(source, (str, Path)):
        return None
    try:
        path = os.path.realpath(source)
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_mtime_ns, stat.st_size, (int(size[0]), int(size[1]))
