"""A small LRU of loaded models so that switching back and forth in the UI does not reload weights.

Bounded per kind (classifiers, autoencoders): full VAEs weigh ~330 MB each in fp32, so keeping every
model ever loaded would exhaust memory when a user tries all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Literal

import torch
from torch import nn

from magig_core.forking import ChildSafeLock

ModelKind = Literal["classifier", "autoencoder"]
DEFAULT_CACHE_SIZE = 3


class ModelCache:
    """Least-recently-used store of frozen models keyed by everything that determines their weights."""

    def __init__(self, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        self._entries: OrderedDict[Hashable, nn.Module] = OrderedDict()
        self._lock = ChildSafeLock(reentrant=True)  # held for a whole load: see magig_core.forking
        self.maxsize = maxsize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"cache size must be >= 0, got {value}")
        with self._lock:
            self._maxsize = value
            self._evict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get_or_create(self, key: Hashable, factory: Callable[[], nn.Module]) -> nn.Module:
        # One lock for the whole load: two UI requests for the same model must not load it twice.
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            model = factory()
            if self._maxsize > 0:
                self._entries[key] = model
                self._evict()
            return model

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            _release_cuda_memory()

    def _evict(self) -> None:
        evicted = False
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
            evicted = True
        if evicted:
            _release_cuda_memory()


def _release_cuda_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


MODEL_CACHES: dict[ModelKind, ModelCache] = {"classifier": ModelCache(), "autoencoder": ModelCache()}


def set_cache_size(kind: ModelKind, size: int) -> None:
    """How many loaded models of one kind stay in memory (0 disables caching)."""
    MODEL_CACHES[kind].maxsize = size


def clear_model_cache(kind: ModelKind | None = None) -> None:
    """Forget cached models (all kinds by default); models still referenced elsewhere stay alive."""
    for cache_kind, cache in MODEL_CACHES.items():
        if kind is None or kind == cache_kind:
            cache.clear()
